"""Parse an extractor's raw output into the three entity lists, never evaluating code.

Order (issue 4): JSON first; then a literal-only parse of a Python-style dict (Figure 7's own
example uses single quotes) with `ast.literal_eval` on the extracted `{...}` span, under a size
cap so a runaway generation cannot cost more than a few kilobytes of parsing; then type checks:
exactly the keys background / subject / object, each a list of strings. Surrounding chatter
("Sure! Output: {...} Hope this helps") is tolerated: the first balanced `{...}` span is used.
Empty strings (Figure 7 writes `['']` for "none") are dropped and items are stripped.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass

KEYS = ("background", "subject", "object")
MAX_SPAN_CHARS = 4096  # a dict of a caption's entity words is a few hundred characters


@dataclass(frozen=True)
class Parsed:
    lists: dict[str, list[str]] | None  # None when the output is not a valid entity dict
    error: str = ""  # why not, one line

    @property
    def ok(self) -> bool:
        return self.lists is not None


def find_dict_span(text: str) -> str | None:
    """The first balanced `{...}` in `text`, honouring quoted strings; None if there is none."""
    start = text.find("{")
    while start >= 0:
        depth, quote, escaped = 0, None, False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
        # unbalanced from this brace (e.g. an apostrophe opened a fake string): try the next
        start = text.find("{", start + 1)
    return None


def _load(span: str) -> object:
    try:
        return json.loads(span)
    except (ValueError, RecursionError):
        pass
    if len(span) > MAX_SPAN_CHARS:
        raise ValueError(f"not JSON, and {len(span)} chars is over the {MAX_SPAN_CHARS}-char "
                         "cap for a Python-literal parse")
    try:
        return ast.literal_eval(span)  # literals only: no names, calls or attribute access
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(f"neither JSON nor a Python literal ({type(e).__name__})") from None


def check_lists(obj: object) -> dict[str, list[str]]:
    """Type-check a loaded object; return the cleaned lists or raise ValueError."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a dict, got {type(obj).__name__}")
    keys = set(obj)
    if keys != set(KEYS):
        raise ValueError(f"keys must be {list(KEYS)}, got {sorted(map(str, keys))}")
    out: dict[str, list[str]] = {}
    for key in KEYS:
        value = obj[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{key!r} must be a list of strings, got {value!r:.80}")
        out[key] = [v.strip() for v in value if v.strip()]
    return out


def parse_output(raw: str | None) -> Parsed:
    if raw is None:
        return Parsed(None, "no output")
    span = find_dict_span(raw)
    if span is None:
        return Parsed(None, "no {...} dict in the output")
    try:
        return Parsed(check_lists(_load(span)))
    except ValueError as e:
        return Parsed(None, str(e))
