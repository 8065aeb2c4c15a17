"""A score-first update that reaches past what was scored (RULES.md §2 C3, §3 #779).

Legal online caches score a window, then add that window's tokens to their counts.
The update must stop where the scoring stopped: `update(rows, val, s, e)` that counts
the pairs `(val[s-1:e], val[s:e+1])` adds `val[e]`, which the next window scores, so one
token per window is scored by counts that already hold it. The rule looks at a loop
that calls a scoring helper and then a table-writing helper with the same window
arguments, finds in each helper how far into the validation data it reads (slice
ends, `range` bounds of an index, in terms of its parameters), substitutes the
arguments of the two calls and flags the update when it always reads further. The
inline form of #779's first commit, `mixer.update(val[start:end + 1])` with `end` the
chunk end computed from the loop's variable, is flagged too (fixed by dropping the `+ 1`).
So is a step that counts the targets into a table and then reads the same context rows
for the distribution it returns (`tab.index_put_((rows, y), 1, accumulate=True)`, then
`tab[rows]`): each target is predicted by counts that already hold it.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.adapted import ACCUMULATE
from auditors.model import RuleInfo
from auditors.rules import arith, depends_on, raw, samples
from auditors.settings_forms import substituted

# Tagged as a peek (RULES §6 tags): no parameters are adapted; the prediction of a token is made from counts
# that already hold that token, which is the prediction using x_t.
RULE = RuleInfo("update-ahead", "future_token_peek", "state updated with validation tokens past the scored window",
                "RULES.md §2 C3, §3 (#779 score-first caches)")


def check(m):
    out = []
    for f, ev in m.events("call"):
        if ev.ctx.loops and ev.data["callee"] and _counts(m, m.functions[ev.data["callee"]]):
            past = _past_chunk_end(f, ev)
            if past:
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                               f"{ev.data['name']}() adds `{past}` to the cache: one token past the end of the chunk this "
                               "loop iteration scores, counted before it is scored (the #779 first-commit off-by-one)"))
    for f in m.functions.values():
        calls = [e for e in f.events if e.kind == "call" and e.data["callee"] and e.ctx.loops
                 and any("VAL" in a for a in e.data["args"])]
        for i, score in enumerate(calls):
            scorer = m.functions[score.data["callee"]]
            if m.writes_tables(scorer) or not m.scores(scorer):
                continue
            for update in calls[i + 1:]:
                writer = m.functions[update.data["callee"]]
                if update.ctx.loops[-1] is not score.ctx.loops[-1] or not m.writes_tables(writer):
                    continue
                if _reads_further(f, update, writer, score, scorer):
                    out.append(raw(RULE, f, update.node, update.ctx, "error", "medium",
                                   f"{update.data['name']}() adds validation tokens past the window that "
                                   f"{score.data['name']}() (line {score.line}) scored: those tokens are counted "
                                   "before they are scored"))
                    break
    return out + _updated_before_read(m) + _counted_then_read(m)


def _updated_before_read(m) -> list:
    """`cache.update(prev, tgt)` and then, in the same iteration, `p = cache.predict(prev)`
    (the same object, handed the context without the token the update also got), in a
    function that scores: the counts that predict each target already hold it (the legal
    order reads first, then updates)."""
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.scores(f):
            continue
        calls = [e for e in f.events if e.kind == "call" and e.data["callee"] and e.ctx.loops
                 and type(e.node.func) is ast.Attribute and lb.dotted(e.node.func.value)]
        for i, update in enumerate(calls):
            writer = m.functions[update.data["callee"]]
            if not any("VAL" in a for a in update.data["args"]) or not m.writes_tables(writer):
                continue
            holder, given = lb.dotted(update.node.func.value), {lb.src(a) for a in update.node.args}
            # the read is handed the context and not the token the update also got (`predict(prev2, prev1)`
            # after `update(prev2, prev1, tgt)`): the update holds what the read predicts
            written = {lb.src(x.data["table"]).split(".", 1)[-1].split("[")[0] for g in [writer, *m.callees(writer)]
                       for x in g.events if x.kind == "write"}  # the fields it counts into (`self.bi`)
            read = next((e for e in calls[i + 1:] if e.ctx.loops[-1] is update.ctx.loops[-1]
                         and lb.dotted(e.node.func.value) == holder and not m.writes_tables(m.functions[e.data["callee"]])
                         and written & set(m.self_reads(m.functions[e.data["callee"]]))
                         and e.node.args and {lb.src(a) for a in e.node.args} < given), None)
            if read is not None:
                out.append(raw(RULE, f, update.node, update.ctx, "error", "medium",
                               f"{update.data['name']}() adds this iteration's targets to `{holder}` before "
                               f"{read.data['name']}() (line {read.line}) predicts them from it: each target is scored "
                               "by counts that already hold it"))
                break
    return out


def _counted_then_read(m) -> list:
    """In one function: the targets are counted into a table at their context rows
    (`tab.index_put_((rows, sym), ones, accumulate=True)` with `sym` the targets), and then the
    same rows of that table are read (`c = tab[rows]`) for the distribution the function gives:
    the counts that predict each target already hold it. Reading the rows first, or another
    context's rows after the update (the next position's), is the legal order."""
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not f.ret:
            continue
        for ev in f.events:
            if ev.kind != "call" or ev.data["name"] not in ACCUMULATE or type(ev.node.func) is not ast.Attribute \
                    or not ev.node.args or type(ev.node.args[0]) is not ast.Tuple or len(ev.node.args[0].elts) != 2:
                continue
            rows, keys = ev.node.args[0].elts
            if "TGT" not in f.labels_of(keys) or "TGT" in f.labels_of(rows):
                continue
            table, at = lb.src(ev.node.func.value), lb.src(rows)
            read = next((n for n in m.under(f, m.nodes_of(ast.Subscript)) if n.lineno > ev.line and type(n.ctx) is ast.Load
                         and lb.src(n.value) == table and lb.src(n.slice) == at), None)
            if read is not None:
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                               f"counts the targets into `{table}` at their context rows, then reads those rows "
                               f"(line {read.lineno}) for the distribution it returns: each target is predicted by "
                               "counts that already hold it"))
                break
    return out


_COUNTS = ACCUMULATE | {"at", "add_"}


def _counts(m, g) -> bool:
    """g (or a callee) updates a table with validation tokens: a hashed cache, or counts
    indexed by the tokens themselves (`counts.index_put_((seq[:-1], seq[1:]), ones,
    accumulate=True)`, `counts[prev, nxt] += 1`)."""
    def direct(h) -> bool:
        if any(e.kind == "write" for e in h.events) or any(
                e.kind == "call" and e.data["name"] in _COUNTS and any("VAL" in a for a in e.data["args"]) for e in h.events):
            return True
        return any(type(n.target) is ast.Subscript and "VAL" in h.labels_of(n.target.slice)
                   for n in m.under(h, m.nodes_of(ast.AugAssign)))
    return m._transitive(g, direct, ("counts val",))


def _past_chunk_end(f, ev) -> str | None:
    """`update(val[start:end + 1])` where `end` is this iteration's chunk end, computed
    from the loop's variable (`end = min((ci + 1) * size, total)`)."""
    loop = ev.ctx.loops[-1]
    if not isinstance(loop, ast.For):
        return None
    index = {n.id for n in lb.walk(loop.target) if isinstance(n, ast.Name)}
    for arg in ev.node.args:
        if type(arg) is ast.Name and type(f.binding(arg.id)) in (ast.Subscript, ast.Call):
            arg = f.binding(arg.id)  # `seg = val[lo:hi + 2]; table.absorb(seg)`
        if type(arg) is ast.Call and lb.call_name(arg.func) in ("arange", "range") and len(arg.args) >= 2 \
                and _past_max(f, arg.args[1]):
            return lb.src(arg)  # positions `arange(lo, min(hi + 1, n))` with `hi = max(scored) + 1`
        if type(arg) is ast.Subscript and type(arg.slice) is ast.Slice and "VAL" in f.labels_of(arg.value):
            upper = arg.slice.upper
            step = upper.right.value if type(upper) is ast.BinOp and type(upper.op) is ast.Add \
                and type(upper.right) is ast.Constant and type(upper.right.value) is int else 0
            if step >= 2 and type(upper.left) is ast.Name and _targets_reach(f, loop, ev.node, upper.left.id):
                return lb.src(arg)  # the scored targets end at val[hi]; the update reaches val[hi + 1]
            if step == 1 and type(upper.left) is ast.Name:
                bound = f.binding(upper.left.id)
                if bound is not None and index & {n.id for n in lb.walk(bound) if isinstance(n, ast.Name)} \
                        and not _targets_reach(f, loop, ev.node, upper.left.id):
                    return lb.src(arg)
    return None


def _past_max(f, end) -> bool:
    """`hi + 1` (alone or first in a `min`) where `hi = int(js.max()) + 1` is already the
    exclusive end of the positions `js` scored: the range holds one position past them."""
    if type(end) is ast.Call and lb.call_name(end.func) == "min" and end.args:
        end = end.args[0]
    if not (type(end) is ast.BinOp and type(end.op) is ast.Add and type(end.left) is ast.Name and _plus(end)):
        return False
    bound = f.binding(end.left.id)
    if not (type(bound) is ast.BinOp and type(bound.op) is ast.Add and _plus(bound)):
        return False
    top = bound.left
    while type(top) is ast.Call and lb.call_name(top.func) in ("int", "float") and top.args:
        top = top.args[0]
    return type(top) is ast.Call and lb.call_name(top.func) in ("max", "amax")


def _plus(e: ast.BinOp) -> bool:
    return type(e.right) is ast.Constant and type(e.right.value) is int and e.right.value >= 1


def _targets_reach(f, loop, update: ast.Call, end: str) -> bool:
    """Before the update, the loop reads validation targets up to and including `end`:
    a slice `val[a + 1 : e + 1]` whose `e` is `end` or is computed from it (`we = min(ws +
    seq_len, c1)`; a rank's share of the chunk), so the chunk scored val[end] and counting
    it is fair."""
    for n in lb.walk(loop):
        if type(n) is not ast.Subscript or type(n.slice) is not ast.Slice or n.lineno >= update.lineno:
            continue
        upper = n.slice.upper
        if not lb.plus_one(upper) or "VAL" not in f.labels_of(n.value):
            continue
        alias = f.binding(end)  # `lo, hi = start + sf, end`: the update's end is the scoring's
        if end in depends_on(f, upper.left) or (type(alias) is ast.Name and type(upper.left) is ast.Name
                                             and alias.id == upper.left.id):
            return True
        if alias is not None and ast.dump(_as_last(loop, upper.left)) == ast.dump(alias):
            return True  # `val[s + T + 1]` for s in starts, and `end = starts[-1] + T`: the last row's last target
    return False


def _as_last(loop, e: ast.expr) -> ast.expr:
    """e with each comprehension variable over a name (`for s in starts`) read as that name's
    last item (`starts[-1]`)."""
    last = {g.target.id: ast.Subscript(ast.Name(g.iter.id, ast.Load()), ast.UnaryOp(ast.USub(), ast.Constant(1)), ast.Load())
            for c in lb.walk(loop) if type(c) in (ast.ListComp, ast.GeneratorExp) for g in c.generators
            if type(g.target) is ast.Name and type(g.iter) is ast.Name}
    return substituted(e, last) if last else e


def _reads_further(f, update, writer, score, scorer) -> bool:
    """In every sampled environment, the furthest validation index the writer reads
    (through its parameters, bound to this call's arguments) lies past every index the
    scorer reads."""
    writer_ends, scorer_ends = _ends(writer), _ends(scorer)
    if not writer_ends or not scorer_ends:
        return False

    def furthest(env) -> tuple:
        def ends(g, call, exprs):
            params = g.params[1:] if g.is_method and isinstance(call.node.func, ast.Attribute) else g.params
            bound = {p: arith(a, env) for p, a in zip(params, call.node.args)}
            values = [arith(e, _Bound(bound, env)) for e in exprs]
            return None if any(v is None for v in values) else max(values)
        return ends(writer, update, writer_ends), ends(scorer, score, scorer_ends)

    return all(w is not None and s is not None and w > s for w, s in samples(furthest))


class _Bound(dict):
    """A callee's names: its parameters as the call bound them, anything else drawn."""

    def __init__(self, bound: dict, outer):
        super().__init__(bound)
        self.outer = outer

    def get(self, name, default=None):
        return self[name] if name in self else self.outer.get(f"<callee>.{name}")


def _ends(g) -> list[ast.expr]:
    """Exclusive ends of the validation data g reads: `x[a:b]` ends at b; `x[t + k]`, with
    t running over `range(a, b)`, at `b + k`."""
    loops = {t.id: it for t, it in ((n.target, n.iter) for n in g.nodes if type(n) is ast.For)
             if type(t) is ast.Name and type(it) is ast.Call and lb.call_name(it.func) == "range" and it.args}
    out = []
    for n in g.nodes:
        if type(n) is not ast.Subscript or type(n.ctx) is not ast.Load or "VAL" not in g.labels_of(n.value):
            continue
        if type(n.slice) is ast.Slice and n.slice.upper is not None and n.slice.step is None:
            out.append(n.slice.upper)
        elif type(n.slice) in (ast.Name, ast.BinOp):
            index = n.slice
            var, offset = (index, 0) if type(index) is ast.Name else (index.left, index.right)
            if type(var) is ast.Name and var.id in loops:
                stop = loops[var.id].args[1] if len(loops[var.id].args) > 1 else loops[var.id].args[0]
                sign = -1 if type(index) is ast.BinOp and type(index.op) is ast.Sub else 1
                if type(index) is ast.Name:
                    out.append(stop)
                elif type(index.op) in (ast.Add, ast.Sub) and type(offset) is ast.Constant and type(offset.value) is int:
                    out.append(ast.BinOp(stop, ast.Add(), ast.Constant(sign * offset.value)))
    return out
