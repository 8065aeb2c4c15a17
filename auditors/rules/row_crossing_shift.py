"""A previous-token feature computed over the flattened batch (RULES.md §8, §2 C1).

`flat = ids.reshape(-1); prev = torch.roll(flat, 1)`, then `(flat * A) ^ (prev * B)`:
a BigramHash (or a SmearGate-style mix) written over the whole batch as one row. Each
row's first position then reads the last token of the row before it, which is another
document when evaluation batches documents (or sorts them by length), and a token
after it when rows are overlapping windows taken out of order. Per-row shifts
(`roll(x, 1, dims=1)` with the first column reset, `cat([pad, x[:, :-1]], 1)`) keep
rows apart and are the legal form; so does any reset of the rolled copy or comparison
of the ids in the same function (a mask at row or document starts). Like
smear-without-bos-mask, an error when the file splits the validation stream into
documents, else a warning.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw
from auditors.rules.smear_bos import documents_split
from auditors.shift_mixing import Scan, flattens, resets, view_base

RULE = RuleInfo("row-crossing-shift", "cross_doc_leak", "a previous-token feature shifted across the rows of a batch",
                "RULES.md §8, §2 C1")


def previous_across_rows(node, flat=()) -> str | None:
    """The tensor whose previous position `node` reads, counted across row ends: a roll by
    one of a flattened view, or a flattened view's `[:-1]` padded at its start. (A roll
    without dims flattens too, but of a token stream that is already one row: legal.)"""
    rolled = shapes.roll_of(node)
    if rolled:
        base, shift, _ = rolled
        if shift == 1 and (flattens(base) or (type(base) is ast.Name and base.id in flat)):
            return lb.src(view_base(base))
        return None
    if type(node) is ast.Call and node.args and lb.call_name(node.func) in ("cat", "concatenate") \
            and type(node.args[0]) in (ast.List, ast.Tuple) and len(node.args[0].elts) == 2:
        last = node.args[0].elts[1]
        if type(last) is ast.Subscript and type(last.value) is ast.Name and last.value.id in flat \
                and type(last.slice) is ast.Slice and last.slice.lower is None and lb.src(last.slice.upper or last) == "-1":
            return last.value.id
    return None


def _candidate(node) -> bool:
    """A roll by one, or a concatenation of two parts whose second drops the last position:
    what a shift across rows needs (looked for before any function is scanned)."""
    rolled = shapes.roll_of(node)
    if rolled:
        return rolled[1] == 1
    if type(node) is ast.Call and node.args and lb.call_name(node.func) in ("cat", "concatenate") \
            and type(node.args[0]) in (ast.List, ast.Tuple) and len(node.args[0].elts) == 2:
        last = node.args[0].elts[1]
        return type(last) is ast.Subscript and type(last.slice) is ast.Slice and last.slice.upper is not None
    return False


def check(m):
    lines = sorted(n.lineno for n in m.nodes_of(ast.Call) if _candidate(n))
    if not lines:
        return []
    scan, out = Scan(previous_across_rows), []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.may_hold(f.node, lines):
            continue
        found = list(scan.mixes(f))
        if not found or resets(f):
            continue
        for node, mixed in found:
            out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error" if documents_split(m) else "warning", "medium",
                           f"combines `{mixed}` with its previous position over the flattened batch: each row's "
                           "first token reads the last token of another row"))
    return out
