#!/usr/bin/env python3
"""Reads a run folder's TensorBoard event files back with the official
reader (the `tensorboard` package from PyPI) and checks every tag against the
run folder itself:

- every non-null metric of `metrics.jsonl` of a method with a curve (a record
  past step 0 or on the training split) is a scalar `<method>/<split>/<metric>`
  at the record's step, with the same value (float32); one-off evaluations
  (references, baselines, the ground truth) are not charted: their final
  numbers are HParams values `final/<method>/<metric>`;
- every evaluated method has a `<method>/<split>/list_size` histogram whose
  mean (test split) is the mean list size of `predictions/<method>.jsonl`;
- every GRPO stage has `step_reward` and `list_size` histograms per iteration;
- every method with kept trajectories has a `<method>/test/trajectories`
  text naming each of those visits;
- HParams: the experiment lists the run's settings and the learned methods'
  final metrics (each a logged scalar), the one-off methods' final numbers are
  settings `final/<method>/<metric>` equal to summary.json's, the session start
  holds this run's seed, the session end says it succeeded;
- trajectory texts name drugs as `code (name)` from drugs.json.

Usage: tensorboard_read.py RUN_FOLDER. Exits non-zero on the first mismatch.
"""

import json
import math
import os
import sys
from collections import defaultdict

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def fail(message):
    print(f"tensorboard_read: {message}", file=sys.stderr)
    sys.exit(1)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(run):
    logdir = os.path.join(run, "tensorboard")
    if not any(n.startswith("events.out.tfevents") for n in os.listdir(logdir)):
        fail(f"no event file in {logdir}")
    acc = event_accumulator.EventAccumulator(
        logdir,
        size_guidance={
            event_accumulator.SCALARS: 0,
            event_accumulator.HISTOGRAMS: 0,
            event_accumulator.TENSORS: 0,
        },
    )
    acc.Reload()
    tags = acc.Tags()
    scalar_tags = set(tags["scalars"])
    checked = defaultdict(int)

    # Scalars: every metric of metrics.jsonl.
    scalars = {t: {e.step: e.value for e in acc.Scalars(t)} for t in scalar_tags}
    records = read_jsonl(os.path.join(run, "metrics.jsonl"))
    curves = {r["method"] for r in records if r["step"] > 0 or r["split"] == "train"}
    for r in records:
        if r["method"] not in curves:
            for name in r["metrics"]:
                if f"{r['method']}/{r['split']}/{name}" in scalar_tags:
                    fail(f"one-off {r['method']} is charted as {name}")
            continue
        for name, value in r["metrics"].items():
            if value is None:
                continue
            tag = f"{r['method']}/{r['split']}/{name}"
            if tag not in scalars or r["step"] not in scalars[tag]:
                fail(f"scalar {tag} at step {r['step']} is missing")
            got = scalars[tag][r["step"]]
            if not math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-6):
                fail(f"scalar {tag} at step {r['step']}: {got} != {value}")
            checked["scalar values"] += 1
    checked["scalar tags"] = len(scalar_tags)

    # Histograms: list sizes of every evaluated method and split.
    histogram_tags = set(tags["histograms"])
    evaluated = {(r["method"], r["split"]) for r in records if r["split"] in ("val", "test")}
    for method, split in sorted(evaluated):
        tag = f"{method}/{split}/list_size"
        if tag not in histogram_tags:
            fail(f"histogram {tag} is missing")
        h = acc.Histograms(tag)[-1].histogram_value
        if h.num <= 0 or sum(h.bucket) != h.num:
            fail(f"histogram {tag}: {h.num} values but buckets hold {sum(h.bucket)}")
        predictions = os.path.join(run, "predictions", f"{method}.jsonl")
        if split == "test" and os.path.exists(predictions):
            sizes = [len(p["drugs"]) for p in read_jsonl(predictions)]
            mean = sum(sizes) / len(sizes)
            if not math.isclose(h.sum / h.num, mean, rel_tol=1e-9):
                fail(f"histogram {tag}: mean {h.sum / h.num} != predictions' {mean}")
        checked["histograms"] += 1
    grpo_steps = defaultdict(set)
    for r in records:
        if r["split"] == "train" and "advantage/mean" in r["metrics"]:
            grpo_steps[r["method"]].add(r["step"])
    for method, steps in grpo_steps.items():
        for name in ("step_reward", "list_size"):
            tag = f"{method}/train/{name}"
            if tag not in histogram_tags:
                fail(f"histogram {tag} is missing")
            got = {e.step for e in acc.Histograms(tag)}
            if got != steps:
                fail(f"histogram {tag}: steps {sorted(got)} != iterations {sorted(steps)}")
            checked["histograms"] += 1

    # Texts: the kept trajectories of each method.
    drugs = json.load(open(os.path.join(run, "drugs.json"), encoding="utf-8"))
    tensor_tags = set(tags["tensors"])
    text_tags = set(acc.PluginTagToContent("text"))
    by_method = defaultdict(list)
    for t in read_jsonl(os.path.join(run, "trajectories.jsonl")):
        by_method[t["method"]].append(t["visit_id"])
    for method, visits in by_method.items():
        tag = f"{method}/test/trajectories"
        if tag not in tensor_tags or tag not in text_tags:
            fail(f"text {tag} is missing")
        text = acc.Tensors(tag)[-1].tensor_proto.string_val[0].decode("utf-8")
        for v in visits:
            if f"**visit {v}**" not in text:
                fail(f"text {tag} does not show visit {v}")
        if "| step | action | probability | reward |" not in text:
            fail(f"text {tag} has no step table")
        named = [d for d in drugs["drugs"] if d["name"] and d["name"] != d["code"]]
        if named and not any(f"{d['code']} ({d['name']})" in text for d in named):
            fail(f"text {tag} names no drug")
        checked["texts"] += 1

    # HParams.
    content = acc.PluginTagToContent("hparams")
    for tag in ("_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"):
        if tag not in content:
            fail(f"hparams {tag} is missing")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    names = {h.name for h in experiment.hparam_infos}
    for name in ("seed", "name", "reward[0].weight"):
        if name not in names:
            fail(f"hparams experiment lacks setting {name}")
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    if not metric_tags:
        fail("hparams experiment lists no metrics")
    for tag in metric_tags:
        if tag not in scalar_tags:
            fail(f"hparams metric {tag} is not a logged scalar")
    summary = json.load(open(os.path.join(run, "summary.json"), encoding="utf-8"))
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    for method, s in summary["methods"].items():
        if method in curves:
            if f"{method}/test/jaccard" not in metric_tags:
                fail(f"hparams metrics lack {method}/test/jaccard")
        else:
            key = f"final/{method}/jaccard"
            got = start.session_start_info.hparams[key].number_value
            if key not in names or not math.isclose(got, s["metrics"]["jaccard"], rel_tol=1e-9):
                fail(f"hparams {key} is not summary.json's")
        checked["summary methods"] += 1
    resolved = open(os.path.join(run, "resolved.ron"), encoding="utf-8").read()
    seed = start.session_start_info.hparams["seed"].number_value
    if f"seed: {int(seed)}," not in resolved:
        fail(f"hparams seed {seed} is not the run's")
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    if end.session_end_info.status != 1:  # STATUS_SUCCESS
        fail(f"hparams session status {end.session_end_info.status}")
    checked["hparams settings"] = len(names)
    checked["hparams metrics"] = len(metric_tags)

    print("tensorboard_read: ok: " + ", ".join(f"{v} {k}" for k, v in sorted(checked.items())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: tensorboard_read.py RUN_FOLDER")
    main(sys.argv[1])
