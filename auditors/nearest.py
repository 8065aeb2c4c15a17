"""Labels of an expression read from the bindings just above it.

The data-flow pass keeps one set of labels per name and function: a name bound to training
batches early in `main` and to validation chunks further down holds both, everywhere in
`main`. Where that merge would decide a finding (a backward pass on `x, y` that the same
`main` later rebinds to validation chunks), the expression is read again with each name
taken from its nearest binding above it: the last statement that binds it, in the block
of the expression or a block around it. That is what the expression reads, unless a loop
around the expression binds the name again further down (the loop then carries that value
around to the next pass) or the name is updated in place (`x += ...`): then the merged
labels stand. A branch between the two that may bind the name again adds what it binds.
"""

from __future__ import annotations

import ast

from auditors.labels import walk

_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def nearest_labels(f, expr: ast.expr, line: int, depth: int = 0) -> frozenset:
    """Labels of expr (on `line` of function f) with its names read from their nearest bindings."""
    overlay = {}
    for name in {n.id for n in walk(expr) if type(n) is ast.Name and type(n.ctx) is ast.Load}:
        bound = _nearest_bindings(f, name, line)
        if bound:
            overlay[name] = frozenset().union(*(nearest_labels(f, value, at, depth + 1) if depth < 3 else f.labels_of(value)
                                                for value, at in bound))
    return f.labels_of(expr, overlay)


def _nearest_bindings(f, name: str, line: int) -> list[tuple[ast.expr, int]]:
    """[(value, line)] of the last assignment to `name` above `line` in a block that holds
    `line` too, with those in branches between the two that may run (`if focus: x = cat((x,
    fx))`); empty when there is none, an in-place update, or a loop around `line` that binds
    the name again below it."""
    m = f.module
    binds = [(a.lineno, a) for a in m.under(f, m.nodes_of(ast.Assign)) if any(
        type(n) is ast.Name and n.id == name for t in a.targets for n in walk(t))]
    if not binds or any(type(a.target) is ast.Name and a.target.id == name for a in m.under(f, m.nodes_of(ast.AugAssign))):
        return []
    loops = [lp for kind in _LOOPS for lp in m.under(f, m.nodes_of(kind)) if lp.lineno < line <= lp.end_lineno]
    if any(lp.lineno <= at <= lp.end_lineno and at > line for lp in loops for at, _ in binds):
        return []  # (rebound further down the loop: the next pass reads that)
    above = [(at, a) for at, a in binds if at < line and _holds(f, a, line)]
    if not above:
        return []
    at = max(at for at, _ in above)
    return [(_element(a, name), where) for where, a in binds if at <= where < line]


def _element(a: ast.Assign, name: str) -> ast.expr:
    """What the assignment gives `name`: `tr, va = load_train(), load_val()` gives tr the first."""
    for t in a.targets:
        if type(t) is ast.Tuple and type(a.value) is ast.Tuple and len(t.elts) == len(a.value.elts):
            for name_at, value in zip(t.elts, a.value.elts):
                if type(name_at) is ast.Name and name_at.id == name:
                    return value
    return a.value


def _holds(f, stmt: ast.stmt, line: int) -> bool:
    """stmt runs whenever `line` does: no `if` around stmt ends above `line` (a branch that
    may not have run). A `with` body always runs, and a loop that ended leaves the names of
    its last pass."""
    m = f.module
    return all(n.end_lineno >= line for n in m.under(f, m.nodes_of(ast.If)) if n.lineno < stmt.lineno <= n.end_lineno)
