"""`TABLE.get(key, default)` of a table of functions, read as `TABLE[key]`.

    COMBINERS = {"model": only_model, "mixture": mixed, "guarded": lambda a, b: ...}
    combine = COMBINERS.get(args.combine, COMBINERS["mixture"])

picks an entry by a setting exactly as `COMBINERS[args.combine]` does; the analysis knows
dispatch tables by their subscripts (the entry a key's default picks, every entry when the
key is unknown), so before it runs, such a `.get` is rewritten into the subscript. Only
when the table is a dict literal bound once at module level whose values are all
functions (names, attributes, lambdas) and the fallback is one of those entries (by the
same name, or `TABLE["k"]`): then the rewrite loses nothing the analysis could use.
"""

from __future__ import annotations

import ast

from auditors.labels import every_node

_CALLABLE = (ast.Name, ast.Attribute, ast.Lambda)


def as_subscripts(tree: ast.Module) -> ast.Module:
    """The tree, with such `.get` calls replaced in place by subscripts."""
    tables = _function_tables(tree)
    if not tables:
        return tree
    for node in every_node(tree):
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if _table_get(item, tables):
                        value[i] = _subscript(item)
            elif _table_get(value, tables):
                setattr(node, field, _subscript(value))
    return tree


def _function_tables(tree: ast.Module) -> dict[str, ast.Dict]:
    """Module-level names bound once, to a dict literal of functions."""
    bound: dict[str, list] = {}
    for st in tree.body:
        if type(st) is ast.Assign:
            for t in st.targets:
                if type(t) is ast.Name:
                    bound.setdefault(t.id, []).append(st.value)
    return {name: values[0] for name, values in bound.items() if len(values) == 1 and type(values[0]) is ast.Dict
            and values[0].values and None not in values[0].keys
            and all(type(v) in _CALLABLE for v in values[0].values)}


def _table_get(e, tables: dict) -> bool:
    if type(e) is not ast.Call or type(e.func) is not ast.Attribute or e.func.attr != "get" \
            or type(e.func.value) is not ast.Name or e.func.value.id not in tables or len(e.args) != 2 or e.keywords:
        return False
    table, fallback = tables[e.func.value.id], e.args[1]
    if type(fallback) is ast.Subscript and type(fallback.value) is ast.Name and fallback.value.id == e.func.value.id:
        return type(fallback.slice) is ast.Constant and any(
            type(k) is ast.Constant and k.value == fallback.slice.value for k in table.keys)
    return any(ast.dump(fallback) == ast.dump(v) for v in table.values if type(v) is not ast.Lambda)


def _subscript(call: ast.Call) -> ast.Subscript:
    out = ast.Subscript(value=call.func.value, slice=call.args[0], ctx=ast.Load())
    return ast.copy_location(out, call)
