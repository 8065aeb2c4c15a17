"""Quantization calibration data (RULES.md §6).

A calibration routine (one that registers forward hooks or accumulates Hessians
`X^T X` from activations, also as `einsum("ni,nj->ij", x, x)`) is flagged when it is fed:
- validation data (`val_gptq_calibration`, #728 first commit; AWQ on val #1919 is the
  same class), or
- training data after the training loop when the wall-clock budget reserves no time
  for it (`train_data_at_eval`, #593: Hessians read train shards after the 600 s cap).
  A budget reduced by a reserve (`max_wallclock -= reserve`, #1060, #1218, #1868) is fine.
The data may be handed to the routine or loaded inside it. A class whose methods register hooks that gather second moments (`addmm_`, `H += X^T X`)
counts too: constructing it and then running the model on validation data in the same
function, before any method of it is called again (its `close()`), feeds the hooks (on
training data with no reserve: read after the training window).
Legal counterpart: AR self-generated calibration (the model samples its own tokens,
#1019), which carries neither label; hooks that adapt outputs (LoRA TTT adapters).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.dispatch import dispatch_items, dispatch_table
from auditors.flow import Ctx
from auditors.model import RuleInfo
from auditors.reserve import has_reserve, zero_reserves
from auditors.rules import ctx_of, raw

RULE = RuleInfo("quant-calibration-data", "val_gptq_calibration", "quantization calibrated on validation data",
                "RULES.md §6 (#728; #1019 legal AR self-generated calibration; #1919 AWQ)")
TRAIN_AT_EVAL = RuleInfo("train-data-at-eval", "train_data_at_eval", "training data read after the training window",
                         "RULES.md §6 (#593; reserve fixes #1060, #1218, #1868)")
EXTRA = (TRAIN_AT_EVAL,)
HOOKS = {"register_forward_hook", "register_forward_pre_hook", "addmm_"}


def _direct_calibrates(f) -> bool:
    m = f.module
    if any(e.kind == "call" and (e.data["name"] == "addmm_" or e.data["name"] in HOOKS and not _only_captures(m, f, e.node))
           for e in f.events):
        return True
    if f.qualname == "<module>":
        return False
    found = m.under(f, _hessian_statements(m))
    if f.name == "forward":  # a model's own forward records them only when told to: `+=` forms only
        found = [n for n in found if isinstance(n, ast.AugAssign)]
    return bool(found) or any(
        map(_einsum_moment, m.under(f, [e.node for e in f.events if e.kind == "call" and e.data["name"] == "einsum"])))


_COPIES = {"detach", "clone", "float", "contiguous", "cpu", "to"}


def _only_captures(m, f, call: ast.Call) -> bool:
    """The hook registered is a function of this module that only keeps what it is handed
    (`LAST["x"] = output`, `buf[0] = out.detach()`: a hidden-state capture for an auxiliary
    loss): nothing computed from the activations, so no statistics are gathered."""
    if not call.args or type(call.args[0]) is not ast.Name:
        return False
    hook = m.resolve(call.args[0], f)
    if hook is None:
        return False
    params = set(hook.params)

    def handed(v) -> bool:
        while True:
            if type(v) is ast.Call and type(v.func) is ast.Attribute and v.func.attr in _COPIES:
                v = v.func.value
            elif type(v) is ast.Subscript:
                v = v.value
            else:
                return type(v) is ast.Name and v.id in params

    for st in hook.node.body:
        if type(st) is ast.Expr and type(st.value) is ast.Constant:
            continue  # a docstring
        if type(st) is ast.Return and (st.value is None or handed(st.value)):
            continue
        if type(st) is ast.Assign and handed(st.value):
            continue
        return False
    return True


def _einsum_moment(call: ast.Call) -> bool:
    """`einsum("ni,nj->ij", a, a)`: the second moment of activations, a Hessian term."""
    if len(call.args) != 3 or not isinstance(call.args[0], ast.Constant) or not isinstance(call.args[0].value, str):
        return False
    spec = call.args[0].value.replace(" ", "")
    ins, _, out = spec.partition("->")
    parts = ins.split(",")
    return len(parts) == 2 and lb.src(call.args[1]) == lb.src(call.args[2]) and len(parts[0]) == len(parts[1]) == 2 \
        and parts[0][0] == parts[1][0] and out == parts[0][1] + parts[1][1]


def _accumulates_hessian(node) -> bool:
    """H += X^T X, or H = X^T X, or H[k] = H.get(k, 0) + X^T X: a Hessian (second-moment) term."""
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and isinstance(node.value, ast.BinOp) \
            and isinstance(node.value.op, ast.MatMult):
        left = lb.src(node.value.left)
        return left.endswith((".T", ".mT", ".t()")) or "transpose" in left
    if isinstance(node, ast.Assign):
        return any(type(n) is ast.BinOp and type(n.op) is ast.MatMult and _gram(n) for n in lb.walk(node.value))
    return False


def _squared(e) -> bool:
    """`x.pow(2)`, `x ** 2`, `x * x`, `x.square()`, `torch.square(x)`."""
    if type(e) is ast.BinOp:
        return (type(e.op) is ast.Pow and type(e.right) is ast.Constant and e.right.value == 2) or (
            type(e.op) is ast.Mult and lb.src(e.left) == lb.src(e.right))
    if type(e) is ast.Call and type(e.func) is ast.Attribute:
        return (e.func.attr == "pow" and len(e.args) == 1 and type(e.args[0]) is ast.Constant and e.args[0].value == 2) \
            or (e.func.attr == "square" and (not e.args or lb.dotted(e.func.value) in ("torch", "np", "numpy")))
    return False


def _diagonal_moment(node) -> bool:
    """`h[k] += x.pow(2).sum(0)`: squared activations summed over the rows, accumulated: the
    diagonal of X^T X (a Hessian-diagonal calibration)."""
    v = node.value
    if type(node) is not ast.AugAssign or type(node.op) is not ast.Add or type(v) is not ast.Call \
            or type(v.func) is not ast.Attribute or v.func.attr != "sum":
        return False
    over_rows = (len(v.args) == 1 and type(v.args[0]) is ast.Constant and v.args[0].value == 0) or any(
        k.arg in ("dim", "axis") and type(k.value) is ast.Constant and k.value.value == 0 for k in v.keywords)
    return over_rows and _squared(v.func.value)


def _hessian_statements(m) -> list:
    """The module's Hessian statements (`H += X.T @ X`, `H = X.T @ X`, the diagonal `h += x.pow(2).sum(0)`),
    found once: only assignments on the line of a `@` can be a full one."""
    def find(m):
        lines = sorted(b.lineno for b in m.nodes_of(ast.BinOp) if type(b.op) is ast.MatMult)
        return [n for n in m.nodes_of(ast.AugAssign) + m.nodes_of(ast.Assign)
                if (lines and m.may_hold(n, lines) and _accumulates_hessian(n) and not _iterated(m, n)) or _diagonal_moment(n)]
    return m.once("hessian statements", find)


def _iterated(m, node) -> bool:
    """`A = X.mT @ X` in a loop that rebinds X from itself (`X = a * X + B @ X`): an iteration on one
    matrix (Newton-Schulz orthogonalization in an optimizer), not moments of activations."""
    if type(node) is not ast.Assign:
        return False
    grams = [n for n in lb.walk(node.value) if type(n) is ast.BinOp and type(n.op) is ast.MatMult and _gram(n)]
    operands = {lb.src(g.right) for g in grams}
    for loop in m.nodes_of(ast.For) + m.nodes_of(ast.While):
        if loop.lineno < node.lineno <= loop.end_lineno:
            for st in lb.walk(loop):  # X rebound from itself (`X = a * X + X @ B`), not from new data (`x = model(w)`)
                if type(st) is ast.Assign and st is not node and {lb.src(t) for t in st.targets} & operands \
                        and operands & {lb.src(n) for n in lb.walk(st.value) if type(n) is ast.Name}:
                    return True
    return False


def _gram(n: ast.BinOp) -> bool:
    """`a.T @ a`: the same matrix, transposed on the left."""
    left = n.left
    if isinstance(left, ast.Attribute) and left.attr in ("T", "mT"):
        return lb.src(left.value) == lb.src(n.right)
    if isinstance(left, ast.Call) and isinstance(left.func, ast.Attribute) and left.func.attr in ("t", "transpose"):
        return lb.src(left.func.value) == lb.src(n.right)
    return False


def _wrapped_by(m, f, calibrators) -> bool:
    """f is decorated by a module decorator (`@track_inputs(select)`, `@gather_hessians`)
    whose wrapper registers the hooks and then calls f: what f feeds the model is what
    the hooks see."""
    for d in getattr(f.node, "decorator_list", ()):
        deco = m.resolve(d.func if type(d) is ast.Call else d, f)
        if deco is not None and any(q == deco.qualname or q.startswith(deco.qualname + ".") for q in calibrators):
            return True
    return False


def check(m):
    if not any(e.data["name"] in HOOKS or e.data["name"] == "einsum" for _, e in m.events("call")) \
            and not _hessian_statements(m):
        return []  # no function calibrates directly, so none does through a callee
    calibrators = {q for q, f in m.functions.items() if q != "<module>" and m._transitive(f, _direct_calibrates, ("calibrates",))}
    calibrators |= {q for q, f in m.functions.items() if _wrapped_by(m, f, calibrators)}
    out = []
    for f, ev in m.events("call"):
        if ev.data["callee"] not in calibrators:
            continue
        callee = m.functions[ev.data["callee"]]
        handed = set().union(*ev.data["args"], *ev.data["kws"].values())
        if "VAL" in handed and not _passes_on(m, callee, "VAL", calibrators):
            handed = handed - {"VAL"}  # `train_model(h, val_data)` evaluates on val; its calibration reads other data
        data = handed | _reads_inside(callee)
        if "VAL" in data:
            load = _chosen_return(m, f, ev, "VAL") if "VAL" in handed else _first_load(callee, "VAL")
            if load is not None:  # reported where the data enters, under the conditions it does so there
                where = m.functions[load.func]
                what = "returns validation tokens here" if load.kind == "return" else "loads validation data here"
                finding = raw(RULE, where, load.node, load.ctx, "error", "high",
                              f"{where.name}() {what} for the calibration statistics of {callee.name}()")
                if all(o.line != finding.line or o.rule != RULE.id for o in out):
                    out.append(finding)
                continue
            bound = _guarded_binding(f, ev, "VAL") if "VAL" in handed else None
            node, ctx = (bound.value, ctx_of(f, bound)) if bound is not None else (ev.node, ev.ctx)
            entry = _dispatched_entry(m, f, ev, "VAL") if bound is None and "VAL" in handed else None
            if entry is not None:  # `SOURCES[args.calib](n)`: the entry that takes val rows, run only under its key
                (home, node), ctx = entry, ctx_of(*entry)
                if home is not f:
                    out.append(raw(RULE, home, node, ctx, "error", "high", f"{home.name}() takes its rows from "
                                   f"validation data here, for the calibration statistics of {callee.name}()"))
                    continue
            # (`if src == "holdout": calib = [val[...] ...] else: calib = generate(...)`: where the val rows are taken)
            out.append(raw(RULE, f, node, ctx, "error", "high",
                           f"{ev.data['name']}() collects calibration statistics from validation data"
                           + (f" (the rows bound here, line {ev.line})" if bound is not None else "")))
        elif "TRAIN" in data and not _in_training_step(f, ev):
            if _unpaid(m):
                out.append(raw(TRAIN_AT_EVAL, f, ev.node, _unless_reserved(m, ev.ctx), "error", "medium",
                               f"{ev.data['name']}() reads training data for calibration, and no time is reserved for it "
                               "inside the training budget"))
    out += _hooked_then_fed(m, calibrators)
    return out


def _reads_inside(f) -> set:
    """Data splits a calibrating function loads itself (`shard = next(train_batches())`
    inside the Hessian pass), not through its parameters."""
    if not _direct_calibrates(f) or any(e.kind in ("backward", "ce") for e in f.events):
        return set()  # a routine that also trains or scores (a whole `main`) loads data for those
    m = f.module
    handed = set(f.params) | {t.id for loop in m.under(f, m.nodes_of(ast.For)) if type(loop.iter) is ast.Name
                              and loop.iter.id in f.params for t in lb.walk(loop.target) if type(t) is ast.Name}
    own = [v for k, v in f.env.items() if k not in handed]  # (`for b in batches`: b is what callers hand)
    # (what some caller hands, `x = embed(rows)` of a parameter, is not loaded here; a split named by a
    # parameter's default, `pattern="fineweb_val_*.bin"`, is)
    given = set().union(*[v - f.defaults.get(p, frozenset()) for p, v in f.param_labels.items()])
    return (set().union(*own) & lb.DATA) - given if own else set()


def _in_training_step(f, ev) -> bool:
    """The call sits in a loop that also takes backward passes (a covariance penalty of a
    training loss, `cov = z.T @ z`): part of training, not statistics gathered after it."""
    return bool(ev.ctx.loops) and any(b.kind == "backward" and b.ctx.loops[:1] == ev.ctx.loops[:1] for b in f.events)


def _passes_on(m, f, label: str, calibrators: set[str], seen=None) -> bool:
    """Data of this split handed to f reaches calibration: f calibrates itself, or hands
    the data on to a function that does (a whole pipeline handed val tokens for its
    evaluation calibrates on what it loads elsewhere)."""
    seen = set() if seen is None else seen
    if f.qualname in seen:
        return False
    seen.add(f.qualname)
    if _direct_calibrates(f) or _wrapped_by(m, f, calibrators):
        return True  # (a decorated function feeds the hooks its decorator registered)
    return any(e.kind == "call" and e.data["callee"] in calibrators
               and label in e.data["recv"].union(*e.data["args"], *e.data["kws"].values())
               and _passes_on(m, m.functions[e.data["callee"]], label, calibrators, seen) for e in f.events)


def _chosen_return(m, f, ev, label: str):
    """`collect(model, windows(world_size, loader, val))` (or a name bound once to such a
    call) where windows() returns the val tokens only under a condition (`if world_size ==
    1: return val[...]`): that return, so
    the condition decides the finding's reach. None when the data is handed over plainly."""
    found = []
    for a in [*ev.node.args, *(k.value for k in ev.node.keywords)]:
        while type(a) is ast.Call and type(a.func) is ast.Attribute and a.func.attr in _SPLITS:
            a = a.func.value  # `collect(model, rows.split(8))`: the rows themselves
        if type(a) is ast.Name:
            a = f.binding(a.id)  # `calib = calibration_set(src, val)`, then `collect(model, calib)`
        if type(a) is ast.Call:
            chosen = _chosen_override(m, f, a, label)
            if chosen:  # `provider.batches(model)` where only one provider class loads the split
                found += chosen
                continue
        g = m.resolve(a.func, f) if type(a) is ast.Call else None
        if g is None or label not in g.ret:
            continue
        rets = [e for e in g.events if e.kind == "return" and label in e.data["labels"]]
        entries = _dispatched(g, rets, label)
        if entries:  # `return providers[source]()`: the table's entries that load the split, under their keys
            found += entries
            continue
        if not rets or not all(e.ctx.guards for e in rets) or not _returns_other(m, g, label):
            return None  # (a loader of the split that only checks its input is no choice of data)
        found += [_At(e, g.qualname) for e in rets]
    return found[0] if found else None


def _guarded_binding(f, ev, label: str):
    """The assignment that binds an argument of the call to data of the split, when every such
    assignment in f is under a condition the call itself is not under (a choice of calibration
    source made by a branch); else None."""
    names = {a.id for a in [*ev.node.args, *(k.value for k in ev.node.keywords)] if type(a) is ast.Name}
    found = [st for st in f.module.under(f, f.module.nodes_of(ast.Assign))
             if any(type(t) is ast.Name and t.id in names for t in st.targets) and label in f.labels_of(st.value)]
    if not found or any(len(ctx_of(f, st).guards) <= len(ev.ctx.guards) for st in found):
        return None
    return found[0]


def _dispatched_entry(m, f, ev, label: str):
    """(function, body) of the one lambda of a dispatch table that gives the call its data of
    the split (`calib = SOURCES[args.calib](n)` with `{"train": lambda n: ..., "heldout": lambda
    n: val[...]}`), when the table's other entries give other data; also inside a helper whose
    call is handed over (`collect(model, calibration_rows(args))`, the table read there); else None."""
    for a in [*ev.node.args, *(k.value for k in ev.node.keywords)]:
        found = _entry_made(m, f, f.binding(a.id) if type(a) is ast.Name else a, label, 0)
        if found is not None:
            return found
    return None


def _entry_made(m, f, made, label: str, depth: int):
    if type(made) is not ast.Call:
        return None
    if type(made.func) is ast.Subscript and type(made.func.slice) is not ast.Constant:
        entries = [v.body for _, v in dispatch_items(f, made.func) or () if type(v) is ast.Lambda]
        holding = [b for b in entries if label in f.labels_of(b)]
        return (f, holding[0]) if len(holding) == 1 and len(entries) > 1 else None
    g = m.resolve(made.func, f) if depth < 2 else None
    for e in g.events if g is not None else ():
        found = _entry_made(m, g, e.node, label, depth + 1) if e.kind == "call" and type(e.node.func) is ast.Subscript else None
        if found is not None:
            return found
    return None


def _returns_other(m, g, label: str) -> bool:
    """g also returns something without that split (`return noise_batches(...)`)."""
    return any(r.value is not None and label not in g.labels_of(r.value) for r in m.under(g, m.nodes_of(ast.Return)))


def _chosen_override(m, f, call: ast.Call, label: str) -> list:
    """The returns of the split in the methods a call may reach when only some of them return it
    (`provider.batches(model)`, providers of several classes, one reading val): reported there,
    each as reached as its class is built."""
    ev = next((e for e in f.events if e.kind == "call" and e.node is call), None)
    targets = [m.functions[q] for q in m.targets(ev)] if ev is not None else []
    if len(targets) < 2:
        return []
    holding = [g for g in targets if label in g.ret]
    if not holding or len(holding) == len([g for g in targets if g.ret or m.under(g, m.nodes_of(ast.Return))]):
        return []
    return [_At(e, g.qualname) for g in holding for e in g.events if e.kind == "return" and label in e.data["labels"]]


def _dispatched(g, rets, label: str) -> list:
    """For `return table[key]()` over a dict literal of lambdas, some of which load the split and
    some not: those that do (their key decides; see `function_values.entry_guards`)."""
    out, other = [], False
    for e in rets:
        v = e.node.value if type(e.node) is ast.Return else e.node
        table = dispatch_table(g, v.func) if type(v) is ast.Call else None
        if table is None:
            return []
        for lam in table.values:
            if type(lam) is ast.Lambda and label in g.labels_of(lam.body):
                out.append(_At(e, g.qualname, lam.body))
            else:
                other = True
    return out if other else []


_SPLITS = lb.PASS_METHODS | {"split", "chunk", "unbind"}


class _At:
    """An event (or a node inside it) and the function it happened in."""

    def __init__(self, ev, func: str, node=None):
        self.kind, self.node, self.ctx, self.func = ev.kind, node or ev.node, ev.ctx, func


def _first_load(f, label: str):
    """The first call in f handed data of this split whose result f keeps
    (`tokens = load_split("val")[:n]`): where a routine that loads its own calibration
    data reads it."""
    m = f.module
    stored = [st for st in m.under(f, m.nodes_of(ast.Assign)) if any(
        type(t) is ast.Name and label in f.env.get(t.id, lb.EMPTY) for t in st.targets)]
    spans = [(st.value.lineno, st.value.end_lineno) for st in stored]
    e = next((e for e in f.events if e.kind == "call" and any(a <= e.line <= b for a, b in spans)
              and label in e.data["recv"].union(*e.data["args"], *e.data["kws"].values())), None)
    return _At(e, f.qualname) if e is not None else None


_LOADS = lb.BLOB_FUNCS | lb.PASS_METHODS | {"from_numpy", "as_tensor", "tensor", "array", "asarray"}  # reading data, not running a model


def _unpaid(m) -> bool:
    """The script trains and its training budget reserves no time for what runs after the loop."""
    return m.once("training budget unpaid", lambda m: not has_reserve(m) and any(
        e.kind == "backward" for g in m.functions.values() for e in g.events))


def _unless_reserved(m, ctx):
    """The context, less the launches that set a reserve whose default is 0 (`bud = cap -
    args.res` with `GPTQ_RESERVE_SECONDS` defaulting to 0): reached where each is still 0."""
    zeros = m.once("zero reserves", zero_reserves)
    return Ctx(ctx.guards + tuple((z, False) for z in zeros[:1]), ctx.loops, ctx.nograd) if zeros else ctx


def _hooked_then_fed(m, calibrators) -> list:
    """`col = Collector(model)` (a class of this file whose methods register forward
    hooks), then `model(x_val)` later in the same function: the hooks see validation
    activations although no calibrator is ever handed the data."""
    def registers(f):
        return any(e.kind == "call" and e.data["name"] in ("register_forward_hook", "register_forward_pre_hook") for e in f.events)

    def accumulates(f):  # the hooks gather second moments (addmm_, H += X^T X), not, say, LoRA deltas
        return any(e.kind == "call" and e.data["name"] == "addmm_" for e in f.events) or any(
            m.under(f, _hessian_statements(m)))

    classes = {q.split(".")[0] for q in m.functions if "." in q}
    members = {c: [f for q, f in m.functions.items() if q.startswith(c + ".")] for c in classes}
    hooking = {c for c, fs in members.items() if any(map(registers, fs)) and any(map(accumulates, fs))}
    out = []
    for f in m.functions.values():
        starts = [e for e in f.events if e.kind == "call" and e.data["name"] in hooking and e.data["callee"] is None]
        if not starts:
            continue
        start = starts[0]
        holders = {t.id for st in m.under(f, m.nodes_of(ast.Assign)) if st.value is start.node
                   for t in st.targets if isinstance(t, ast.Name)}
        for e in f.events[f.events.index(start) + 1:]:  # in evaluation order: `Collector(m).feed(val)` on one line too
            if e.kind != "call":
                continue
            if isinstance(e.node.func, ast.Attribute) and lb.dotted(e.node.func.value) in holders:
                break  # col.close(), col.finish(): the collector is done, later calls are not calibration
            if e.data["callee"] in calibrators or e.data["name"] in hooking or e.data["name"] in _LOADS:
                continue
            fed = set().union(*e.data["args"], *e.data["kws"].values())
            if "VAL" in fed:
                # the rows handed in by a caller that binds them to val in one branch of a choice of source
                # (`if cfg.calib == "ar": seqs = generate(...) else: seqs = val[:n]`; `capture(model, seqs)`): there
                chosen = [(g, b) for g, site in m.call_sites(f) if any("VAL" in a for a in site.data["args"])
                          and (b := _guarded_binding(g, site, "VAL")) is not None]
                if chosen:
                    g, b = chosen[0]
                    out.append(raw(RULE, g, b.value, ctx_of(g, b), "error", "medium",
                                   f"the rows bound here are validation data, and {f.name}() runs the model on them while "
                                   f"the calibration hooks of {start.data['name']} are registered"))
                    break
                out.append(raw(RULE, f, e.node, e.ctx, "error", "medium",
                               f"{e.data['name']}() runs on validation data while the calibration hooks of "
                               f"{start.data['name']} are registered"))
                break
            if "TRAIN" in fed and not _in_training_step(f, e) and _unpaid(m):
                out.append(raw(TRAIN_AT_EVAL, f, e.node, _unless_reserved(m, e.ctx), "error", "medium",
                               f"{e.data['name']}() runs on training data while the calibration hooks of "
                               f"{start.data['name']} are registered, and no time is reserved for it inside the "
                               "training budget"))
                break
    return out
