"""Eval-time parameters fitted on the targets they then score, without a backward pass
(RULES.md §4, README TTT rule; SLOT-style per-batch fitting, #1176, #1229).

A temperature, an offset or a mixing weight may be fitted on validation tokens only after
they are scored (online calibration: score the batch with what the earlier batches gave,
then refine). The rule flags the other order in one iteration of a scoring loop: a
function of the module is handed this iteration's targets (every name of the argument is
bound in the iteration before the call), what it returns depends on the targets'
probabilities (Newton steps on the cross-entropy use the target's logit), and that value
reaches the distribution the same targets are then scored with
(`inv_t = newton(z, ys)`, then `cross_entropy(z * inv_t, ys)`), directly or through
another call (`state = fit(z, y, state)`, `lp = apply(z, state)`, `lp.gather(1, y)`).
A function with no loop of its own that is handed one batch (a scoring head's `__call__(z,
ys)`) is one iteration: fitting on its target parameter, then scoring them with the result,
is the same order.
Fitting by gradient steps is the ttt-before-score rule's; this one needs no backward.
Not flagged: the model's own forward handed the targets (`model(x, y)`), values carried
over from the previous iteration, and masks or positions cut with the targets.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.loop_shapes import fresh
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("fitted-on-scored", "ttt_before_score",
                "a value fitted on a batch's targets sets the distribution that scores them",
                "RULES.md §4 (README TTT rule; SLOT-style fitting, #1176, #1229)")

_SCORES_ARG0 = {"cross_entropy", "nll_loss"}
_GATHERS = {"gather", "take_along_dim", "take_along_axis"}


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.scores(f):
            continue
        for score in f.events:
            if score.kind != "call" or not score.ctx.nograd and m.trains_any(f):
                continue
            scored = _scored(f, score)
            if scored is None or not score.ctx.loops and not targets_handed(f, scored[1]):
                continue
            dist, targets = scored
            loop = score.ctx.loops[-1] if score.ctx.loops else f.node  # (a call of f scores the batch it is handed)
            fit = _fitted(m, f, loop, dist, targets, score.line, 0)
            if fit is None:
                continue
            callees = [m.functions[q] for q in m.targets(fit) if q in m.functions]
            fitters = [g for g in callees if "TGTP" in g.ret and not _model_method(m, g)]
            if len(callees) > 1 and fitters:  # a table's entries: the one that fits runs only under its key
                out += [raw(RULE, g, g.node, None, "error", "medium",
                            f"{g.name}() fits on the targets it is handed where {f.name}() calls it (line {fit.line}), "
                            f"and what it returns sets the distribution that scores those targets (line {score.line}): "
                            "fitted on the tokens it scores") for g in fitters]
            else:
                out.append(raw(RULE, f, fit.node, fit.ctx, "error", "medium",
                               f"{fit.data['name']}() is fitted on the targets of this iteration, and what it returns "
                               f"sets the distribution that scores those targets (line {score.line}): fitted on "
                               "the tokens it scores"))
    return out


def targets_handed(f, names: set) -> bool:
    """The targets a function scores outside any loop of its own are its parameters (or bound
    from them): each call hands it one batch (`head(logits, y, mask)`), fitted and scored there."""
    handed = set(f.params)
    for n in f.nodes:
        if type(n) is ast.Assign and {x.id for x in lb.walk(n.value) if type(x) is ast.Name} & handed:
            handed |= {t.id for t in n.targets if type(t) is ast.Name}
    return bool(names) and names <= handed


def _scored(f, ev) -> tuple | None:
    """(distribution expression, target names) of a scoring call: `cross_entropy(d, y)`,
    `d.gather(-1, y[:, None])` with the targets carrying the target label."""
    node, name = ev.node, ev.data["name"]
    if name in _SCORES_ARG0 and len(node.args) >= 2 and "TGT" in f.labels_of(node.args[1]):
        target = node.args[1]
        dist = node.args[0]
    elif name == "gather" and type(node.func) is ast.Attribute and len(node.args) >= 2 and "TGT" in f.labels_of(node.args[1]):
        target, dist = node.args[1], node.func.value
    else:
        return None
    names = {n.id for n in lb.walk(target) if type(n) is ast.Name}
    return (dist, names) if names else None


def _fitted(m, f, loop, expr, targets: set, before: int, depth: int):
    """The call event, in this iteration before `before`, that fits on the targets and whose
    result `expr` reads through the names it is built from (index positions aside)."""
    if depth > 3:
        return None
    indexes = {id(n) for s in lb.walk(expr) if type(s) is ast.Subscript for n in lb.walk(s.slice)}
    for name in {n.id for n in lb.walk(expr) if type(n) is ast.Name and id(n) not in indexes}:
        bound = _binding_in(loop, name, before)
        if bound is None:
            continue
        for call in (n for n in lb.walk(bound.value) if type(n) is ast.Call):
            ev = next((e for e in f.events if e.kind == "call" and e.node is call), None)
            if ev is None:
                continue
            if _fits_on(m, f, loop, ev, targets) and "TGTP" in f.labels_of(call):
                return ev
            found = _fitted(m, f, loop, call, targets, bound.lineno, depth + 1)
            if found is not None:
                return found
    return None


def _binding_in(loop, name: str, before: int):
    """The last assignment to `name` in the loop's body before line `before`."""
    found = None
    for n in lb.walk(loop):
        if type(n) is ast.Assign and n.lineno < before and any(
                type(t) is ast.Name and t.id == name or type(t) is ast.Tuple and any(
                    type(e) is ast.Name and e.id == name for e in t.elts) for t in n.targets):
            if found is None or n.lineno > found.lineno:
                found = n
    return found


def _fits_on(m, f, loop, ev, targets: set) -> bool:
    """A module function (not a model's forward) handed this iteration's targets, the same
    names the score then reads, that reads the distribution at them (`z.gather(-1, y)`)."""
    given = [(i, a) for i, a in enumerate(ev.node.args)] + [(k.arg, k.value) for k in ev.node.keywords if k.arg]
    handed = [at for at, a in given if targets & {n.id for n in lb.walk(a) if type(n) is ast.Name}
              and "TGT" in f.labels_of(a) and (loop is f.node or fresh(f, loop, ev.line, a))]
    for q in m.targets(ev):
        g = m.functions.get(q)
        if g is None or _model_method(m, g):
            continue
        params = g.params[1:] if g.is_method and type(ev.node.func) is ast.Attribute else g.params
        names = {params[at] if type(at) is int and at < len(params) else at for at in handed}
        if names & set(params) and _reads_at(g, names & set(params)):
            return True
    return False


def _reads_at(g, params: set) -> bool:
    """g indexes something at these parameters, or at names it binds from them: the target's
    logit (`z.gather(-1, y[:, None])`, `z[rows, y]`), not only a copy kept for later."""
    names = set(params)
    for n in g.nodes:
        if type(n) is ast.Assign and {x.id for x in lb.walk(n.value) if type(x) is ast.Name} & names:
            names |= {t.id for t in n.targets if type(t) is ast.Name}  # `flat_y = y.reshape(-1)`
    for n in g.nodes:
        index = n.args[-1] if type(n) is ast.Call and lb.call_name(n.func) in _GATHERS and n.args else \
            n.slice if type(n) is ast.Subscript and type(n.ctx) is ast.Load else None
        if index is not None and type(index) is not ast.Slice and {x.id for x in lb.walk(index) if type(x) is ast.Name} & names:
            return True
    return False


def _model_method(m, g) -> bool:
    return g.is_method and (f"{g.cls}.forward" in m.functions or f"{g.cls}.__call__" in m.functions)
