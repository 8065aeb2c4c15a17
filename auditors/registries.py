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

A class filed in a dispatch table (`ADAPTERS = {c.name: c for c in (NoAdapt, Tent)}`) is
built where the table is called (`ADAPTERS[mode](model)`), only when the key selects it.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.dispatch import dispatch_items
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


def table_constructions(m) -> list[tuple[str, object, ast.Call, object, str]]:
    """(class, caller, call, ctx, guard) for each class a dispatch table builds at its one call
    (`ADAPTERS[mode](model, cfg)` over `{"none": NoAdapt, "tent": Tent}` or `{c.name: c for c
    in (NoAdapt, Tent)}` with `name = "tent"` in Tent's body): a construction of that class,
    made only where the key selects it (`mode == 'tent'`)."""
    inner: dict[int, tuple] = {}  # call -> (span of the innermost function around it, that function, the call)
    for g in m.functions.values():
        span = (g.node.end_lineno or 0) - g.node.lineno if g.qualname != "<module>" else 1 << 30
        for c in m.under(g, m.nodes_of(ast.Call)):
            if type(c.func) is ast.Subscript and type(c.func.value) is ast.Name and type(c.func.slice) is not ast.Constant \
                    and span < inner.get(id(c), (1 << 31,))[0]:
                inner[id(c)] = (span, g, c)
    per_table: dict[str, int] = {}
    for _, _, c in inner.values():
        per_table[c.func.value.id] = per_table.get(c.func.value.id, 0) + 1
    out = []
    for _, g, c in inner.values():
        if per_table[c.func.value.id] != 1:
            continue  # (a table called at two places has no one key)
        keys = _class_keys(m, g, c.func)
        for cls in m.table_classes(g, c.func):
            if cls in keys:
                ctx = ctx_of(g, _statement_of(m, g, c))
                out.append((cls, g, c, ctx, f"{lb.src(c.func.slice)} == {keys[cls]!r}"))
    return out


def _class_keys(m, g, func: ast.Subscript) -> dict[str, str]:
    """Class name -> the constant key a dispatch table files it under: a dict literal's (or
    registered) keys, or `{c.name: c for c in (...)}` read from each class body's `name = "..."`."""
    out = {v.id: k for k, v in dispatch_items(g, func) or () if type(v) is ast.Name and isinstance(k, str)}
    held = g.binding(func.value.id) or m.functions["<module>"].binding(func.value.id)
    if type(held) is ast.DictComp and type(held.key) is ast.Attribute and type(held.key.value) is ast.Name:
        attr = held.key.attr
        for cdef in m.nodes_of(ast.ClassDef):
            for st in cdef.body:
                if type(st) is ast.Assign and any(type(t) is ast.Name and t.id == attr for t in st.targets) \
                        and type(st.value) is ast.Constant and isinstance(st.value.value, str):
                    out[cdef.name] = st.value.value
    return out
