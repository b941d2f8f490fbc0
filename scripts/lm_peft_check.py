#!/usr/bin/env python3
"""Checks that a LoRA adapter exported by rxalign-lm loads in Python's `peft`
and gives the logits rxalign computed with it.

    python scripts/lm_peft_check.py --model DIR --adapter ADAPTER_DIR

ADAPTER_DIR holds adapter_model.safetensors and adapter_config.json (PEFT's
format, written by rxalign_lm::peft::save_adapter) and rxalign_logits.json:
{"ids": [...], "logits": [[...vocab...] per position]} from our model with
the adapter on. Exits 1 when the largest difference exceeds --tol.
"""

import argparse
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--tol", type=float, default=5e-4)
    a = p.parse_args()
    with open(os.path.join(a.adapter, "rxalign_logits.json")) as f:
        ours = json.load(f)
    base = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    ids = torch.tensor([ours["ids"]])
    with torch.no_grad():
        plain = base(ids).logits[0]
        model = PeftModel.from_pretrained(base, a.adapter).eval()
        adapted = model(ids).logits[0]
    want = torch.tensor(ours["logits"])
    diff = (adapted - want).abs().max().item()
    moved = (adapted - plain).abs().max().item()
    print(f"peft: largest |rxalign - peft| = {diff:.2e} (tolerance {a.tol:.0e}); "
          f"the adapter moves logits by up to {moved:.2e}")
    if moved < 10 * a.tol:
        print("error: the adapter barely changes the logits; the check would prove nothing",
              file=sys.stderr)
        return 1
    if diff > a.tol:
        print("error: peft's logits differ from rxalign's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
