"""Data-flow pass over one module: label propagation with guards, per function.

Every function (and the module body as "<module>") is walked statement by statement,
twice, so values assigned late in a loop reach uses early in it (once when the first
walk provably repeats: see `FuncInfo.run`). Labels (see
`auditors.labels`) flow through names, attributes, subscripts, arithmetic and calls;
parameters receive the union of their call sites' argument labels and calls to known
functions return the callee's return labels, iterated to a fixpoint over the module.
What rules need is recorded as `Event`s with the guards (enclosing `if` tests and
early exits), loop nesting and `no_grad` context in force where they happen. What
calls with a meaning do lives in `auditors.calls`; what arithmetic, comparisons and text
do in `auditors.arithmetic`; shapes recognized by syntax alone in `auditors.shapes`; the
label vocabulary in `auditors.labels`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from auditors import calls, shapes
from auditors import labels as lb
from auditors.labels import DATA, EMPTY, INDEX_ONLY, KEYS
from auditors.arithmetic import ArithmeticFlow
from auditors.indexing import IndexFlow
from auditors.objects import ObjectFlow, keyed

SHAPE_ATTRS = frozenset({"shape", "ndim", "dtype", "device", "size"})  # (numpy `.size` is a count, not data)
EXIT = (ast.Return, ast.Raise, ast.Continue, ast.Break)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)  # analysed on their own, not where they stand
NOGRAD = {"no_grad", "inference_mode"}
ROUNDS = 8  # fixpoint rounds; 12 converge more files but spread coarse labels (PR corpus: 7 paid prefixes lost)


@dataclass(slots=True)
class Ctx:
    guards: tuple = ()
    loops: tuple = ()  # enclosing loop statements, outermost first
    nograd: bool = False


@dataclass(slots=True)
class Event:
    kind: str  # read | write | call | backward | ce | compare | return (of data)
    node: ast.AST
    ctx: Ctx
    data: dict = field(default_factory=dict)

    @property
    def line(self) -> int:
        return self.node.lineno


_ONE_SPLIT = (frozenset({"VAL"}), frozenset({"TRAIN"}))  # a path or pattern of one data split, nothing else
_JOINS = frozenset({"cat", "concatenate", "stack", "vstack", "hstack", "concat"})  # a parameter joined with more data


class FuncInfo(ObjectFlow, IndexFlow, ArithmeticFlow):
    def __init__(self, qualname: str, node, parent: "FuncInfo | None", module: "ModuleFlow"):
        self.qualname, self.node, self.parent, self.module = qualname, node, parent, module
        self.name = qualname.rsplit(".", 1)[-1]
        args = node.args if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
        self.params = [a.arg for a in (args.posonlyargs + args.args + args.kwonlyargs)] if args else []
        self.is_method = bool(self.params) and self.params[0] in ("self", "cls")
        self.cls = qualname.rsplit(".", 1)[0] if self.is_method and "." in qualname else None
        self.is_property = self.is_method and any(lb.call_name(d) in ("property", "cached_property")
                                                  for d in node.decorator_list)
        self.defaults: dict[str, frozenset] = lb.default_labels(args) if args else {}  # data splits named by defaults
        self.param_labels: dict[str, frozenset] = dict(self.defaults)
        self.env: dict[str, frozenset] = {}
        self.events: list[Event] = []
        self.ret: frozenset = EMPTY
        self.statement = None  # the statement being walked (`toks[t]` looks for `toks[t - 1]` in it)
        self.param_effects: dict[str, frozenset] = {}  # parameter -> data appended into it (`stream.files.append`)
        self.ret_elems: list[frozenset] | None = None
        self.defs: dict[str, ast.expr | None] = {}  # name -> its only binding (None: bound more than once)
        self.hash_depth: dict[str, int] = {}  # loop depth at which a name accumulates a hash
        self.elems: dict[str, list[frozenset]] = {}  # lists of tuples: labels per field
        self.overlay: dict[str, frozenset] | None = None  # parameters of a lambda being applied (`applied`)
        self.loop_keys: dict[str, list[str]] = {}  # loop variable -> the constant keys it runs over (`for k in MIX`)
        self._start_run()

    def _start_run(self) -> None:
        """A run records what it reads, so that running again can be known to repeat it
        exactly (`clean`, `ModuleFlow._rerun_is_noop`)."""
        self.read_names: dict[str, frozenset] = {}  # name -> what lookup returned
        self.read_own: set = set()  # own env keys tested for presence, ("elems", holder) read
        self.read_shared: dict[tuple, object] = {}  # state other runs may change -> value read
        self.read_attrs: set[str] = set()  # attributes whose module-wide labels were read
        self.clean = True  # no write of this run changed something it had read before
        self.bound_nograd: dict[str, bool] = {}  # name -> its latest binding so far was computed under no_grad

    @property
    def nodes(self) -> list:  # the indexed nodes under this function (labels.index_nodes), walked once, when asked
        if not hasattr(self, "_nodes"):
            self._nodes = self.module.all_nodes if self.qualname == "<module>" else lb.index_nodes(self.node)[0]
        return self._nodes

    @property
    def body(self):
        if self.qualname == "<module>":
            return [s for s in self.node.body if not isinstance(s, _DEFINITIONS)]
        return self.node.body

    def lookup(self, name: str) -> frozenset:
        f = self
        while f is not None:
            if name in f.env:  # (a parameter bound again, `arr = np.asarray(arr)`, still holds what callers pass)
                return f.env[name] | f.param_labels[name] if name in f.param_labels else f.env[name]
            if name in f.param_labels:
                return f.param_labels[name]
            f = f.parent
        mod = self.module.functions.get("<module>")
        return mod.env.get(name, EMPTY) if mod is not None else EMPTY

    # ---- statements -------------------------------------------------------------
    def run(self, passes: int = 1) -> None:
        for _ in range(passes):
            self._start_run()
            self.events, self.hash_depth = [], {}
            self.block(self.body, Ctx())
            if self.clean:
                break  # another pass would read, and so write, exactly the same
        if self.is_property and self.ret:
            self.add_attr_labels(self.name, self.ret, self.cls)  # `args.val_files` reads what the property returns

    def _admitted(self, body, splits: frozenset) -> None:
        """`if e.name.startswith("fineweb_"): found.append(e.path)`: what such a filter lets through is of those splits."""
        for st in body:
            if type(st) is ast.Expr and type(st.value) is ast.Call and type(st.value.func) is ast.Attribute \
                    and st.value.func.attr in ("append", "extend", "add") and lb.dotted(st.value.func.value):
                self.set_env(lb.dotted(st.value.func.value), splits)

    # Every write goes through these, so a run knows whether it changed something it had
    # already read. Writes only add labels (or replace a record list by one of another
    # length), so when none did, a repeat reads the same values at every step.
    def set_env(self, key: str, v: frozenset) -> None:
        old = self.env.get(key)
        new = v if old is None else old | v
        if (key in self.read_names or key in self.read_own) and new != old:
            self.clean = False
        self.env[key] = new

    def add_attr_labels(self, attr: str, v: frozenset, cls: str | None = None) -> None:
        """Labels stored in `obj.attr` (module-wide) and, for a method, in its class's attribute."""
        m = self.module
        for table, key in ((m.attr_labels, attr), (m.class_attr_labels, (cls, attr))) if cls else ((m.attr_labels, attr),):
            old = table.get(key, EMPTY)
            if attr in self.read_attrs and (old | v) != old:
                self.clean = False
            table[key] = old | v

    def block(self, stmts, ctx: Ctx) -> None:
        for st in stmts:  # the statements share a context until an early exit adds a guard
            self.stmt(st, ctx)
            if type(st) is ast.If and not st.orelse and st.body and isinstance(st.body[-1], EXIT):
                ctx = Ctx(ctx.guards + ((st.test, False),), ctx.loops, ctx.nograd)
            elif type(st) is ast.Expr and type(st.value) is ast.Call and shapes.grad_switch(st.value) is not None:
                ctx = Ctx(ctx.guards, ctx.loops, not shapes.grad_switch(st.value))  # torch.set_grad_enabled(False) ... (True)

    def stmt(self, st, ctx: Ctx) -> None:  # noqa: C901 - one dispatch over statement kinds
        self.ctx, self.statement = ctx, st
        t = type(st)  # exact types (parsed trees hold no subclasses): `is` tests are cheaper than isinstance
        if t in _DEFINITIONS:
            return
        if t is ast.Assign:
            v = self.L(st.value)
            for t in st.targets:
                self.assign(t, v, st.value)
        elif t is ast.AnnAssign and st.value is not None:
            self.assign(st.target, self.L(st.value), st.value)
        elif t is ast.AugAssign:
            v = self.L(st.value)
            if isinstance(st.op, ast.BitXor) and lb.is_product(st.value):
                v = v | {"HASH"}
                name = lb.dotted(st.target)
                depth = len(ctx.loops)
                if name in self.hash_depth and depth < self.hash_depth[name] and not self.L(st.value) & {"CAND", "HASH"}:
                    # `h ^= tok * P` after the loop that hashed the context: one more token joins the key
                    self.set_env(name, frozenset({"EXTKEY"}))
                self.hash_depth.setdefault(name, depth)
            if isinstance(st.op, ast.Mult) and "HASH" in self.L(st.target):
                v = v | {"HASH"}
            keep = self.L(st.target) if isinstance(st.target, ast.Name) else EMPTY
            self.assign(st.target, (v - {"EXTKEY"}) | keep, st.value, aug=True)
            root = st.target.value if isinstance(st.target, ast.Subscript) else None
            if type(root) is ast.Name and root.id in self.params and "TGTP" in v:
                # `acc[0] += nll.sum()` into a tensor handed in: the caller's sums now hold scores of that data
                self.param_effects[root.id] = self.param_effects.get(root.id, EMPTY) | (v & (DATA | {"TGTP"}))
        elif t is ast.Expr:
            self.L(st.value)
        elif t is ast.Return and st.value is not None:
            self.returns(st.value)
        elif t is ast.If:
            admits = self.L(st.test) & DATA
            self.block(st.body, Ctx(ctx.guards + ((st.test, True),), ctx.loops, ctx.nograd))
            if admits and shapes.affirms(st.test):
                self._admitted(st.body, admits)
            self.block(st.orelse, Ctx(ctx.guards + ((st.test, False),), ctx.loops, ctx.nograd))
        elif t is ast.While:
            self.L(st.test)
            g = ctx.guards if isinstance(st.test, ast.Constant) else ctx.guards + ((st.test, True),)
            self.block(st.body, Ctx(g, ctx.loops + (st,), ctx.nograd))
            self.block(st.orelse, ctx)
        elif t is ast.For or t is ast.AsyncFor:
            self.assign_iter(st.target, st.iter)
            runs, outer = shapes.range_guard(st), self.loop_keys
            keys = self._constant_keys(st.iter) if type(st.target) is ast.Name else None  # (`for k in MIX: SPLITS[k]`)
            self.loop_keys = {**outer, st.target.id: keys} if keys else outer
            self.block(st.body, Ctx(ctx.guards + ((runs, "range"),) if runs else ctx.guards, ctx.loops + (st,), ctx.nograd))
            self.loop_keys = outer
            self.block(st.orelse, ctx)
        elif t is ast.With or t is ast.AsyncWith:
            nograd = ctx.nograd
            for item in st.items:
                v = self.L(item.context_expr)  # once: a second evaluation would record its calls twice
                if isinstance(item.context_expr, ast.Call) and (lb.call_name(item.context_expr.func) in NOGRAD
                                                                or shapes.grad_switch(item.context_expr) is False):
                    nograd = True
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, v, item.context_expr)
            self.block(st.body, Ctx(ctx.guards, ctx.loops, nograd))
        elif t is ast.Try or t.__name__ == "TryStar":
            self.block(st.body, ctx)
            for h in st.handlers:
                self.block(h.body, ctx)
            self.block(st.orelse, ctx)
            self.block(st.finalbody, ctx)
        elif t is ast.Assert:
            self.L(st.test)

    def returns(self, value) -> None:
        """What a caller receives: a returned value, or each one a generator yields."""
        elems = [self.L(e) for e in value.elts] if type(value) is ast.Tuple else None
        v = EMPTY.union(*elems) if elems is not None else self.L(value)  # each element evaluated once
        if self.ctx.guards and any(p in (True, False) and "TPROP" in self.labels_of(t) for t, p in self.ctx.guards):
            v, elems = v | {"TPROP"}, elems and [x | {"TPROP"} for x in elems]  # `if not starts[y]: return -1, 0.0`
        if v & DATA:  # where a data split leaves the function, and under which conditions
            self.events.append(Event("return", value, self.ctx, {"labels": v}))
        old = (self.ret, self.ret_elems)
        self.ret = self.ret | v
        if elems is not None:
            if self.ret_elems is None or len(self.ret_elems) != len(elems):
                self.ret_elems = elems
            else:
                self.ret_elems = [a | b for a, b in zip(self.ret_elems, elems)]
        if (("callee", self) in self.read_shared or ("ret_elems", self) in self.read_shared) and old != (self.ret, self.ret_elems):
            self.clean = False  # a recursive call read what this return changes

    def _yield(self, e) -> frozenset:
        if e.value is not None:
            self.returns(e.value)
        return EMPTY  # what `send()` passes in: nothing this analysis tracks

    def assign_iter(self, target, it) -> None:
        if isinstance(it, ast.Call) and lb.call_name(it.func) in ("zip", "enumerate") and isinstance(target, ast.Tuple):
            parts = [EMPTY] + [self.L(a) for a in it.args] if lb.call_name(it.func) == "enumerate" else [self.L(a) for a in it.args]
            if len(parts) == len(target.elts):
                made = [None, *it.args] if lb.call_name(it.func) == "enumerate" else it.args
                for t, v, a in zip(target.elts, parts, made):  # (one item per iteration of a list made from a range)
                    self.assign(t, (v - {"CAND"}) | {"RPOS"} if "CAND" in v and a is not None and shapes.made_from_range(self, a) else v, None)
                return
        holder = lb.dotted(it)
        if isinstance(target, ast.Tuple) and holder:
            self.read_own.add(("elems", holder))
        if isinstance(target, ast.Tuple) and holder in self.elems and len(self.elems[holder]) == len(target.elts):
            for t, v in zip(target.elts, self.elems[holder]):
                self.assign(t, v, None)
            return
        v = self.L(it)
        if isinstance(it, ast.Call) and lb.call_name(it.func) == "range" or "CAND" in v and shapes.made_from_range(self, it):
            # one position per iteration, not every candidate at once (also over a list made from a range:
            # `starts = list(range(...))`, `for ws in starts[lo:hi]`)
            v = (v - {"CAND"}) | {"RPOS"}
        self.assign(target, v, it)

    def assign(self, target, v: frozenset, value, aug: bool = False) -> None:
        if isinstance(target, ast.Name):
            if isinstance(value, ast.BinOp) and shapes.in_arithmetic(value, target.id):
                v = v - {"EXTKEY"}  # `h = h ^ (tok * P)`, `h = (h * P + tok) % B` accumulate a context hash
            if type(value) is ast.Call and target.id in self.params and lb.call_name(value.func) in _JOINS \
                    and any(type(n) is ast.Name and n.id == target.id for n in lb.walk(value)):
                held = self.param_labels.get(target.id, EMPTY)  # `x = cat([x, extra])` of a parameter: what callers pass, too
                self.read_shared.setdefault(("param", target.id), held)  # (a rerun must see callers pass more)
                v = v | held
            self.set_env(target.id, v)
            if type(value) in (ast.Dict, ast.DictComp) or (type(value) is ast.Call and type(value.func) is ast.Name
                                                            and value.func.id == "dict"):
                self.keyed_entries(target.id, value)  # {"train": TRAIN_GLOB, "eval": VAL_GLOB}: each key keeps its own
            elif type(value) in (ast.Call, ast.IfExp) or (type(value) is ast.Name and value.id in self.module.instances):
                self._instance_fields(target.id, value)
            if value is not None and self.defs.setdefault(target.id, value) is not value:
                self.defs[target.id] = None  # bound more than once: no single value to evaluate
            self.bound_nograd[target.id] = self.ctx.nograd  # of its latest binding, in program order
        elif isinstance(target, (ast.Tuple, ast.List)):
            elems = None
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                elems = [self.L(e) for e in value.elts]
            elif type(value) is ast.Await and type(value.value) is ast.Call and lb.dotted(value.value.func) == "asyncio.gather" \
                    and len(value.value.args) == len(target.elts):
                elems = [self.L(a) for a in value.value.args]  # `a, b = await asyncio.gather(f(x), g(y))`
            elif isinstance(value, ast.Call):
                callee = self.module.resolve(value.func, self)
                if callee is not None:
                    self.read_shared.setdefault(("ret_elems", callee), callee.ret_elems)
                if callee is not None and callee.ret_elems and len(callee.ret_elems) == len(target.elts) \
                        and not (type(value.func) is ast.Attribute and self.module.overrides(self, value.func)):
                    # (a call that may reach another class's method too returns what either returns)
                    own = self._receiver_data(value.func.value, callee, self.labels_of(value.func.value)) \
                        if type(value.func) is ast.Attribute else EMPTY  # `x, y = loader.next_batch()`: the loader's split
                    elems = [(e & v) | own for e in callee.ret_elems]  # v: the return as this call's arguments allow
            elif type(value) in (ast.GeneratorExp, ast.ListComp) and len(value.generators) == 1 \
                    and type(value.generators[0].target) is ast.Name and not value.generators[0].ifs \
                    and type(value.generators[0].iter) in (ast.Tuple, ast.List) \
                    and len(value.generators[0].iter.elts) == len(target.elts):
                # `xt, yt = (torch.from_numpy(v) for v in (x, y))`: each name gets its own element's
                g = value.generators[0]
                elems = [self.applied(value.elt, {g.target.id: self.L(e)}) for e in g.iter.elts]
            elif isinstance(value, (ast.Subscript, ast.Name)):
                holder = lb.dotted(value.value if isinstance(value, ast.Subscript) else value)
                if holder:
                    self.read_own.add(("elems", holder))
                rec = self.elems.get(holder) if holder else None
                if rec and len(rec) == len(target.elts):
                    elems = rec
            pairs = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) else None
            for i, t in enumerate(target.elts):  # `a, b = f(x), g(y)`: each name is bound to its own expression
                self.assign(t, elems[i] if elems else v, pairs[i] if pairs else None)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, v, None)
        elif isinstance(target, ast.Subscript):
            key = self.L(target.slice)
            base = lb.dotted(target.value) or lb.dotted(shapes.root(target.value))
            if type(target.value) is ast.Name and type(target.slice) is ast.Constant and isinstance(target.slice.value, str):
                self.module.keyed_roots.add(target.value.id)
                self.set_env(keyed(target.value.id, target.slice.value), v - INDEX_ONLY)
            if key & KEYS:
                self.events.append(Event("write", target, self.ctx, {"key": key, "value": v, "table": target.value}))
            if base:
                self.set_env(base, v - INDEX_ONLY)
                holder = shapes.root(target.value)  # (`self.sections[name][k] = ...`: the same container)
                if base.count(".") == 1 and type(holder) is ast.Attribute and v & DATA and value is not None:
                    self.stored_in_container(holder, v & DATA, value)
        elif isinstance(target, ast.Attribute):
            d = lb.dotted(target)
            if d:
                self.set_env(d, v)
                if d.startswith("self."):
                    self.add_attr_labels(target.attr, v, self.cls)
                elif v in _ONE_SPLIT and value is not None and any(  # `hp.val_glob = join(root, "fineweb_val_*")`:
                        type(c) is ast.Constant and isinstance(c.value, str) for c in lb.walk(value)):
                    self.add_attr_labels(target.attr, v, None)  # that split wherever `hp.val_glob` is read

    def labels_of(self, node, names: dict | None = None) -> frozenset:
        """Labels of an expression after the analysis, without recording events; `names` read
        as holding the labels given (a lambda's parameters, one call's arguments)."""
        saved, saved_ctx, saved_overlay = self.events, getattr(self, "ctx", Ctx()), self.overlay
        self.events, self.ctx = [], Ctx()
        if names is not None:
            self.overlay = {**(saved_overlay or {}), **names}
        try:
            return self.L(node)
        finally:
            self.events, self.ctx, self.overlay = saved, saved_ctx, saved_overlay

    # ---- expressions ------------------------------------------------------------
    def applied(self, body, params: dict[str, frozenset]) -> frozenset:
        """Labels of a lambda's body with its parameters bound to a call's argument labels. Its
        calls are recorded here, where the lambda runs (`SOURCES[k](net, **kw)` reaching
        `lambda net, heldout=None, **kw: rows_of(heldout)`: rows_of is handed `heldout`)."""
        saved, saved_events = self.overlay, self.events
        self.overlay, self.events = {**(saved or {}), **params}, []
        try:
            out = self.L(body)
            saved_events.extend(e for e in self.events if e.kind == "call" and e.data["callee"])
            return out
        finally:
            self.overlay, self.events = saved, saved_events

    def L(self, e) -> frozenset:
        """Labels of an expression. Dispatch on the exact node type: parsed trees hold no
        subclasses of node types, and a table lookup beats a chain of isinstance tests."""
        t = type(e)
        if t is ast.Name:
            if self.overlay is not None and e.id in self.overlay:
                return self.overlay[e.id]  # a parameter of a lambda being applied
            v = self.lookup(e.id)
            self.read_names.setdefault(e.id, v)
            return v
        handler = _EXPR.get(t)
        return handler(self, e) if handler is not None else EMPTY  # None and unhandled kinds carry nothing

    def _constant(self, e: ast.Constant) -> frozenset:
        return lb.constant_labels(e.value) if isinstance(e.value, str) else EMPTY

    def _attribute(self, e: ast.Attribute) -> frozenset:
        if e.attr in SHAPE_ATTRS:
            return EMPTY
        d = lb.dotted(e)
        if d is not None:
            self.read_own.add(d)
            if d not in self.env and self.parent:
                self.read_shared.setdefault(("parent", d), self.parent.lookup(d))
            if d in self.env or (self.parent and self.parent.lookup(d)):
                v = self.lookup(d)
                self.read_names.setdefault(d, v)
                return v
        m = self.module
        self.read_attrs.add(e.attr)
        if self.cls and isinstance(e.value, ast.Name) and e.value.id == "self":
            # an object's own attribute: what this class stored there, not same-named attributes elsewhere
            v = m.class_attr_labels.get((self.cls, e.attr), m.attr_labels.get(e.attr, EMPTY))
            self.read_shared.setdefault(("class_attr", self.cls, e.attr), v)
            return v
        known = self._field_read(e)
        if known is not None:
            return known
        base = self.L(e.value)  # first: a comprehension in it may store attribute labels
        v = m.attr_labels.get(e.attr, EMPTY)
        self.read_shared.setdefault(("attr", e.attr), v)
        return base | v

    def _ifexp(self, e: ast.IfExp) -> frozenset:
        self.L(e.test)
        ctx = getattr(self, "ctx", Ctx())  # what each branch does happens only when the test says so: a guard, as for `if`
        self.ctx = Ctx(ctx.guards + ((e.test, True),), ctx.loops, ctx.nograd)
        out = self.L(e.body)
        self.ctx = Ctx(ctx.guards + ((e.test, False),), ctx.loops, ctx.nograd)
        out = out | self.L(e.orelse)
        self.ctx = ctx
        if out & DATA == DATA:
            chosen = self._split_selector(e.test)
            if chosen:  # `TRAIN_FILES if split == "train" else VAL_FILES`: the split asked for is read
                return (out - DATA) | chosen
        return out

    def _namedexpr(self, e: ast.NamedExpr) -> frozenset:
        v = self.L(e.value)
        self.assign(e.target, v, e.value)
        return v

    def event(self, kind: str, node, data: dict) -> None:
        self.events.append(Event(kind, node, self.ctx, data))

    def detached(self, e) -> bool:
        """e is (an element, view or cast of) a name whose latest binding, in program order,
        was computed under no_grad: `logits = model(x)` in a no_grad block, then
        `F.cross_entropy(logits[0, -k:].float(), y)` outside it is a score, no gradient can
        flow from it."""
        while True:
            if type(e) is ast.Subscript or type(e) is ast.Attribute:
                e = e.value
            elif type(e) is ast.Call and type(e.func) is ast.Attribute:
                e = e.func.value
            else:
                break
        return type(e) is ast.Name and self.bound_nograd.get(e.id, False)

    def binding(self, name: str):
        """The expression `name` is bound to, once, here, in an enclosing function or at
        module level (None when unbound there or bound more than once)."""
        f = self
        while f is not None and name not in f.defs:
            if name in f.params:
                held = self.module.held_default(f, name)
                if held is not None:
                    return held
            f = f.parent
        f = f or self.module.functions.get("<module>")
        return f.defs.get(name) if f is not None else None


def _elements(field: str):
    """Handler for a node whose labels are the union of those of a list of its children."""
    def labels(self: FuncInfo, e) -> frozenset:
        return EMPTY.union(*[self.L(x) for x in getattr(e, field)])
    return labels


def _child(field: str):
    """Handler for a node that carries the labels of one of its children."""
    def labels(self: FuncInfo, e) -> frozenset:
        return self.L(getattr(e, field))
    return labels


_EXPR = {
    ast.Constant: FuncInfo._constant, ast.Attribute: FuncInfo._attribute, ast.Subscript: FuncInfo.subscript,
    ast.BinOp: FuncInfo._binop, ast.UnaryOp: _child("operand"), ast.BoolOp: _elements("values"),
    ast.Compare: FuncInfo._compare, ast.IfExp: FuncInfo._ifexp, ast.Call: calls.call_labels,
    ast.Tuple: _elements("elts"), ast.List: _elements("elts"), ast.Set: _elements("elts"), ast.Dict: _elements("values"),
    ast.ListComp: FuncInfo._comprehension, ast.SetComp: FuncInfo._comprehension,
    ast.GeneratorExp: FuncInfo._comprehension, ast.DictComp: FuncInfo._comprehension,
    ast.Starred: _child("value"), ast.Lambda: _child("body"),  # a deferred call still runs where the lambda is invoked
    ast.NamedExpr: FuncInfo._namedexpr, ast.FormattedValue: _child("value"), ast.Await: _child("value"),
    ast.Yield: FuncInfo._yield, ast.YieldFrom: FuncInfo._yield,
    ast.Slice: lambda self, e: self.L(e.lower) | self.L(e.upper) | self.L(e.step),
    ast.JoinedStr: FuncInfo._joined,
}

