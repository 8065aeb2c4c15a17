"""Statistics of the whole validation set used to score it (RULES.md §2 C1: p_t may not
depend on any statistic of future validation tokens).

    counts = torch.bincount(val_tokens, minlength=V).float() + 1
    prior = torch.log(counts / counts.sum())
    for s in range(...):                                    # the scoring loop
        logp = F.log_softmax(model(x) + beta * prior, -1)   # scored with the counts

Every position is scored with counts that include the tokens after it, its own target
among them. The rule looks, in a function that scores in a loop, for a name bound before
that loop (outside it) to counts of validation tokens: `bincount`, `histc`, `histogram`,
`Counter`, `unique(..., return_counts=True)`, or a table filled by `index_add_`,
`scatter_add_`, `index_put_(..., accumulate=True)` or `np.add.at` with them, also summed by
a first pass over the stream that scores nothing, returned by a helper of the module, or
kept in `self` by the constructor of an object built with them; and reads it (directly
or through names and arrays made from it) where the loop computes what it scores. A count
handed in as a parameter is judged where every caller computes it. Counts of training
tokens (a prior paid for in the artifact), counts that start empty and grow inside the
loop after each score (a score-first cache), and counts that only index or cut the stream
(document lengths) are not flagged.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import ctx_of, raw

RULE = RuleInfo("val-statistics", "future_token_peek", "statistics of the whole validation set used to score it",
                "RULES.md §2 C1 (no statistic of future val tokens)")

COUNTS = {"bincount", "histc", "histogram", "Counter"}
_FILLS = {"index_add_", "scatter_add_", "index_put_", "at"}
_SCORES = frozenset({"DIST", "TGTP", "TGATE"})


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.scores(f):
            continue
        found = next(((name, where, holder, loop, use) for loop in _scoring_loops(f)
                      for name, (where, holder) in _counted_before(m, f, loop).items()
                      for use in [_used_in_scoring(f, loop, name)] if use is not None), None)
        if found is not None:  # (one per scoring function: the first count it scores with)
            name, where, holder, loop, use = found
            out.append(raw(RULE, holder, where, ctx_of(holder, where), "error", "medium",
                           f"`{name}` holds counts of the whole validation set (line {where.lineno}), and the loop at "
                           f"line {loop.lineno} scores with it (line {use.lineno}): each position's probability depends "
                           "on later tokens, its own target among them"))
    return out


def _scoring_loops(f) -> list:
    """The loops of f whose body scores (a loss or the target's log-probability, also in a
    function it calls)."""
    return f.module.once(("val statistics: scoring loops", f.qualname), lambda m: _find_scoring_loops(f))


def _find_scoring_loops(f) -> list:
    m = f.module
    loops = [n for n in m.under(f, m.nodes_of(ast.For)) if not _nested_def(f, n)]
    return [loop for loop in loops if any(
        loop.lineno <= e.line <= loop.end_lineno and (e.kind == "ce" or e.kind == "call" and e.data["callee"]
                                                      and m.scores(m.functions[e.data["callee"]])) for e in f.events)
            or any("TGTP" in f.labels_of(st.value) for st in ast.walk(loop)
                   if type(st) in (ast.Assign, ast.AugAssign, ast.Expr))]


def _nested_def(f, node) -> bool:
    """The node lies in a function nested in f (its own walk reports it)."""
    return any(g.parent is f and g.node.lineno <= node.lineno <= g.node.end_lineno for g in f.module.functions.values())


def _counted_before(m, f, loop) -> dict:
    """name -> (statement, function holding it) for names that f binds before the loop, or
    that every caller hands f, to counts of validation tokens."""
    out = {}
    for st in f.node.body if f.node.lineno < loop.lineno else ():
        if st.lineno >= loop.lineno:
            break
        for node in _outside_loops(f, st):
            if node.end_lineno >= loop.lineno:
                continue  # (a `with` block that holds the loop: only what comes before it)
            if type(node) in (ast.Assign, ast.AugAssign) and type(_target(node)) is ast.Name \
                    and _counts_val(m, f, node.value):
                out.setdefault(_target(node).id, (node, f))
            elif type(node) is ast.Expr and type(node.value) is ast.Call:
                holder = _filled_with_val(f, node.value)
                if holder is not None:
                    out.setdefault(holder, (node, f))
    for attr, where in _kept_counts(m, f).items():  # `self.prior`, counted by the constructor from val it was built with
        out.setdefault(attr, where)
    for p in f.params:
        handed = f.module.arguments_for(f, p) if p not in out else []
        found = [(arg, caller) for arg, caller in handed if arg is not None and caller is not None]
        if found and all(_counts_val(m, caller, caller.binding(arg.id) if type(arg) is ast.Name else arg)
                         for arg, caller in found):
            arg, caller = found[0]
            bound = caller.binding(arg.id) if type(arg) is ast.Name else None
            where = next((st for st in ast.walk(caller.node) if type(st) is ast.Assign and st.value is bound), None) \
                if bound is not None else None
            out[p] = (where or _statement_with(caller, arg), caller)
    return out


def _kept_counts(m, f) -> dict:
    """"self.X" -> (statement, constructor) for what the constructor of f's class sets from counts
    of a parameter that some construction of the class passes validation tokens for
    (`uniq, cnt = np.unique(tokens, return_counts=True)` ... `self.prior = log(table)`)."""
    init = m.functions.get(f"{f.cls}.__init__") if f.cls else None
    if init is None or init is f:
        return {}
    index = {p: i for i, p in enumerate(init.params[1:])}
    fed = set()
    for call in m._calls_named(f.cls):
        home = m.home_of(call)
        if home is None:
            continue
        fed |= {p for p, i in index.items() if i < len(call.args) and _val_tokens(home, call.args[i])}
        fed |= {k.arg for k in call.keywords if k.arg in index and _val_tokens(home, k.value)}
    out = {}
    for p in fed:
        for name, st in _counted_names(init, p).items():
            if name.startswith("self."):
                out.setdefault(name, (st, init))
    return out


def _counted_names(g, param: str) -> dict:
    """name or "self.attr" -> its assignment, for what g binds from counts of what `param` holds
    (`starts = (tokens == bos)`, `self.doc_of = cumsum(starts)`, then `bincount(self.doc_of,
    weights=digit[tokens])`)."""
    derived, counted = {param}, {}
    stores = [st for st in ast.walk(g.node) if type(st) in (ast.Assign, ast.AugAssign)]
    for _ in range(5):
        grown = False
        for st in stores:
            targets = st.targets if type(st) is ast.Assign else [st.target]
            counts = any(type(c) is ast.Call and _count_call(c) and any(_reads(a, derived) for a in _counted_args(c))
                         for c in ast.walk(st.value)) or _reads(st.value, set(counted))
            for t in targets:
                for key in _store_keys(t):
                    if counts and key not in counted:
                        counted[key] = st
                        grown = True
                    if _reads(st.value, derived) and key not in derived:
                        derived.add(key)
                        grown = True
        if not grown:
            break
    return counted


def _counted_args(c: ast.Call) -> list:
    """What a counting call counts: its first argument and its weights (`bincount(doc_of,
    weights=digit[tokens])`)."""
    return [*c.args[:1], *(k.value for k in c.keywords if k.arg == "weights")]


def _count_call(c: ast.Call) -> bool:
    name = lb.call_name(c.func)
    return name in COUNTS or name == "unique" and any(
        k.arg == "return_counts" and type(k.value) is ast.Constant and k.value.value for k in c.keywords)


def _store_keys(t) -> list[str]:
    """`x`, `self.x`, the array of `table[i] += c`, each of `a, b`."""
    while type(t) in (ast.Subscript, ast.Starred):
        t = t.value
    if type(t) in (ast.Name, ast.Attribute):
        key = lb.dotted(t)
        return [key] if key else []
    return [k for e in t.elts for k in _store_keys(e)] if type(t) in (ast.Tuple, ast.List) else []


def _outside_loops(f, st) -> list:
    """The statements of st (itself included) that no scoring loop holds: counts grown chunk by
    chunk in a loop that scores are an online table, not a count of the whole set; a loop that
    only counts (`for s in ...: counts += bincount(val[s:s + n])`) is a pass over all of it."""
    if type(st) in (ast.For, ast.While, ast.AsyncFor) and st in _scoring_loops(f):
        return []
    out = [st]
    for field in ("body", "orelse", "finalbody", "handlers"):
        for inner in getattr(st, field, ()):
            out += _outside_loops(f, inner)
    return out


def _target(st):
    return st.targets[0] if type(st) is ast.Assign and len(st.targets) == 1 else st.target if type(st) is ast.AugAssign else None


def _statement_with(f, node):
    """The innermost statement of f that holds the node."""
    best = None
    for st in ast.walk(f.node):
        if isinstance(st, ast.stmt) and st is not f.node and st.lineno <= node.lineno <= st.end_lineno:
            if best is None or st.lineno >= best.lineno:
                best = st
    return best or f.node


def _val_tokens(f, e) -> bool:
    held = f.labels_of(e)
    return "VAL" in held and not held & _SCORES


def _counts_val(m, f, e, depth: int = 0) -> bool:
    """e computes counts of validation tokens, through the names and helpers it uses."""
    if e is None or depth > 3:
        return False
    for n in _value_parts(m, e):
        if type(n) is ast.Call:
            name = lb.call_name(n.func)
            if name in COUNTS and n.args and _val_tokens(f, n.args[0]):
                return True
            if name == "unique" and n.args and _val_tokens(f, n.args[0]) and any(
                    k.arg == "return_counts" and type(k.value) is ast.Constant and k.value.value for k in n.keywords):
                return True
            g = m.resolve(n.func, f)
            if g is None and type(n.func) is ast.Name and f"{n.func.id}.__init__" in m.functions:
                init = m.functions[f"{n.func.id}.__init__"]  # `DocumentIndex(val, ...)`: what its constructor counts
                given = [p for p, a in zip(init.params[1:], n.args) if _val_tokens(f, a)]
                given += [k.arg for k in n.keywords if k.arg in init.params and _val_tokens(f, k.value)]
                if any(_counted_names(init, p) for p in given):
                    return True
            if g is not None and g is not f and g.qualname != "<module>" and any(_val_tokens(f, a) for a in n.args) \
                    and _helper_counts(m, g, depth):
                return True
        elif type(n) is ast.Name and n is not e and depth < 3:
            bound = f.binding(n.id)
            if bound is not None and _counts_val(m, f, bound, depth + 1):
                return True
    return False


def _value_parts(m, e) -> list:
    """The nodes of e that its value is made of: not the arguments of a module class's
    constructor (`TinyLM(vocab, prior=val_prior)` is a model, judged as one), which a count
    reaches only when that constructor counts them."""
    out, todo = [], [e]
    while todo:
        n = todo.pop()
        out.append(n)
        if type(n) is ast.Call and type(n.func) is ast.Name and f"{n.func.id}.__init__" in m.functions:
            continue
        todo.extend(ast.iter_child_nodes(n))
    return out


def _helper_counts(m, g, depth: int) -> bool:
    """g returns counts of the data it is handed (`np.bincount(tokens, minlength=V)` on a
    parameter, or a table it fills with them and returns); a helper that counts as a side
    effect and returns a score (a score-first pass) returns no counts."""
    counted = {h for n in ast.walk(g.node) if type(n) is ast.Expr and type(n.value) is ast.Call
               for h in [_filled_with_val(g, n.value)] if h is not None}
    counted |= {_target(st).id for st in ast.walk(g.node) if type(st) in (ast.Assign, ast.AugAssign)
                and type(_target(st)) is ast.Name and _counts_val(m, g, st.value, depth + 1)}
    returns = [r.value for r in ast.walk(g.node) if type(r) is ast.Return and r.value is not None
               and not g.labels_of(r.value) & {"TGTP", "TGATE"}]  # (a score computed with the table is no table)
    return any(_mentions(g, r, counted, 0) or _counts_val(m, g, r, depth + 1) for r in returns)


def _reads(e, names: set) -> bool:
    return any(type(n) in (ast.Name, ast.Attribute) and lb.dotted(n) in names for n in lb.walk(e))


def _filled_with_val(f, call: ast.Call) -> str | None:
    """The name of a table that `call` fills with counts of validation tokens
    (`counts.index_add_(0, val, ones)`, `np.add.at(counts, val, 1)`,
    `counts.index_put_((val,), ones, accumulate=True)`), else None."""
    name = lb.call_name(call.func)
    if name not in _FILLS or type(call.func) is not ast.Attribute:
        return None
    if name == "at":  # np.add.at(table, index, value)
        table, index = (call.args[0], call.args[1]) if len(call.args) >= 2 else (None, None)
    else:
        table = call.func.value
        index = call.args[1] if name in ("index_add_", "scatter_add_") and len(call.args) >= 2 else \
            call.args[0] if call.args else None
        if name == "index_put_" and not any(k.arg == "accumulate" for k in call.keywords):
            return None
    if type(table) is not ast.Name or index is None:
        return None
    return table.id if _val_tokens(f, index) else None


def _used_in_scoring(f, loop, name: str):
    """The statement of the loop that computes what it scores from `name`: directly, through
    names bound from it (also before the loop), or through arrays the loop fills from it
    (`temp[r, :n] = index.temperature_at(pos)`, then `logits / temp`), else None."""
    statements = [st for st in ast.walk(loop) if type(st) in (ast.Assign, ast.AugAssign, ast.Expr, ast.Return)]
    derived = {name}
    for _ in range(4):  # names the loop fills from it, a few steps deep
        grown = False
        for st in statements:
            if type(st) in (ast.Assign, ast.AugAssign) and _mentions(f, st.value, derived, 0):
                for t in st.targets if type(st) is ast.Assign else [st.target]:
                    for n in _stored_names(t):
                        if n not in derived:
                            derived.add(n)
                            grown = True
        if not grown:
            break
    for st in statements:
        value = st.value
        if value is not None and f.labels_of(value) & _SCORES and _mentions(f, value, derived, 0):
            return st
    return None


def _stored_names(t) -> list[str]:
    """The names a store target writes: `x`, the array of `x[i, :n]`, each of `a, b`."""
    while type(t) in (ast.Subscript, ast.Starred):
        t = t.value
    if type(t) is ast.Name:
        return [t.id]
    return [n for e in t.elts for n in _stored_names(e)] if type(t) in (ast.Tuple, ast.List) else []


def _value_nodes(e) -> list:
    """The nodes of e that its values come from: not what an index or a slice bound holds
    (`val[a:b + 1]` with `a, b` from document lengths cuts the stream; it computes nothing)."""
    out, todo = [], [e]
    while todo:
        n = todo.pop()
        out.append(n)
        if type(n) is ast.Subscript:
            todo.append(n.value)
            continue
        todo.extend(ast.iter_child_nodes(n))
    return out


def _mentions(f, e, names: set, depth: int) -> bool:
    for n in _value_nodes(e):
        if type(n) in (ast.Name, ast.Attribute) and lb.dotted(n) in names:
            return True
        if type(n) is ast.Name and depth < 3:
            bound = f.binding(n.id)
            if bound is not None and bound is not e and _mentions(f, bound, names, depth + 1):
                return True
    return False
