"""A chunk scored, trained on, scored again, and the second score kept (RULES.md §5; C4
and C3 of §2).

Score-first TTT scores a chunk of validation tokens and then trains on it. Scoring the same
chunk once more after that update, and writing the new score over the first one in the
totals that are reported (`stats[ci].copy_(again)`, `stats[ci] = again`, `acc += again -
first`), reports each token's loss from a model that has already trained on that token:
every token is scored twice and the kept score was fitted to it.
Data flow: inside one loop, two calls of a scoring function with the same arguments (same
source text) and a training step on validation data between them; the second call's result
is stored into the accumulator the first call's result went to.
Legal counterpart: a second scoring used only to steer the adaptation (a learning-rate scale
for later chunks, a log line), the reported totals keeping the first score.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.adapted import root_name
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("rescored-chunk", "two_pass_rescore", "a chunk scored again after training on it, the new score kept",
                "RULES.md §5 (#869 overwrites pass-1 losses; #991 double-pass TTT)")
_IN_PLACE = {"copy_", "add_", "sub_", "set_"}


def check(m):
    out = []
    for f, ev in m.events("backward"):
        if "VAL" not in ev.data["loss"] or not ev.ctx.loops or f.qualname == "<module>":
            continue
        for loop in ev.ctx.loops:
            found = _kept_rescore(m, f, loop, ev.line)
            if found is not None:
                st, first = found
                out.append(raw(RULE, f, st, guards_of(f, st.lineno), "error", "medium",
                               f"scores the chunk again after training on it (line {ev.line}) and stores that score over the "
                               f"first one (line {first.lineno}) in the totals that are reported: each token's kept loss "
                               "comes from a model already fitted to it"))
                break
    return list({(r.function, r.line): r for r in out}.values())


def _kept_rescore(m, f, loop, trained: int):
    """(statement, first scoring call) where a scoring repeated after the training step at
    line `trained` is stored into the first scoring's accumulator, or None."""
    scorings = [e for e in f.events if e.kind == "call" and loop.lineno <= e.line <= loop.end_lineno and e.data["callee"]
                and any("VAL" in a for a in e.data["args"]) and m.scores(m.functions[e.data["callee"]])
                and not m.trains_any(m.functions[e.data["callee"]])]
    before = [e for e in scorings if e.node.end_lineno < trained]
    after = [e for e in scorings if e.line > trained]
    for b in after:
        for a in before:
            if lb.src(a.node) != lb.src(b.node):
                continue
            root = _accumulator(m, f, a.node)
            if root is None:
                continue
            kept = _stored_into(m, f, loop, b.node, root)
            if kept is not None:
                return kept, a.node
    return None


def _statement(m, f, call):
    kinds = (ast.Assign, ast.AugAssign, ast.Expr)
    return next((st for kind in kinds for st in m.under(f, m.nodes_of(kind))
                 if any(n is call for n in lb.walk(st.value))), None)


def _target(st):
    """The single target an assignment writes (`stats[ci]` of `stats[ci] += x`), else None."""
    if type(st) is ast.AugAssign:
        return st.target
    return st.targets[0] if type(st) is ast.Assign and len(st.targets) == 1 else None


def _accumulator(m, f, call) -> str | None:
    """The name the scoring's result is added or written into (`stats[ci] += score(...)`, or
    `first = score(...)` and then `total += first`)."""
    st = _statement(m, f, call)
    t = _target(st)
    if type(st) is ast.AugAssign or type(t) is ast.Subscript:
        return root_name(t)
    if type(t) is ast.Name:
        for s in m.under(f, m.nodes_of(ast.AugAssign)):
            if s.lineno > st.end_lineno and type(s.value) is ast.Name and s.value.id == t.id:
                return root_name(s.target)
    return None


def _stored_into(m, f, loop, call, root: str):
    """The statement of the loop after `call` that puts its result into `root`: the call's own
    statement (`stats[ci] = score(...)`), or one that stores the name it was bound to."""
    st = _statement(m, f, call)
    if st is None:
        return None
    if _target(st) is not None and root_name(_target(st)) == root:
        return st
    names = {t.id for t in st.targets if type(t) is ast.Name} if type(st) is ast.Assign else set()
    if not names:
        return None
    for kind in (ast.Assign, ast.AugAssign, ast.Expr):
        for s in m.under(f, m.nodes_of(kind)):
            if not (st.end_lineno < s.lineno <= loop.end_lineno) or not any(
                    type(n) is ast.Name and n.id in names for n in lb.walk(s.value)):
                continue
            if kind is ast.Expr and type(s.value) is ast.Call and type(s.value.func) is ast.Attribute \
                    and s.value.func.attr in _IN_PLACE and root_name(s.value.func.value) == root:
                return s  # `stats[ci].copy_(again)`
            if kind is not ast.Expr and _target(s) is not None and root_name(_target(s)) == root:
                return s  # `stats[ci] = again`, `acc += again - first`
    return None

