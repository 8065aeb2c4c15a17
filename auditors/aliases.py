"""Names imported under another name, and method receivers under another name, read
under their own.

`from numpy import log1p as l1p, expm1 as em1` makes `l1p(...)` a `log1p(...)`; the rules
know functions by their names (a log-normalizer, a cross-entropy, a download), so an alias
would hide what is called. Before the analysis, every use of such an alias is renamed to
the imported name, unless either name is bound any other way in the module (a variable
`exp` beside `from math import exp as e`, or the alias reassigned): then the alias stays,
since renaming would merge two values.

A method's receiver is read as `self` (`cls` for a classmethod) whatever its author named
it: `def ingest(s, toks): s.c.index_add_(...)` writes the object's state as surely as
`self.c` does, and the analysis knows objects by that name.
"""

from __future__ import annotations

import ast

from auditors.labels import every_node


def unaliased(tree: ast.Module) -> ast.Module:
    """The tree, with the aliases of module-level `from m import name as alias` renamed to
    `name` in place, and method receivers renamed to `self` / `cls`."""
    _receivers_renamed(tree)
    aliased = [st for st in _top_level(tree.body) if type(st) is ast.ImportFrom
               and any(a.asname and a.asname != a.name for a in st.names)]
    if not aliased:
        return tree
    wanted: dict[str, set[str]] = {}
    for st in aliased:
        for a in st.names:
            if a.asname and a.asname != a.name:
                wanted.setdefault(a.asname, set()).add(a.name)
    nodes = every_node(tree)
    bound = _bound_names(nodes, {id(st) for st in aliased})
    renames = {alias: next(iter(names)) for alias, names in wanted.items()
               if len(names) == 1 and alias not in bound and not names & bound}
    if not renames:
        return tree
    for node in nodes:
        if type(node) is ast.Name and node.id in renames:
            node.id = renames[node.id]
    for st in aliased:
        for a in st.names:
            if a.asname in renames:
                a.asname = None
    return tree


def _receivers_renamed(tree: ast.Module) -> None:
    """`def step(s, x): s.w += x` inside a class becomes `def step(self, x): self.w += x`.
    Left alone: static methods, and methods that already use the usual name or in which a
    nested function or comprehension binds the receiver's name again."""
    for cls in _classes(tree.body):
        for fn in cls.body:
            if type(fn) not in (ast.FunctionDef, ast.AsyncFunctionDef) or not (fn.args.posonlyargs + fn.args.args):
                continue
            decorators = {d.id if type(d) is ast.Name else getattr(d, "attr", None) for d in fn.decorator_list}
            if "staticmethod" in decorators:
                continue
            first = (fn.args.posonlyargs + fn.args.args)[0]
            usual = "cls" if "classmethod" in decorators else "self"
            if first.arg in (usual, "self", "cls"):
                continue
            inner = list(every_node(fn))
            if any(type(n) is ast.Name and n.id == usual or type(n) is ast.arg and n.arg == usual for n in inner) \
                    or sum(type(n) is ast.arg and n.arg == first.arg for n in inner) > 1 \
                    or any(type(n) is ast.Name and n.id == first.arg and type(n.ctx) is ast.Store for n in inner):
                continue
            old, first.arg = first.arg, usual
            for n in inner:
                if type(n) is ast.Name and n.id == old:
                    n.id = usual


def _classes(body: list) -> list:
    """The class definitions among these statements and the statements inside them (the
    blocks of compound statements only: no expression holds a class definition)."""
    out, todo = [], list(body)
    while todo:
        st = todo.pop()
        if type(st) is ast.ClassDef:
            out.append(st)
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            todo += [x for x in getattr(st, field, ()) if isinstance(x, (ast.stmt, ast.excepthandler, ast.match_case))]
    return out


def _top_level(body: list) -> list:
    """The module's statements, with those inside its top-level `try` / `if` blocks."""
    out = []
    for st in body:
        out.append(st)
        if type(st) in (ast.Try, ast.If):
            parts = [st.body, st.orelse, *(h.body for h in getattr(st, "handlers", []))]
            out += [s for part in parts for s in part]
    return out


def _bound_names(nodes: list, skipped: set[int]) -> set[str]:
    """Names the module binds other than by the aliased imports (`skipped`): assignments,
    definitions, parameters, other imports."""
    out = set()
    for node in nodes:
        t = type(node)
        if t is ast.Name and type(node.ctx) is not ast.Load:
            out.add(node.id)
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            out.add(node.name)
        elif t is ast.arg:
            out.add(node.arg)
        elif t is ast.Import or t is ast.ImportFrom and id(node) not in skipped:
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif t is ast.ImportFrom:  # an aliased import's plain names (`from m import a, b as c`: a)
            out.update(a.name for a in node.names if not a.asname)
    return out
