"""Future-token peeks: choices made after seeing the target (RULES.md §3 #659, C1 of §2).

An "oracle gate" keeps the smaller of two losses of the same token (`if new_nll <
old_nll: nll = new_nll`, `minimum(nll_a, nll_b)`, `where(a < b, a, b)`,
`stack([nll_a, nll_b]).amin(0)`; or the larger of two target probabilities,
`maximum(p_a, p_b)`, which is also no distribution; or the smallest of a tensor of
per-setting losses added to the total, `total += per_temperature.min()`): the choice
depends on x_t, so the reported loss is a min over predictors chosen by the answer.
Both operands must carry the target's probability or loss (data flow, not names).
A mixing weight computed from such a comparison (`w = (p_b > p_a) * 0.9`, then
`(1 - w) * p_a + w * p_b`) is the same choice.
A per-token buffer updated window by window with the minimum of the buffer and each window's
whole span keeps every token's best score over the overlapping windows that score it: a
rescoring (`best-of-windows`, two_pass_rescore); a window writing only its own new tokens
stores each token once.
Legal counterpart: gating on model entropy or on anything computed from the prefix; a
running best of whole-pass losses while training (`best = min(best, val_loss)`).
"""

from __future__ import annotations

import ast

from auditors import dispatch
from auditors import labels as lb
from auditors.evidence import normalizes_own_entry, parameter_for
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("oracle-gate", "future_token_peek", "choice between losses made after seeing the target",
                "RULES.md §3 (#659 oracle gate), §2 C1")
BEST_OF_WINDOWS = RuleInfo("best-of-windows", "two_pass_rescore", "each token's best loss over overlapping windows kept",
                           "RULES.md §5, §2 C4 (each token scored once)")
EXTRA = (BEST_OF_WINDOWS,)


def _window_minimum(m, f, node):
    """`buf[pos] = minimum(buf[pos], nll[r, a:b])`, a per-token buffer updated window by
    window: "overlap" when each window writes its whole span (`a` is 0 or left out), so a
    token scored by several windows keeps its best loss; "disjoint" when each writes from an
    offset inside the window (`a = lo - ws`, its own new tokens: each token written once, the
    minimum with the buffer's +inf a plain store); None for any other minimum."""
    target = next((a.targets[0] for a in m.under(f, m.nodes_of(ast.Assign)) if a.value is node and len(a.targets) == 1
                   and type(a.targets[0]) is ast.Subscript), None)
    if target is None or len(node.args) != 2:
        return None
    others = [a for a in node.args if lb.src(a) != lb.src(target)]
    if len(others) != 1 or type(others[0]) is not ast.Subscript:
        return None
    index = others[0].slice
    spans = [x for x in (index.elts if type(index) is ast.Tuple else [index]) if type(x) is ast.Slice]
    if not spans:
        return None
    lower = spans[-1].lower
    if type(lower) is ast.Name:
        lower = f.binding(lower.id) if f.binding(lower.id) is not None else lower
    return "overlap" if lower is None or (type(lower) is ast.Constant and lower.value == 0) else "disjoint"


def _loss(f, node) -> bool:
    """A target's loss or probability on evaluation data (not a search over training data)."""
    labels = f.labels_of(node)
    return "TGTP" in labels and not ("TRAIN" in labels and "VAL" not in labels)


_PER_TOKEN = ("log_softmax", "softmax", "gather", "log", "log1p", "exp")


def _per_token(m, f, depth: int) -> bool:
    """f computes per-token losses or probabilities, or is handed the target losses of a
    function that does (a helper `select(nll, cand)` called from the scoring loop)."""
    def direct(g):
        return any(e.kind == "ce" or (e.kind == "call" and e.data["name"] in _PER_TOKEN) for e in g.events)
    if direct(f):
        return True
    if depth >= 3:
        return False
    handed = m.once("handed target losses", _handed_target_losses)
    return any(m.scores(g) and _per_token(m, g, depth + 1) for g in handed.get(f.qualname, ()))


def _handed_target_losses(m) -> dict[str, list]:
    """Callee -> the functions that call it with a target's loss or probability."""
    out: dict[str, list] = {}
    for g, e in m.events("call"):
        if any("TGTP" in a for a in (*e.data["args"], *e.data["kws"].values())):
            for q in m.targets(e):
                out.setdefault(q, []).append(g)
    return out


def check(m):
    out = []
    running = {id(a.value) for a in m.nodes_of(ast.Assign) if _running_best(a)}
    for f in m.functions.values():
        per_token = _per_token(m, f, 0)
        for ev in f.events:
            if ev.kind == "call" and ev.data["name"] == "reduce" and per_token and _folds_losses(f, ev.node):
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                               f"folds the target losses of several predictors with `{lb.src(ev.node.args[0])}` "
                               "(each token keeps its best): an oracle gate"))
                continue
            if ev.kind != "call" or ev.data["name"] not in ("minimum", "fmin", "where", "min", "amin", "nanmin",
                                                           "maximum", "fmax"):
                continue
            node = ev.node
            if id(node) in running or any(k.arg == "key" for k in node.keywords):
                continue  # `best = min(best, loss)`: a running best over time; `min(a, b, key=...)` picks one whole value
            args = node.args
            if ev.data["name"] in ("maximum", "fmax") and _stabilizer(m, f, node):
                continue  # m = maximum(a, b); m + log1p(exp(-|a - b|)): log-sum-exp, a proper mixture
            stacked = _stacked(node)
            if stacked is None and _stacks_vararg(f, node):
                site = _handed_losses(m, f)
                if site is not None:
                    out.append(raw(RULE, f, node, ev.ctx, "error", "medium",
                                   f"keeps the smallest per token of the target losses handed to it (line {site.line}): "
                                   "an oracle gate"))
                continue
            if stacked is None and not per_token:
                continue  # per-token losses are computed here; whole-pass results returned by calls are not
            if ev.data["name"] == "where" and len(args) == 3:
                test = f.binding(args[0].id) if type(args[0]) is ast.Name else args[0]  # (`use = a < b; where(use, a, b)`)
                if not isinstance(test, ast.Compare) or (test is not args[0] and not all(_loss(f, a) for a in args[1:])):
                    continue  # a mask from elsewhere (`uncertain = entropy >= thr`), or one choosing weights, not losses
                if all(type(a) in (ast.Constant, ast.UnaryOp) for a in args[1:]):
                    continue  # `where(nll > nll.median(), 2.0, 1.0)`: weights from one predictor's losses, no choice between two
                pair = [test.left, test.comparators[0]]
            elif stacked is not None:
                pair = stacked  # stack([nll_a, nll_b]).amin(0): the smaller of the two per token
            else:
                pair = args[:2] if len(args) >= 2 else []
            if len(pair) == 2 and all(_loss(f, a) for a in pair):
                windows = _window_minimum(m, f, node)
                if windows == "overlap":
                    out.append(raw(BEST_OF_WINDOWS, f, node, ev.ctx, "error", "medium",
                                   "keeps, for each token, the smallest of its losses over every window that scores it "
                                   "(each window writes its whole span into the per-token buffer): tokens are scored "
                                   "many times and the best score is kept"))
                elif windows is None:
                    out.append(raw(RULE, f, node, ev.ctx, "error", "medium", "keeps the better of two target losses per token (oracle gate)"))
        for node in m.under(f, m.nodes_of(ast.If)) if f.qualname != "<module>" and per_token else ():
            pair = _ordered_pair(node.test)
            if pair and all(_loss(f, x) for x in pair):
                stores = [s for s in node.body if isinstance(s, (ast.Assign, ast.AugAssign))]
                written = {lb.src(t) for s in stores for t in (s.targets if isinstance(s, ast.Assign) else [s.target])}
                values = {lb.src(s.value) for s in stores}
                if any(lb.src(x) in written or lb.src(x) in values for x in pair) and not _running_best_if(m, f, node, pair, written):
                    ctx = next((e.ctx for e in f.events if node.lineno <= e.line <= node.end_lineno), None)
                    out.append(raw(RULE, f, node, ctx, "error", "high", "replaces a token's loss with another only when it is smaller (oracle gate)"))
        for node in m.under(f, m.nodes_of(ast.IfExp)) if f.qualname != "<module>" and per_token else ():
            pair = _ordered_pair(node.test)  # `a if a < b else b`: the smaller loss, picked by the answer
            if pair and all(_loss(f, x) for x in pair) and {lb.src(node.body), lb.src(node.orelse)} == {lb.src(x) for x in pair}:
                ctx = next((e.ctx for e in f.events if node.lineno <= e.line <= node.end_lineno), None)
                out.append(raw(RULE, f, node, ctx, "error", "high", "keeps the smaller of two target losses (oracle gate)"))
        if f.qualname != "<module>" and per_token:
            out += _weighted_by_comparison(m, f) or _gated_by_target(m, f) or _least_accumulated(m, f) or _picked_by_loss(m, f)
        if f.qualname != "<module>":
            out += _weights_from_target_reads(m, f) + _least_in_lambda(m, f)
    return out


_NORMALIZING = ("softmax", "normalize")


def _least_in_lambda(m, f) -> list:
    """`combine = COMBINERS[mode]` holding `lambda a, b: torch.stack((a, b)).amin(0)`, then
    `combine(nll_model, nll_mix)`: the smaller of two target losses per token, kept by a
    lambda of a table (under the key that picks it) or bound to a name."""
    out = []
    for ev in f.events:
        node = ev.node
        if ev.kind != "call" or len(node.args) < 2 or type(node.func) is not ast.Name:
            continue
        value = f.binding(node.func.id)
        if type(value) is ast.Lambda:
            picks = [(None, value)]
        elif type(value) is ast.Subscript and type(value.slice) is not ast.Constant:
            picks = [(k, v) for k, v in dispatch.dispatch_items(f, value) or () if type(v) is ast.Lambda]
        else:
            continue
        least = [(key, lam) for key, lam in picks if (pair := _least_of_parameters(lam))
                 and max(pair) < len(node.args) and all(_loss(f, node.args[i]) for i in pair)]
        if not least:
            continue
        lam = least[0][1]
        found = raw(RULE, f, node, ev.ctx, "error", "medium",
                    f"keeps the smaller of two target losses per token (`{lb.src(lam.body)}`, line {lam.lineno}): "
                    "an oracle gate")
        keys = [key for key, _ in least if key is not None]
        if keys:  # (the entries run where the key picks them)
            found.guards.append([f"{lb.src(value.slice)} == {keys[0]!r}" if len(keys) == 1 else
                                 f"{lb.src(value.slice)} in {tuple(keys)!r}", True])
        out.append(found)
    return out


def _least_of_parameters(lam: ast.Lambda) -> tuple | None:
    """The positions of the two parameters whose per-token minimum the lambda returns
    (`minimum(a, b)`, `stack((a, b)).amin(0)`, `torch.min(torch.stack([a, b]), 0).values`)."""
    params = [a.arg for a in lam.args.args]
    for n in lb.walk(lam.body):
        if type(n) is not ast.Call or lb.call_name(n.func) not in ("minimum", "fmin", "amin", "min", "nanmin"):
            continue
        held = _stacked(n) or (n.args[:2] if lb.call_name(n.func) in ("minimum", "fmin") else [])
        names = [x.id for x in held if type(x) is ast.Name]
        if len(names) == 2 == len(held) and all(x in params for x in names) and names[0] != names[1]:
            return params.index(names[0]), params.index(names[1])
    return None


def _weights_from_target_reads(m, f) -> list:
    """`w = softmax(stack([lp.gather(-1, y) for lp in experts]))`, then the experts mixed with
    w: mixture weights computed from each expert's probability of the current target (also
    by a method returning that softmax), so the mixture leans toward whichever expert the
    answer favours. Weights from the prefix (entropy, losses of tokens already scored) are legal."""
    for a in m.under(f, m.nodes_of(ast.Assign)):
        if len(a.targets) != 1 or type(a.targets[0]) is not ast.Name or not _target_softmax(m, f, a.value):
            continue
        w = a.targets[0].id
        used = [b for b in m.under(f, m.nodes_of(ast.BinOp)) if type(b.op) in (ast.Add, ast.Mult) and b.lineno > a.lineno
                and any(type(n) is ast.Name and n.id == w for n in lb.walk(b))
                and f.labels_of(b.left if any(type(n) is ast.Name and n.id == w for n in lb.walk(b.right)) else b.right)
                & (lb.DATA | {"DIST", "CAND"})]  # (with the experts' predictions)
        used += [c for c in m.under(f, m.nodes_of(ast.Call)) if c.lineno > a.lineno  # `mixer.mix(lps, w)`
                 and any(type(x) is ast.Name and x.id == w for x in c.args)
                 and any(f.labels_of(x) & {"DIST"} for x in c.args if not (type(x) is ast.Name and x.id == w))]
        if used:
            return [raw(RULE, f, a, guards_of(f, a.lineno), "error", "medium",
                        f"mixture weights `{w}` are computed from each expert's probability of the target it then scores "
                        f"(mixed at line {used[0].lineno}): the mixture is chosen by the answer")]
    return []


def _target_softmax(m, f, e, depth: int = 0) -> bool:
    """e is a softmax (normalization) of values read at the target in this function: the
    target's log-probability under each expert (`lp.gather(-1, y)`), or a call of a module
    function returning one."""
    if type(e) is not ast.Call or depth > 1:
        return False
    if lb.call_name(e.func) in _NORMALIZING and e.args:
        return _reads_target(f, e.args[0])
    g = m.resolve(e.func, f)
    if g is None or g is f:
        return False
    if any(_reads_target(f, a) and (q := parameter_for(g, e, i)) is not None and normalizes_own_entry(m, g, q)
           for i, a in enumerate(e.args)):
        return True  # `w = mixer.weights(obs)` with obs read at the target, normalized with each position's own entry
    return any(r.value is not None and _target_softmax(m, g, r.value, depth + 1) for r in m.under(g, m.nodes_of(ast.Return)))


def _reads_target(f, e, depth: int = 0) -> bool:
    for n in lb.walk(e):
        if type(n) is ast.Call and lb.call_name(n.func) in ("gather", "take_along_dim") and type(n.func) is ast.Attribute \
                and any("TGT" in f.labels_of(x) for x in n.args):
            return True
        if type(n) is ast.Name and depth < 3:
            bound = f.binding(n.id)
            if bound is not None and _reads_target(f, bound, depth + 1):
                return True
    return False


def _picked_by_loss(m, f) -> list:
    """`pick = nll_k.argmin(0)`, then `nll_k.gather(0, pick[None])`: along an axis of several
    predictors' target losses (temperatures, experts), each position's best is picked and
    read back: the choice is made by x_t."""
    for a in m.under(f, m.nodes_of(ast.Assign)):
        c = a.value
        if type(c) is not ast.Call or lb.call_name(c.func) not in ("argmin", "argmax") or len(a.targets) != 1 \
                or type(a.targets[0]) is not ast.Name:
            continue
        source = c.func.value if type(c.func) is ast.Attribute and lb.dotted(c.func.value) not in ("np", "numpy", "torch") \
            else (c.args[0] if c.args else None)
        axis = (c.args[0:] if type(c.func) is ast.Attribute and source is c.func.value else c.args[1:]) or [
            k.value for k in c.keywords if k.arg in ("dim", "axis")]
        if source is None or not axis or not _loss(f, source):
            continue  # (`argmin(losses)` over whole passes: a pick among settings, the best-of-passes rule's)
        name = a.targets[0].id
        for use in m.under(f, m.nodes_of(ast.Call)):
            if lb.call_name(use.func) in ("gather", "take_along_axis") and use.lineno >= a.lineno and any(
                    type(n) is ast.Name and n.id == name for arg in use.args for n in lb.walk(arg)):
                return [raw(RULE, f, c, guards_of(f, c.lineno), "error", "medium",
                            f"picks, for each position, the predictor whose loss on the target is smallest "
                            f"(`{lb.src(c)}`) and scores that one: the choice is made by the answer (oracle gate)")]
    return []


_LEAST = ("min", "amin", "nanmin")


def _least_accumulated(m, f) -> list:
    """`total += per_setting.min()`: the smallest of a tensor of losses (one per temperature,
    seed or predictor, scored on the same tokens) added to the reported total: the setting
    is chosen per chunk by the answers. (One operand only: `minimum(nll, cap)` clips.)"""
    for st in m.under(f, m.nodes_of(ast.AugAssign)):
        if type(st.op) is not ast.Add:
            continue
        for c in lb.walk(st.value):
            if type(c) is not ast.Call or lb.call_name(c.func) not in _LEAST or c.keywords and not all(
                    k.arg in ("dim", "axis", "keepdim", "keepdims") for k in c.keywords):
                continue
            method = type(c.func) is ast.Attribute and lb.dotted(c.func.value) not in ("torch", "np", "numpy")
            held = c.func.value if method else (c.args[0] if len(c.args) >= 1 else None)
            if held is None or (method and any(type(a) is not ast.Constant for a in c.args)) \
                    or (not method and any(type(a) is not ast.Constant for a in c.args[1:])):
                continue  # (`torch.min(a, b)`: two tensors, elementwise)
            if _loss(f, held):
                ctx = next((e.ctx for e in f.events if st.lineno <= e.line <= st.end_lineno), None)
                return [raw(RULE, f, st, ctx, "error", "medium",
                            f"adds the smallest of the losses in `{lb.src(held)}` to the total: the setting scored best "
                            "on these very tokens is chosen after seeing them (an oracle over settings)")]
    return []


def _weighted_by_comparison(m, f) -> list:
    """`w = (p_b > p_a).float() * 0.9 + 0.05`, then `(1 - w) * p_a + w * p_b`: a mixing
    weight set by comparing the two predictors' probabilities of the target."""
    out = []
    compares = [c for c in m.under(f, m.nodes_of(ast.Compare)) if _ordered_pair(c) and all(_loss(f, x) for x in _ordered_pair(c))
                and not _derived(f, *_ordered_pair(c))]
    if not compares:
        return out
    products = [b for b in m.under(f, m.nodes_of(ast.BinOp)) if isinstance(b.op, ast.Mult)]
    for st in m.under(f, m.nodes_of(ast.Assign)):
        inside = [c for c in compares if st.lineno <= c.lineno <= st.end_lineno and any(n is c for n in lb.walk(st.value))]
        if not inside or len(st.targets) != 1 or not isinstance(st.targets[0], ast.Name):
            continue
        weight, pair = st.targets[0].id, {lb.src(x) for x in _ordered_pair(inside[0])}
        for b in products:
            sides = [{lb.src(n) for n in lb.walk(side) if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript))} for side in (b.left, b.right)]
            if any(weight in sides[i] and sides[1 - i] & pair for i in (0, 1)):
                ctx = next((e.ctx for e in f.events if b.lineno <= e.line <= b.end_lineno), None)
                out.append(raw(RULE, f, b, ctx, "error", "medium",
                               f"mixes with a weight `{weight}` set by comparing the target's probabilities under two "
                               "predictors (oracle gate)"))
                return out
    return out


def _gated_by_target(m, f) -> list:
    """`a = where(p_tgt < thr, hi, 0)`, then `(1 - a) * p_model + a * q` (or the same mix of
    the target's two probabilities): a distribution weighted by a switch that the target's
    own probability set (TGATE labels), so the mixture scored for each token was chosen
    after looking at that token."""
    if not any("TGATE" in v for v in (*f.env.values(), *f.param_labels.values())) \
            and not any(e.kind == "call" and e.data["callee"] and "TGATE" in m.functions[e.data["callee"]].ret for e in f.events):
        return []  # no switch of that kind is held here (checked before evaluating each product)
    binops = m.under(f, m.nodes_of(ast.BinOp))
    mixed = {id(x) for b in binops if type(b.op) is ast.Add and type(b.left) is ast.BinOp and type(b.right) is ast.BinOp
             and type(b.left.op) is ast.Mult and type(b.right.op) is ast.Mult for x in (b.left, b.right)}
    for b in binops:
        if type(b.op) is not ast.Mult:
            continue
        sides = [f.labels_of(b.left), f.labels_of(b.right)]
        for i in (0, 1):
            # a distribution, or the target's probability when it is one term of a weighted sum `(1 - a) * p + a * q`
            # (a gated target loss alone, `loss * mask`, is only masked)
            weighted = "DIST" in sides[1 - i] or ("TGTP" in sides[1 - i] and id(b) in mixed)
            if "TGATE" in sides[i] and weighted and "TGATE" not in sides[1 - i]:
                ctx = next((e.ctx for e in f.events if b.lineno <= e.line <= b.end_lineno), None)
                return [raw(RULE, f, b, ctx, "error", "medium",
                            "weights a predictive distribution by a switch set from the target's own probability "
                            "(a gate that looks at the answer)")]
    return []


def _stabilizer(m, f, call: ast.Call) -> bool:
    """The maximum is assigned to a name that is then subtracted from the operands or
    added to a logarithm: the shift of a log-sum-exp, not a choice."""
    names = {t.id for a in m.under(f, m.nodes_of(ast.Assign)) if a.value is call for t in a.targets if isinstance(t, ast.Name)}
    for b in m.under(f, m.nodes_of(ast.BinOp)):
        if isinstance(b.op, ast.Sub) and isinstance(b.right, ast.Name) and b.right.id in names:
            return True
        if isinstance(b.op, ast.Add) and any(isinstance(x, ast.Name) and x.id in names for x in (b.left, b.right)) \
                and any(isinstance(x, ast.Call) and lb.call_name(x.func) in ("log", "log1p", "logaddexp") for x in (b.left, b.right)):
            return True
    return False


def _stacked_rows(node: ast.Call) -> ast.expr | None:
    """What `stack(rows).min(0)` / `torch.amin(stack(rows), 0)` takes the minimum over: `rows`."""
    if lb.call_name(node.func) not in ("min", "amin", "nanmin"):
        return None
    inner = node.func.value if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call) else \
        (node.args[0] if node.args and isinstance(node.args[0], ast.Call) else None)
    if inner is None or lb.call_name(inner.func) not in ("stack", "cat", "vstack", "concatenate") or not inner.args:
        return None
    return inner.args[0]


_ELEMENTWISE_BEST = frozenset({"minimum", "fmin", "maximum", "fmax"})


def _folds_losses(f, node: ast.Call) -> bool:
    """`reduce(torch.minimum, (nll_a, nll_b))`, `reduce(np.minimum, map(nll_of, (p_a, p_b)))`,
    `reduce(torch.minimum, list(map(lambda t: ce(z / t, y), temps)))`: the elementwise best of
    several target losses (or probabilities), folded pairwise."""
    if len(node.args) < 2 or lb.call_name(node.args[0]) not in _ELEMENTWISE_BEST:
        return False
    items = node.args[1]
    if type(items) is ast.Name and f.binding(items.id) is not None:
        items = f.binding(items.id)
    while type(items) is ast.Call and lb.call_name(items.func) in ("list", "tuple") and len(items.args) == 1:
        items = items.args[0]  # `cands = list(map(...))`
    if type(items) is ast.Call and lb.call_name(items.func) == "map" and len(items.args) == 2:
        rows = items.args[1]  # each row through the same function: the map's labels are the rows' losses
        return not (isinstance(rows, (ast.Tuple, ast.List)) and len(rows.elts) < 2) and _loss(f, items)
    return isinstance(items, (ast.Tuple, ast.List)) and len(items.elts) >= 2 and all(_loss(f, x) for x in items.elts)


def _stacked(node: ast.Call) -> list | None:
    """The first two rows of `stack([a, b, ...]).min(0)` / `torch.amin(stack([a, b]), 0)`."""
    rows = _stacked_rows(node)
    return list(rows.elts[:2]) if isinstance(rows, (ast.List, ast.Tuple)) and len(rows.elts) >= 2 else None


def _stacks_vararg(f, node: ast.Call) -> bool:
    """`def best_of(*scores): return torch.stack(scores).amin(0)`: the minimum over the
    rows of the function's own variadic parameter."""
    vararg = getattr(getattr(f.node, "args", None), "vararg", None)
    rows = _stacked_rows(node) if vararg is not None else None
    return type(rows) is ast.Name and rows.id == vararg.arg


def _handed_losses(m, f):
    """A call of f with two or more positional arguments, each a target's loss on evaluation data."""
    for _, e in m.call_sites(f):
        if len(e.node.args) >= 2 and not any(type(a) is ast.Starred for a in e.node.args) \
                and all("TGTP" in a and not ("TRAIN" in a and "VAL" not in a) for a in e.data["args"]):
            return e
    return None


def _derived(f, a, b) -> bool:
    """One side is computed from the other (`loss >= quantile(loss, 0.9)`): a threshold on
    one predictor's losses, not a choice between two predictors."""
    def names(e):
        bound = f.binding(e.id) if type(e) is ast.Name else None
        return {n.id for n in lb.walk(bound if bound is not None else e) if type(n) is ast.Name}
    return bool((type(a) is ast.Name and a.id in names(b)) or (type(b) is ast.Name and b.id in names(a)))


def _running_best_if(m, f, node: ast.If, pair, written: set) -> bool:
    """`if current < lowest: lowest = current` where `lowest` is bound nowhere else in the
    loop around it: a best kept across iterations (evaluations over time), not a choice
    between two losses of the same token (those are both recomputed each iteration)."""
    kept = {lb.src(x) for x in pair} & written
    loop = m.loop_around(f, node)
    if not kept or loop is None:
        return False
    inside_if = {id(n) for n in lb.walk(node)}
    for n in lb.walk(loop):
        if id(n) not in inside_if and isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if {lb.src(t) for t in targets} & kept:
                return False
    return True


def _running_best(st: ast.Assign) -> bool:
    """`best = min(best, x)`: the value assigned is the min of itself and another."""
    v = st.value
    return len(st.targets) == 1 and type(st.targets[0]) is ast.Name and type(v) is ast.Call \
        and any(type(a) is ast.Name and a.id == st.targets[0].id for a in v.args)


def _ordered_pair(test) -> list | None:
    """The two sides of `a < b` (or <=, >, >=)."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
        return [test.left, test.comparators[0]]
    return None
