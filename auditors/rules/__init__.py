"""One module per rule. Each defines `RULE` (a RuleInfo) and `check(m) -> list[RawFinding]`.

`m` is the module's `auditors.analysis.ModuleFlow`. Rules look at data flow and
program structure, never at how variables are named.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import random

from auditors.flow import Ctx
from auditors.labels import call_name, src, walk
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


def by_function(m, kind: type):
    """(function, node) for every node of this kind, each once, in the innermost function
    around it (the module's own statements last)."""
    seen = set()
    for f in sorted(m.functions.values(), key=lambda g: (g.qualname == "<module>", -g.qualname.count("."))):
        for node in m.under(f, m.nodes_of(kind)):
            if id(node) not in seen:
                seen.add(id(node))
                yield f, node


def guards_of(func, line: int) -> Ctx:
    """The context (guards) of the first event of `func` at `line`; with no event there, that
    of the innermost statement of `func` on the line, found in the syntax tree."""
    for ev in func.events:
        if ev.line == line:
            return ev.ctx
    around = [st for st in walk(func.node) if isinstance(st, ast.stmt) and st.lineno <= line <= st.end_lineno]
    return ctx_of(func, max(reversed(around), key=lambda st: st.lineno)) if around else Ctx()  # (the deepest)


def ctx_of(func, stmt) -> Ctx:
    """The guards and loops around a statement of `func` that no event sits on (`files +=
    extra`), found in the syntax tree the way the analysis records them for events."""
    def find(body, ctx):
        for st in body:
            if st is stmt:
                return ctx
            if not (st.lineno <= stmt.lineno <= st.end_lineno):
                continue
            if type(st) is ast.If:
                return find(st.body, Ctx(ctx.guards + ((st.test, True),), ctx.loops, ctx.nograd)) \
                    or find(st.orelse, Ctx(ctx.guards + ((st.test, False),), ctx.loops, ctx.nograd))
            if type(st) in (ast.For, ast.AsyncFor, ast.While):
                return find(st.body, Ctx(ctx.guards, ctx.loops + (st,), ctx.nograd)) or find(st.orelse, ctx)
            parts = [getattr(st, k, None) or [] for k in ("body", "orelse", "finalbody")]
            parts += [h.body for h in getattr(st, "handlers", [])]
            if type(st) not in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
                for part in parts:
                    found = find(part, ctx)
                    if found is not None:
                        return found
        return None
    return find(func.node.body, Ctx()) or Ctx()


def assigned_pairs(st: ast.Assign):
    """(target, value) of an assignment, tuples matched element by element (`v, i = r.values, r.indices`)."""
    for t in st.targets:
        if type(t) is ast.Tuple and type(st.value) is ast.Tuple and len(t.elts) == len(st.value.elts):
            yield from zip(t.elts, st.value.elts)
        else:
            yield t, st.value


def depends_on(f, expr, depth: int = 4) -> set[str]:
    """The names `expr` is computed from, through their bindings (`b = rows * (rank + 1) //
    world`, `rows = (hi - lo) // seq`: a rank's share of the chunk ends at `hi` on the last rank)."""
    names, todo = set(), [expr]
    for _ in range(depth):
        fresh = {x.id for e in todo for x in walk(e) if type(x) is ast.Name} - names
        names |= fresh
        todo = [b for b in map(f.binding, fresh) if b is not None]
    return names


def always_greater(a: ast.expr, b: ast.expr) -> bool:
    """a > b for every tried assignment of positive integers to the names in them: index
    arithmetic such as `(k + 2) * n + 1` against `(k + 1) * n + 1`, decided by sampling
    because the expressions are small and integer."""
    return all(x is not None and y is not None and x > y for x, y in samples(lambda env: (arith(a, env), arith(b, env))))


class _Draw(dict):
    """An environment in which any name is a positive integer, drawn when first read."""

    def __init__(self, rng: random.Random):
        super().__init__()
        self.rng = rng

    def get(self, name, default=None):
        if name not in self:
            self[name] = self.rng.randint(2, 5000)
        return self[name]


def samples(evaluate, trials: int = 8) -> list:
    """`evaluate(env)` in `trials` environments of drawn integers (fixed seed: repeatable)."""
    rng = random.Random(0)
    return [evaluate(_Draw(rng)) for _ in range(trials)]


_OPS = {ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y, ast.Mult: lambda x, y: x * y,
        ast.FloorDiv: lambda x, y: x // y if y else None}


def arith(e: ast.expr, env: dict) -> int | None:
    """The value of an integer expression of names and constants (None for anything else)."""
    if type(e) is ast.Constant and type(e.value) is int:
        return e.value
    if type(e) is ast.Name:
        return env.get(e.id)
    if type(e) is ast.UnaryOp and type(e.op) is ast.USub:
        v = arith(e.operand, env)
        return None if v is None else -v
    if type(e) is ast.BinOp and type(e.op) in _OPS:
        x, y = arith(e.left, env), arith(e.right, env)
        return None if x is None or y is None else _OPS[type(e.op)](x, y)
    return None


def with_strength(finding: RawFinding, f, term: ast.expr) -> RawFinding:
    """The finding with a soft guard `weight != 0` for the scalar weight of the term it is about
    (`lam * q[y]`; `b * (hint == y)` with `b = where(has, beta, 0.0)`): a mixture or a tilt at
    weight 0 adds nothing, so a weight that is a setting whose default is 0 leaves it dormant
    (`TILT_BETA=0`). Soft: a weight the launch does not decide leaves the reach as it is."""
    weight = _scalar_weight(f, term)
    if weight is not None:
        finding.guards.append([f"{src(weight)} != 0", "soft"])
    return finding


def _scalar_weight(f, term, depth: int = 0):
    """A factor of a product that holds no data (a setting, a constant name), followed through
    `name = where(mask, w, 0)` and `name = w * mask` to w."""
    if type(term) is ast.BinOp and type(term.op) is ast.Mult:
        for side in (term.left, term.right):
            if type(side) in (ast.Name, ast.Attribute) and not f.labels_of(side) - {"TIME"}:
                return side
        for side in (term.left, term.right):
            found = _scalar_weight(f, side, depth + 1) if depth < 3 else None
            if found is not None:
                return found
    if type(term) is ast.Name and depth < 3:
        bound = f.binding(term.id)
        if type(bound) is ast.Call and call_name(bound.func) == "where" and len(bound.args) == 3 \
                and type(bound.args[2]) is ast.Constant and bound.args[2].value == 0 \
                and type(bound.args[1]) in (ast.Name, ast.Attribute) and not f.labels_of(bound.args[1]) - {"TIME"}:
            return bound.args[1]  # `b = where(has, beta, 0.0)`
        if bound is not None:
            return _scalar_weight(f, bound, depth + 1)
    return None


def exported_buffers(m) -> set[str]:
    """Names of the buffers a module's classes register into their state dict
    (`self.register_buffer("prime", t)`); one registered with `persistent=False` stays out
    of the state dict, and so out of an artifact saved from it."""
    return m.once("exported buffers", lambda m: {
        c.args[0].value for c in m.nodes_of(ast.Call) if call_name(c.func) == "register_buffer" and c.args
        and type(c.args[0]) is ast.Constant and isinstance(c.args[0].value, str)
        and not any(k.arg == "persistent" and type(k.value) is ast.Constant and k.value.value is False for k in c.keywords)})
