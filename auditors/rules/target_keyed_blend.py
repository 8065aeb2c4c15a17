"""A count ratio read under a target-keyed key, mixed with the model (RULES.md §2 C2; §3 #779).

The #779 cache reads `full[hash(context, x_t)]` and `ctx[hash(context)]` and scores
`(1 - lam) * p_model(x_t) + lam * full / ctx`. The lookup is the target-keyed-cache
finding (C1: the table was chosen by the answer). The sum is a second fault of its own
(C2): `full / ctx` is one number for the realized token, not an entry of a distribution
over the vocabulary (the ratios of all tokens under one context sum to far more than
one once hash collisions merge buckets), so the mixture scored at x_t is not read from
a distribution either. Reported where the mixture is formed, so a reviewer sees both the
key and the score that uses it.
Data flow: a sum one of whose terms carries a count read with a target-keyed key (TCNT)
and the other the model's probability of the target or its distribution (TGTP / DIST), in
a function that makes (or calls one that makes) a lookup target-keyed-cache reports.
Legal counterpart: a context-keyed row of counts for every token, divided by its sum and
mixed with the softmax before the target is read (no TCNT anywhere).
"""

from __future__ import annotations

import ast

from auditors.model import RuleInfo
from auditors.rules import by_function, guards_of, raw, with_strength

RULE = RuleInfo("target-keyed-blend", "unnormalized_blend",
                "a count ratio looked up by the target mixed with the model's probability",
                "RULES.md §2 C2, §3 (#779 ruling)")
_MODEL = frozenset({"TGTP", "DIST"})


def check(m):
    from auditors.rules import target_keyed_cache
    reads = {r.function for r in target_keyed_cache.check(m) if r.severity == "error"}
    if not reads:
        return []  # (a count read under a key with the target that the cache rule does not report is no cache)
    out, seen = [], set()
    sums = [(f, n) for f, n in by_function(m, ast.BinOp) if type(n.op) is ast.Add and f.qualname != "<module>"]
    inner = {id(c) for _, n in sums for c in (n.left, n.right) if type(c) is ast.BinOp and type(c.op) is ast.Add}
    for f, node in sums:
        if id(node) in inner or (f.qualname, node.lineno) in seen:
            continue  # (`a + b + c`: the sum is judged once, at its top)
        left, right = f.labels_of(node.left), f.labels_of(node.right)
        counted = [s for s, a, b in ((node.left, left, right), (node.right, right, left))
                   if "TCNT" in a and not a & _MODEL and b & _MODEL]
        # (one term the count ratio alone, the other the model's: a loop that writes the mixture back into
        # the model's losses gives those the count's label too)
        if not counted or not m._transitive(f, lambda g: g.qualname in reads, ("target-keyed reads",)):
            continue
        seen.add((f.qualname, node.lineno))
        ctx = guards_of(f, node.lineno)  # (an event's context knows early exits)
        out.append(with_strength(raw(RULE, f, node, ctx, "error", "medium",
                                     "mixes the model's probability of the target with a count ratio read under a key "
                                     "that contains the target: that ratio is one number for the realized token, not a "
                                     "distribution over the vocabulary, so the mixture is not one either"), f, counted[0]))
    return out
