"""Whether an expression is a log-probability: what a geometric (product-of-experts) mix
adds, as opposed to a weight, an entropy or an expectation made from logarithms."""

from __future__ import annotations

import ast

from auditors import labels as lb

_LOGS = ("log", "log2", "log_softmax", "log10")


def in_log_domain(f, e, depth: int = 0) -> bool:
    """The expression (or the name it is bound to) takes a logarithm: a log-probability. In a
    product, the factors that hold a prediction decide; `exp(...)`, a softmax or a squash
    (`sigmoid`) leaves the log domain, and a module function's call is what it returns (a
    mixing weight `0.5 * sigmoid(k * (nll - c))` is no log-probability, whatever it was made from)."""
    if type(e) is ast.BinOp and type(e.op) is ast.Mult:
        held = [s for s in (e.left, e.right) if f.labels_of(s) & _PREDICTED] or [e.left, e.right]
        return any(in_log_domain(f, s, depth) for s in held)
    if type(e) is ast.Call and lb.call_name(e.func) in _LEAVES_LOG:
        return False
    if type(e) is ast.Call and depth < 4:
        g = f.module.resolve(e.func, f)
        if g is not None and g.qualname != f.qualname:  # (an expectation `sum(p * log(p / q))`, a KL, is none)
            return any(r.value is not None and in_log_domain(g, r.value, depth + 1)
                       and not any(entropy_term(n) for n in lb.walk(r.value))
                       for r in f.module.under(g, f.module.nodes_of(ast.Return)))
    if type(e) is ast.Name:
        bound = f.binding(e.id) if depth < 4 else None
        return bound is not None and not any(entropy_term(n) for n in lb.walk(bound)) and in_log_domain(f, bound, depth + 1)
    return any(type(n) is ast.Call and lb.call_name(n.func) in _LOGS for n in lb.walk(e)) or (
        depth < 4 and any(type(n) is ast.Name and in_log_domain(f, n, depth + 1) for n in lb.walk(e)))


_LEAVES_LOG = frozenset({"exp", "softmax", "sigmoid", "expit"})
_PREDICTED = frozenset({"TGTP", "DIST", "TCNT", "CNT", "CTGT", "CCNT"})  # a model's or a table's prediction


def log_operand(f, e, depth: int = 0) -> bool:
    """The distribution in `e` (past a weight: `lam * log_q`) is a log-distribution: a call
    of a log (`log_softmax`, `torch.log`, a method named `log_...`), or a name bound to one."""
    if type(e) is ast.BinOp and type(e.op) is ast.Mult:
        return any(log_operand(f, s, depth) for s in (e.left, e.right) if "DIST" in f.labels_of(s))
    if type(e) is ast.Call:
        name = lb.call_name(e.func) or ""
        return name in _LOGS or name.startswith("log_") or name.endswith("_log") or name == "log"
    if type(e) is ast.Name and depth < 4:
        bound = f.binding(e.id)
        return bound is not None and log_operand(f, bound, depth + 1)
    return False


def entropy_term(e) -> bool:
    """`p * log(p)`: a weight that is the argument of its own logarithm (`lp.exp() * lp`: of its exponential)."""
    if type(e) is not ast.BinOp or type(e.op) is not ast.Mult:
        return False
    for w, other in ((e.left, e.right), (e.right, e.left)):
        if type(w) is ast.Call and lb.call_name(w.func) == "exp" and lb.src(other) in (
                [lb.src(a) for a in w.args] or ([lb.src(w.func.value)] if type(w.func) is ast.Attribute else [])):
            return True
        logs = [c for c in lb.walk(other) if type(c) is ast.Call and lb.call_name(c.func) in _LOGS and c.args]
        if logs and any(lb.src(w) == lb.src(c.args[0]) or lb.src(w) in lb.src(c.args[0]) for c in logs):
            return True
    return False
