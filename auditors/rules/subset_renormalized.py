"""A distribution renormalized over a subset of the vocabulary and stitched to the full one
(RULES.md §2 C2: the scored numbers must form one distribution over the vocabulary).

`p_top = softmax(top_values / T)` sums to one over the k tokens of a top-k. Scoring the
target with it when the target is among those k, and with the model's full probability
when it is not, gives the k tokens a total of one and every other token its full mass as
well: the scored numbers sum to 1 + (the mass outside the top-k). Scaling the subset's
distribution by the subset's share of the full one (`p_top * p_full.gather(-1, top_i).sum(-1)`)
makes the whole a distribution again (the legal form), as does scoring only inside the
subset (a target outside it then gets no mass).
Data flow, in one function that scores: a softmax (or log-softmax) of the values of a
top-k, a comparison of the top-k's indices with the target, a read of a full distribution
at the target, and no read of any distribution at the top-k's indices. The same fault in
log form: a log-normalizer summed over the top-k only (`logsumexp(z.gather(-1, top_i))`)
subtracted from the target's logit read from the whole vocabulary.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import assigned_pairs, guards_of, raw

RULE = RuleInfo("subset-renormalized", "unnormalized_blend",
                "a top-k renormalized on its own and stitched to the full distribution",
                "RULES.md §2 C2 (scored values must be a distribution over the vocabulary)")
_READS = {"gather", "take_along_axis", "index_select"}
_PARTIAL = ("takes the log-normalizer over the top-k only and subtracts it from the target's logit read from the whole "
            "vocabulary: every token outside the top-k keeps mass the normalizer never counted, so the scored "
            "probabilities sum to more than one")
_STITCHED = ("renormalizes the top-k on its own (a softmax of the top-k's values) and scores a target outside the top-k "
             "with the full distribution: the top-k tokens get a total of one and the others their full mass besides, so "
             "the scored numbers sum to more than one (scale the top-k's distribution by its share of the full one)")


def check(m):
    out = []
    for f in {f.qualname: f for f, ev in m.events("call") if ev.data["name"] == "topk" and f.qualname != "<module>"}.values():
        values, indices = _topk_names(m, f)
        if not values or not indices or not (m.scores(f) or "TGTP" in f.ret):
            continue
        partial = _subset_normalizer(m, f, values, indices)
        found = partial if partial is not None else _stitched(m, f, values, indices)
        if found is not None:
            out.append(raw(RULE, f, found, guards_of(f, found.lineno), "error", "medium", _PARTIAL if partial is not None
                           else _STITCHED))
    return out


def _subset_normalizer(m, f, values: set[str], indices: set[str]) -> ast.Call | None:
    """`log_z = logsumexp(z.gather(-1, top_i))` subtracted from the target's logit read from the
    whole vocabulary (`z.gather(-1, y)`): log Z summed over the top-k only, so every token
    outside it keeps mass the normalizer never counted."""
    norms = [c for c in m.under(f, m.nodes_of(ast.Call)) if lb.call_name(c.func) == "logsumexp"
             and (c.args or type(c.func) is ast.Attribute) and _mentions(c.args[0] if c.args else c.func.value, values | indices)]
    if not norms:
        return None
    held = {t.id for a in m.under(f, m.nodes_of(ast.Assign)) if any(a.value is c for c in norms)
            for t in a.targets if type(t) is ast.Name}
    for b in m.under(f, m.nodes_of(ast.BinOp)):
        if type(b.op) is not ast.Sub:
            continue
        for norm_side, other in ((b.left, b.right), (b.right, b.left)):
            if (_mentions(norm_side, held) or any(n in norms for n in lb.walk(norm_side))) and any(
                    type(c) is ast.Call and lb.call_name(c.func) in _READS and c.args and "TGT" in f.labels_of(c.args[-1])
                    for c in lb.walk(other)):
                return norms[0]
    return None


def _stitched(m, f, values: set[str], indices: set[str]) -> ast.Call | None:
    derived = _derived(m, f, values)
    calls = m.under(f, m.nodes_of(ast.Call))
    subset = [c for c in calls if lb.call_name(c.func) in lb.DIST_FUNCS and c.args and _mentions(c.args[0], values)]
    if not subset:
        return None
    compared = any(_mentions(c, indices) and any("TGT" in f.labels_of(x) and not _mentions(x, indices)
                                                   for x in [c.left, *c.comparators])
                   for c in m.under(f, m.nodes_of(ast.Compare)))
    full_at_target = any(lb.call_name(c.func) in _READS and "TGT" in f.labels_of(c.args[-1] if c.args else c)
                         and not _mentions(c, derived) for c in calls)
    mass = any(lb.call_name(c.func) in _READS and any(_mentions(a, indices) for a in c.args) for c in calls) or any(
        type(s.slice) is not ast.Constant and _mentions(s.slice, indices) and not _mentions(s.value, derived)
        for s in m.under(f, m.nodes_of(ast.Subscript)))
    return subset[0] if compared and full_at_target and not mass else None


def _topk_names(m, f) -> tuple[set[str], set[str]]:
    """Names bound to the values and to the indices of a top-k: `v, i = z.topk(k)`,
    `r = torch.topk(z, k)` then `r.values` / `r.indices` (or `r[0]` / `r[1]`)."""
    values, indices, whole = set(), set(), set()
    for st in m.under(f, m.nodes_of(ast.Assign)):
        v = st.value
        if type(v) is ast.Attribute and type(v.value) is ast.Call and lb.call_name(v.value.func) == "topk":
            (values if v.attr == "values" else indices).update(t.id for t in st.targets if type(t) is ast.Name)
            continue
        if type(v) is not ast.Call or lb.call_name(v.func) != "topk":
            continue
        for t in st.targets:
            if type(t) is ast.Tuple and len(t.elts) == 2 and all(type(e) is ast.Name for e in t.elts):
                values.add(t.elts[0].id)
                indices.add(t.elts[1].id)
            elif type(t) is ast.Name:
                whole.add(t.id)
    for st in m.under(f, m.nodes_of(ast.Assign)) if whole else ():
        for t, v in assigned_pairs(st):
            part = v.attr if type(v) is ast.Attribute else v.slice.value if type(v) is ast.Subscript and type(
                v.slice) is ast.Constant else None
            if type(t) is ast.Name and type(getattr(v, "value", None)) is ast.Name and v.value.id in whole \
                    and part in ("values", "indices", 0, 1):
                (values if part in ("values", 0) else indices).add(t.id)
    return values, indices



def _derived(m, f, names: set[str]) -> set[str]:
    """The names and every name bound (in order) from an expression that mentions one of them."""
    out = set(names)
    for st in sorted(m.under(f, m.nodes_of(ast.Assign)), key=lambda s: s.lineno):
        if _mentions(st.value, out):
            out.update(t.id for tt in st.targets for t in lb.walk(tt) if type(t) is ast.Name)
    return out


def _mentions(e, names: set[str]) -> bool:
    return any(type(n) is ast.Name and n.id in names for n in lb.walk(e))
