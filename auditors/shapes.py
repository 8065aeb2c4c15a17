"""Shapes of code the data-flow pass (auditors.flow) and the rules recognize by syntax:
lookups by call, gradient switches, accumulating hashes, row-and-target indexing, rolls,
the bounds of a `for ... in range(...)` loop. Functions of the syntax tree (one asks the
function's labels of an index; a loop keeps the guard made for it, so it is made once)."""

from __future__ import annotations

import ast

from auditors import labels as lb


def table_and_key(e: ast.Call, name: str, recv, args, kws):
    """(table node, table labels, key labels) of a lookup by call: `tab.get(k)`,
    `tab.index_select(0, k)` / `torch.index_select(tab, 0, k)`, `tab.take(k)` /
    `np.take(tab, k)`; None when the call has no such shape."""
    method = isinstance(e.func, ast.Attribute)
    if name == "get":
        return (e.func.value, recv, args[0]) if method and args else None
    if name == "index_select":
        key = kws.get("index")
        if len(args) == 3 or (len(args) == 2 and key is not None):  # a function: the table comes first
            return e.args[0], args[0], key if key is not None else args[2]
        if method and (len(args) == 2 or key is not None):
            return e.func.value, recv, key if key is not None else args[1]
        return None
    key = kws.get("indices", kws.get("index"))
    if len(args) >= 2 or (len(args) == 1 and key is not None):  # np.take(tab, k), torch.take(tab, k)
        return e.args[0], args[0], key if key is not None else args[1]
    if method and (args or key is not None):  # tab.take(k)
        return e.func.value, recv, key if key is not None else args[0]
    return None


def grad_switch(call) -> bool | None:
    """The literal argument of `torch.set_grad_enabled(...)`, else None."""
    if (type(call) is ast.Call and lb.call_name(call.func) == "set_grad_enabled" and len(call.args) == 1
            and type(call.args[0]) is ast.Constant and isinstance(call.args[0].value, bool)):
        return call.args[0].value
    return None


def row_and_target(info, index) -> bool:
    """`[arange(n), y]`: one index runs over the rows, another holds the targets."""
    if type(index) is not ast.Tuple or len(index.elts) != 2:
        return False
    a, b = (info.labels_of(x) for x in index.elts)
    return ("CAND" in a and "TGT" in b and "CAND" not in b) or ("CAND" in b and "TGT" in a and "CAND" not in a)


def in_arithmetic(value: ast.BinOp, name: str) -> bool:
    """`name` is an operand of this arithmetic, at any depth of its operators."""
    stack = [value]
    while stack:
        n = stack.pop()
        if type(n) is ast.Name and n.id == name:
            return True
        if type(n) is ast.BinOp:
            stack += (n.left, n.right)
    return False


def root(node):
    while isinstance(node, ast.Subscript):
        node = node.value
    return node


def next_token_index(info, index) -> bool:
    """An index (or one element of it) that is `x[t + 1]` of token data, maybe through
    `int(...)` or a name bound once to it: the token after position t, scored there."""
    for node in index.elts if type(index) is ast.Tuple else [index]:
        if type(node) is ast.Name:
            node = info.binding(node.id)
        if type(node) is ast.Call and lb.call_name(node.func) in ("int", "long", "item") and node.args:
            node = node.args[0]
        if type(node) is ast.Subscript and lb.plus_one(node.slice) and info.labels_of(node.value) & lb.DATA:
            return True
    return False


def unclamped(x, also=()):
    """`t.clamp_min(1)`, `t.clip(1, None)` (and the methods in `also`, `.float()`): t itself."""
    while type(x) is ast.Call and type(x.func) is ast.Attribute and x.func.attr in ("clamp_min", "clamp", "clip", *also):
        x = x.func.value
    return x


def normalized(e: ast.BinOp) -> bool:
    """`x / x.sum(...)` (also `.clamp_min(1)` after the sum): a vector divided by its own total;
    also smoothed, `(x + b / V) / (x.sum(...) + b)` (whether b / V adds up to b is for the
    add-k check, unnormalized_blend._smoothed_without_vocab)."""
    right = unclamped(e.right)
    totals = [unclamped(x) for x in ((right.left, right.right) if type(right) is ast.BinOp and type(right.op) is ast.Add else (right,))]
    summed = {lb.src(x.func.value) for x in totals if type(x) is ast.Call and type(x.func) is ast.Attribute and x.func.attr == "sum"}
    left = e.left
    parts = (left, left.left, left.right) if type(left) is ast.BinOp and type(left.op) is ast.Add else (left,)
    return any(lb.src(x) in summed for x in parts)


def roll_of(node) -> tuple[ast.expr, object, bool] | None:
    """(rolled tensor, literal shift or None, dims given) of `torch.roll(x, s, ...)` /
    `x.roll(s, ...)`; torch.roll without dims rolls the flattened tensor."""
    if type(node) is not ast.Call or lb.call_name(node.func) != "roll":
        return None
    method = type(node.func) is ast.Attribute and lb.call_name(node.func.value) not in ("torch", "np", "numpy")
    args = node.args if method else node.args[1:]
    base = node.func.value if method else (node.args[0] if node.args else None)
    if base is None:
        return None
    shifts = next((k.value for k in node.keywords if k.arg == "shifts"), args[0] if args else None)
    shift = shifts.value if type(shifts) is ast.Constant else (
        -shifts.operand.value if type(shifts) is ast.UnaryOp and type(shifts.op) is ast.USub
        and type(shifts.operand) is ast.Constant else None)
    dims = len(args) > 1 or any(k.arg in ("dims", "axis") for k in node.keywords)
    return base, shift, dims


def range_guard(loop) -> ast.Compare | None:
    """`for _ in range(1, args.passes)` runs its body only where `args.passes > 1`: that
    comparison (made once per loop, marked `range_guard`), as a guard of the body with
    polarity "range", when a bound is not a literal. Reachability uses it only when the
    launch settings decide it false; a bound it cannot decide (`n_chunks`) leaves the body
    as reached as the loop. Also a comprehension's generator, and the first n items taken
    by `islice(items, n)` or `items[:n]` (run where `n != 0`: a negative stop or None
    still takes items), through `enumerate`."""
    it = loop.iter
    while type(it) is ast.Call and type(it.func) is ast.Name and it.func.id == "enumerate" and it.args:
        it = it.args[0]
    made = getattr(loop, "range_guard", None)
    if made is not None:
        return made
    bounds = None
    if type(it) is ast.Call and not it.keywords and lb.call_name(it.func) in ("range", "islice"):
        args = it.args if lb.call_name(it.func) == "range" else it.args[1:]
        if 1 <= len(args) <= 2 and not all(type(a) is ast.Constant for a in args):
            start, stop = (ast.Constant(0), args[0]) if len(args) == 1 else args
            op = ast.Gt() if lb.call_name(it.func) == "range" or len(args) == 2 else ast.NotEq()
            bounds = (stop, start, op)
    elif type(it) is ast.Subscript and type(it.slice) is ast.Slice and it.slice.step is None \
            and it.slice.upper is not None and type(it.slice.upper) is not ast.Constant \
            and (it.slice.lower is None or type(it.slice.lower) is ast.Constant and it.slice.lower.value == 0):
        bounds = (it.slice.upper, ast.Constant(0), ast.NotEq())
    if bounds is None:
        return None
    stop, start, op = bounds
    made = ast.copy_location(ast.Compare(stop, [op], [start]), it)
    made.range_guard = (stop, start, ">" if type(op) is ast.Gt else "!=")
    loop.range_guard = made
    return made


def is_mask(f, e, depth: int = 0) -> bool:
    """A yes/no per token (a comparison, `~`, `&`, `|`, `bool`, maybe cast to float, or a
    name bound to one in f), not a weight such as the target's byte count."""
    while type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in ("float", "to", "double", "half", "type"):
        e = e.func.value
    if type(e) is ast.Name and depth < 3:
        bound = f.binding(e.id)
        if bound is None and e.id in f.params:  # `def weight(on, lam): return lam * on.float()`: what callers pass
            passed = f.module.arguments_for(f, e.id)
            return bool(passed) and all(a is not None and g is not None and is_mask(g, a, depth + 1) for a, g in passed)
        if bound is None:
            return _unpacked_mask(f, e.id, depth)
        return is_mask(f, bound, depth + 1)
    return type(e) is ast.Compare or (type(e) is ast.UnaryOp and type(e.op) in (ast.Invert, ast.Not)) \
        or (type(e) is ast.BinOp and type(e.op) in (ast.BitAnd, ast.BitOr)) \
        or (type(e) is ast.Call and type(e.func) is ast.Name and e.func.id == "bool")


def _unpacked_mask(f, name: str, depth: int) -> bool:
    """`h, on = self.active(prev, y)` where the callee returns `h, ok & starts[y]`: the
    element unpacked into `name` is a mask in what the callee returns."""
    for a in f.nodes:
        if type(a) is not ast.Assign or len(a.targets) != 1 or type(a.targets[0]) is not ast.Tuple \
                or type(a.value) is not ast.Call:
            continue
        names = [t.id if type(t) is ast.Name else None for t in a.targets[0].elts]
        callee = f.module.resolve(a.value.func, f) if name in names else None
        if callee is not None:
            k = names.index(name)
            return any(type(r.value) is ast.Tuple and len(r.value.elts) == len(names) and is_mask(callee, r.value.elts[k], depth + 1)
                       for r in f.module.own_returns(callee))
    return False


def read_before(m, scope, e: ast.Subscript) -> bool:
    """The scope (the innermost loop, else the statement) also reads the same stream one
    position earlier: `toks[t - 1]` beside `toks[t]`, or `toks[s - 1 : ...]` (the inputs)
    beside `toks[s : s + n]` (so what is read at t, or from s, follows that context).
    The streams read that way are found once per scope and position (kept with the module,
    whose tree holds the scope)."""
    pos = e.slice.id if type(e.slice) is ast.Name else e.slice.lower.id

    def earlier(_m) -> set[str]:
        found = set()
        for n in lb.walk(scope):
            s = n.slice.lower if type(n) is ast.Subscript and type(n.slice) is ast.Slice else getattr(n, "slice", None)
            if type(n) is ast.Subscript and type(s) is ast.BinOp and type(s.op) is ast.Sub and type(s.left) is ast.Name \
                    and s.left.id == pos and type(s.right) is ast.Constant and s.right.value == 1:
                found.add(ast.dump(n.value))
        return found
    return ast.dump(e.value) in m.once(("read before", id(scope), pos), earlier)


def through_filters(comp, labels: frozenset, labels_of=None, f=None) -> frozenset:
    """The splits a comprehension's filters let through: a test naming one split keeps only it
    (`if "train" in f`) or drops it (`if not os.path.basename(f).startswith("fineweb_val_")`),
    also by membership in a collection of one split's file names (`if f.name not in held_out`,
    `held_out` made from the val pattern), also through a predicate of the module (in function f)
    returning such a test (`if not self.is_holdout(p)` with `return f"_{self.tag}_" in path.name`,
    `tag = "val"`). A test on the folder holding the file (`f.parent.name`, `dirname(f)`)
    filters nothing: the split is named by the file."""
    items = {n.id for g in comp.generators for n in lb.walk(g.target) if type(n) is ast.Name}
    for test in (t for g in comp.generators for t in g.ifs):
        test = _predicate_inlined(test, f) if f is not None else test
        if any(type(n) is ast.Attribute and n.attr in ("parent", "parents") or type(n) is ast.Call
               and lb.call_name(n.func) == "dirname" for n in lb.walk(test)):
            continue
        named = lb.EMPTY.union(*(lb.split_names(text) for text in _texts(test, f))) & lb.DATA
        if not named and labels_of is not None and type(test) is ast.Compare and len(test.ops) == 1 \
                and type(test.ops[0]) in (ast.In, ast.NotIn) and _mentions(test.left, items) \
                and not _mentions(test.comparators[0], items):
            named = labels_of(test.comparators[0]) & lb.DATA  # (the item looked up in another collection)
        if named and named != lb.DATA:
            labels = labels - (lb.DATA - named if affirms(test) else named)
    return labels


def _predicate_inlined(test, f):
    """`not pred(x)` / `pred(x)` of a module function whose body returns one expression: that
    expression in the call's place (so `not` keeps its sense)."""
    if type(test) is ast.UnaryOp and type(test.op) is ast.Not:
        inner = _predicate_inlined(test.operand, f)
        return test if inner is test.operand else ast.UnaryOp(ast.Not(), inner)
    g = f.module.resolve(test.func, f) if type(test) is ast.Call else None
    body = [st for st in g.node.body if not (type(st) is ast.Expr and type(st.value) is ast.Constant)] if g else []
    return body[0].value if len(body) == 1 and type(body[0]) is ast.Return and body[0].value is not None else test


def _texts(test, f) -> list[str]:
    """The strings a test compares with: its constants, and its f-strings with the fields that
    read a class attribute's constant default filled in (`f"_{self.holdout_tag}_"`: `_val_`)."""
    out = [c.value for c in lb.walk(test) if type(c) is ast.Constant and type(c.value) is str]
    for j in (n for n in lb.walk(test) if type(n) is ast.JoinedStr) if f is not None else ():
        parts = []
        for v in j.values:
            held = v.value if type(v) is ast.FormattedValue else v
            if type(held) is ast.Attribute and held.attr in f.module.class_defs:
                held = _constant_source(f.module.class_defs[held.attr])
            parts.append(held.value if type(held) is ast.Constant and isinstance(held.value, str) else "*")
        out.append("".join(parts))
    return out


def _constant_source(src: str):
    try:
        return ast.parse(src, mode="eval").body
    except SyntaxError:
        return None


def affirms(test) -> bool:
    """A test that admits what it names (`name.startswith("fineweb_val")`, `"val" in p`,
    `split == "train"`), not one that excludes it (`not ...`, `!=`, `not in`)."""
    if type(test) is ast.UnaryOp and type(test.op) is ast.Not:
        return False
    if type(test) is ast.BoolOp:
        return all(map(affirms, test.values))
    if type(test) is ast.Compare:
        return not any(type(o) in (ast.NotEq, ast.NotIn, ast.IsNot) for o in test.ops)
    return True


def _mentions(e, names: set[str]) -> bool:
    return any(type(n) is ast.Name and n.id in names for n in lb.walk(e))


def made_from_range(f, e, depth: int = 0) -> bool:
    """A list of positions made from a range (`starts = list(range(0, n, stride))`, a slice of
    it, `... if n > L else [0]`), through the names it is bound to."""
    if depth > 8 or e is None:
        return False
    if type(e) is ast.Name:
        return made_from_range(f, f.binding(e.id), depth + 1)
    if type(e) is ast.Subscript:
        return made_from_range(f, e.value, depth + 1)
    if type(e) is ast.IfExp:
        return made_from_range(f, e.body, depth + 1) or made_from_range(f, e.orelse, depth + 1)
    if type(e) is ast.Call and lb.call_name(e.func) in ("list", "tuple", "sorted") and e.args:
        return made_from_range(f, e.args[0], depth + 1)
    return type(e) is ast.Call and lb.call_name(e.func) == "range"
