"""How far a window trained on reaches against the windows scored before it in a loop.

Score-first test-time training is legal only when what it trains on was scored first.
In form a loop may score, then train, and still train ahead: the trained slice of the
validation data ends past every slice scored before it (`val[(c + 1) * n:(c + 2) * n + 1]`
after `val[c * n:(c + 1) * n + 1]`), or, in a loop over chunks, the trained span ends at
chunk `c + 2` (`min((ci + 2) * chunk, total)`, through any names) or takes the windows of
`plan[c + 1]` while the scoring reaches chunk `c` only. The ttt-before-score rule asks
this of each backward pass whose order is score-first.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.rules import always_greater, depends_on


def runs_ahead(f, ev, scores_in) -> str | None:
    """Score-first in form, but the trained window reaches past the scored one: in the
    innermost loop, the slice of validation data the loss is computed from
    (`nxt = val[(c + 1) * n:(c + 2) * n + 1]`) ends after every slice scored before it
    (`cur = val[c * n:(c + 1) * n + 1]`), for any values of the names involved."""
    if not ev.ctx.loops or type(ev.node) is not ast.Call or type(ev.node.func) is not ast.Attribute:
        return None
    loop = ev.ctx.loops[-1]
    idx = next((i for i, st in enumerate(loop.body) if st.lineno <= ev.line <= st.end_lineno), None)
    if idx is None:
        return None
    loss = ev.node.func.value
    trained = _windows(f, f.binding(loss.id) if type(loss) is ast.Name else loss)
    scored = [w for st in loop.body[:idx] if scores_in(st) for w in _windows(f, st)]
    for base, upper in trained:
        ends = [u for b, u in scored if b == base]
        if ends and all(always_greater(upper, u) for u in ends):
            return (f"the window it trains on (`{lb.src(upper)}` is its end) runs past the window scored before it "
                    "in the same loop: those tokens are trained on before they are scored")
    return _chunk_ahead(f, ev, trained, scores_in)


def _chunk_ahead(f, ev, trained, scores_in) -> str | None:
    """In a loop over chunks `for c in range(n)`, the trained span ends at `(c + 2) * size`
    (computed through any names) or covers the windows of chunk `plan[c + 1]`, while the
    scoring before it in that loop reaches no further than chunk `c` (`windows[c]`): chunk
    c + 1 is trained on in this iteration and scored in the next."""
    for loop in ev.ctx.loops:
        if type(loop) is not ast.For or type(loop.target) is not ast.Name:
            continue
        var = loop.target.id
        idx = next((i for i, st in enumerate(loop.body) if st.lineno <= ev.line <= st.end_lineno), None)
        ahead = max((k for _, upper in trained for k in _offsets(f, upper, var)), default=None)
        if idx is None or ahead is None:
            continue
        scoring = [st for st in loop.body[:idx] if scores_in(st)]
        reach = max((k for st in scoring for k in _offsets(f, st, var, scaled=False)), default=0)
        if scoring and ahead >= reach + 2:
            return (f"the span it trains on covers chunk `{var} + {ahead - 1}` of the loop over `{var}`, whose scoring "
                    f"reaches chunk `{var}{f' + {reach}' if reach else ''}` only: that chunk is trained on before it is scored")
    return None


def _offsets(f, node, var: str, scaled: bool = True) -> set[int]:
    """Where `node` (or the bindings of the names it is computed from) ends, in chunks past
    `var`: k for `(var + k) * n`, k + 1 for the chunk `plan[var + k]` picks. Unless scaled:
    k for any `var + k`, 0 for a bare `var` (how far the scoring reaches)."""
    exprs = [node] + [b for b in map(f.binding, depends_on(f, node, depth=6)) if b is not None]
    out = set()
    for e in exprs:
        for n in ast.walk(e):
            if scaled and type(n) is ast.Subscript:
                k = _plus(n.slice, var)
                out |= {k + 1} if k is not None else set()
            terms = (n.left, n.right) if type(n) is ast.BinOp and type(n.op) is ast.Mult else () if scaled else (n,)
            for t in terms:
                k = _plus(t, var)
                if k is not None and (k > 0 or not scaled):
                    out.add(k)
    return out


def _plus(e, var: str) -> int | None:
    """k for `var + k` (an integer k), 0 for `var` itself."""
    if type(e) is ast.Name and e.id == var:
        return 0
    if type(e) is ast.BinOp and type(e.op) is ast.Add and type(e.left) is ast.Name and e.left.id == var \
            and type(e.right) is ast.Constant and type(e.right.value) is int:
        return e.right.value
    return None


def _windows(f, expr) -> list[tuple[str, ast.expr]]:
    """(base, end) of the slices of validation data that `expr` reads, through names
    bound once (`cur = val[a:b]`)."""
    if expr is None:
        return []
    out, seen, todo = [], set(), [expr]
    while todo:
        node = todo.pop()
        for n in ast.walk(node):
            if type(n) is ast.Subscript and type(n.slice) is ast.Slice and n.slice.upper is not None \
                    and "VAL" in f.labels_of(n.value):
                out.append((lb.src(n.value), n.slice.upper))
            elif type(n) is ast.Name and n.id not in seen:
                seen.add(n.id)
                bound = f.binding(n.id)
                if bound is not None and len(seen) < 20:
                    todo.append(bound)
    return out
