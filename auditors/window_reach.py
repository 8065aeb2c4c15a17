"""How far a window trained on reaches against the windows scored before it in a loop.

Score-first test-time training is legal only when what it trains on was scored first.
In form a loop may score, then train, and still train ahead: the trained slice of the
validation data ends past every slice scored before it (`val[(c + 1) * n:(c + 2) * n + 1]`
after `val[c * n:(c + 1) * n + 1]`), or, in a loop over chunks, the trained span ends at
chunk `c + 2` (`min((ci + 2) * chunk, total)`, through any names) or takes the windows of
`plan[c + 1]` while the scoring reaches chunk `c` only, or the chunk is rounded up to whole
rows (`val[lo:lo + ceil((hi - lo) / seq) * seq + 1]`), which runs into the next chunk where
the chunk length is not a multiple of the row length. The ttt-before-score rule asks this of
each backward pass whose order is score-first.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.rules import always_greater, assigned_pairs, depends_on


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
    return _chunk_ahead(f, ev, trained, scores_in) or _span_ahead(f, ev, scores_in)


def _span_ahead(f, ev, scores_in) -> str | None:
    """In a loop over spans `for c0, c1 in spans` (also `for k, (c0, c1) in enumerate(...)`)
    that scores before it trains, the trained slice of validation data starts at the span's
    end (`lo, hi = c1, c1 + width`, `val[lo:hi + 1]`): the next span, scored only in the next
    iteration."""
    for loop in ev.ctx.loops:
        counted = type(loop) is ast.For and type(loop.iter) is ast.Call and lb.call_name(loop.iter.func) in ("enumerate", "items")
        pairs = [t for t in lb.walk(loop.target) if type(t) is ast.Tuple and len(t.elts) == 2
                 and all(type(e) is ast.Name for e in t.elts) and not (counted and t is loop.target)] \
            if type(loop) is ast.For else []  # (`for i, ws in enumerate(windows)`: a counter and a start, no span)
        if not pairs:
            continue
        end = pairs[-1].elts[1].id
        idx = next((i for i, st in enumerate(loop.body) if st.lineno <= ev.line <= st.end_lineno), None)
        if idx is None or not any(scores_in(st) for st in loop.body[:idx]):
            continue
        held = _loop_bindings(f, loop)
        loss = ev.node.func.value
        for _, part in _val_slices(f, f.binding(loss.id) if type(loss) is ast.Name else loss, held):
            start = part.lower
            for _ in range(8):  # (`lo_t, hi_t = c1, ...`: through the loop's names; a cycle stops)
                start = held[start.id] if type(start) is ast.Name and start.id in held else start
            if type(start) is ast.Name and start.id == end:
                return (f"the span it trains on starts at `{end}`, the end of the span scored in this iteration of the "
                        "loop: the next span's tokens are trained on before they are scored")
    return None


def _loop_bindings(f, loop) -> dict[str, ast.expr]:
    """Names bound once in the loop's body, tuples matched element by element."""
    out, twice = {}, set()
    for a in f.module.under(f, f.module.nodes_of(ast.Assign)):
        if loop.lineno <= a.lineno <= loop.end_lineno:
            for t, v in assigned_pairs(a):
                if type(t) is ast.Name:
                    (twice.add(t.id) if t.id in out else out.__setitem__(t.id, v))
    return {k: v for k, v in out.items() if k not in twice}


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
        scoring = [st for st in loop.body[:idx] if scores_in(st)] if idx is not None else []
        if not scoring:
            continue
        reach = max((k for st in scoring for k in _offsets(f, st, var, scaled=False)), default=0)
        if ahead is not None and ahead >= reach + 2:
            return (f"the span it trains on covers chunk `{var} + {ahead - 1}` of the loop over `{var}`, whose scoring "
                    f"reaches chunk `{var}{f' + {reach}' if reach else ''}` only: that chunk is trained on before it is scored")
        over = next((u for _, u in trained if _overruns(f, u, var)), None) if reach == 0 else None
        over = over if over is not None or reach > 1 else _rows_overrun(f, loop, ev.line, var)  # (scoring up to `hi`)
        if over is not None:
            return (f"the windows it trains on start anywhere up to the end of chunk `{var}` and run on past it "
                    f"(`{lb.src(over)}` is their end): the first tokens of the next chunk are trained on before "
                    "they are scored")
    return None


def _overruns(f, upper, var: str) -> bool:
    """`v[t:t + SL + 1]` with `t` drawn from `range(cs, ce, step)` and `ce` the chunk's end
    (`min((c + 1) * size, n)`): a window starting near the end reads a length past it (the
    legal form ends the starts at `ce - SL + 1`)."""
    if type(upper) is not ast.BinOp or type(upper.op) is not ast.Add:
        return False
    start = upper
    while type(start) is ast.BinOp and type(start.op) is ast.Add:
        start = start.left
    if type(start) is not ast.Name or not any(type(n) is ast.Name and n is not start for n in lb.walk(upper)):
        return False  # (a length held in a name runs past; `t + 1`, the next target, does not)
    m = f.module
    iters = [g.iter for g in lb.walk(f.node) if type(g) in (ast.comprehension, ast.For)
             and type(g.target) is ast.Name and g.target.id == start.id
             and (type(g) is ast.comprehension or g.lineno <= upper.lineno <= g.end_lineno)]  # (the loop around it)
    held = {n.id for it in iters for n in lb.walk(it) if type(n) is ast.Name}
    sources = iters + [a.value for a in m.under(f, m.nodes_of(ast.Assign)) for t in a.targets
                       if type(t) is ast.Name and t.id in held]
    ends = [c.args[1] for e in sources for c in lb.walk(e) if type(c) is ast.Call
            and lb.call_name(c.func) == "range" and len(c.args) >= 2]
    return any(type(end) in (ast.Name, ast.Call) and _position(f, end) and 1 in _offsets(f, end, var)
               for end in ends)  # (not `ce - SL + 1`)


def _position(f, end) -> bool:
    """The range's end is a position in the stream (`ce`), not a count of rows cut from the
    chunk (`n_seq = (hi - lo) // L`: the starts index those rows, which end inside the chunk)."""
    bound = f.binding(end.id) if type(end) is ast.Name else end
    return not (type(bound) is ast.BinOp and type(bound.op) in (ast.FloorDiv, ast.Div))


def _rows_overrun(f, loop, before: int, var: str):
    """`rows = chunk_rows(val, lo, hi, L, hop)` in the loop's body before the step, where the
    helper cuts `val[s:s + L + 1]` for `s in range(lo, hi, hop)` and the call hands it the
    chunk's end as `hi`: the end of the window the helper's rows reach (put in its terms)."""
    m = f.module
    for a in m.under(f, m.nodes_of(ast.Assign)):
        if not (loop.lineno <= a.lineno < before) or type(a.value) is not ast.Call:
            continue
        g = m.resolve(a.value.func, f)
        if g is None or g is f or g.is_method or not any("VAL" in f.labels_of(x) for x in a.value.args):
            continue
        given = dict(zip(g.params, a.value.args))
        for it in (n for n in g.nodes if type(n) in (ast.For, ast.comprehension) and type(n.target) is ast.Name):
            r = it.iter
            if not (type(r) is ast.Call and lb.call_name(r.func) == "range" and len(r.args) >= 2
                    and type(r.args[1]) is ast.Name and r.args[1].id in given):
                continue
            if 1 not in _offsets(f, given[r.args[1].id], var):
                continue  # (the starts end before the chunk's end, `range(lo, hi - L + 1, hop)`)
            for sl in (n.slice for n in g.nodes if type(n) is ast.Subscript and type(n.slice) is ast.Slice):
                upper = sl.upper
                if type(upper) is ast.BinOp and type(upper.op) is ast.Add and any(
                        type(x) is ast.Name and x.id == it.target.id for x in lb.walk(upper)) \
                        and any(type(x) is ast.Name and x.id != it.target.id for x in lb.walk(upper)):
                    return upper
    return None


def _offsets(f, node, var: str, scaled: bool = True) -> set[int]:
    """Where `node` (or the bindings of the names it is computed from) ends, in chunks past
    `var`: k for `(var + k) * n`, k + 1 for the chunk `plan[var + k]` picks. Unless scaled:
    k for any `var + k`, 0 for a bare `var` (how far the scoring reaches)."""
    exprs = [node] + [b for b in map(f.binding, depends_on(f, node, depth=6)) if b is not None]
    out = set()
    for e in exprs:
        for n in lb.walk(e):
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
    return [(lb.src(base), part.upper) for base, part in _val_slices(f, expr) if part.upper is not None]


def _val_slices(f, expr, held: dict | None = None) -> list[tuple[ast.expr, ast.Slice]]:
    """(sliced value, slice) of every slice of validation data `expr` reads, through names
    bound once (and the loop's own bindings `held`, tuples matched element by element)."""
    out, seen, todo = [], set(), [expr] if expr is not None else []
    while todo:
        for n in lb.walk(todo.pop()):
            if type(n) is ast.Subscript and type(n.slice) is ast.Slice and "VAL" in f.labels_of(n.value):
                out.append((n.value, n.slice))
            elif type(n) is ast.Name and n.id not in seen:
                seen.add(n.id)
                bound = (held or {}).get(n.id) or f.binding(n.id)
                if bound is not None and len(seen) < 20:
                    todo.append(bound)
    return out


def queue_ahead(m) -> list:
    """(function, call event) of training calls that take the newest item of a queue while the
    loop scores its oldest: `ring.append(stage(groups[g + 1]))`, then `x, y = ring[0]` scored,
    then `xa, ya = ring[-1]` handed to a function that takes gradient steps. The newest item
    was staged ahead and is scored only in a later iteration."""
    out = []
    if not any(_constant_index(s.slice) == -1 for s in m.nodes_of(ast.Subscript)):
        return out  # (no `q[-1]` anywhere: most files)
    for f in m.functions.values():
        for loop in m.under(f, m.nodes_of(ast.For)) + m.under(f, m.nodes_of(ast.While)):
            body = loop.body
            appended = {c.func.value.id for st in body if type(st) is ast.If or type(st) is ast.Expr for c in lb.walk(st)
                        if type(c) is ast.Call and type(c.func) is ast.Attribute and c.func.attr == "append"
                        and type(c.func.value) is ast.Name}
            if not appended:
                continue
            taken = {}  # name -> (queue, constant index) of `x, y = ring[0]` in the loop's body
            for a in (a for st in body for a in lb.walk(st) if type(a) is ast.Assign):
                v = a.value
                if type(v) is ast.Subscript and type(v.value) is ast.Name and v.value.id in appended:
                    index = _constant_index(v.slice)
                    for t in (n for t in a.targets for n in lb.walk(t) if type(n) is ast.Name):
                        taken[t.id] = (v.value.id, index, a.lineno)
            for ev in (e for e in f.events if e.kind == "call" and loop.lineno < e.line <= loop.end_lineno and e.data["callee"]):
                used = {taken[n.id] for a in ev.node.args for n in lb.walk(a) if type(n) is ast.Name and n.id in taken}
                newest = [(q, line) for q, i, line in used if i == -1]
                if not newest or not any("VAL" in v for v in ev.data["args"]) or not m.trains_any(m.functions[ev.data["callee"]]):
                    continue
                q = newest[0][0]
                oldest = {name for name, (q2, i, _) in taken.items() if q2 == q and i == 0}
                if _scored_from(f, loop, oldest, ev.line):
                    out.append((f, ev))
    return out


def _constant_index(e):
    if type(e) is ast.Constant and isinstance(e.value, int):
        return e.value
    if type(e) is ast.UnaryOp and type(e.op) is ast.USub and type(e.operand) is ast.Constant:
        return -e.operand.value
    return None


def _scored_from(f, loop, names: set, before: int) -> bool:
    """In the loop, before line `before`, a loss or log-probability is computed from these names."""
    return any(loop.lineno < e.line < before and (e.kind == "ce" or e.kind == "call" and e.data["name"] in _SCORING)
               and any(type(n) is ast.Name and n.id in names for n in lb.walk(e.node)) for e in f.events)


_SCORING = {"cross_entropy", "log_softmax", "nll_loss"}


def rounded_past_chunk(f, ev):
    """(why, the condition) when the slice trained on is the chunk rounded up to whole rows:
    `n_seq = -(-(hi - lo) // seq)`, then `val[lo:lo + n_seq * seq + 1]`, with `hi = min(lo + C, N)`.
    Wherever C is not a multiple of seq, the last row runs past the chunk's end into tokens
    scored only in the next iteration; the condition is `C % seq != 0`."""
    loss = ev.node.func.value if type(ev.node) is ast.Call and type(ev.node.func) is ast.Attribute else None
    if loss is None or not ev.ctx.loops:
        return None
    for _, part in _val_slices(f, f.binding(loss.id) if type(loss) is ast.Name else loss):
        for term in _added_terms(part.upper):
            if type(term) is not ast.BinOp or type(term.op) is not ast.Mult:
                continue
            for count, size in ((term.left, term.right), (term.right, term.left)):
                held = _latest_binding(f, count, part.upper.lineno) if type(count) is ast.Name else None
                length = _ceil_count(held, size)
                if length is None:
                    continue
                chunk = _chunk_length(f, length, part.upper.lineno)
                if chunk is None:
                    continue
                test = ast.parse(f"({lb.src(chunk)}) % ({lb.src(size)}) != 0", mode="eval").body
                return (f"the slice it trains on is the chunk rounded up to whole rows of `{lb.src(size)}` "
                        f"(`{lb.src(part.upper)}` is its end): where `{lb.src(chunk)}` is not a multiple of it, the "
                        "last row runs into the next chunk, whose tokens are trained on before they are scored"), test
    return None


def _added_terms(e) -> list:
    """The terms of a sum (`lo + n * k + 1`: lo, n * k, 1)."""
    if type(e) is ast.BinOp and type(e.op) is ast.Add:
        return _added_terms(e.left) + _added_terms(e.right)
    return [e] if e is not None else []


def _latest_binding(f, name: ast.Name, before: int):
    """What `name` was last bound to (a plain assignment in f) before line `before`."""
    found = [a for a in f.module.under(f, f.module.nodes_of(ast.Assign)) if a.lineno < before
             and any(type(t) is ast.Name and t.id == name.id for t in a.targets)]
    return max(found, key=lambda a: a.lineno).value if found else None


def _ceil_count(e, size):
    """X for a count rounded up from X in rows of `size`: `-(-X // size)`, `(X + size - 1) // size`,
    `math.ceil(X / size)`, also inside `max(1, ...)`."""
    if type(e) is ast.Call and lb.call_name(e.func) == "max":
        return next((x for x in map(lambda a: _ceil_count(a, size), e.args) if x is not None), None)
    same = lb.src(size)
    if type(e) is ast.UnaryOp and type(e.op) is ast.USub and type(e.operand) is ast.BinOp and type(e.operand.op) is ast.FloorDiv \
            and lb.src(e.operand.right) == same and type(e.operand.left) is ast.UnaryOp and type(e.operand.left.op) is ast.USub:
        return e.operand.left.operand
    if type(e) is ast.BinOp and type(e.op) is ast.FloorDiv and lb.src(e.right) == same and type(e.left) is ast.BinOp \
            and type(e.left.op) is ast.Sub and type(e.left.right) is ast.Constant and e.left.right.value == 1 \
            and type(e.left.left) is ast.BinOp and type(e.left.left.op) is ast.Add and lb.src(e.left.left.right) == same:
        return e.left.left.left
    if type(e) is ast.Call and lb.call_name(e.func) == "ceil" and e.args and type(e.args[0]) is ast.BinOp \
            and type(e.args[0].op) is ast.Div and lb.src(e.args[0].right) == same:
        return e.args[0].left
    return None


def _chunk_length(f, length, before: int):
    """C for a chunk's length written `hi - lo` with `hi = min(lo + C, N)` (or `lo + C`)."""
    if type(length) is not ast.BinOp or type(length.op) is not ast.Sub or type(length.left) is not ast.Name:
        return None
    lo = lb.src(length.right)
    hi = _latest_binding(f, length.left, before)
    if type(hi) is ast.Call and lb.call_name(hi.func) == "min" and hi.args:
        hi = hi.args[0]
    if type(hi) is ast.BinOp and type(hi.op) is ast.Add and lb.src(hi.left) == lo:
        return hi.right
    return None
