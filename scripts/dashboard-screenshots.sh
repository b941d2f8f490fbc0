#!/usr/bin/env bash
# Renders each panel of the dashboard to docs/dashboard-<panel>.png, headless:
# a small real experiment is run into a temporary folder, then the
# `screenshot` example opens the dashboard on it under Xvfb with Mesa's
# software OpenGL (llvmpipe) and saves the window. Installs Xvfb and Mesa
# from Debian packages where they are missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v xvfb-run >/dev/null || need+=(xvfb xauth)
ls /usr/lib/*-linux-gnu/dri/swrast_dri.so >/dev/null 2>&1 || need+=(libgl1-mesa-dri)
ldconfig -p | grep -q 'libEGL.so.1' || need+=(libegl1)
ldconfig -p | grep -q 'libGL.so.1' || need+=(libgl1)
ldconfig -p | grep -q 'libxkbcommon-x11.so.0' || need+=(libxkbcommon-x11-0)
if ((${#need[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/demo.ron" <<'RON'
// A small real experiment whose editor adds and removes drugs: episodes
// start from corrupted ground truths (missing drugs, wrong ones, some of
// them interacting), so the per-drug timeline has something to show.
(
    schema_version: 1,
    name: "demo",
    data: (kind: "synthetic", patients: 300),
    init_list: (kind: "corrupted", miss_rate: 0.3, extra_rate: 0.4, interacting_extra_rate: 0.5),
    policy: (kind: "set_encoder", hidden: 64, budget: 12),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
    stages: [
        (kind: "sft", epochs: 40, eval_every: 5),
        (kind: "step_grpo", iterations: 12, visits: 8, group: 4, eval_every: 2),
    ],
    eval: (trajectories: 6),
    ablations: (
        variants: [
            (name: "ddi_0.2", set: {}),
            (name: "ddi_1.0", set: {"reward[1].weight": 1.0}),
        ],
        grid: {"seed": [1, 2, 3]},
    ),
)
RON
cargo build --quiet -p rxalign-cli --bin rxalign
cargo build --quiet -p rxalign-dashboard --example screenshot
target=${CARGO_TARGET_DIR:-target}
"$target/debug/rxalign" run "$work/demo.ron" --out "$work/runs" --jobs 2 >/dev/null
mkdir -p docs
for tab in runs curves trajectory ablation drugs; do
  LIBGL_ALWAYS_SOFTWARE=1 xvfb-run -a -s "-screen 0 1600x1600x24" \
    "$target/debug/examples/screenshot" "$work/runs" "$tab" "docs/dashboard-$tab.png"
  echo "docs/dashboard-$tab.png"
done
