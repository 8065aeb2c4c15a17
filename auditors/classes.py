"""What the analysis knows of the module's classes (a mixin of `analysis.ModuleFlow`):
which constructor parameters each attribute holds, what a method reads from `self`,
which classes an object may be built from (so a method call reaches that class's
method, or a subclass's override), the class hierarchy itself, and the data splits that
constructions hand to an object's fields and constructor."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from auditors import labels as lb
from auditors.dispatch import dispatch_items
from auditors.labels import EMPTY

if TYPE_CHECKING:
    from auditors.flow import FuncInfo


_CONVERSIONS = {"to", "cpu", "cuda", "long", "int", "short", "clone", "contiguous", "numpy", "astype", "copy",
                "detach", "reshape", "view", "flatten"}


class ClassFacts:
    # ---- objects ------------------------------------------------------------------
    def constructor_fields(self, cls: str) -> dict[str, set[str]] | None:
        """For a class of this module, which constructor parameters each attribute is set
        from in `__init__` (`self.files = sorted(glob(pattern))`: files <- pattern), so
        that an instance carries what it was built from; None when the class has no
        `__init__` here."""
        key = ("fields", cls)
        if key not in self._facts:
            init = self.functions.get(f"{cls}.__init__")
            fields: dict[str, set[str]] | None = None
            if init is not None and init.is_method:
                params, fields = set(init.params[1:]), {}
                local: dict[str, set[str]] = {}  # names bound from parameters, in order
                def feeds(value) -> set[str]:
                    used = {n.id for n in lb.walk(value) if type(n) is ast.Name} if value is not None else set()
                    return (used & params).union(*[local[n] for n in used if n in local])

                for st in self.under(init, self.nodes_of(ast.Assign) + self.nodes_of(ast.AnnAssign)):
                    pairs = []
                    for t in st.targets if type(st) is ast.Assign else [st.target]:
                        if type(t) is ast.Tuple and type(st.value) is ast.Tuple and len(t.elts) == len(st.value.elts):
                            pairs += zip(t.elts, st.value.elts)  # self.a, self.b = a, b
                        else:
                            pairs.append((t, st.value))
                    for t, value in pairs:
                        fed = feeds(value)
                        if type(t) is ast.Name and fed:
                            local[t.id] = fed
                        elif type(t) is ast.Attribute and type(t.value) is ast.Name and t.value.id == "self" and fed:
                            fields.setdefault(t.attr, set()).update(fed)
            self._facts[key] = fields
        return self._facts[key]

    def array_fields(self, cls: str, whole: bool = False) -> dict[str, str]:
        """Attributes `__init__` sets from a slice or a conversion of one parameter
        (`self.prime = prime[:n].to(torch.int16)`): array data the instance keeps, which
        every method of the class then reads. With `whole`, also parameters kept as they
        are (`self.tokens = tokens`), which the caller counts only when the argument is
        loaded data (a settings object that only names the splits is no array)."""
        key = ("array fields", cls, whole)
        if key not in self._facts:
            init, out = self.functions.get(f"{cls}.__init__"), {}
            pairs = []  # (target, value), `self.a, self.b = a, b` taken element by element
            for st in self.under(init, self.nodes_of(ast.Assign)) if init is not None and init.is_method else ():
                t, v = st.targets[0], st.value
                if type(t) is ast.Tuple and type(v) is ast.Tuple and len(t.elts) == len(v.elts):
                    pairs += zip(t.elts, v.elts)
                else:
                    pairs.append((t, v))
            for t, v in pairs:
                shaped = False
                while type(v) in (ast.Call, ast.Subscript):
                    if type(v) is ast.Subscript and type(v.slice) is ast.Slice:
                        v, shaped = v.value, True
                    elif type(v) is ast.Call and type(v.func) is ast.Attribute and v.func.attr in _CONVERSIONS:
                        v, shaped = v.func.value, True
                    else:
                        break
                if (shaped or whole) and type(v) is ast.Name and v.id in init.params[1:] and type(t) is ast.Attribute \
                        and type(t.value) is ast.Name and t.value.id == "self":
                    out[t.attr] = v.id
            self._facts[key] = out
        return self._facts[key]

    def self_reads(self, method: FuncInfo) -> frozenset:
        """Attributes a method reads from `self`, directly or through the other methods of
        its class it calls on `self`."""
        key = ("self reads", method.qualname)
        if key not in self._facts:
            self._facts[key] = frozenset()  # a method that calls itself adds nothing more
            out, todo, seen = set(), [method], set()
            while todo:
                g = todo.pop()
                if g.qualname in seen:
                    continue
                seen.add(g.qualname)
                for a in self.under(g, self.nodes_of(ast.Attribute)):
                    if type(a.value) is ast.Name and a.value.id == "self" and type(a.ctx) is ast.Load:
                        out.add(a.attr)
                        sibling = self.functions.get(f"{g.cls}.{a.attr}") if g.cls else None
                        if sibling is not None:
                            todo.append(sibling)
            self._facts[key] = frozenset(out)
        return self._facts[key]

    def returned_reads(self, method: FuncInfo) -> frozenset:
        """The attributes of `self` a method's result can hold: when every `return` hands back
        bare attributes (`return self.model`, `return self.a, self.b`), those only (the model
        `fit()` returns is no evaluator it also read); otherwise all it reads (`self_reads`)."""
        rets = [r.value for r in self.under(method, self.nodes_of(ast.Return))]
        parts = [e for v in rets for e in (v.elts if type(v) is ast.Tuple else [v])]
        if rets and all(type(e) is ast.Attribute and type(e.value) is ast.Name and e.value.id == "self" for e in parts):
            return frozenset(e.attr for e in parts)
        return self.self_reads(method)

    def overrides(self, caller: FuncInfo | None, func: ast.expr) -> tuple:
        """`self.m(...)` in a method of C also reaches the m of every subclass of C that
        defines its own (`Evaluator.run` calling `self.score_window` of a `CachedEvaluator`);
        `obj.m(...)` of a name bound to objects of several classes reaches each one's m."""
        if caller is None or type(func) is not ast.Attribute or type(func.value) is not ast.Name:
            return ()
        if func.value.id != "self":  # `loader = A(...)`, later `loader = B(...)`: B's method too
            made = caller.binding(func.value.id)
            if type(made) is ast.Call and type(made.func) is ast.Subscript:  # `ADAPTERS[mode](...)`: every entry's method
                found = [q for q in (f"{c}.{func.attr}" for c in self.table_classes(caller, made.func)) if q in self.functions]
                return tuple(found[1:])
            if len(self._built_classes(caller).get(func.value.id, ())) < 2:
                return self._unknown_receiver(caller, func)  # (the common case, answered without a binding lookup)
            classes = self._receiver_classes(func.value, caller) if caller.binding(func.value.id) is None else []
            found = [q for q in (f"{c}.{func.attr}" for c in classes) if q in self.functions]
            return tuple(found[1:])
        if not caller.cls:
            return ()
        subs = self.once("subclasses", _subclasses).get(caller.cls, ())
        return tuple(q for q in (f"{c}.{func.attr}" for c in subs) if q in self.functions)

    def _unknown_receiver(self, caller: FuncInfo, func: ast.Attribute) -> tuple:
        """`for cb in callbacks: cb.on_chunk_begin(...)`: a method found by its name on an object
        of no known class reaches the overrides of the subclasses of the class that defines it
        (the list may hold any of them)."""
        subs = self.once("subclasses", _subclasses)
        owners = [f.cls for f in self.by_name.get(func.attr, ()) if f.is_method and f.cls in subs]
        if self._receiver_classes(func.value, caller):
            return ()
        if not owners:
            return self._duck_typed(caller, func)
        return tuple(q for c in subs[owners[0]] if (q := f"{c}.{func.attr}") in self.functions)

    def _duck_typed(self, caller: FuncInfo, func: ast.Attribute) -> tuple:
        """`for h in hooks: h.on_chunk(...)` with no common base class: the loop's variable may
        be an object of any class that defines the method."""
        name = func.value.id
        if not any(type(loop.target) is ast.Name and loop.target.id == name for loop in self.under(caller, self.nodes_of(ast.For))):
            return ()
        return tuple(f.qualname for f in self.by_name.get(func.attr, ()) if f.is_method)

    def _receiver_classes(self, recv: ast.expr, caller: FuncInfo | None, depth: int = 0) -> list[str]:
        """The module classes an object is known to be built from, then their bases, in the
        order a method is looked up: `C(...)` itself, a name bound once to `C(...)` (or to
        `A(...) if flag else B(...)`), `self` in a method of C, or `super()` in one."""
        if type(recv) is ast.Name and caller is not None:
            if recv.id == "self" and caller.cls:
                return self.with_bases([caller.cls])
            annotated = self.annotated_class(caller, recv.id)
            if annotated:  # `def extend(stream: TokenStream)`
                return self.with_bases([annotated])
            name, recv = recv.id, caller.binding(recv.id)
            if recv is None and depth == 0:  # bound more than once: `loader = A(...)`, later `loader = B(...)`
                built = self._built_classes(caller).get(name, ())
                return self.with_bases(list(built)) if len(built) > 1 else []
        if type(recv) is ast.Attribute and type(recv.value) is ast.Name and recv.value.id == "self" \
                and caller is not None and caller.cls:
            return self.with_bases(self._field_classes(caller.cls, recv.attr, depth))
        if type(recv) is ast.Call and type(recv.func) is ast.Subscript and caller is not None:
            return self.with_bases(self.table_classes(caller, recv.func))  # `ADAPTERS[mode](model)`: any of them
        if type(recv) is ast.IfExp and depth < 3:
            return self._receiver_classes(recv.body, caller, depth + 1) + self._receiver_classes(recv.orelse, caller, depth + 1)
        bases = self.once("class bases", class_bases)
        if type(recv) is ast.Call and type(recv.func) is ast.Name and recv.func.id in bases:
            return self.with_bases([recv.func.id])
        if type(recv) is ast.Call and type(recv.func) is ast.Attribute and recv.func.attr in bases \
                and type(recv.func.value) is ast.Name and recv.func.value.id in self.imported_modules():
            return self.with_bases([recv.func.attr])  # `ngram.ContextWindows(...)` of a sibling module merged in
        if type(recv) is ast.Call and type(recv.func) is ast.Name and recv.func.id == "super" and caller is not None \
                and caller.cls in bases:
            return self.with_bases(list(bases[caller.cls]))  # `super().run(x)`: the bases' method
        return []

    def table_classes(self, caller: FuncInfo, func: ast.Subscript) -> list[str]:
        """The module classes a dispatch table holds (`{"none": NoAdapt, "tent": Tent}`, entries
        stored or registered by a decorator, `{c.name: c for c in (NoAdapt, Tent)}`)."""
        bases = self.once("class bases", class_bases)
        values = [v for _, v in dispatch_items(caller, func) or ()]
        held = caller.binding(func.value.id) if type(func.value) is ast.Name else None
        if held is None and type(func.value) is ast.Name:
            held = self.functions["<module>"].binding(func.value.id)
        if type(held) is ast.DictComp and len(held.generators) == 1 and type(held.generators[0].iter) in (ast.Tuple, ast.List):
            values += held.generators[0].iter.elts
        return list(dict.fromkeys(v.id for v in values if type(v) is ast.Name and v.id in bases))

    def _built_classes(self, f: FuncInfo) -> dict[str, tuple]:
        """Name -> the module classes f binds it to objects of (`x = A(...)`), in order; one
        walk of f's assignments, kept for every later question about f."""
        key = ("built classes", f.qualname)
        if key not in self._facts:
            bases, out = self.once("class bases", class_bases), {}
            for a in self.under(f, self.nodes_of(ast.Assign)):
                if type(a.value) is ast.Call and type(a.value.func) is ast.Name and a.value.func.id in bases:
                    for t in a.targets:
                        if type(t) is ast.Name and a.value.func.id not in out.get(t.id, ()):
                            out[t.id] = out.get(t.id, ()) + (a.value.func.id,)
            self._facts[key] = out
        return self._facts[key]

    def annotated_class(self, f: FuncInfo, name: str) -> str | None:
        """The module class a parameter of f is annotated with (`stream: TokenStream`)."""
        if f.qualname == "<module>" or name not in f.params:
            return None
        args = f.node.args
        ann = next((a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg == name), None)
        if type(ann) is ast.BinOp and type(ann.op) is ast.BitOr:  # `expert: WordExpert | None`
            ann = ann.left if type(ann.right) is ast.Constant else ann.right if type(ann.left) is ast.Constant else ann
        if type(ann) is ast.Constant and isinstance(ann.value, str):
            return ann.value if ann.value in self.once("class bases", class_bases) else None
        return ann.id if type(ann) is ast.Name and ann.id in self.once("class bases", class_bases) else None

    def field_classes(self, cls: str, attr: str) -> list[str]:
        """The module classes of what `cls` keeps in `self.attr`: set in `__init__`, or in any
        method as an object built there (`trainer = Trainer(...)`; `self.trainer = trainer`)."""
        return self.once(("field classes", cls, attr), lambda m: _kept_classes(m, cls, attr))

    def _field_classes(self, cls: str, attr: str, depth: int) -> list[str]:
        """The classes of what `__init__` keeps in `self.attr` (`self.tok, self.word = tok, word` with
        `word: WordExpert | None`, or `self.cache = Cache(n)`)."""
        init = self.functions.get(f"{cls}.__init__")
        for a in self.under(init, self.nodes_of(ast.Assign)) if init is not None and depth < 3 else ():
            for t in a.targets:
                pairs = zip(t.elts, a.value.elts) if type(t) is ast.Tuple and type(a.value) is ast.Tuple else [(t, a.value)]
                for tt, v in pairs:
                    if type(tt) is ast.Attribute and tt.attr == attr and type(tt.value) is ast.Name and tt.value.id == "self":
                        return self._receiver_classes(v, init, depth + 1)
        return []

    def with_bases(self, classes: list[str]) -> list[str]:
        bases, out = self.once("class bases", class_bases), []
        while classes and len(out) < 16:
            c = classes.pop(0)
            if c not in out:
                out.append(c)
                classes += bases.get(c, [])
        return out

    # ---- objects built with data -----------------------------------------------
    def _seed_instances(self, f: FuncInfo, ev, classes, cls: str) -> None:
        """`Trainer(model, loader)` with `loader = ListLoader(files)`: an object of a module
        class built from data is handed to the constructor, whose `__init__` keeps it (the
        data splits it was built from reach `self.loader` there), or binds into a callable it
        stores (`self.objective = partial(self._probe_loss, ids=probe)`). Settings objects and
        plain values are not seeded: the parameters of one `__init__` hold what every instance
        was built with."""
        init = self.functions.get(f"{cls}.__init__")
        if init is None or not init.is_method:
            return
        given = list(zip(init.params[1:], ev.node.args, ev.data["args"]))
        given += [(k.arg, k.value, ev.data["kws"].get(k.arg, EMPTY)) for k in ev.node.keywords if k.arg in init.params]
        bound = self.once(("bound by partials", cls), lambda m: _bound_by_partials(m, init)) if given else ()
        for p, node, v in given:
            built = f.binding(node.id) if type(node) is ast.Name else None
            if v & lb.DATA and (p in bound or type(built) is ast.Call and type(built.func) is ast.Name and built.func.id in classes):
                init.param_labels[p] = init.param_labels.get(p, EMPTY) | (v & lb.DATA)

    def _seed_array_fields(self, ev, cls: str, caller: FuncInfo) -> None:
        """`PrimedExporter(cfg, rt, val.tokens)`: the data splits of the arguments its
        `__init__` keeps as arrays reach every method of the class through `self`."""
        # (an inherited __init__, also past one that only forwards: `def __init__(self, *a, **kw): super().__init__(*a, **kw)`)
        home = next((c for c in self.with_bases([cls]) if f"{c}.__init__" in self.functions
                     and not _forwards_everything(self.functions[f"{c}.__init__"])), cls)
        if f"{home}.__init__" in self.functions:
            passed = dict(zip(self.functions[f"{home}.__init__"].params[1:], ev.data["args"])) | ev.data["kws"]
            shaped = self.array_fields(home)  # (kept whole: only loaded data, `HintState(val_np)`, not a settings object
            # nor a number computed from data, `Mixer(vocab_size=val.max().item() + 1)`)
            given = dict(zip(self.functions[f"{home}.__init__"].params[1:], ev.node.args)) | {
                k.arg: k.value for k in ev.node.keywords if k.arg}
            fields = {a: p for a, p in self.array_fields(home, whole=True).items()
                      if a in shaped or ({"BLOB"} <= passed.get(p, EMPTY) and type(given.get(p)) in (ast.Name, ast.Attribute))
                      or (passed.get(p, EMPTY) & lb.DATA and _loaded_tokens(self, caller, given.get(p)))}
        else:  # a dataclass: `Bundle(weights=w, seed=val[:n].tobytes())`, fields in the order declared
            order = self.dataclass_fields(cls)
            passed = dict(zip(order, ev.data["args"])) | ev.data["kws"]
            sliced = dict(zip(order, ev.node.args)) | {k.arg: k.value for k in ev.node.keywords if k.arg}
            fields = {f: f for f, e in sliced.items() if f in order and (
                _array_expr(e) or _split_path(caller, e)
                or passed.get(f, EMPTY) & lb.DATA and _returned_by_loader(self, caller, e))}  # `EvalEnv(cfg, val, ...)`
            for f in order:  # `Query(ctx, int(val[j]))`: the realized target kept in a field reaches its methods
                if "TGT" in passed.get(f, EMPTY) and "TGT" not in self.class_attr_labels.get((cls, f), EMPTY):
                    self.class_attr_labels[(cls, f)] = self.class_attr_labels.get((cls, f), EMPTY) | {"TGT"}
        if not fields:
            return
        for attr, p in fields.items():
            v = passed.get(p, EMPTY) & lb.DATA
            for c in {cls, home} if v else ():  # (read by the subclass's methods and the base's)
                self.class_attr_labels[(c, attr)] = self.class_attr_labels.get((c, attr), EMPTY) | v

    def instance_data(self, cls: str) -> frozenset:
        """The data splits held in the fields of objects of this class (`asdict(self)`)."""
        return EMPTY.union(*[v for (c, _), v in self.class_attr_labels.items() if c == cls]) & lb.DATA

    @property
    def has_dataclasses(self) -> bool:
        """Some class of the module is decorated `@dataclass`."""
        return self.once("has dataclasses", lambda m: any(
            lb.call_name(d.func if type(d) is ast.Call else d) == "dataclass"
            for c in m.nodes_of(ast.ClassDef) for d in c.decorator_list))

    def dataclass_fields(self, cls: str) -> list[str]:
        """The annotated fields of a module class decorated `@dataclass` (else none)."""
        return self.once(("dataclass fields", cls), lambda m: _dataclass_fields(m, cls))

    # ---- summaries ----------------------------------------------------------------


def _kept_classes(m, cls: str, attr: str) -> list[str]:
    out = list(m._field_classes(cls, attr, 0))
    bases = m.once("class bases", class_bases)
    for g in [g for q, g in m.functions.items() if q.startswith(cls + ".") and g.name != "__init__"]:
        for a in m.under(g, m.nodes_of(ast.Assign)):
            t = a.targets[0]
            if type(t) is ast.Attribute and t.attr == attr and type(t.value) is ast.Name and t.value.id == "self":
                values = [b.value for b in m.under(g, m.nodes_of(ast.Assign)) if len(b.targets) == 1 and type(
                    b.targets[0]) is ast.Name and b.targets[0].id == a.value.id] if type(a.value) is ast.Name else [a.value]
                made = {v.func.id if type(v) is ast.Call and type(v.func) is ast.Name and v.func.id in bases else None
                        for v in values}  # (read from the tree: the analysis may not have run g yet)
                made = made.pop() if len(made) == 1 else None
                if made is None:
                    return []  # (something else is kept there too: no one class)
                if made not in out:
                    out.append(made)
    return out


def _dataclass_fields(m, cls: str) -> list[str]:
    node = next((c for c in m.nodes_of(ast.ClassDef) if c.name == cls), None)
    if node is None or not any(lb.call_name(d.func if type(d) is ast.Call else d) == "dataclass"
                               for d in node.decorator_list):  # `@dataclass`, `@dataclasses.dataclass(frozen=True)`
        return []
    return [st.target.id for st in node.body if type(st) is ast.AnnAssign and type(st.target) is ast.Name]


def name_receivers(classes) -> None:
    """Methods whose first parameter is not called `self` (`def take(s, n)`, terse code):
    the parameter and its uses are renamed `self` (`cls` for a classmethod) in the tree, so
    everything that knows an object by its `self` knows these too. Only names change."""
    for cls in classes:
        for fn in cls.body:
            if type(fn) not in (ast.FunctionDef, ast.AsyncFunctionDef) or not fn.args.args:
                continue
            decos = {lb.call_name(d) for d in fn.decorator_list}
            if "staticmethod" in decos:
                continue
            want = "cls" if "classmethod" in decos else "self"
            old = fn.args.args[0].arg
            if old == want:
                continue
            fn.args.args[0].arg = want
            for n in lb.walk(fn):
                if type(n) is ast.Name and n.id == old:
                    n.id = want


_LOADS = {"from_numpy", "fromfile", "memmap", "frombuffer", "load", "tensor", "as_tensor", "cat", "concatenate",
          "stack", "to", "long", "int", "astype", "contiguous", "cuda", "pin_memory"}


def _loaded_tokens(m, f: FuncInfo, arg) -> bool:
    """The argument is a name bound to token data loaded or converted here, or to what a
    function of the module returns (`val_tokens = load_validation_tokens(...)`, `torch.from_numpy(...)`),
    not a settings object (`cfg = Config()`, `args = parser.parse_args()`) that merely names the files;
    also such a call written in place (`Probe(params, windows(val_tokens, n))`)."""
    bound = f.binding(arg.id) if type(arg) is ast.Name else arg if type(arg) is ast.Call else None
    while type(bound) is ast.Subscript:
        bound = bound.value
    if type(bound) is not ast.Call:
        return False
    name = lb.call_name(bound.func)
    if name in _LOADS:
        return True
    callee = m.resolve(bound.func, f)
    return callee is not None and not callee.is_method and callee.name != "__init__"


def _returned_by_loader(m, f: FuncInfo, arg) -> bool:
    """The argument is a name bound to what a function of the module returns (`val =
    load_val(cfg)`): the split it loads, not bytes decoded in place from a shipped file."""
    bound = f.binding(arg.id) if type(arg) is ast.Name else None
    callee = m.resolve(bound.func, f) if type(bound) is ast.Call else None
    return callee is not None and not callee.is_method


def _subclasses(m) -> dict[str, list[str]]:
    """Class name -> every class of this module derived from it, directly or not."""
    bases, out = m.once("class bases", class_bases), {}
    for c in bases:
        for b in m.with_bases(list(bases[c])):
            out.setdefault(b, []).append(c)
    return out


def class_bases(m) -> dict[str, list[str]]:
    """Class name -> the names of its bases that are classes of this module."""
    names = {n.name for n in m.nodes_of(ast.ClassDef)}
    return {n.name: [b.id for b in n.bases if type(b) is ast.Name and b.id in names] for n in m.nodes_of(ast.ClassDef)}


def _array_expr(e) -> bool:
    """A slice or a conversion of data at a call (`val[:n].astype("<u2").tobytes()`)."""
    shaped = False
    while type(e) in (ast.Call, ast.Subscript):
        if type(e) is ast.Subscript:
            shaped, e = shaped or type(e.slice) is ast.Slice, e.value
        elif type(e.func) is ast.Attribute and e.func.attr in _ARRAY_CALLS:
            shaped, e = True, e.func.value
        else:
            return False
    return shaped and type(e) in (ast.Name, ast.Attribute)


def _split_path(f, e) -> bool:
    """A name bound to a path or file pattern that names one split (`train_glob =
    os.path.join(root, "fineweb_train_*.bin")`): an object keeping it reads that split."""
    bound = f.binding(e.id) if type(e) is ast.Name and f is not None else e if type(e) is ast.JoinedStr else None
    named = {k for n in lb.walk(bound) if type(n) is ast.Constant and isinstance(n.value, str)
             for k in lb.split_labels(n.value) & lb.DATA} if bound is not None else set()
    return len(named) == 1


_ARRAY_CALLS = {"astype", "tobytes", "to", "cpu", "numpy", "long", "int", "short", "clone", "contiguous", "copy", "detach"}


def _forwards_everything(init) -> bool:
    """`def __init__(self, *a, **kw)`: no parameter of its own, every argument passed on."""
    return len(init.params) <= 1 and init.node.args.vararg is not None


def constructed(func, classes, f=None) -> list[str]:
    """The module classes a call builds an object of: `Cls(...)`, either branch of
    `(A if flag else B)(...)`, or (in function f) each class of a table it picks from
    (`PRESETS[preset](...)` with `PRESETS = {"record": Adaptive, "plain": Evaluator}`)."""
    if type(func) is ast.Name:
        return [func.id] if func.id in classes else []
    if type(func) is ast.IfExp:
        return [b.id for b in (func.body, func.orelse) if type(b) is ast.Name and b.id in classes]
    if type(func) is ast.Subscript and f is not None:
        return [v.id for _, v in dispatch_items(f, func) or () if type(v) is ast.Name and v.id in classes]
    return []


def _bound_by_partials(m, init) -> frozenset:
    """Parameters of `__init__` that it binds into a partial (`partial(self._probe_loss, ids=probe)`)."""
    params = set(init.params[1:])
    return frozenset(a.id for c in m.under(init, m.nodes_of(ast.Call)) if lb.call_name(c.func) == "partial"
                     for a in [*c.args[1:], *(k.value for k in c.keywords)] if type(a) is ast.Name and a.id in params)
