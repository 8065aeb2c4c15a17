"""Unnormalized probabilities (RULES.md §2 C2, §3 "what does not fix it": #972 vs #978).

Counts gathered for every candidate token and then read at the target must be divided
by the summed candidate mass (plus smoothing) to be a probability; dividing by a
context count (or anything that is not that sum) leaves a number that does not sum to
one over the vocabulary, and mixing it with the model's probability inherits the
inflation. Data flow: a quotient whose numerator is the target's candidate count
(CTGT) and whose denominator does not contain the candidate sum (CSUM).
A probability with another added on top, `p[y] + lam * q[y]`, is the same fault in its
simplest form (rule `added-mass`); so is a geometric mix of the target's
log-probabilities, `a * log p[y] + b * log q[y]`, never renormalized over the vocabulary.
Legal counterpart: `(count[y] + b * p_model[y]) / (sum(count) + b)` (#978), `(1 - lam) *
p[y] + lam * q[y]`, or the closed-form tilt of #1145, `p(a) e^{b[a=h]} / (1 + p(h)(e^b - 1))`.
"""

from __future__ import annotations

import ast
import math

from auditors import labels as lb
from auditors import normalizers, shapes
from auditors.log_domain import entropy_term, in_log_domain, log_operand
from auditors.model import RuleInfo
from auditors.rules import guards_of, quotients, raw, with_strength

RULE = RuleInfo("unnormalized-blend", "unnormalized_blend", "target probability not normalized over the vocabulary",
                "RULES.md §2 C2, §3 (#972; fixed in #978)")


def check(m):
    out = []
    for f, node in quotients(m):
        if _smoothed_without_vocab(f, node):
            ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
            out.append(raw(RULE, f, node, ctx, "error", "medium",
                           "add-k smoothing of the target's count with k added once to the total: the denominator "
                           "needs k for every token of the vocabulary, or the probabilities sum to more than one"))
            continue
        num, den = f.labels_of(node.left), f.labels_of(node.right)
        if ("CTGT" in num or "CCNT" in num and ("CNT" in den or _context_count(f, node.right))) \
                and not den & {"CSUM", "CCNT"} and not _row_total(f, node):
            # (the target's candidate count, or every candidate's, over a context count: `pair[keys] / n_ctx`)
            ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
            out.append(raw(RULE, f, node, ctx, "error", "medium",
                           f"divides {'the target' if 'CTGT' in num else 'each candidate'}'s count by something other than "
                           "the summed candidate counts: the result is not a distribution over the vocabulary"))
    for f in m.functions.values():
        if f.qualname != "<module>" and not any(e.kind == "backward" for e in f.events):
            out += _tilt_without_normalizer(m, f) or _partial_normalizer(m, f) or _hit_only_normalizer(m, f) \
                or _spread_over_bytes(m, f) \
                or _max_of_distributions(m, f) or _log_linear(m, f) or _raw_counts_mixed(m, f) or _tempered_after(m, f)
    return out


_TO_BITS = (math.log(2), 1 / math.log(2))


def _tempered_after(m, f) -> list:
    """`lp = log_softmax(logits) / T` read at the target: a temperature applied *after* the
    normalization, p^(1/T), sums to more than one for T > 1 (applied to the logits, before the
    log-softmax, it is legal). Dividing by ln 2 (bits) is a change of units, not a temperature."""
    for a in m.under(f, m.nodes_of(ast.Assign)):
        v = a.value
        if type(v) is not ast.BinOp or type(v.op) not in (ast.Div, ast.Mult) or len(a.targets) != 1 \
                or type(a.targets[0]) is not ast.Name:
            continue
        scale = v.right if "DIST" in f.labels_of(v.left) and log_operand(f, v.left) else \
            v.left if type(v.op) is ast.Mult and "DIST" in f.labels_of(v.right) and log_operand(f, v.right) else None
        if scale is None or f.labels_of(scale) & (lb.DATA | {"DIST", "TGTP", "TGT"}) or _renormalized(m, f, v) \
                or any(type(c) is ast.Call and lb.call_name(c.func) in ("log", "log2") for c in lb.walk(scale)) \
                or (type(scale) is ast.Constant and (scale.value == 1 or any(abs(scale.value - b) < 1e-3 for b in _TO_BITS))):
            continue
        name = a.targets[0].id
        read = next((n for n in m.under(f, m.nodes_of(ast.Call)) if lb.call_name(n.func) in ("gather", "take_along_dim")
                     and type(n.func) is ast.Attribute and type(n.func.value) is ast.Name and n.func.value.id == name
                     and "TGTP" in f.labels_of(n)), None)
        if read is not None:
            return [raw(RULE, f, a, guards_of(f, a.lineno), "error", "medium",
                        f"`{name}` scales a log-distribution after its normalization (a temperature applied to log-softmax "
                        f"outputs) and is read at the target (line {read.lineno}): p^(1/T) does not sum to one over the "
                        "vocabulary; a temperature divides the logits before the log-softmax")]
    return []


def _context_count(f, e, depth: int = 0) -> bool:
    """e is (or adds to) a count read from a table by a computed key (`self.ctx[ck % B]`, a
    name bound to one): a context's count, whatever the analysis knows of the key's data."""
    if type(e) is ast.Name and depth < 2:
        bound = f.binding(e.id)
        return bound is not None and _context_count(f, bound, depth + 1)
    if type(e) is ast.BinOp and type(e.op) is ast.Add:
        return _context_count(f, e.left, depth) or _context_count(f, e.right, depth)
    if type(e) is ast.Subscript and type(e.slice) is ast.Tuple and depth < 2:
        return _context_count(f, e.value, depth + 1)  # `c[:, None]`: the same counts, reshaped
    if type(e) is ast.Subscript and type(e.slice) in (ast.BinOp, ast.Call, ast.Name) and (
            type(e.value) is ast.Name or type(e.value) is ast.Attribute and type(e.value.value) is ast.Name):
        return not f.labels_of(e) & {"DIST", "TGTP", "CCNT", "CSUM"}
    return False


def _row_total(f, node: ast.BinOp) -> bool:
    """`(counts[ctx, y] + a) / (totals[ctx] + a * V)`: a 2-D table's entry at the target over
    a total kept per row under the same context key (`totals[ctx] += 1` beside
    `counts[ctx, y] += 1`): the row's own sum, so the quotient is a distribution."""
    def bound(e, depth=0):
        while type(e) is ast.BinOp and type(e.op) in (ast.Add, ast.Sub) and depth < 3:
            e = e.left if type(e.left) in (ast.Name, ast.Subscript, ast.Call, ast.BinOp) else e.right
            depth += 1
        e = shapes.unclamped(e, ("float", "double"))
        if type(e) is ast.Name and depth < 3:
            return bound(f.binding(e.id), depth + 1) if f.binding(e.id) is not None else e
        return e
    count, total = bound(node.left), bound(node.right)
    return type(count) is ast.Subscript and type(count.slice) is ast.Tuple and len(count.slice.elts) == 2 \
        and type(total) is ast.Subscript and lb.src(total.slice) == lb.src(count.slice.elts[0]) \
        and lb.src(total.value) != lb.src(count.value)


def _renormalized(m, f, call) -> bool:
    """What the call produced is normalized again: passed to (log_)softmax / logsumexp or divided."""
    held = {t.id for a in m.under(f, m.nodes_of(ast.Assign)) if a.value is call for t in a.targets if type(t) is ast.Name}
    for n in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(n.func) in ("softmax", "log_softmax", "logsumexp", "normalize") and any(
                type(x) is ast.Name and x.id in held or x is call for a in n.args for x in lb.walk(a)):
            return True
    return any(type(d.op) in (ast.Div, ast.Sub) and (d.left is call or type(d.left) is ast.Name and d.left.id in held)
               for d in m.under(f, m.nodes_of(ast.BinOp)))


def _offset(e) -> tuple[ast.expr, float] | None:
    """(term, k) of `term + k` with a positive numeric constant k."""
    if type(e) is ast.BinOp and type(e.op) is ast.Add:
        for term, k in ((e.left, e.right), (e.right, e.left)):
            if type(k) is ast.Constant and isinstance(k.value, (int, float)) and not isinstance(k.value, bool) and k.value > 0:
                return term, float(k.value)
    return None


def _smoothed_without_vocab(f, node: ast.BinOp) -> bool:
    """`(cnt[y] + 1) / (n + 1)`: the target's count smoothed by k, the total by about k
    instead of k times the vocabulary size (`(cnt[y] + 1) / (n + V)` is a distribution).
    Also `(row + beta) / (n_ctx + beta)` for a row of counts and the same smoothing term."""
    num, den = _offset(node.left), _offset(node.right)
    term = f.binding(num[0].id) if num is not None and type(num[0]) is ast.Name else num[0] if num else None
    if num is not None and den is not None and type(term) is ast.Subscript:  # (`cnt = table[ctx, y]; (cnt + 1) / ...`)
        if den[1] < 2 * num[1] and "TGT" in f.labels_of(term.slice) and "TGT" not in f.labels_of(den[0]):
            return True
    sides = [f.binding(x.id) if type(x) is ast.Name and type(f.binding(x.id)) is ast.BinOp else x
             for x in (node.left, node.right)]  # (`num = counts[p, y] + beta; num / (totals[p] + beta)`)
    pair = [_added_term(side) for side in sides]
    if None in pair or lb.src(pair[0][1]) != lb.src(pair[1][1]):
        return False
    (counts, k), (total, _) = pair
    return bool(f.labels_of(counts) & {"VAL", "CNT", "CCNT", "CTGT"}) and type(total) is ast.Subscript \
        and not any(type(c) is ast.Call and lb.call_name(c.func) == "sum" for c in lb.walk(total))


def _added_term(e):
    """(term, k) of `term + k` with k a name or attribute (a smoothing constant held in a
    variable), or None."""
    if type(e) is ast.BinOp and type(e.op) is ast.Add and type(e.right) in (ast.Name, ast.Attribute):
        return e.left, e.right
    return None


def _max_of_distributions(m, f) -> list:
    """`maximum(log_p_model, log_q)` over the whole vocabulary, then read at the target:
    the elementwise larger of two distributions sums to more than one (a log-sum-exp
    that shifts by the maximum and adds back `log1p(exp(-|a - b|))` is a proper mixture)."""
    from auditors.rules.oracle_gate import _stabilizer  # one test of "a maximum that is a log-sum-exp shift"
    for e in f.events:
        if e.kind != "call" or e.data["name"] not in ("maximum", "fmax") or len(e.node.args) != 2:
            continue
        if all("DIST" in a and "TGTP" not in a for a in e.data["args"]) and _scored_here_or_by_caller(m, f) \
                and not _stabilizer(m, f, e.node) and not _renormalized(m, f, e.node):
            return [raw(RULE, f, e.node, e.ctx, "error", "medium",
                        "takes the elementwise larger of two distributions over the vocabulary and scores it without "
                        "renormalizing: the result sums to more than one")]
    return []


def _scored_here_or_by_caller(m, f) -> bool:
    """f scores, or hands back a distribution that a caller scores (a `_confident(p, q)`
    helper picking the larger of two distributions), with no renormalizing in that caller."""
    if m.scores(f):
        return True
    if "DIST" not in f.ret:
        return False
    return any(f.qualname in m.targets(e) and m.scores(g) and not _renormalized(m, g, e.node) for g, e in m.events("call"))


_LOG_NORMALIZERS = normalizers.LOG_NORMALIZERS


def _tilt_without_normalizer(m, f) -> list:
    """`logp[y] + beta * (hint == y)` with no log-normalizer anywhere in the function: the
    single-hint tilt boosts the hinted token's log-probability but does not subtract
    log Z = log(1 + p(hint)(e^beta - 1)), so the tilted numbers sum to more than one."""
    if not any(e.kind == "compare" and ("TGT" in e.data["left"] or "TGT" in e.data["right"]) for e in f.events):
        return []
    def normalizes(g) -> bool:  # log Z: a log of something other than the target's probability
        def operand(c):  # `log(z)`, or `z.log()`
            return c.args[0] if c.args else c.func.value if type(c.func) is ast.Attribute and not lb.dotted(c.func.value) in (
                "math", "np", "numpy", "torch") else None
        scored = normalizers.boosted_terms(g)
        return any(lb.call_name(c.func) in _LOG_NORMALIZERS and operand(c) is not None
                   and type(operand(c)) not in (ast.Constant, ast.JoinedStr)
                   and ("TGTP" not in g.labels_of(operand(c)) or normalizers.one_plus(g, operand(c)) or lb.call_name(c.func) == "log1p")
                   and not normalizers.reads_any(operand(c), scored)  # (`log1p(exp(lp_y) * ...)`: the target's own probability)
                   and normalizers.applied(m, g, c) for c in m.under(g, m.nodes_of(ast.Call)))  # (not log(2), not a logger)
    callers = [g for g, _ in m.call_sites(f)]
    if normalizes(f) or (callers and all(map(normalizes, callers))):
        return []  # (a helper that adds the boost, with log Z taken where it is called, is the legal tilt)
    for ev in f.events:  # `tilted(logp[y], hint == y, beta)`: a helper that returns `lp + beta * hit`
        if ev.kind == "call" and ev.data["callee"] and len(ev.node.args) >= 2:
            scored = [i for i, a in enumerate(ev.node.args) if "TGTP" in f.labels_of(a) and not normalizers.hit(f, a)]
            hits = [i for i, a in enumerate(ev.node.args) if normalizers.hit(f, a)
                    or type(a) is ast.Name and f.binding(a.id) is not None and normalizers.hit(f, f.binding(a.id))]
            g = m.functions[ev.data["callee"]]
            if normalizes(g) and not (scored and normalizers.own_probability(m, f, ev, g, scored[0])):
                continue  # (log Z taken inside the helper, of what the call hands it besides the target's own)
            params = g.params[1:] if g.is_method and type(ev.node.func) is ast.Attribute else g.params
            if scored and hits and _adds_params(m, g, params[scored[0]] if scored[0] < len(params) else None,
                                               params[hits[0]] if hits[0] < len(params) else None) \
                    and not _shifted_after(m, f, ev.node):
                why = "its log-normalizer is taken of the target's own probability, not the hint's" \
                    if normalizes(g) else "no log-normalizer is subtracted"
                return [raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                            f"{ev.data['name']}() adds a boost to the target's log-probability where a hint equals the "
                            f"target, and {why}: the tilted probabilities sum to more than one")]
    for node in m.under(f, m.nodes_of(ast.BinOp)):
        if type(node.op) not in (ast.Add, ast.Sub) or normalizers.convex(node):
            continue
        for scored, boost in ((node.left, node.right), (node.right, node.left)):
            bound = f.binding(boost.id) if type(boost) is ast.Name else None
            if "TGTP" in f.labels_of(scored) and not normalizers.hit(f, scored) and (normalizers.hit(f, boost) or (bound is not None and normalizers.hit(f, bound))):
                ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
                terms = normalizers.boosted_terms(f)
                own = sorted({n.id for c in m.under(f, m.nodes_of(ast.Call)) if lb.call_name(c.func) in _LOG_NORMALIZERS
                              for n in lb.walk(c) if type(n) is ast.Name and n.id in terms})
                why = (f"a log-normalizer computed from the target's own probability (`{own[0]}`), not the hint's"
                       if own else "no log-normalizer")
                return [with_strength(raw(RULE, f, node, ctx, "error", "medium",
                                          f"adds a boost to the target's log-probability where a hint equals the target, "
                                          f"with {why}: the tilted probabilities sum to more than one over the vocabulary"),
                                      f, boost)]
    return []


def _drawn_from(m, f) -> dict[str, str]:
    """Loop and comprehension variables -> the collection they run over (`for h in hints`,
    `for bt, h in zip(betas, hints)`)."""
    out = {}
    comps = [g for kind in (ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp)
             for c in m.under(f, m.nodes_of(kind)) for g in c.generators]
    for loop in [*comps, *m.under(f, m.nodes_of(ast.For))]:
        it, target = loop.iter, loop.target
        if type(it) is ast.Name and type(target) is ast.Name:
            out[target.id] = it.id
        elif type(it) is ast.Call and lb.call_name(it.func) == "zip" and type(target) is ast.Tuple:
            for t, a in zip(target.elts, it.args):
                if type(t) is ast.Name and type(a) is ast.Name:
                    out[t.id] = a.id
    return out


def _partial_normalizer(m, f) -> list:
    """Several hints each boost the target (`sum(b * (y == h) for b, h in zip(betas, hints))`)
    but log Z is taken for one of them (`log1p(p[hints[0]] * expm1(b))`): the mass the other
    hints add is never taken out, so the tilted numbers sum to more than one."""
    drawn = _drawn_from(m, f)
    if not drawn:
        return []
    boosted = {drawn[x.id] for c in m.under(f, m.nodes_of(ast.Compare)) if len(c.ops) == 1 and type(c.ops[0]) is ast.Eq
               for x, other in ((c.left, c.comparators[0]), (c.comparators[0], c.left))
               if type(x) is ast.Name and x.id in drawn and "TGT" in f.labels_of(other)}
    for c in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(c.func) not in _LOG_NORMALIZERS or not c.args:
            continue
        inside = list(lb.walk(c.args[0]))
        iterated = {drawn.get(n.id) for n in inside if type(n) is ast.Name}
        picked = [n for n in inside if type(n) is ast.Subscript and type(n.value) is ast.Name
                  and n.value.id in boosted - iterated and type(n.slice) is ast.Constant]
        if picked:
            name = picked[0].value.id
            return [raw(RULE, f, c, guards_of(f, c.lineno), "error", "medium",
                        f"every hint in `{name}` boosts the target, but the log-normalizer `{lb.call_name(c.func)}` "
                        f"covers `{lb.src(picked[0])}` only: the other hints' added mass is never taken out, so the "
                        "tilted probabilities sum to more than one")]
    return []


def _hit_only_normalizer(m, f) -> list:
    """`nll - where(y == hint, beta - log_z, 0)`: log Z charged only where the target is the
    hint, so every other token keeps its untilted probability and the tilted numbers sum
    to more than one (the normalizer must apply whatever the target is)."""
    def normalizer(v) -> bool:  # `log1p(p_h * expm1(b))`, also chosen where a hint exists: `where(has, log1p(...), 0)`
        if type(v) is ast.Call and lb.call_name(v.func) == "where" and len(v.args) == 3:
            v = v.args[1]
        return type(v) is ast.Call and bool(v.args) and (lb.call_name(v.func) == "log1p" or (
            lb.call_name(v.func) in _LOG_NORMALIZERS and normalizers.one_plus(f, v.args[0])))
    log_zs = {t.id for st in m.under(f, m.nodes_of(ast.Assign)) for t in st.targets if type(t) is ast.Name and normalizer(st.value)}
    if not log_zs:
        return []
    def has(e) -> bool:
        return any(type(n) is ast.Name and n.id in log_zs for n in lb.walk(e))
    def hits(e) -> bool:
        bound = f.binding(e.id) if type(e) is ast.Name else None
        return normalizers.hit(f, e) or (bound is not None and normalizers.hit(f, bound))
    for c in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(c.func) == "where" and len(c.args) == 3 and hits(c.args[0]) and has(c.args[1]) != has(c.args[2]):
            return [raw(RULE, f, c, guards_of(f, c.lineno), "error", "medium",
                        "the tilt's log-normalizer is charged only where the target equals the hint: every other "
                        "token keeps its untilted probability, so the tilted probabilities sum to more than one")]
    # `nll[hit] = -(lp_t[hit] + b - log_z[hit])`, `nll[miss] = -lp_t[miss]`: stores under masks
    charged = [(st, hits(st.targets[0].slice)) for st in m.under(f, m.nodes_of(ast.Assign))
               if type(st.targets[0]) is ast.Subscript and type(st.targets[0].slice) is ast.Name and has(st.value)]
    if charged and all(hit for _, hit in charged) and not any(
            has(st.value) for st in m.under(f, m.nodes_of(ast.Assign)) if type(st.targets[0]) is ast.Name):
        return [raw(RULE, f, charged[0][0], guards_of(f, charged[0][0].lineno), "error", "medium",
                    "the tilt's log-normalizer is subtracted only at the positions where the target equals the hint: "
                    "where a hint misses, the target keeps its untilted probability, so the tilted probabilities "
                    "sum to more than one")]
    return []


def _per_target_count(f, e, depth: int = 0) -> bool:
    """A number read per scored token: `len(tok_bytes[y])`, `piece_lens[tgt]`, or a name,
    cast or `np.repeat` of one (the byte length of each target)."""
    if depth > 4 or e is None:
        return False
    if type(e) is ast.Name:
        return _per_target_count(f, f.binding(e.id), depth + 1)
    if type(e) is ast.Subscript:
        return bool(f.labels_of(e.slice) & {"TGT"})
    if type(e) is ast.Call:
        name = lb.call_name(e.func)
        if name == "len" and e.args:  # the length of one target's entry (`len(tok_bytes[y])`), not of a list of them
            x = f.binding(e.args[0].id) if type(e.args[0]) is ast.Name else e.args[0]
            return type(x) is ast.Subscript and bool(f.labels_of(x.slice) & {"TGT"})
        if name in ("repeat", "repeat_interleave", "astype", "float", "double", "to"):
            module_call = type(e.func) is not ast.Attribute or lb.dotted(e.func.value) in ("np", "numpy", "torch")
            inner = (e.args[0] if e.args else None) if module_call else e.func.value  # np.repeat(x, n) / x.astype(t)
            return _per_target_count(f, inner, depth + 1)
    return False


def _spread_over_bytes(m, f) -> list:
    """`exp(lp_target / n_bytes)` mixed per byte with a byte-level model (`(1 - w) * p_byte_nn
    + w * p_ppm`): the token's probability spread as p^(1/n) over its bytes. The product of
    the mixed per-byte numbers over a token's bytes is no distribution over the token
    alphabet (issue #1872 on the PPM-D byte mixtures)."""
    binops = m.under(f, m.nodes_of(ast.BinOp))
    if not any(type(b.op) is ast.Add and type(b.left) is ast.BinOp and type(b.right) is ast.BinOp
               and type(b.left.op) is ast.Mult and type(b.right.op) is ast.Mult for b in binops):
        return []  # no per-byte convex mix here
    spreads = [b for b in binops if type(b.op) is ast.Div and _per_target_count(f, b.right) and "TGTP" in f.labels_of(b.left)]
    if not spreads:
        return []
    exps = [c for c in m.under(f, m.nodes_of(ast.Call)) if lb.call_name(c.func) == "exp"]
    exp_names = {n.id for c in exps for a in c.args for n in lb.walk(a) if type(n) is ast.Name}
    held = {id(n): root.id for st in m.under(f, m.nodes_of(ast.Assign)) for t in st.targets
            for root in [t.value if type(t) is ast.Subscript else t] if type(root) is ast.Name
            for n in lb.walk(st.value)}  # (`lp_b = ...` or `lp_b[ptr:ptr + n] = ...`)
    for b in spreads:
        if any(n is b for c in exps for n in lb.walk(c)) or held.get(id(b)) in exp_names:  # p^(1/n) = exp(lp / n)
            return [raw(RULE, f, b, guards_of(f, b.lineno), "error", "medium",
                        "spreads the target token's log-probability evenly over its bytes (p^(1/n)) and mixes it per "
                        "byte with another model: the product over a token's bytes is not a distribution over the "
                        "token alphabet")]
    return []


def _log_linear(m, f) -> list:
    """`a * log p[y] + b * log q[y]` scored as a log-probability: a geometric (product of
    experts) mix is a distribution only after renormalizing over the whole vocabulary
    (log-softmax of the mixed logits); read at the target alone it sums to anything."""
    if not m.scores(f) or any(e.kind == "call" and e.data["name"] == "logsumexp" for e in f.events):
        return []
    for node in m.under(f, m.nodes_of(ast.BinOp)):
        if type(node.op) is not ast.Add or not any(type(s) is ast.BinOp and type(s.op) is ast.Mult for s in (node.left, node.right)):
            continue
        sides = (node.left, node.right)
        if any(map(entropy_term, sides)):
            continue  # `c * log(c) + (1 - c) * log(1 - c)`: an entropy, not a score
        if any(normalizers.hit(f, s) for s in sides):
            continue  # `lp[y] + on * (b * (h == y) - log_z)`: a hint tilt, judged by its normalizer (below)
        if any("TGTP" in f.labels_of(s) for s in sides) and all(f.labels_of(s) & {"VAL", "TGTP"} for s in sides) \
                and all(in_log_domain(f, s) for s in sides) and not _renormalized(m, f, node):
            ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
            return [raw(RULE, f, node, ctx, "error", "medium",
                        "adds weighted log-probabilities of the target from two predictors (a product of experts) "
                        "without renormalizing over the vocabulary: the result is no distribution")]
    return _log_linear_rows(m, f)


def _log_linear_rows(m, f) -> list:
    """`mixed = log_p + lam * log_q` over the whole vocabulary, then `mixed.gather(-1, y)`
    (or `mixed[..., y]`): the same product of experts, read at the target without the
    log-softmax (or logsumexp) that would make it a distribution. (Cross-entropy of the
    mix applies that log-softmax itself: legal.)"""
    for a in m.under(f, m.nodes_of(ast.Assign)):
        v = a.value
        if type(v) is not ast.BinOp or type(v.op) is not ast.Add or len(a.targets) != 1 or type(a.targets[0]) is not ast.Name \
                or not any(type(s) is ast.BinOp and type(s.op) is ast.Mult for s in (v.left, v.right)):
            continue
        sides = (v.left, v.right)
        if not all("DIST" in f.labels_of(s) and log_operand(f, s) for s in sides) or _renormalized(m, f, v):
            continue
        name = a.targets[0].id
        read = next((n for n in m.under(f, m.nodes_of(ast.Call)) if lb.call_name(n.func) in ("gather", "take_along_dim")
                     and type(n.func) is ast.Attribute and type(n.func.value) is ast.Name and n.func.value.id == name
                     and "TGTP" in f.labels_of(n)), None) or next(
            (n for n in m.under(f, m.nodes_of(ast.Subscript)) if type(n.value) is ast.Name and n.value.id == name
             and "TGTP" in f.labels_of(n)), None)
        if read is not None:
            ctx = next((e.ctx for e in f.events if e.line == a.lineno), None)
            return [raw(RULE, f, a, ctx, "error", "medium",
                        f"`{name}` adds weighted log-distributions of two predictors (a product of experts) and is read at "
                        f"the target (line {read.lineno}) without renormalizing over the vocabulary: the result is no distribution")]
    return []


def _adds_params(m, g, score: str | None, hit: str | None) -> bool:
    """g returns `score + ... hit ...` (the boost added to the score it was handed)."""
    if score is None or hit is None:
        return False
    for r in m.own_returns(g):
        for n in lb.walk(r.value) if r.value is not None else ():
            if type(n) is ast.BinOp and type(n.op) is ast.Add:
                names = [{x.id for x in lb.walk(side) if type(x) is ast.Name} for side in (n.left, n.right)]
                if any(score in names[i] and hit in names[1 - i] for i in (0, 1)):
                    return True
    return False


def _shifted_after(m, f, call: ast.Call) -> bool:
    """Something is subtracted from the helper's result (`tilted(...) - log_z`), where it is
    computed or from the name it is bound to: the normalizer taken outside the helper."""
    held = {t.id for a in m.under(f, m.nodes_of(ast.Assign)) if a.value is call for t in a.targets if type(t) is ast.Name}
    for b in m.under(f, m.nodes_of(ast.BinOp)):
        if type(b.op) is ast.Sub and (b.left is call or (type(b.left) is ast.Name and b.left.id in held)):
            return True
    return any(type(a.op) is ast.Sub and type(a.target) is ast.Name and a.target.id in held for a in m.under(f, m.nodes_of(ast.AugAssign)))


def _raw_counts_mixed(m, f) -> list:
    """`probs.mul_(1 - w).add_(counts, alpha=w)`: a distribution mixed in place with a table
    of raw counts filled from the data (never divided by its total), then scored."""
    if not m.scores(f):
        return []
    for e in f.events:
        if e.kind == "call" and e.data["name"] == "add_" and e.data["args"] and "DIST" in e.data["recv"]:
            added = e.data["args"][0]
            if "VAL" in added and not added & {"DIST", "TGTP", "TGT"}:
                return [raw(RULE, f, e.node, e.ctx, "error", "medium",
                            "mixes raw counts (a table filled from the data, never divided by its total) into a "
                            "distribution: the mixture does not sum to one over the vocabulary")]
    return []
