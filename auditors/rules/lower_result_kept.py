"""A reported score replaced by a second scoring's when that one is lower (RULES.md §2 C4
"no choosing the best of several passes", §5).

    loss, bpb = rescore(model)
    if bpb < report["val_bpb"]:
        report.update(val_loss=loss, val_bpb=bpb)

The first number was already the result; scoring the validation data again (other weights,
another scorer) and keeping whichever is lower reports the better of two attempts, chosen by
the answers. Often hidden in an end-of-evaluation hook that "consolidates" or "refreshes"
the report.
Data flow: an `if` comparing a name bound from a call in the same function with a slot of a
result that is named as a score (`report["val_bpb"]`, `result.val_loss`), whose body writes
that name into the same slot (`report["val_bpb"] = bpb`, `report.update(val_bpb=bpb)`,
`result.val_loss = loss`).
Legal counterparts: a running best of the validation loss while training (a loop that takes
gradient steps, or a function that does: checkpoint selection is the training's business),
a comparison only logged.
"""

from __future__ import annotations

import ast
import re

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import ctx_of, raw

RULE = RuleInfo("lower-result-kept", "two_pass_rescore",
                "a reported score replaced by another scoring's when that one is lower",
                "RULES.md §2 C4, §5 (best of several passes)")
_SCORE_NAME = re.compile(r"bpb|loss|nll|bits_per_byte", re.I)


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or any(e.kind == "backward" for e in f.events):
            continue
        ifs = [node for node in m.under(f, m.nodes_of(ast.If)) if type(node.test) is ast.Compare]
        if not ifs:
            continue
        loops = [lp for lp in m.under(f, m.nodes_of(ast.For)) + m.under(f, m.nodes_of(ast.While))]
        for node in ifs:
            if any(lp.lineno < node.lineno <= lp.end_lineno for lp in loops):
                continue  # (a best kept across the iterations of a loop: best-of-passes judges those)
            found = _kept_lower(f, node)
            if found is not None:
                fresh, slot = found
                out.append(raw(RULE, f, node, ctx_of(f, node), "error", "medium",
                               f"replaces the reported `{lb.src(slot)}` with `{fresh}` (scored again at line "
                               f"{_bound_from_call(f, fresh).lineno}) when that one is lower: the better of two "
                               "scorings is reported"))
    return out


def _kept_lower(f, node: ast.If):
    """(fresh name, slot) when the test is `fresh < slot` (or `slot > fresh`) and the body
    writes fresh into the slot; else None."""
    c = node.test
    if len(c.ops) != 1:
        return None
    left, right, op = c.left, c.comparators[0], c.ops[0]
    if type(op) in (ast.Gt, ast.GtE):
        left, right = right, left
    elif type(op) not in (ast.Lt, ast.LtE):
        return None
    if type(left) is not ast.Name or _slot_key(right) is None or _bound_from_call(f, left.id) is None:
        return None
    return (left.id, right) if _writes(node.body, right, left.id) else None


def _slot_key(e) -> str | None:
    """The name of a result's slot that holds a score (`report["val_bpb"]`, `res.val_loss`)."""
    if type(e) is ast.Subscript and type(e.slice) is ast.Constant and isinstance(e.slice.value, str):
        key = e.slice.value
    elif type(e) is ast.Attribute and type(e.value) in (ast.Name, ast.Attribute, ast.Subscript):
        key = e.attr
    else:
        return None
    return key if _SCORE_NAME.search(key) else None


def _bound_from_call(f, name: str):
    """The assignment in f that binds `name` (alone or in a tuple) to a call's result."""
    for a in f.module.under(f, f.module.nodes_of(ast.Assign)):
        if type(a.value) is ast.Call and any(type(n) is ast.Name and n.id == name for t in a.targets for n in lb.walk(t)):
            return a
    return None


def _writes(body: list, slot, name: str) -> bool:
    """A statement of the body stores `name` into the slot: by assignment, or by the
    container's `.update(key=name)`."""
    key, holder = _slot_key(slot), lb.src(slot.value)
    for st in body:
        for n in lb.walk(st):
            if type(n) is ast.Assign and type(n.value) is ast.Name and n.value.id == name \
                    and any(lb.src(t) == lb.src(slot) for t in n.targets):
                return True
            if type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr == "update" \
                    and lb.src(n.func.value) == holder and any(
                        k.arg == key and type(k.value) is ast.Name and k.value.id == name for k in n.keywords):
                return True
    return False
