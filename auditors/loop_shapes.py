"""Shapes of loops that decide whether a call in them sees the same tokens twice.

A loop over the first E items and a loop over the items from E on cover each item
once between them; a loop over passes (`for p in range(passes)`) repeats its body on
the same data unless an argument follows the pass variable; and such a repeat happens
only when the loop runs more than once, which is a launch condition when E is a setting
(`range(1 + args.retries)` with `RETRIES=0` runs once).
"""

from __future__ import annotations

import ast

from auditors import labels as lb


def part(loop) -> tuple[str, str] | None:
    """("head", E) for a loop over the first E items (`bounds[:E]`, `range(E)`), ("tail", E)
    for one over the items from E on (`bounds[E:]`, `range(E, n)`), else None."""
    if type(loop) is not ast.For:
        return None
    it = loop.iter
    if type(it) is ast.Call and lb.call_name(it.func) == "enumerate" and it.args:
        it = it.args[0]
    if type(it) is ast.Subscript and type(it.slice) is ast.Slice and it.slice.step is None:
        lower, upper = it.slice.lower, it.slice.upper
        if lower is None and upper is not None:
            return "head", lb.src(upper)
        if lower is not None and upper is None:
            return "tail", lb.src(lower)
    if type(it) is ast.Call and lb.call_name(it.func) == "range" and 1 <= len(it.args) <= 2:
        if len(it.args) == 1 or (type(it.args[0]) is ast.Constant and it.args[0].value == 0):
            return "head", lb.src(it.args[-1])
        return "tail", lb.src(it.args[0])
    return None


def complementary(first, later) -> bool:
    """`for c in bounds[:n - k]` (scored and counted), then `for c in range(n - k, n)` (scored with
    the table frozen): the second loop scores the items the first did not, no token twice."""
    a, b = part(first), part(later)
    return a is not None and b is not None and {a[0], b[0]} == {"head", "tail"} and a[1] == b[1]


# Expressions whose value is a truth value: an argument computed by one (`strict=attempt <
# retries`) switches the callee's behaviour on a pass, it cannot pick another slice of data.
_TRUTH = (ast.Compare, ast.BoolOp)


def _selecting_names(call: ast.Call) -> set[str]:
    """Names in a call's arguments that could select what it reads (flags excluded)."""
    out = set()
    for a in [*call.args, *(k.value for k in call.keywords)]:
        if type(a) in _TRUTH or (type(a) is ast.UnaryOp and type(a.op) is ast.Not):
            continue
        out |= {n.id for n in lb.walk(a) if type(n) is ast.Name}
    return out


def repeating_loop(f, ev):
    """The innermost loop around the call when it repeats the call on the same data: the
    loop runs over something other than the data (`for p in range(passes)`) and no
    argument that could select data depends on its variable (phases that pick another
    slice each time do)."""
    if not ev.ctx.loops:
        return None
    loop = ev.ctx.loops[-1]
    if not isinstance(loop, ast.For) or f.labels_of(loop.iter) & lb.DATA:
        return None
    varying = {n.id for n in lb.walk(loop.target) if isinstance(n, ast.Name)}
    varying |= {x for st in loop.body for n in lb.walk(st) if isinstance(n, (ast.Assign, ast.AugAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) for x in _bound(t)}
    if _selecting_names(ev.node) & varying or not _reaches_end(loop.body, ev.node):
        return None
    return loop


def _bound(target) -> set[str]:
    """The names an assignment target binds (`x, y = ...`; not `args.mode = ...`, which binds none)."""
    if type(target) is ast.Name:
        return {target.id}
    if type(target) in (ast.Tuple, ast.List):
        return set().union(*map(_bound, target.elts))
    return _bound(target.value) if type(target) is ast.Starred else set()


def _completes(stmts) -> bool:
    """The block can run to its end, or to a `continue` of its loop (not every path leaves by
    return, raise or break)."""
    for st in stmts:
        kind = type(st)
        if kind in (ast.Return, ast.Raise, ast.Break):
            return False
        if kind is ast.Continue:
            return True
        if kind is ast.If and not (_completes(st.body) or _completes(st.orelse)):
            return False
        if kind in (ast.With, ast.AsyncWith) and not _completes(st.body):
            return False
        if kind is ast.Try and (not _completes(st.finalbody) or not (
                _completes(st.body) and _completes(st.orelse) or any(_completes(h.body) for h in st.handlers))):
            return False
    return True


def _holds(st, node) -> bool:
    return st.lineno <= node.lineno <= st.end_lineno and any(n is node for n in lb.walk(st))


def _reaches_end(stmts, node) -> bool:
    """Once `node` has run inside the block, execution can still reach the block's end (the
    loop's next pass): `return score(...)` inside `try` whose handler returns does not;
    the same with a handler that logs and goes on does."""
    for i, st in enumerate(stmts):
        if _holds(st, node):
            return _after(st, node) and _completes(stmts[i + 1:])
    return True


def _after(st, node) -> bool:
    kind = type(st)
    if kind in (ast.Return, ast.Raise):
        return False
    if kind is ast.If:
        return _reaches_end(st.body if any(_holds(b, node) for b in st.body) else st.orelse, node)
    if kind in (ast.With, ast.AsyncWith):
        return _reaches_end(st.body, node)
    if kind is ast.Try:
        if not _completes(st.finalbody):
            return False
        for h in st.handlers:
            if any(_holds(b, node) for b in h.body):
                return _reaches_end(h.body, node)
        if any(_holds(b, node) for b in st.body):  # the call may also raise, into a handler
            return (_reaches_end(st.body, node) and _completes(st.orelse)) or any(_completes(h.body) for h in st.handlers)
        return _reaches_end(st.orelse if any(_holds(b, node) for b in st.orelse) else st.finalbody, node)
    return True  # a simple statement, or a nested loop (it may end and go on)


def runs_again(loop) -> ast.expr | None:
    """The condition under which a `for _ in range(E)` loop runs its body a second time
    (`E > 1`; `range(a, b)`: `b - a > 1`), or None when its count is not a range's."""
    it = loop.iter
    if type(it) is not ast.Call or lb.call_name(it.func) != "range" or not 1 <= len(it.args) <= 2 or it.keywords:
        return None
    count = it.args[0] if len(it.args) == 1 else ast.BinOp(it.args[1], ast.Sub(), it.args[0])
    if type(count) is ast.Constant:
        return None  # a fixed count: nothing for a launch to decide
    return ast.Compare(count, [ast.Gt()], [ast.Constant(1)])


_SCORE_LINE = ("val_bpb", "val_loss")  # the labels of the line that states a record's score
_REPORTED = (*_SCORE_LINE, "bpb")  # what a log line may state as the score


def logged_only(f, node) -> bool:
    """The scores a pass sums (`warm += nll(...)` in the statement or block at `node`) are only
    written into log lines that state no score (`log(f"diag: {warm:.1f} nats")`): a diagnostic.
    Followed on a few steps (a name computed from them, `delta = (warm - first) / n`; the sum a
    pass's `nll` is added to; a position of the tuple the function returns, in its callers),
    where a value counts as a diagnostic only when a log line that states the score shows it
    under a label of its own (`val_bpb:{b:.4f} warm_delta:{delta:.4f}`). A value labelled
    val_bpb / val_loss is the reported score, and one used anywhere else (returned as the
    score, stored, handed on) is used."""
    around = [st for st in lb.walk(f.node) if isinstance(st, ast.stmt) and st is not f.node
              and st.lineno <= node.lineno <= st.end_lineno] if not isinstance(node, ast.stmt) else [node]
    stmts = [min(around, key=lambda st: st.end_lineno - st.lineno)] if around else []  # (the statement at the call)
    sinks = {n.target.id for st in stmts for n in lb.walk(st) if type(n) is ast.AugAssign and type(n.target) is ast.Name}
    filled = {t.value.id for st in stmts for n in (lb.walk(st) if type(st) in (ast.For, ast.While) else [st])
              if type(n) is ast.Assign for t in n.targets if type(t) is ast.Subscript and type(t.value) is ast.Name}
    if filled:  # a pass that fills a container (`settled[c] = score(...)`): its reads after the pass too
        return _only_logged(f, filled | sinks, 0, (stmts[0].lineno, f.node.end_lineno), quiet=False)
    if sinks:
        return _only_logged(f, sinks, 0, quiet=True)
    if stmts and type(stmts[0]) is ast.Assign:
        # `nll, _ = score(...)`: its reads in the rest of the pass. A whole call's result is only
        # a diagnostic where a log line that states the score shows it under a label of its own.
        sinks = {t.id for t in lb.walk(stmts[0].targets[0]) if type(t) is ast.Name}
        loops = [lp for lp in lb.walk(f.node) if type(lp) in (ast.For, ast.While) and lp.lineno < stmts[0].lineno <= lp.end_lineno]
        span = (stmts[0].lineno, min(lp.end_lineno for lp in loops) if loops else f.node.end_lineno)
        return _only_logged(f, sinks, 0, span, quiet=False)
    return False


def _only_logged(f, names: set[str], depth: int, span: tuple | None = None, quiet: bool = True) -> bool:
    """Every read of these names (within `span` of lines) ends in log lines as a diagnostic
    (see logged_only); `quiet`: a log line that states no score at all counts as one (only
    for a pass's own sums: once they are handed on, a value counts as a diagnostic only
    beside the score it is not)."""
    loads = [n for n in lb.walk(f.node) if type(n) is ast.Name and n.id in names and type(n.ctx) is ast.Load
             and (span is None or span[0] <= n.lineno <= span[1])]
    if not loads or depth > 4:
        return False
    logged = f.module.once(("diagnostic values", id(f.node), quiet), lambda m: _diagnostic_values(f, quiet))
    parents = f.module.once(("innermost statements", id(f.node)), lambda m: innermost_statements(f.node))
    derived, returned = set(), set()
    for n in loads:
        if id(n) in logged:
            continue
        st = parents.get(id(n))
        if type(st) is ast.If and st.test is n or type(st) is ast.Assign and any(
                type(t) is ast.Subscript and t.value is n for t in st.targets):
            continue  # (`if settled:` only decides whether the log line is written; `settled[ci] = ...` fills it)
        if type(st) is ast.AugAssign and type(st.target) is ast.Name:
            if st.target.id not in names:
                derived.add(st.target.id)  # (`warm += nll.sum()`: the sum of what the pass scored)
            continue
        if type(st) is ast.Assign and len(st.targets) == 1 and type(st.targets[0]) is ast.Name:
            derived.add(st.targets[0].id)
        elif type(st) is ast.Return and type(st.value) is ast.Tuple and any(e is n for e in st.value.elts):
            returned.add([i for i, e in enumerate(st.value.elts) if e is n][0])
        else:
            return False
    if derived and not _only_logged(f, derived, depth + 1, quiet=False):
        return False
    for i in returned:
        sites = f.module.call_sites(f)
        taken = [(g, a.targets[0].elts[i]) for g, site in sites for a in f.module.under(g, f.module.nodes_of(ast.Assign))
                 if a.value is site.node and type(a.targets[0]) is ast.Tuple and i < len(a.targets[0].elts)]
        if not sites or len(taken) != len(sites) or not all(
                type(t) is ast.Name and _only_logged(g, {t.id}, depth + 1, quiet=False) for g, t in taken):
            return False
    return True


def innermost_statements(root: ast.AST) -> dict[int, ast.stmt]:
    """id(node) -> the innermost statement that holds it (a statement holds itself), in one walk."""
    out: dict[int, ast.stmt] = {}
    todo = [(root, root if isinstance(root, ast.stmt) else None)]
    while todo:
        node, owner = todo.pop()
        if isinstance(node, ast.stmt):
            owner = node
        if owner is not None:
            out[id(node)] = owner
        todo.extend((c, owner) for c in ast.iter_child_nodes(node))
    return out


def _diagnostic_values(f, quiet: bool) -> set[int]:
    """Nodes of f's log calls that state no score: in an f-string that states one, the values
    whose label is not a score's (`val_bpb:{b:.4f} warm_delta:{d:.4f}`: d); with `quiet`, also
    every node of a call whose text names no score."""
    out: set[int] = set()
    logs = [c for c in lb.walk(f.node) if type(c) is ast.Call and any(w in (lb.call_name(c.func) or "") for w in ("log", "print", "info"))]
    texts = [" ".join(str(k.value) for k in lb.walk(c) if type(k) is ast.Constant and isinstance(k.value, str)) for c in logs]
    # where a line states val_bpb (the record's score), a bare `bpb:` elsewhere is another number
    reported = _SCORE_LINE if any(_SCORE_LINE[0] in t for t in texts) else _REPORTED
    for c in logs:
        if not any(type(a) is ast.JoinedStr or type(a) is ast.Constant and isinstance(a.value, str) or
                           type(a) is ast.BinOp and type(a.left) in (ast.Constant, ast.JoinedStr) for a in c.args):
            continue  # (a log line writes text: `log_softmax(z)`, `np.log(p)` are no log lines)
        text = " ".join(str(k.value) for k in lb.walk(c) if type(k) is ast.Constant and isinstance(k.value, str))
        if not any(r in text for r in reported):
            if quiet or reported is not _REPORTED and any(r in text for r in _REPORTED):
                # (or a `bpb:` of its own beside the line that states val_bpb: another number than the score)
                out |= {id(n) for n in lb.walk(c)}
            continue
        for s in (a for a in lb.walk(c) if type(a) is ast.JoinedStr):
            label = ""
            for part in s.values:
                if type(part) is ast.Constant:
                    label = str(part.value).split()[-1] if str(part.value).split() else label
                elif not any(r in label for r in reported):
                    out |= {id(n) for n in lb.walk(part)}
    return out


def first_pass(test, outer) -> bool:
    """`if ep == 0:` (or `if not ep:`) of an enclosing `for ep in range(n)`: the pass before any
    training on the chunk, where scoring it is score-first."""
    if type(test) is ast.UnaryOp and type(test.op) is ast.Not and type(test.operand) is ast.Name:
        name = test.operand.id
    elif type(test) is ast.Compare and len(test.ops) == 1 and type(test.ops[0]) is ast.Eq and type(test.left) is ast.Name \
            and type(test.comparators[0]) is ast.Constant and test.comparators[0].value == 0:
        name = test.left.id
    else:
        return False
    return any(type(lp) is ast.For and type(lp.target) is ast.Name and lp.target.id == name and type(lp.iter) is ast.Call
               and lb.call_name(lp.iter.func) == "range" and (len(lp.iter.args) == 1 or type(lp.iter.args[0]) is ast.Constant
                                                             and lp.iter.args[0].value == 0) for lp in outer)


def fresh(f, loop, line: int, expr) -> bool:
    """Every name in `expr` is bound in this iteration of `loop` before `line` and not bound
    again after it: a value of this iteration (`x, y = ...; prior.ingest(y)`), not one
    carried over from the previous iteration (`prior.ingest(pending)` with `pending = y` at
    the end of the body)."""
    stores: dict[str, list[int]] = {}
    for n in lb.walk(loop):
        if type(n) is ast.Name and type(n.ctx) is ast.Store:
            stores.setdefault(n.id, []).append(n.lineno)
    names = {n.id for n in lb.walk(expr) if type(n) is ast.Name} & (set(f.defs) | set(f.params) | set(stores))
    return bool(names) and all(n in stores and max(stores[n]) < line for n in names)
