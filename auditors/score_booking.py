"""Scores fixed before an update, and gradients that reach no weights (RULES.md §4).

Two shapes of a test-time-training loop that look like training on unscored tokens and
are not:
- one grad-enabled forward whose per-token loss is copied out of the graph (`.detach()`,
  `.item()`) into what the function reports, before the backward pass: the copy is the
  score, fixed before the update;
- `torch.autograd.grad` of a validation loss whose gradients are only measured (a norm for
  a log): `.grad` is untouched, and nothing writes them into the weights.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.adapted import root_name
from auditors.loop_shapes import first_pass


_BOOKS = {"setdefault", "append", "add_", "copy_", "extend", "put_", "index_add_"}


def books_detached(f, stmt) -> bool:
    """`booked.setdefault(ci, nll.detach().sum())`, `acc += nll.sum().item()`: the targets'
    loss, computed with gradients for the step that follows, is copied out of the graph into
    what the function returns (through any bindings); the copy is the score, fixed before
    any update. A total that is only logged is not a score."""
    def detached(e) -> bool:
        return any(type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr in ("detach", "item")
                   and "TGTP" in f.labels_of(n.func.value) for n in lb.walk(e))
    m = f.module
    around = [lp for kind in (ast.For, ast.While) for lp in m.under(f, m.nodes_of(kind))
              if lp is not stmt and lp.lineno <= stmt.lineno <= lp.end_lineno]
    if len(around) != 1 or any(e.ctx.loops for _, e in m.events("call") if f.qualname in m.targets(e)):
        return False  # (one pass over the chunks: an epoch loop around it, or a caller's, books trained tokens again)
    for n in lb.walk(stmt):
        if type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr in _BOOKS \
                and root_name(n.func.value) in _feeds_return(f) and any(detached(a) for a in n.args):
            return True
        if type(n) is ast.AugAssign and type(n.op) is ast.Add and root_name(n.target) in _feeds_return(f) and detached(n.value):
            return True
    return False


def books_without_grad(f, stmt) -> bool:
    """`with torch.no_grad(): total[0] += nll.double().sum()`: the targets' loss added, outside
    the graph, to what the function returns; the total is the score, fixed where it is added."""
    for w in lb.walk(stmt):
        if type(w) is ast.With and any(lb.call_name(i.context_expr.func) in ("no_grad", "inference_mode")
                                       for i in w.items if type(i.context_expr) is ast.Call):
            if any(type(n) is ast.AugAssign and type(n.op) is ast.Add and root_name(n.target) in _feeds_return(f)
                   and "TGTP" in f.labels_of(n.value) for b in w.body for n in lb.walk(b)):
                return not _repeated(f, w)
    return False


def _repeated(f, node) -> bool:
    """A loop around the node repeats it on the same data: a `for _ in range(n)` whose variable
    the body uses only in a first-pass test that does not hold the node (`if ep == 0:` around
    the booking makes the passes after it train only)."""
    m = f.module
    for lp in m.under(f, m.nodes_of(ast.For)):
        if not (lp.lineno <= node.lineno <= lp.end_lineno) or type(lp.iter) is not ast.Call \
                or lb.call_name(lp.iter.func) != "range" or type(lp.target) is not ast.Name:
            continue
        tests = [b for b in lb.walk(lp) if type(b) is ast.If and first_pass(b.test, [lp])]
        if any(b.lineno <= node.lineno <= b.end_lineno for b in tests):
            continue
        used = [n for b in lp.body for n in lb.walk(b) if type(n) is ast.Name and n.id == lp.target.id]
        if not used:
            return True
    return False


_MEASURES = {"sum", "norm", "item", "mean", "sqrt", "float", "max", "min", "len", "vector_norm"}


def gradients_only_measured(f, ev) -> bool:
    """`grads = torch.autograd.grad(loss, params)` whose results are only measured (a norm
    logged as a diagnostic): autograd.grad leaves `.grad` untouched, so nothing reaches the
    weights unless the function writes the gradients (or what is made from them: `for p, g
    in zip(params, grads)`) into a tensor in place (`p.add_(g)`), into `.grad` or `.data`,
    into a slot (`p[:] -= g`), or hands them back."""
    node = ev.node
    if type(node) is not ast.Call or not (lb.dotted(node.func) or "").endswith("autograd.grad"):
        return False
    m = f.module
    bound = next((a for a in m.under(f, m.nodes_of(ast.Assign)) if a.value is node), None)
    names = {n.id for t in bound.targets for n in lb.walk(t) if type(n) is ast.Name} if bound is not None else set()
    if not names:
        return False
    statements = [st for st in lb.walk(f.node) if isinstance(st, ast.stmt) and st is not bound]
    for _ in range(3):  # (names made from the gradients: loop variables over them, values computed from them)
        for st in statements:
            source = st.iter if type(st) in (ast.For, ast.AsyncFor) else st.value if type(st) is ast.Assign else None
            if type(source) is ast.Call and lb.call_name(source.func) in _MEASURES:
                continue  # (`sq = sum(g.pow(2).sum() for g in grads)`: a number about them, not gradients)
            if source is not None and {n.id for n in lb.walk(source) if type(n) is ast.Name} & names:
                names |= {n.id for t in ([st.target] if type(st) in (ast.For, ast.AsyncFor) else st.targets)
                          for n in lb.walk(t) if type(n) is ast.Name}
    for st in statements:
        if type(st) not in (ast.Assign, ast.AugAssign, ast.Expr, ast.Return) \
                or not {n.id for n in lb.walk(st) if type(n) is ast.Name} & names:
            continue
        targets = st.targets if type(st) is ast.Assign else [st.target] if type(st) is ast.AugAssign else []
        if type(st) is ast.Return or any(type(t) is ast.Attribute and t.attr in ("grad", "data") or type(t) is ast.Subscript
                                         for t in targets) \
                or any(type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr.endswith("_")
                       and n.func.attr != "requires_grad_" for n in lb.walk(st)):
            return False
    return True


def _feeds_return(f) -> frozenset:
    """Names whose values reach what f returns, through assignments, augmented ones and
    loops (`for s, n in booked.values(): acc[0] += s` then `return acc[0] / acc[1]`)."""
    if "_feeds_return" not in f.__dict__:
        m = f.module
        kept = {n.id for r in m.under(f, m.nodes_of(ast.Return)) if r.value is not None
                for n in lb.walk(r.value) if type(n) is ast.Name}
        flows = [(t, a.value) for a in m.under(f, m.nodes_of(ast.Assign)) for t in a.targets]
        flows += [(a.target, a.value) for a in m.under(f, m.nodes_of(ast.AugAssign))]
        flows += [(lp.target, lp.iter) for lp in m.under(f, m.nodes_of(ast.For))]
        flows = [({n.id for n in lb.walk(t) if type(n) is ast.Name}, {n.id for n in lb.walk(v) if type(n) is ast.Name})
                 for t, v in flows]
        grown = True
        while grown:
            grown = False
            for targets, sources in flows:
                if targets & kept and not sources <= kept:
                    kept |= sources
                    grown = True
        f._feeds_return = frozenset(kept)
    return f._feeds_return


def booked_in_block(f, st, at, counted) -> bool:
    """Inside the block that holds the step (`if part: ...`), a statement before it books the
    targets' loss under no_grad into the total the function returns, on one pass only
    (`if ep == 0: with no_grad(): acc[0] += nll.sum()`): each batch is scored before its step.
    Only such a booking counts here (a no_grad baseline computed before SLOT steps does not),
    and only where `counted(statement)` holds (not under a last-epoch test)."""
    while type(st) in (ast.If, ast.With, ast.Try):
        inner = st.body if any(holds(s, at) for s in st.body) else getattr(st, "orelse", [])
        idx = next((i for i, s in enumerate(inner) if holds(s, at)), None)
        if idx is None:
            return False
        if any(books_without_grad(f, s) and counted(s) for s in inner[:idx]):
            return True
        st = inner[idx]
    return False


def holds(stmt, at: tuple[int, int]) -> bool:
    """The statement spans the position (line, column)."""
    return (stmt.lineno, stmt.col_offset) <= at <= (stmt.end_lineno, stmt.end_col_offset)
