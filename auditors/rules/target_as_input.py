"""The scored targets handed to the model that predicts them (RULES.md §2 C1; §3).

`F.cross_entropy(model(x, y)[0], y)` scores a prediction that was computed with the
answers as an input: whatever the model does with `y` (an extra embedding of the next
token, a gate on it), the distribution at position t has seen x_{t+1}. The rule looks
at cross-entropy / NLL calls whose prediction argument contains a call that receives
the very expression being scored as the target (the same name, or the same source).
Legal counterparts: `loss = model(x, y)` (the model computes its own training loss and
returns no prediction to score), `F.cross_entropy(model(x), y)`, teacher forcing on a
shifted copy (`decoder(y[:, :-1])` scored against `y[:, 1:]`).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("target-as-input", "future_token_peek", "the scored targets are an input of the prediction",
                "RULES.md §2 C1, §3")
SCORES = lb.CE_FUNCS | {"nll_loss"}


def check(m):
    out = []
    for f, ev in m.events("call"):
        node = ev.node
        if ev.data["name"] not in SCORES or len(node.args) < 2:
            continue
        prediction, target = node.args[0], node.args[1]
        root = _root(target)
        if root is None:
            continue
        same = {lb.src(target), root}
        for call in lb.walk(prediction):
            if isinstance(call, ast.Call) and any(
                    (isinstance(a, ast.Name) and a.id == root) or lb.src(a) in same
                    for a in [*call.args, *(k.value for k in call.keywords)]):
                out.append(raw(RULE, f, node, ev.ctx, "error", "medium",
                               f"scores `{lb.src(target)}` with a prediction computed from `{root}` itself "
                               f"(`{lb.src(call)[:60]}`): the model saw the answers"))
                break
    return out


def _root(e) -> str | None:
    """The name a target expression reads: `y`, `y[0]`, `y.reshape(-1)`, `y.view(-1).long()`."""
    while isinstance(e, (ast.Subscript, ast.Attribute, ast.Call)):
        if isinstance(e, ast.Subscript) and any(isinstance(i, ast.Slice) for i in (
                e.slice.elts if isinstance(e.slice, ast.Tuple) else [e.slice])):
            return None  # a shifted copy (`x[1:]`, `x[0, 1:]`) is teacher forcing territory: not judged here
        e = e.value if not isinstance(e, ast.Call) else e.func
    return e.id if isinstance(e, ast.Name) else None
