"""Training steps run by a context manager around the scoring (RULES.md §4).

`with slot.bind(h, y) as delta: score(...)` calls the class's `__enter__` before the
block and its `__exit__` after it, though no call of either appears in the code. A
gradient step taken in `__exit__` follows the scoring in the block (score-first); one
taken in `__enter__` precedes it (fit on the window, then score it).
"""

from __future__ import annotations

import ast

from auditors.rules import ctx_of


class WithSite:
    """A `with` statement standing in for the call of `__enter__` / `__exit__` it implies."""

    def __init__(self, g, node: ast.With):
        self.node, self.ctx, self.line = node, ctx_of(g, node), node.lineno


def with_verdicts(m, f, scores) -> list:
    """(function, site, verdict) for each `with` over an object of f's class when f is its
    `__enter__` or `__exit__`; `scores(g, stmt)` says whether a statement of g scores."""
    if f.name not in ("__enter__", "__exit__") or not f.cls:
        return []
    out = []
    for node in m.nodes_of(ast.With):
        g = _enclosing(m, node)
        if g is None or not any(f.cls in _context_classes(m, g, item.context_expr) for item in node.items):
            continue
        scored = next((st.lineno for st in node.body if scores(g, st)), None)
        if scored is None:
            verdict = None
        elif f.name == "__exit__":
            verdict = "ok"  # the block scored first
        else:
            verdict = f"fits on the window when the `with` block opens, then scores it inside the block (line {scored})"
        out.append((g, WithSite(g, node), verdict))
    return out


def _enclosing(m, node):
    around = [g for g in m.functions.values() if g.qualname != "<module>" and g.node.lineno <= node.lineno <= g.node.end_lineno]
    return max(around, key=lambda g: g.node.lineno) if around else m.functions["<module>"]


def _context_classes(m, g, expr) -> list[str]:
    """The classes of the object a `with` enters: `Cls(...)`, a name bound to one, or a
    method of one that returns `self` (`slot.bind(h, y)`)."""
    if type(expr) is ast.Call and type(expr.func) is ast.Attribute:
        classes = m._receiver_classes(expr.func.value, g)
        return [c for c in classes if _returns_self(m, f"{c}.{expr.func.attr}")]
    return m._receiver_classes(expr, g)


def _returns_self(m, q: str) -> bool:
    f = m.functions.get(q)
    returns = [r for r in m.under(f, m.nodes_of(ast.Return))] if f is not None else []
    return bool(returns) and all(type(r.value) is ast.Name and r.value.id == "self" for r in returns)
