"""One module per rule. Each defines `RULE` (a RuleInfo) and `check(m) -> list[RawFinding]`.

`m` is the module's `auditors.analysis.ModuleFlow`. Rules look at data flow and
program structure, never at how variables are named.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil

from auditors.flow import Ctx
from auditors.labels import src
from auditors.model import RawFinding, RuleInfo


def all_rules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        mods.append(importlib.import_module(f"{__name__}.{info.name}"))
    return [m for m in mods if hasattr(m, "RULE") and hasattr(m, "check")]


def rule_info() -> dict[str, RuleInfo]:
    """Every rule a finding can carry: the rule modules', the engine's own and the
    folder checks' (records, shipped byte tables, data-prep splits, C kernels)."""
    from auditors import c_kernels, shipped_byte_tables, val_split
    from auditors.engine import UNPARSABLE
    from auditors.records import RECORD_RULES

    infos = {r.id: r for m in all_rules() for r in (m.RULE, *getattr(m, "EXTRA", ()))}
    for r in (UNPARSABLE, *RECORD_RULES, shipped_byte_tables.RULE, val_split.RULE, c_kernels.RULE):
        infos[r.id] = r
    return infos


def raw(rule: RuleInfo, func, node, ctx: Ctx | None, severity: str, confidence: str, message: str) -> RawFinding:
    guards = [[src(test), polarity] for test, polarity in (ctx.guards if ctx else ())]
    return RawFinding(rule.id, severity, confidence, node.lineno, message, func.qualname, guards)


def quotients(m):
    """(function, division) for every `a / b` inside a function (module level excluded)."""
    divisions = [n for n in m.nodes_of(ast.BinOp) if isinstance(n.op, ast.Div)]
    for f in m.functions.values():
        if f.qualname != "<module>":
            for node in m.under(f, divisions):
                yield f, node


def guards_of(func, line: int) -> Ctx | None:
    """The context (guards) of the first event of `func` at `line`, if any."""
    for ev in func.events:
        if ev.line == line:
            return ev.ctx
    return None
