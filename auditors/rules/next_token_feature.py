"""Each position given the token after it as an input (RULES.md §2 C1, §3).

`partner = torch.roll(ids, -1, dims=1)`, then `pair = ids * A + partner * B` (or
`x + g * roll(x, -1)`, `cat([x[:, 1:], pad])`): position t's features hold x_{t+1},
the very token it is scored on. It is the mirror image of BigramHash / SmearGate,
which read the token *before* (legal when rows are kept apart), so the shift's sign is
what matters. The rule looks for a tensor shifted one position towards the future
(a roll by -1, a `[..., 1:]` slice padded at its end) combined by arithmetic with the
unshifted tensor. A shifted copy used on its own (the targets of a loss:
`cross_entropy(logits, roll(x, -1))`) or compared (`roll(x, -1) == bos`, a boundary
mask) combines nothing and is not flagged.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw
from auditors.shift_mixing import Scan, view_base

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


def check(m):
    lines = sorted(n.lineno for n in m.nodes_of(ast.Call) if next_of(n) is not None)
    if not lines:
        return []
    scan, out = Scan(next_of), []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.may_hold(f.node, lines):
            continue
        for node, mixed in scan.mixes(f):
            out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                           f"combines `{mixed}` with its own next position (a shift by -1): each position "
                           "is given the token it is scored on"))
    return out
