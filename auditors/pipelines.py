"""Evaluation written as generator stages (`stream = score_stage(chunks, ...)`, then
`stream = adapt_stage(stream, model, opt)`): a stage that scores each item before yielding it
makes what a later stage does to the item happen after its scoring (score-first), whichever
name the stream is bound to in between.
"""

from __future__ import annotations

import ast


def reaching_value(caller, arg):
    """What a name handed to a call holds there: its nearest binding above the call in the caller
    (`stream = score_stage(stream, ...)`, then `adapt_stage(stream, ...)`), else the argument."""
    if type(arg) is not ast.Name or caller is None:
        return arg
    above = [a for a in caller.module.under(caller, caller.module.nodes_of(ast.Assign)) if a.lineno < arg.lineno
             and any(type(t) is ast.Name and t.id == arg.id for t in a.targets)]
    return max(above, key=lambda a: a.lineno).value if above else arg


def scoring_generator(m, f, e) -> bool:
    """e calls a generator of the module that scores (under no_grad) and trains nothing."""
    if type(e) is not ast.Call:
        return False
    g = m.resolve(e.func, f)
    return g is not None and bool(m.under(g, m.nodes_of(ast.Yield)) or m.under(g, m.nodes_of(ast.YieldFrom))) \
        and m.scores(g) and not m.trains_any(g)


def fed_by_scoring(m, f, a) -> bool:
    """The training call is handed a generator that scores each item before yielding it
    (`stream = score_stage(...)`, then `adapt_stage(stream, model, opt)`): score-first TTT
    written as a pipeline, whose tokens a later pass would score a second time."""
    return any(type(x) is ast.Name and scoring_generator(m, f, reaching_value(f, x)) for x in a.node.args)
