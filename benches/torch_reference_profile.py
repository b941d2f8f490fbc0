#!/usr/bin/env python3
"""Where PyTorch spends the SFT epoch and the GRPO iteration of
`torch_reference.py` (the same workload, policy and updates), by
torch.profiler: each operator's self CPU time grouped as
docs/policies-and-trainer.md's profile table groups rxalign's (matrix
products, embedding bags, exp, Adam, tensors read one element at a time
from Python, other operators), as shares of the median wall time of a call
without the profiler, the rest being Python outside the operators
(building batches, the rollout loop, autograd's dispatch; the profiler's
own cost per operator makes that rest look a little smaller than it is);
then the largest operators.

    cargo bench -p rxalign-train --bench train_throughput   # writes the workload
    python3 benches/torch_reference_profile.py target/train-throughput-workload.json
"""

import collections
import copy
import json
import os
import random
import statistics
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402

MATMUL = {"aten::mm", "aten::addmm", "aten::bmm"}
BAGS = {"aten::sort", "aten::index_select", "aten::index_add_", "aten::cumsum"}
EXP = {"aten::exp", "aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::exponential_", "aten::multinomial"}
PYTHON = {"aten::select", "aten::item", "aten::_local_scalar_dense", "aten::as_strided", "aten::lift_fresh"}


def category(event):
    parent = event.cpu_parent
    while parent is not None:
        if parent.key.startswith("Optimizer."):
            return "Adam (and zeroing the gradients)"
        parent = parent.cpu_parent
    key = event.key
    if key.startswith("Optimizer."):
        return "Adam (and zeroing the gradients)"
    if key in MATMUL:
        return "matrix products"
    if "embedding_bag" in key or key in BAGS:
        return "embedding bags (and their backward's sort)"
    if key in EXP:
        return "exp (log-softmax, KL, sampling)"
    if key in PYTHON:
        return "element access from Python (select, item)"
    return "other operators"


def main(path, repeats=5):
    w = json.load(open(path, encoding="utf-8"))
    torch.set_num_threads(w["threads"])
    torch.manual_seed(0)
    rng = random.Random(0)
    drugs, hidden, budget = w["drugs"], w["hidden"], w["budget"]
    model = ref.ListPolicy(w["features"], drugs, hidden)
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)

    def sft():
        ref.sft_epoch(model, optim, w["sft_visits"], drugs, rng)

    def grpo():
        policy = ref.ListPolicy(w["features"], drugs, hidden)
        reference = copy.deepcopy(policy).eval()
        opt = torch.optim.Adam(policy.parameters(), lr=2e-4)
        ref.grpo_iteration(policy, reference, opt, w["grpo_visits"], drugs, budget, rng)

    print(f"torch {torch.__version__} on {w['threads']} thread(s)")
    for name, f in [("sft_visits (one epoch)", sft), ("grpo_rollouts (one iteration)", grpo)]:
        f()  # warm-up
        wall = statistics.median(ref.timed(f, 1) for _ in range(repeats))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                f()
        shares = collections.Counter()
        for event in prof.events():
            shares[category(event)] += event.self_cpu_time_total / 1e6 / repeats
        inside = sum(shares.values())
        print(f"== {name}: {wall * 1e3:.1f} ms, of which {inside * 1e3:.1f} ms in operators (profiled)")
        for what, seconds in shares.most_common():
            print(f"{100 * seconds / wall:5.1f}%  {what}")
        print(f"{100 * (1 - inside / wall):5.1f}%  outside the operators (Python)")
        ops = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in ops)
        for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:8]:
            print(f"        {100 * e.self_cpu_time_total / total:5.1f}% of the operators' time: {e.key}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: torch_reference_profile.py WORKLOAD_JSON")
    main(sys.argv[1])
