"""A generator of chunk visits that comes back to chunks it already gave (RULES.md §5:
each token is scored once, before anything is trained on it).

    def visits(n_chunks, revisit=0):
        for ci in range(n_chunks):
            yield Visit(ci, train_after=True)
        for ci in range(min(revisit, n_chunks)):   # back to the first chunks
            yield Visit(ci, train_after=False)

    for v in visits(n, cfg.revisit):
        score(chunks[v.chunk])                      # the second visit scores chunk 0 again
        if v.train_after:
            train(chunks[v.chunk])

The loop scores every visit and trains after some; a chunk given a second time is scored
again after the model trained on it and on every chunk after it, and the second score is
what a per-chunk ledger keeps. The rule flags, in a generator of the module, a second loop
over `range(...)` that yields its index again after a first loop over the chunks did,
where some loop over the generator's items both scores and trains. The finding carries the
condition that the second range is not empty (`revisit > 0`, the chunk count of the first
loop left out of a `min`), so it is as reached as the setting that asks for the revisit.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import ctx_of, raw

RULE = RuleInfo("revisited-chunks", "two_pass_rescore", "a generator of chunk visits gives chunks again after training on them",
                "RULES.md §5 (score once, before training on a token)")


def check(m):
    out = []
    for g in m.functions.values():
        if g.qualname == "<module>" or not any(type(st.value) in (ast.Yield, ast.YieldFrom)
                                               for st in m.under(g, m.nodes_of(ast.Expr))):
            continue  # (a generator: a statement of it yields)
        loops = [lp for lp in g.node.body if type(lp) is ast.For and _yields_index(lp)]
        if len(loops) < 2 or not _driven(m, g):
            continue
        again = loops[1]
        stop = again.iter.args[0] if len(again.iter.args) == 1 else again.iter.args[1]
        found = raw(RULE, g, again, ctx_of(g, again), "error", "medium",
                    f"the loop at line {again.lineno} yields chunk indices the loop at line {loops[0].lineno} already "
                    "gave: each is scored again after the model trained on it and on every chunk after it")
        first = loops[0].iter.args[0] if len(loops[0].iter.args) == 1 else loops[0].iter.args[1]
        if type(stop) is ast.Call and lb.call_name(stop.func) == "min":  # `min(revisit, n_chunks)`: the chunk count
            stop = next((a for a in stop.args if lb.src(a) != lb.src(first)), stop)  # is the first loop's, non-zero there
        found.guards.append([f"{lb.src(stop)} > 0", True])
        out.append(found)
    return out


def _yields_index(loop: ast.For) -> bool:
    """`for ci in range(...)` (from 0) whose body yields something made with `ci`."""
    it = loop.iter
    if type(loop.target) is not ast.Name or type(it) is not ast.Call or lb.call_name(it.func) != "range" \
            or not it.args or (len(it.args) > 1 and not (type(it.args[0]) is ast.Constant and it.args[0].value == 0)):
        return False
    return any(type(n) is ast.Yield and n.value is not None and any(
        type(x) is ast.Name and x.id == loop.target.id for x in lb.walk(n.value)) for st in loop.body for n in lb.walk(st))


def _driven(m, g) -> bool:
    """Some loop over `g(...)` scores and trains in its body."""
    for f in m.functions.values():
        for loop in m.under(f, m.nodes_of(ast.For)) if f.qualname != "<module>" else ():
            if type(loop.iter) is not ast.Call or m.resolve(loop.iter.func, f) is not g:
                continue
            inside = [e for e in f.events if loop.lineno <= e.line <= loop.end_lineno]
            called = [m.functions[e.data["callee"]] for e in inside if e.kind == "call" and e.data["callee"]]
            scores = any(e.kind == "ce" for e in inside) or any(m.scores(c) and not m.trains_any(c) for c in called)
            trains = any(e.kind == "backward" for e in inside) or any(m.trains_any(c) for c in called)
            if scores and trains:
                return True
    return False
