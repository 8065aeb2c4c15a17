"""Training data in the scores of validation tokens (RULES.md §1.2 "self-contained
evaluation": during evaluation there may be no access to training data; §6).

A prior, a cache or a mixing table computed from training shards while evaluating
(`prior = bincount(train_tokens)`, then `p = 0.95 * softmax(logits) + 0.05 * prior`)
makes the evaluation read training data. The rule flags a scoring operation (cross
entropy, a log-probability, the gather of the target's probability) whose inputs carry
both validation and training data, in a function that does not itself train and that
(or whose callees) reads training shards on its own; and, in the script's driver, a
table computed from training shards after the artifact was written (below the
`compress` / `save` that makes it) and handed with the validation tokens to a function
that scores them. What the model learned in training carries no data label, so scoring
the trained model is clean; so is a training loop that evaluates now and then (it
trains), and statistics paid for inside the artifact (they are read from a shipped
file, not from the training shards).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("train-data-in-scoring", "train_data_at_eval", "validation tokens scored with values computed from training shards",
                "RULES.md §1.2 (self-contained evaluation), §6")
SCORING = {"cross_entropy", "nll_loss", "log_softmax", "gather", "log", "log2", "take_along_axis"}
LOADS = lb.BLOB_FUNCS | {"open", "glob", "iglob", "listdir", "scandir", "Path"}


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>" or any(e.kind == "backward" for e in f.events):
            continue
        for ev in f.events:
            if ev.kind != "call" or ev.data["name"] not in SCORING or ev.data["callee"] is not None \
                    or (type(ev.node.func) is ast.Name and f.binding(ev.node.func.id) is not None):
                continue  # (a function of this file named `log`, or a name bound to a lambda, is a logger, not a logarithm)
            if any(type(a) is ast.JoinedStr or type(a) is ast.Constant and isinstance(a.value, str) for a in ev.node.args):
                continue  # `self.log(f"val_bpb:{bpb}")`: a logger held in a field, handed text
            labels = ev.data["recv"].union(*ev.data["args"], *ev.data["kws"].values())
            if {"TRAIN", "VAL"} <= labels and _reaches_a_load(m, f):
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                               f"{ev.data['name']}() scores validation tokens with values computed from training data "
                               "read during evaluation"))
                break  # one finding per function: the first place the mixture is scored
    return out + _loaded_after_export(m) + _trained_after_export(m) + _replayed_in_ttt(m)


def _trained_after_export(m) -> list:
    """In the script's driver: after the artifact was written and loaded back into the model
    (`model.load_state_dict(deserialize(blob))`), a call that takes optimizer steps on
    training data (`repair(model, train_files)`), before validation tokens are scored. The
    scored model is then not the artifact, and the evaluation reads training data after the
    training window (§1.2, §6). A step on scored validation tokens (test-time training) is
    judged by the TTT rule instead."""
    from auditors.rules.quant_calibration import TRAIN_AT_EVAL

    out = []
    for f in m.functions.values():
        loads = [e.line for e in f.events if e.kind == "call" and e.data["name"] == "load_state_dict"]
        written = max((e.line for e in f.events if e.kind == "call" and any(x > e.line for x in loads) and _exports(m, e)),
                      default=None)  # (the last round trip: an artifact loaded back before training is a resumed run)
        loaded = min((x for x in loads if written is not None and x > written), default=None)
        if loaded is None:
            continue
        scored = max((e.line for e in f.events if e.kind == "call" and e.line > loaded and e.data["callee"]
                      and any("VAL" in v for v in [*e.data["args"], *e.data["kws"].values()])
                      and m.scores(m.functions[e.data["callee"]])), default=None)
        for ev in f.events:
            if ev.kind != "call" or not ev.data["callee"] or not loaded < ev.line < (scored or loaded):
                continue
            g = m.functions[ev.data["callee"]]
            if m.trains_on(g, "TRAIN") and not m.trains_on(g, "VAL"):
                out.append(raw(TRAIN_AT_EVAL, f, ev.node, ev.ctx, "error", "medium",
                               f"{ev.data['name']}() takes optimizer steps on training data after the artifact was "
                               f"written (line {written}) and loaded back (line {loaded}), before the validation tokens "
                               "are scored: the scored model is not the artifact, and the evaluation reads training data"))
    return out


def _replayed_in_ttt(m) -> list:
    """Score-first test-time training that also steps on training data (`x = cat([chunk_x,
    replay.take(n)])`): the adaptation runs during the evaluation, so it reads training
    data then, whether from the shards or from tokens kept since training."""
    from auditors.rules.ttt_before_score import handed_val, score_first_steps

    if not any(e.kind == "backward" and {"VAL", "TRAIN"} <= e.data["loss"] for _, e in m.events("backward")):
        return []
    # the step is handed the scored validation tokens and fetches the training data itself (a training
    # loop that validates inline is handed its training data, or holds both splits in its own names)
    return [raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                "a score-first test-time-training step also trains on training data read during the evaluation")
            for f, ev in score_first_steps(m) if "TRAIN" in ev.data["loss"] and handed_val(f)
            and not any("TRAIN" in v for v in f.param_labels.values())]


_EXPORTS = {"compress", "save"}  # the artifact's bytes: `lzma.compress(buf)`, `torch.save(obj, f)`


def _loaded_after_export(m) -> list:
    """In the script's driver: a table computed from training shards after the artifact
    was written (`prior = Prior.from_shards(args.train_files)` below `lzma.compress(...)`),
    handed with the validation tokens to a function that scores them. It is not in the
    artifact, so the evaluation reads training data (§1.2)."""
    out = []
    for f in m.functions.values():
        written = min((e.line for e in f.events if e.kind == "call" and _exports(m, e)), default=None)
        if written is None:
            continue
        assigned = None
        for ev in f.events:
            if ev.kind != "call" or ev.line <= written or not ev.data["callee"] or not m.scores(m.functions[ev.data["callee"]]):
                continue
            args = [*zip(ev.node.args, ev.data["args"]), *((k.value, ev.data["kws"][k.arg]) for k in ev.node.keywords if k.arg)]
            # (the table itself, or wrapped for the scorer: `sliding_eval(..., eu.mix_adjust(log_prior, w))`, also
            # by a factory whose closure the scorer is handed: `hook = mix_hook(prior, val)`; `score(..., hook=hook)`)
            if assigned is None:  # name -> every value bound to it in f (`hook = None` first, then the factory)
                assigned = {}
                for st in m.under(f, m.nodes_of(ast.Assign)):
                    for t in st.targets:
                        if type(t) is ast.Name:
                            assigned.setdefault(t.id, []).append(st.value)
            wraps = [a for a, _ in args if type(a) is ast.Call] + [
                v for a, _ in args if type(a) is ast.Name for v in assigned.get(a.id, ())]
            wrapped = [(x, f.labels_of(x)) for w in wraps if type(w) is ast.Call for x in w.args]
            if not any("VAL" in v for _, v in args + wrapped):
                continue
            named = [(a, v) for a, v in args + wrapped if type(a) is ast.Name] + [
                (n, f.labels_of(n)) for x, _ in wrapped if type(x) is not ast.Name for n in lb.walk(x)
                if type(n) is ast.Name and "TRAIN" in f.labels_of(n)]  # (`mix(as_tensor(prior.astype(...)), w)`)
            late = [(a, made) for a, v in named if "TRAIN" in v and (made := _computed_from_shards(m, f, a.id, written))]
            late += [(x, made) for x, v in wrapped if type(x) is ast.Call and x.lineno > written and "TRAIN" in v
                     and (made := _made_from_shards(m, f, x))]  # `mix(prior.as_tensor(dev))`: read on first use
            if late:
                a, made = late[0]
                where = (ev.node, ev.ctx) if not made.ctx.guards[len(ev.ctx.guards):] else (made.node, made.ctx)
                # (made under a condition of its own, `prefill(h) if h.prior else zeros(V, V)`: reported there)
                out.append(raw(RULE, f, where[0], where[1], "error", "medium",
                               f"`{lb.src(a)}` is computed from training shards after the artifact was written (line "
                               f"{written}) and handed to {ev.data['name']}() (line {ev.line}) with the validation tokens: "
                               "the evaluation reads training data that the artifact does not carry"))
    return out


def _exports(m, ev, depth: int = 0) -> bool:
    """The call writes the artifact: `lzma.compress(...)`, `torch.save(...)`, or a helper of the
    file that does, itself or one call below (`export(model)` calling `pack_blob(blob)`)."""
    if ev.data["name"] in _EXPORTS:
        return True
    callee = m.functions.get(ev.data["callee"]) if ev.data["callee"] else None
    return callee is not None and depth < 2 and any(e.kind == "call" and _exports(m, e, depth + 1) for e in callee.events)


def _computed_from_shards(m, f, name: str, after: int):
    """The event of the call that binds `name`, below line `after`, and reads training shards
    (itself, or the function it calls with a training path); else None. Of a conditional
    expression (`tab = prefill(h) if h.prior else zeros(...)`), the branch that reads them,
    whose event carries the expression's test as a guard."""
    bound = f.binding(name)
    if bound is None or bound.lineno <= after:
        return None
    branches = (bound.body, bound.orelse) if type(bound) is ast.IfExp else (bound,)
    return next((ev for b in branches if (ev := _made_from_shards(m, f, b)) is not None), None)


def _made_from_shards(m, f, bound):
    """The event of the call if it reads training shards, else None."""
    if type(bound) is not ast.Call:
        return None
    ev = next((e for e in f.events if e.kind == "call" and e.node is bound), None)
    if ev is None:
        return None
    callee = m.functions.get(ev.data["callee"]) if ev.data["callee"] else None
    if callee is not None and _reaches_a_load(m, callee):
        return ev  # `prior = build_prior(data_path)` that globs the training shards itself
    if "TRAIN" not in ev.data["recv"].union(*ev.data["args"], *ev.data["kws"].values()):
        return None
    loads = ev.data["name"] in LOADS or (callee is not None and any(x.kind == "call" and x.data["name"] in LOADS
                                                                    for x in callee.events)) or _sibling_call(m, bound)
    if not loads:  # `table(TokenStream(list_shards(cfg.train_glob)).take(n))`: the read is in an argument
        loads = any(inner is not bound and _made_from_shards(m, f, inner) is not None
                    for a in [*bound.args, *(k.value for k in bound.keywords)] for inner in lb.walk(a) if type(inner) is ast.Call)
    return ev if loads else None


def _sibling_call(m, call: ast.Call) -> bool:
    """`eu.token_prior(cfg.train_glob, vocab)`: a function of a module the submission ships
    (not a library) handed a training path: what it returns is read from the shards."""
    from auditors.analysis import LIBRARIES

    func = call.func
    if type(func) is ast.Attribute and type(func.value) is ast.Name:
        package = m.imported_modules().get(func.value.id)
        return package is not None and package not in LIBRARIES
    if type(func) is ast.Name:
        return any(n.module and n.module.split(".")[0] not in LIBRARIES and any((a.asname or a.name) == func.id for a in n.names)
                   for n in m.nodes_of(ast.ImportFrom))
    return False


def _reaches_a_load(m, f) -> bool:
    """f, a function it calls or a class it constructs (its `__init__`) loads training data;
    for a method, also a method of its class that sets what it reads from `self` and does
    not train (`self.prior` built from training shards by the evaluator's `build_prior`)."""
    seen, todo = set(), [f, *_setters(m, f)]
    while todo:
        g = todo.pop()
        if g.qualname in seen:
            continue
        seen.add(g.qualname)
        if _loads_training_data(g) or _hands_training_path(m, g):
            return True
        for e in g.events:
            if e.kind == "call":
                callee = e.data["callee"] or f"{e.data['name']}.__init__"
                if callee in m.functions:
                    todo.append(m.functions[callee])
        if g.cls:  # properties of its class it reads (`self.prior`, computed on first use)
            todo += [p for a in m.self_reads(g) if (p := m.functions.get(f"{g.cls}.{a}")) is not None and p.is_property]
    return False


def _hands_training_path(m, g) -> bool:
    """g passes a training path it did not get from its own callers (`self.cfg.train_files`)
    to a helper that opens it (`unigram(pattern)`: glob and read)."""
    if any("TRAIN" in v for v in g.param_labels.values()):
        return False
    for e in g.events:
        if e.kind == "call" and e.data["callee"] and any("TRAIN" in a for a in (*e.data["args"], *e.data["kws"].values())):
            callee = m.functions[e.data["callee"]]
            if any(x.kind == "call" and x.data["name"] in LOADS and "TRAIN" in x.data["recv"].union(*x.data["args"])
                   for x in callee.events):
                return True
    return False


def _loads_training_data(g) -> bool:
    """g opens or reads training shards itself: the path comes from a constant, a default
    or an attribute, not from a caller (tables built from training data at training time
    and handed to the evaluation are paid for in the artifact, or judged elsewhere)."""
    from_callers = any("TRAIN" in v and "TRAIN" not in g.defaults.get(p, ()) for p, v in g.param_labels.items())
    return not from_callers and any(e.kind == "call" and e.data["name"] in LOADS
                                    and "TRAIN" in e.data["recv"].union(*e.data["args"], *e.data["kws"].values())
                                    for e in g.events)


def _setters(m, f) -> list:
    """The methods of f's class (and its bases) that assign an attribute f reads from `self`
    and take no backward pass."""
    if not f.cls:
        return []
    reads, out = m.self_reads(f), []
    for cls in m.with_bases([f.cls]):
        for g in m.functions.values():
            if g.cls != cls or g is f or any(e.kind == "backward" for e in g.events):
                continue
            if any(type(a.value) is ast.Name and a.value.id == "self" and type(a.ctx) is ast.Store and a.attr in reads
                   for a in m.under(g, m.nodes_of(ast.Attribute))):
                out.append(g)
    return out
