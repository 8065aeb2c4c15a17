"""Added probability mass (RULES.md §2 C2, §3 "what does not fix it").

A mixture of two predictors is a distribution only when its weights sum to one:
`(1 - lam) * p + lam * q`. Adding the second on top of the first, `p + lam * q`, gives
numbers that sum to 1 + lam over the vocabulary; every token, the target included, is
scored as likelier than any distribution allows, and the reported bits drop for free.
The fault takes three shapes here:
- the target's two probabilities, `p[y] + lam * q[y]`, scored by their log;
- two whole distributions (a softmax and a copy or cache distribution) added, `p + lam * q`,
  then read at the target and logged;
- the same sum made by a mixer, a function or a lambda picked from a table by a setting
  (`{"lin": lambda p, q, g: (1 - g) * p + g * q, "copy": lambda p, q, g: p + g * q}`): the
  caller reads the mixer's result at the target, and the entry runs only when its key
  is chosen.
Dividing by the total (`/ (1 + lam)`, `/ q.sum(-1)`) or weighting both sides makes it legal.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.flow import Ctx
from auditors.dispatch import dispatch_items
from auditors.log_domain import in_log_domain
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("added-mass", "unnormalized_blend", "a second probability added on top of the first without renormalizing",
                "RULES.md §2 C2, §3")

_LOGS = ("log", "log2")
_TARGET_READS = ("gather", "take_along_dim")
_MESSAGE = ("adds a weighted second distribution to the first without renormalizing: the weights sum to more than "
            "one, so the scored numbers are no distribution over the vocabulary")


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname != "<module>" and not any(e.kind == "backward" for e in f.events):
            out += _target_scalars(m, f) or _rows(m, f) or _log_sum_unweighted(m, f)
    return out


def _log_sum_unweighted(m, f) -> list:
    """`logaddexp(logp, log(lam) + logq)`: the log of `p + lam * q`, two log-distributions
    summed with a weight on one side only (`logaddexp(log1p(-lam) + logp, log(lam) + logq)`
    weights both: a mixture)."""
    for ev in f.events:
        if ev.kind != "call" or ev.data["name"] != "logaddexp" or len(ev.node.args) != 2:
            continue
        weighted = [_log_weighted(f, a) for a in ev.node.args]
        if all("DIST" in f.labels_of(a) or "TGTP" in f.labels_of(a) for a in ev.node.args) and weighted.count(True) == 1 \
                and not _paired_weights(*ev.node.args):
            return [raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                        "adds a weighted log-distribution to an unweighted one (`logaddexp(log p, log lam + log q)` is "
                        "log(p + lam q)): the weights sum to more than one, so the result is no distribution")]
    return []


def _log_weighted(f, e, depth: int = 0) -> bool:
    """e is a log-distribution plus a log-weight: `log(lam) + logq`, `logq + math.log1p(-lam)`
    (a term with no prediction in it, taken through a log), or a name bound to one."""
    if type(e) is ast.Name and depth < 3:
        bound = f.binding(e.id)
        return bound is not None and _log_weighted(f, bound, depth + 1)
    if type(e) is not ast.BinOp or type(e.op) not in (ast.Add, ast.Sub):
        return False
    return any(type(s) is ast.Call and lb.call_name(s.func) in ("log", "log1p", "log2")
               and (not f.labels_of(s) & {"DIST", "TGTP"} or _complement(s)) for s in (e.left, e.right))


def _paired_weights(a, b) -> bool:
    """One side carries `log1p(-w)` (or `log(1 - w)`) and the other `log(w)`, the same w:
    the weights of a mixture, whatever w is made from."""
    def complements(e):
        return {lb.src(c.args[0].operand if type(c.args[0]) is ast.UnaryOp else c.args[0].right)
                for c in lb.walk(e) if type(c) is ast.Call and c.args and _complement(c)}
    def logs(e):
        return {lb.src(c.args[0]) for c in lb.walk(e) if type(c) is ast.Call and lb.call_name(c.func) in ("log", "log2")
                and c.args}
    return bool(complements(a) & logs(b) or complements(b) & logs(a))


def _complement(call: ast.Call) -> bool:
    """`log1p(-lam)`, `log(1 - lam)`: the weight a mixture leaves to the other side, whatever
    lam was computed from (an entropy of the model's prediction, say)."""
    arg = call.args[0] if call.args else None
    if lb.call_name(call.func) == "log1p":
        return type(arg) is ast.UnaryOp and type(arg.op) is ast.USub
    return type(arg) is ast.BinOp and type(arg.op) is ast.Sub and type(arg.left) is ast.Constant and arg.left.value == 1


def _split(node):
    """(bare, weighted) of `a + w * b` (either order), or None: the bare side is no product
    or other arithmetic, the weighted one a product."""
    if type(node) is not ast.BinOp or type(node.op) is not ast.Add:
        return None
    bare, weighted = node.left, node.right
    if type(bare) is ast.BinOp and type(bare.op) is ast.Mult:
        bare, weighted = weighted, bare
    if type(bare) is ast.BinOp or type(weighted) is not ast.BinOp or type(weighted.op) is not ast.Mult:
        return None
    return bare, weighted


def _target_scalars(m, f) -> list:
    """`p[y] + lam * q[y]` scored as a probability (its log taken)."""
    candidates = []
    for node in m.under(f, m.nodes_of(ast.BinOp)):
        parts = _split(node)
        if parts and "TGTP" in f.labels_of(parts[0]) and any("TGTP" in f.labels_of(x) for x in (parts[1].left, parts[1].right)):
            candidates.append(node)
    if not candidates:
        return []  # the source comparisons below unparse expressions: only for the few candidates
    logged = {lb.src(c.args[0]) for c in m.under(f, m.nodes_of(ast.Call)) if c.args and lb.call_name(c.func) in _LOGS}
    divided = {lb.src(d.left) for d in m.under(f, m.nodes_of(ast.BinOp)) if isinstance(d.op, ast.Div)}
    for node in candidates:
        held = {lb.src(t) for a in m.under(f, m.nodes_of(ast.Assign)) if a.value is node for t in a.targets} | {lb.src(node)}
        if held & logged and not held & divided:
            return [raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium", _MESSAGE)]
    return []


def _rows(m, f) -> list:
    """`q = p + lam * c` of two whole distributions (or `q = mix(p, c, lam)` of a mixer that
    returns that sum), then `log(q.gather(-1, y))`, with q never divided by a total."""
    out = []
    for a in m.under(f, m.nodes_of(ast.Assign)):
        if len(a.targets) != 1 or type(a.targets[0]) is not ast.Name:
            continue
        sums = [(a.value, None)] if _added_rows(f, a.value, None) else _mixed_by_call(m, f, a.value)
        if sums and _logged_at_target(m, f, a.targets[0].id) and not _renormalized(m, f, a.targets[0].id):
            for node, guard in sums:
                ctx = guards_of(f, a.lineno)  # (a mixer runs where it is called)
                if guard is not None:
                    ctx = Ctx((*ctx.guards, (guard, True)), ctx.loops, ctx.nograd)
                out.append(raw(RULE, f, node, ctx, "error", "medium", _MESSAGE))
    return out


def _added_rows(f, node, params: dict | None) -> bool:
    """`p + lam * q` where p and q are whole distributions (probabilities, not logs) and lam
    is not one of them: `p + lam * (q - p)` is the legal `(1 - lam) * p + lam * q`."""
    parts = _split(node)
    if parts is None:
        return False
    bare, weighted = parts
    held = [s for s in (weighted.left, weighted.right) if "DIST" in f.labels_of(s, params)]
    if "DIST" not in f.labels_of(bare, params) or len(held) != 1 or type(held[0]) is ast.BinOp and type(held[0].op) is ast.Sub:
        return False
    return params is not None or not any(in_log_domain(f, s) for s in (bare, held[0]))


def _mixed_by_call(m, f, value) -> list:
    """(sum, guard) for each mixer a call may run that returns an added sum
    with this call's argument labels: a module function (`return p + g * c`), or a lambda
    the called name is bound to, directly or as a table's entry picked by a key."""
    if type(value) is not ast.Call:
        return []
    args = [f.labels_of(x) for x in value.args]
    out = []
    for ev in f.events:
        if ev.kind == "call" and ev.node is value:
            for q in filter(None, (ev.data["callee"], *ev.data.get("also", ()))):
                g = m.functions[q]
                out += [(r.value, None) for r in m.under(g, m.nodes_of(ast.Return)) if _added_rows(g, r.value, None)]
    bound = f.binding(value.func.id) if type(value.func) is ast.Name else value.func
    lambdas = [(bound, None)] if type(bound) is ast.Lambda else []
    if type(bound) is ast.Subscript and type(bound.slice) is not ast.Constant:
        key = bound.slice  # each entry runs only when the key picks it
        lambdas = [(v, ast.Compare(key, [ast.Eq()], [ast.Constant(k)])) for k, v in dispatch_items(f, bound) or ()
                   if type(v) is ast.Lambda]
    for lam, guard in lambdas:
        params = dict(zip([p.arg for p in lam.args.posonlyargs + lam.args.args], args))
        if _added_rows(f, lam.body, params):
            out.append((lam.body, guard))
    return out


def _logged_at_target(m, f, name: str) -> bool:
    """A log in f takes `name` read at the target (`log(q.gather(-1, y))`, `q[i, y].log()`)."""
    for c in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(c.func) not in _LOGS:
            continue
        operand = c.args[0] if c.args else c.func.value if type(c.func) is ast.Attribute else None
        for n in lb.walk(operand) if operand is not None else ():
            read = n.func.value if type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr in _TARGET_READS \
                else n.value if type(n) is ast.Subscript else None
            if type(read) is ast.Name and read.id == name and "TGTP" in f.labels_of(n):
                return True
    return False


def _renormalized(m, f, name: str) -> bool:
    """`q = q / q.sum(-1, keepdim=True)`, `q /= 1 + lam`: the sum is divided by a total."""
    for n in m.under(f, m.nodes_of(ast.BinOp)):
        if type(n.op) is ast.Div and type(n.left) is ast.Name and n.left.id == name:
            return True
    return any(type(n.op) is ast.Div and type(n.target) is ast.Name and n.target.id == name
               for n in m.under(f, m.nodes_of(ast.AugAssign)))
