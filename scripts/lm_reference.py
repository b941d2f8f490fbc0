#!/usr/bin/env python3
"""Expected values for rxalign-lm's parity test, from transformers (fp32, CPU).

    python scripts/lm_reference.py --model DIR [--out DIR/expected.json]

Writes, for the Hugging Face folder DIR (e.g. the output of
convert_smollm2.py), a JSON file with:
  - `logits`: for three prompts, their token ids, the full next-token logits
    at the last position, and at every position the logits of a fixed set of
    probe token ids and the argmax;
  - `greedy`: greedy `generate` of 32 new tokens for a plain prompt and for a
    chat prompt (the chat template's token ids included, to check ours);
  - `nll`: the mean next-token negative log-likelihood (nats per token) of a
    fixed English paragraph, teacher-forced, and its token count.
The file is written atomically (temporary name, then rename).
"""

import argparse
import json
import os
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Aspirin and warfarin taken together raise the risk of",
]
GREEDY_PROMPT = "The capital of France is"
CHAT_PROMPT = "What is the boiling point of water at sea level?"
PARAGRAPH = (
    "The history of medicine shows how societies have changed in their approach "
    "to illness and disease from ancient times to the present. Early medical "
    "traditions include those of Babylon, China, Egypt and India. The Greeks "
    "introduced the concepts of medical diagnosis, prognosis, and advanced "
    "medical ethics. The Hippocratic Oath, still taken by doctors today, was "
    "written in Greece in the 5th century BCE. In the medieval age, surgical "
    "practices inherited from the ancient masters were improved and then "
    "systematized in Rogerius's The Practice of Surgery."
)
NEW_TOKENS = 32
# Token ids whose logits are compared at every position (besides the argmax).
PROBES = list(range(0, 49152, 193))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--out", default=None)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    out = a.out or os.path.join(a.model, "expected.json")
    if a.threads:
        torch.set_num_threads(a.threads)

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    probes = [i for i in PROBES if i < vocab]

    result = {
        "model": os.path.abspath(a.model),
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "probes": probes,
        "logits": [],
        "greedy": [],
    }
    with torch.no_grad():
        for text in PROMPTS:
            ids = tok(text, return_tensors="pt")["input_ids"]
            logits = model(ids).logits[0]
            result["logits"].append({
                "prompt": text,
                "ids": ids[0].tolist(),
                "last": logits[-1].tolist(),
                "probe_logits": logits[:, probes].tolist(),
                "argmax": logits.argmax(-1).tolist(),
            })

        chat_text = tok.apply_chat_template(
            [{"role": "user", "content": CHAT_PROMPT}], tokenize=False, add_generation_prompt=True
        )
        for kind, text in [("plain", GREEDY_PROMPT), ("chat", chat_text)]:
            ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            gen = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                do_sample=False, pad_token_id=tok.pad_token_id,
            )
            new = gen[0, ids.shape[1]:].tolist()
            result["greedy"].append({
                "kind": kind,
                "prompt": GREEDY_PROMPT if kind == "plain" else CHAT_PROMPT,
                "template_text": text,
                "prompt_ids": ids[0].tolist(),
                "new_ids": new,
                "text": tok.decode(new, skip_special_tokens=True),
            })

        ids = tok(PARAGRAPH, return_tensors="pt")["input_ids"]
        logits = model(ids).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="mean")
        result["nll"] = {"text": PARAGRAPH, "ids": ids[0].tolist(), "mean_nll": nll.item(),
                         "tokens_scored": ids.shape[1] - 1}

    for g in result["greedy"]:
        print(f"greedy {g['kind']}: {g['text']!r}")
    print(f"mean NLL of the paragraph: {result['nll']['mean_nll']:.4f} nats/token "
          f"over {result['nll']['tokens_scored']} tokens")
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".expected-", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(result, f)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
