"""`alchemist eval-entities`: score entity extractors on the labelled caption set.

Always scores the offline spaCy extractor; with `--model` also an LLM backend (the paper's
Figure 7 prompt through `transformers` on CPU/GPU, or `vllm` on GPUs). For each extractor and
part (train, heldout): precision and recall per entity type, verdict accuracy, and the
captions where words or verdict disagree with the labels (curation/entities/eval/README.md).

  alchemist eval-entities                                   # spaCy, both parts
  alchemist eval-entities --model models/mistral --limit 20 # + the transformers backend
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from curation.entities import make_extractor
from curation.entities.evaluate import PARTS, Score, evaluate, load_part
from curation.entities.parse import KEYS
from curation.errors import OperatorError

DEFAULT_SHOWN = 15  # disagreements printed per extractor and part; --show -1 prints all


def run_eval(extractors: list, parts: tuple[str, ...] = PARTS,
             limit: int | None = None) -> dict[str, dict[str, Score]]:
    """{extractor id: {part: Score}} for set-up extractors."""
    items = {part: load_part(part)[:limit] for part in parts}
    return {ex.id: {part: evaluate(ex, rows) for part, rows in items.items()} for ex in extractors}


_SHORT = {"background": "bg", "subject": "subj", "object": "obj"}


def format_report(results: dict[str, dict[str, Score]], shown: int = DEFAULT_SHOWN) -> str:
    header = ["part", "n", "verdict_acc"] + [f"{_SHORT[k]}_{m}" for k in KEYS for m in ("P", "R")]
    lines = []
    for ex_id, parts in results.items():
        lines += [ex_id, "  ".join(f"{h:>11}" for h in header)]
        for part, s in parts.items():
            r = s.rates()
            cells = [part, str(s.n), f"{r['verdict_accuracy']:.3f}"] + [
                f"{r[f'{k}_{m}']:.3f}" for k in KEYS for m in ("precision", "recall")]
            lines.append("  ".join(f"{c:>11}" for c in cells))
    for ex_id, parts in results.items():
        for part, s in parts.items():
            rows = s.disagreements if shown < 0 else s.disagreements[:shown]
            lines.append(f"\n{ex_id} / {part}: {len(s.disagreements)} disagreements"
                         + (f" (first {len(rows)})" if len(rows) < len(s.disagreements) else ""))
            lines += [_disagreement(d) for d in rows]
    return "\n".join(lines)


def _disagreement(d: dict) -> str:
    verdict = d["expected"] if d["expected"] == d["got"] else f"{d['expected']} -> {d['got']}"
    words = "; ".join(f"{k} +{v['extra']} -{v['missed']}" for k, v in d["words"].items())
    return f"  {d['id']} [{verdict}] {d['caption']}" + (f"\n      {words}" if words else "")


def add_eval_entities_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval-entities", help="score entity extractors on the labelled caption set",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=(*PARTS, "all"), default="all")
    p.add_argument("--model", help="also score an LLM backend with this model (hub id or local dir)")
    p.add_argument("--backend", choices=("transformers", "vllm"), default="transformers",
                   help="the LLM backend for --model")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--limit", type=int, help="score only the first N captions of each part")
    p.add_argument("--show", type=int, default=DEFAULT_SHOWN,
                   help="disagreements to print per extractor and part (-1: all)")
    p.add_argument("--json", dest="json_out", help="also write rates and disagreements here")
    p.set_defaults(func=_eval_entities)
    return p


def _eval_entities(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise OperatorError(f"--limit must be at least 1, not {args.limit}")
    extractors = [make_extractor("spacy")]
    if args.model:
        extractors.append(make_extractor(args.backend, model=args.model,
                                         max_new_tokens=args.max_new_tokens))
    for ex in extractors:
        ex.setup()
    parts = PARTS if args.part == "all" else (args.part,)
    results = run_eval(extractors, parts, args.limit)
    print(format_report(results, args.show))
    if args.json_out:
        doc = {ex_id: {part: dict(n=s.n, **s.rates(), disagreements=s.disagreements)
                       for part, s in by_part.items()} for ex_id, by_part in results.items()}
        Path(args.json_out).write_text(json.dumps(doc, indent=1))
    return 0
