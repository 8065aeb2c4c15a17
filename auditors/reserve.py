"""Whether the training budget reserves wall-clock time for what runs after the loop.

Calibration on training data is legal only inside the 600 s training window (RULES.md §6,
#593): a script that stops training early by a reserve (`max_wallclock -= reserve`,
`elapsed >= cap - reserve`, a budget method returning `cap - reserve`) has paid for it.
`has_reserve(m)` answers for a module; the helpers read the forms a reserve takes.
"""

from __future__ import annotations

import ast
import re

from auditors import labels as lb


def has_reserve(m) -> bool:
    """Some wall-clock limit is reduced by a reserve: `limit -= r`, `elapsed >= limit - r`, `limit = cap - r`."""
    reduced = {lb.src(n.target) for n in m.all_nodes if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Sub)
               and not _zero_setting(m, _unscaled(n.value))}  # (`budget -= 1000 * args.reserve_s`, default 0: nothing)
    lessened = {lb.src(n.left) for n in m.nodes_of(ast.BinOp) if type(n.op) is ast.Sub and type(n.right) is not ast.Constant}
    reduced |= {lb.src(t) for n in m.nodes_of(ast.Assign) for t in n.targets  # (the set: no walk of every assignment)
                if lb.src(t) in lessened and _reduces_itself(t, n.value, m)}
    for f in m.functions.values():
        if f.qualname != "<module>" and any(_reduced_return(m, f, a.value) and _handed_on(m, f, a) for a in m.under(f, m.nodes_of(ast.Assign))):
            return True  # `budget = self.budget_seconds()` (cap - reserve), then `self.start_clock(budget)`
        pairs = [(node, a, b) for node in (m.under(f, m.nodes_of(ast.Compare)) if f.qualname != "<module>" else ())
                 for a, b in zip([node.left, *node.comparators], node.comparators)]  # (`0 < budget < elapsed`: two)
        for node, a, b in pairs:
            sides = [a, b]
            timed = [i for i, side in enumerate(sides) if "TIME" in f.labels_of(side)]
            if len(timed) != 1:
                continue
            for limit in [sides[1 - timed[0]], *_budget_of(f, sides[timed[0]])]:
                text = lb.src(limit)
                defined = _reduced_binding(m, f, text) or f.defs.get(text) or m.functions["<module>"].defs.get(text)
                passed = {text} | ({n.id for n in lb.walk(defined) if type(n) is ast.Name} if defined is not None else set())
                held = {lb.src(n) for n in lb.walk(defined) if type(n) is ast.Attribute} if defined is not None else set()
                if text in reduced or held & reduced or _subtracts(limit, m) or (
                        _subtracts(defined, m) and not _zero_reserve(m, f, defined)) or any(_passed_reduced(m, f, name) for name in passed):
                    return True
                if any(_subtracts(f.binding(name), m) for name in passed - {text}):
                    return True  # `limit_ms = 1000 * budget_s if budget_s > 0 else None`, `budget_s = cap - reserve`
                if _reduced_return(m, f, limit) or (type(defined) is ast.Call and _reduced_return(m, f, defined)):
                    return True  # `elapsed >= self.budget_seconds()` returning `cap - reserve` (or a name bound to it)
                if _in_loop(f, node) and _below_cap(m, defined or limit):  # the limit that stops the loop,
                    return True  # not a check made once training is over
    return False


def _reduced_return(m, f, limit) -> bool:
    """The limit is a call of a function of the file that returns a cap minus a reserve
    (`def budget_seconds(self): return self.cfg.max_wallclock_seconds - self.cfg.gptq_reserve_seconds`)."""
    g = m.resolve(limit.func, f) if type(limit) is ast.Call else None
    if g is None:
        return False
    reached = [g, *(m.functions[q] for q in m.overrides(f, limit.func) if q in m.functions)]  # (a subclass's override)
    return any(_difference(r.value) for h in reached for r in m.under(h, m.nodes_of(ast.Return)))


def _difference(e) -> bool:
    """`cap - reserve`, also scaled to other units (`1000.0 * (cap - reserve)`)."""
    while type(e) is ast.BinOp and type(e.op) in (ast.Mult, ast.Div) and type(e.left if type(e.right) is ast.Constant else e.right) is ast.BinOp:
        e = e.left if type(e.right) is ast.Constant else e.right
    return type(e) is ast.BinOp and type(e.op) is ast.Sub and type(e.right) is not ast.Constant


def _reduced_binding(m, f, name: str):
    """Of the values a name is bound to in f (`limit = 1000 * (cap - reserve)` in one branch,
    `limit = None` in the other), the one that subtracts a reserve, if any."""
    for a in m.under(f, m.nodes_of(ast.Assign)):
        if any(lb.src(t) == name for t in a.targets) and _subtracts(a.value, m):
            return a.value
    return None


def _handed_on(m, f, assign) -> bool:
    """The name the assignment binds is handed to a call in the same function (`start_clock(budget)`)."""
    names = {t.id for t in assign.targets if type(t) is ast.Name}
    return any(type(a) is ast.Name and a.id in names for c in m.under(f, m.nodes_of(ast.Call)) for a in c.args)


def _budget_of(f, timed) -> list:
    """`frac = (now - t0) / budget_s`, then `frac >= 1.0`: the budget divided by is the limit."""
    bound = f.binding(timed.id) if type(timed) is ast.Name else timed
    return [bound.right] if type(bound) is ast.BinOp and type(bound.op) is ast.Div else []


def _zero_reserve(m, f, expr) -> bool:
    """`cap - reserve_seconds` with `reserve_seconds=0.0` a parameter that no call sets to
    anything but 0: the subtraction reserves nothing."""
    if type(expr) is not ast.BinOp or type(expr.right) is not ast.Name or expr.right.id not in f.params:
        return False
    name = expr.right.id
    default = lb.param_defaults(f.node.args).get(name)
    if not (type(default) is ast.Constant and default.value == 0):
        return False
    return all(arg is None or (type(arg) is ast.Constant and arg.value == 0) for arg, _ in m.arguments_for(f, name))


def _unscaled(e):
    """`1000.0 * args.reserve_s` -> `args.reserve_s`: the amount without its unit conversion."""
    while type(e) is ast.BinOp and type(e.op) in (ast.Mult, ast.Div) and (type(e.left) is ast.Constant or type(e.right) is ast.Constant):
        e = e.right if type(e.left) is ast.Constant else e.left
    return e


def _passed_reduced(m, f, param: str) -> bool:
    """The limit is a parameter that a caller passes reduced (`train(model, budget_s=cap - reserve)`,
    or a name the caller bound to `cap - reserve`, in one branch of its binding)."""
    if param not in f.params:
        return False
    for arg, caller in m.arguments_for(f, param):
        bound = (caller.binding(arg.id) or _reduced_binding(m, caller, arg.id)) \
            if caller is not None and type(arg) is ast.Name else None  # (`limit = None` in the other branch)
        if arg is not None and (_subtracts(arg) or _subtracts(bound)):
            return True
    return False


OFFICIAL_SECONDS = 600.0


def _in_loop(f, node) -> bool:
    return any(isinstance(n, (ast.For, ast.While)) and n.lineno <= node.lineno <= n.end_lineno for n in f.nodes)


def _below_cap(m, node) -> bool:
    """The limit's default sits under the 600 s training cap (`MAX_WALLCLOCK_SECONDS` default
    593: #790 keeps 7 s for its Hessians that way instead of subtracting a reserve)."""
    for n in lb.walk(node):
        name = n.attr if isinstance(n, ast.Attribute) else n.id if isinstance(n, ast.Name) else None
        default = m.class_defs.get(name) if name else None
        if default is None and name:
            default = _dict_default(m, name)
        if default is None and name:
            module_def = m.functions["<module>"].defs.get(name)
            default = lb.src(module_def) if module_def is not None else None
        value = _last_number(default)
        if value is not None and (0.5 * OFFICIAL_SECONDS <= value < OFFICIAL_SECONDS
                                  or 500 * OFFICIAL_SECONDS <= value < 1000 * OFFICIAL_SECONDS):
            return True  # seconds, or milliseconds
    return False


def _dict_default(m, key: str) -> str | None:
    """A default given in a settings dict literal (`DEFAULTS = {"max_wallclock_seconds": 590.0}`)."""
    table = m.once("dict defaults", lambda m: {k.value: lb.src(v) for d in m.nodes_of(ast.Dict) for k, v in zip(d.keys, d.values)
                                                if type(k) is ast.Constant and isinstance(k.value, str) and type(v) is ast.Constant
                                                and type(v.value) in (int, float)})
    return table.get(key)


def _reduces_itself(target, value, m) -> bool:
    """`limit = max(0.0, limit - 1000.0 * reserve)`: the same as `limit -= ...`."""
    text = lb.src(target)
    return any(type(n) is ast.BinOp and type(n.op) is ast.Sub and lb.src(n.left) == text and type(n.right) is not ast.Constant
               and not _zero_setting(m, n.right) for n in lb.walk(value))


def _subtracts(node, m=None) -> bool:
    """`cap - reserve`: a limit less a variable amount (not `1.0 - warmdown_frac`, the start
    of a learning-rate warmdown compared with the elapsed fraction, nor a reserve setting
    whose default is 0: `args.cap - args.gptq_reserve_seconds` with `GPTQ_RESERVE_SECONDS`
    defaulting to "0" reserves nothing)."""
    return node is not None and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub) and not isinstance(n.right, ast.Constant)
                                    and not isinstance(n.left, ast.Constant) and not (m is not None and _zero_setting(m, n.right))
                                    for n in lb.walk(node))


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def _last_number(text: str | None) -> float | None:
    """The last number written in a default's source (`float(os.environ.get("R", "12.0"))`: 12.0)."""
    numbers = _NUMBER.findall(text or "")
    return float(numbers[-1]) if numbers else None


def _zero_setting(m, e) -> bool:
    """A settings attribute whose class default is 0 (`float(os.environ.get("R", "0"))`), or a
    name bound once, to such an environment read (`reserve_s = float(os.environ.get("R", "0"))`)."""
    if type(e) is ast.Name:
        bound = [a.value for a in m.nodes_of(ast.Assign) if len(a.targets) == 1 and type(a.targets[0]) is ast.Name
                 and a.targets[0].id == e.id]
        return len(bound) == 1 and _zero_env_read(bound[0])
    return type(e) is ast.Attribute and e.attr in m.class_defs and _last_number(m.class_defs[e.attr]) == 0.0


def _zero_env_read(e) -> bool:
    """`float(os.environ.get("R", "0"))`: an environment read (cast, nothing else) whose default is 0."""
    while type(e) is ast.Call and type(e.func) is ast.Name and e.func.id in ("int", "float") and len(e.args) == 1:
        e = e.args[0]
    return type(e) is ast.Call and lb.call_name(e.func) in ("get", "getenv") and len(e.args) == 2 \
        and type(e.args[1]) is ast.Constant and _last_number(str(e.args[1].value)) == 0.0


def zero_reserves(m) -> list:
    """The reserve settings whose default is 0 that some limit is reduced by (`cap -
    args.gptq_reserve_s`): with a launch that sets one, time is reserved after all."""
    return [n.right for n in m.nodes_of(ast.BinOp) if type(n.op) is ast.Sub and _zero_setting(m, n.right)
            and type(n.left) is not ast.Constant] + [
        _unscaled(n.value) for n in m.nodes_of(ast.AugAssign) if type(n.op) is ast.Sub and _zero_setting(m, _unscaled(n.value))]
