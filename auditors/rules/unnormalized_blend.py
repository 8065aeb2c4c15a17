"""Unnormalized probabilities (RULES.md §2 C2, §3 "what does not fix it": #972 vs #978).

Counts gathered for every candidate token and then read at the target must be divided
by the summed candidate mass (plus smoothing) to be a probability; dividing by a
context count (or anything that is not that sum) leaves a number that does not sum to
one over the vocabulary, and mixing it with the model's probability inherits the
inflation. Data flow: a quotient whose numerator is the target's candidate count
(CTGT) and whose denominator does not contain the candidate sum (CSUM).
Legal counterpart: `(count[y] + b * p_model[y]) / (sum(count) + b)` (#978), or the
closed-form tilt of #1145, `p(a) e^{b[a=h]} / (1 + p(h)(e^b - 1))`.
"""

from __future__ import annotations

from auditors.model import RuleInfo
from auditors.rules import quotients, raw

RULE = RuleInfo("unnormalized-blend", "unnormalized_blend", "target probability not normalized over the vocabulary",
                "RULES.md §2 C2, §3 (#972; fixed in #978)")


def check(m):
    out = []
    for f, node in quotients(m):
        num, den = f.labels_of(node.left), f.labels_of(node.right)
        if "CTGT" in num and "CSUM" not in den:
            ctx = next((e.ctx for e in f.events if e.line == node.lineno), None)
            out.append(raw(RULE, f, node, ctx, "error", "medium",
                           "divides the target's candidate count by something other than the summed candidate "
                           "counts: the result is not a distribution over the vocabulary"))
    return out
