"""State a call fills that outlives it (read by `auditors.rules.two_pass_rescore`): counts
an object's method adds into a container it holds, tables a function (or a callee)
writes, and the objects a call hands on that keep counts (a hook's, a factory's): a pass
that fills them and a later pass that reads them score the same tokens twice.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.adapted import ACCUMULATE


def self_table(node) -> str | None:
    """`self.rows[...]` / `self.rows.setdefault(...)[...]`: the attribute of the object."""
    while isinstance(node, (ast.Subscript, ast.Call)):
        node = node.value if isinstance(node, ast.Subscript) else node.func
        if isinstance(node, ast.Attribute) and node.attr in ("setdefault", "get"):
            node = node.value
    d = lb.dotted(node)
    return d if d and d.startswith("self.") else None


COUNTING = {"bincount", "histc", "one_hot"}  # counts of the tokens, added into a tensor


def counts_into_self(f) -> bool:
    """A method that adds counts into a container it holds (`self.rows[ctx][tok] += 1`,
    `self.rows.setdefault(ctx, zeros(V))[tok] += 1`, `self.counts.index_put_((x, y), ones,
    accumulate=True)`, `np.add.at(self.counts, ...)`): a cache keyed by data, hashed or not."""
    if not f.is_method:
        return False
    m = f.module
    if any(type(n.target) is ast.Subscript and self_table(n.target) and _keyed(n.target)
           for n in m.under(f, m.nodes_of(ast.AugAssign))):
        return True
    if any(type(n.target) is ast.Attribute and self_table(n.target) and any(
            type(c) is ast.Call and lb.call_name(c.func) in COUNTING for c in lb.walk(n.value))
            for n in m.under(f, m.nodes_of(ast.AugAssign))):
        return True  # self.counts += torch.bincount(chunk, minlength=V)
    for e in f.events:
        if e.kind != "call" or type(e.node.func) is not ast.Attribute:
            continue
        name, holder = e.data["name"], e.node.func.value
        if name in ACCUMULATE and name != "put_" or name == "put_" and any(
                k.arg == "accumulate" for k in e.node.keywords):
            if self_table(holder):
                return True
        if name == "at" and e.node.args and self_table(e.node.args[0]):
            return True
    return False


def _keyed(target: ast.Subscript) -> bool:
    """`self.rows[ctx][tok]`: some index is computed. Fixed slots (`self.v[0] -= nll`,
    `self.v[1] += nbytes`) are running sums, not a table keyed by data."""
    node = target
    while type(node) is ast.Subscript:
        if not all(type(n) in (ast.Constant, ast.Tuple, ast.UnaryOp, ast.USub) for n in lb.walk(node.slice)):
            return True
        node = node.value
    return False


def accumulated_roots(f) -> set[str]:
    """Names whose objects f adds counts into in place (`th.c.index_add_(0, y, ones)`)."""
    out = set()
    for e in f.events:
        if e.kind == "call" and type(e.node.func) is ast.Attribute and e.data["name"] in ACCUMULATE:
            root = e.node.func.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if type(root) is ast.Name:
                out.add(root.id)
    return out


def hook_state(m, f, call: ast.Call) -> set[str]:
    """What a call hands to a factory among its arguments (`score(model, val,
    hook=make_hook(th, ...))`) when the function the factory returns adds counts into it,
    or an object it hands whose `__call__` adds counts into it: the state that outlives the call."""
    out = set()
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        made = f.binding(arg.id) if type(arg) is ast.Name else None
        runs = m.functions.get(f"{made.func.id}.__call__") if type(made) is ast.Call and type(made.func) is ast.Name else None
        if runs is not None and fills(m, runs):
            out.add(arg.id)  # `hook = CountingHook(val)` handed to each pass: its counts outlive the call
            continue
        factory = m.resolve(arg.func, f) if type(arg) is ast.Call else None
        inner = m.returned_function(factory) if factory is not None else None
        if inner is None:
            continue
        mutated = accumulated_roots(inner)
        for p, given in zip(factory.params, arg.args):
            if p in mutated and lb.dotted(given):
                out.add(lb.dotted(given))
    return out


def fills(m, f) -> bool:
    """f (or a callee) writes a hashed table or adds counts into a container of its object."""
    return m.writes_tables(f) or m._transitive(f, counts_into_self, ("counts into self",))


def fills_here(m, g, call, own: bool = False) -> bool:
    """fills for this call of g: a callable parameter it leaves out (`hook=None`) fills nothing
    (`ev.sliding(model)`, then `ev.sliding(model, hook=CountingHook(...))`: only the second fills).
    own: what g fills in its own object, through none of its callable parameters (a hook handed
    in keeps its counts in the hook, not in the object whose method runs it)."""
    if not fills(m, g):
        return False
    invoked = {e.node.func.id for e in g.events if e.kind == "call" and type(e.node.func) is ast.Name and e.node.func.id in g.params}
    params = g.params[1:] if g.is_method and type(call.node.func) is ast.Attribute else g.params
    given = set(params[:len(call.node.args)]) | {k.arg for k in call.node.keywords if type(k.value) is not ast.Constant}
    unpassed = invoked if own else invoked - given - {k.arg for k in call.node.keywords if k.arg is None}
    if not unpassed or any(type(a) is ast.Starred for a in call.node.args):
        return True
    if any(e.kind == "write" for e in g.events) or counts_into_self(g):
        return True
    return any(fills(m, m.functions[q]) for e in g.events if e.kind == "call" and e.data["callee"]
               and not (type(e.node.func) is ast.Name and e.node.func.id in unpassed) for q in m.targets(e))
