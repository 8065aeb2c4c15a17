"""Functions that run with no call of their name. A decorator puts them in a list that a
loop later runs (hooks, callbacks):

    _HOOKS = defaultdict(list)

    def register(event):
        def deco(fn):
            _HOOKS[event].append(fn)
            return fn
        return deco

    @register("eval_end")
    def consolidate(ctx): ...

    def run_hooks(event, ctx):
        for fn in _HOOKS[event]:
            fn(ctx)

No line calls `consolidate` by its name; it runs where the loop calls `fn`. For reach, each
such call is a call site of every function the registry's decorator was put on.

A `@property` (or `cached_property`) runs where its name is read as an attribute
(`self.body.encode()`): each such read is a call site.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.loop_shapes import innermost_statements
from auditors.rules import ctx_of

_ADDS = ("append", "add", "insert", "appendleft")


def registry_sites(m) -> list[tuple[str, object, ast.Call, object]]:
    """(registered function's name, the runner function, the call in the runner, ctx) for
    every call of a loop variable over a registry that a registering decorator fills."""
    registries = _registries(m)
    if not registries:
        return []
    registered = {}  # registry -> names of the functions decorated into it
    for f in m.functions.values():
        for d in f.node.decorator_list if f.qualname != "<module>" else ():
            called = d.func if type(d) is ast.Call else d
            if type(called) is ast.Name and called.id in registries:
                registered.setdefault(registries[called.id], []).append(f.name)
    out = []
    defs = [(h.node.lineno, h.node.end_lineno, h) for h in m.functions.values() if h.qualname != "<module>"]
    for g in m.functions.values():
        for loop in m.under(g, m.nodes_of(ast.For)):
            around = max(((a, h) for a, b, h in defs if a <= loop.lineno <= b), key=lambda x: x[0], default=(0, None))[1]
            if type(loop.target) is not ast.Name or around is not (None if g.qualname == "<module>" else g):
                continue  # (a function's walk sees the loops of the functions inside it too)
            held = {n.id for n in lb.walk(loop.iter) if type(n) is ast.Name}
            names = [n for reg, fns in registered.items() if reg in held for n in fns]
            if not names:
                continue
            for c in lb.walk(loop):
                if type(c) is ast.Call and type(c.func) is ast.Name and c.func.id == loop.target.id:
                    ctx = ctx_of(g, _statement_of(m, g, c))
                    out += [(name, g, c, ctx) for name in names]
    return out


def _registries(m) -> dict[str, str]:
    """decorator (or decorator factory) name -> the module-level name of the container its
    decorator adds the decorated function to (`REG[k].append(fn)`, `REG.append(fn)`)."""
    out = {}
    for g in m.functions.values():
        if g.qualname == "<module>" or len(g.params) != 1:
            continue
        fn = g.params[0]
        for c in m.under(g, m.nodes_of(ast.Call)):
            if type(c.func) is ast.Attribute and c.func.attr in _ADDS and c.args \
                    and type(c.args[-1]) is ast.Name and c.args[-1].id == fn:
                root = c.func.value.value if type(c.func.value) is ast.Subscript else c.func.value
                if type(root) is ast.Name:
                    outer = g.parent if g.parent is not None and g.parent.qualname != "<module>" else g
                    out[outer.name] = root.id
    return out


def _statement_of(m, g, node) -> ast.stmt | None:
    """The innermost statement of g that holds the node."""
    return m.once(("innermost statements", id(g.node)), lambda _: innermost_statements(g.node)).get(id(node))


_PROPERTIES = ("property", "cached_property")


def property_sites(m) -> list[tuple[str, object, ast.Attribute, object]]:
    """(property's name, the reading function, the attribute read, ctx) for each read of a
    module property's name as an attribute (by any object: the receiver's class is rarely
    known)."""
    names = {f.name for f in m.functions.values() if f.qualname != "<module>" and f.is_method
             and any(_is_property(d) for d in f.node.decorator_list)}
    if not names:
        return []
    out = []
    defs = [(h.node.lineno, h.node.end_lineno, h) for h in m.functions.values() if h.qualname != "<module>"]
    for a in m.nodes_of(ast.Attribute):
        if a.attr in names and type(a.ctx) is ast.Load:
            g = max(((lo, h) for lo, hi, h in defs if lo <= a.lineno <= hi), key=lambda x: x[0],
                    default=(0, m.functions["<module>"]))[1]
            st = _statement_of(m, g, a)
            if st is not None:
                out.append((a.attr, g, a, ctx_of(g, st)))
    return out


def _is_property(d) -> bool:
    d = d.func if type(d) is ast.Call else d
    return (d.id if type(d) is ast.Name else d.attr if type(d) is ast.Attribute else None) in _PROPERTIES
