"""Objects kept in a list and called in a loop: a list of objects made from a table of
classes (`hooks.append(HOOKS[name](**cfg))`, `[HOOKS[n]() for n in names]`, built by a
helper or handed in) runs each class's `__call__` where a loop calls its items:

    for hook in hooks:
        logits = hook(logits, view)
"""

from __future__ import annotations

import ast


def iterated_instances(m, f, name: str) -> list:
    """The `__call__` of each class whose objects a list that f loops over holds, where the
    loop variable is `name`: objects made from a module table of classes or by a class's
    name, in the list itself, in what builds it (appends, a comprehension, a function's
    return) or in what callers hand f for it."""
    out = []
    for loop in m.under(f, m.nodes_of(ast.For)):
        if type(loop.target) is not ast.Name or loop.target.id != name:
            continue
        for made in _made_items(m, f, loop.iter, 0):
            for cls in _classes_made(m, made):
                g = m.functions.get(f"{cls}.__call__")
                if g is not None and g not in out:
                    out.append(g)
    return out


def _made_items(m, f, e, depth: int) -> list:
    """The calls whose results the list `e` (read in f) holds."""
    if depth > 3 or e is None:
        return []
    if type(e) is ast.Name and e.id in f.params and f.binding(e.id) is None:
        return [c for arg, caller in m.arguments_for(f, e.id) if arg is not None and caller is not None
                for c in _made_items(m, caller, arg, depth + 1)]
    if type(e) is ast.Name:
        held = f.binding(e.id)
        if held is None or type(held) is ast.List and not held.elts:  # `hooks = []`, then `hooks.append(Made(...))`
            return [c.args[0] for c in m.under(f, m.nodes_of(ast.Call)) if type(c.func) is ast.Attribute
                    and c.func.attr == "append" and type(c.func.value) is ast.Name and c.func.value.id == e.id
                    and len(c.args) == 1 and type(c.args[0]) is ast.Call]
        return _made_items(m, f, held, depth + 1)
    if type(e) is ast.ListComp:
        return [e.elt] if type(e.elt) is ast.Call else []
    if type(e) in (ast.List, ast.Tuple):
        return [x for x in e.elts if type(x) is ast.Call]
    if type(e) is ast.Call:
        g = m.resolve(e.func, f)
        if g is not None and g.qualname != "<module>" and g is not f:  # `hooks = build_hooks(settings)`: what it returns
            return [c for r in m.under(g, m.nodes_of(ast.Return)) for c in _made_items(m, g, r.value, depth + 1)]
    return []


def _classes_made(m, call: ast.Call) -> list[str]:
    """The module classes a call may construct: `Cls(...)`, or `TABLE[key](...)` over a
    module-level dict literal of classes."""
    func = call.func
    if type(func) is ast.Name and f"{func.id}.__call__" in m.functions:
        return [func.id]
    if type(func) is ast.Subscript and type(func.value) is ast.Name:
        table = m.functions["<module>"].defs.get(func.value.id)
        if type(table) is ast.Dict:
            return [v.id for v in table.values if type(v) is ast.Name and f"{v.id}.__call__" in m.functions]
    return []
