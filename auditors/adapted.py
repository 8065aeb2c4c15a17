"""What a call leaves adapted in the objects it is handed (for two-pass-rescore), and
which of an object's fields hold validation data.

A function writes into a parameter's object (a table store, counts added in place,
`cache["pair"].index_put_`), optimizes its parameters (`opt.step()` on a model handed in),
or hands it to a helper that does so: after the call, the caller's object holds what the
function learned from the data.
"""

from __future__ import annotations

import ast

from auditors import labels as lb

ACCUMULATE = {"index_put_", "index_add_", "scatter_add_", "put_"}


def mutated_params(m, f, trains: bool) -> set[int]:
    """Positions of f's parameters whose object f writes into, or whose parameters it optimizes."""
    positions: dict[str, list[int]] = {}  # a list: a parser accepts a repeated parameter name
    for i, p in enumerate(f.params[1:] if f.is_method else f.params):
        positions.setdefault(p, []).append(i)
    hit: set[str] = set()
    for node in f.nodes:  # one pass over the nodes for all parameters
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and lb.dotted(func.value) in positions:
                callee = m.resolve(func)
                if (trains and func.attr in ("parameters", "named_parameters", "step")) or (callee is not None and m.writes_tables(callee)) \
                        or func.attr in ACCUMULATE:
                    hit.add(lb.dotted(func.value))  # (`opt.step()`: the optimizer handed in moves the model it holds;
                    # `counts.index_add_(0, y, ones)`: the tensor handed in keeps counts of the tokens)
            elif isinstance(func, ast.Attribute) and func.attr in ACCUMULATE and root_name(func.value) in positions:
                hit.add(root_name(func.value))  # `cache["pair"].index_put_(...)`: a container handed in
            if isinstance(func, ast.Name) and any(type(a) is ast.Name and a.id in positions for a in node.args):
                g = m.resolve(func, f)  # `cache_update(cache, prev, tgt)`: a helper that counts into what it is handed
                counted = counting_params(m, g) if g is not None and g is not f else set()
                params = g.params[1:] if g is not None and g.is_method else (g.params if g is not None else [])
                hit |= {a.id for a, p in zip(node.args, params) if type(a) is ast.Name and p in counted}
            if trains and isinstance(func, ast.Name) and func.id in positions and not _without_grad(f, node):
                hit.add(func.id)  # the model handed in is run, and trained, here (not one run under no_grad only)
            if lb.call_name(func) == "at" and node.args and lb.dotted(node.args[0]):
                hit.add(lb.dotted(node.args[0]).split(".")[0])
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                root = t
                while isinstance(root, (ast.Subscript, ast.Attribute)):
                    root = root.value
                if isinstance(t, ast.Subscript) and isinstance(root, ast.Name):
                    hit.add(root.id)
    return {i for p in hit & positions.keys() for i in positions[p]}


def counts_into_param(f) -> bool:
    """f adds validation tokens into a tensor it was handed (`counts.index_add_(0, y, ones)`,
    `cache["pair"].index_put_(...)`), itself or through a helper it hands it to: the
    caller's tensor keeps them after the call."""
    return bool(counting_params(f.module, f))


def root_name(e) -> str | None:
    while type(e) in (ast.Subscript, ast.Attribute):
        e = e.value
    return e.id if type(e) is ast.Name else None


def counting_params(m, f, depth: int = 0) -> set[str]:
    """Parameters of f into which it (or a helper it hands them to) adds counts of validation tokens."""
    key = ("counting params", f.qualname)
    if key in m._facts:
        return m._facts[key]
    m._facts[key] = set()  # (a recursive helper adds nothing more)
    out = {root_name(e.node.func.value) for e in f.events if e.kind == "call" and e.data["name"] in ACCUMULATE
           and type(e.node.func) is ast.Attribute and root_name(e.node.func.value) in f.params
           and any("VAL" in a for a in (*e.data["args"], *e.data["kws"].values()))}
    for e in f.events if depth < 3 else ():
        if e.kind == "call" and e.data["callee"] and type(e.node.func) is ast.Name:
            g = m.functions[e.data["callee"]]
            counted = counting_params(m, g, depth + 1)
            out |= {a.id for a, p in zip(e.node.args, g.params) if type(a) is ast.Name and a.id in f.params and p in counted}
    m._facts[key] = out
    return out


def _without_grad(f, call: ast.Call) -> bool:
    """The call runs under `no_grad` / `inference_mode` (`rolling = frozen(h)` in a TTT loop)."""
    return any(e.node is call and e.ctx.nograd for e in f.events if e.kind == "call")


def tables_filled(m, g) -> set[str]:
    """counting_params (counts added by `index_add_`, `np.add.at`, ...) and also the tables
    handed in that g adds into by subscript (`tabs[o] += bincount(keys)`): every parameter
    a bulk update leaves filled."""
    aug = {root_name(n.target) for n in m.under(g, m.nodes_of(ast.AugAssign)) if type(n.target) is ast.Subscript
           and "VAL" in g.labels_of(n.value)}
    return (aug & set(g.params)) | counting_params(m, g)


def made_with(m, f, name: str) -> set[str]:
    """Names handed to the factory call whose result `name` is bound to (also by unpacking)."""
    for a in m.under(f, m.nodes_of(ast.Assign)):
        if type(a.value) is ast.Call and any(type(x) is ast.Name and x.id == name for t in a.targets for x in lb.walk(t)):
            return {d for d in map(lb.dotted, [*a.value.args, *(k.value for k in a.value.keywords)]) if d}
    return set()


def built_with_val(m, cls: str | None) -> set[str]:
    """Attributes of `cls` that some construction of it (`Evaluator(args, model, val)`)
    fills from validation data, through what its `__init__` stores."""
    def compute(m) -> set[str]:
        short = (cls or "").rsplit(".", 1)[-1]
        home = next((c for c in m.with_bases([cls]) if f"{c}.__init__" in m.functions), cls) if cls else None
        fields = m.constructor_fields(home.rsplit(".", 1)[-1]) if home else {}  # (an inherited __init__ stores them)
        init = m.functions.get(f"{home}.__init__")
        if not fields or init is None:
            return set()
        out = set()
        for _, e in m.events("call"):
            if e.data["name"] == short and type(e.node.func) is ast.Name:
                passed = dict(zip(init.params[1:], e.data["args"])) | {k: v for k, v in e.data["kws"].items() if k}
                out |= {attr for attr, feeds in fields.items() if any("VAL" in passed.get(p, lb.EMPTY) for p in feeds)}
        return out
    return m.once(("built with val", cls), compute)  # (asked once per call on `self`: the module's calls are read once)


def reads_own_val(m, f, ev) -> bool:
    """`ev.score()` on an object built from validation tokens, whose method reads them
    (`self.tokens`): a pass over val with no argument naming it."""
    func = ev.node.func
    callee = m.functions.get(ev.data["callee"]) if ev.data["callee"] else None
    d = lb.dotted(func.value) if type(func) is ast.Attribute else None
    if callee is None or not callee.is_method or not d:
        return False
    if d == "self":  # a method of the same object: what the class's constructions stored in what it reads
        reads = m.self_reads(callee)  # (built in another file: what its fields were given there)
        return bool(built_with_val(m, callee.cls) & reads) or any("VAL" in f.lookup(f"self.{a}") for a in reads)
    return any("VAL" in f.lookup(f"{d}.{attr}") for attr in m.self_reads(callee))


def val_only_held(m, f, ev, callee) -> bool:
    """Validation data reaches the call only as the object it is a method of (`cache =
    Cache(val_tokens)`; `cache.prime(shipped_tokens)`), and the method (with what it calls on
    `self`) reads none of the fields the constructions filled from val: it adapts the object
    on what it is handed, not on the tokens the object holds."""
    if not callee.is_method or type(ev.node.func) is not ast.Attribute or "VAL" not in ev.data["recv"] \
            or any("VAL" in x for x in ev.data["args"] + list(ev.data["kws"].values())):
        return False
    held = built_with_val(m, callee.cls)
    return bool(held) and not held & m.self_reads(callee) and not reads_own_val(m, f, ev)
