"""A log-normalizer taken before the logits were changed (RULES.md §2 C2: the scored
numbers must form one distribution over the vocabulary).

    lse = torch.logsumexp(z, -1)
    z = z + bonus * seen            # the logits change after their normalizer was taken
    nll = lse - z.gather(-1, y)     # the target's new logit, less the old log Z

`lse` normalizes the logits as they were; the boosted logits sum, once exponentiated, to
more than `exp(lse)`, so the scored probabilities add up to more than one over the
vocabulary (by `sum exp(bonus)` of the boosted tokens). The rule flags, in one function,
a name bound to `logsumexp(Z)` (also `Z.logsumexp(-1)`), then Z changed by arithmetic
(`Z = Z + b`, `Z = Z / T`, `Z += b`, `Z.add_(b)`), then a difference of the old
normalizer and the changed Z read at the target (`gather`, `take_along_dim`, an index).
Legal counterparts: the normalizer taken again after the change (`lse = logsumexp(z)` once
more, or `log_softmax(z + b)`), and a change that only converts (`z = z.float()`).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("stale-normalizer", "unnormalized_blend",
                "the target's logit scored less a log-normalizer taken before the logits changed",
                "RULES.md §2 C2 (scored values must be a distribution over the vocabulary)")
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_IN_PLACE = {"add_", "sub_", "mul_", "div_", "addcmul_", "index_add_", "scatter_add_", "masked_fill_"}
_READS = {"gather", "take_along_dim", "take_along_axis"}
_MODULES = {"torch", "np", "numpy", "F", "special", "torch.special", "scipy.special", "jnp", "jax.numpy"}


def check(m):
    out = []
    for f in {f.qualname: f for f, ev in m.events("call") if ev.data["name"] == "logsumexp"}.values():
        if f.qualname == "<module>":
            continue
        for norm, logits, line in _normalizers(m, f):
            changed = _changed_after(m, f, logits, line)
            if changed is None:
                continue
            renorm = [ln for n, z, ln in _normalizers(m, f) if z == logits and ln > changed.lineno]
            use = next((b for b in m.under(f, m.nodes_of(ast.BinOp)) if type(b.op) is ast.Sub and b.lineno > changed.lineno
                        and not any(changed.lineno < r <= b.lineno for r in renorm) and _pairs(b, norm, logits)), None)
            if use is not None:
                out.append(raw(RULE, f, use, guards_of(f, use.lineno), "error", "medium",
                               f"`{norm}` is the log-normalizer of `{logits}` taken at line {line}, before `{logits}` "
                               f"changed at line {changed.lineno}; the target's changed logit less that old normalizer "
                               "scores numbers that sum to more (or less) than one over the vocabulary"))
                break
    return out


def _normalizers(m, f) -> list[tuple[str, str, int]]:
    """(name, logits name, line) of each `name = logsumexp(Z, ...)` / `Z.logsumexp(...)` in f."""
    out = []
    for a in m.under(f, m.nodes_of(ast.Assign)):
        if len(a.targets) != 1 or type(a.targets[0]) is not ast.Name or type(a.value) is not ast.Call:
            continue
        c = a.value
        if lb.call_name(c.func) != "logsumexp":
            continue
        method = type(c.func) is ast.Attribute and lb.dotted(c.func.value) not in _MODULES  # `z.logsumexp(-1)`
        z = c.func.value if method else c.args[0] if c.args else None
        if type(z) is ast.Name:
            out.append((a.targets[0].id, z.id, a.lineno))
    return out


def _changed_after(m, f, name: str, line: int):
    """The first statement after `line` that changes `name` by arithmetic."""
    def mentions(e) -> bool:
        return any(type(x) is ast.Name and x.id == name for x in lb.walk(e))
    found = []
    for st in m.under(f, m.nodes_of(ast.Assign)):
        if st.lineno > line and any(type(t) is ast.Name and t.id == name for t in st.targets) \
                and type(st.value) is ast.BinOp and type(st.value.op) in _ARITH and mentions(st.value):
            found.append(st)
    found += [st for st in m.under(f, m.nodes_of(ast.AugAssign)) if st.lineno > line and type(st.target) is ast.Name
              and st.target.id == name and type(st.op) in _ARITH]
    found += [c for c in m.under(f, m.nodes_of(ast.Call)) if c.lineno > line and type(c.func) is ast.Attribute
              and c.func.attr in _IN_PLACE and type(c.func.value) is ast.Name and c.func.value.id == name]
    return min(found, key=lambda n: n.lineno, default=None)


def _pairs(b: ast.BinOp, norm: str, logits: str) -> bool:
    """`norm - Z.gather(...)` / `Z.gather(...) - norm` / `Z - norm[..., None]`, also negated."""
    def has_norm(e) -> bool:
        return any(type(x) is ast.Name and x.id == norm for x in lb.walk(e))

    def reads_target(e) -> bool:
        return any((type(x) is ast.Call and lb.call_name(x.func) in _READS and any(
            type(y) is ast.Name and y.id == logits for y in lb.walk(x.func.value if type(x.func) is ast.Attribute else x.args[0])))
            or (type(x) is ast.Subscript and type(x.value) is ast.Name and x.value.id == logits) for x in lb.walk(e))

    def is_logits(e) -> bool:
        return any(type(x) is ast.Name and x.id == logits for x in lb.walk(e))
    return (has_norm(b.left) and reads_target(b.right)) or (has_norm(b.right) and (reads_target(b.left) or is_logits(b.left)))
