"""Whether a value carries each position's own entry of a parameter, or only earlier ones.

Mixture weights built from the experts' log-probabilities of the observed tokens are legal
when the weight at position t uses only positions before t (a running sum shifted by one:
`pad(cumsum(obs)[..., :-1], (1, 0))`, `cumsum(obs) - obs`) and a peek when it uses t's own
entry (`softmax(cumsum(obs))`: the inclusive sum holds the target's log-probability under
each expert, so the mixture leans toward whichever expert the answer favours). Followed
through the bindings of the names an expression reads and into the module's functions it
calls with the parameter.
"""

from __future__ import annotations

import ast

from auditors import labels as lb

WHOLE, PRIOR = "whole", "prior"
_SHIFTS = ("pad", "roll")
_MAX_DEPTH = 5


def carries(m, g, e, p: str, depth: int = 0) -> str | None:
    """WHOLE when e, in g, holds each position's own entry of parameter p; PRIOR when it
    holds p only shifted (a slice dropping an end, `pad`, `roll`, or `cumsum(p) - p`); None
    when it does not hold p."""
    if depth > _MAX_DEPTH or e is None:
        return None
    if type(e) is ast.Name:
        if e.id == p:
            return WHOLE
        bound = g.binding(e.id)
        return carries(m, g, bound, p, depth + 1) if bound is not None else None
    if type(e) is ast.Call:
        h = m.resolve(e.func, g)
        if h is not None and h is not g and h.qualname != "<module>":
            return _through(m, g, h, e, p, depth)
        found = _joined(carries(m, g, x, p, depth) for x in ast.iter_child_nodes(e))
        return PRIOR if found and lb.call_name(e.func) in _SHIFTS else found
    if type(e) is ast.Subscript:
        found = carries(m, g, e.value, p, depth)
        return PRIOR if found and _drops_an_end(e.slice) else found
    if type(e) is ast.BinOp and type(e.op) is ast.Sub and carries(m, g, e.right, p, depth) == WHOLE \
            and carries(m, g, e.left, p, depth):
        return PRIOR  # `cumsum(obs) - obs`: the sum of the entries before each one
    if isinstance(e, (ast.expr, ast.keyword)):  # (depth counts bindings and calls followed, not nesting)
        return _joined(carries(m, g, x, p, depth) for x in ast.iter_child_nodes(e))
    return None


def normalizes_own_entry(m, g, p: str) -> bool:
    """A return of g normalizes (softmax) something holding each position's own entry of p."""
    for r in m.under(g, m.nodes_of(ast.Return)):
        for n in lb.walk(r.value) if r.value is not None else ():
            if type(n) is ast.Call and lb.call_name(n.func) in ("softmax", "normalize") and n.args \
                    and carries(m, g, n.args[0], p) == WHOLE:
                return True
    return False


def parameter_for(h, call: ast.Call, i: int) -> str | None:
    """The parameter of h that the call's i-th positional argument fills."""
    skip = 1 if h.is_method and type(call.func) is ast.Attribute else 0
    return h.params[i + skip] if i + skip < len(h.params) else None


def _through(m, g, h, call: ast.Call, p: str, depth: int) -> str | None:
    """What h returns of p when the call hands it p (or something holding it)."""
    out = []
    for i, a in enumerate(call.args):
        held = carries(m, g, a, p, depth + 1)
        q = parameter_for(h, call, i) if held else None
        if q is None:
            continue
        for r in m.under(h, m.nodes_of(ast.Return)):
            got = carries(m, h, r.value, q, depth + 1)
            out.append(PRIOR if got and held == PRIOR else got)
    return _joined(out)


def _joined(results) -> str | None:
    results = [r for r in results if r]
    return WHOLE if WHOLE in results else (PRIOR if results else None)


def _drops_an_end(index) -> bool:
    """`[..., :-1]`, `[:, 1:]`: a slice that shifts the positions by dropping an end."""
    for it in index.elts if type(index) is ast.Tuple else [index]:
        if type(it) is ast.Slice and it.step is None and (
                (type(it.lower) is ast.Constant and it.lower.value) or
                (type(it.upper) is ast.UnaryOp and type(it.upper.op) is ast.USub)):
            return True
    return False
