"""Best of several scorings: a choice among whole passes over the validation data made
by their scores (RULES.md §2 C4 "no choosing the best of several passes", §1.5 seeds).

Scoring the validation set several ways (seeds, temperatures, with and without a cache)
and reporting the smallest loss, or fitting a setting on validation targets
(`min(grid, key=lambda T: val_loss(T))`), makes the reported number a minimum over
attempts chosen by the answers. The rule looks for a selection (`min`, `max`, `argmin`,
`argmax`, a `.min(dim=...)`, `sorted(...)[k]`) over several validation scores (values carrying
the target's loss or probability on validation data):
- a comprehension or a list filled by `.append` in a loop, whose iteration runs over
  something other than the data (seeds, settings), each element a score;
- any iterable selected by a `key=` that returns a score;
- `if score < best_score: best = candidate` in a loop that neither trains nor runs
  over the data (export variants, seeds, settings).
A stack of two passes' per-token losses (`torch.stack([a, b]).min(0)`) is a per-token
oracle, the oracle-gate rule's.
A setting of the quantizer chosen that way (each candidate handed to a function that
rounds the weights, the quantized model scored on validation data: a clip percentile picked
by val loss) is reported as quantization calibrated on val data (`val_gptq_calibration`).
Legal counterparts: per-document losses ranked for a report (the iteration runs over
the data itself, each document scored once), ablations sorted into a log (`sorted` not
indexed), a running best of validation losses
logged while training (the accumulator appears on both sides), gates on the prefix.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import assigned_pairs, ctx_of, raw

RULE = RuleInfo("best-of-passes", "two_pass_rescore", "the best of several scorings of the validation data is kept",
                "RULES.md §2 C4, §1.5 (brute-forced seeds)")
QUANT_SETTING = RuleInfo("quant-setting-on-val", "val_gptq_calibration",
                         "a quantization setting chosen by its validation score",
                         "RULES.md §6 (quantization calibrated on val data: #728)")
WEIGHTS_ON_VAL = RuleInfo("weights-chosen-on-val", "val_in_training",
                          "model weights (checkpoints, soup members) chosen by their validation score",
                          "RULES.md val_in_training (validation tokens used in training: model selection)")
EXTRA = (QUANT_SETTING, WEIGHTS_ON_VAL)
SELECT = {"min", "max", "sorted", "argmin", "argmax", "nanmin", "nanmax", "amin", "amax"}
COLLECT = {"stack", "cat", "concatenate", "vstack", "hstack", "tensor", "array", "asarray", "list", "tuple"}
SCORE = frozenset({"TGTP", "VAL"})


def check(m):
    out = []
    loops = m.nodes_of(ast.For)
    subscripted = {id(s.value) for s in m.nodes_of(ast.Subscript)}
    for f in m.functions.values():
        for ev in f.events:
            if ev.kind != "call" or ev.data["name"] not in SELECT:
                continue
            if ev.data["name"] == "sorted" and id(ev.node) not in subscripted:
                continue  # sorted to be shown or walked in order; `sorted(xs)[0]` picks one
            why = _several_scores(m, f, ev.node, loops)
            body = _quantized_candidates(m, f) if why else None
            if body is not None:
                found = raw(QUANT_SETTING, f, ev.node, ev.ctx, "error", "medium",
                            f"picks a quantization setting by the loss of the model quantized with each candidate on "
                            f"validation data ({why}): the quantization is calibrated on the validation set")
                found.guards += [g for g in _scoring_guards(m, f, body) if g not in found.guards]
                out.append(found)
            elif why:
                found = raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                            f"keeps the best of several scorings of the validation data ({why})")
                found.guards += [g for g in _second_entry_guards(m, f, ev) if g not in found.guards]
                out.append(found)
        out += _kept_if_better(m, f) or _better_of_two(m, f) or _best_setting_after(m, f)
    return out


def _second_entry_guards(m, f, ev) -> list:
    """`results = {"plain": ...}`, then `if cfg.ttt: results["ttt"] = ...`, then the best of
    `results`: there is a choice only where some second entry is added, so the guards that
    every added entry shares (none when the literal already holds two)."""
    held = ev.node.args[0] if ev.node.args else None
    made = f.binding(held.id) if type(held) is ast.Name else None
    if type(made) is not ast.Dict or len(made.keys) > 1:
        return []
    stores = [a for a in m.under(f, m.nodes_of(ast.Assign)) if any(
        type(t) is ast.Subscript and type(t.value) is ast.Name and t.value.id == held.id for t in a.targets)]
    shared = None
    for st in stores:
        own = [[lb.src(t), p] for t, p in ctx_of(f, st).guards if p in (True, False)]
        shared = own if shared is None else [g for g in shared if g in own]
    return [g for g in shared or [] if g not in [[lb.src(t), p] for t, p in ev.ctx.guards]]


def _best_setting_after(m, f) -> list:
    """`acc[:, 0] += nll_k` over the whole data, one row per setting (temperatures scored in
    one forward pass), then, after that loop, `k = argmin(acc[:, 0])` and `acc[k, 0]`
    reported: the setting is chosen with every target known. (Picking the best setting so
    far inside the loop, for the next batch only, decides from scored tokens.)"""
    for c in m.under(f, m.nodes_of(ast.Call)):
        if lb.call_name(c.func) not in ("argmin", "argmax"):
            continue
        held = c.func.value if type(c.func) is ast.Attribute and lb.dotted(c.func.value) not in ("torch", "np", "numpy") \
            else (c.args[0] if c.args else None)
        root = held
        while type(root) is ast.Subscript:
            root = root.value
        if type(root) is not ast.Name or not {"TGTP", "VAL"} <= f.labels_of(held):
            continue
        filled = [lp for a in m.under(f, m.nodes_of(ast.AugAssign)) if _root(a.target) == root.id
                  for lp in [m.loop_around(f, a)] if lp is not None]
        if not filled or any(lp.lineno <= c.lineno <= lp.end_lineno for lp in filled):
            continue  # (a choice inside the loop that fills the totals: the best setting so far)
        picked = next((t.id for a in m.under(f, m.nodes_of(ast.Assign)) if c in lb.walk(a.value)
                       for t in a.targets if type(t) is ast.Name), None)
        if picked is not None and any(type(s.value) is ast.Name and s.value.id == root.id and picked in {
                n.id for n in lb.walk(s.slice) if type(n) is ast.Name} for s in m.under(f, m.nodes_of(ast.Subscript))):
            return [raw(RULE, f, c, ctx_of(f, c), "error", "medium",
                        f"keeps the setting whose total loss over all of `{root.id}` is smallest, chosen after every "
                        f"token was scored under each (the loop at line {filled[0].lineno}), and reports its total")]
    return []


def _root(e):
    while type(e) is ast.Subscript:
        e = e.value
    return e.id if type(e) is ast.Name else None


_ROUNDS = {"round", "round_", "rint"}


def _scorings(m, f, body) -> list:
    """The validation scorings inside a loop or comprehension of f: losses computed there,
    and calls handing val data to a function that scores."""
    lo, hi = body.lineno, body.end_lineno
    return [e for e in f.events if lo <= e.line <= hi and (e.kind == "ce" or e.kind == "call" and any(
        "VAL" in a for a in [*e.data["args"], *e.data["kws"].values()]) and any(m.scores(m.functions[q]) for q in m.targets(e)))]


def _scoring_guards(m, f, body) -> list:
    """The conditions every validation scoring inside the candidate loop sits under
    (`if mode == "loss": scores[c] = val_loss(...)`): the choice is made by val only there."""
    common = None
    for e in _scorings(m, f, body):
        here = [[lb.src(t), p] for t, p in e.ctx.guards]
        common = here if common is None else [g for g in common if g in here]
    return common or []


def _quantized_candidates(m, f, only: list | None = None):
    """f runs over candidates (a loop or a comprehension) that scores the validation data
    and hands each candidate to a function of this module that rounds tensors (`pack(net,
    pct)` with `torch.round` in it, or one call below): the candidates are quantization
    settings (clip percentiles, scales, bit widths), and the model scored for each is the
    quantized one. Returns that loop."""
    loops = [(lp.target, lp) for lp in only] if only is not None else [(lp.target, lp) for lp in m.under(f, m.nodes_of(ast.For))] + [
        (g.target, c) for kind in (ast.ListComp, ast.DictComp, ast.GeneratorExp)
        for c in m.under(f, m.nodes_of(kind)) for g in c.generators]
    for target, body in loops:
        names = {n.id for n in lb.walk(target) if type(n) is ast.Name}
        for call in (n for n in lb.walk(body) if type(n) is ast.Call):
            if any(type(a) is ast.Name and a.id in names for a in [*call.args, *(k.value for k in call.keywords)]):
                g = m.resolve(call.func, f)
                if g is not None and g is not f and _rounds(m, g, 1) and _scorings(m, f, body):
                    return body
    return None


def _rounds(m, g, depth: int) -> bool:
    """g rounds tensors (`torch.round(w / s)`, `(w / s).round()`, `np.rint`; Python's own
    `round(x, 4)` for a log line is no quantizer), or a function it calls does."""
    calls = m.under(g, m.nodes_of(ast.Call))
    if any(type(c.func) is ast.Attribute and c.func.attr in _ROUNDS for c in calls):
        return True
    return depth > 0 and any(h is not None and h is not g and _rounds(m, h, depth - 1)
                             for h in {m.resolve(c.func, g) for c in calls})


def _better_of_two(m, f) -> list:
    """`l1, b1 = evaluate(model, val, a)`, `l2, b2 = evaluate(model, val, b)`, then `if b2 < b1: b1 =
    b2`: two scorings of the validation data, the better one kept as the result (no loop needed)."""
    if f.qualname == "<module>":
        return []
    tests = [node for node in m.under(f, m.nodes_of(ast.If)) if any(
        type(c) is ast.Compare and type(c.left) is ast.Name and len(c.comparators) == 1 and type(c.comparators[0]) is ast.Name
        for c in lb.walk(node.test))]
    if not tests:  # (most functions: no `if a < b` between two names)
        return []
    scored = {}  # name -> the scoring call it was bound from
    for a in m.under(f, m.nodes_of(ast.Assign)):
        callee = m.resolve(a.value.func, f) if type(a.value) is ast.Call else None
        if callee is not None and m.scores(callee):
            scored.update({x.id: a.value for t in a.targets for x in lb.walk(t) if type(x) is ast.Name})
    for node in tests:
        for c in (c for c in lb.walk(node.test) if type(c) is ast.Compare and len(c.ops) == 1
                  and type(c.ops[0]) in (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
            a, b = c.left, c.comparators[0]
            if type(a) is not ast.Name or type(b) is not ast.Name or a.id not in scored or b.id not in scored \
                    or scored[a.id] is scored[b.id] or not (_score(f, a) and _score(f, b)):
                continue
            kept = {(lb.src(t), lb.src(v)) for st in node.body if type(st) is ast.Assign for t, v in assigned_pairs(st)}
            if (a.id, b.id) in kept or (b.id, a.id) in kept:
                found = raw(RULE, f, node, ctx_of(f, node), "error", "medium",
                            f"keeps the better of two scorings of the validation data (`{lb.src(c)}`, lines "
                            f"{scored[a.id].lineno} and {scored[b.id].lineno}) as the result")
                found.guards.append([lb.src(node.test), True])  # (the choice is made where its test holds)
                return [found]
    return []



def _kept_if_better(m, f) -> list:
    """`for cand in candidates: score = eval_val(cand); if score < best_score: best = cand`:
    a loop that does not train and does not run over the data, keeping what scores best."""
    if f.qualname == "<module>":
        return []
    loops = m.nodes_of(ast.For)
    for node in m.under(f, m.nodes_of(ast.If)):
        if not any(isinstance(s, ast.Assign) for s in node.body):
            continue
        sides = [c for c in lb.walk(node.test) if isinstance(c, ast.Compare) and len(c.ops) == 1
                 and isinstance(c.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE))
                 and not isinstance(c.left, ast.Constant) and not isinstance(c.comparators[0], ast.Constant)]  # (a threshold is no rival)
        if not any(_score(f, x) for c in sides for side in (c.left, c.comparators[0])
                   for x in (side.elts if isinstance(side, ast.Tuple) else [side])):
            continue
        loop = m.loop_around(f, node, (ast.For,))
        around = [lp for lp in m.under(f, loops) if lp.lineno < node.lineno <= lp.end_lineno]
        if loop is None or _over_data(f, loop.iter, loop) or not any(_scores_val_each_time(f, lp) for lp in around) or any(e.kind == "backward" and loop.lineno <= e.line <= loop.end_lineno
                                                           for e in f.events):
            continue
        ctx = next((e.ctx for e in f.events if node.lineno <= e.line <= node.end_lineno), None)
        if _quantized_candidates(m, f, [loop]) is not None:
            return [raw(QUANT_SETTING, f, node, ctx, "error", "medium",
                        "keeps the quantization setting whose quantized model scores best on the validation data "
                        f"(loop at line {loop.lineno}): the quantization is calibrated on the validation set")]
        if _loads_weights(m, f, loop):
            return [raw(WEIGHTS_ON_VAL, f, node, ctx, "error", "medium",
                        "keeps the model weights that score best on the validation data (each candidate loaded into a "
                        f"model and scored, loop at line {loop.lineno}): validation tokens choose the trained weights")]
        return [raw(RULE, f, node, ctx, "error", "medium",
                    "keeps whichever candidate scores best on the validation data (a choice among several "
                    f"scorings, loop at line {loop.lineno})")]


def _loads_weights(m, f, loop) -> bool:
    """A function the loop calls (by name, or handed in as a parameter: `score(trial)` with
    `score` loading the state it is given) loads a state dict into a model: the candidates
    are weights (checkpoints, soup members), not scorings."""
    called = [m.functions[e.data["callee"]] for e in f.events if e.kind == "call" and e.data["callee"]
              and loop.lineno <= e.line <= loop.end_lineno]
    called += [g for c in lb.walk(loop) if type(c) is ast.Call and type(c.func) is ast.Name and c.func.id in f.params
               for g in m.passed_functions(f, c.func.id)]
    own = [e for e in f.events if loop.lineno <= e.line <= loop.end_lineno]
    return any(e.kind == "call" and e.data["name"] == "load_state_dict" for e in own + [e for g in called for e in g.events])
    return []


def _over_data(f, iterable, loop=None) -> bool:
    """The loop runs over validation or training data (documents, chunks), not over
    settings; a list of candidates that later hold their scores carries the scores' labels
    (TGTP), which data does not. A loop over something of the training run (a pool of
    checkpoints kept with their training loss) that scores the validation data in each
    iteration runs over candidates."""
    labels = f.labels_of(iterable)
    if "TGTP" in labels or not labels & lb.DATA:
        return False
    return "VAL" in labels or loop is None or not _scores_val_each_time(f, loop)


def _scores_val_each_time(f, loop) -> bool:
    """Each iteration computes a score: a loss or log-probability in the loop's body, or a
    call of a function that scores and returns validation scores (a threshold or a
    running count compared in a loop over orders is no scoring)."""
    m = f.module
    for e in f.events:
        if not loop.lineno <= e.line <= loop.end_lineno:
            continue
        if e.kind == "ce" or (e.kind == "call" and _scoring_call(f, e.node.func)):
            return True
        if e.kind == "call" and e.data["callee"] and SCORE <= m.functions[e.data["callee"]].ret \
                and m.scores(m.functions[e.data["callee"]]):
            return True
    return False


_SCORING_CALLS = {"log", "log2", "log_softmax", "cross_entropy", "nll_loss"}


def _scoring_call(f, func) -> bool:
    """`log(...)`, `F.cross_entropy(...)`, or a name bound to one (`_log = math.log`)."""
    if lb.call_name(func) in _SCORING_CALLS:
        return True
    bound = f.binding(func.id) if type(func) is ast.Name else None
    return type(bound) is ast.Attribute and bound.attr in _SCORING_CALLS


def _score(f, node) -> bool:
    return SCORE <= f.labels_of(node)


def _several_scores(m, f, call: ast.Call, loops) -> str | None:
    for kw in call.keywords:
        if kw.arg == "key" and (_key_scores(m, f, kw.value) or (call.args and _reads_scored_items(f, call.args[0], kw.value))):
            return "a setting chosen by its validation score"
    pool = list(call.args)
    if isinstance(call.func, ast.Attribute) and not (isinstance(call.func.value, ast.Name)
                                                     and call.func.value.id in ("np", "numpy", "torch", "math")):
        pool.insert(0, call.func.value)  # `torch.stack([a, b]).min(dim=0)`, `losses.argmin()`
    if len(call.args) >= 2 and isinstance(call.func, ast.Name):
        if any(kw.arg == "key" for kw in call.keywords) and sum(_score(f, a) for a in call.args) >= 2:
            return "the better of two passes, picked by a key"  # `min((loss, bpb), rerun(model), key=lambda r: r[1])`
        return None  # `min(a, b)` of two values: a per-token gate, the oracle-gate rule's
    for arg in pool[:1]:
        why = _collection(m, f, arg, loops, depth=0) or _filled_per_attempt(m, f, arg, call, loops)
        if why:
            return why
    return None


def _filled_per_attempt(m, f, table, call: ast.Call, loops) -> str | None:
    """`table.min(dim=1)` of a table filled as `table[chunk, k] = loss(copies[k], ...)` in a
    loop over k that runs over copies of the model (seeds, replicas), not over the data, and
    scores in each pass: for every row, the best of several attempts at the same tokens. The
    selection's axis must be the loop's (the smallest loss of each copy over the chunks is a
    statistic, no choice). Also a table one entry per setting (`argmin(per_tok)` with
    `per_tok = self.nll / n`, `self.nll[g] += ce(z / grid[g], t)` filled by another method)."""
    method = type(call.func) is ast.Attribute and lb.dotted(call.func.value) not in ("torch", "np", "numpy")
    dims = [k.value for k in call.keywords if k.arg in ("dim", "axis")] + (call.args[:1] if method else call.args[1:2])
    if dims and (len(dims) != 1 or type(dims[0]) is not ast.Constant or type(dims[0].value) is not int):
        return None
    axis = dims[0].value if dims else None
    roots = _table_roots(f, table)
    kept_by_self = f.cls and any(kind == "self" for kind, _ in roots)  # (filled by another method of the class)
    scopes = [f] + ([g for q, g in m.functions.items() if q.startswith(f.cls + ".") and g is not f] if kept_by_self else [])
    for g in scopes:
        for loop in m.under(g, loops):
            variables = {n.id for n in lb.walk(loop.target) if type(n) is ast.Name}
            if not variables or _over_data(g, loop.iter, loop) or not _scores_val_each_time(g, loop) \
                    or not _calls_each(g, loop, variables):
                continue
            for t, value in _stores(loop):
                if type(t) is not ast.Subscript or _root_of(t.value) not in roots or not _score(g, value):
                    continue
                at = t.slice if axis is None else \
                    t.slice.elts[axis] if type(t.slice) is ast.Tuple and axis < len(t.slice.elts) else None
                if type(at) is ast.Name and at.id in variables:
                    return f"one scoring per {at.id} of a loop over attempts, the best of each row kept"
    return None


def _root_of(e):
    """("name", x) of a name, ("self", a) of `self.a`, else None."""
    if type(e) is ast.Name:
        return ("name", e.id)
    if type(e) is ast.Attribute and type(e.value) is ast.Name and e.value.id == "self":
        return ("self", e.attr)
    return None


def _table_roots(f, table) -> set:
    """The table itself, and the `self.` tables a name is computed from (`per_tok = self.nll / n`)."""
    out = {_root_of(table)} - {None}
    bound = f.binding(table.id) if type(table) is ast.Name else None
    if bound is not None:
        out |= {r for n in lb.walk(bound) if (r := _root_of(n)) is not None and r[0] == "self"}
    return out


_ADDS_INTO = ("index_add_", "add_", "copy_", "scatter_add_")


def _stores(loop):
    """(target, value) of what the loop stores: `t[i, k] = v`, `t[i, k] += v`, and
    `t[:, k].index_add_(0, rows, v)` (`.add_(v)`, `.copy_(v)`)."""
    for n in lb.walk(loop):
        if type(n) is ast.Assign:
            yield from ((t, n.value) for t in n.targets)
        elif type(n) is ast.AugAssign:
            yield n.target, n.value
        elif type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr in _ADDS_INTO and n.args:
            yield n.func.value, n.args[-1]


def _calls_each(f, loop, variables: set) -> bool:
    """The loop hands each of its items to a call as something other than data (a model
    copy: `loss(net, part)`, `loss(copies[k], part)`), or scales the data by it (a
    temperature); a loop over chunk numbers uses them only to cut the data."""
    def item(a) -> bool:
        if type(a) is ast.Subscript:
            a = a.slice
        return type(a) is ast.Name and a.id in variables
    def scales(b) -> bool:  # `logits / tau`: each item a setting the data is scored under
        return type(b) is ast.BinOp and any(item(x) and f.labels_of(y) & lb.DATA for x, y in ((b.left, b.right), (b.right, b.left)))
    return any(type(c) is ast.Call and any(item(a) and not f.labels_of(a) & lb.DATA for a in c.args) or scales(c)
               for c in lb.walk(loop))


def _reads_scored_items(f, iterable, key) -> bool:
    """`min(results.items(), key=lambda kv: kv[1][1])` where `results` is a dict comprehension
    of scores, one per setting (not per document of the data): the key reads a score."""
    if not isinstance(key, ast.Lambda) or type(iterable) is not ast.Call or type(iterable.func) is not ast.Attribute \
            or iterable.func.attr not in ("items", "values") or type(iterable.func.value) is not ast.Name:
        return False
    built = f.binding(iterable.func.value.id)
    if type(built) is ast.DictComp:
        return _score(f, built.value) and not any(_over_data(f, g.iter) for g in built.generators)
    return type(built) is ast.Dict and _filled_with_scores(f, iterable.func.value.id, built)


def _filled_with_scores(f, name: str, built: ast.Dict) -> bool:
    """`results = {"plain": score(...)}`, then `results[f"ttt_lr{lr}"] = ttt(...)` in a loop
    over settings: at least two entries, each a score, added outside any loop over the data."""
    stores = [a for a in f.module.under(f, f.module.nodes_of(ast.Assign)) if len(a.targets) == 1
              and type(a.targets[0]) is ast.Subscript and type(a.targets[0].value) is ast.Name and a.targets[0].value.id == name]
    entries = [v for v in built.values if _score(f, v)] + [a.value for a in stores if _score(f, a.value)]
    repeated = any(loop for a in stores for loop in ctx_of(f, a).loops)
    over_data = any(type(loop) is ast.For and _over_data(f, loop.iter, loop) for a in stores for loop in ctx_of(f, a).loops)
    return bool(entries) and (len(entries) >= 2 or repeated) and not over_data


def _key_scores(m, f, key) -> bool:
    if isinstance(key, ast.Lambda):
        return _score(f, key.body)
    if isinstance(key, ast.Name):
        target = m.resolve(key)
        return target is not None and SCORE <= target.ret
    if isinstance(key, ast.Attribute) and key.attr in ("get", "__getitem__"):
        return _score(f, key.value)  # min(results, key=results.get): the setting whose score is lowest
    return False


def _collection(m, f, node, loops, depth: int) -> str | None:
    """Why `node` holds several validation scores, or None."""
    if depth > 3:
        return None
    if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
        if _score(f, node.elt) and not any(_over_data(f, g.iter) for g in node.generators):
            return "one scoring per setting of a loop that does not run over the data"
        return None
    if isinstance(node, ast.Call) and lb.call_name(node.func) in COLLECT and node.args:
        return _collection(m, f, node.args[0], loops, depth + 1)
    if isinstance(node, ast.Call):  # `res = sweep(...)`: the list a function of this file builds and returns
        g = m.resolve(node.func, f)
        for r in m.under(g, m.nodes_of(ast.Return)) if g is not None and g is not f else ():
            why = _collection(m, g, r.value, loops, depth + 1) if r.value is not None else None
            if why:
                return why
    if isinstance(node, ast.Subscript):
        return _collection(m, f, node.value, loops, depth + 1)
    if isinstance(node, ast.Name):
        bound = f.binding(node.id)
        if bound is not None and not (isinstance(bound, (ast.List, ast.Tuple)) and not bound.elts):
            return _collection(m, f, bound, loops, depth + 1)
        return _appended(m, f, node.id, loops)
    return None


def _appended(m, f, name: str, loops) -> str | None:
    """`xs.append(score)` inside a loop over something other than the data."""
    for loop in m.under(f, loops) if f.qualname != "<module>" else loops:
        if _over_data(f, loop.iter, loop) or not _scores_val_each_time(f, loop):
            continue  # (values gathered per byte or per token are no passes)
        for node in lb.walk(loop):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == name and node.args \
                    and _score(f, node.args[0]):
                return "one scoring appended per setting of a loop that does not run over the data"
    return None
