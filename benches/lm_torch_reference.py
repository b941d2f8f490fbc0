#!/usr/bin/env python3
"""PyTorch reference of `benches/lm_throughput.rs`: the same work with
transformers (and peft) on the same CPU, with as many threads as burn's
`flex` uses (RAYON_NUM_THREADS, else every core).

    python benches/lm_torch_reference.py --model ~/.cache/rxalign/smollm2-135m-instruct

- prefill_128: one 128-token prompt, `model(ids, use_cache=True)`;
- decode_32: `generate` of 33 greedy tokens after a 16-token prompt, minus
  the prefill of that prompt timed alone: 32 decode steps;
- lora_step_8x128, lora_step_2x512, lora_step_1x1024: PEFT LoRA (rank 8,
  alpha 16, q_proj and v_proj, no dropout) on 1,024 tokens in rows of 128,
  512 and 1,024: forward, mean token cross-entropy, backward, Adam step;
- attention_128, _512, _1024: the attention core alone at SmolLM2-135M's
  shape (9 query heads, 3 key/value heads, head dim 64), one causal row,
  `scaled_dot_product_attention(is_causal=True, enable_gqa=True)` forward
  and backward of the queries, keys and values, as transformers calls it.
Each is run 10 times after one warm-up (the LoRA steps 5); the median is
reported in tokens per second (fp32).
"""

import argparse
import os
import statistics
import time

import torch
from transformers import AutoModelForCausalLM


def median_time(fn, reps=10):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--reps", type=int, default=10)
    a = p.parse_args()
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    print(f"torch {torch.__version__} on {threads} thread(s)")

    prompt = torch.randint(100, 40000, (1, 128))
    with torch.no_grad():
        t = median_time(lambda: model(prompt, use_cache=True).logits[:, -1], a.reps)
    print(f"prefill_128: {128 / t:.1f} tokens/s ({t * 1e3:.1f} ms)")

    short = torch.randint(100, 40000, (1, 16))
    mask = torch.ones_like(short)
    with torch.no_grad():
        pre = median_time(lambda: model(short, use_cache=True).logits[:, -1], a.reps)
        gen = median_time(lambda: model.generate(
            short, attention_mask=mask, max_new_tokens=33, min_new_tokens=33,
            do_sample=False, pad_token_id=0), a.reps)
    print(f"decode_32: {32 / (gen - pre):.1f} tokens/s (generate {gen * 1e3:.1f} ms, prefill {pre * 1e3:.1f} ms)")

    from peft import LoraConfig, get_peft_model
    train = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    train = get_peft_model(train, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj"]))
    train.train()
    opt = torch.optim.Adam([p for p in train.parameters() if p.requires_grad], lr=1e-4)
    for rows, seq in [(8, 128), (2, 512), (1, 1024)]:
        batch = torch.randint(100, 40000, (rows, seq))

        def step():
            logits = train(batch).logits[:, :-1]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad()

        t = median_time(step, max(3, a.reps // 2))
        print(f"lora_step_{rows}x{seq}: {rows * seq / t:.1f} tokens/s ({t:.2f} s)")

    sdpa = torch.nn.functional.scaled_dot_product_attention
    for seq in [128, 512, 1024]:
        q = torch.randn(1, 9, seq, 64, requires_grad=True)
        k = torch.randn(1, 3, seq, 64, requires_grad=True)
        v = torch.randn(1, 3, seq, 64, requires_grad=True)
        w = torch.randn(1, 9, seq, 64)

        def core():
            (sdpa(q, k, v, is_causal=True, enable_gqa=True) * w).sum().backward()
            for x in (q, k, v):
                x.grad = None

        t = median_time(core, a.reps)
        print(f"attention_{seq}: {seq / t:.1f} tokens/s ({t * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
