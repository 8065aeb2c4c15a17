"""Previous-token mixing without a BOS mask (RULES.md §8, SmearGate "BOSFix", #1797).

`x = x + g * shift(x)` copies position t-1 into position t (the shift written as a
slice `x[:, :-1]` padded or concatenated, or `roll(x, 1)`; the mix assigned, added in
place or returned). In a packed stream the
last token of document N then leaks into document N+1; when evaluation batches or
scores documents out of stream order (phased / per-document TTT) that is a C1 leak.
The fix zeroes the gate where the input token is BOS (#1851, #1855, #1868): any
comparison of the token ids inside the mixing function counts as a mask.
Severity is error when the file also splits the validation stream into documents
(an elementwise `val_tokens == bos_id` mask, as document-batched or phased evaluation
builds), else warning: scored in stream order the mix only sees the true
previous token (#1667, merged, runs it unmasked).
A causal convolution added to its input (`x + g * conv1d(F.pad(x, (K - 1, 0)), w)`, a
"Canon layer" or short conv) mixes the K - 1 previous positions the same way.
BigramHash (hashing previous token *ids* into an embedding) is not this construct.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.shift_mixing import compares_ids, layout_base
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("smear-without-bos-mask", "cross_doc_leak", "previous-token mixing without a BOS mask",
                "RULES.md §8 (#1797; fixes #1851, #1855, #1868)")


def _prev_slice_of(node: ast.AST, before: frozenset = frozenset(), pads: frozenset = frozenset()) -> str | None:
    """The name whose previous positions `node` reads: `x[:, :-1]` (also `0:-1`, `:T - 1`:
    every position but the last, i.e. the previous token of the next one),
    `torch.roll(x, 1, ...)` / `x.roll(shifts=1)` (each position gets the one before), or a
    padding that adds one position in front and drops the last (`F.pad(x, (0, 0, 1, -1))`,
    `self.time_shift(x)` with `self.time_shift = nn.ZeroPad2d((0, 0, 1, -1))`)."""
    if type(node) is ast.Call and node.args and (
            (lb.call_name(node.func) == "pad" and len(node.args) >= 2 and (_shift_pad(node.args[1]) or _front_pad(node.args[1])
                                                                      and type(layout_base(node.args[0])) in (ast.Name, ast.Attribute)))
            or (type(node.func) is ast.Attribute and node.func.attr in pads)):
        return lb.src(layout_base(node.args[0]))
    if isinstance(node, ast.Subscript):
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for it in items:
            if (isinstance(it, ast.Name) and it.id in before) or _one_before(it):
                return lb.src(node.value)  # x[:, prev_idx], prev_idx = arange(T) - 1: a gather of the position before
            if isinstance(it, ast.Slice) and it.step is None and _is_zero_or_none(it.lower) and _minus_one(it.upper):
                return lb.src(_padded(node.value))
    else:
        rolled = shapes.roll_of(node)
        if rolled and rolled[1] == 1:
            return lb.src(rolled[0])
    return None


_VIEWS = {"reshape", "view", "flatten", "contiguous"}
_PAD_MODULES = {"ZeroPad2d", "ZeroPad1d", "ConstantPad1d", "ConstantPad2d"}


def _shift_pad(spec) -> bool:
    """A padding spec whose last pair adds one position in front and removes one at the end."""
    return type(spec) in (ast.Tuple, ast.List) and len(spec.elts) >= 2 \
        and [lb.src(e) for e in spec.elts[-2:]] == ["1", "-1"]


def _front_pad(spec) -> bool:
    """A padding spec whose last pair adds positions in front only (`(K - 1, 0)`): a causal
    convolution's input, each output then covers the K - 1 positions before it."""
    return type(spec) in (ast.Tuple, ast.List) and len(spec.elts) >= 2 and lb.src(spec.elts[-1]) == "0" \
        and not (type(spec.elts[-2]) is ast.Constant and spec.elts[-2].value == 0)


def _pad_attributes(m) -> frozenset:
    """Attributes bound to a shifting pad module (`self.time_shift = nn.ZeroPad2d((0, 0, 1,
    -1))`) or to a convolution over the sequence padded in front (`self.conv = nn.Conv1d(d, d,
    K, groups=d, padding=K - 1)`, its first T outputs kept): each output mixes earlier positions."""
    return frozenset(t.attr for a in m.nodes_of(ast.Assign) if type(a.value) is ast.Call and a.value.args and (
        lb.call_name(a.value.func) in _PAD_MODULES and _shift_pad(a.value.args[0]) or _padded_conv(a.value))
        for t in a.targets if type(t) is ast.Attribute)


def _padded_conv(made: ast.Call) -> bool:
    """`nn.Conv1d(..., padding=p)` with a padding that is not none (0, "valid") nor centred ("same")."""
    if lb.call_name(made.func) != "Conv1d":
        return False
    padding = next((k.value for k in made.keywords if k.arg == "padding"), made.args[4] if len(made.args) > 4 else None)
    return padding is not None and not (type(padding) is ast.Constant and padding.value in (0, "valid", "same"))


def _one_before(e) -> bool:
    """`arange(T) - 1` (clamped or not) in e: each position's predecessor, as an index."""
    return any(map(_arange_minus_one, lb.walk(e)))


def _arange_minus_one(n) -> bool:
    return type(n) is ast.BinOp and type(n.op) is ast.Sub and type(n.right) is ast.Constant and n.right.value == 1 \
        and type(n.left) is ast.Call and lb.call_name(n.left.func) in lb.RANGE_FUNCS


def _padded(e: ast.expr) -> ast.expr:
    """What a padding puts one position later: `F.pad(h, (0, 0, 1, 0))[:, :-1]` and
    `cat([zeros, h], 1)[:, :-1]` shift h."""
    if isinstance(e, ast.Call) and e.args:
        name = lb.call_name(e.func)
        if name == "pad":
            return e.args[0]
        if name in ("cat", "concatenate") and isinstance(e.args[0], (ast.List, ast.Tuple)) and e.args[0].elts:
            return e.args[0].elts[-1]
    return e


def _is_zero_or_none(e) -> bool:
    return e is None or (type(e) is ast.Constant and e.value == 0)


def _minus_one(e) -> bool:
    """`-1`, or `n - 1`: the end of a slice that leaves out the last position. Only a
    negation, a constant or a subtraction can read so: tested before unparsing."""
    if type(e) in (ast.UnaryOp, ast.Constant):
        return lb.src(e) == "-1"
    return type(e) is ast.BinOp and type(e.op) is ast.Sub and type(e.right) is ast.Constant and e.right.value == 1


def _shifted(expr: ast.AST, aliases: dict, before: frozenset = frozenset(), views: dict | None = None,
             pads: frozenset = frozenset()) -> set[str]:
    """Names whose previous position appears in `expr` as a value (directly, via a shifted
    alias, or via a reshaped view: `flat = h.reshape(-1, d)`, then `flat[:-1]` shifts h
    across rows); one used as an index (`is_boundary[prev]`) mixes nothing."""
    out, todo = set(), [expr]
    while todo:
        sub = todo.pop()
        p = _prev_slice_of(sub, before, pads)
        if p:
            out.add((views or {}).get(p, p))
        if type(sub) is ast.Name and sub.id in aliases:
            out.add(aliases[sub.id])
        todo.extend([sub.value] if type(sub) is ast.Subscript else ast.iter_child_nodes(sub))
    return out


def _mixed(value: ast.AST, aliases: dict, targets: set[str], before: frozenset = frozenset(),
           pads: frozenset = frozenset()) -> str | None:
    """The name of `targets` that `value` adds to its own previous position, if any. A sum
    taken modulo a table size or xor-ed (`(x * A + prev * B) % n`) hashes token ids, as
    BigramHash does: it mixes no states."""
    if any(type(b) is ast.BinOp and type(b.op) in (ast.Mod, ast.BitXor) for b in lb.walk(value)):
        return None
    for b in lb.walk(value):
        if isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add):
            for t in targets:
                if any(t in _shifted(side, aliases, before, None, pads) for side in (b.left, b.right)) \
                        and any(isinstance(n, ast.Name) and n.id == t for side in (b.left, b.right) for n in lb.walk(side)):
                    return t
    return None


def documents_split(m) -> bool:
    """The file splits the validation stream into documents (`val_tokens == bos_id` used as
    an array), as document-batched or phased evaluation does: then a shift across a
    document boundary is scored out of stream order. Computed once per module."""
    return bool(splitters(m))


def splitters(m) -> list[str]:
    """The functions that split the validation stream into documents (see documents_split)."""
    def compute(m) -> list[str]:
        masks = _elementwise_compares(m)
        return sorted({f.qualname for f, ev in m.events("compare") if id(ev.node) in masks and not _padding_mark(ev.node) and any(
            "VAL" in a and not b & (lb.DATA | {"TGT"}) for a, b in ((ev.data["left"], ev.data["right"]),
                                                                 (ev.data["right"], ev.data["left"])))
            and _feeds_scoring(m, f)})
        # (tokens against a marker, not a hint against the target)
    return m.once("document splitters", compute)


def _padding_mark(c: ast.Compare) -> bool:
    """`y != -100`: tokens compared with a negative number, the ignore index of padded
    targets; no token id is negative, so it marks no document start."""
    return any(type(x) is ast.UnaryOp and type(x.op) is ast.USub and type(x.operand) is ast.Constant
               for x in [c.left, *c.comparators])


def _feeds_scoring(m, f) -> bool:
    """The documents found are scored: f scores them (itself or through what it calls), or a
    caller computes losses itself or hands what f returns to a function that scores (`docs =
    find_docs(val)`, then `eval_docs(model, docs)`, or `loss = model(x, y)` on rows cut from
    them); a byte-count audit that splits documents
    and runs no model is none, whatever the driver that calls it scores elsewhere, and so is
    a method called for its effect (counts restarted at each BOS), whose split orders nothing."""
    if m.scores(f):
        return True
    for g, site in m.call_sites(f):
        if any(st.value is site.node for st in m.under(g, m.nodes_of(ast.Expr))):
            continue  # (`uni.absorb_until(toks, end)`: the split restarts state kept in an object; no scoring order)
        if any(e.kind == "ce" or e.kind == "call" and e.data["name"] == "log_softmax" for e in g.events):
            return True  # the caller computes losses itself
        assigns = m.under(g, m.nodes_of(ast.Assign))
        held = {t.id for a in assigns if a.value is site.node for t in a.targets if type(t) is ast.Name}
        loops = m.under(g, m.nodes_of(ast.For))
        for _ in range(12):  # `short, long_, thr = split_docs(docs)`, `mine = short[a:b]`, `for r in mine:`: made from them
            grown = held | {x.id for a in assigns if any(type(n) is ast.Name and n.id in held for n in lb.walk(a.value))
                            for t in a.targets for x in lb.walk(t) if type(x) is ast.Name and type(x.ctx) is ast.Store}
            grown |= {x.id for lp in loops if any(type(n) is ast.Name and n.id in held for n in lb.walk(lp.iter))
                      for x in lb.walk(lp.target) if type(x) is ast.Name}
            if grown == held:
                break
            held = grown
        if any(e.kind == "call" and (e.data["callee"] and m.scores(m.functions[e.data["callee"]]) or not e.data["callee"] and any(
                "TGT" in a for a in e.data["args"])) and any(
                type(x) is ast.Name and x.id in held or x is site.node for a in [*e.node.args, *(k.value for k in e.node.keywords)]
                for x in lb.walk(a)) for e in g.events):
            return True
    return False


def _elementwise_compares(m) -> set[int]:
    """Comparisons used as arrays (a mask passed on, indexed with, assigned, or asked for
    `.nonzero()`), not as the test of an `if` (a shard header check)."""
    out = {id(a) for c in m.nodes_of(ast.Call) for a in c.args if type(a) is ast.Compare}
    out |= {id(n.value) for n in m.nodes_of(ast.Attribute) if type(n.value) is ast.Compare}
    out |= {id(n.slice) for n in m.nodes_of(ast.Subscript) if type(n.slice) is ast.Compare}
    out |= {id(n.value) for n in m.nodes_of(ast.Assign) if type(n.value) is ast.Compare}
    return out


def _mask_used(f, node) -> bool:
    """A token comparison (`ids != bos`) reaches the mixing statement: in it, or in the
    binding of a name it uses (`not_bos = (ids != bos)...`, `prev = roll(h, 1) * keep`),
    followed through a few bindings. A mask computed and left unused masks nothing."""
    seen, todo = set(), [node]
    for _ in range(4):
        nxt = []
        for st in todo:
            if compares_ids(st) or _handed_mask(f, st):
                return True
            for n in lb.walk(st):
                if type(n) is ast.Name and n.id not in seen:
                    seen.add(n.id)
                    nxt += [a for a in f.nodes if type(a) is ast.Assign and any(
                        type(t) is ast.Name and t.id == n.id for t in a.targets)]
        todo = nxt
    return False


def _handed_mask(f, st) -> bool:
    """`prev.masked_fill(fresh.unsqueeze(-1), 0.0)` with `fresh` a parameter: positions the
    caller marks (document starts, segment boundaries) are reset."""
    return any(type(n) is ast.Call and lb.call_name(n.func) in ("masked_fill", "masked_fill_") and n.args
               and any(type(x) is ast.Name and x.id in f.params for x in lb.walk(n.args[0])) for n in lb.walk(st))


def check(m):
    shifts = [b.lineno for b in m.nodes_of(ast.BinOp) if _arange_minus_one(b)]  # `arange(T) - 1`, rare: look for it first
    before = frozenset(t.id for a in m.nodes_of(ast.Assign) if shifts and m.may_hold(a, shifts) and _one_before(a.value)
                       for t in a.targets if isinstance(t, ast.Name))
    prev_slices = {n for n in m.nodes_of(ast.Subscript) if _prev_slice_of(n, before)}  # tested once, not once per enclosing function
    pads = _pad_attributes(m)
    prev_slices |= {n for n in m.nodes_of(ast.Call) if type(n.func) in (ast.Attribute, ast.Name) and _prev_slice_of(n, pads=pads)}
    if not prev_slices:
        return []
    lines = sorted(n.lineno for n in prev_slices)
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.may_hold(f.node, lines) or not any(n in prev_slices for n in f.nodes):
            continue
        aliases = {}  # prev = cat([zeros, x[:, :-1]]) -> prev: x
        views = {t.id: node.value.func.value.id for node in f.nodes if type(node) is ast.Assign
                 and type(node.value) is ast.Call and type(node.value.func) is ast.Attribute
                 and node.value.func.attr in _VIEWS and type(node.value.func.value) is ast.Name
                 for t in node.targets if type(t) is ast.Name}  # flat = h.reshape(-1, d)
        for node in f.nodes:
            if type(node) is ast.Assign and len(node.targets) == 1 and type(node.targets[0]) is ast.Name:
                target, targets = node.targets[0].id, {node.targets[0].id}
            elif type(node) is ast.AugAssign and type(node.target) is ast.Name and type(node.op) is ast.Add:
                target, targets = node.target.id, {node.target.id}  # x += g * prev
            elif type(node) is ast.Return and node.value is not None:
                target, targets = None, set(aliases.values())  # return x + g * prev
            else:
                continue
            if not aliases and not m.may_hold(node, lines):
                continue  # no shifted slice in its value, and no alias of one yet
            src = _shifted(node.value, aliases, before, views, pads)
            if not src:
                continue  # nothing shifted in the value, so in none of its parts: no mixing
            if type(node) is ast.Assign and not any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add)
                                                   for b in lb.walk(node.value)):
                aliases[target] = next(iter(src))
                continue
            if type(node) is ast.AugAssign:
                mixed = target if target in src else None
            else:
                mixed = _mixed(node.value, aliases, targets | src if type(node) is ast.Return else targets, before, pads)
            if mixed is None or _mask_used(f, node):
                continue
            ctx = next((e.ctx for e in f.events if node.lineno <= e.line <= node.end_lineno), None)
            found = raw(RULE, f, node, ctx, "error" if documents_split(m) else "warning", "medium",
                        f"mixes the previous position of `{mixed}` into each position with no mask at BOS: "
                        "the last token of one document leaks into the next")
            found.requires = splitters(m)  # (the leak matters only where documents are scored apart)
            out.append(found)
    return out
