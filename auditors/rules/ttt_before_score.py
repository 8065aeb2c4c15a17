"""Adaptation on validation tokens before they are scored (RULES.md §4; README TTT rule, C3).

A backward pass whose loss is computed from validation data must only follow the
scoring of those tokens. For each such backward pass the rule climbs the enclosing
loops: in the first loop whose body also scores (a loss computed under `no_grad` /
`inference_mode` or `set_grad_enabled(False)`, directly or through a helper), scoring
must come *before* the
training statement (score-first TTT, #549, #1610). Scoring after it is train-then-
score (SLOT-style per-window fitting, #1176, #1229). No scoring in any enclosing
loop means the function adapts to val tokens that are scored later (pre-quant TTT
on val, #1423, #1735; whole-val TTT, #152, #672). Score-first in form is not enough
when the window trained on ends past the window scored before it in the loop (a chunk
trained on one step ahead of its scoring).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.context_managers import with_verdicts
from auditors.data_choice import with_choice
from auditors.event_plans import plan_verdict, schedule_verdict
from auditors.fixed_logits import fixed_before, returns_before_training
from auditors.flow import Ctx
from auditors.loop_shapes import first_pass
from auditors.model import RuleInfo
from auditors.nearest import nearest_labels
from auditors.phase_order import Conditional, phase_order
from auditors.pipelines import reaching_value, scoring_generator
from auditors.window_reach import queue_ahead, rounded_past_chunk, runs_ahead
from auditors.rules import raw
from auditors.score_booking import booked_in_block, books_detached, books_without_grad, gradients_only_measured, holds
from auditors.val_choice import guarded_val_return
from auditors.val_mixing import (built_mix, fed_joined_streams, guarded_join, guarded_mix, guarded_val_source, inside_training,
                                 mix_sites, mixed_loader)

RULE = RuleInfo("ttt-before-score", "ttt_before_score", "parameters adapted on validation tokens before scoring them",
                "RULES.md §4 (README TTT rule; #152, #672, #771, #1176, #1229, #1423, #1735)")
VAL_IN_TRAINING = RuleInfo("val-in-training", "val_in_training", "validation tokens mixed into the training batches",
                           "RULES.md §1.3, §9 (README: no validation data in training; #44)")
EXTRA = (VAL_IN_TRAINING,)


def _nograd_scorers(m) -> set[str]:
    """Functions that score without gradients (decorated no_grad, or CE under no_grad)."""
    out = set()
    for q, f in m.functions.items():
        decos = {lb.src(d).split("(")[0].rsplit(".", 1)[-1] for d in getattr(f.node, "decorator_list", [])}
        if (decos & {"no_grad", "inference_mode"} and m.scores(f)) or any(
                (e.kind == "ce" or (e.kind == "call" and any(a & {"TGT", "TGTP"} for a in e.data["args"]))) and e.ctx.nograd
                for e in f.events):
            out.add(q)  # (`model(x, y)` that returns the loss, under no_grad, scores too)
        elif not m.trains_any(f) and any(e.kind == "call" and e.ctx.nograd and e.data["callee"] and any(
                "VAL" in a for a in e.data["args"]) and m.scores(m.functions[e.data["callee"]]) for e in f.events):
            out.add(q)  # `with inference_mode(): acc += _score_group(model, val, ...)`: a helper scoring under it
    return out


def _at(e) -> tuple[int, int]:
    """Where an event's expression starts: (line, column). Golfed code puts several
    statements on one line (`score(w); tr(w)`): the line alone cannot tell them apart."""
    return e.line, getattr(e.node, "col_offset", 0)


def _scores_in(f, stmt, scorers, nograd: bool = True) -> bool:
    """The statement scores: a loss without gradients (any loss, with nograd=False), or a
    call of a scoring function."""
    for e in f.events:
        if holds(stmt, _at(e)):
            if e.kind == "ce" and (e.ctx.nograd or not nograd):
                return True
            if e.kind == "call" and e.ctx.nograd and any(a & {"TGTP", "TGT"} for a in e.data["args"]) \
                    and not e.data["name"].endswith("_"):
                return True  # a loss/score of the targets accumulated without gradients (not `v.add_(g)`: an update)
            if e.kind == "call" and e.data["callee"] in scorers:
                return True
            if e.kind == "call" and e.ctx.nograd and e.data["callee"] and nograd \
                    and not f.module.trains_any(f.module.functions[e.data["callee"]]) \
                    and f.module.scores(f.module.functions[e.data["callee"]]):
                return True  # `with inference_mode(): score_windows(model, val, lo, hi)`: a helper scoring under no_grad
            if e.kind == "call" and e.data["callee"] and nograd and _delegates_scoring(f.module, e.data["callee"], scorers):
                return True  # `self.ev.score_batch(model, val, x, meta, tally)` whose log_probs is inference_mode
    return nograd and (_tallies_scores(f, stmt) or books_detached(f, stmt) or books_without_grad(f, stmt))


def _delegates_scoring(m, q: str, scorers: set[str]) -> bool:
    """The function takes no backward pass and reaches a function that scores without
    gradients (a method that tallies what its `@inference_mode` log_probs returns)."""
    g = m.functions[q]
    return not m.trains_any(g) and m._transitive(g, lambda h: h.qualname in scorers, ("reaches a no-grad scorer",))


def _tallies_scores(f, stmt) -> bool:
    """`nll -= lp[rows, y].sum()` in a function that takes no backward pass: the target's
    log-probabilities added up as a score (read from numpy arrays, say), never a loss
    trained on here."""
    if any(e.kind == "backward" for e in f.events):
        return False
    return any(type(n) is ast.AugAssign and type(n.target) is ast.Name and "TGTP" in f.labels_of(n.value)
               for n in lb.walk(stmt))


def _verdict(m, f, at, loops, scorers, seen) -> str | None:
    """"ok" (scored first), a reason (scored after), or None (no scoring around it).

    Without a decision inside f, the call sites of f are examined the same way: a helper
    that trains on documents the caller has already scored is score-first (#1610).
    """
    inside = _verdict_inside(f, at, loops, scorers)
    if inside is not None:
        return inside
    verdicts = [v for _, _, v in _site_verdicts(m, f, scorers, seen)]
    if verdicts and all(v == "ok" for v in verdicts):
        return "ok"
    return next((v for v in verdicts if v not in (None, "ok")), None)


def _site_verdicts(m, f, scorers, seen=()) -> list:
    """(caller, call event, verdict) for each call of f: whether that caller scored what it
    hands over before f trains on it."""
    if f.qualname in seen or len(seen) > 6:
        return []
    sites = [(g, s) for g, e in m.call_sites(f) for s in _sent(m, f, g, e)]
    return [(g, e, phase_order(m, g, e, f, scorers) or ("ok" if _scored_first(g, e, scorers) else
                                                          _verdict(m, g, _at(e), e.ctx.loops, scorers, seen + (f.qualname,))))
            for g, e in sites] + with_verdicts(m, f, lambda g, st: _scores_in(g, st, scorers))


def _sent(m, f, g, e) -> list:
    """Where a call of f hands f its data: the call itself, or, for a coroutine that
    receives its work (`span = yield`) and is bound to a name (`trainer = f(...)`), the
    `trainer.send(...)` calls of the same function: it trains there, not where it is built."""
    receives = any(type(a.value) is ast.Yield for a in m.under(f, m.nodes_of(ast.Assign)))
    bound = next((t.id for a in m.under(g, m.nodes_of(ast.Assign)) if a.value is e.node
                  for t in a.targets if type(t) is ast.Name), None) if receives else None
    if bound is None:
        return [e]
    sends = [s for s in g.events if s.kind == "call" and s.data["name"] == "send" and type(s.node.func) is ast.Attribute
             and type(s.node.func.value) is ast.Name and s.node.func.value.id == bound]
    return sends or [e]


def _scored_items(f, loop) -> bool:
    """`for result in upstream:` where upstream is a generator that scores each item before
    yielding it (`score_stage(...)`, by name, bound, or handed in by every caller): the
    body runs on what was already scored."""
    if type(loop) is not ast.For:
        return False
    m, it, owner = f.module, loop.iter, f
    if type(it) is ast.Name and it.id in f.params:
        handed = [reaching_value(c, a) for a, c in m.arguments_for(f, it.id)]
        return bool(handed) and all(a is not None and scoring_generator(m, f, a) for a in handed)
    if type(it) is ast.Name:
        it = f.binding(it.id)
    return it is not None and scoring_generator(m, owner, it)


def _verdict_inside(f, at, loops, scorers) -> str | None:
    """The verdict from f's own code about the training at `at` (line, column): "ok", a
    reason, or None (f does not score around it)."""
    line = at[0]
    for k in range(len(loops) - 1, -1, -1):
        loop = loops[k]
        if _scored_items(f, loop):
            return "ok"
        planned = plan_verdict(f, loop, line, lambda st: _scores_in(f, st, scorers)) \
            or schedule_verdict(f, loop, line, lambda st: _scores_in(f, st, scorers))
        if planned is not None:
            return planned if planned == "ok" else f"trains on each chunk before scoring it: {planned}"
        body = loop.body
        idx = next((i for i, s in enumerate(body) if holds(s, at)), None)
        if idx is None:
            continue
        if any(_scores_in(f, s, scorers) and not _last_pass_only(f, s, loops[:k]) for s in body[:idx]) \
                or booked_in_block(f, body[idx], at, lambda s: not _last_pass_only(f, s, loops[:k + 1])):
            return "ok"
        later = next((j for j in range(idx + 1, len(body)) if _scores_in(f, body[j], scorers)), None)
        if later is not None:
            if _deferred(f, loop, idx, later) or _previous_window(loop, body[idx], body[idx + 1:later + 1]):
                return "ok"
            trained = body[idx].end_lineno + 1 if returns_before_training(f, body[idx]) else line
            if all(fixed_before(f, loop, trained, st) for st in body[later:] if _scores_in(f, st, scorers)):
                return "ok"  # the loss below reads logits computed before the training step (also inside the call)
            return f"trains on a window, then scores it later in the same loop (line {loop.lineno})"
    then = _scores_after(f, at, scorers)
    if then is not None:
        return f"trains on the window it is handed, then scores those tokens (line {then})"
    return None


def _last_pass_only(f, st, outer) -> bool:
    """Scoring under an `if` of its own that tests the variable of an enclosing loop
    (`if epoch == epochs - 1: score(chunk)`, also through a name bound to that test),
    while the training below runs in every pass: the passes that skip scoring train on
    tokens that the last pass then scores (multi-epoch TTT)."""
    if type(st) is not ast.If or st.orelse or first_pass(st.test, outer):
        return False
    variables = {n for lp in outer if type(lp) in (ast.For, ast.AsyncFor) for n in _names_in(lp.target)}
    used = _names_in(st.test)
    for n in list(used):
        bound = f.binding(n)
        if bound is not None:
            used |= _names_in(bound)
    return bool(variables & used)


def _scores_after(f, at, scorers) -> int | None:
    """Straight-line code of f: the statement at `at` trains (`state.fit(x, y)`) and a
    later statement of the same block scores the same targets (`return F.cross_entropy(
    model(x), y)`): SLOT-style fitting on a window before its score, whatever the caller
    scored before. The line of that scoring, or None."""
    if f.qualname == "<module>":
        return None
    body = f.node.body
    idx = next((i for i, st in enumerate(body) if holds(st, at)), None)
    if idx is None or isinstance(body[idx], (ast.For, ast.While, ast.AsyncFor)):
        return None
    data = {n for n in _names_in(body[idx]) if f.lookup(n) & {"VAL", "TGT"}}
    for st in body[idx + 1:]:
        if data & _names_in(st) and _scores_in(f, st, scorers, nograd=False):
            return st.lineno
    return None


def _names_in(node) -> set[str]:
    return {n.id for n in lb.walk(node) if type(n) is ast.Name}


def _plain(value) -> bool:
    """A name or a tuple of names, or a copy of one (`seg.clone()`): a value passed on as it
    is, with no offset applied."""
    while type(value) is ast.Call and type(value.func) is ast.Attribute and value.func.attr in _COPIES and not value.args:
        value = value.func.value
    return type(value) is ast.Name or (type(value) is ast.Tuple and all(type(e) is ast.Name for e in value.elts))


_COPIES = {"clone", "detach", "copy", "cpu", "contiguous", "tolist"}


def _empty(value) -> bool:
    return (type(value) in (ast.List, ast.Tuple, ast.Set, ast.Dict) and not getattr(value, "elts", getattr(value, "keys", None))) \
        or (type(value) is ast.Constant and value.value is None) \
        or (type(value) is ast.Call and not value.args and lb.call_name(value.func) in ("deque", "list", "dict", "set"))


def _deferred(f, loop, idx, scored) -> bool:
    """The statement at idx trains only on what earlier iterations left after scoring
    (`while pending: lo, hi = pending.popleft(); train(val[lo:hi + 1])`, with
    `pending.append((lo, hi))` after the window is scored; or `prev = seg` kept for the next
    iteration): each window is trained on one iteration after it was scored. The value
    left behind must be the scored window's own names, unchanged, and the holder must
    start empty before the loop."""
    body = loop.body
    target = loop.target if type(loop) in (ast.For, ast.AsyncFor) else ast.Tuple(elts=[])  # `while` binds no variable
    window = _names_in(target)  # the scored window: the loop's variables and what is built from them
    for st in body[:scored + 1]:
        if type(st) is ast.Assign and _names_in(st.value) & window:
            window |= {n for t in st.targets for n in _names_in(t)}
    window |= _names_in(body[scored])
    carried = set()
    trained = _names_in(body[idx]) | _closure_reads(f, body[idx])
    for st in body[scored + 1:]:
        for n in lb.walk(st):
            if type(n) is ast.Assign and len(n.targets) == 1:
                for t, v in _pairs(n.targets[0], n.value):
                    if t not in trained:
                        continue  # (`prev_ids = x.reshape(-1)` for byte counting: not what is trained on)
                    if not (_plain(v) and _names_in(v) <= window):
                        return False  # something else is left for the next iteration
                    carried.add(t)
            elif type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr in ("append", "appendleft", "extend") \
                    and type(n.func.value) is ast.Name and n.func.value.id in trained:
                if not (len(n.args) == 1 and _plain(n.args[0]) and _names_in(n.args[0]) <= window):
                    return False
                carried.add(n.func.value.id)
    fresh = _names_in(target) | {n for st in body[:idx] if type(st) is ast.Assign for t in st.targets for n in _names_in(t)}
    if not trained & carried or trained & (fresh - carried):
        return False
    m = f.module  # before the loop the holder is empty: the first window is trained on after its scoring too
    outside = [st for st in m.under(f, m.nodes_of(ast.Assign) + m.nodes_of(ast.AnnAssign))
               if not loop.lineno <= st.lineno <= loop.end_lineno
               and any(type(t) is ast.Name and t.id in carried for t in (st.targets if type(st) is ast.Assign else [st.target]))]
    return all(st.value is not None and _empty(st.value) for st in outside)


def _pairs(target, value) -> list:
    """(name, value) bound by `a = v` or, element by element, `a, b = u, v`."""
    if type(target) is ast.Name:
        return [(target.id, value)]
    if type(target) is ast.Tuple and type(value) is ast.Tuple and len(target.elts) == len(value.elts):
        return [(t.id, v) for t, v in zip(target.elts, value.elts) if type(t) is ast.Name]
    return []


def _closure_reads(f, st) -> set[str]:
    """Names of f that a nested function called in `st` reads without binding them itself
    (`drain()` working off the enclosing `pending` queue)."""
    out = set()
    for c in lb.walk(st):
        inner = f.module.functions.get(f"{f.qualname}.{c.func.id}") if type(c) is ast.Call and type(c.func) is ast.Name else None
        if inner is not None:
            bound = {n.id for n in lb.walk(inner.node) if type(n) is ast.Name and type(n.ctx) is ast.Store}
            out |= _names_in(inner.node) - set(inner.params) - bound
    return out


def _previous_window(loop, trains, scores: list) -> bool:
    """`for k in range(n): adapt(spans[k - 1]); score(plan[k])`: the training statement reads
    its data only at an earlier iteration's index (the loop variable less a positive
    constant), the statements up to the scoring read this iteration's: each window is
    trained on after the iteration that scored it."""
    if type(loop) not in (ast.For, ast.AsyncFor) or type(loop.target) is not ast.Name:
        return False
    var = loop.target.id
    def earlier(idx) -> bool:
        return type(idx) is ast.BinOp and type(idx.op) is ast.Sub and type(idx.left) is ast.Name and idx.left.id == var \
            and type(idx.right) is ast.Constant and isinstance(idx.right.value, int) and idx.right.value > 0
    reads = [n.slice for n in lb.walk(trains) if type(n) is ast.Subscript and var in _names_in(n.slice)]
    calls = [a for c in lb.walk(trains) if type(c) is ast.Call for a in [*c.args, *(k.value for k in c.keywords)]
             if type(a) is ast.Name and a.id == var]  # (`adapt(k)` hands the index itself over)
    return bool(reads) and all(map(earlier, reads)) and not calls and any(
        type(n) is ast.Subscript and var in _names_in(n.slice) for st in scores for n in lb.walk(st))


def _recorded_first(f, ev) -> bool:
    """One forward pass that scores and trains: earlier in the loop body, the loss the
    backward pass differentiates is added, detached, to a total that the function
    returns (`total += loss.detach().sum().item()`, then `loss.mean().backward()`): each
    token's score is fixed before the update. A total that is only logged is not a score."""
    if len(ev.ctx.loops) != 1 or type(ev.node) is not ast.Call or type(ev.node.func) is not ast.Attribute:
        return False  # one pass over the chunks: inside an epoch loop, later epochs train on scored-and-trained tokens
    if any(e.ctx.loops for _, e in f.module.events("call") if f.qualname in f.module.targets(e)):
        return False  # the whole pass is repeated by a caller
    loss = {n.id for n in lb.walk(ev.node.func.value) if type(n) is ast.Name}
    returned = {n.id for r in f.module.under(f, f.module.nodes_of(ast.Return)) if r.value is not None
                for n in lb.walk(r.value) if type(n) is ast.Name}
    loop = ev.ctx.loops[-1]
    for st in loop.body:
        if (st.end_lineno, st.end_col_offset) > _at(ev):
            break  # (the statements before the backward pass's, golfed ones on its line included)
        if type(st) is ast.AugAssign and type(st.target) is ast.Name and st.target.id in returned \
                and any(type(n) is ast.Attribute and n.attr in ("detach", "item") for n in lb.walk(st.value)) \
                and loss & {n.id for n in lb.walk(st.value) if type(n) is ast.Name}:
            return True
    return False


def _scored_first(g, site, scorers) -> bool:
    """Phases in sequence: `score(0, mid)` earlier in the same function, with the same
    arguments as this `train(0, mid)`: the tokens it trains on were scored before. Also a
    helper that scores (and trains nothing) handed everything the training call gets and
    more, in the same loops, whose result the function returns (`nll = self._nll(lp, self.bias, y)`,
    then `self._fit(lp, y)`, then `return nll`)."""
    def given(e) -> list:
        return [lb.src(a) for a in e.node.args] + [f"{k.arg}={lb.src(k.value)}" for k in e.node.keywords]
    args, m = given(site), g.module
    returned = {n.id for r in m.under(g, m.nodes_of(ast.Return)) if r.value is not None and r.lineno > site.line
                for n in lb.walk(r.value) if type(n) is ast.Name}
    held = {id(a.value) for a in m.under(g, m.nodes_of(ast.Assign))
            if any(type(t) is ast.Name and t.id in returned for t in a.targets)}
    inside = {id(n) for a in m.under(g, m.nodes_of(ast.Assign)) if id(a.value) in held for n in lb.walk(a.value)}
    targets = {n.id for a in site.node.args for n in lb.walk(a) if type(n) is ast.Name and "TGT" in g.labels_of(n)}
    if any(e.kind == "ce" and _at(e) < _at(site) and e.ctx.loops == site.ctx.loops and id(e.node) in inside
           and targets & {n.id for a in e.node.args for n in lb.walk(a) if type(n) is ast.Name} for e in g.events):
        return True  # `nll = F.cross_entropy(logits, y)`, then `self.fit(hidden, y)`, then `return nll`
    return any(e.kind == "call" and _at(e) < _at(site) and (
        e.data["callee"] in scorers and given(e) == args
        or e.data["callee"] and args and set(args) < set(given(e)) and e.ctx.loops == site.ctx.loops
        and id(e.node) in held  # (the score this function hands back, not a diagnostic before a later pass)
        and m.scores(m.functions[e.data["callee"]]) and not m.trains_any(m.functions[e.data["callee"]]))
        for e in g.events)


def _discarded(ev) -> bool:
    """The trained object is built inside the loop around the backward pass and deleted there."""
    for loop in ev.ctx.loops:
        built = {t.id for st in loop.body if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call)
                 for t in st.targets if isinstance(t, ast.Name)}
        deleted = {t.id for n in lb.walk(loop) if isinstance(n, ast.Delete) for t in n.targets if isinstance(t, ast.Name)}
        if built & deleted:
            return True
    return False


def score_first_steps(m) -> list:
    """(function, backward event) of the gradient steps on validation tokens taken score-first
    (test-time training done right), found as `check` judges them."""
    scorers = m.once("nograd scorers", _nograd_scorers)
    return [(f, ev) for f, ev in m.events("backward") if "VAL" in ev.data["loss"]
            and (_recorded_first(f, ev) or _verdict(m, f, _at(ev), ev.ctx.loops, scorers, ()) == "ok")
            and not (mixed_loader(f, ev) and not handed_val(f))]


def handed_val(f) -> bool:
    """Some caller hands f validation data (beyond a parameter's default)."""
    return any("VAL" in v - f.defaults.get(p, lb.EMPTY) for p, v in f.param_labels.items())


def _trains_on_train_batches(f, ev) -> bool:
    """The loss of a `.backward()`, read from the bindings just above it, carries training
    data and no validation data (see `auditors.nearest`)."""
    node = ev.node
    if type(node) is not ast.Call or type(node.func) is not ast.Attribute or node.func.attr != "backward":
        return False
    held = nearest_labels(f, node.func.value, ev.line)
    return "TRAIN" in held and "VAL" not in held


def check(m):
    scorers = m.once("nograd scorers", _nograd_scorers)
    out = []
    for f, ev in m.events("backward"):
        if "VAL" not in ev.data["loss"] or gradients_only_measured(f, ev):
            continue
        if "TRAIN" in ev.data["loss"] and _trains_on_train_batches(f, ev):
            continue  # (`x, y` bound to training batches here and to validation chunks further down the function)
        chosen = guarded_val_return(m, f, ev) if "TRAIN" in ev.data["loss"] else None
        if chosen is not None:  # (`training_shards(hp)` gives the val shards where a setting says so)
            g, node, ctx = chosen
            if not any(o.rule == VAL_IN_TRAINING.id and o.line == node.lineno for o in out):
                out.append(raw(VAL_IN_TRAINING, g, node, ctx, "error", "medium",
                               f"a setting makes {g.name}() give validation data, and the backward pass at line "
                               f"{ev.line} trains on what it gives: validation tokens are trained on"))
            continue
        verdict = "ok" if _recorded_first(f, ev) else _verdict(m, f, _at(ev), ev.ctx.loops, scorers, ())
        if (verdict is None or mixed_loader(f, ev) or mix_sites(m)) and "TRAIN" in ev.data["loss"] \
                and not (handed_val(f) and not fed_joined_streams(m, f)):
            # batches drawn from both splits (not a helper handed the training split by one caller and val
            # by another); a periodic validation earlier in the loop scores val, but not what is trained on
            g, node, ctx = guarded_val_source(m, f) or guarded_mix(m) or guarded_join(m, f) or built_mix(f, ev) \
                or (f, ev.node, ev.ctx)
            if node is not ev.node and any(o.rule == VAL_IN_TRAINING.id and o.line == node.lineno for o in out):
                continue  # (several backward passes fed from one place: reported there once)
            where = "" if node is ev.node else f" (validation data enters here; the backward pass is at line {ev.line})"
            out.append(raw(VAL_IN_TRAINING, g, node, ctx, "error", "medium",
                           "backward pass on batches drawn from training and validation data alike: validation tokens "
                           "are trained on (a loader that mixes in a val shard, a pattern that matches it)" + where))
            continue
        if verdict != "ok" and "TRAIN" not in ev.data["loss"] and _verdict_inside(f, _at(ev), ev.ctx.loops, scorers) is None:
            per_site = _site_verdicts(m, f, scorers)
            if any(v == "ok" for *_, v in per_site):  # a helper some callers use score-first: report the others
                for g, e, v in per_site:
                    if v != "ok":
                        out.append(raw(RULE, g, e.node, e.ctx, "error", "high" if v else "medium", f"hands validation "
                                       f"tokens to {f.name}(), which takes gradient steps on them: "
                                       f"{v or 'they have not been scored first (they are scored later)'}"))
                continue
        if verdict == "ok" and inside_training(m, f, only=True):
            verdict = None  # (a probe only the training loop runs: a periodic validation before it scores other weights)
        if verdict == "ok":
            ahead = runs_ahead(f, ev, lambda st: _scores_in(f, st, scorers))
            if ahead:
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium", f"backward pass on a validation-data loss: {ahead}"))
            rounded = None if ahead else rounded_past_chunk(f, ev)
            if rounded:  # (reached where the chunk is not a whole number of rows)
                ctx = Ctx(ev.ctx.guards + ((rounded[1], True),), ev.ctx.loops, ev.ctx.nograd)
                out.append(raw(RULE, f, ev.node, ctx, "error", "medium", f"backward pass on a validation-data loss: {rounded[0]}"))
            continue
        if _discarded(ev):
            out.append(raw(RULE, f, ev.node, ev.ctx, "info", "medium",
                           "gradient steps on validation tokens for a throw-away copy (deleted afterwards): a grey area "
                           "(compile warmup, RULES.md §4 #1530) as long as no state survives"))
            continue
        if isinstance(verdict, Conditional):  # the order chosen by a setting: reported where the phases are run
            (g, e), (test, polarity) = verdict.site, verdict.guard
            ctx = Ctx(e.ctx.guards + ((test, polarity),), e.ctx.loops, e.ctx.nograd)
            out.append(raw(RULE, g, e.node, ctx, "error", "high", f"runs {f.name}(), which takes gradient steps on "
                           f"validation tokens, first: {verdict}"))
            continue
        if ("TRAIN" in ev.data["loss"] or f.is_method and "VAL" in m.instance_data(f.cls)) and inside_training(m, f) \
                or inside_training(m, f, only=True):
            # (also a probe object that keeps val windows, or one handed val batches that only the training loop
            # calls; an evaluation handed val alone, run by the training loop and after it, is judged as one)
            out.append(raw(VAL_IN_TRAINING, f, ev.node, ev.ctx, "error", "medium",
                           "backward pass on validation tokens inside the training run (a probe or a step handed val "
                           "batches by a function that trains on training batches): their gradients reach the weights"))
            continue
        msg = verdict or "takes gradient steps on validation tokens with no scoring of them first (they are scored later)"
        ctx = with_choice(f, ev.node.func.value, "VAL", ev.ctx) if type(ev.node.func) is ast.Attribute else ev.ctx
        out.append(raw(RULE, f, ev.node, ctx, "error", "high" if verdict else "medium",
                       f"backward pass on a validation-data loss: {msg}"))
    return out + [raw(RULE, f, ev.node, ev.ctx, "error", "medium", f"{ev.data['name']}() takes gradient steps on the newest "
                      "item of a queue while the loop scores its oldest: that item was staged ahead and is scored only in "
                      "a later iteration") for f, ev in queue_ahead(m)]
