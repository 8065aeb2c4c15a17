"""A phase schedule that scores a chunk, trains on it, then scores it again (RULES.md §5:
each token is scored once, before anything is trained on it).

    PHASES = {"score": score_chunk, "adapt": adapt_chunk, "settle": score_chunk_again}
    for ci in range(n_chunks):
        for name in schedule.split(","):      # "score,adapt,settle"
            PHASES[name](job)

A loop that runs the entries of a dispatch table in the order of a schedule (a list of the
table's keys, or a comma-separated string of them written in the file) scores the chunk in
"score", trains on its tokens in "adapt", and scores the same chunk again in "settle": what
is kept from the second scoring was computed after training on those very tokens. The rule
flags the dispatching call where a schedule lists an entry that scores, then one that
trains, then one that scores again. A schedule string not written in the loop carries the
condition that picks it (`schedule == "score,adapt,settle"`), so the finding is as reached
as the setting that chooses that schedule. "score,adapt" (each chunk scored once, then
trained on) is score-first TTT and stays clean.
"""

from __future__ import annotations

import ast
import re

from auditors import dispatch
from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("rescored-phase", "two_pass_rescore", "a phase schedule scores a chunk again after training on it",
                "RULES.md §5 (score once, before training on a token)")


def check(m):
    out = []
    for f in m.functions.values():
        for loop in m.under(f, m.nodes_of(ast.For)) if f.qualname != "<module>" else ():
            if type(loop.target) is not ast.Name:
                continue
            call = next((c for st in loop.body for c in lb.walk(st) if type(c) is ast.Call and type(c.func) is ast.Subscript
                         and type(c.func.slice) is ast.Name and c.func.slice.id == loop.target.id), None)
            items = dispatch.dispatch_items(f, call.func) if call is not None else None
            kinds = {k: _kind(m, v) for k, v in items or () if isinstance(k, str)}
            if not any(k == "trains" for k in kinds.values()):
                continue
            for order, guard in _schedules(m, f, loop):
                if _rescored(order, kinds):
                    found = raw(RULE, f, call, _ctx(f, call), "error", "medium",
                                f"the schedule {','.join(order)!r} scores the chunk in {order[0]!r}, trains on it, then "
                                f"scores it again: the second scoring comes after training on the very tokens it scores")
                    if guard:
                        found.guards.append([guard, True])
                    out.append(found)
                    break
    return out


def _ctx(f, call):
    return next((e.ctx for e in f.events if e.kind == "call" and e.node is call), None)


def _kind(m, v) -> str | None:
    """"trains" / "scores" for a table entry naming a function of the module, else None."""
    g = m.resolve(v, None) if type(v) is ast.Name else None
    if g is None:
        return None
    if m.trains_any(g):
        return "trains"
    return "scores" if m.scores(g) else None


def _schedules(m, f, loop) -> list[tuple[list[str], str | None]]:
    """(keys in order, condition) of each schedule the loop may run: a constant list written as
    its iterable (no condition), else every comma-separated string constant of the module,
    picked where the string the loop splits equals it."""
    it = loop.iter
    if type(it) in (ast.List, ast.Tuple) and all(type(e) is ast.Constant and isinstance(e.value, str) for e in it.elts):
        return [([e.value for e in it.elts], None)]
    split = _split_source(f, it)
    if split is None:
        return []
    texts = set(re.findall(r"[\"'](\w+(?:\s*,\s*\w+)+)[\"']", m.source))  # (string literals of the file)
    return [([p.strip() for p in t.split(",")], f"{split} == {t!r}") for t in sorted(texts)]


def _split_source(f, it, depth: int = 0) -> str | None:
    """The source of the string a loop's iterable splits on commas: `s.split(",")`, a name bound
    to it, or a comprehension over it (`[p.strip() for p in s.split(",") if p.strip()]`)."""
    if depth > 3:
        return None
    if type(it) is ast.Name:
        bound = f.binding(it.id)
        return _split_source(f, bound, depth + 1) if bound is not None else None
    if type(it) is ast.ListComp and len(it.generators) == 1:
        return _split_source(f, it.generators[0].iter, depth + 1)
    if type(it) is ast.Call and type(it.func) is ast.Attribute and it.func.attr == "split" and it.args \
            and type(it.args[0]) is ast.Constant and it.args[0].value == ",":
        return lb.src(it.func.value)
    return None


def _rescored(order: list[str], kinds: dict) -> bool:
    """Some entry that scores, then one that trains, then one that scores again."""
    seen_score = trained = False
    for name in order:
        kind = kinds.get(name)
        if kind == "scores" and trained:
            return True
        if kind == "scores":
            seen_score = True
        elif kind == "trains" and seen_score:
            trained = True
    return False
