"""A count table that already holds the targets it is read for (RULES.md §2 C1, C3).

A legal online table (a unigram prior, a bigram memory over the stream) is read for a
batch, the batch is scored, and only then are the batch's targets counted. The rule
flags the other order inside one iteration of a scoring loop: first a method that counts
into its object's state is handed this iteration's targets, then a method of the same
object that reads that state is called, and the batch is scored after it. Each target is
then predicted by counts that hold it, so p_t depends on x_t.

The targets are this iteration's when they carry the target label and every name in the
argument is bound in the loop before the count (`x, y = ...; prior.ingest(y)`), or inside
a helper the loop calls with the table (`x, y, ys = cut(val, part, prior)`, where `cut`
runs `prior.ingest(torch.cat(ys))` on targets it sliced itself). Targets kept from the
previous iteration (`if pending is not None: prior.ingest(pending)` with `pending = y`
at the end of the body) are already scored and stay clean. A table advanced over the
validation stream to a position (`memory.advance_to(val, last_ws + last_len + 1)`) holds
this iteration's targets when that position is the end of the slice the loop cut the
targets from (`val[ws:ws + wlen + 1]`, with both read from the same batch's windows). So
does a memory built over the stream and advanced to the end of the batch's last window
(`expert.advance(batch[-1][1])`, reading `self.stream[lo:hi]` up to it), whose answers for
a position may be tokens after it; advanced to the batch's first scored position, it holds
scored tokens only.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.adapted import ACCUMULATE
from auditors.loop_shapes import fresh
from auditors.model import RuleInfo
from auditors.rules import raw
from auditors.settings_forms import substituted

RULE = RuleInfo("counted-before-scored", "future_token_peek",
                "a table counts the targets a loop iteration scores before it is read for them",
                "RULES.md §2 C1, C3 (#779 score-first caches)")

_COUNTING = ACCUMULATE | {"add_", "scatter_add_", "index_add"}
_SCORING = {"gather", "take_along_dim", "cross_entropy", "nll_loss"}


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.scores(f):
            continue
        calls = [e for e in f.events if e.kind == "call" and e.data["callee"] and e.ctx.loops]
        for update in calls:
            counted = _counted(m, f, update)
            if counted is None:
                continue
            holder, fields, (g, at) = counted
            read = next((r for r in calls if r.line > update.line and update.ctx.loops[-1] in r.ctx.loops
                         and type(r.node.func) is ast.Attribute and lb.dotted(r.node.func.value) == holder
                         and not _counted_fields(m, m.functions[r.data["callee"]])
                         and fields & set(m.self_reads(m.functions[r.data["callee"]]))), None)
            if read is not None and _scored_after(f, update.ctx.loops[-1], read.line):
                out.append(raw(RULE, g, at.node, at.ctx, "error", "medium",
                               f"`{holder}` counts this iteration's targets here, before {read.data['name']}() "
                               f"(line {read.line}) reads it for the batch that is then scored: each target is "
                               "predicted by counts that already hold it"))
    return out


def _counted(m, f, call) -> tuple | None:
    """(the table's name in f, the fields counted, (function, event) of the count) when this call counts the iteration's
    targets into an object: its own method (`prior.ingest(y)`), or a helper handed the
    object that calls such a method on it."""
    g = m.functions[call.data["callee"]]
    loop = call.ctx.loops[-1]
    if type(call.node.func) is ast.Attribute and lb.dotted(call.node.func.value):
        fields = _counted_fields(m, g)
        if fields and (any("TGT" in f.labels_of(a) and fresh(f, loop, call.line, a) for a in call.node.args)
                       or _to_batch_end(m, f, g, call)):
            return lb.dotted(call.node.func.value), fields, (f, call)
        return None
    params = g.params[1:] if g.is_method else g.params
    given = dict(zip(params, call.node.args))
    for inner in g.events:
        if inner.kind != "call" or not inner.data["callee"] or type(inner.node.func) is not ast.Attribute \
                or type(inner.node.func.value) is not ast.Name or type(given.get(inner.node.func.value.id)) is not ast.Name:
            continue
        fields = _counted_fields(m, m.functions[inner.data["callee"]])
        if fields and any("TGT" in g.labels_of(a) and _fresh_in(g, a, given, f, loop, call.line) for a in inner.node.args):
            return given[inner.node.func.value.id].id, fields, (g, inner)
    return None


def _counted_fields(m, method) -> set:
    """The fields of `self` a method (or the methods of its class it calls) adds counts
    into: `self.c.index_add_(...)`, `np.add.at(self.c, ...)`, `self.c[k] += 1`, `self.c += bincount(y)`."""
    if not method.is_method:
        return set()
    return set(m.once(("counted fields", method.qualname), lambda _: frozenset(_fields_counted_into(m, method))))


def _fields_counted_into(m, method) -> set:
    out = set()
    for g in [method, *(h for h in m.callees(method) if h.cls == method.cls)]:
        for n in g.nodes:
            table = None
            if type(n) is ast.Call and type(n.func) is ast.Attribute:
                if n.func.attr in _COUNTING:
                    table = n.func.value
                elif n.func.attr == "at" and lb.dotted(n.func.value) in ("np.add", "numpy.add") and n.args:
                    table = n.args[0]
            elif type(n) is ast.AugAssign and type(n.target) is ast.Subscript:
                table = n.target.value
            elif type(n) is ast.AugAssign and type(n.op) is ast.Add and type(n.target) is ast.Attribute \
                    and type(n.value) is not ast.Constant:
                table = n.target  # `self.counts += torch.bincount(seg, minlength=V)` (not a tally of calls, `+= 1`)
            name = lb.dotted(table) if table is not None else None
            if name and name.startswith("self."):
                out.add(name.split(".")[1])
    return out


def _fresh_in(g, expr, given: dict, f, loop, line: int) -> bool:
    """Inside helper g: the names of `expr` are g's own (cut in this call), or parameters
    whose arguments are fresh in the caller's iteration."""
    names = {n.id for n in lb.walk(expr) if type(n) is ast.Name}
    if not names:
        return False
    return all(n not in g.params or (n in given and fresh(f, loop, line, given[n])) for n in names)


def _to_batch_end(m, f, g, call) -> bool:
    """`memory.advance_to(val, last_ws + last_len + 1)` where the method reads the stream
    it is handed up to that position (`tokens[self.pos - 1:end]`), or `expert.advance(batch[-1][1])`
    where it reads the stream its object holds (`self.stream[lo:hi]`, also through a method of
    its class: `self._keys(self.cursor, upto)`), and the loop cut this iteration's targets from
    a slice ending at the same window field (`val[ws:ws + wlen + 1]`, `val[s:e + 1]` with `ws,
    wlen`, `e` and the position handed over read from the same batch's windows; the end may
    differ by a constant: a memory of contexts at positions before `e` answers with `e`)."""
    given = dict(zip(g.params[1:], call.node.args))
    stream = {p for p, a in given.items() if "VAL" in f.labels_of(a)}
    held = "VAL" in f.labels_of(call.node.func.value)  # (an object built over the validation stream)
    ends = [given[p] for p in _stream_ends(m, g, stream, held, 0) if p in given]
    if not ends:
        return False
    loop = call.ctx.loops[-1]
    windows = _window_fields(f, loop)
    cuts = {_core(substituted(n.slice.upper, windows)) for n in lb.walk(loop)
            if type(n) is ast.Subscript and type(n.slice) is ast.Slice and n.slice.upper is not None
            and n.lineno < call.line and "VAL" in f.labels_of(n.value)}
    return any(_core(substituted(_item_field(e), windows)) in cuts for e in ends)


def _item_field(e: ast.expr) -> ast.expr:
    """`batch[-1][1]`: field 1 of an item of `batch`, named as `_window_fields` names it."""
    if type(e) is ast.Subscript and type(e.slice) is ast.Constant and type(e.slice.value) is int \
            and type(e.value) is ast.Subscript and type(e.value.value) is ast.Name:
        return ast.Name(f"{e.value.value.id}#{e.slice.value}", ast.Load())
    return e


def _stream_ends(m, g, stream: set, held: bool, depth: int) -> set:
    """g's parameters that end a slice of the stream: a parameter in `stream`, or (`held`) a
    field of `self` or a name bound to one; also through a method of g's class that g hands
    the parameter to."""
    own = {n for n, v in g.defs.items() if held and type(v) is ast.Attribute and lb.dotted(v.value) == "self"}
    out = set()
    for n in g.nodes:
        if type(n) is ast.Subscript and type(n.slice) is ast.Slice and type(n.slice.upper) is ast.Name \
                and n.slice.upper.id in g.params and ((type(n.value) is ast.Name and n.value.id in stream | own)
                                                      or (held and lb.dotted(n.value).startswith("self."))):
            out.add(n.slice.upper.id)
        elif depth < 2 and type(n) is ast.Call and type(n.func) is ast.Attribute and lb.dotted(n.func.value) == "self":
            h = m.functions.get(f"{g.cls}.{n.func.attr}") if g.cls else None
            if h is not None and h is not g:
                handed = dict(zip(h.params[1:], n.args))
                out |= {handed[p].id for p in _stream_ends(m, h, set(), held, depth + 1)
                        if p in handed and type(handed[p]) is ast.Name and handed[p].id in g.params}
    return out


def _core(e: ast.expr) -> str:
    """The expression without a constant added or taken away (`e + 1` and `e` alike)."""
    while type(e) is ast.BinOp and type(e.op) in (ast.Add, ast.Sub) and type(e.right) is ast.Constant:
        e = e.left
    return ast.dump(e)


def _window_fields(f, loop) -> dict[str, ast.Name]:
    """Names unpacked from the items of one list, by position: `a, b, _ = batch[-1]` and
    `for i, (c, d, _) in enumerate(batch)` give a and c the name `batch#0`, b and d `batch#1`."""
    out = {}

    def unpack(target, source):
        if type(target) is ast.Tuple and type(source) is ast.Name:
            for k, el in enumerate(target.elts):
                if type(el) is ast.Name and el.id != "_":
                    out[el.id] = ast.Name(f"{source.id}#{k}", ast.Load())

    for n in lb.walk(loop):
        if type(n) is ast.Assign and len(n.targets) == 1 and type(n.value) is ast.Subscript:
            unpack(n.targets[0], n.value.value)
        elif type(n) is ast.For:
            it, target = n.iter, n.target
            if type(it) is ast.Call and lb.call_name(it.func) == "enumerate" and it.args \
                    and type(target) is ast.Tuple and len(target.elts) == 2:
                it, target = it.args[0], target.elts[1]
            unpack(target, it)
    return out


def _scored_after(f, loop, line: int) -> bool:
    """The iteration scores at or after `line`: a cross-entropy, or a gather of the targets."""
    for e in f.events:
        if e.line >= line and loop in e.ctx.loops and (
                e.kind == "ce" or e.kind == "call" and e.data["name"] in _SCORING and any("TGT" in a for a in e.data["args"])):
            return True
    return False
