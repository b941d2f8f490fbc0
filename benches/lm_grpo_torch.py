#!/usr/bin/env python3
"""PyTorch reference of `benches/lm_grpo.rs`: the same GRPO iteration of
FLAME's list editor with transformers and peft on the same CPU, with as many
threads as burn's `flex` uses (RAYON_NUM_THREADS, else every core), replaying
the work the Rust bench wrote (its workload JSON).

    python benches/lm_grpo_torch.py --model ~/.cache/rxalign/smollm2-135m-instruct \
        target/lm-grpo-workload.json

The model: SmolLM2-135M-Instruct (fp32) under PEFT LoRA with the workload's
rank, alpha and targets (rank 32, alpha 64, all seven projections), no
dropout, the base frozen.

- collect: for every visit and prompt (add, then remove), `generate` of the
  prompt's tokens with sampling (temperature 1, no top-k or top-p), KV cache
  on, LoRA on, the group through `num_return_sequences`, and as many new
  tokens as the group's longest answer in the Rust run
  (`min_new_tokens = max_new_tokens`), so that every answer is at least as
  long as ours. Rollouts per second = the workload's rollouts / the time;
  generated tokens per second = the tokens generate produced (group x that
  length, summed over the prompts) / the time; also the same rate counting
  the Rust run's generated tokens (the same count the Rust bench divides).
- update: the workload's samples (each a full sequence: prompt, earlier
  lines, the line) left-padded into one batch as the Rust update does;
  the reference forward with the adapters off (`disable_adapter()`, no
  gradient), the forward with LoRA, both computing logits only at the last
  `parts` positions (`logits_to_keep`, as the Rust head does); per-token
  log-probabilities of the answer tokens (end of answer banned after a
  line's first token, as ours), the PPO-clipped surrogate with the
  workload's fixed advantages summed over each line's tokens, plus the k3 KL
  (weight from the workload), backward, gradients clipped by norm, AdamW
  (no weight decay: Adam) step. Training tokens per second = the answer
  tokens scored / the time; the context tokens the forwards read are
  printed too.

Each is run `--reps` times after one warm-up; the median is reported.
"""

import argparse
import json
import os

import torch
from transformers import AutoModelForCausalLM

# The sibling script's timer (one warm-up, then the median of `reps`); this
# folder is on the path when a script of it runs.
from lm_torch_reference import median_time


def left_pad(seqs, pad):
    """Rows padded on the left to the longest, with the attention mask and
    positions counted from each row's first real token."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--only", choices=["collect", "update"], help="time one part only")
    p.add_argument("workload")
    a = p.parse_args()
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(a.workload) as f:
        w = json.load(f)
    print(f"torch {torch.__version__} on {threads} thread(s) (the Rust bench ran on {w['threads']})")

    from peft import LoraConfig, get_peft_model
    base = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    lora = w["lora"]
    model = get_peft_model(base, LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], lora_dropout=0.0,
                                            target_modules=lora["targets"]))
    eos = w["eos"]

    # (a) collect
    model.eval()
    produced = sum(len(ans["new_tokens"]) * max(1, max(ans["new_tokens"])) for ans in w["answers"])

    def collect():
        with torch.no_grad():
            for ans in w["answers"]:
                ids = torch.tensor([ans["prompt"]])
                n = max(1, max(ans["new_tokens"]))
                out = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                    temperature=w["temperature"], top_k=0, top_p=1.0,
                    num_return_sequences=len(ans["new_tokens"]), max_new_tokens=n, min_new_tokens=n,
                    use_cache=True, pad_token_id=eos, eos_token_id=eos)
                assert out.shape == (len(ans["new_tokens"]), ids.shape[1] + n), out.shape

    if a.only != "update":
        t = median_time(collect, a.reps)
        print(f"collect_{w['visits']}x{w['group']}: {w['rollouts'] / t:.3f} rollouts/s, "
              f"{produced / t:.1f} generated tokens/s ({produced} tokens: each group's longest Rust answer per member), "
              f"{w['generated_tokens'] / t:.1f} Rust-counted tokens/s ({w['generated_tokens']} tokens) "
              f"({t:.2f} s per collection)")
    if a.only == "collect":
        return

    # (b) update
    samples = w["samples"]
    parts = max(1, max(s["answer"] for s in samples))
    ids, mask, positions = left_pad([s["tokens"] for s in samples], eos)
    n = len(samples)
    width = ids.shape[1]
    targets = ids[:, width - parts:]  # [n, parts], right-aligned answers
    answer = torch.zeros((n, parts))
    inside = torch.zeros((n, parts, 1))
    adv = torch.zeros((n, parts))
    old = torch.zeros((n, parts))
    for i, s in enumerate(samples):
        k = s["answer"]
        answer[i, parts - k:] = 1.0
        inside[i, parts - k + 1:] = 1.0
        adv[i, parts - k:] = s["advantage"]
        old[i, parts - k:] = torch.tensor(s["old_logp"])
    ban = torch.zeros((1, 1, base.config.vocab_size))
    ban[0, 0, eos] = -1.0e9
    bias = inside * ban  # [n, parts, vocab]

    def logp_of(logits):
        # logits [n, parts + 1, vocab]: the last `parts` + 1 positions; the
        # first `parts` predict the last `parts` tokens.
        lp = torch.log_softmax(logits[:, :-1] / w["temperature"] + bias, dim=-1)
        return lp.gather(2, targets.unsqueeze(-1)).squeeze(-1) * answer  # [n, parts]

    model.train()
    trainable = [q for q in model.parameters() if q.requires_grad]

    def step():
        opt = torch.optim.AdamW(trainable, lr=w["lr"], weight_decay=0.0)
        with torch.no_grad(), model.disable_adapter():
            ref = logp_of(model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                logits_to_keep=parts + 1).logits)
        logp = logp_of(model(input_ids=ids, attention_mask=mask, position_ids=positions,
                             logits_to_keep=parts + 1).logits)
        ratio = torch.exp(logp - old)
        clipped = ratio.clamp(1.0 - w["clip"], 1.0 + w["clip"])
        surrogate = (torch.minimum(ratio * adv, clipped * adv) * answer).sum(1)
        r = ref - logp
        k3 = ((torch.exp(r) - r - 1.0) * answer).sum(1).mean()
        loss = -surrogate.mean() + w["kl"] * k3
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, w["grad_norm"])
        opt.step()
        opt.zero_grad()
        assert torch.isfinite(loss)

    t = median_time(step, a.reps)
    print(f"update_{w['visits']}x{w['group']}: {w['answer_tokens'] / t:.1f} answer tokens scored/s "
          f"({w['answer_tokens']} tokens of {n} samples), {w['context_tokens'] / t:.1f} context tokens read/s "
          f"({w['context_tokens']} tokens, {n * width} with padding) ({t:.2f} s per update)")


if __name__ == "__main__":
    main()
