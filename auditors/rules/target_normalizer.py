"""A log-normalizer computed from the target's own probability (RULES.md §2 C2: the
scored numbers must form one distribution over the vocabulary, fixed before x_t is read).

The single-hint tilt `p'(a) = p(a) * exp(beta * [a == h]) / Z` is a distribution when
`Z = 1 + p(h) * (e^beta - 1)`: the hint's probability, the same for every candidate a.
Written with the target's probability instead,

    log_z = torch.log1p(math.expm1(beta) * lp_y.exp())
    score = lp_y + beta * (hint == y) - log_z

each candidate gets its own normalizer, the "distribution" sums to anything but one,
and the normalizer depends on x_t. The rule flags, in one function, the target's
log-probability less a log (`log`, `log1p`, `logaddexp`) of something computed from the
target's probability (directly, or through a name bound to it), the same probability the
scored term is made of (`lp_y` on both sides); a `logsumexp` of the logits, the normal
normalizer, holds no target probability, and a normalizer of another token's probability
(`log1p(q * (e^b - 1))` with q the hint's) beside a score of `p` is the legal tilt.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("target-normalizer", "unnormalized_blend",
                "a normalizer computed from the target's own probability",
                "RULES.md §2 C2 (scored values must be a distribution over the vocabulary)")

_LOGS = {"log", "log1p", "logaddexp"}


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not any(e.kind == "call" and e.data["name"] in _LOGS for e in f.events):
            continue
        for b in m.under(f, m.nodes_of(ast.BinOp)):
            if type(b.op) is not ast.Sub or "TGTP" not in f.labels_of(b.left):
                continue
            norm = _target_log(f, b.right)
            if norm is not None and _scored_terms(b.left) & _made_of(f, norm):
                out.append(raw(RULE, f, b, guards_of(f, b.lineno), "error", "medium",
                               f"scores the target less `{lb.src(norm)}`, a normalizer computed from the target's own "
                               "probability: each candidate would get its own normalizer, so the scored numbers are "
                               "no distribution over the vocabulary (and the normalizer depends on x_t)"))
                break
    return out


def _target_log(f, e, depth: int = 0):
    """The log call (in e, or in what a name of e is bound to) whose argument carries the target's
    probability (a `logsumexp` of the logits carries none); else None."""
    while type(e) is ast.BinOp and type(e.op) is ast.Mult:  # `log1p(...) * active`: masked
        e = e.left if type(e.left) in (ast.Call, ast.Name) else e.right
    if type(e) is ast.Call and lb.call_name(e.func) == "where" and len(e.args) == 3:  # `where(active, log_z, 0)`
        return next((found for a in e.args[1:] if (found := _target_log(f, a, depth)) is not None), None)
    if type(e) is ast.Name and depth < 2:
        bound = f.binding(e.id)
        return _target_log(f, bound, depth + 1) if bound is not None else None
    if type(e) is not ast.Call or lb.call_name(e.func) not in _LOGS or not e.args:
        return None
    inside = f.labels_of(e.args[0]) if len(e.args) == 1 else f.labels_of(e.args[0]) | f.labels_of(e.args[1])
    return e if "TGTP" in inside else None


def _scored_terms(e) -> set[str]:
    """The names that are whole terms of a sum (`lp_y + beta * hit` gives lp_y): the scored
    log-probability the tilt adds its bonus to."""
    if type(e) is ast.BinOp and type(e.op) in (ast.Add, ast.Sub):
        return _scored_terms(e.left) | _scored_terms(e.right)
    return {e.id} if type(e) is ast.Name else set()


def _made_of(f, e, depth: int = 0) -> set[str]:
    """The names e is computed from, followed through the names they are bound to
    (`p_sel = lp_y.exp()` gives lp_y too)."""
    out = set()
    for n in lb.walk(e):
        if type(n) is ast.Name:
            out.add(n.id)
            bound = f.binding(n.id) if depth < 2 else None
            if bound is not None:
                out |= _made_of(f, bound, depth + 1)
    return out
