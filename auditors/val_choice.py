"""Validation data chosen for training by a setting inside a helper:

    def training_shards(hp):
        if hp.smoke_on_val:
            return sorted(glob.glob(hp.val_pattern))
        return sorted(glob.glob(hp.train_pattern))

What a training loop built on `training_shards(hp)` trains on is of both splits, but the
validation shards are trained on only where the setting picks them. The place to report
is the guarded `return`, so that the finding's reach is that setting's (dormant on eight
GPUs where `smoke_on_val` defaults on only for one process). Followed backwards from the
loss of a backward pass through the bindings of the names that carry validation data,
into callers for parameters, and only when every such path ends in such a helper.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.flow import Ctx
from auditors.rules import ctx_of

_MAX_STEPS = 40


def guarded_val_return(m, f, ev):
    """(helper, return statement, context) where the validation data that f's backward pass
    trains on is chosen by a setting, when every way it enters is through such helpers' guarded
    returns (the first of them); else None."""
    loss = ev.node.func.value if type(ev.node) is ast.Call and type(ev.node.func) is ast.Attribute else ev.node
    todo, seen, chosen, steps = [(f, loss)], set(), [], 0
    while todo:
        g, e = todo.pop()
        if (id(g), id(e)) in seen:
            continue
        seen.add((id(g), id(e)))
        steps += 1
        if steps > _MAX_STEPS:
            return None  # (too far to tell that nothing else gives validation data)
        for n in _carriers(g, e):
            if type(n) is ast.Call:
                callee = m.resolve(n.func, g)
                picked = _guarded_returns(m, callee) if callee is not None else None
                if picked:
                    chosen += picked
                    continue
                passed = [*n.args, *(k.value for k in n.keywords), *([n.func.value] if type(n.func) is ast.Attribute else [])]
                if not any("VAL" in g.labels_of(a) for a in passed):
                    return None  # a call that makes validation data itself (`load_val()`)
                todo += [(g, a) for a in passed if "VAL" in g.labels_of(a)]
            elif type(n) is ast.Name:
                sources = _sources(m, g, n.id)
                if sources is None:
                    return None
                todo += sources
    return chosen[0] if chosen else None


def _carriers(g, e):
    """The calls and names in e that carry validation data, outermost first (a call's own
    arguments are followed only through the call)."""
    stack = [e]
    while stack:
        n = stack.pop()
        if type(n) in (ast.Lambda, ast.Constant):
            continue
        if type(n) in (ast.Call, ast.Name):
            if "VAL" in g.labels_of(n):
                yield n
            continue
        stack.extend(ast.iter_child_nodes(n))


def _sources(m, g, name: str):
    """[(function, expression)] that bind `name` as g sees it: its assignments in g (a tuple
    target takes the whole value), else what callers pass for a parameter; None when it
    cannot be told."""
    values = [a.value for a in m.under(g, m.nodes_of(ast.Assign)) if _binds(a, name)]
    values += [lp.iter for lp in m.under(g, m.nodes_of(ast.For)) if _binds_target(lp.target, name)]
    if values:
        return [(g, v) for v in values]
    if name in g.params:
        passed = m.arguments_for(g, name)
        if not passed or any(arg is None for arg, _ in passed):
            return None
        module = m.functions["<module>"]
        return [(caller or module, arg) for arg, caller in passed]
    return None


def _binds(a: ast.Assign, name: str) -> bool:
    return any(_binds_target(t, name) for t in a.targets)


def _binds_target(t, name: str) -> bool:
    if type(t) is ast.Name:
        return t.id == name
    return type(t) in (ast.Tuple, ast.List) and any(_binds_target(x, name) for x in t.elts)


def _guarded_returns(m, g) -> list:
    """[(g, return, context)] of g's returns that give validation data, when g makes that
    data itself (no parameter hands it in), every such return is under a setting (an `if` on
    a settings field or module name, not on a parameter: `if split == "val"` is the caller's
    choice), and another return gives none (a choice between the splits)."""
    if "VAL" not in g.ret or any("VAL" in v for v in g.param_labels.values()):
        return []
    returns = [r for r in m.under(g, m.nodes_of(ast.Return)) if r.value is not None and _own(g, r)]
    with_val = [r for r in returns if "VAL" in g.labels_of(r.value)]
    if not with_val or len(with_val) == len(returns):
        return []
    out = []
    for r in with_val:
        ctx: Ctx = ctx_of(g, r)
        settings = [t for t, polarity in ctx.guards if polarity in (True, False)]
        if not settings or any(_names_a_parameter(g, t) for t in settings):
            return []
        out.append((g, r, ctx))
    return out


def _own(g, r: ast.Return) -> bool:
    """The return is g's, not a nested function's."""
    return not any(h.parent is g and h.node.lineno <= r.lineno <= h.node.end_lineno for h in g.module.functions.values())


def _names_a_parameter(g, test: ast.expr) -> bool:
    """The condition reads a parameter of g itself, not a field of one (`hp.smoke_on_val` is a
    setting; `split == "val"` is what the caller asks for)."""
    fields = {id(n.value) for n in lb.walk(test) if type(n) is ast.Attribute}
    return any(type(n) is ast.Name and n.id in g.params and id(n) not in fields for n in lb.walk(test))
