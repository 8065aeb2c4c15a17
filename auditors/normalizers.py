"""Whether a distribution or a log-probability is normalized again where it is used
(read by `auditors.rules.unnormalized_blend`): a boosted distribution handed to a softmax,
divided by its sum or less its log-normalizer, and a log-normalizer that is subtracted
rather than computed and left unused; and the parts of a single-hint tilt: the hit
(`hint == y`), the term it boosts, the closed-form normalizer `1 + p_h (e^b - 1)`, and a
convex mix with a one-hot hint, which needs no normalizer."""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.rules import depends_on

LOG_NORMALIZERS = {"log", "log1p", "logsumexp", "logaddexp", "log2"}


def renormalized(m, f, name: str) -> bool:
    """`name` is normalized again in f: handed to (log_)softmax / logsumexp / normalize,
    divided by a reduction of itself, or less a log-normalizer."""
    def mentions(e) -> bool:
        return any(type(x) is ast.Name and x.id == name for x in lb.walk(e))
    for c in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(c.func) in ("softmax", "log_softmax", "logsumexp", "normalize") and (
                any(mentions(a) for a in c.args) or (type(c.func) is ast.Attribute and mentions(c.func.value))):
            return True
    # (less a reduction of itself normalizes only when it is a log-normalizer: `x - x.mean()` shifts every token alike)
    return any(mentions(b.left) and ((type(b.op) is ast.Div and mentions(b.right)) or (type(b.op) is ast.Sub and log_normalizer(f, b.right)))
               for b in m.under(f, m.nodes_of(ast.BinOp)))


def log_normalizer(f, e, depth: int = 0) -> bool:
    """e computes a log-normalizer, directly or through names bound once: `log_z`,
    `log_z.unsqueeze(-1)` with `log_z = log1p(p_h * expm1(beta))`, a `logsumexp(...)`."""
    for c in lb.walk(e):
        if type(c) is ast.Call and lb.call_name(c.func) in LOG_NORMALIZERS:
            return True
        if type(c) is ast.Name and depth < 2:
            bound = f.binding(c.id)
            if bound is not None and bound is not e and log_normalizer(f, bound, depth + 1):
                return True
    return False


def less_log_normalizer(f, e, boost) -> bool:
    """e (or what a name in it is bound to) is a row less the log-normalizer of the row the
    boost makes: `out` with `out = logp - log_z.unsqueeze(-1)` and `log_z = log1p(p_h *
    expm1(b))`, where the normalizer reads what the boost is made of (`b`, the hint) beyond
    the row itself. (`logp = z - logsumexp(z)` normalizes the row before the boost only.)"""
    e = f.binding(e.id) if type(e) is ast.Name else e
    if not (type(e) is ast.BinOp and type(e.op) is ast.Sub and log_normalizer(f, e.right)):
        return False
    return bool((_names(f, e.right) & _names(f, boost)) - _names(f, e.left))


def _names(f, e) -> set[str]:
    """The values e is computed from: names bound in the function or its parameters (not
    modules such as `torch`), through names bound once."""
    return {n for n in depends_on(f, e) if n in f.params or f.binding(n) is not None}


def applied(m, g, c) -> bool:
    """A log-normalizer bound to a name (`log_z = log1p(...)`) normalizes only where that name
    is used in arithmetic (`lp - log_z`, `nll + log_z`), returned or handed on; one computed
    and left unused, or only written into a log line, normalizes nothing."""
    bound = next((t.id for a in m.under(g, m.nodes_of(ast.Assign)) if a.value is c
                  for t in a.targets if type(t) is ast.Name), None)
    if bound is None:
        return True
    logged = {id(x) for j in m.under(g, m.nodes_of(ast.JoinedStr)) for x in lb.walk(j)}
    return any(type(x) is ast.Name and x.id == bound and type(x.ctx) is ast.Load and id(x) not in logged
               for x in lb.walk(g.node))


def hit(f, node, depth: int = 0) -> bool:
    """`hint == y` (also inside `where(...)`, a cast, or a product with beta, or bound to a
    name used there: `hit = (h == y).float(); lp + beta * hit`): 1 where a guess equals
    the target."""
    for n in lb.walk(node):
        if type(n) is ast.Name and depth < 2 and n is not node:
            bound = f.binding(n.id)
            while type(bound) is ast.Call and type(bound.func) is ast.Attribute:
                bound = bound.func.value  # `(h == y).to(dtype)`, `.float()`
            if type(bound) is ast.BinOp and type(bound.op) is ast.BitAnd:
                bound = bound.left  # `hit = (tgt == hint) & has_hint`
            if type(bound) is ast.Compare and hit(f, bound, depth + 1):
                return True
        if type(n) is ast.Compare and len(n.ops) == 1 and type(n.ops[0]) is ast.Eq \
                and any("TGT" in f.labels_of(x) and type(x) is not ast.BinOp for x in (n.left, n.comparators[0])):
            return True  # (a token, not `ci == num_chunks - 1`: arithmetic on a count is no token)
    return False


def factors(e) -> list:
    return factors(e.left) + factors(e.right) if type(e) is ast.BinOp and type(e.op) is ast.Mult else [e]


def convex(node) -> bool:
    """`(1 - w) * p[y] + w * (hint == y)`: weights that add up to one (a mixture of the
    model with a one-hot hint, a distribution), not a boost on top of the probability."""
    if type(node.op) is not ast.Add:
        return False
    for a, b in ((node.left, node.right), (node.right, node.left)):
        rest = {lb.src(x.right) for x in factors(a) if type(x) is ast.BinOp and type(x.op) is ast.Sub
                and type(x.left) is ast.Constant and x.left.value == 1}
        if rest & {lb.src(x) for x in factors(b)}:
            return True
    return False


def boosted_terms(f) -> set[str]:
    """Names of the target's log-probability that a boost is added to (`lp` of `lp + beta * (h == y)`)."""
    out = set()
    for node in f.module.under(f, f.module.nodes_of(ast.BinOp)):
        if type(node.op) in (ast.Add, ast.Sub):
            for scored, boost in ((node.left, node.right), (node.right, node.left)):
                if type(scored) is ast.Name and "TGTP" in f.labels_of(scored) and hit(f, boost):
                    out.add(scored.id)
    return out


def reads_any(e, names: set[str]) -> bool:
    """e reads one of these names (directly, not through other names)."""
    return bool(names) and any(type(n) is ast.Name and n.id in names for n in lb.walk(e))


def one_plus(f, e) -> bool:
    """`1 + p_h * (e^beta - 1)` (or a name bound to it): the closed-form normalizer of the
    tilt, whatever the hint's probability was read from (a hint taken from earlier targets
    carries their label)."""
    e = f.binding(e.id) if type(e) is ast.Name else e
    return type(e) is ast.BinOp and type(e.op) is ast.Add and any(
        type(x) is ast.Constant and x.value == 1 for x in (e.left, e.right))


def own_probability(m, f, ev, g, scored: int) -> bool:
    """A tilt helper `g`, called by `ev` in f with the target's log-probability as argument
    `scored`, whose log-normalizer is taken of a parameter that the call hands the target's
    own probability (`p_anchor = lp.exp()`, then `tilted(lp, hit, beta, p_anchor)` with
    `log1p(p_anchor * expm1(beta))`): log Z must use the hint's probability."""
    params = g.params[1:] if g.is_method and type(ev.node.func) is ast.Attribute else g.params
    given = dict(zip(params, ev.node.args))
    target = {n.id for n in lb.walk(ev.node.args[scored]) if type(n) is ast.Name}
    for c in m.under(g, m.nodes_of(ast.Call)):
        if lb.call_name(c.func) not in LOG_NORMALIZERS or not c.args:
            continue
        for p in {n.id for n in lb.walk(c.args[0]) if type(n) is ast.Name} & set(given) - {params[scored]}:
            arg = given[p]
            seen = [arg, *(f.binding(n.id) for n in lb.walk(arg) if type(n) is ast.Name)]
            if target and any(e is not None and target & {n.id for n in lb.walk(e) if type(n) is ast.Name} for e in seen):
                return True
    return False
