"""Each position given the token after it as an input (RULES.md §2 C1, §3).

`partner = torch.roll(ids, -1, dims=1)`, then `pair = ids * A + partner * B` (or
`x + g * roll(x, -1)`, `cat([x[:, 1:], pad])`): position t's features hold x_{t+1},
the very token it is scored on. It is the mirror image of BigramHash / SmearGate,
which read the token *before* (legal when rows are kept apart), so the shift's sign is
what matters. The rule looks for a tensor shifted one position towards the future
(a roll by -1, a `[..., 1:]` slice padded at its end) combined by arithmetic with the
unshifted tensor; also a roll by +1 along the rows (`roll(ids, 1, dims=1)`, a BigramHash's
previous token) whose first column is never reset: it wraps the row's last token around
into position 0, so every row carries a later token from its first position on. A shifted copy used on its own (the targets of a loss:
`cross_entropy(logits, roll(x, -1))`) or compared (`roll(x, -1) == bos`, a boundary
mask) combines nothing and is not flagged.

The same leak without a shift: a pair feature `pair(w[:-1], w[1:])` (in a helper or
inline) taken over the window that holds the targets as well as the inputs (a `w` that
is also cut into `w[:-1]` inputs and `w[1:]` targets, or `seq[s:e + 1]` beside the
inputs `seq[s:e]`) and handed to the model beside those inputs: its entry t pairs
input t with token t + 1. BigramHash over the inputs alone (`pair(x[:, :-1], x[:, 1:])`
padded at its front) pairs each token with the one before and stays clean.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.adapted import root_name
from auditors.model import RuleInfo
from auditors.rules import assigned_pairs, guards_of, raw
from auditors.shift_mixing import Scan, flattens, view_base

RULE = RuleInfo("next-token-feature", "future_token_peek", "each position is given the next token as an input",
                "RULES.md §2 C1, §3")


def next_of(node, flat=()) -> str | None:
    """The source of the tensor whose next position `node` reads at every position."""
    rolled = shapes.roll_of(node)
    if rolled:
        return lb.src(view_base(rolled[0])) if rolled[1] == -1 else None
    if type(node) is ast.Call and node.args:
        name = lb.call_name(node.func)
        if name in ("cat", "concatenate") and type(node.args[0]) in (ast.List, ast.Tuple) and node.args[0].elts:
            return _forward_slice(node.args[0].elts[0])  # cat([x[:, 1:], pad], 1)
        if name == "pad":
            return _forward_slice(node.args[0])  # F.pad(x[:, 1:], (0, 1))
    return None


def _forward_slice(e) -> str | None:
    """`x[..., 1:]`: every position but the first, so that position t holds x_{t+1}."""
    if type(e) is not ast.Subscript:
        return None
    last = e.slice.elts[-1] if type(e.slice) is ast.Tuple else e.slice
    if type(last) is ast.Slice and last.upper is None and last.step is None \
            and type(last.lower) is ast.Constant and last.lower.value == 1:
        return lb.src(view_base(e.value))
    return None


def wrapped_previous(node, flat=()) -> str | None:
    """`roll(x, 1, dims=1)`: the previous position along each row, and at a row's first
    position its *last* one, which wraps around (unless that column is reset)."""
    rolled = shapes.roll_of(node)
    if rolled and rolled[1] == 1 and rolled[2] and not flattens(rolled[0]) \
            and not (type(rolled[0]) is ast.Name and rolled[0].id in flat):
        return lb.src(view_base(rolled[0]))
    return None


def check(m):
    return _shifted_mixes(m) + _window_pairs(m)


def _shifted_mixes(m):
    calls = m.nodes_of(ast.Call)
    lines = sorted(n.lineno for n in calls if next_of(n) is not None or wrapped_previous(n) is not None)
    if not lines:
        return []
    holders = [f for f in m.functions.values() if f.qualname != "<module>" and m.may_hold(f.node, lines)]
    ahead, wrapped, out = Scan(next_of, {f.qualname for f in holders}), Scan(wrapped_previous), []
    scanned = {f.qualname for f in holders} | {g.qualname for h in holders for g, _ in m.call_sites(h)}  # (and callers:
    for f in m.functions.values():  # `p1, p2 = shifts(t)`, the shift made in a helper, is mixed there)
        if f.qualname == "<module>" or f.qualname not in scanned:
            continue
        for node, mixed in ahead.mixes(f):
            out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                           f"combines `{mixed}` with its own next position (a shift by -1): each position "
                           "is given the token it is scored on"))
        found = list(wrapped.mixes(f))
        if found and not _first_column_reset(f):
            for node, mixed in found:
                out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                               f"combines `{mixed}` with a roll by one along its rows that wraps around: each row's first "
                               "position is given the row's last token, a later one, because that column is never reset"))
    return out


def _first_column_reset(f) -> bool:
    """f writes into a slice of something (`before[:, 0] = pad`) or masks by position (a
    comparison with a range, `arange(T) > 0`). A comparison of token ids (`ids != bos`)
    masks document starts, not a row's first column, which rarely holds a BOS."""
    return any(type(t) is ast.Subscript for n in f.nodes if type(n) is ast.Assign for t in n.targets) or any(
        type(c) is ast.Compare and any(type(x) is ast.Call and lb.call_name(x.func) in lb.RANGE_FUNCS for x in lb.walk(c))
        for c in f.nodes)


# ---- pair features over the window that holds the targets ---------------------------
def _last(sl):
    return sl.elts[-1] if type(sl) is ast.Tuple else sl


def _cut(e) -> str | None:
    """"head" for `w[..., :-1]`, "tail" for `w[..., 1:]`, else None."""
    if type(e) is not ast.Subscript or type(_last(e.slice)) is not ast.Slice:
        return None
    sl = _last(e.slice)
    if sl.step is not None:
        return None
    if sl.lower is None and sl.upper is not None and lb.src(sl.upper) == "-1":
        return "head"
    if sl.upper is None and sl.lower is not None and lb.src(sl.lower) == "1":
        return "tail"
    return None


def _one_past(e) -> str | None:
    """"window" for `seq[s:e + 1]`: one token past an end (the inputs' end, when
    `seq[s:e]` is read beside it)."""
    if type(e) is ast.Subscript and type(e.slice) is ast.Slice and type(e.slice.upper) is ast.BinOp \
            and type(e.slice.upper.op) is ast.Add and lb.src(e.slice.upper.right) == "1":
        return "window"
    return None


_JOINS = {"cat", "concatenate", "pad", "stack", "hstack", "vstack"}


def _pairs_of(node, aliases: dict) -> set[str]:
    """Sources w whose `w[:-1]` and `w[1:]` one combining expression reads together."""
    seen: dict[str, set] = {}
    for sub in lb.walk(node):
        if type(sub) is ast.Compare:
            return set()  # `w[1:] != w[:-1]`: a boundary test, no feature
        if type(sub) is ast.Call and lb.call_name(sub.func) in _JOINS:
            return set()  # `cat([x[:, :1], x[:, 1:] + g * x[:, :-1]])`: placed one position on (SmearGate)
        if type(sub) is ast.BinOp and type(sub.op) is ast.Sub:
            return set()  # `ends[1:] - ends[:-1]`: lengths
        cut = _cut(sub)
        if cut:
            seen.setdefault(lb.src(view_base(sub.value)), set()).add(cut)
        elif type(sub) is ast.Name and sub.id in aliases:
            base, cut = aliases[sub.id]
            seen.setdefault(base, set()).add(cut)
    return {w for w, cuts in seen.items() if cuts == {"head", "tail"}}


def _cut_aliases(f) -> dict:
    """`prev = ids[:, :-1]` -> {"prev": ("ids", "head")}."""
    out = {}
    for st in _under(f, ast.Assign):
        for t, v in assigned_pairs(st):
            if type(t) is ast.Name and _cut(v):
                out[t.id] = (lb.src(view_base(v.value)), _cut(v))
    return out


def _under(f, kind):
    return f.module.under(f, f.module.nodes_of(kind))


def _pair_helpers(m, tails: list[int]) -> dict:
    """{function: index of the parameter it pairs with its own next element} (of the
    functions holding a `[1:]` cut, whose lines are `tails`)."""
    out = {}
    for f in m.functions.values():
        if f.qualname == "<module>" or not f.params or not m.may_hold(f.node, tails):
            continue
        aliases = _cut_aliases(f)
        assigns = [st for st in _under(f, ast.Assign) if type(st.targets[0]) is ast.Name]
        for node in _under(f, ast.Return):
            if node.value is None:
                continue
            returned = {n.id for n in lb.walk(node.value) if type(n) is ast.Name}
            paired = _pairs_of(node.value, aliases) | {
                w for st in assigns if st.targets[0].id in returned for w in _pairs_of(st.value, aliases)}
            hit = next((p for p in f.params if p in paired), None)
            if hit is not None:
                out[f.qualname] = f.params.index(hit) - (1 if f.is_method else 0)
    return out


def _holder(stmt, node) -> str | None:
    """The name an assignment stores `node` (part of its value) in: positionally for
    `a, b[r] = x, f(y)`; the root name of a subscripted or attribute target."""
    if type(stmt) is not ast.Assign or len(stmt.targets) != 1:
        return None
    target = next((t for t, v in assigned_pairs(stmt) if any(n is node for n in lb.walk(v))), None)
    return root_name(target) if target is not None else None


def _mentions(e, names: set[str], nodes=()) -> bool:
    return any((type(n) is ast.Name and n.id in names) or any(n is x for x in nodes) for n in lb.walk(e))


def _window_pairs(m) -> list:
    cuts = [(s.lineno, _cut(s) or _one_past(s)) for s in m.nodes_of(ast.Subscript) if _cut(s) or _one_past(s)]
    if not any(cut == "tail" for _, cut in cuts):
        return []  # no window is cut into inputs and targets anywhere
    inputs_at = sorted(line for line, cut in cuts if cut != "tail")
    tails = sorted(line for line, cut in cuts if cut == "tail")
    helpers = _pair_helpers(m, tails)
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.may_hold(f.node, inputs_at):
            continue
        calls = _under(f, ast.Call)
        for c, window in _pairings(m, f, calls, helpers, tails):
            inputs = _window_inputs(f, c, window)
            if inputs is None:
                continue
            stmt = next((st for st in _under(f, ast.Assign) if any(n is c for n in lb.walk(st.value))), None)
            held = {_holder(stmt, c)} - {None} if stmt is not None else set()
            for d in calls:
                if d is c:
                    continue
                args = [*d.args, *(k.value for k in d.keywords)]
                pair_arg = next((a for a in args if _mentions(a, held, (c,))), None)
                if pair_arg is not None and any(a is not pair_arg and _mentions(a, inputs[0], inputs[1]) for a in args):
                    out.append(raw(RULE, f, c, guards_of(f, c.lineno), "error", "medium",
                                   f"`{lb.src(c)}` pairs each position with the token after it over a window that "
                                   f"also holds the targets, and `{lb.src(d.func)}` is given it beside the inputs: each "
                                   "position is given the token it is scored on"))
                    break
    return out


def _pairings(m, f, calls, helpers, tails):
    """(pairing expression, the tensor it pairs): calls of pair helpers, and inline
    `pair(w[:-1], w[1:])` or `(w[:-1] * A) ^ w[1:]` assigned in f (on the lines of a
    `[1:]` cut, `tails`, or where a name bound to one is read)."""
    for c in calls if helpers else ():
        g = m.resolve(c.func, f)
        i = helpers.get(g.qualname) if g is not None else None
        if i is not None and i < len(c.args):
            yield c, c.args[i]
    if not m.may_hold(f.node, tails):
        return
    aliases = _cut_aliases(f)
    for st in _under(f, ast.Assign):
        if not aliases and not m.may_hold(st, tails):
            continue
        for _, value in assigned_pairs(st):
            for sub in [value, *(ast.iter_child_nodes(value) if type(value) is ast.Call else ())]:
                paired = _pairs_of(sub, aliases) if type(sub) in (ast.Call, ast.BinOp) else set()
                if paired:
                    yield sub, ast.Name(id=min(paired))  # (the source of w stands for it)
                    break


def _window_inputs(f, c, arg):
    """(names, nodes) holding the inputs cut from the same window as `arg`, when `arg`
    is a window with its targets: `w` also cut into `w[:-1]` and `w[1:]` (itself or a
    name bound from it), or `seq[s:e + 1]` beside `seq[s:e]`. None otherwise."""
    subs = [s for s in _under(f, ast.Subscript) if not any(n is s for n in lb.walk(c))]
    if _one_past(arg):
        base, lower, upper = lb.src(arg.value), lb.src(arg.slice.lower) if arg.slice.lower else "", lb.src(arg.slice.upper.left)
        found = [s for s in subs if type(s.slice) is ast.Slice and lb.src(s.value) == base and s.slice.upper is not None
                 and lb.src(s.slice.upper) == upper and (lb.src(s.slice.lower) if s.slice.lower else "") == lower]
        return _held(f, found) if found else None
    w = lb.src(view_base(arg))
    family = {w} | {t.id for st in _under(f, ast.Assign) for t, v in assigned_pairs(st) if type(t) is ast.Name
                    and any(lb.src(n) == w for n in lb.walk(v) if type(n) in (ast.Name, ast.Attribute))}
    heads = [s for s in subs if _cut(s) == "head" and lb.src(view_base(s.value)) in family]
    tails = [s for s in subs if _cut(s) == "tail" and lb.src(view_base(s.value)) in family]
    return _held(f, heads) if heads and tails else None


def _held(f, nodes):
    names = {h for st in _under(f, ast.Assign) for n in nodes if any(x is n for x in lb.walk(st.value))
             for h in [_holder(st, n)] if h}
    return names, nodes
