"""Mass added to a whole distribution at proposed tokens (RULES.md §2 C2; the #1145 tilt).

The single-hint tilt can be written over the whole vocabulary: a row of boosts (zeros
with beta scattered at the hinted token, `beta * one_hot(hint, V)`) added to the model's
log-probabilities, or beta added in place (`lp.scatter_add_(-1, hint, beta)`). The row is
a distribution again only after it is renormalized over the vocabulary: handed to
`log_softmax`, less its `logsumexp` (or the closed form `log1p(p_h * expm1(beta))`),
divided by its sum. Subtracting the mean of the boosts, a maximum or a constant only
shifts every token alike, and the hinted token keeps almost all of its boost for free.
Data flow: the boosted row (built here, or returned by a helper the scoring code calls)
is read at the target without such a renormalization.
The same tilt read at the target first: the target's log-probability plus what a table
holds for the target token, `lp[y] + beta * prior[y]` (a unigram or pair log-prior, a
low-rank product `einsum(left[prev], right.t()[y])`): a product of experts that is a
distribution only less `logsumexp(lp + beta * prior)` over the vocabulary.
Legal counterpart: `log_softmax(lp + boost)`, `lp + boost - (lp + boost).logsumexp(-1)`.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import normalizers
from auditors.log_domain import in_log_domain
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("boosted-row", "unnormalized_blend", "a distribution boosted at proposed tokens, read without renormalizing",
                "RULES.md §2 C2, §3 (#1145 tilt with its normalizer)")

_IN_PLACE_ADDS = {"scatter_add_", "index_add_", "index_put_", "scatter_reduce_"}
_SCATTERS = {"scatter", "scatter_", "scatter_add", "scatter_add_", "index_fill", "index_fill_", "index_put", "index_put_"}
_BLANK = {"zeros_like", "zeros", "new_zeros", "full_like", "full", "new_full"}
_NORMALIZING = {"softmax", "log_softmax", "normalize"}
_TARGET_READS = {"gather", "take_along_dim", "take_along_axis"}


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname != "<module>" and not any(e.kind == "backward" for e in f.events):
            out += _boosted_in_place(m, f) or _added_rows(m, f) or _prior_at_target(m, f)
    return out


def _prior_at_target(m, f) -> list:
    """`lp.gather(-1, y) + beta * prior[y]`: the target's log-probability plus a value a table
    (no prediction of this position) holds for the target token, returned or scored, with no
    log-partition computed for it here. (Two log-probabilities mixed where they are scored,
    `lp + w * log(bigram[x, y])`, are unnormalized-blend's geometric mix.)"""
    if any(e.kind == "call" and (e.data["name"] in ("logsumexp", "logaddexp", "log1p") or e.data["name"] in ("log", "log2")
                                 and any(type(n) is ast.Call and lb.call_name(n.func) == "sum" for n in lb.walk(e.node)))
           for e in f.events):
        return []  # (log Z: `logsumexp(lp + beta * prior)`, `log(sum(...))`, the closed form `log1p(...)`)
    returned = {id(n) for r in m.under(f, m.nodes_of(ast.Return)) if r.value is not None for n in lb.walk(r.value)}
    scores = m.scores(f)
    for node in m.under(f, m.nodes_of(ast.BinOp)):
        if type(node.op) is not ast.Add or not (id(node) in returned or scores):
            continue
        for lp, other in ((node.left, node.right), (node.right, node.left)):
            held = f.labels_of(other)
            if "TGTP" in f.labels_of(lp) and in_log_domain(f, lp) and not held & {"TGTP", "DIST", "CAND"} \
                    and not (scores and in_log_domain(f, other)) \
                    and not normalizers.hit(f, other) and (table := _table_at_target(f, other)) is not None:
                return [raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                            f"adds to the target's log-probability what `{lb.src(table.value)}` holds for the target token "
                            f"(`{lb.src(table)}`) with no log-partition over the vocabulary: a product of experts read at "
                            "the target alone is no distribution")]
    return []


def _table_at_target(f, e, depth: int = 0):
    """The subscript in e (or in what its names are bound to) that reads a table, not a
    prediction, at the target token: `prior[y]`, `self.right.t()[tgt]`; else None."""
    for n in lb.walk(e):
        if type(n) is ast.Subscript and "TGT" in f.labels_of(n.slice) and type(n.slice) is not ast.BinOp \
                and _table(n.value) and not f.labels_of(n.value) & {"DIST", "TGTP", "CAND", "TGT"}:
            return n
        if type(n) is ast.Name and depth < 3:
            bound = f.binding(n.id)
            found = _table_at_target(f, bound, depth + 1) if bound is not None else None
            if found is not None:
                return found
    return None


def _table(e) -> bool:
    """A table held in a name or an attribute, possibly transposed (`right.t()`, `right.T`)."""
    while type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in ("t", "float", "to") \
            or type(e) is ast.Attribute and e.attr == "T":
        e = e.func.value if type(e) is ast.Call else e.value
    return type(e) in (ast.Name, ast.Attribute)


def _boosted_in_place(m, f) -> list:
    """`boosted = logp.clone(); boosted.scatter_add_(-1, hint, beta)`, then `boosted.gather(-1, y)`."""
    for ev in f.events:
        if ev.kind != "call" or ev.data["name"] not in _IN_PLACE_ADDS or type(ev.node.func) is not ast.Attribute:
            continue
        held = ev.node.func.value
        if type(held) is not ast.Name or "DIST" not in f.lookup(held.id):
            continue
        read = [e for e in f.events if e.kind == "call" and e.line > ev.line and e.data["name"] in _TARGET_READS
                and type(e.node.func) is ast.Attribute and type(e.node.func.value) is ast.Name
                and e.node.func.value.id == held.id and any("TGT" in a for a in e.data["args"])]
        if read and not normalizers.renormalized(m, f, held.id):
            return [raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                        f"adds mass in place to `{held.id}`, a distribution over the vocabulary, and reads the target from "
                        f"it (line {read[0].line}) without renormalizing: the boosted probabilities sum to more than one")]
    return []


def _added_rows(m, f) -> list:
    """`lp = lp + boost` (or `lp = tilt(lp, hint, beta)` of a helper returning that sum), then
    `lp.gather(-1, y)`, with the sum never renormalized."""
    out = []
    for a in m.under(f, m.nodes_of(ast.Assign)):
        if len(a.targets) != 1 or type(a.targets[0]) is not ast.Name:
            continue
        name = a.targets[0].id
        sums = [(f, s) for s in [_boosted_sum(f, a.value)] if s is not None] or _returned_sums(m, f, a.value)
        if sums and _read_at_target(m, f, name) and not normalizers.renormalized(m, f, name):
            g, node = sums[0]
            ctx = guards_of(g, node.lineno) if g is f else guards_of(f, a.lineno)  # (a helper runs where it is called)
            out.append(raw(RULE, g, node, ctx, "error", "medium",
                           f"adds a row of boosts at proposed tokens to the log-probabilities (`{lb.src(node)}`) and the "
                           f"target is read from the result (`{name}`) without renormalizing over the vocabulary: "
                           "the tilted probabilities sum to more than one"))
    return out


def _boosted_sum(g, e):
    """The `lp + boost` inside e when e is that sum less only terms that are no log-normalizer
    (`lp + boost - boost.mean(-1, keepdim=True)`), else None."""
    while type(e) is ast.BinOp and type(e.op) is ast.Sub:
        if any(type(c) is ast.Call and lb.call_name(c.func) in normalizers.LOG_NORMALIZERS for c in lb.walk(e.right)):
            return None  # less its logsumexp, or log Z in closed form
        e = e.left
    if type(e) is not ast.BinOp or type(e.op) is not ast.Add:
        return None
    for row, boost in ((e.left, e.right), (e.right, e.left)):
        if "DIST" in g.labels_of(row) and not _boost_row(g, row) and _boost_row(g, boost):
            # (`out = logp - log_z` with log Z of the boosted row, then `out + bonus`: normalized first)
            return None if normalizers.less_log_normalizer(g, row, boost) else e
    return None


def _boost_row(g, e, depth: int = 0) -> bool:
    """A row over the vocabulary that is zero but at proposed tokens: `zeros_like(lp).scatter_(-1,
    hint, beta)`, `beta * one_hot(hint, V)` (or a name bound to one); or a lift that is never
    negative (`(strength * log_ratio).clamp_min(0)`, kept in `self.shift` by `__init__`)."""
    if type(e) is ast.Name and depth < 3:
        bound = g.binding(e.id)
        return bound is not None and _boost_row(g, bound, depth + 1)
    if type(e) is ast.Attribute and type(e.value) is ast.Name and e.value.id == "self" and g.cls and depth < 3:
        init = g.module.functions.get(f"{g.cls}.__init__")  # `self.shift`, bound once in __init__
        stores = [a.value for a in g.module.under(init, g.module.nodes_of(ast.Assign)) for t in a.targets
                  if type(t) is ast.Attribute and lb.src(t) == lb.src(e)] if init is not None else []
        return len(stores) == 1 and _boost_row(init, stores[0], depth + 1)
    if type(e) is ast.BinOp and type(e.op) is ast.Mult:
        return _boost_row(g, e.left, depth) or _boost_row(g, e.right, depth)
    if type(e) is not ast.Call:
        return False
    if type(e.func) is ast.Attribute and e.func.attr in ("to", "float", "double", "half", "type_as", "detach"):
        return _boost_row(g, e.func.value, depth)  # (the same row, moved or cast)
    if lb.call_name(e.func) in ("clamp_min", "relu") or lb.call_name(e.func) == "clamp" and any(
            k.arg == "min" for k in e.keywords):
        return True  # a lift that is never negative (`(s * log_ratio).clamp_min(0)`): mass only added
    if lb.call_name(e.func) == "one_hot":
        return True
    if lb.call_name(e.func) in _SCATTERS and type(e.func) is ast.Attribute:
        base = e.func.value
        if type(base) is ast.Name and depth < 3:
            base = g.binding(base.id) or base
        return type(base) is ast.Call and lb.call_name(base.func) in _BLANK
    return False


def _returned_sums(m, f, value) -> list:
    """(helper, sum) for a call whose function returns a boosted sum."""
    if type(value) is not ast.Call:
        return []
    out = []
    for ev in f.events:
        if ev.kind == "call" and ev.node is value:
            for q in filter(None, (ev.data["callee"], *ev.data.get("also", ()))):
                g = m.functions[q]
                out += [(g, s) for r in m.under(g, m.nodes_of(ast.Return)) if r.value is not None
                        for s in [_boosted_sum(g, r.value)] if s is not None]
    return out


def _read_at_target(m, f, name: str) -> bool:
    """`name.gather(-1, y)`, `name[i, y]`: the row read at the target."""
    for n in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(n.func) in _TARGET_READS and type(n.func) is ast.Attribute and type(n.func.value) is ast.Name \
                and n.func.value.id == name and any("TGT" in f.labels_of(a) for a in n.args):
            return True
    return any(type(s.value) is ast.Name and s.value.id == name and "TGT" in f.labels_of(s.slice)
               for s in m.under(f, m.nodes_of(ast.Subscript)))
