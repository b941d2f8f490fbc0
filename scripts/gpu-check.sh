#!/usr/bin/env bash
# The first run on an NVIDIA GPU, prepared: three checks that print what a
# GPU changes against the CPU, with no network (nothing is downloaded).
#
#   scripts/gpu-check.sh [--dry-run] [--device cuda:N] [--only STEP] [--out DIR] RXALIGN MODEL_DIR
#
# RXALIGN is a release binary built with CUDA, on the GPU machine or one like it:
#     cargo build --release --locked -p rxalign-cli --features cuda
#     # the binary: $CARGO_TARGET_DIR/release/rxalign (target/release/rxalign by default)
# MODEL_DIR is the SmolLM2-135M-Instruct folder that .ci/run converts
# (~/.cache/rxalign/smollm2-135m-instruct: config.json, model.safetensors,
# tokenizer.json); copy it to the GPU machine with the binary and this clone.
#
# 1. The quickstart (experiments/quickstart.ron with `device` set) on the
#    device and on the CPU: every metric of `compare` the same within
#    0.02 + 2% of the larger value (absolute + relative). The tolerance is
#    a judgement, not a calibration: the GPU sums in another order, and
#    sampled rollouts that differ once differ afterwards.
# 2. `rxalign lm generate` on the device: the greedy text (plain and chat
#    prompts, 32 tokens) equal to the CPU's, character for character.
# 3. One LoRA GRPO iteration of the SmolLM2 list editor (lm-smollm2.ron's
#    policy with `precision: "bf16"`: weight matrices stored in bf16,
#    computed in f32; 8 visits x 8 rollouts, FLAME's group, after one SFT
#    epoch): rollouts/s and training
#    tokens/s (from `rxalign run`'s throughput line), the peak memory
#    (nvidia-smi's memory of the process, sampled every 0.5 s; the host's
#    peak resident memory beside it) and the share of the card's dense
#    bf16 peak that the iteration's FLOPs (`plan --resources`' estimate,
#    an upper bound: every prompt at the longest, every answer full) reach.
#
# --dry-run runs every step with the device replaced by `cpu` and smaller
# sizes (300 patients and 2 epochs/iterations for the quickstart, 8 tokens,
# 2 visits x 2 rollouts), so that the only untried thing on a GPU is the
# device itself (tests/lm_generate.rs runs it end to end on a tiny model).
# Exit status: 0 when every check passes, 1 when one fails, 2 on bad usage.
set -euo pipefail

usage() {
  sed -n '4p' "$0" | sed 's/^# *//' >&2
  exit 2
}

dry_run=0
only=""
device=cuda:0
out=""
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) dry_run=1 ;;
    --device) device=${2:?--device needs a value}; shift ;;
    --out) out=${2:?--out needs a value}; shift ;;
    --only) only=${2:?--only needs 1, 2 or 3}; shift ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
[[ ${#args[@]} -eq 2 ]] || usage
bin=$(realpath "${args[0]}")
model=$(realpath "${args[1]}")
[[ -x $bin ]] || { echo "$bin: not an executable" >&2; exit 2; }
for f in config.json model.safetensors tokenizer.json; do
  [[ -f $model/$f ]] || { echo "$model/$f: missing (the model folder)" >&2; exit 2; }
done
if [[ $dry_run -eq 1 ]]; then
  device=cpu
fi
if [[ -z $out ]]; then
  out=$(mktemp -d)
else
  mkdir -p "$out"
  out=$(realpath "$out")
  if [[ -n $(ls -A "$out") ]]; then
    echo "$out: not empty; give an empty or new folder" >&2
    exit 2
  fi
fi
# Experiment files name paths relative to the repository's root.
cd "$(dirname "$0")/.."
echo "gpu-check: device $device$([[ $dry_run -eq 1 ]] && echo ' (dry run: the device replaced by cpu)'), binary $bin, model $model, files in $out"

failed=0
step_start=$SECONDS
step() {
  printf '\n== %s (at %ss)\n' "$1" "$SECONDS"
  step_start=$SECONDS
}

# Runs "$@" in the background and prints its peak memory when it ends:
# `host PEAK_KIB` (VmHWM, the peak resident set) and, on a CUDA device,
# `device PEAK_MIB` (nvidia-smi's used memory of the process). Its output
# goes to $log; its exit status is returned.
peak_of() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  local pid=$! host=0 dev=0 v
  # Interrupted or timed out, the script stops its run too.
  trap "kill $pid 2>/dev/null" EXIT
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $v && $v -gt $host ]] && host=$v
    if [[ $device == cuda:* ]]; then
      v=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
        awk -F', *' -v p="$pid" '$1 == p {print $2}')
      [[ -n $v && $v -gt $dev ]] && dev=$v
    fi
    sleep 0.5
  done
  local rc=0
  wait "$pid" || rc=$?
  trap - EXIT
  echo "host $host" >"$log.peak"
  [[ $device == cuda:* ]] && echo "device $dev" >>"$log.peak"
  return $rc
}

# Whether step $1 runs (every step unless --only names one).
runs() { [[ -z $only || $only == "$1" ]]; }

# ---------------------------------------------------------------------------
if runs 1; then
step "1. quickstart on $device against cpu"
quickstart() { # DEVICE FILE
  sed -e "s/^    seed: 0,\$/    seed: 0,\n    device: \"$1\",/" experiments/quickstart.ron >"$2"
  grep -q "device: \"$1\"" "$2" || { echo "could not set the device in $2" >&2; exit 1; }
  if [[ $dry_run -eq 1 ]]; then
    sed -i -e 's/patients: 1500/patients: 300/' -e 's/epochs: 30/epochs: 2/' \
      -e 's/iterations: 60/iterations: 2/g' "$2"
  fi
}
quickstart cpu "$out/quickstart-cpu.ron"
quickstart "$device" "$out/quickstart-device.ron"
for side in cpu device; do
  "$bin" run "$out/quickstart-$side.ron" --out "$out/$side" >"$out/quickstart-$side.log" 2>&1 ||
    { cat "$out/quickstart-$side.log"; echo "quickstart on $side failed" >&2; exit 1; }
  "$bin" compare "$out/$side/quickstart" --format csv >"$out/quickstart-$side.csv"
  echo "$side: $((SECONDS - step_start)) s so far"
done
# Cell by cell: the same header and methods, numbers within the tolerance.
if ! awk -F, '
  NR == FNR { cpu[FNR] = $0; n = FNR; next }
  {
    split(cpu[FNR], a, ","); m = split($0, b, ",")
    if (m != length(a)) { print "row " FNR ": " length(a) " cells on cpu, " m " on the device"; bad = 1; next }
    for (i = 1; i <= m; i++) {
      if (FNR == 1 || a[i] !~ /^-?[0-9.]+(e-?[0-9]+)?$/) {
        if (a[i] != b[i]) { print "row " FNR " cell " i ": " a[i] " on cpu, " b[i] " on the device"; bad = 1 }
        continue
      }
      d = a[i] - b[i]; if (d < 0) d = -d
      big = (a[i] < 0 ? -a[i] : a[i]); if ((b[i] < 0 ? -b[i] : b[i]) > big) big = (b[i] < 0 ? -b[i] : b[i])
      cells++; if (d > worst) { worst = d; where = cpu[1] }
      if (d > 0.02 + 0.02 * big) { split(cpu[1], h, ","); print "  " h[i] " of " b[1] ": cpu " a[i] ", device " b[i] " (difference " d ")"; bad = 1 }
    }
  }
  END {
    if (FNR != n) { print "cpu has " n " rows, the device " FNR; bad = 1 }
    printf "  %d numbers compared, largest difference %g (tolerance 0.02 + 2%% of the larger)\n", cells, worst
    exit bad
  }' "$out/quickstart-cpu.csv" "$out/quickstart-device.csv"; then
  echo "quickstart: FAIL (the device differs from cpu beyond the tolerance; tables in $out/quickstart-*.csv)"
  failed=1
else
  echo "quickstart: PASS ($((SECONDS - step_start)) s)"
fi
fi

# ---------------------------------------------------------------------------
if runs 2; then
step "2. lm generate on $device: the greedy text equal to cpu's"
tokens=32
[[ $dry_run -eq 1 ]] && tokens=8
for kind in plain chat; do
  flag=()
  [[ $kind == chat ]] && flag=(--chat)
  prompt="The patient takes aspirin and warfarin; the safest change is"
  for side in cpu "$device"; do
    "$bin" lm generate --model "$model" --prompt "$prompt" --max-tokens "$tokens" --device "$side" \
      "${flag[@]}" >"$out/generate-$kind-${side/:/}.txt" 2>"$out/generate-$kind-${side/:/}.err" ||
      { cat "$out/generate-$kind-${side/:/}.err"; echo "lm generate on $side failed" >&2; exit 1; }
    tail -1 "$out/generate-$kind-${side/:/}.err"
  done
  if cmp -s "$out/generate-$kind-cpu.txt" "$out/generate-$kind-${device/:/}.txt"; then
    echo "lm generate ($kind): PASS, the same $tokens-token greedy text: $(head -c 120 "$out/generate-$kind-cpu.txt" | tr '\n' ' ')"
  else
    echo "lm generate ($kind): FAIL"
    diff "$out/generate-$kind-cpu.txt" "$out/generate-$kind-${device/:/}.txt" || true
    failed=1
  fi
done
fi

# ---------------------------------------------------------------------------
if runs 3; then
step "3. one LoRA GRPO iteration of the SmolLM2 editor on $device"
visits=8 group=8
[[ $dry_run -eq 1 ]] && visits=2 group=2
grpo=$out/grpo.ron
cat >"$grpo" <<EOF
// Written by scripts/gpu-check.sh: lm-smollm2.ron's policy and stages, one
// SFT epoch (GRPO starts from an SFT policy) and one GRPO iteration of
// $visits visits x $group rollouts.
(
    schema_version: 1,
    name: "gpu-check-grpo",
    seed: 0,
    device: "$device",
    data: (kind: "synthetic", patients: 12, seed: 0),
    init_list: (kind: "empty"),
    policy: (
        kind: "llama",
        model: "$model",
        lora: (
            rank: 32,
            alpha: 64.0,
            targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
        prompts: "add_remove",
        precision: "bf16",
        max_lines: 3,
        max_line_tokens: 8,
        note_chars: 60,
    ),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "refusal", weight: 0.2)],
    stages: [
        (kind: "sft", epochs: 1, batch_size: 8, lr: 0.0003, starts: "run", eval_every: 0, patients: (part: 1, of: 2)),
        (kind: "grpo", iterations: 1, visits: $visits, group: $group, lr: 0.00001, warmup: 0, eval_every: 0,
            patients: (part: 2, of: 2)),
    ],
    eval: (splits: ["test"], trajectories: 0),
)
EOF
"$bin" plan "$grpo" --resources >"$out/grpo-plan.txt" 2>&1 ||
  { cat "$out/grpo-plan.txt"; echo "plan --resources failed" >&2; exit 1; }
flops=$(grep -oE '[0-9.]+e[0-9]+ FLOPs an iteration' "$out/grpo-plan.txt" | head -1 | cut -d' ' -f1)
estimate=$(grep -E '^ *peak .*an iteration' "$out/grpo-plan.txt" | head -1 | sed 's/^ *//')
if ! peak_of "$out/grpo.log" "$bin" run "$grpo" --out "$out/grpo"; then
  cat "$out/grpo.log"
  echo "the GRPO iteration failed" >&2
  exit 1
fi
line=$(grep -oE 'grpo: iteration 1: .*' "$out/grpo.log" | head -1)
[[ -n $line ]] || { cat "$out/grpo.log"; echo "no throughput line in the run's output" >&2; exit 1; }
echo "  $line"
rollouts_per_s=$(sed -E 's/.*\(([0-9.]+) rollouts\/s\).*/\1/' <<<"$line")
tokens_per_s=$(sed -E 's/.*\(([0-9.]+) parts\/s\).*/\1/' <<<"$line")
seconds=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "s" && $(i - 2) == "in") t += $(i - 1) } END { print t }' <<<"$line")
host_kib=$(awk '$1 == "host" {print $2}' "$out/grpo.log.peak")
dev_mib=$(awk '$1 == "device" {print $2}' "$out/grpo.log.peak")
echo "grpo: $rollouts_per_s rollouts/s, $tokens_per_s training tokens/s (trained tokens of the update over its wall time)"
echo "grpo: peak host memory $((host_kib / 1024)) MiB$([[ -n $dev_mib ]] && echo ", peak device memory $dev_mib MiB (nvidia-smi)") over the whole run (loading, the SFT epoch, the GRPO iteration)"
echo "grpo: plan --resources estimated: $estimate"
# Dense (not 2:4 sparse) bf16 tensor-core peaks, TFLOP/s, from NVIDIA's data
# sheets (the sparse figures halved): H100 SXM and H200 SXM 989, H100 NVL and
# H200 NVL 835, H100 PCIe 756, A100 (40 and 80 GB) 312.
card=""
peak_tflops=""
if [[ $device == cuda:* ]]; then
  card=$(nvidia-smi --query-gpu=name --format=csv,noheader -i "${device#cuda:}" 2>/dev/null || true)
  case $card in
    *H200*NVL*) peak_tflops=835 ;;
    *H200*) peak_tflops=989 ;;
    *H100*NVL*) peak_tflops=835 ;;
    *H100*PCIe*) peak_tflops=756 ;;
    *H100*) peak_tflops=989 ;;
    *A100*) peak_tflops=312 ;;
  esac
fi
if [[ -n $flops && -n $seconds ]]; then
  rate=$(awk -v f="$flops" -v t="$seconds" 'BEGIN { printf "%.3g", f / t / 1e12 }')
  if [[ -n $peak_tflops ]]; then
    share=$(awk -v r="$rate" -v p="$peak_tflops" 'BEGIN { printf "%.2f", 100 * r / p }')
    echo "grpo: $rate TFLOP/s (estimated FLOPs $flops over ${seconds} s of rollouts and update): $share% of the $card's dense bf16 peak of $peak_tflops TFLOP/s"
  else
    echo "grpo: $rate TFLOP/s (estimated FLOPs $flops over ${seconds} s of rollouts and update); no dense bf16 peak known for ${card:-$device}"
  fi
fi
echo "grpo: $((SECONDS - step_start)) s"
fi

printf '\n== gpu-check: %s in %s s\n' "$([[ $failed -eq 0 ]] && echo 'every check passed' || echo 'a check FAILED')" "$SECONDS"
exit $failed
