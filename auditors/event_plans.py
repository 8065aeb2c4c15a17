"""A loop driven by a generator of (kind, chunk) events (RULES.md §4).

`for kind, ci in ttt_plan(n, epochs): if kind == "score": ... else: train(...)` scores or
trains on chunk `ci` as the generator says. Score-first when, in the generator, every
`yield "train", ci` follows a `yield "score", ci` of the same chunk inside the same loop
over the chunks; train-first when the training events come from a loop of their own that
runs before the loop that yields the scoring ones (whole-validation TTT).

A loop over a sorted work list of records (`for st in build_schedule(n): if st.phase ==
"score": ...`, the list of `Step(chunk, "score")` and `Step(chunk, "update")` sorted by a key
or by the records' natural order) runs in the order the sort gives: score-first when the
scoring phase sorts before the training phase of the same chunk.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
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


def schedule_verdict(f, loop, line: int, scores) -> str | None:
    """"ok", a reason, or None (no such schedule): `for st in build_schedule(n):` (a function
    returning, or a class iterating over, a sorted list of records `Step(chunk, "score")` and
    `Step(chunk, "update")`) with the body split by `if st.phase == "score": ... else: ...`.
    The sort decides the order: natural order compares the fields as declared (chunk, then
    the phase's text: "adapt" < "score"), a key `(st.chunk, RANK[st.phase])` the ranks."""
    if type(loop) is not ast.For or type(loop.target) is not ast.Name or type(loop.iter) is not ast.Call:
        return None
    split = _attribute_split(loop, loop.target.id, line, scores)
    if split is None:
        return None
    attr, constant, training_named = split
    m = f.module
    maker = m.resolve(loop.iter.func, f)
    if maker is None and type(loop.iter.func) is ast.Name:
        maker = m.functions.get(f"{loop.iter.func.id}.__init__")  # a class whose instances iterate over its list
    if maker is None:
        return None
    records = [(lb.call_name(c.func), c) for c in walk(maker.node) if type(c) is ast.Call and type(c.func) is ast.Name
               and lb.call_name(c.func) in _record_classes(m)]
    sort = next((c for c in walk(maker.node) if type(c) is ast.Call and lb.call_name(c.func) in ("sorted", "sort")), None)
    if not records or sort is None or len({cls for cls, _ in records}) != 1:
        return None
    fields = _record_classes(m)[records[0][0]]
    if attr not in fields:
        return None
    phases = {_field_value(c, fields, attr) for _, c in records} - {None}
    training = {p for p in phases if (p == constant) == training_named}
    scoring = phases - training
    if len(training) != 1 or len(scoring) != 1:
        return None
    key = next((k.value for k in sort.keywords if k.arg == "key"), None)
    order = _sort_order(m, key, fields, attr)
    if order is None:
        return None
    phase_first, rank = order
    t, s = rank(training.pop()), rank(scoring.pop())
    if t is None or s is None or t == s:
        return None
    if s < t:
        return "ok"
    return ("its schedule sorts each chunk's training step before its scoring step" if not phase_first
            else "its schedule sorts every training step before the scoring steps")


def _attribute_split(loop, var: str, line: int, scores) -> tuple | None:
    """(field, constant, whether the training is in the branch where `var.field == constant`)."""
    for st in loop.body:
        if type(st) is not ast.If or not (st.lineno <= line <= st.end_lineno) or not st.orelse:
            continue
        test = st.test
        if not (type(test) is ast.Compare and type(test.left) is ast.Attribute and type(test.left.value) is ast.Name
                and test.left.value.id == var and len(test.ops) == 1 and type(test.ops[0]) is ast.Eq
                and type(test.comparators[0]) is ast.Constant and isinstance(test.comparators[0].value, str)):
            return None
        in_body = st.body[0].lineno <= line <= st.body[-1].end_lineno
        if any(scores(s) for s in (st.orelse if in_body else st.body)):
            return test.left.attr, test.comparators[0].value, in_body
        return None
    return None


def _record_classes(m) -> dict[str, list[str]]:
    """NamedTuple and dataclass classes of the module -> their fields in declared order."""
    def fields(c):
        return [st.target.id for st in c.body if type(st) is ast.AnnAssign and type(st.target) is ast.Name]
    return m.once("record classes", lambda m: {c.name: fields(c) for c in m.nodes_of(ast.ClassDef) if fields(c)})


def _field_value(c: ast.Call, fields: list[str], attr: str):
    """The constant a record construction gives the field `attr` (by position or keyword)."""
    i = fields.index(attr)
    given = c.args[i] if i < len(c.args) else next((k.value for k in c.keywords if k.arg == attr), None)
    return given.value if type(given) is ast.Constant and isinstance(given.value, str) else None


def _sort_order(m, key, fields: list[str], attr: str):
    """(whether the phase is the first thing compared, phase -> its rank) for the sort's key:
    none (the fields as declared, the phase by its text) or a lambda returning a tuple of
    fields, the phase's field or a table lookup of it (`RANK[st.phase]`)."""
    if key is None:
        return fields.index(attr) == 0, lambda p: p
    if type(key) is not ast.Lambda or len(key.args.args) != 1 or type(key.body) is not ast.Tuple or not key.body.elts:
        return None
    var = key.args.args[0].arg

    def phase_rank(e):
        if type(e) is ast.Attribute and type(e.value) is ast.Name and e.value.id == var and e.attr == attr:
            return lambda p: p
        if type(e) is ast.Subscript and type(e.slice) is ast.Attribute and e.slice.attr == attr and type(e.value) is ast.Name:
            table = m.functions["<module>"].binding(e.value.id)
            if type(table) is ast.Dict:
                ranks = {k.value: v.value for k, v in zip(table.keys, table.values)
                         if type(k) is ast.Constant and type(v) is ast.Constant}
                return ranks.get
        return None
    ranked = [phase_rank(e) for e in key.body.elts]
    at = next((i for i, r in enumerate(ranked) if r is not None), None)
    return (at == 0, ranked[at]) if at is not None else None
