"""Whether a loss computed after a training step scores predictions made before it.

`with no_grad(): z = head(h + carry)`, then `carry = fit(h, ys)`, then `nll = CE(z, ys)`:
the loss line comes after the training step, but the logits it reads were computed
before it, so the tokens are scored first (the offset fitted here only serves later
windows). The logits must be locals of the loop body whose last binding on the way to
the loss, skipping the other arm of an `if` that holds the training step, precedes the
training step; a fresh forward pass in the loss's argument (`CE(net(x), y)`) is not fixed.
"""

from __future__ import annotations

import ast

from auditors.labels import walk


def returns_before_training(f, st) -> bool:
    """`logits = refiner(x, y)` where every function the call reaches returns a value bound
    before its own training step (`with no_grad(): logits = ...`, then `self._fit(...)`, then
    `return logits`): what the statement binds was computed before the training in it."""
    m = f.module
    call = st.value if type(st) is ast.Assign and type(st.value) is ast.Call else None
    reached = [m.functions[q] for ev in f.events if ev.kind == "call" and ev.node is call for q in m.targets(ev)]
    return bool(reached) and all(_returns_pretrained(g) for g in reached)


def _returns_pretrained(g) -> bool:
    m = g.module
    trains = [e.line for e in g.events if e.kind == "backward" or e.kind == "call" and e.data["callee"]
              and m.trains_any(m.functions[e.data["callee"]])]
    returns = [r for r in m.under(g, m.nodes_of(ast.Return)) if r.value is not None]
    if not trains or not returns:
        return False
    first = min(trains)
    return all(type(r.value) is ast.Name and r.lineno > first and _bound_before(r.value.id, g.node, first, r.lineno)
               for r in returns)


def fixed_before(f, loop, train_line: int, stmt) -> bool:
    """Every loss in `stmt` reads logits bound in `loop` before `train_line`."""
    losses = [e for e in f.events if e.kind == "ce" and stmt.lineno <= e.line <= stmt.end_lineno]
    if not losses:
        return False
    modules = f.module.imported_modules()
    return all(e.node.args and _fixed(e.node.args[0], loop, train_line, e.line, modules) for e in losses)


def _fixed(e, loop, train_line, use_line, modules) -> bool:
    if type(e) is ast.Constant:
        return True
    if type(e) is ast.Name:
        return _bound_before(e.id, loop, train_line, use_line)
    if type(e) in (ast.Attribute, ast.Subscript, ast.Starred):
        return _fixed(e.value, loop, train_line, use_line, modules)
    if type(e) is ast.BinOp:
        return all(_fixed(x, loop, train_line, use_line, modules) for x in (e.left, e.right))
    if type(e) is ast.UnaryOp:
        return _fixed(e.operand, loop, train_line, use_line, modules)
    if type(e) is ast.Call and type(e.func) is ast.Attribute:
        root = e.func.value
        while type(root) is ast.Attribute:
            root = root.value
        if type(root) is ast.Name and root.id in modules:  # `F.log_softmax(z, -1)`: a function of its tensor arguments
            tensors = [a for a in e.args if type(a) is not ast.Constant]
            return bool(tensors) and all(_fixed(a, loop, train_line, use_line, modules) for a in tensors)
        return _fixed(e.func.value, loop, train_line, use_line, modules)  # `z.float().flatten(0, 1)`
    return False


def _bound_before(name: str, loop, train_line: int, use_line: int) -> bool:
    """The last binding of `name` in the loop body before `use_line`, on a path through
    `train_line`, comes before `train_line` (a name not bound in the loop is not known)."""
    binds = [n for n in walk(loop) if _binds(n, name) and n.lineno < use_line
             and not _other_arm(loop, n.lineno, train_line)]
    return bool(binds) and max(n.lineno for n in binds) < train_line


def _binds(node, name: str) -> bool:
    if type(node) is ast.Assign:
        targets = node.targets
    elif type(node) in (ast.AnnAssign, ast.AugAssign):
        targets = [node.target]
    else:
        return False
    return any(type(n) is ast.Name and n.id == name for t in targets for n in walk(t))


def _other_arm(loop, line: int, train_line: int) -> bool:
    """`line` and `train_line` lie in different arms of one `if`: never both on a path."""
    for n in walk(loop):
        if type(n) is ast.If and n.body and n.orelse:
            arms = [(n.body[0].lineno, n.body[-1].end_lineno), (n.orelse[0].lineno, n.orelse[-1].end_lineno)]
            where = [next((i for i, (lo, hi) in enumerate(arms) if lo <= x <= hi), None) for x in (line, train_line)]
            if None not in where and where[0] != where[1]:
                return True
    return False
