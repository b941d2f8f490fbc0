#!/usr/bin/env python3
"""PyTorch reference of `benches/train_throughput.rs`: the same list policy,
the same data, the same SFT epoch and GRPO iteration, written as a PyTorch
user would write them, timed on the same CPU with as many threads as
burn's `flex` uses.

    cargo bench -p rxalign-train --bench train_throughput   # writes the workload
    python3 benches/torch_reference.py target/train-throughput-workload.json

The policy: `nn.EmbeddingBag(mode="sum")` over the visit's feature indices
(codes, previous drugs, note tokens) and over the list's drugs, a hidden
layer with ReLU, a linear head over the 2*drugs+1 actions (add d at d,
remove d at drugs+d, stop at 2*drugs), invalid actions masked with -1e9.

SFT: one epoch over the workload's 256 visits: each ground truth corrupted
(each drug missing with probability 0.5, Binomial(|G|, 0.2) wrong drugs
added), every state of the expert sequence (extras removed, then misses
added, in increasing drug index, then stop), shuffled, batches of 256
states, cross-entropy of the expert action, Adam (lr 2e-3).

GRPO: one iteration: 32 training visits x 8 rollouts from empty lists,
sampled in lockstep (no_grad) until stop or 30 steps, Jaccard outcome,
group-normalised advantages; then one PPO-clipped update (epsilon 0.2) over
every sampled state with the KL to a frozen copy (weight 0.02), gradient
norm clipped at 1, Adam (lr 2e-4).
"""

import copy
import json
import random
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

MASKED = -1.0e9


class ListPolicy(nn.Module):
    def __init__(self, features, drugs, hidden):
        super().__init__()
        self.drugs = drugs
        self.visit = nn.EmbeddingBag(features, hidden, mode="sum", padding_idx=features - 1)
        self.list = nn.EmbeddingBag(drugs + 1, hidden, mode="sum", padding_idx=drugs)
        self.hidden = nn.Linear(2 * hidden, hidden)
        self.actions = nn.Linear(hidden, 2 * drugs + 1)

    def forward(self, visit_idx, visit_off, list_idx, list_off, valid):
        v = self.visit(visit_idx, visit_off)
        l = self.list(list_idx, list_off)
        h = F.relu(self.hidden(torch.cat([v, l], dim=1)))
        return self.actions(h) + valid


def batch(states, bags, drugs):
    """States (visit index, set of listed drugs) as EmbeddingBag inputs and
    the action mask (built with tensor ops, not a Python loop over drugs)."""
    visit_idx, visit_off, list_idx, list_off, list_rows = [], [], [], [], []
    for row, (v, listed) in enumerate(states):
        visit_off.append(len(visit_idx))
        visit_idx.extend(bags[v])
        list_off.append(len(list_idx))
        list_idx.extend(listed)
        list_rows.extend([row] * len(listed))
    list_idx = torch.tensor(list_idx, dtype=torch.long)
    listed = torch.zeros(len(states), drugs, dtype=torch.bool)
    listed[torch.tensor(list_rows, dtype=torch.long), list_idx] = True
    valid = torch.zeros(len(states), 2 * drugs + 1)
    valid[:, :drugs].masked_fill_(listed, MASKED)  # adding a listed drug
    valid[:, drugs : 2 * drugs].masked_fill_(~listed, MASKED)  # removing an unlisted one
    return (
        torch.tensor(visit_idx, dtype=torch.long),
        torch.tensor(visit_off, dtype=torch.long),
        list_idx,
        torch.tensor(list_off, dtype=torch.long),
        valid,
    )


def jaccard(a, b):
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def sft_epoch(model, optim, visits, drugs, rng):
    bags = [v["bag"] for v in visits]
    samples = []
    for i, v in enumerate(visits):
        truth = set(v["drugs"])
        start = {d for d in truth if rng.random() >= 0.5}
        others = [d for d in range(drugs) if d not in truth]
        extras = sum(rng.random() < 0.2 for _ in truth)
        start |= set(rng.sample(others, min(extras, len(others))))
        listed = set(start)
        for d in sorted(start - truth):
            samples.append((i, frozenset(listed), drugs + d))
            listed.discard(d)
        for d in sorted(truth - start):
            samples.append((i, frozenset(listed), d))
            listed.add(d)
        samples.append((i, frozenset(listed), 2 * drugs))
    rng.shuffle(samples)
    for k in range(0, len(samples), 256):
        chunk = samples[k : k + 256]
        inputs = batch([(v, l) for v, l, _ in chunk], bags, drugs)
        targets = torch.tensor([a for _, _, a in chunk], dtype=torch.long)
        loss = F.cross_entropy(model(*inputs), targets)
        optim.zero_grad()
        loss.backward()
        optim.step()


def grpo_iteration(model, reference, optim, visits, drugs, budget, rng):
    bags = [v["bag"] for v in visits]
    chosen = [rng.randrange(len(visits)) for _ in range(32)]
    episodes = [(v, set()) for v in chosen for _ in range(8)]
    steps = [[] for _ in episodes]  # (visit, list before, slot, old log-prob)
    done = [False] * len(episodes)
    with torch.no_grad():
        for _ in range(budget):
            active = [i for i in range(len(episodes)) if not done[i]]
            if not active:
                break
            states = [(episodes[i][0], frozenset(episodes[i][1])) for i in active]
            logp = F.log_softmax(model(*batch(states, bags, drugs)), dim=1)
            slots = torch.multinomial(logp.exp(), 1).squeeze(1)
            for row, i in enumerate(active):
                slot = int(slots[row])
                steps[i].append((states[row][0], states[row][1], slot, float(logp[row, slot])))
                if slot == 2 * drugs:
                    done[i] = True
                elif slot < drugs:
                    episodes[i][1].add(slot)
                else:
                    episodes[i][1].discard(slot - drugs)
    outcomes = [jaccard(l, set(visits[v]["drugs"])) - jaccard(set(), set(visits[v]["drugs"])) for v, l in episodes]
    advantages = []
    for g in range(0, len(episodes), 8):
        group = outcomes[g : g + 8]
        mean, std = statistics.fmean(group), statistics.pstdev(group)
        advantages.extend((o - mean) / (std + 1e-6) for o in group)
    flat = [(s, a) for i, ep in enumerate(steps) for s, a in zip(ep, [advantages[i]] * len(ep))]
    inputs = batch([(s[0], s[1]) for s, _ in flat], bags, drugs)
    slots = torch.tensor([s[2] for s, _ in flat], dtype=torch.long).unsqueeze(1)
    old = torch.tensor([s[3] for s, _ in flat]).unsqueeze(1)
    adv = torch.tensor([a for _, a in flat]).unsqueeze(1)
    with torch.no_grad():
        ref_logp = F.log_softmax(reference(*inputs), dim=1)
    logp = F.log_softmax(model(*inputs), dim=1)
    ratio = (logp.gather(1, slots) - old).exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    p = logp.exp()
    kl = (p * (logp.clamp_min(-60) - ref_logp.clamp_min(-60))).sum(1).mean()
    loss = -surrogate.mean() + 0.02 * kl
    optim.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()


def timed(f, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(path):
    w = json.load(open(path, encoding="utf-8"))
    threads = w["threads"]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = random.Random(0)
    drugs, hidden, budget = w["drugs"], w["hidden"], w["budget"]
    sft_visits, grpo_visits = w["sft_visits"], w["grpo_visits"]

    model = ListPolicy(w["features"], drugs, hidden)
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    sft_epoch(model, optim, sft_visits, drugs, rng)  # warm-up
    t_sft = timed(lambda: sft_epoch(model, optim, sft_visits, drugs, rng), 5)

    def grpo():
        policy = ListPolicy(w["features"], drugs, hidden)
        reference = copy.deepcopy(policy).eval()
        opt = torch.optim.Adam(policy.parameters(), lr=2e-4)
        grpo_iteration(policy, reference, opt, grpo_visits, drugs, budget, rng)

    grpo()  # warm-up
    t_grpo = timed(grpo, 5)
    print(f"torch {torch.__version__} on {threads} thread(s); {w['features']} features, {drugs} drugs")
    print(f"sft_visits: {len(sft_visits) / t_sft:.1f} visits/s ({t_sft * 1e3:.1f} ms per epoch of {len(sft_visits)} visits)")
    print(f"grpo_rollouts: {256 / t_grpo:.1f} rollouts/s ({t_grpo * 1e3:.1f} ms per iteration of 256 rollouts)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: torch_reference.py WORKLOAD_JSON")
    main(sys.argv[1])
