"""Each position given the token after it as an input (RULES.md §2 C1, §3).

`partner = torch.roll(ids, -1, dims=1)`, then `pair = ids * A + partner * B` (or
`x + g * roll(x, -1)`, `cat([x[:, 1:], pad])`): position t's features hold x_{t+1},
the very token it is scored on. It is the mirror image of BigramHash / SmearGate,
which read the token *before* (legal when rows are kept apart), so the shift's sign is
what matters. The rule looks for a tensor shifted one position towards the future
(a roll by -1, a `[..., 1:]` slice padded at its end) combined by arithmetic with the
unshifted tensor; also a roll by +1 along the rows (`roll(ids, 1, dims=1)`, a BigramHash's
previous token) whose first column is never reset: it wraps the row's last token around
into position 0, so every row carries a later token from its first position on. A shifted copy used on its own (the targets of a loss:
`cross_entropy(logits, roll(x, -1))`) or compared (`roll(x, -1) == bos`, a boundary
mask) combines nothing and is not flagged.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw
from auditors.shift_mixing import Scan, flattens, resets, view_base

RULE = RuleInfo("next-token-feature", "future_token_peek", "each position is given the next token as an input",
                "RULES.md §2 C1, §3")


def next_of(node, flat=()) -> str | None:
    """The source of the tensor whose next position `node` reads at every position."""
    rolled = shapes.roll_of(node)
    if rolled:
        return lb.src(view_base(rolled[0])) if rolled[1] == -1 else None
    if type(node) is ast.Call and node.args:
        name = lb.call_name(node.func)
        if name in ("cat", "concatenate") and type(node.args[0]) in (ast.List, ast.Tuple) and node.args[0].elts:
            return _forward_slice(node.args[0].elts[0])  # cat([x[:, 1:], pad], 1)
        if name == "pad":
            return _forward_slice(node.args[0])  # F.pad(x[:, 1:], (0, 1))
    return None


def _forward_slice(e) -> str | None:
    """`x[..., 1:]`: every position but the first, so that position t holds x_{t+1}."""
    if type(e) is not ast.Subscript:
        return None
    last = e.slice.elts[-1] if type(e.slice) is ast.Tuple else e.slice
    if type(last) is ast.Slice and last.upper is None and last.step is None \
            and type(last.lower) is ast.Constant and last.lower.value == 1:
        return lb.src(view_base(e.value))
    return None


def wrapped_previous(node, flat=()) -> str | None:
    """`roll(x, 1, dims=1)`: the previous position along each row, and at a row's first
    position its *last* one, which wraps around (unless that column is reset)."""
    rolled = shapes.roll_of(node)
    if rolled and rolled[1] == 1 and rolled[2] and not flattens(rolled[0]) \
            and not (type(rolled[0]) is ast.Name and rolled[0].id in flat):
        return lb.src(view_base(rolled[0]))
    return None


def check(m):
    calls = m.nodes_of(ast.Call)
    lines = sorted(n.lineno for n in calls if next_of(n) is not None or wrapped_previous(n) is not None)
    if not lines:
        return []
    ahead, wrapped, out = Scan(next_of), Scan(wrapped_previous), []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.may_hold(f.node, lines):
            continue
        for node, mixed in ahead.mixes(f):
            out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                           f"combines `{mixed}` with its own next position (a shift by -1): each position "
                           "is given the token it is scored on"))
        found = list(wrapped.mixes(f))
        if found and not resets(f):
            for node, mixed in found:
                out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                               f"combines `{mixed}` with a roll by one along its rows that wraps around: each row's first "
                               "position is given the row's last token, a later one, because that column is never reset"))
    return out
