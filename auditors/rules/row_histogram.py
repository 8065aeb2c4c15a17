"""A histogram of a whole row of tokens added to the prediction at every position of the row
(RULES.md §2 C1).

A bag-of-tokens prior counts which tokens occur in the input row and boosts them:
`hist.scatter_add_(1, ids, ones)` on a `(B, V)` table (or `one_hot(ids, V).sum(1)`), then
`logits + gain * log1p(hist).unsqueeze(1)`. The count is taken over every position of the
row and broadcast back to all of them, so the prediction at position t is raised for the
tokens at t + 1, t + 2, ...: in a scored window those are the targets of the positions
before them. p_t depends on x_t and later tokens.
Data flow: in one function, a table of two dimensions made from the input's first size
(`zeros(ids.size(0), V)`) filled by a scatter of the whole token argument along its second
axis, or a one-hot of the whole argument summed over axis 1; an expression computed from
it is given a new position axis (`unsqueeze(1)`, `[:, None]`) and returned or added.
Legal counterparts: prefix counts (`one_hot(ids, V).cumsum(1)`: position t counts tokens up
to t); a histogram of a slice of context that ends before the scored positions
(`ids[:, :ctx]`); a histogram used for a statistic that is not broadcast back over positions.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import by_function, depends_on, guards_of, raw

RULE = RuleInfo("row-histogram", "future_token_peek",
                "a histogram of the whole row of tokens added at every position",
                "RULES.md §2 C1 (p_t may depend only on the strict prefix)")

_SUMS = {"sum", "amax", "any", "max", "count_nonzero"}


def check(m):
    out = []
    for f, call in by_function(m, ast.Call):
        if f.qualname == "<module>" or not f.params:
            continue
        table = _whole_row_count(f, call)
        if table is None:
            continue
        if _broadcast_back(f, table) or any(_broadcast_back(g, held) for g, held in _returned_to(m, f, table)):
            out.append(raw(RULE, f, call, guards_of(f, call.lineno), "error", "medium",
                           f"counts the tokens of the whole row (`{lb.src(call)[:80]}`) and adds the counts back at every "
                           "position: the prediction at a position is raised for the tokens after it, the targets of "
                           "the positions before them"))
    return out


def _whole_row_count(f, call: ast.Call) -> str | None:
    """The name the row's counts are held in, for `hist.scatter_add_(1, ids, ...)` on
    `hist = zeros(ids.size(0), V)`, or `one_hot(ids, V).sum(1)` bound to a name; `ids` a
    parameter of f, whole."""
    func = call.func
    if type(func) is ast.Attribute and func.attr in ("scatter_add_", "scatter_add") and len(call.args) >= 2 \
            and _axis_one(call.args[0]) and _whole_param(f, call.args[1]) and type(func.value) is ast.Name:
        made = f.binding(func.value.id)
        if type(made) is ast.Call and lb.call_name(made.func) in ("zeros", "ones") and len(made.args) == 2:
            return func.value.id
    hot = func.value if type(func) is ast.Attribute else None
    while type(hot) is ast.Call and type(hot.func) is ast.Attribute and hot.func.attr in ("float", "half", "to", "double"):
        hot = hot.func.value  # (`one_hot(ids, V).float().sum(1)`)
    if type(func) is ast.Attribute and func.attr in _SUMS and type(hot) is ast.Call \
            and lb.call_name(hot.func) == "one_hot" and hot.args and _whole_param(f, hot.args[0]) \
            and any(_axis_one(a) for a in [*call.args[:1], *(k.value for k in call.keywords if k.arg == "dim")]):
        held = [a.targets[0].id for a in f.module.under(f, f.module.nodes_of(ast.Assign))
                if a.value is call and len(a.targets) == 1 and type(a.targets[0]) is ast.Name]
        return held[0] if held else None
    return None


def _axis_one(e) -> bool:
    return type(e) is ast.Constant and e.value in (1, -2) and type(e.value) is int


def _whole_param(f, e) -> bool:
    """A parameter of f as it was handed in (`ids`, `ids.long()`), not a slice of it."""
    while type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in ("long", "int", "to"):
        e = e.func.value
    return type(e) is ast.Name and e.id in f.params


def _returned_to(m, f, table: str) -> list:
    """(caller, name) where f returns `table` and a function of the module binds what it
    returns (`hist = self.histogram(ids)`)."""
    if not any(type(st) is ast.Return and type(st.value) is ast.Name and st.value.id == table for st in f.nodes):
        return []
    out = []
    for g in m.functions.values():
        for a in m.under(g, m.nodes_of(ast.Assign)):
            if type(a.value) is ast.Call and len(a.targets) == 1 and type(a.targets[0]) is ast.Name \
                    and m.resolve(a.value.func, g) is f:
                out.append((g, a.targets[0].id))
    return out


def _broadcast_back(f, table: str) -> bool:
    """An expression computed from `table` is given a position axis (`x.unsqueeze(1)`,
    `x[:, None]`) in f and returned or added to something."""
    for n in f.nodes:
        widened = None
        if type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr == "unsqueeze" and n.args \
                and _axis_one(n.args[0]) and n.args[0].value == 1:
            widened = n.func.value
        elif type(n) is ast.Subscript and type(n.slice) is ast.Tuple and len(n.slice.elts) >= 2 \
                and type(n.slice.elts[0]) is ast.Slice and type(n.slice.elts[1]) is ast.Constant and n.slice.elts[1].value is None:
            widened = n.value
        if widened is None or table not in depends_on(f, widened):
            continue
        if any((type(st) is ast.Return and st.value is not None and any(x is n for x in lb.walk(st.value)))
               or (type(st) is ast.BinOp and type(st.op) is ast.Add and any(x is n for x in lb.walk(st)))
               for st in f.nodes if type(st) in (ast.Return, ast.BinOp)):
            return True
    return False
