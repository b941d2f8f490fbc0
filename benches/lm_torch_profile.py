#!/usr/bin/env python3
"""Where PyTorch spends the LoRA training step of `lm_torch_reference.py`
(SmolLM2-135M, PEFT LoRA rank 8 on q_proj and v_proj, 8 x 128 tokens,
forward, mean token cross-entropy, backward, Adam), by torch.profiler:
the self CPU time of each aten op over one step after a warm-up, largest
first, and the step's wall time. Threads as burn's `flex` uses
(RAYON_NUM_THREADS, else every core). With `--prefill`, the same of ten
prefills of one 128-token prompt into a KV cache instead (the
`lm/prefill_128` benchmark's work).

    python benches/lm_torch_profile.py --model ~/.cache/rxalign/smollm2-135m-instruct [--prefill]
"""

import argparse
import os
import time

import torch
from peft import LoraConfig, get_peft_model
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForCausalLM


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--prefill", action="store_true", help="profile prefill instead of the LoRA step")
    a = p.parse_args()
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    if a.prefill:
        model.eval()
        prompt = torch.randint(100, 40000, (1, 128))
        with torch.no_grad():
            model(prompt, use_cache=True)
            t = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(10):
                    model(prompt, use_cache=True).logits[:, -1]
            wall = time.perf_counter() - t
        print(f"torch {torch.__version__} on {threads} thread(s); attention: {model.config._attn_implementation}")
        print(f"ten prefills, profiled: {wall:.2f} s")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top))
        return
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj"]))
    model.train()
    print(f"torch {torch.__version__} on {threads} thread(s); attention: {model.config._attn_implementation}")
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    batch = torch.randint(100, 40000, (8, 128))

    def step():
        logits = model(batch).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    wall = time.perf_counter() - t
    print(f"one step, profiled: {wall:.2f} s")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top))


if __name__ == "__main__":
    main()
