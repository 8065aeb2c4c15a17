"""Two-pass rescoring (RULES.md §5; C4 and C1 of §2).

A first call adapts some state on validation tokens - fills a count cache while
scoring (#846, #853), builds a cache from the whole validation stream (#870), or runs
test-time training while scoring (#991) - and a later call in the same function
scores the same validation tokens again with that state. Every token is then scored
twice and its second score depends on later tokens. The state is followed by name:
the later scoring call must receive the object the first call adapted (the model it
trained, the table it wrote, the receiver of the method that wrote it).

A call that both adapts and scores, repeated by a loop over passes or epochs with the
same arguments, rescores the same tokens on every pass after the first.

Legal counterparts: scoring the same validation data with different, frozen models
(pre- and post-quantization evaluation), score-first TTT as the final pass, phased
TTT whose call takes the phase (another slice of the data each time).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.adapted import (ACCUMULATE, counts_into_param, made_with, mutated_params, reads_own_val, tables_filled,
                              val_only_held)
from auditors.filled_state import accumulated_roots, counts_into_self, fills, fills_here, hook_state
from auditors.loop_shapes import complementary, logged_only, repeating_loop, runs_again
from auditors.model import RuleInfo
from auditors.pipelines import fed_by_scoring
from auditors.rules import raw

RULE = RuleInfo("two-pass-rescore", "two_pass_rescore", "validation tokens scored again after adapting state on them",
                "RULES.md §5 (#846, #870, #881, #991 double-pass TTT)")


def _adapted_names(m, ev, f=None) -> set[str]:
    callee = m.functions[ev.data["callee"]]
    node: ast.Call = ev.node
    names = set()
    # (`run = partial(score, cfg, val)`; `run(state, batch)`: the bound arguments come first)
    bound = len(ev.data["args"]) - len(node.args) if not any(type(a) is ast.Starred for a in node.args) else 0
    made = _partial_of(f, node) if bound and f is not None else None
    given = [*(made.args[1:] if made is not None else [None] * bound), *node.args]
    for i in mutated_params(m, callee, m.trains_on(callee, "VAL")):
        if 0 <= i < len(given) and given[i] is not None and lb.dotted(given[i]):
            names.add(lb.dotted(given[i]))  # (`ttt = partial(adapt, model, lr=...)`; `ttt(val)` trains `model`)
    params = callee.params[1:] if callee.is_method else callee.params
    filled = _filled_params(m, callee)  # `cache.update(prev, tg)` on a cache handed in
    names |= {lb.dotted(a) for p, a in zip(params[bound:], node.args) if p in filled and lb.dotted(a)}
    names |= {lb.dotted(k.value) for k in node.keywords if k.arg in filled and lb.dotted(k.value)}
    if callee.is_method and isinstance(node.func, ast.Attribute) and (fills_here(m, callee, ev, own=True)
                                                                      or m.trains_on(callee, "VAL")):
        d = lb.dotted(node.func.value)
        if d:
            names.add(d)
    if callee.is_method and m.trains_on(callee, "VAL"):
        names |= _built_with(node)  # `TTT(cfg, model).run(val)`: the model it was built with is trained
    if f is not None and callee.parent is not None and type(node.func) is ast.Name and m.trains_on(callee, "VAL"):
        names |= made_with(m, f, node.func.id)  # `step, opt = make_step(model, params)`: the model the step trains
    return names


def _filled_params(m, g) -> set[str]:
    """Parameters of g whose own methods fill a cache of their object (`cache.update(x, y)`)."""
    return {e.node.func.value.id for e in g.events if e.kind == "call" and e.data["callee"]
            and type(e.node.func) is ast.Attribute and type(e.node.func.value) is ast.Name
            and e.node.func.value.id in g.params and fills(m, m.functions[e.data["callee"]])}


def _built_with(call: ast.Call) -> set[str]:
    """Names an object is built from when a method is called on its construction:
    `Evaluator(cfg, model).run(val)` -> {cfg, model}."""
    recv = call.func.value if type(call.func) is ast.Attribute else None
    if type(recv) is not ast.Call:
        return set()
    return {d for d in map(lb.dotted, [*recv.args, *(k.value for k in recv.keywords)]) if d}


_WRAPPERS = {"compile", "DDP", "DistributedDataParallel", "FSDP", "FullyShardedDataParallel"}
_SAME_MODULE = {"to", "cuda", "cpu", "float", "bfloat16", "half", "train", "eval", "requires_grad_"}  # return the module


def _wrapped(e) -> set[str]:
    """Names of the modules that `e` is, or wraps: `DDP(base, ...) if dist else base`,
    `torch.compile(base)`, `base.to(device)`. (A deepcopy is another model: not one.)"""
    if type(e) is ast.Name:
        return {e.id}
    if type(e) is ast.IfExp:
        return _wrapped(e.body) | _wrapped(e.orelse)
    if type(e) is ast.Call:
        name = lb.call_name(e.func)
        if name in _WRAPPERS and e.args:
            return _wrapped(e.args[0])
        if name in _SAME_MODULE and type(e.func) is ast.Attribute:
            return _wrapped(e.func.value)
    return set()


def _wrapper_aliases(f) -> dict[str, str]:
    """Name -> one representative of the names in f that hold the same module (a model and
    its DDP / compiled wrapper): training one trains the other."""
    rep: dict[str, str] = {}

    def find(n):
        while rep.get(n, n) != n:
            n = rep[n]
        return n
    for node in f.nodes:
        if type(node) is ast.Assign and len(node.targets) == 1 and type(node.targets[0]) is ast.Name:
            for root in _wrapped(node.value) - {node.targets[0].id}:
                rep[find(node.targets[0].id)] = find(root)
    return {n: find(n) for n in rep}


def _partial_of(f, node: ast.Call):
    """The `partial(g, ...)` call a called name is bound to in f, or None."""
    made = f.binding(node.func.id) if type(node.func) is ast.Name else None
    return made if type(made) is ast.Call and lb.call_name(made.func) == "partial" and made.args else None


def _names(ev, f=None) -> set[str]:
    node: ast.Call = ev.node
    made = _partial_of(f, node) if f is not None else None  # (a partial's bound arguments are handed too)
    out = {lb.dotted(a) for a in list(node.args) + [k.value for k in node.keywords]
           + (made.args[1:] + [k.value for k in made.keywords] if made is not None else [])}
    if isinstance(node.func, ast.Attribute):
        out.add(lb.dotted(node.func.value))
    return {n for n in out if n}


def _roots(ev) -> set[str]:
    out = set()
    for a in list(ev.node.args) + [k.value for k in ev.node.keywords]:
        for n in lb.walk(a):
            if isinstance(n, ast.Name):
                out.add(n.id)
    return out


def _table_root(node) -> str:
    while isinstance(node, ast.Subscript):
        node = node.value
    return lb.dotted(node) or lb.src(node)


def _indexed_params(m, g) -> set[str]:
    """Parameters of g that it reads rows of (`Cn[x]`)."""
    return {n.value.id for n in m.under(g, m.nodes_of(ast.Subscript)) if type(n.value) is ast.Name
            and n.value.id in g.params and type(n.ctx) is ast.Load}


def _loop_passes(m, f):
    """Sibling statements: the first writes table T while scoring, a later one reads T and scores."""
    def facts(stmt):
        lo, hi = stmt.lineno, stmt.end_lineno
        writes, reads, scores = set(), set(), False
        for e in f.events:
            if not lo <= e.line <= hi:
                continue
            if e.kind == "write":
                writes.add(_table_root(e.data["table"]))
            elif e.kind == "read":
                reads.add(_table_root(e.data["table"]))
            elif e.kind == "ce":
                scores = True
            elif e.kind == "call":
                recv = lb.dotted(e.node.func.value) if isinstance(e.node.func, ast.Attribute) else None
                callee = m.functions.get(e.data["callee"]) if e.data["callee"] else None
                scores |= e.data["name"] in ("log", "log2", "log_softmax") and callee is None \
                    and not any(type(a) in (ast.JoinedStr, ast.Constant) for a in e.node.args)  # (not `log(f"...")`, a logger)
                if recv and callee is not None:
                    if (m.writes_tables(callee) or counts_into_self(callee)) and _holds_val(f, e):
                        writes.add(recv)  # (a table prefilled from training shards is a prior, not a first pass)
                    if any(x.kind == "read" for x in callee.events) or _reads_self_table(callee):
                        reads.add(recv)
                if callee is None and recv and e.data["name"] in ACCUMULATE \
                        and any("VAL" in a for a in (*e.data["args"], *e.data["kws"].values())):
                    writes.add(recv.split(".")[0])  # bigram.index_put_((w[:-1], w[1:]), ones, accumulate=True)
                if callee is not None and type(e.node.func) is ast.Name:  # `bulk_update(val, lo, hi, ctx_tabs, full_tabs)`
                    filled = tables_filled(m, callee)
                    writes.update(n for p, a in zip(callee.params, e.node.args) if p in filled and (n := lb.dotted(a)))
                if callee is not None and m.scores(callee):
                    scores = True
                    reads.update(n for n in map(lb.dotted, e.node.args) if n)  # the table handed to the scoring helper
                elif callee is not None:  # `bgp(Cn, x, lp)`: a helper that looks rows up in the table it is handed
                    looked_up = _indexed_params(m, callee)
                    reads.update(n for p, a in zip(callee.params, e.node.args) if p in looked_up and (n := lb.dotted(a)))
        return writes, reads, scores

    def may_write(e) -> bool:
        callee = m.functions.get(e.data["callee"]) if e.kind == "call" and e.data["callee"] else None
        return e.kind == "write" or (callee is not None and (m.writes_tables(callee) or counts_into_self(callee))) \
            or (e.kind == "call" and e.data["name"] in ACCUMULATE)

    if not any(map(may_write, f.events)):
        return  # no statement here fills a table, and the first of a pair must
    for block in _blocks(f.nodes):
        loops = [st for st in block if isinstance(st, (ast.For, ast.While, ast.If, ast.With, ast.Try))]
        for i, first in enumerate(loops):
            w1, _, s1 = facts(first)
            if not (w1 and s1):
                continue
            for later in loops[i + 1:]:
                _, r2, s2 = facts(later)
                shared = w1 & r2
                if shared and s2 and not facts(later)[0] & shared and not complementary(first, later):
                    yield later, first, sorted(shared)[0]
                    break


def _returned_table(m, f, a, later) -> set[str] | bool:
    """What holds the table a call built and returned: the names it is assigned to, or
    True when a later scoring call takes the call itself as an argument
    (`score(build(val), val)`)."""
    if any(any(arg is a.node for arg in b.node.args) and any("VAL" in x for x in b.data["args"])
           and m.scores(m.functions[b.data["callee"]]) for b in later):
        return True
    return {t.id for st in m.under(f, m.nodes_of(ast.Assign)) if st.value is a.node for t in st.targets if type(t) is ast.Name}


def _holds_val(f, ev) -> bool:
    """The call is handed validation data, or its object holds some that it reads."""
    return any("VAL" in x for x in ev.data["args"] + list(ev.data["kws"].values())) or reads_own_val(f.module, f, ev)


def _computes_loss(m, f) -> bool:
    """f (or a callee) computes a loss or log-probabilities itself."""
    return m._transitive(f, lambda g: any(e.kind == "ce" or e.kind == "call" and e.data["name"] in ("log", "log2", "log_softmax")
                                          and not (e.node.args and all(type(a) is ast.Constant for a in e.node.args))
                                          for e in g.events), ("computes loss",))  # (`math.log(2)` converts units)


def _factory_args(call: ast.Call) -> set[str]:
    """Names handed to calls among a call's arguments (`hook=make_hook(th, 0.02)`)."""
    return {lb.dotted(a) for arg in [*call.args, *(k.value for k in call.keywords)] if type(arg) is ast.Call
            for a in arg.args if lb.dotted(a)}


def _refilled_rescore(m, f) -> list:
    """`for ci in ...: stats[ci] = score(ci); mix.add(...)`, then `for ci in range(cold):
    stats[ci] = score(ci)`: a scorer that reads an object (a closure's `mix`, or one handed
    to it) scored each chunk while a loop added the chunk to that object, and a later loop
    scores the same chunks again with everything it holds: their first scores are replaced
    by scores from counts of later tokens."""
    out = []
    events = [e for e in f.events if e.kind == "call"]
    for a in events:
        if not a.data["callee"] or not a.ctx.loops or not m.scores(m.functions[a.data["callee"]]):
            continue
        loop, scorer = a.ctx.loops[-1], m.functions[a.data["callee"]]
        reads = {n.id for n in lb.walk(scorer.node) if type(n) is ast.Name} if scorer.parent is f else set()
        reads |= {n for x in a.node.args for n in [lb.dotted(x)] if n}
        filled = {lb.dotted(e.node.func.value) for e in events if loop.lineno <= e.line <= loop.end_lineno and e.line > a.line
                  and type(e.node.func) is ast.Attribute and lb.dotted(e.node.func.value) in reads
                  and e.data["callee"] and fills(m, m.functions[e.data["callee"]])}
        if not filled:
            continue
        again = next((b for b in events if b.data["callee"] == a.data["callee"] and b.line > loop.end_lineno
                      and b.node.args and a.node.args and lb.src(b.node.args[0]) == lb.src(a.node.args[0])), None)
        if again is not None and again.ctx.loops and complementary(loop, again.ctx.loops[-1]):
            continue  # (`for c in bounds[:n - k]`, then `for c in range(n - k, n)` frozen: no chunk scored twice)
        if again is not None and not logged_only(f, again.node):  # (a diagnostic: what the second scores reach is only logged)
            out.append(raw(RULE, f, again.node, again.ctx, "error", "medium",
                           f"{again.data['name']}() scores chunks again after the loop at line {loop.lineno} added each "
                           f"scored chunk to `{sorted(filled)[0]}`, which it reads: the new scores come from counts of "
                           "later tokens"))
            break
    return out


def _score_first_loop(m, f, a):
    """The loop around call `a` (which trains on validation data) when that loop scores
    the same data first (`leaf.result = score(model, val, leaf)`, then `adapt(model, opt,
    val, leaf)`): score-first TTT, whose tokens a later pass would score a second time."""
    names = _names(a)
    for loop in reversed(a.ctx.loops):  # (the chunk loop may hold the epochs' loop around the step)
        for e in f.events:
            if not loop.lineno <= e.line < a.line or e is a:
                continue
            if e.kind == "ce" and e.ctx.nograd:
                return loop  # the chunk scored inline, under no_grad, before the step trains on it
            if e.kind == "call" and e.data["callee"] and m.scores(m.functions[e.data["callee"]]) \
                    and not m.trains_any(m.functions[e.data["callee"]]) and _names(e) & names:
                return loop
    return None


_LENGTHS = {"len", "numel", "size", "nelement"}


def _prefix_replay(f, a, b, calls) -> bool:
    """`a` fills the cache with a bounded prefix (`update(stream, 0, first)`, whose end is
    no length of the data) and the loop around `b` calls it again after scoring: a
    score-first cache that first replays the tokens before its slice, no second pass."""
    node = a.node
    if len(node.args) < 3 or type(node.args[-2]) is not ast.Constant:
        return False
    end = node.args[-1]
    bound = f.binding(end.id) if type(end) is ast.Name else end
    if bound is None or any(lb.call_name(c.func) in _LENGTHS for c in lb.walk(bound) if type(c) is ast.Call) \
            or any(type(c) is ast.Attribute and c.attr in ("shape", "size") for c in lb.walk(bound)):
        return False
    loop = b.ctx.loops[-1] if b.ctx.loops else None
    return loop is not None and any(c.data["callee"] == a.data["callee"] and b.line < c.line <= loop.end_lineno
                                    and c.ctx.loops and c.ctx.loops[-1] is loop for c in calls)


def _reads_self_table(f) -> bool:
    """A method that looks a key up in a container it holds (`self.rows.get(ctx)`, `self.rows[ctx]`)."""
    def held(e) -> bool:
        d = lb.dotted(e)
        return bool(d) and d.startswith("self.")
    m = f.module
    return f.is_method and (any(type(n.ctx) is ast.Load and held(n.value) for n in m.under(f, m.nodes_of(ast.Subscript)))
                            or any(type(n.func) is ast.Attribute and n.func.attr == "get" and held(n.func.value)
                                   for n in m.under(f, m.nodes_of(ast.Call))))


def _exclusive(a, b) -> bool:
    """The two calls sit in opposite branches of one `if` (`if ttt: score_ttt() else:
    score_plain()`): one run makes only one of them, so neither is a second pass."""
    sides = {id(test): polarity for test, polarity in a.ctx.guards}
    return any(id(test) in sides and sides[id(test)] != polarity for test, polarity in b.ctx.guards)


def _blocks(nodes):
    for n in nodes:
        for field in ("body", "orelse"):
            block = getattr(n, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


def check(m):
    # Every finding needs adapted state: a table write (writes_tables) or, for the last
    # check, a backward pass (trains_on). Without either event nothing can be found.
    kinds = {e.kind for f in m.functions.values() for e in f.events}
    writes = "write" in kinds or any(counts_into_self(f) for f in m.functions.values()) or any(
        e.kind == "call" and e.data["name"] in ACCUMULATE and any("VAL" in a for a in e.data["args"])
        for f in m.functions.values() for e in f.events)  # counts of val added in place
    if not writes and "backward" not in kinds and not any(accumulated_roots(f) for f in m.functions.values()):
        return []  # (counts added in place are a hook's state, followed call by call below)
    out = []
    for f in m.functions.values() if writes else ():
        if f.qualname != "<module>":
            for later, first, table in _loop_passes(m, f):
                start = later.body[0].lineno if getattr(later, "body", None) else later.lineno  # (a loop's body: its guards)
                ctx = next((e.ctx for e in f.events if start <= e.line <= later.end_lineno), None)
                node = next((e.node for e in f.events if later.lineno <= e.line <= later.end_lineno and e.kind == "read"), later)
                if logged_only(f, later):
                    continue  # (a diagnostic: the second pass's sums reach only log lines that state no score)
                out.append(raw(RULE, f, node, ctx, "error", "medium",
                               f"a second pass (line {later.lineno}) scores tokens again from `{table}`, which the pass at "
                               f"line {first.lineno} filled while scoring them"))
        calls = [e for e in f.events if e.kind == "call" and e.data["callee"]]
        for i, a in enumerate(calls):
            ca = m.functions[a.data["callee"]]
            if ca.parent is not None and m.writes_tables(ca) and m.scores(ca):  # a closure: its cache outlives the call
                again = next((b for b in calls[i + 1:] if b.data["callee"] == a.data["callee"] and b.line > a.node.end_lineno
                              and _roots(a) & _roots(b) and not _exclusive(a, b)), None)
                if again is not None and not _adapted_names(m, a):
                    out.append(raw(RULE, f, again.node, again.ctx, "error", "medium",
                                   f"{again.data['name']}() runs again over data it already scored at line {a.line}, "
                                   "with the cache that first call filled"))
    for f in m.functions.values() if writes else ():
        out += _refilled_rescore(m, f)
    for f in m.functions.values():
        calls = [e for e in f.events if e.kind == "call" and e.data["callee"]]
        aliases = None  # computed when first needed
        for i, a in enumerate(calls):
            ca = m.functions[a.data["callee"]]
            if not any("VAL" in x for x in a.data["args"] + list(a.data["kws"].values()) + [a.data["recv"]]) and not (
                    ca.is_method and m.trains_any(ca) and reads_own_val(m, f, a)):
                continue  # (`self._train_chunk(ci, opt)` of an object that holds the val tokens it reads)
            if val_only_held(m, f, a, ca):
                continue  # (`cache.prime(shipped)` on a cache built with val: it counts what it is handed)
            hooked = hook_state(m, f, a.node)  # a function handed in that keeps counts in an object outliving the call
            trains, scores = m.trains_on(ca, "VAL"), m.scores(ca)
            fills = fills_here(m, ca, a) or bool(hooked) or counts_into_param(ca)
            scored_loop = _score_first_loop(m, f, a) if trains and not scores and not fills else None
            chained = trains and not scores and not fills and scored_loop is None and fed_by_scoring(m, f, a)
            if not ((trains and scores) or fills or scored_loop or chained):
                continue
            adapted = _adapted_names(m, a, f) | hooked
            if not adapted and fills and m.writes_tables(ca, "VAL"):
                adapted = _returned_table(m, f, a, calls[i + 1:])  # `rows = build(val)`: the table comes back
                if adapted is True:
                    out.append(raw(RULE, f, a.node, a.ctx, "error", "medium",
                                   f"{a.data['name']}() fills a table from the validation tokens and the call around it "
                                   "scores those tokens with it: every token is scored by counts that include itself "
                                   "and the tokens after it"))
                    continue
            if not adapted:
                continue
            again = repeating_loop(f, a)
            if again is not None and (scores or trains) and not any(
                    o.line == a.line and o.function == f.qualname for o in out):  # (already a later pass of an earlier call)
                found = raw(RULE, f, a.node, a.ctx, "error", "medium",
                            f"{a.data['name']}() adapts `{sorted(adapted)[0]}` on validation tokens and scores them, and "
                            f"the loop at line {again.lineno} runs it again over the same tokens: every pass after the "
                            "first rescores them with what the earlier passes learned")
                if (twice := runs_again(again)) is not None:
                    found.guards.append([lb.src(twice), True])  # (a loop that runs once rescores nothing)
                out.append(found)
                continue
            counted_only = not trains and not m.writes_tables(ca)  # only counts kept in its object
            for b in calls[i + 1:]:
                if b.line <= a.node.end_lineno or _exclusive(a, b) or not m.scores(m.functions[b.data["callee"]]):
                    continue
                if b.ctx.loops and any(o.function == f.qualname and o.line == b.ctx.loops[-1].lineno for o in out):
                    continue  # (the loop around it is reported already, as a second pass)
                if scored_loop is not None and b.line <= scored_loop.end_lineno:
                    continue  # (the next window's scoring in the same score-first loop)
                if _prefix_replay(f, a, b, calls):
                    continue
                if a.ctx.loops and b.ctx.loops and complementary(a.ctx.loops[-1], b.ctx.loops[-1]):
                    continue  # (the later loop scores the items the first left out)
                if counted_only and not _computes_loss(m, m.functions[b.data["callee"]]):
                    continue  # (`update_apm(p_target, y)` after scoring takes scores in, it computes none)
                if not any("VAL" in x for x in b.data["args"] + list(b.data["kws"].values())) and not reads_own_val(m, f, b):
                    continue
                if aliases is None:
                    aliases = _wrapper_aliases(f)
                shared = {aliases.get(n, n) for n in adapted} & {
                    aliases.get(n, n) for n in _names(b, f) | _factory_args(b.node) | _built_with(b.node)}
                if shared and shared <= {lb.dotted(b.node.func.value) if type(b.node.func) is ast.Attribute else None} \
                        and not _computes_loss(m, m.functions[b.data["callee"]]):
                    continue  # (`self._reduce(*totals)` on the adapted object: sums what was scored, scores nothing)
                if shared and logged_only(f, b.node):
                    break  # (the rescored sums reach only log lines that state no score: a diagnostic)
                if shared:
                    what = "trained" if trains else "filled a cache"
                    out.append(raw(RULE, f, b.node, b.ctx, "error", "medium",
                                   f"{b.data['name'] or lb.src(b.node.func)}() scores validation tokens again with {', '.join(f'`{n}`' for n in sorted(shared))}, which "
                                   f"{a.data['name']}() (line {a.line}) {what} on those tokens"))
                    break
    return out
