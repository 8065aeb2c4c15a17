"""Adaptation on validation tokens before they are scored (RULES.md §4; README TTT rule, C3).

A backward pass whose loss is computed from validation data must only follow the
scoring of those tokens. For each such backward pass the rule climbs the enclosing
loops: in the first loop whose body also scores (a loss computed under `no_grad` /
`inference_mode`, directly or through a helper), scoring must come *before* the
training statement (score-first TTT, #549, #1610). Scoring after it is train-then-
score (SLOT-style per-window fitting, #1176, #1229). No scoring in any enclosing
loop means the function adapts to val tokens that are scored later (pre-quant TTT
on val, #1423, #1735; whole-val TTT, #152, #672).
"""

from __future__ import annotations

import ast

from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("ttt-before-score", "ttt_before_score", "parameters adapted on validation tokens before scoring them",
                "RULES.md §4 (README TTT rule; #152, #672, #771, #1176, #1229, #1423, #1735)")


def _nograd_scorers(m) -> set[str]:
    """Functions that score without gradients (decorated no_grad, or CE under no_grad)."""
    out = set()
    for q, f in m.functions.items():
        decos = {ast.unparse(d).split("(")[0].rsplit(".", 1)[-1] for d in getattr(f.node, "decorator_list", [])}
        if (decos & {"no_grad", "inference_mode"} and m.scores(f)) or any(e.kind == "ce" and e.ctx.nograd for e in f.events):
            out.add(q)
    return out


def _scores_in(f, stmt, scorers) -> bool:
    lo, hi = stmt.lineno, stmt.end_lineno
    for e in f.events:
        if lo <= e.line <= hi:
            if e.kind == "ce" and e.ctx.nograd:
                return True
            if e.kind == "call" and e.ctx.nograd and any(a & {"TGTP", "TGT"} for a in e.data["args"]):
                return True  # a loss/score of the targets accumulated without gradients
            if e.kind == "call" and e.data["callee"] in scorers and not _trains_callee(f, e):
                return True
    return False


def _trains_callee(f, e) -> bool:
    callee = f.module.functions.get(e.data["callee"])
    return callee is not None and f.module.trains_on(callee, "VAL")


def check(m):
    scorers = _nograd_scorers(m)
    out = []
    for f, ev in m.events("backward"):
        if "VAL" not in ev.data["loss"]:
            continue
        verdict = None
        for loop in reversed(ev.ctx.loops):
            body = loop.body
            idx = next((i for i, s in enumerate(body) if s.lineno <= ev.line <= s.end_lineno), None)
            if idx is None:
                continue
            before = any(_scores_in(f, s, scorers) for s in body[:idx])
            after = any(_scores_in(f, s, scorers) for s in body[idx + 1:])
            if before:
                verdict = "ok"
                break
            if after:
                verdict = f"trains on a window, then scores it later in the same loop (line {loop.lineno})"
                break
        if verdict == "ok":
            continue
        msg = verdict or "takes gradient steps on validation tokens with no scoring of them first (they are scored later)"
        out.append(raw(RULE, f, ev.node, ev.ctx, "error", "high" if verdict else "medium",
                       f"backward pass on a validation-data loss: {msg}"))
    return out
