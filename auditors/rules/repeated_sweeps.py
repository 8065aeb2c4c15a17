"""A score-then-train pass over the validation data run more than once (RULES.md §2 C4:
each token is scored once; C1: its score may not depend on training on later tokens).

    for sweep in range(plan.sweeps):            # 2 on the 8-GPU run
        for ci in range(n_chunks):
            chunk_nll[ci] = score(model, chunk(ci))   # scored ...
            train(model, chunk(ci))                   # ... then trained on: score-first in form

The inner loop is legal score-first TTT. Repeating it scores every chunk again with a model
that has already been trained on the whole stream, and what the last sweep stored (or all
sweeps summed) is reported. The rule flags, in one function, a loop over the data that
scores validation tokens without gradients and then takes a gradient step on validation
data, nested in an outer loop over a count (`range(n)`, n not made from the data's
length); the finding holds where that count exceeds 1. Epochs of training on the chunk
just scored sit inside the chunk loop, after the score, and are not flagged.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("repeated-sweeps", "two_pass_rescore",
                "a score-then-train pass over the validation data repeated in an outer loop",
                "RULES.md §2 C4, C1 (each token scored once, before training on it)")


def check(m):
    return [found for f in m.functions.values() if (found := _repeated(m, f)) is not None]


def _repeated(m, f):
    """The first score-then-train loop of f nested in a loop over a count of passes, as a finding."""
    for step in (e for e in f.events if e.kind == "backward" and "VAL" in e.data["loss"] and len(e.ctx.loops) >= 2):
        for i, inner in enumerate(step.ctx.loops[1:], start=1):
            scored = next((e for e in f.events if e.line < step.line and len(e.ctx.loops) > i
                           and e.ctx.loops[i] is inner and _scores(m, e)), None)
            outer = next((lp for lp in reversed(step.ctx.loops[:i]) if _count_loop(f, lp)), None)
            if scored is None or outer is None:
                continue
            found = raw(RULE, f, outer, step.ctx, "error", "medium",
                        f"repeats the score-then-train loop at line {inner.lineno} (scores at line {scored.line}, "
                        f"trains at line {step.line}) for each pass of `{lb.src(outer.iter)}`: a second pass scores "
                        "every token again with a model already trained on the whole stream")
            n = outer.iter.args[0]
            if type(n) is not ast.Constant:
                found.guards.append([f"{lb.src(n)} > 1", True])  # (one pass is the legal score-first TTT)
            return found
    return None


def _scores(m, e) -> bool:
    """A scoring without gradients: a cross-entropy under `no_grad`, or a call (under `no_grad`,
    or of a function that scores only under `no_grad` itself) of a function that scores and
    trains nothing. A forward whose loss is then backpropagated is training, not scoring."""
    if e.kind == "ce":
        return e.ctx.nograd
    g = m.functions.get(e.data["callee"]) if e.kind == "call" and e.data.get("callee") else None
    if g is None or not m.scores(g) or m.trains_any(g):
        return False
    own = [x for x in g.events if x.kind == "ce"]
    return e.ctx.nograd or (bool(own) and all(x.ctx.nograd for x in own)) or any(
        lb.call_name(d.func if type(d) is ast.Call else d) in ("no_grad", "inference_mode") for d in g.node.decorator_list)


def _count_loop(f, loop) -> bool:
    """`for sweep in range(n)` with n a count of passes (at least two possible), not the
    data's length nor a list of chunks."""
    it = loop.iter if type(loop) is ast.For else None
    if not (type(it) is ast.Call and lb.call_name(it.func) == "range" and len(it.args) == 1 and not it.keywords):
        return False
    n = it.args[0]
    if type(n) is ast.Constant:
        return type(n.value) is int and n.value >= 2
    return not f.labels_of(n) & (lb.DATA | {"RPOS", "CAND", "TGT"}) and not any(
        type(c) is ast.Call and lb.call_name(c.func) in ("len", "numel", "size") for c in lb.walk(n))
