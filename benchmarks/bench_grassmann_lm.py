"""Grassmann-flow LM vs a size-matched causal Transformer on an offline character corpus.

The corpus is built from text every Python install ships: the Zen of Python (``this``) and the
docstrings of a fixed list of standard-library modules and their public members, restricted to
printable ASCII. The first 90 % is training text, the last 10 % validation. Both models get the
same embedding / head, depth, width, context, batch, optimiser and number of steps; the
Transformer's FFN width is chosen so that its parameter count matches the Grassmann model's.

    python benchmarks/bench_grassmann_lm.py --batch 16 --steps 120   # the recorded CPU run (d=128, 4 layers)
    python benchmarks/bench_grassmann_lm.py --device cuda --steps 2000   # a longer run for a GPU

Writes benchmarks/results/grassmann_lm.json and .md with the validation perplexities and the
ratio Grassmann / Transformer (issue 11: fail only above 1.6).
"""
from __future__ import annotations

import argparse
import codecs
import importlib
import inspect
import json
import platform
import sys
import time
from pathlib import Path

import torch

from graphrec.models.grassmann import CharLanguageModel

MODULES = (
    "abc argparse ast base64 bisect calendar collections contextlib copy csv dataclasses datetime decimal difflib "
    "enum fractions functools gzip heapq hmac html inspect io ipaddress itertools json logging math numbers "
    "operator os pathlib pickle pprint queue random re shlex shutil socket statistics string struct subprocess "
    "tarfile tempfile textwrap threading timeit typing unittest urllib.parse uuid warnings weakref zipfile"
).split()


def build_corpus() -> str:
    """Zen of Python + module and public-member docstrings of ``MODULES`` (printable ASCII)."""
    import this  # noqa: F401 - prints the Zen once; its text is ROT13 in this.s

    parts = [codecs.decode(this.s, "rot13")]
    for name in MODULES:
        module = importlib.import_module(name)
        parts.append(inspect.getdoc(module) or "")
        for attr in sorted(getattr(module, "__all__", None) or [a for a in dir(module) if not a.startswith("_")]):
            obj = getattr(module, attr, None)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", "") == module.__name__:
                parts.append(inspect.getdoc(obj) or "")
    text = "\n\n".join(p for p in parts if p)
    return "".join(c if (32 <= ord(c) < 127 or c == "\n") else " " for c in text)


def size_matched_ff(d_model: int, n_layers: int, grassmann_params: int, transformer_params_4d: int) -> int:
    """FFN width making the Transformer's parameter count closest to the Grassmann model's."""
    per_unit = n_layers * (2 * d_model + 1)
    return 4 * d_model + round((grassmann_params - transformer_params_4d) / per_unit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/grassmann_lm")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    text = build_corpus()
    cut = int(0.9 * len(text))
    train, valid = text[:cut], text[cut:]
    valid = "".join(c for c in valid if c in set(train))
    epochs = 4 if args.steps % 4 == 0 else 1
    common = dict(d_model=args.d_model, n_layers=args.layers, context_length=args.context, batch_size=args.batch,
                  steps_per_epoch=args.steps // epochs, n_epochs=epochs, lr=args.lr, random_state=args.seed,
                  device=args.device, verbose=False)
    from graphrec.models.grassmann import CausalTransformerLM, GrassmannLM

    vocab = len(set(train))
    g_params = sum(p.numel() for p in GrassmannLM(vocab, args.d_model, args.layers, args.rank, max_len=args.context).parameters())
    t4_params = sum(p.numel() for p in CausalTransformerLM(vocab, args.d_model, args.layers, max_len=args.context).parameters())
    ff = size_matched_ff(args.d_model, args.layers, g_params, t4_params)

    rows = {}
    for arch, extra in (("grassmann", dict(rank=args.rank)), ("transformer", dict(dim_feedforward=ff))):
        start = time.perf_counter()
        lm = CharLanguageModel(arch, **common, **extra).fit(train)
        seconds = time.perf_counter() - start
        rows[arch] = dict(
            parameters=lm.n_parameters_, train_seconds=round(seconds, 1),
            final_train_loss=round(lm.history_[-1]["train_loss"], 4),
            valid_perplexity=round(lm.perplexity(valid), 4), train_perplexity=round(lm.perplexity(train[:len(valid)]), 4),
        )
        print(arch, rows[arch], flush=True)
    ratio = rows["grassmann"]["valid_perplexity"] / rows["transformer"]["valid_perplexity"]
    result = dict(
        command="python " + " ".join(sys.argv), corpus_chars=len(text), train_chars=len(train), valid_chars=len(valid),
        vocab_size=vocab, config=vars(args), transformer_dim_feedforward=ff, models=rows,
        perplexity_ratio_grassmann_over_transformer=round(ratio, 4), issue_limit=1.6, passed=ratio <= 1.6,
        python=platform.python_version(), torch=torch.__version__, machine=f"{platform.machine()} {args.threads} threads",
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Grassmann-flow LM vs size-matched causal Transformer (character level)", "",
        f"Command: `{result['command']}`  ", f"Corpus: Zen of Python + stdlib docstrings, {len(train)} train / {len(valid)} validation characters, vocabulary {vocab}; "
        f"Python {result['python']}, torch {result['torch']}, {result['machine']}.", "",
        "| model | parameters | train s | final train loss | train ppl | valid ppl |", "|---|---|---|---|---|---|",
    ]
    for arch, r in rows.items():
        lines.append(f"| {arch} | {r['parameters']} | {r['train_seconds']} | {r['final_train_loss']} | {r['train_perplexity']} | {r['valid_perplexity']} |")
    lines += ["", f"Perplexity ratio Grassmann / Transformer: **{ratio:.3f}** (issue limit 1.6: {'pass' if ratio <= 1.6 else 'FAIL'}).",
              "Training seconds are wall time of each model's run, one after the other; on a shared machine they are not a speed comparison."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result["perplexity_ratio_grassmann_over_transformer"]))


if __name__ == "__main__":
    main()
