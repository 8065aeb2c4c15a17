"""One module's analysis: functions, fixpoint of the data-flow pass, summaries.

`ModuleFlow` is what every rule receives. Besides the per-function `FuncInfo`s it
answers the questions rules share: does a function (transitively) train with a
backward pass, score tokens, or write a hashed table; where is it called from.
"""

from __future__ import annotations

import ast
import bisect
import sys

from auditors import labels as lb
from auditors.calls import FUNC_TRANSFORMS
from auditors.classes import ClassFacts, constructed, name_receivers
from auditors.flow import ROUNDS, Ctx, Event, FuncInfo, keyed
from auditors.function_values import FunctionValues
from auditors.labels import EMPTY, PARAM_SENSITIVE


class ModuleFlow(FunctionValues, ClassFacts):
    def __init__(self, source: str, tree: ast.Module, seeds: dict | None = None):
        """seeds: {function name: {parameter: labels}} that other files of the submission
        pass when they call this module's functions (see `auditors.cross_file`)."""
        self.source, self.tree = source, tree
        self.lines = source.splitlines()
        self.all_nodes, self.by_type = lb.index_nodes(tree)
        self._typed = {id(v) for v in self.by_type.values()}  # the index's own lists: their identity is stable
        self._by_line: dict[int, tuple[list, list]] = {}
        self._under: dict[tuple[int, int], list] = {}  # (index list, function node) -> under's answer
        self._memo: dict[tuple, bool] = {}
        self._facts: dict[str, object] = {}
        self._resolved: dict[tuple, FuncInfo | None] = {}
        self._callees: dict[FuncInfo, tuple[list, int, list[str]]] = {}
        self.functions: dict[str, FuncInfo] = {}
        self.by_name: dict[str, list[FuncInfo]] = {}
        self.attr_labels: dict[str, frozenset] = {}
        self.class_attr_labels: dict[tuple[str, str], frozenset] = {}
        self.class_defs: dict[str, str] = {}  # class attribute -> default expression source
        self.instances: set[str] = set()  # names given per-instance fields somewhere (flow's fast path)
        self.keyed_roots: set[str] = set()  # names of dicts whose constant keys are kept apart
        name_receivers(self.nodes_of(ast.ClassDef))
        self._collect(tree, None, "")
        self._class_attributes(tree)
        # names bound to a functional-gradient transform (`step = grad(loss_fn)`): calls of them are backward passes
        self.transform_names = self._names_bound_to(FUNC_TRANSFORMS)
        for name, params in (seeds or {}).items():
            f = self.functions.get(name)
            for p, v in params.items() if f is not None else ():
                if p in f.params:
                    f.param_labels[p] = f.param_labels.get(p, EMPTY) | frozenset(v)
        self._fixpoint()

    def _names_bound_to(self, callees) -> set[str]:
        return {lb.dotted(t) for st in self.nodes_of(ast.Assign) if type(st.value) is ast.Call
                and lb.call_name(st.value.func) in callees for t in st.targets if lb.dotted(t)}  # (`step`, `self._gv`)

    def release(self) -> None:
        """Drop the references that tie the module and its functions into cycles, so the
        analysis (syntax tree included) is freed by reference counting as soon as it is
        dropped; the cyclic collector would otherwise walk every one of its objects."""
        for f in [*self.functions.values(), *(g for fs in self.by_name.values() for g in fs)]:
            f.__dict__.clear()
        self.__dict__.clear()

    def once(self, key: str | tuple, compute):
        """A fact about the whole module that a rule needs in many places (per function, per
        call): computed on first use, then shared."""
        if key not in self._facts:
            self._facts[key] = compute(self)
        return self._facts[key]

    def nodes_of(self, kind: type) -> list:
        """Every node of exactly this type in the module, in `ast.walk` order."""
        if kind in lb.UNINDEXED:
            raise ValueError(f"{kind.__name__} nodes are not indexed: read them from their parents")
        return self.by_type.get(kind, [])

    def under(self, f: FuncInfo, nodes: list) -> list:
        """Those of `nodes` (positioned, in module walk order) that lie under function f,
        in f.nodes order, found without walking f: the lines from f's first decorator to
        its end hold f's nodes and no other statement's (a statement starts a line, or
        follows `;` in the same simple-statement list), and the module's breadth-first
        walk restricted to a subtree is the subtree's walk (depth, then left to right)."""
        if type(f.node) is ast.Module:  # the module holds every positioned node
            return list(nodes)
        typed = id(nodes) in self._typed
        if typed and (id(nodes), id(f.node)) in self._under:  # (asked again by many rules: a copy of the answer)
            return list(self._under[id(nodes), id(f.node)])
        first, last = min([f.node.lineno] + [d.lineno for d in f.node.decorator_list]), f.node.end_lineno
        if len(nodes) < 64 or not typed:
            found = [n for n in nodes if first <= n.lineno <= last]
        else:
            found = self._by_lines(nodes, first, last)
        if typed:
            self._under[id(nodes), id(f.node)] = found
            return list(found)
        return found

    def _by_lines(self, nodes: list, first: int, last: int) -> list:
        """Those of an index list that lie on lines first..last, in the list's order."""
        index = self._by_line.get(id(nodes))
        if index is None:  # a node list of the index, asked about for every function: sorted by line once
            order = sorted(range(len(nodes)), key=lambda i: nodes[i].lineno)
            index = self._by_line[id(nodes)] = ([nodes[i].lineno for i in order], order)
        lines, order = index
        return [nodes[i] for i in sorted(order[bisect.bisect_left(lines, first):bisect.bisect_right(lines, last)])]

    def loop_around(self, f: FuncInfo, node, kinds=(ast.For, ast.While)):
        """The innermost loop of f (of these kinds) whose body holds node, or None."""
        around = [lp for kind in kinds for lp in self.under(f, self.nodes_of(kind))
                  if lp.lineno < node.lineno and node.end_lineno <= lp.end_lineno]
        return max(around, key=lambda lp: lp.lineno) if around else None

    # ---- structure --------------------------------------------------------------
    def _add(self, qual: str, node, parent) -> FuncInfo:
        info = FuncInfo(qual, node, parent, self)
        self.functions[qual] = info
        self.by_name.setdefault(info.name, []).append(info)
        return info

    def _collect(self, node, parent: FuncInfo | None, prefix: str) -> None:
        if parent is None and prefix == "":
            parent = self._add("<module>", node, None)
            self.by_name.pop("<module>", None)
        for child in _statements(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = f"{prefix}{child.name}"
                info = self._add(qual, child, parent if parent.qualname != "<module>" else None)
                self._collect(child, info, qual + ".")
            elif isinstance(child, ast.ClassDef):
                self._collect(child, parent, f"{prefix}{child.name}.")
            elif type(child) not in _SIMPLE_STATEMENTS:  # those hold no statements
                self._collect(child, parent, prefix)

    def _class_attributes(self, tree) -> None:
        for cls in self.nodes_of(ast.ClassDef):
            for st in cls.body:
                targets = st.targets if isinstance(st, ast.Assign) else [st.target] if isinstance(st, ast.AnnAssign) and st.value else []
                for t in targets:
                    if isinstance(t, ast.Name):
                        self.class_defs.setdefault(t.id, lb.src(st.value))

    def resolve(self, func: ast.expr, caller: FuncInfo | None = None) -> FuncInfo | None:
        """The module's function a call most likely reaches (by name; methods by attribute).
        A function nested in another is only visible from inside that one (a caller's
        local `fn = table[n]; fn(x)` is not some other function's nested `def fn`)."""
        if isinstance(func, ast.Name):
            cands = self.by_name.get(func.id)
            if not cands:
                return None
            if caller is None or not any(map(_nested, cands)):
                return cands[0]
            scopes, g = set(), caller
            while g is not None:
                scopes.add(g.qualname)
                g = g.parent
            return next((f for f in cands if not _nested(f) or f.parent.qualname in scopes), None)
        if type(func) is ast.Call and type(func.func) is ast.Name:
            for cls in self._receiver_classes(func, caller):  # `ChunkTTT(cfg)(model, val)`: its __call__
                if f"{cls}.__call__" in self.functions:
                    return self.functions[f"{cls}.__call__"]
            return None
        if isinstance(func, ast.Attribute):
            for cls in self._receiver_classes(func.value, caller):
                if f"{cls}.{func.attr}" in self.functions:  # `Scorer(...).run(val)`: that class's run, not another's
                    return self.functions[f"{cls}.{func.attr}"]
            imported = self.imported_modules()
            root = func.value
            while type(root) is ast.Attribute:
                root = root.value
            if root is not func.value and type(root) is ast.Name and imported.get(root.id) in LIBRARIES:
                return None  # `os.environ.get(k)`, `torch.nn.functional.pad(...)`: an attribute of a library module
            if type(func.value) is ast.Name and func.value.id in imported:
                # `pickle.dumps(...)`, `np.load(...)`: a module's function, never a method of this file's classes;
                # `torch.log(...)` is no `def log` of this file either (a sibling file's `evaluate.run(...)` may be)
                if imported[func.value.id] in LIBRARIES:
                    return None
                return next((f for f in self.by_name.get(func.attr, []) if not f.is_method and not _nested(f)), None)
            if func.attr in lb.PASS_METHODS:
                return None  # `on.to(logp.dtype)` of an object of no known class: a tensor's, not `ByteTable.to`
            key = (func.attr, isinstance(func.value, ast.Name) and func.attr not in _MODULE_METHODS)  # (by_name is fixed)
            if key not in self._resolved:
                # a function nested in another is no attribute of anything: `opt.step()` is not `def step()` of a closure
                self._resolved[key] = next((f for f in self.by_name.get(func.attr, [])
                                            if (f.is_method or key[1]) and not _nested(f)), None)
            return self._resolved[key]
        return None

    # ---- fixpoint ---------------------------------------------------------------
    def _fixpoint(self) -> None:
        module = self.functions["<module>"]
        self._class_labels()
        inputs: dict[str, tuple] = {}
        run_events = 0  # the module's events of its last run (the class labels append theirs after)
        for round_no in range(ROUNDS):
            before = self._state()
            shared = self._shared_state()
            for q, f in self.functions.items():
                seen = self._inputs(f, shared)
                if inputs.get(q) == seen:
                    continue  # nothing it reads changed since its last run
                if round_no > 0 and self._rerun_is_noop(f):
                    # running it would change nothing: record the inputs a run would have left
                    inputs[q] = self._inputs(f, shared, run_events) if f is module else seen
                    continue
                f.run(passes=2 if round_no == 0 else 1)  # later rounds start from the labels of the earlier ones
                self._seed_from(f)  # its callees later in this round already see what it hands them
                inputs[q] = self._inputs(f, shared)
                if f is module:
                    run_events = len(f.events)
                    self._class_labels()
            self._seed_params()
            if self._state() == before:
                break

    def _rerun_is_noop(self, f: FuncInfo) -> bool:
        """Running f again would read, write and record exactly what its last run did.

        True when that run was clean (it changed nothing it had read: see FuncInfo.run)
        and everything it read from other functions' state reads the same now. A run
        (of the module: with the class labels that follow it) is a function of what it
        reads, and its writes only add labels, so repeating it from where it ended
        reproduces every read, and so every write, event and label.
        """
        if not f.clean or any(f.lookup(n) != v for n, v in f.read_names.items()):
            return False
        for key, seen in f.read_shared.items():
            kind = key[0]
            if kind == "parent":
                now = f.parent.lookup(key[1])
            elif kind == "attr":
                now = self.attr_labels.get(key[1], EMPTY)
            elif kind == "class_attr":
                now = self.class_attr_labels.get((key[1], key[2]), self.attr_labels.get(key[2], EMPTY))
            elif kind == "instance":
                now = self.instance_data(key[1])
            elif kind == "param":
                now = f.param_labels.get(key[1], EMPTY)
            elif kind == "callee":
                now = (key[1].ret, EMPTY.union(*key[1].param_labels.values()) & PARAM_SENSITIVE,
                       tuple(sorted(key[1].param_effects.items())))
            else:  # "ret_elems"
                now = key[1].ret_elems
            if now != seen:
                return False
        return True

    def _shared_state(self) -> tuple:
        module = self.functions["<module>"]
        return (tuple(sorted(self.attr_labels.items())), tuple(sorted(self.class_attr_labels.items())),
                tuple(sorted(module.env.items())))

    def _inputs(self, f: FuncInfo, shared: tuple, upto: int | None = None) -> tuple:
        """What a function's labels depend on: its parameters, its callees' returns (those
        called by its first `upto` events), shared state."""
        n = len(f.events) if upto is None else upto
        cached = self._callees.get(f)  # sorted once per events list (the class labels append to the module's)
        if cached is None or cached[0] is not f.events or cached[1] != n:
            callees = sorted({q for ev in f.events[:n] if ev.kind == "call" and ev.data["callee"] for q in self.targets(ev)})
            cached = self._callees[f] = (f.events, n, callees)
        callees = cached[2]
        rets = tuple((c, self.functions[c].ret, tuple(self.functions[c].ret_elems or ()),
                      tuple(sorted(self.functions[c].param_effects.items()))) for c in callees)
        enclosing, g = [], f.parent  # what a nested function reads from the functions around it
        while g is not None and g.qualname != "<module>":
            enclosing.append((tuple(sorted(g.env.items())), tuple(sorted(g.param_labels.items()))))
            g = g.parent
        return (tuple(sorted(f.param_labels.items())), rets, shared, tuple(enclosing))

    def _class_labels(self) -> None:
        """Labels of class attributes (Hyperparameters-style defaults), read via `obj.attr`."""
        module = self.functions["<module>"]
        if not hasattr(self, "_class_body"):
            self._class_body = [(cls, st) for cls in self.nodes_of(ast.ClassDef) for st in cls.body
                                if isinstance(st, (ast.Assign, ast.AnnAssign)) and st.value is not None]
        module.ctx = Ctx()
        current, local = None, {}  # the class body's own names (`train_files = join(root, train_glob)`)
        for cls, st in self._class_body:
            if cls is not current:
                current, local = cls, {}
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            module.overlay = dict(local)
            try:
                v = module.L(st.value)
            finally:
                module.overlay = None
            for t in targets:
                if isinstance(t, ast.Name):
                    local[t.id] = local.get(t.id, EMPTY) | v
                    module.add_attr_labels(t.id, v)
                    if type(st.value) is ast.Dict:  # `splits = {"fit": ..., "score": ...}`: args.splits["fit"] apart
                        for k, item in zip(st.value.keys, st.value.values):
                            if type(k) is ast.Constant and isinstance(k.value, str):
                                module.add_attr_labels(keyed(t.id, k.value), module.labels_of(item))

    def _state(self):
        funcs = tuple((q, f.ret, tuple(sorted((k, v) for k, v in f.param_labels.items()))) for q, f in self.functions.items())
        return funcs, tuple(sorted(self.attr_labels.items())), tuple(sorted(self.class_attr_labels.items()))

    def _seed_params(self) -> None:
        """Callers' argument labels into their callees' parameters. Seeding only adds labels
        and each call's reach is fixed, so the events of a function that has not run since
        its last seeding (the same list, as long) would add nothing: they are skipped."""
        for f in self.functions.values():
            self._seed_from(f)

    def _seed_from(self, f: FuncInfo) -> None:
        """The argument labels of f's calls into the parameters of the functions they reach."""
        classes = self.once("class names", _class_names)
        seeded = self._facts.setdefault("seeded events", {})
        if seeded.get(f.qualname, (None, -1))[0] is f.events and seeded[f.qualname][1] == len(f.events):
            return
        seeded[f.qualname] = (f.events, len(f.events))
        for ev in f.events:
            if ev.kind == "call" and ev.data["callee"] is None:
                for cls in constructed(ev.node.func, classes, f):  # `Cls(...)`, `(A if flag else B)(...)`, `TABLE[k](...)`
                    self._seed_array_fields(ev, cls, f)
                    self._seed_instances(f, ev, classes, cls)
            if ev.kind != "call" or ev.data["callee"] is None:
                continue
            for q in self.targets(ev):  # (a hook parameter may be several functions)
                callee = self.functions[q]
                # a method called as `obj.m(...)`, or by a name bound to `obj.m` (a dict of bound methods): no self
                # (`Mixer(cfg)(p)`, `mixer = Mixer(cfg); mixer(p)`: its __call__, no self either)
                params = callee.params[1:] if callee.is_method and (type(ev.node.func) in (ast.Attribute, ast.Call) or (
                    type(ev.node.func) is ast.Name and (callee.name == "__call__" or not callee.name.startswith("__")))) \
                    else callee.params
                for p, v in zip(params, ev.data["args"]):
                    if v:
                        callee.param_labels[p] = callee.param_labels.get(p, EMPTY) | v
                rest = _own_rest(callee)
                for v in ev.data["args"][len(params):] if rest else ():  # (`def slot(self, *parts)`: the rest land in parts)
                    if v:
                        callee.param_labels[rest] = callee.param_labels.get(rest, EMPTY) | v
                spread = callee.node.args.kwarg.arg if type(callee.node) is not ast.Lambda and callee.node.args.kwarg else None
                for k, v in ev.data["kws"].items():
                    k = k if k in callee.params else spread  # (`def f(net, **kw)`: an extra keyword lands in kw)
                    if k is not None and v:
                        callee.param_labels[k] = callee.param_labels.get(k, EMPTY) | v

    def events(self, kind: str):
        for f in self.functions.values():
            for ev in f.events:
                if ev.kind == kind:
                    yield f, ev

    @staticmethod
    def targets(ev: Event) -> tuple:
        """Qualified names of the functions a call may reach (a hook parameter: several)."""
        callee = ev.data["callee"]
        return (callee, *ev.data.get("also", ())) if callee else ()

    def call_sites(self, f: FuncInfo) -> list[tuple[FuncInfo, Event]]:
        """(caller, call event) for every call that may reach f."""
        return [(g, e) for g, e in self.events("call") if f.qualname in self.targets(e)]

    def imported_modules(self) -> dict[str, str]:
        """Names bound to modules by `import x` / `import x.y as z` -> the top-level package."""
        return self.once("imported module names", _imported_modules)

    def callees(self, f: FuncInfo) -> list[FuncInfo]:
        return [self.functions[q] for ev in f.events if ev.kind == "call" for q in self.targets(ev)]

    def _transitive(self, f: FuncInfo, direct, key: tuple | None = None, seen=None) -> bool:
        """direct(f) or direct(g) for a function g that f calls, directly or not (memoized by `key`)."""
        memo = (key, f.qualname) if key is not None and seen is None else None
        if memo in self._memo:
            return self._memo[memo]
        seen = seen if seen is not None else set()
        if f.qualname in seen:
            return False
        seen.add(f.qualname)
        result = self._direct(f, direct, key) or any(self._transitive(c, direct, key, seen) for c in self.callees(f))
        if memo is not None:
            self._memo[memo] = result
        return result

    def _direct(self, f: FuncInfo, direct, key: tuple | None) -> bool:
        """direct(f), computed once per function for a keyed question (they are asked again
        for every caller that reaches f)."""
        if key is None:
            return direct(f)
        if (key, f) not in self._memo:
            self._memo[(key, f)] = direct(f)
        return self._memo[(key, f)]

    @staticmethod
    def may_hold(node: ast.stmt, lines: list[int]) -> bool:
        """False when none of these (sorted) lines is within the statement, so no node on
        them is under it (a child's position lies within its parent's; decorators, which
        stand above `def` or `class`, count in)."""
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])
        i = bisect.bisect_left(lines, first)
        return i < len(lines) and lines[i] <= node.end_lineno

    def trains_any(self, f: FuncInfo) -> bool:
        """f (or a callee) takes a backward pass."""
        return self._transitive(f, lambda g: any(e.kind == "backward" for e in g.events), ("trains any",))

    def trains_on(self, f: FuncInfo, label: str) -> bool:
        """f (or a callee) takes a backward pass on a loss carrying `label`."""
        return self._transitive(f, lambda g: any(e.kind == "backward" and label in e.data["loss"] for e in g.events), ("trains", label))

    def scores(self, f: FuncInfo) -> bool:
        """f (or a callee) scores tokens: losses or log-probabilities computed for evaluation.

        In a function that also trains, only what runs without gradients counts.
        """
        optimizers = self.once("optimizer classes", _optimizer_classes)

        def direct(g):
            if g.cls in optimizers:
                return False  # `Muon.step` under no_grad updates weights from gradients: it scores nothing
            decorated = bool({lb.src(d).split("(")[0].rsplit(".", 1)[-1] for d in getattr(g.node, "decorator_list", [])}
                             & {"no_grad", "inference_mode"})
            trains = any(e.kind == "backward" for e in g.events)
            for e in g.events:
                nograd = e.ctx.nograd or decorated
                if e.kind == "ce" and (nograd or not trains):
                    return True
                if e.kind == "call" and e.data["name"] in ("log_softmax", "log", "log2", "log1p") and (nograd or not trains):
                    return True
                if e.kind == "call" and nograd and any(a & {"TGT", "TGTP"} for a in e.data["args"]) \
                        and not e.data["name"].endswith("_") and e.data["name"] not in _SHAPED_LIKE:
                    return True  # (not `counts.index_add_(0, key, ones_like(key))`: counting the tokens)
            return False
        return self._transitive(f, direct, ("scores",))

    def writes_tables(self, f: FuncInfo, label: str | None = None) -> bool:
        """f (or a callee) writes a hashed table (a count cache), optionally keyed by `label` data."""
        return self._transitive(f, lambda g: any(e.kind == "write" and (label is None or label in e.data["key"] | e.data["value"])
                                                 for e in g.events), ("writes", label))

    def line(self, n: int) -> str:
        return self.lines[n - 1].strip() if 0 < n <= len(self.lines) else ""


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)
_SIMPLE_STATEMENTS = {ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Delete, ast.Pass, ast.Break,
                      ast.Continue, ast.Raise, ast.Assert, ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal}


def _nested(f: FuncInfo) -> bool:
    """Defined inside another function (not at module level, not in a class body)."""
    return f.parent is not None and f.parent.qualname != "<module>" and not f.is_method


def _class_names(m) -> frozenset:
    return frozenset(c.name for c in m.nodes_of(ast.ClassDef))


_SHAPED_LIKE = frozenset({"ones_like", "zeros_like", "empty_like", "full_like", "numel", "size"})  # the shape, not the values


def _optimizer_classes(m) -> frozenset:
    """Classes of the module derived from an optimizer (`class Muon(torch.optim.Optimizer)`)."""
    return frozenset(c.name for c in m.nodes_of(ast.ClassDef) if any(lb.src(b).endswith("Optimizer") for b in c.bases))


def _imported_modules(m) -> dict[str, str]:
    """Names bound to modules by `import x` / `import x.y as z` (not `from x import y`) -> the top-level package."""
    return {a.asname or a.name.split(".")[0]: a.name.split(".")[0] for st in m.nodes_of(ast.Import) for a in st.names}


# Packages a submission imports but never ships: the standard library and the usual ML stack.
LIBRARIES = frozenset(sys.stdlib_module_names) | {
    "torch", "numpy", "sentencepiece", "zstandard", "zstd", "brotli", "triton", "flash_attn", "flash_attn_interface",
    "einops", "scipy", "transformers", "tokenizers", "datasets", "huggingface_hub", "tiktoken", "wandb", "tqdm",
    "numba", "jax", "pandas", "requests", "safetensors", "apex", "xformers", "bitsandbytes", "lm_eval"}


# `model.train()`, `model.eval()`: methods every torch module has, never the file's own `def train(...)`
_MODULE_METHODS = frozenset({"train", "eval", "forward", "parameters", "named_parameters", "state_dict", "load_state_dict",
                             "zero_grad", "modules", "children", "apply", "requires_grad_"})


def _own_rest(f) -> str | None:
    """The name of f's `*rest` parameter when f reads it itself; a wrapper that hands it on
    (`def timed(fn, *a): return fn(*a)`) runs whatever it is handed, followed elsewhere."""
    rest = f.node.args.vararg.arg if f.node.args.vararg else None
    if rest is None or any(type(n) is ast.Starred and type(n.value) is ast.Name and n.value.id == rest for n in f.nodes):
        return None
    return rest


def _statements(node) -> list:
    """The statements (and except / case clauses) directly inside a node, in order.

    Definitions are statements, and statements only sit in lists of these kinds, so a
    search for definitions needs no other child (expressions, arguments, operators).
    """
    out = []
    for name in node._fields:
        v = getattr(node, name, None)
        if type(v) is list:
            out.extend([x for x in v if isinstance(x, _BLOCKS)])
    return out
