"""The order in which a loop dispatches the phases of a chunk (RULES.md §4).

`for op in ("score", "adapt"): OPS[op](model, chunk)` runs the table's entries in the
order of the loop's constants. A plan chosen by a setting (`plan = ("adapt", "score") if
order == "adapt_first" else ("score", "adapt")`) runs one order or the other: the
verdict for the order that trains first carries that condition, so its finding is as
reached as the setting that picks it.
"""

from __future__ import annotations

import ast

from auditors import dispatch


class Conditional(str):
    """A reason that holds only under `guard` (a (test, polarity) pair of the caller `site`)."""

    def __new__(cls, text: str, guard: tuple, site):
        out = super().__new__(cls, text)
        out.guard, out.site = guard, site
        return out


def phase_order(m, g, e, f, scorers) -> str | None:
    """For a call `OPS[op](...)` in g that may reach f, a function that trains: "ok" when an
    entry that scores runs before f's, a reason when one runs only after it, else None."""
    func = e.node.func
    items = dispatch.dispatch_items(g, func) if type(func) is ast.Subscript else None
    if items is None:
        return None
    choice = _chosen_plan(g, func.slice)
    if choice is not None:  # one order or the other, by a condition
        test, when_true, when_false = choice
        verdicts = [_order_verdict(m, g, items, keys, f, scorers) for keys in (when_true, when_false)]
        if verdicts[0] == verdicts[1] or None in verdicts:
            return verdicts[0] if verdicts[0] == verdicts[1] else None
        bad = 0 if verdicts[0] != "ok" else 1
        return Conditional(verdicts[bad], (test, bad == 0), (g, e))
    keys = dispatch.loop_keys(g, func.slice)
    if not keys or keys is dispatch.ANY_KEY:
        return None
    return _order_verdict(m, g, items, keys, f, scorers)


def _order_verdict(m, g, items, keys, f, scorers) -> str | None:
    entry = {k: m.resolve(v, g) for k, v in items if type(v) in (ast.Name, ast.Attribute)}
    order = [entry.get(k) for k in keys]
    if f not in order:
        return None
    first = order.index(f)
    scoring = [i for i, h in enumerate(order) if h is not None and h is not f and (h.qualname in scorers or m.scores(h))]
    if any(i < first for i in scoring):
        return "ok"
    if scoring:
        return f"trains on each chunk before the phase that scores it (phases {', '.join(map(str, keys))})"
    return None


def _chosen_plan(g, key) -> tuple | None:
    """(test, keys if it holds, keys if not) for a loop variable over a name bound to
    `(...) if test else (...)` of constant tuples; else None."""
    loop = dispatch.loop_over(g, key)
    if loop is None:
        return None
    it = loop.iter
    plan = g.binding(it.id) if type(it) is ast.Name else it
    if type(plan) is not ast.IfExp:
        return None
    arms = [_constants(x) for x in (plan.body, plan.orelse)]
    return (plan.test, *arms) if None not in arms else None


def _constants(e) -> list | None:
    if type(e) in (ast.Tuple, ast.List) and all(type(x) is ast.Constant for x in e.elts):
        return [x.value for x in e.elts]
    return None
