"""Attention that is causal only while training (RULES.md §2 C1, §3 future-token peeks).

`scaled_dot_product_attention(q, k, v, is_causal=self.training)` masks the future
while the model trains and drops the mask once `model.eval()` is called, which is how
evaluation runs: the prediction at position t then attends to x_{t+1}, the token it is
scored on. The rule flags an `is_causal=` argument whose value follows the training
flag of a module (`.training`), directly or through a name bound to it.
Legal counterparts: `is_causal=True`; a flag set from the configuration, such as a
bidirectional encoder that is never scored as a language model.
"""

from __future__ import annotations

import ast

from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("causal-in-training-only", "future_token_peek", "attention is causal only while training",
                "RULES.md §2 C1, §3")


def _follows_training(f, value, depth: int = 0) -> bool:
    """The expression is, or is bound to, a module's `.training` flag (possibly negated twice,
    cast with bool(), or combined with `and`)."""
    if depth > 3:
        return False
    if type(value) is ast.Attribute and value.attr == "training":
        return True
    if type(value) is ast.Call and type(value.func) is ast.Name and value.func.id == "bool" and value.args:
        return _follows_training(f, value.args[0], depth + 1)
    if type(value) is ast.BoolOp and type(value.op) is ast.And:
        return any(_follows_training(f, v, depth + 1) for v in value.values)
    if type(value) is ast.Name:
        bound = f.binding(value.id)
        return bound is not None and _follows_training(f, bound, depth + 1)
    return False


def check(m):
    out = []
    for f, ev in m.events("call"):
        for kw in ev.node.keywords:
            if kw.arg == "is_causal" and _follows_training(f, kw.value):
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "high",
                               f"`is_causal={ast.unparse(kw.value)}` masks future tokens only while training: under "
                               "model.eval(), which scoring uses, each position attends to the tokens it is scored on"))
    return out
