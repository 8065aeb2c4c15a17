"""Data picked from a table by a setting: `span = SOURCES[args.split]()` with
`SOURCES = {"train": lambda: stream.take(n), "holdout": lambda: val[:n]}`.

What a finding reads from such a call is of a split only under the keys whose entries
give that split; the finding's reach is then the setting's: its guards gain `split ==
"holdout"`. Followed by the bindings of the names the read expression uses, and only
when no other place in them gives the split (a parameter, a loader call of its own).
"""

from __future__ import annotations

import ast

from auditors.dispatch import dispatch_items
from auditors.flow import Ctx

_MAX_BINDINGS = 24


def with_choice(f, expr: ast.expr, label: str, ctx: Ctx) -> Ctx:
    """ctx, with the guard that picks `label` data into expr when it enters only through one
    settings-keyed table call (else ctx unchanged)."""
    guard = _choice(f, expr, label)
    return ctx if guard is None else Ctx(ctx.guards + ((guard, True),), ctx.loops, ctx.nograd)


def _choice(f, expr: ast.expr, label: str):
    m = f.module
    stores: dict[str, list] = {}  # name -> values stored into its slots (`payload["mem"] = ...`)
    for a in m.under(f, m.nodes_of(ast.Assign)):
        for t in a.targets:
            if type(t) is ast.Subscript and type(t.value) is ast.Name:
                stores.setdefault(t.value.id, []).append(a.value)
    todo, seen, choices = [expr], set(), []
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        if len(seen) > _MAX_BINDINGS:
            return None  # (too far to tell that nothing else gives the split)
        seen.add(id(e))
        for n in _outside_choices(e, f, choices, label):
            if type(n) is ast.Name:
                bound = f.binding(n.id)
                todo += stores.get(n.id, [])
                if bound is not None:
                    todo.append(bound)
                elif label in f.lookup(n.id):
                    return None  # a parameter or a name bound several times holds the split too
            elif type(n) is ast.Call and label in f.labels_of(n) and not any(
                    label in f.labels_of(a) for a in [*n.args, *(k.value for k in n.keywords),
                                                      *([n.func.value] if type(n.func) is ast.Attribute else [])]):
                return None  # a call that makes the split's data itself (`load_val()`)
    if len(choices) != 1:
        return None
    call, keys = choices[0]
    op, right = (ast.Eq(), ast.Constant(keys[0])) if len(keys) == 1 else \
        (ast.In(), ast.Tuple([ast.Constant(k) for k in keys], ast.Load()))
    return ast.Compare(call.func.slice, [op], [right])


def _outside_choices(e, f, choices: list, label: str):
    """The names and calls in e; a settings-keyed table call that chooses `label` data is
    recorded in choices instead, and not descended into."""
    stack = [e]
    while stack:
        n = stack.pop()
        if type(n) is ast.Call and type(n.func) is ast.Subscript and type(n.func.slice) is not ast.Constant:
            keys = _keys_giving(f, n.func, label)
            if keys is not None:
                if not any(c is n for c, _ in choices):
                    choices.append((n, keys))
                continue
        if type(n) in (ast.Name, ast.Call):
            yield n
        if type(n) is not ast.Lambda:
            stack.extend(ast.iter_child_nodes(n))


def _keys_giving(f, func: ast.Subscript, label: str) -> list | None:
    """The keys of a dispatch table of lambdas whose entries give `label` data, when some
    but not all do; else None."""
    items = dispatch_items(f, func) or []
    if len(items) < 2 or not all(type(v) is ast.Lambda for _, v in items):
        return None
    keys = [k for k, v in items if label in f.labels_of(v.body)]
    return keys if 0 < len(keys) < len(items) else None
