"""Whether a distribution or a log-probability is normalized again where it is used
(read by `auditors.rules.unnormalized_blend`): a boosted distribution handed to a softmax,
divided by its sum or less its log-normalizer, and a log-normalizer that is subtracted
rather than computed and left unused."""

from __future__ import annotations

import ast

from auditors import labels as lb

LOG_NORMALIZERS = {"log", "log1p", "logsumexp", "logaddexp", "log2"}


def renormalized(m, f, name: str) -> bool:
    """`name` is normalized again in f: handed to (log_)softmax / logsumexp / normalize, or
    divided by (or less) a reduction of itself."""
    def mentions(e) -> bool:
        return any(type(x) is ast.Name and x.id == name for x in ast.walk(e))
    for c in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(c.func) in ("softmax", "log_softmax", "logsumexp", "normalize") and (
                any(mentions(a) for a in c.args) or (type(c.func) is ast.Attribute and mentions(c.func.value))):
            return True
    def log_normalizer(e) -> bool:  # `boosted - log_z` with `log_z = log1p(p_h * expm1(beta))`
        e = f.binding(e.id) if type(e) is ast.Name else e
        return e is not None and any(type(c) is ast.Call and lb.call_name(c.func) in LOG_NORMALIZERS for c in ast.walk(e))
    return any(type(b.op) in (ast.Div, ast.Sub) and mentions(b.left) and (
        mentions(b.right) or (type(b.op) is ast.Sub and log_normalizer(b.right))) for b in m.under(f, m.nodes_of(ast.BinOp)))


def applied(m, g, c) -> bool:
    """A log-normalizer bound to a name (`log_z = log1p(...)`) normalizes only where that name
    is used in arithmetic (`lp - log_z`, `nll + log_z`), returned or handed on; one computed
    and left unused, or only written into a log line, normalizes nothing."""
    bound = next((t.id for a in m.under(g, m.nodes_of(ast.Assign)) if a.value is c
                  for t in a.targets if type(t) is ast.Name), None)
    if bound is None:
        return True
    logged = {id(x) for j in m.under(g, m.nodes_of(ast.JoinedStr)) for x in ast.walk(j)}
    return any(type(x) is ast.Name and x.id == bound and type(x.ctx) is ast.Load and id(x) not in logged
               for x in ast.walk(g.node))
