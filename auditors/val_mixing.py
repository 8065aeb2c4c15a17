"""Where validation data enters the batches a training loop draws (RULES.md §1.3, §9).

A backward pass on batches from a loader that holds both splits is reported where the
validation data enters when every entry is under a condition (a flag that switches a
val shard into the rotation), so the finding takes that condition's reach; else at the
backward pass itself. A helper whose every caller hands it batches of a stream joined
from both splits trains on validation data too, and so does a helper that a probe inside
the training loop hands val batches.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.classes import class_bases
from auditors.nearest import nearest_labels
from auditors.rules import ctx_of


def guarded_val_source(m, f):
    """(function, statement, context) where validation data enters what f trains on, when
    every such entry is under a condition: `if cfg.anneal_frac > 0: self.loader =
    Loader(cfg.val_files)` in another method of f's class. The finding belongs there, so
    its reach is that condition's."""
    if not f.cls:
        return None
    reads, sources = m.self_reads(f), []
    for g in [h for h in m.functions.values() if h.cls == f.cls]:
        for st in m.under(g, m.nodes_of(ast.Assign)):
            t = st.targets[0]
            if type(t) is ast.Attribute and type(t.value) is ast.Name and t.value.id == "self" and t.attr in reads \
                    and type(st.value) is ast.Call and "VAL" in g.labels_of(st.value):
                ctx = next((e.ctx for e in g.events if e.node is st.value), None)
                if ctx is None or not any(polarity in (True, False) for _, polarity in ctx.guards):
                    return None  # validation data enters unconditionally somewhere: the backward pass is the place
                sources.append((g, st, ctx))
    return sources[0] if sources else None


def mixed_loader(f, ev) -> bool:
    """In the loop around the backward pass, a batch comes from an object that holds both
    splits (a loader built from a pattern that matches val shards too, or whose stream had
    val shards appended), not from two bindings of one name that the analysis joins."""
    if not ev.ctx.loops:
        return False
    loop = ev.ctx.loops[-1]
    loss = {n.id for n in lb.walk(ev.node.func.value if type(ev.node.func) is ast.Attribute else ev.node) if type(n) is ast.Name}
    return any(e.kind == "call" and loop.lineno <= e.line <= loop.end_lineno and {"TRAIN", "VAL"} <= e.data.get("recv", lb.EMPTY)
               and not e.data["recv"] & {"TGT", "TGTP", "DIST"} and not _on_loss(e, loss) for e in f.events) \
        or built_mix(f, ev) is not None \
        or any(e.kind == "call" and e.data["name"] in _JOINS and loop.lineno <= e.line <= ev.line and _joins_splits(f, e.node)
               for e in f.events)


_JOINS = ("cat", "concat", "concatenate", "stack", "vstack", "hstack")


def _joins_splits(f, call: ast.Call) -> bool:
    """`torch.cat((x[:-k], fx))` with x a training batch and fx validation rows (each read
    from its nearest binding): one batch made of both splits."""
    parts = call.args[0].elts if call.args and type(call.args[0]) in (ast.Tuple, ast.List) else call.args
    held = [nearest_labels(f, p, call.lineno) for p in parts]
    return any("TRAIN" in h and "VAL" not in h for h in held) and any("VAL" in h and "TRAIN" not in h for h in held) \
        and not any(h & {"TGTP", "DIST"} for h in held)


def built_mix(f, ev):
    """(f, construction, context) of an object built from both splits at once that a call in
    the loop around the backward pass draws its batch from (`next_batch(src, n)` with `src =
    anneal if late else train_stream` and `anneal = MixedStream({k: Stream(SPLITS[k]) for k in
    MIX})`): the construction is where validation data enters, under its own conditions."""
    if not ev.ctx.loops:
        return None
    loop = ev.ctx.loops[-1]
    for e in f.events:
        if e.kind == "call" and loop.lineno <= e.line <= ev.line:
            recv = [e.node.func.value] if type(e.node.func) is ast.Attribute else []
            for a in [*e.node.args, *recv]:  # (`next_batch(src)`, `(late if on else base).next()`)
                made = _both_splits(f, a)
                if made is not None:
                    ctx = next((x.ctx for x in f.events if x.node is made), None)
                    return (f, made, ctx) if ctx is not None else None
    return None


def _both_splits(f, e, depth: int = 0):
    """The constructor call of an object holding both splits that e is (or is bound to, or
    one branch of a conditional picks), else None; a name whose bindings merely join is none."""
    if depth > 6:
        return None
    if type(e) is ast.Name:
        bound = f.binding(e.id)
        return _both_splits(f, bound, depth + 1) if bound is not None else None
    if type(e) is ast.IfExp:
        return _both_splits(f, e.body, depth + 1) or _both_splits(f, e.orelse, depth + 1)
    if type(e) is ast.Call and type(e.func) is ast.Name and e.func.id in f.module.once("class bases", class_bases):
        held = f.labels_of(e)
        return e if {"TRAIN", "VAL"} <= held and not held & {"TGT", "TGTP", "DIST"} else None
    return None


def _on_loss(e, loss: set[str]) -> bool:
    """`loss.detach()`, `(loss * scale).backward()`: a call on the loss, not on a loader."""
    recv = e.node.func.value if type(e.node.func) is ast.Attribute else None
    return recv is None or any(type(n) is ast.Name and n.id in loss for n in lb.walk(recv))


def guarded_mix(m):
    """(function, statement, context) of the place where validation data joins a list that
    holds training data (`files += val_files`, `files.extend(extra)`, `files = files +
    extra`), when there is such a place and every one is under a condition (`if
    dc.heldout_mix:`); else None."""
    sites = mix_sites(m)
    if any(not any(polarity in (True, False) for _, polarity in ctx.guards) for *_, ctx in sites):
        return None  # joined unconditionally somewhere: the backward pass is the place
    return sites[0] if sites else None


def mix_sites(m) -> list:
    """(function, statement, context) of every place where validation data joins a list of training data."""
    def find(m):
        return [(g, st, ctx_of(g, st)) for g in m.functions.values()
                for st in m.under(g, m.nodes_of(ast.AugAssign) + m.nodes_of(ast.Expr) + m.nodes_of(ast.Assign))
                if _joined(g, st) is not None]
    return m.once("val joined to train lists", find)


def _joined(g, st):
    """The value of validation data that `st` adds to a list of training data, or None."""
    if type(st) is ast.AugAssign and type(st.op) is ast.Add and type(st.target) is ast.Name:
        holder, value = st.target.id, st.value
    elif type(st) is ast.Expr and type(st.value) is ast.Call and type(st.value.func) is ast.Attribute \
            and st.value.func.attr in ("extend", "append") and type(st.value.func.value) is ast.Name and st.value.args:
        holder, value = st.value.func.value.id, st.value.args[0]
    elif type(st) is ast.Assign and len(st.targets) == 1 and type(st.targets[0]) is ast.Name \
            and type(st.value) is ast.BinOp and type(st.value.op) is ast.Add \
            and any(type(s) is ast.Name and s.id == st.targets[0].id for s in (st.value.left, st.value.right)):
        holder = st.targets[0].id  # `files = files + extra`, or `files = extra + files` (put first)
        value = st.value.right if type(st.value.left) is ast.Name and st.value.left.id == holder else st.value.left
    else:
        return None
    added, held = g.labels_of(value), g.lookup(holder)
    if added & _SCORES or held & _SCORES:
        return None  # `ttt_nll += loss * n`: a sum of scores, no list of data
    return value if "VAL" in added and "TRAIN" not in added and "TRAIN" in held else None


_SCORES = frozenset({"TGTP", "DIST", "TGT", "TIME"})


def fed_joined_streams(m, f) -> bool:
    """Every call of f hands it validation data only joined with training data, a stream of
    both splits (`for x, y in chain(val_warm, train_batches): step(x, y)`): f trains on
    validation data. Val handed on its own, or a choice between the splits, is not this
    (a helper then judged as test-time training)."""
    sites = m.call_sites(f)
    return bool(sites) and not any(
        "VAL" in v and not ("TRAIN" in v and (_joined_stream(g, a) is not None or _made_unchosen(g, a)))
        for g, e in sites for a, v in zip([*e.node.args, *(k.value for k in e.node.keywords)],
                                          [*e.data["args"], *e.data["kws"].values()]))


def _made_unchosen(g, arg, depth: int = 0) -> bool:
    """The argument is made by calls from names bound once, with no choice anywhere on the way
    (`batches = loader(paths)`, `paths = shards(root, "fineweb")`): the splits it carries come
    together, from one source naming both (a pattern that matches the val shards too), and
    are not one split or the other picked by a flag."""
    if depth > 4:
        return False
    if type(arg) is ast.Name:
        bound = g.binding(arg.id)
        return bound is not None and _made_unchosen(g, bound, depth + 1)
    if type(arg) is ast.Call:
        return all(_made_unchosen(g, a, depth + 1) for a in [*arg.args, *(k.value for k in arg.keywords)]
                   if "VAL" in g.labels_of(a))
    return type(arg) is ast.Attribute or type(arg) is ast.Constant or type(arg) is ast.JoinedStr


_JOINS = {"chain", "cat", "concatenate", "concat", "hstack", "vstack", "stack"}


def _joined_stream(g, arg):
    """The join the argument is, or is bound to (`itertools.chain(a, b)`, `a + b`), also through a
    conversion (`x.to(device)`) and the loop variable of a loop over it; else None."""
    while type(arg) is ast.Call and type(arg.func) is ast.Attribute and arg.func.attr in lb.PASS_METHODS:
        arg = arg.func.value
    if type(arg) is ast.Name and g.binding(arg.id) is None:
        loop = next((n for n in g.module.under(g, g.module.nodes_of(ast.For))
                     if arg.id in {t.id for t in lb.walk(n.target) if type(t) is ast.Name}
                     and n.lineno <= arg.lineno <= n.end_lineno), None)
        arg = loop.iter if loop is not None else arg
    if type(arg) is ast.Name and g.binding(arg.id) is not None:
        arg = g.binding(arg.id)
    joined = (type(arg) is ast.Call and lb.call_name(arg.func) in _JOINS) or (type(arg) is ast.BinOp and type(arg.op) is ast.Add)
    return arg if joined else None


def guarded_join(m, f):
    """(function, statement, context) where the validation part of a stream joined from both
    splits and handed to f is bound, when every such binding is under a condition
    (`if extra > 0: warm = [next(val_batches) ...]`, then `chain(warm, train_batches)`); else None."""
    sites = []
    for g, e in m.call_sites(f):
        for a, v in zip([*e.node.args, *(k.value for k in e.node.keywords)], [*e.data["args"], *e.data["kws"].values()]):
            join = _joined_stream(g, a) if "VAL" in v and "TRAIN" in v else None
            if join is None:
                continue
            parts = join.args if type(join) is ast.Call else [join.left, join.right]
            for name in {p.id for p in parts if type(p) is ast.Name and "VAL" in g.labels_of(p)}:
                for st in m.under(g, m.nodes_of(ast.Assign)):
                    if any(type(t) is ast.Name and t.id == name for t in st.targets) and "VAL" in g.labels_of(st.value):
                        ctx = ctx_of(g, st)
                        if not any(polarity in (True, False) for _, polarity in ctx.guards):
                            return None  # bound unconditionally somewhere: the backward pass is the place
                        sites.append((g, st, ctx))
    return sites[0] if sites else None


def inside_training(m, f, only: bool = False) -> bool:
    """f is handed validation data from a loop (up to three calls up) that also hands
    training batches to a function that trains: `_micro(probe_x, probe_y)` from a probe
    that the training loop calls beside `_micro(x, y)`, or a method of an object that keeps
    validation data, called there. A driver that calls `train()` and
    then `evaluate()` runs no loop around both. With `only`: every call of f is made directly
    by such a loop."""
    def trains_beside(g, site) -> bool:
        loops = {id(loop) for loop in site.ctx.loops}
        return bool(loops) and any(
            {id(loop) for loop in e.ctx.loops} & loops and (
                e.kind == "backward" and "TRAIN" in e.data["loss"] and "VAL" not in e.data["loss"]
                or e.kind == "call" and e.data["callee"] and any("TRAIN" in a for a in e.data["args"])
                and not any("VAL" in a for a in e.data["args"]) and m.trains_any(m.functions[e.data["callee"]]))
            for e in g.events)
    held = f.is_method and "VAL" in m.instance_data(f.cls)  # (`next(self.windows)` of val windows the object keeps)
    frontier, seen = [(g, e) for g, e in m.call_sites(f) if held or any("VAL" in a for a in e.data["args"])], {f.qualname}
    if only:  # every call of f is made there (a probe the loop runs; not also the final evaluation)
        return bool(frontier) and all(trains_beside(g, site) for g, site in m.call_sites(f))
    for _ in range(3):
        nxt = []
        for g, site in frontier:
            if trains_beside(g, site):
                return True
            if g.qualname not in seen and g.qualname != "<module>":
                seen.add(g.qualname)
                nxt += m.call_sites(g)
        frontier = nxt
    return False
