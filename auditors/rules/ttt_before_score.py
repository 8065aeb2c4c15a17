"""Adaptation on validation tokens before they are scored (RULES.md §4; README TTT rule, C3).

A backward pass whose loss is computed from validation data must only follow the
scoring of those tokens. For each such backward pass the rule climbs the enclosing
loops: in the first loop whose body also scores (a loss computed under `no_grad` /
`inference_mode` or `set_grad_enabled(False)`, directly or through a helper), scoring
must come *before* the
training statement (score-first TTT, #549, #1610). Scoring after it is train-then-
score (SLOT-style per-window fitting, #1176, #1229). No scoring in any enclosing
loop means the function adapts to val tokens that are scored later (pre-quant TTT
on val, #1423, #1735; whole-val TTT, #152, #672).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("ttt-before-score", "ttt_before_score", "parameters adapted on validation tokens before scoring them",
                "RULES.md §4 (README TTT rule; #152, #672, #771, #1176, #1229, #1423, #1735)")


def _nograd_scorers(m) -> set[str]:
    """Functions that score without gradients (decorated no_grad, or CE under no_grad)."""
    out = set()
    for q, f in m.functions.items():
        decos = {lb.src(d).split("(")[0].rsplit(".", 1)[-1] for d in getattr(f.node, "decorator_list", [])}
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


def _verdict(m, f, line, loops, scorers, seen) -> str | None:
    """"ok" (scored first), a reason (scored after), or None (no scoring around it).

    Without a decision inside f, the call sites of f are examined the same way: a helper
    that trains on documents the caller has already scored is score-first (#1610).
    """
    for loop in reversed(loops):
        body = loop.body
        idx = next((i for i, s in enumerate(body) if s.lineno <= line <= s.end_lineno), None)
        if idx is None:
            continue
        if any(_scores_in(f, s, scorers) for s in body[:idx]):
            return "ok"
        if any(_scores_in(f, s, scorers) for s in body[idx + 1:]):
            return f"trains on a window, then scores it later in the same loop (line {loop.lineno})"
    if f.qualname in seen or len(seen) > 6:
        return None
    sites = [(g, e) for g, e in m.events("call") if e.data["callee"] == f.qualname]
    verdicts = [_verdict(m, g, e.line, e.ctx.loops, scorers, seen + (f.qualname,)) for g, e in sites]
    if sites and all(v == "ok" for v in verdicts):
        return "ok"
    return next((v for v in verdicts if v not in (None, "ok")), None)


def _discarded(ev) -> bool:
    """The trained object is built inside the loop around the backward pass and deleted there."""
    for loop in ev.ctx.loops:
        built = {t.id for st in loop.body if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call)
                 for t in st.targets if isinstance(t, ast.Name)}
        deleted = {t.id for n in ast.walk(loop) if isinstance(n, ast.Delete) for t in n.targets if isinstance(t, ast.Name)}
        if built & deleted:
            return True
    return False


def check(m):
    scorers = _nograd_scorers(m)
    out = []
    for f, ev in m.events("backward"):
        if "VAL" not in ev.data["loss"]:
            continue
        verdict = _verdict(m, f, ev.line, ev.ctx.loops, scorers, ())
        if verdict == "ok":
            continue
        if _discarded(ev):
            out.append(raw(RULE, f, ev.node, ev.ctx, "info", "medium",
                           "gradient steps on validation tokens for a throw-away copy (deleted afterwards): a grey area "
                           "(compile warmup, RULES.md §4 #1530) as long as no state survives"))
            continue
        msg = verdict or "takes gradient steps on validation tokens with no scoring of them first (they are scored later)"
        out.append(raw(RULE, f, ev.node, ev.ctx, "error", "high" if verdict else "medium",
                       f"backward pass on a validation-data loss: {msg}"))
    return out
