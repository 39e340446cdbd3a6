"""`alchemist inspect`: what a dataset holds, why rows were rejected, and whether it balances."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


from curation import warehouse
from warehouse_schemas import registry

_BINARY_PREVIEW = 16


def balance(root: str | Path) -> dict:
    """The contract's two equations, from the committed tables.

    inputs:     every manifest row is a candidate source or one input-level rejection;
    candidates: every candidate clip is in `clips` or has one clip-level rejection.
    """
    root = Path(root)
    rejections = warehouse.read_table(root, "rejections").to_pylist()
    clip_table = warehouse.read_table(root, "clips")
    clips = set(clip_table["clip_key"].to_pylist())
    scored = set(warehouse.read_table(root, "clip_scores")["clip_key"].to_pylist())
    input_rejected = [r["input_key"] for r in rejections if r["level"] == "input"]
    clip_rejected = [r["clip_key"] for r in rejections if r["level"] == "clip"]
    inputs_with_candidates = set(clip_table["input_key"].to_pylist()) | {
        r["input_key"] for r in rejections if r["level"] == "clip"}
    return {
        "manifest_rows": _planned_inputs(root),
        "input_rejections": len(input_rejected),
        "inputs_with_candidates": len(inputs_with_candidates),
        "candidate_clips": len(clips) + len(set(clip_rejected)),
        "accepted_clips": len(clips),
        "clip_rejections": len(clip_rejected),
        "clips_also_rejected": len(clips & set(clip_rejected)),
        "unscored_candidates": len((clips | set(clip_rejected)) - scored),
    }


def _planned_inputs(root: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in sorted((root / "_plan").glob("part-*.parquet")))


def reason_counts(root: str | Path) -> list[tuple[str, str, str, int]]:
    rows = warehouse.read_table(root, "rejections").select(["level", "stage", "reason"]).to_pylist()
    counts = Counter((r["level"], r["stage"], r["reason"]) for r in rows)
    return [(*k, n) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _preview(row: dict) -> dict:
    return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) and len(v) > _BINARY_PREVIEW else v)
            for k, v in row.items()}


def summary(root: str | Path, samples: int = 3) -> str:
    root = Path(root)
    lines = [f"dataset {root}"]
    success = root / "_SUCCESS"
    if success.exists():
        meta = json.loads(success.read_text())
        lines.append(f"committed: {len(meta['shards'])} shard(s), profile {meta['config']['profile']}, "
                     f"code {meta['code_version']}")
    else:
        lines.append(f"not committed yet: {len(warehouse.committed_shards(root))} shard(s) done")
    lines.append("\nrows per table:")
    for name in registry.TABLES:
        n = warehouse.read_table(root, name).num_rows
        lines.append(f"  {name:<12} {n:>8}   (schema v{registry.version_of(name)})")
    lines.append("\nrejections by level / stage / reason:")
    lines += [f"  {lvl:<10} {stage:<11} {reason:<26} {n:>6}" for lvl, stage, reason, n in reason_counts(root)]
    b = balance(root)
    lines.append("\nbalance:")
    lines.append(f"  manifest rows {b['manifest_rows']} = {b['input_rejections']} rejected at input + "
                 f"{b['inputs_with_candidates']} that became {b['candidate_clips']} candidate clips")
    lines.append(f"  candidate clips {b['candidate_clips']} = {b['accepted_clips']} accepted + "
                 f"{b['clip_rejections']} rejected")
    problems = contract_violations(root)
    lines.append("  contract: " + ("ok" if not problems else "VIOLATED: " + "; ".join(problems)))
    clips = warehouse.read_table(root, "clips").slice(0, samples)
    if clips.num_rows:
        lines.append("\nsample clips:")
        lines += [f"  {_preview(r)}" for r in clips.to_pylist()]
    return "\n".join(lines)




def contract_violations(root: str | Path) -> list[str]:
    """Every way the committed tables break the contract (README "Tables"); empty when sound."""
    root = Path(root)
    tables = {name: warehouse.read_table(root, name) for name in registry.TABLES}
    problems = []
    for name, table in tables.items():
        key = table.schema.field(0).name
        keys = table[key].to_pylist()
        if name not in ("clip_scores", "rejections") and len(keys) != len(set(keys)):
            problems.append(f"{name}: duplicate {key}s")
    accepted = set(tables["clips"]["clip_key"].to_pylist())
    rejections = tables["rejections"].to_pylist()
    clip_level = [r["clip_key"] for r in rejections if r["level"] == "clip"]
    if len(clip_level) != len(set(clip_level)):
        problems.append("rejections: a clip has more than one clip-level rejection")
    if accepted & set(clip_level):
        problems.append(f"clips also rejected at clip level: {sorted(accepted & set(clip_level))[:3]}")
    input_level = [r["input_key"] for r in rejections if r["level"] == "input"]
    candidate_inputs = set(tables["clips"]["input_key"].to_pylist()) | {
        r["input_key"] for r in rejections if r["level"] == "clip"}
    if set(input_level) & candidate_inputs:
        problems.append("an input row has both candidate clips and an input-level rejection")
    for name in registry.CHILD_TABLES:
        orphans = set(tables[name]["clip_key"].to_pylist()) - accepted
        if orphans:
            problems.append(f"{name}: rows for clips not in `clips`: {sorted(orphans)[:3]}")
    for name in registry.CANDIDATE_TABLES:
        orphans = set(tables[name]["clip_key"].to_pylist()) - accepted - set(clip_level)
        if orphans:
            problems.append(f"{name}: rows for clips that are no candidate: {sorted(orphans)[:3]}")
    b = balance(root)
    if b["manifest_rows"] != b["input_rejections"] + b["inputs_with_candidates"]:
        problems.append(f"manifest rows {b['manifest_rows']} != input rejections {b['input_rejections']} "
                        f"+ inputs with candidates {b['inputs_with_candidates']}")
    return problems
