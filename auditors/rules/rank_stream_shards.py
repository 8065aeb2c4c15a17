"""Test-time training on contiguous rank shares of the whole stream with gradients averaged
across ranks (RULES.md §2 C1, §4: adapt only on tokens already scored).

Chunk-synchronous TTT splits each chunk among the ranks: every rank scores its part of chunk
k, then all of them step on chunk k together. Splitting the *stream* instead (rank r takes
`[total * r // world, total * (r + 1) // world)` and walks its own chunks) while the
gradients are averaged (`dist.all_reduce(p.grad, op=AVG)`) makes rank 0's chunk k + 1 scored
after a step that averaged in the gradients of rank 7's chunk k, which lies far later in the
stream: tokens are scored with weights adapted on tokens after them. The rule flags a
backward pass on validation data in a loop that scores before it (score-first in form), in a
function that averages gradients across
processes (itself or through a helper), where the validation slice it trains on starts from
a fraction of the stream's length (`(total * a) // b`, written in place or returned by a
helper of the module, with `total` taken from the length of the validation tokens the
function is handed; a share of a chunk's rows, `rows.size(0) * rank // world`, is the legal
chunk-synchronous split).

The same leak without gradients: a scoring object whose state is all-reduced inside the
scoring loop (`prior.sync(world)` running `dist.all_reduce(self.fresh)` after each batch,
while `prior.apply(logp, prev)` adjusts the scores) while each rank walks a contiguous
stripe of the whole stream's windows, cut once before the loop
(`mine = starts[len(starts) * rank // world : ...]`). Rank 0's next batch is then scored
with counts of rank 7's tokens, far later in the stream. A stripe cut per chunk inside the
loop (every rank scores its part of chunk k before the sync) and a sync after the loop are
the legal forms.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import depends_on, raw
from auditors.settings_forms import inlined_return

RULE = RuleInfo("rank-stream-shards", "future_token_peek",
                "each rank adapts on its own share of the whole stream while gradients are averaged",
                "RULES.md §2 C1, §4 (score-first TTT across ranks)")

_LENGTHS = {"numel", "len", "size"}


def check(m):
    out, seen = [], set()
    for f, ev in m.events("backward"):
        if "VAL" not in ev.data["loss"] or not ev.ctx.loops or f.qualname in seen or not _averages_grads(m, f) \
                or not _scored_before(m, f, ev):
            continue  # (training with no scoring before it in the loop is the ttt-before-score rule's)
        share = next((s for s in m.under(f, m.nodes_of(ast.Subscript)) if type(s.slice) is ast.Slice
                      and s.slice.lower is not None and "VAL" in f.labels_of(s.value)
                      and ev.ctx.loops[0].lineno <= s.lineno <= ev.line and _stream_fraction(m, f, s.slice.lower)), None)
        if share is not None:
            seen.add(f.qualname)
            out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                           f"trains on `{lb.src(share)}`, which starts in this rank's contiguous share of the whole "
                           "stream, and the gradients are averaged across ranks: each rank steps on other ranks' "
                           "tokens, far later in the stream, before it scores its next chunk"))
    return out + _synced_scorer(m)


_COLLECTIVES = {"all_reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor"}


def _synced_scorer(m) -> list:
    """A method reducing its object's state across ranks, called in a scoring loop of f where
    a method of the same class adjusts the scores, with f's windows cut in rank stripes of the
    whole stream before that loop."""
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.scores(f):
            continue
        calls = [e for e in f.events if e.kind == "call" and e.data["callee"] and e.ctx.loops]
        for ev in calls:
            g = m.functions[ev.data["callee"]]
            if not g.cls or not m._transitive(g, _reduces_own_state, ("reduces own state",)):
                continue
            loop = ev.ctx.loops[0]
            scorer = next((e for e in calls if loop in e.ctx.loops and e is not ev and m.functions[e.data["callee"]].cls == g.cls
                           and any(a & {"DIST", "TGTP"} for a in e.data["args"])), None)
            stripe = scorer and next((s for s in m.under(f, m.nodes_of(ast.Subscript)) if s.lineno < loop.lineno
                                      and type(s.slice) is ast.Slice and s.slice.lower is not None
                                      and _windows_stripe(f, s)), None)
            if stripe is not None:
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                               f"`{lb.src(ev.node.func)}` all-reduces the state that `{lb.src(scorer.node.func)}` "
                               f"(line {scorer.line}) scores with, inside the scoring loop, while each rank walks its "
                               f"own stripe `{lb.src(stripe)}` of the whole stream: a rank's next tokens are scored "
                               "with counts of other ranks' tokens, far later in the stream"))
                break
    return out


def _reduces_own_state(g) -> bool:
    """`dist.all_reduce(self.fresh)`: a collective on a field of the method's own object."""
    return any(type(n) is ast.Call and lb.call_name(n.func) in _COLLECTIVES and n.args and type(n.args[0]) is ast.Attribute
               and type(n.args[0].value) is ast.Name and n.args[0].value.id == "self" for n in g.nodes)


def _windows_stripe(f, s) -> bool:
    """`starts[len(starts) * rank // world : ...]` of window positions (or the tokens) cut
    from the stream: the lower bound is a fraction of the sliced sequence's own length."""
    if not f.labels_of(s.value) & {"RPOS", "VAL"} or type(s.value) is not ast.Name:
        return False
    for n in [s.slice.lower, *(f.binding(x) for x in depends_on(f, s.slice.lower, depth=2))]:
        for b in lb.walk(n) if n is not None else ():
            if type(b) is ast.BinOp and type(b.op) is ast.FloorDiv and type(b.left) is ast.BinOp \
                    and type(b.left.op) is ast.Mult and any(
                        type(c) is ast.Call and lb.call_name(c.func) == "len" and c.args and type(c.args[0]) is ast.Name
                        and c.args[0].id == s.value.id for side in (b.left.left, b.left.right) for c in lb.walk(side)):
                return True
    return False


def _scored_before(m, f, ev) -> bool:
    """Score-first in form: the loop around the step scores without gradients before it."""
    def scores(e) -> bool:
        if e.kind == "ce":
            return e.ctx.nograd
        g = m.functions[e.data["callee"]] if e.kind == "call" and e.data["callee"] else None
        return g is not None and m.scores(g) and not m.trains_any(g)
    return any(e.line < ev.line and ev.ctx.loops[0] in e.ctx.loops and scores(e) for e in f.events)


def _averages_grads(m, f) -> bool:
    """f (or a function it calls) all-reduces gradients: `dist.all_reduce(p.grad, ...)`."""
    def direct(g) -> bool:
        return any(type(n) is ast.Call and lb.call_name(n.func) == "all_reduce" and n.args
                   and type(n.args[0]) is ast.Attribute and n.args[0].attr == "grad" for n in g.nodes)
    return m._transitive(f, direct, ("averages grads",))


def _stream_fraction(m, f, lower) -> bool:
    """`lower` is computed from `(total * a) // b` with `total` the validation stream's length,
    through names bound in f and a helper's returned tuple (`lo, hi = span(total, rank, world)`)."""
    for name in depends_on(f, lower, depth=5):
        for a in m.under(f, m.nodes_of(ast.Assign)):
            targets = [t for t in a.targets if any(type(n) is ast.Name and n.id == name for n in lb.walk(t))]
            if not targets:
                continue
            value = inlined_return(m, f, a.value, with_locals=True) if type(a.value) is ast.Call else a.value
            if value is not None and any(_fraction_of_length(f, n) for n in lb.walk(value)):
                return True
    return False


def _fraction_of_length(f, n) -> bool:
    """`(total * a) // b` where `total` is (computed from) the length of validation tokens."""
    if type(n) is not ast.BinOp or type(n.op) is not ast.FloorDiv or type(n.left) is not ast.BinOp \
            or type(n.left.op) is not ast.Mult:
        return False
    for side in (n.left.left, n.left.right):
        for e in [side, *(f.binding(x) for x in depends_on(f, side, depth=1))]:  # (`total = val.numel() - 1`)
            if e is not None and any(type(c) is ast.Call and lb.call_name(c.func) in _LENGTHS and _whole_stream(
                    f, c.func.value if type(c.func) is ast.Attribute else c.args[0] if c.args else None) for c in lb.walk(e)):
                return True
    return False


def _whole_stream(f, e) -> bool:
    """The validation tokens as handed in (a parameter), not a chunk's rows or a list of windows
    cut from them here: a share of its length is a share of the stream."""
    return type(e) is ast.Name and e.id in f.params and "VAL" in f.labels_of(e)
