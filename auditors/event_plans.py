"""A loop driven by a generator of (kind, chunk) events (RULES.md §4).

`for kind, ci in ttt_plan(n, epochs): if kind == "score": ... else: train(...)` scores or
trains on chunk `ci` as the generator says. Score-first when, in the generator, every
`yield "train", ci` follows a `yield "score", ci` of the same chunk inside the same loop
over the chunks; train-first when the training events come from a loop of their own that
runs before the loop that yields the scoring ones (whole-validation TTT).
"""

from __future__ import annotations

import ast

from auditors.labels import walk


def plan_verdict(f, loop, line: int, scores) -> str | None:
    """"ok", a reason, or None (no such plan). `line` is the training statement in the loop
    body; `scores(stmt)` says whether a statement scores."""
    if type(loop) is not ast.For or type(loop.target) is not ast.Tuple or len(loop.target.elts) != 2 \
            or not all(type(e) is ast.Name for e in loop.target.elts) or type(loop.iter) is not ast.Call:
        return None
    kind_var, index_var = (e.id for e in loop.target.elts)
    plan = f.module.resolve(loop.iter.func, f)
    if plan is None:
        return None
    yields = [(y, y.value.elts[0].value) for y in f.module.under(plan, f.module.nodes_of(ast.Yield))
              if type(y.value) is ast.Tuple and len(y.value.elts) == 2 and type(y.value.elts[0]) is ast.Constant]
    split = _split(loop, kind_var, line, scores)
    if split is None or not yields:
        return None
    named, training_named = split  # the training branch is `kind == named`, or its `else`
    trains = [y for y, k in yields if (k == named) == training_named]
    scoring = [y for y, k in yields if (k == named) != training_named]
    if not trains or not scoring:
        return None
    loops = [n for n in walk(plan.node) if type(n) in (ast.For, ast.While)]

    def chunk_loop(y):  # the outermost loop of the generator around this yield
        around = [n for n in loops if n.lineno <= y.lineno <= n.end_lineno]
        return min(around, key=lambda n: n.lineno) if around else None

    for t in trains:
        home = chunk_loop(t)
        if home is not None and any(chunk_loop(s) is home and s.lineno < t.lineno for s in scoring):
            continue  # scored earlier in the same pass over the chunks
        if all(s.lineno > t.lineno for s in scoring):
            return f"its plan ({plan.name}()) yields the training events before the scoring ones (line {t.lineno})"
        return None
    return "ok"


def _split(loop, kind_var: str, line: int, scores) -> tuple | None:
    """(constant, whether the training is in the branch where `kind == constant`) for a loop
    body split by `if kind == "score": ... else: ...` with the scoring in the other branch;
    None when the body is not split that way."""
    for st in loop.body:
        if type(st) is not ast.If or not (st.lineno <= line <= st.end_lineno) or not st.orelse:
            continue
        test = st.test
        if not (type(test) is ast.Compare and type(test.left) is ast.Name and test.left.id == kind_var
                and len(test.ops) == 1 and type(test.ops[0]) is ast.Eq and type(test.comparators[0]) is ast.Constant):
            return None
        in_body = st.body[0].lineno <= line <= st.body[-1].end_lineno
        if any(scores(s) for s in (st.orelse if in_body else st.body)):
            return test.comparators[0].value, in_body
        return None
    return None
