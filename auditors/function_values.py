"""Functions used as values (a mixin of `analysis.ModuleFlow`): handed to another
function as a parameter (`score(..., hook=make_hook(state))`), returned by a factory
(its nested `def`), unpacked from a factory's tuple (`lookup, commit = make_cache(n)`), or
picked from a dispatch table (`auditors.dispatch`); and what a table's lambdas return for
the arguments of a call that picks them.
Found from the source, by name, so the answers are the same in every fixpoint round.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from auditors import labels as lb
from auditors.dispatch import constant_key_stores, dispatch_entry, dispatch_items
from auditors.labels import EMPTY

if TYPE_CHECKING:  # (flow imports calls, which imports this module's neighbours: no runtime import of flow)
    from auditors.flow import FuncInfo


class FunctionValues:
    def passed_functions(self, f: FuncInfo, param: str) -> list[FuncInfo]:
        """The functions of this module that callers hand to f as `param` and that f calls
        (`score(..., hook=hook)` with `hook = make_hook(state)`, make_hook returning its
        nested `def h`): found from the source, by name, so the same in every round."""
        key = ("passed", f.qualname, param)
        if key not in self._facts:
            found: list[FuncInfo] = []
            for arg, caller in self.arguments_for(f, param):
                if type(arg) is ast.Lambda and caller is not None and _forwards(arg):
                    # `hook=lambda lp, pos: scorer(lp, pos)`: what the lambda calls with its own arguments
                    inner = _forwarded_to(self, caller, arg.body.func)
                    arg = None
                    if inner is not None and inner not in found:
                        found.append(inner)
                for target in self.function_values(arg, 0) if arg is not None else ():
                    if target not in found:
                        found.append(target)
            self._facts[key] = found
        return self._facts[key]

    def held_default(self, f: FuncInfo, param: str) -> ast.expr | None:
        """A callable a parameter holds by default when no call passes it: a table entry or a
        lambda (`def score(m, val, gate=GATES[MODE])`, then `gate(lp, y)`)."""
        key = ("held default", f.qualname, param)
        if key not in self._facts:
            args, default = f.node.args, None
            positional = args.posonlyargs + args.args
            if param in [a.arg for a in positional]:
                i = [a.arg for a in positional].index(param) - (len(positional) - len(args.defaults))
                default = args.defaults[i] if i >= 0 else None
            elif param in [a.arg for a in args.kwonlyargs]:
                default = args.kw_defaults[[a.arg for a in args.kwonlyargs].index(param)]
            if type(default) not in (ast.Subscript, ast.Lambda) or any(a is not None for a, _ in self.arguments_for(f, param)):
                default = None
            self._facts[key] = default
        return self._facts[key]

    def arguments_for(self, f: FuncInfo, param: str) -> list[tuple[ast.expr | None, FuncInfo | None]]:
        """For each call of f by name: the expression passed for `param` (by keyword or
        position; None when left to its default) and the innermost function making the call."""
        index = f.params.index(param) - (1 if f.is_method else 0)
        out = []
        aliases = self.once("names bound to made functions", _made_function_names).get(f.qualname, ())
        for call in [c for name in (f.name, *aliases) for c in self._calls_named(name)]:
            arg = next((k.value for k in call.keywords if k.arg == param), None)
            if arg is None and 0 <= index < len(call.args):
                arg = call.args[index]
            around = [g for g in self.functions.values() if g.qualname != "<module>"
                      and g.node.lineno <= call.lineno <= g.node.end_lineno]
            out.append((arg, max(around, key=lambda g: g.node.lineno) if around else None))
        return out

    def called_value(self, f: FuncInfo, func: ast.expr) -> FuncInfo | None:
        """The module function a call of a value reaches: `mixer = Mixer(cfg); mixer(p)` (the
        class's `__call__`), `hasher = partial(mix_hash, mult=M); hasher(t)`, `lookup, commit =
        make_cache(n); lookup(h, y)`, or a constant key of a dict literal holding a function or a
        partial (`self.keyers["pair"](c, y)` with `keyers = {"pair": partial(mix_key, prime=P)}`)."""
        if type(func) is ast.Attribute:
            # `self.joint_key(h)` with `self.joint_key = partial(mix_hash, salt=S)` set once in the module
            value = self.once("function attributes", _function_attributes).get(func.attr) \
                if type(func.value) is ast.Name and func.value.id == "self" else None
        elif type(func) is ast.Subscript:
            if type(func.slice) is not ast.Constant:
                return None  # (a dispatch table: `dispatched`)
            holder = func.value.attr if type(func.value) is ast.Attribute else func.value.id if type(func.value) is ast.Name else None
            value = self.once("function slots", _function_slots).get((holder, func.slice.value))
        else:
            value = f.binding(func.id)
            if type(value) is ast.Call and type(value.func) is ast.Name and f"{value.func.id}.__call__" in self.functions:
                return self.functions[f"{value.func.id}.__call__"]
            if value is None:
                return self.unpacked_function(f, func.id) or self._iterated_function(f, func.id) \
                    or self._handed_object(f, func.id) or self._rebound_function(f, func.id) \
                    or self._handed_method(f, func.id)
            if type(value) is ast.Call and lb.call_name(value.func) != "partial":
                made = self.function_values(value)  # `score = make_scorer(); score(...)`: the factory's nested def
                return made[0] if made else None
        if type(value) is ast.Call and lb.call_name(value.func) == "partial" and value.args:
            value = value.args[0]
        if type(value) not in (ast.Name, ast.Attribute):
            return None
        found = self.resolve(value, f)
        if found is None and type(func) is ast.Attribute and type(value) is ast.Name:
            # `self.token_nll = token_nll`, a function nested in the method that stores it (`__init__`)
            home = self.home_of(value)
            found = self.resolve(value, home) if home is not None else None
        if found is None and type(func) is ast.Name:  # `for tap in self.taps: tap(...)`: bound to the list
            found = self._listed_method(f, func.id)
        return found

    def home_of(self, node) -> FuncInfo | None:
        """The innermost function (not the module) whose lines hold the node."""
        home = [g for g in self.functions.values() if g.qualname != "<module>" and g.node.lineno <= node.lineno <= g.node.end_lineno]
        return max(home, key=lambda g: g.node.lineno) if home else None

    def bound_arguments(self, f: FuncInfo, func: ast.expr) -> tuple[list, dict] | None:
        """Labels of the arguments a partial binds, for a call of a name bound to it (`rows =
        partial(slice_rows, val, n); rows(k)`) or of `self.attr` holding one, stored by another
        method (`self.objective = partial(self._probe_loss, ids=probe)` in `__init__`: read there)."""
        if type(func) is ast.Name:
            value, home = f.binding(func.id), f
        elif type(func) is ast.Attribute and type(func.value) is ast.Name and func.value.id == "self":
            value = self.once("function attributes", _function_attributes).get(func.attr)
            home = self.home_of(value) if value is not None else None
            f.L(func)  # (read here, so this call is run again when what the partial holds changes)
        else:
            return None
        if home is None or type(value) is not ast.Call or lb.call_name(value.func) != "partial" or not value.args:
            return None
        read = f.L if home is f else home.labels_of
        return [read(a) for a in value.args[1:]], {k.arg: read(k.value) for k in value.keywords if k.arg}

    def _handed_method(self, f: FuncInfo, name: str) -> FuncInfo | None:
        """A parameter of f that callers hand a bound method of a module class (`eval_val(model,
        val, tap=hints.observe)`, then `tap(x, y)` inside): that method, when every caller that
        hands one hands the same."""
        if name not in f.params:
            return None
        found = set()
        for arg, caller in self.arguments_for(f, name):
            if type(arg) is ast.Name and caller is not None:
                arg = caller.binding(arg.id)  # (`tap = hints.observe if last else None`, then `tap=tap`)
            for value in (arg.body, arg.orelse) if type(arg) is ast.IfExp else (arg,):
                method = self.resolve(value, caller) if type(value) is ast.Attribute and caller is not None else None
                if method is not None and method.is_method:
                    found.add(method.qualname)
        return self.functions[found.pop()] if len(found) == 1 else None  # (one call reaches one function)

    def _listed_method(self, f: FuncInfo, name: str) -> FuncInfo | None:
        """A loop variable over a list of bound methods handed in (`for tap in self.taps:
        tap(x, y, nll)` with `self.taps = list(taps or [])` and `Evaluator(val, taps=[book.observe])`,
        or `for hook in hooks:` over a parameter): that method, when the lists hold one."""
        found = set()
        for loop in self.under(f, self.nodes_of(ast.For)):
            if type(loop.target) is not ast.Name or loop.target.id != name:
                continue
            for arg, caller in self._handed_lists(f, loop.iter):
                if type(arg) is ast.Name and caller is not None:
                    arg = caller.binding(arg.id)  # (`taps = [book.observe]`, then `taps=taps`)
                for value in (arg.body, arg.orelse) if type(arg) is ast.IfExp else (arg,):
                    for item in value.elts if type(value) in (ast.List, ast.Tuple) else ():
                        method = self.resolve(item, caller) if type(item) is ast.Attribute and caller is not None else None
                        if method is not None and method.is_method:
                            found.add(method.qualname)
        return self.functions[found.pop()] if len(found) == 1 else None

    def _handed_lists(self, f: FuncInfo, it: ast.expr) -> list[tuple[ast.expr | None, FuncInfo | None]]:
        """What callers hand for the list a loop runs over: a parameter of f, or `self.X` that
        the class's `__init__` keeps from its parameter (`self.taps = list(taps or [])`)."""
        if type(it) is ast.Name and it.id in f.params:
            return self.arguments_for(f, it.id)
        init = self.functions.get(f"{f.cls}.__init__") if f.cls and type(it) is ast.Attribute \
            and type(it.value) is ast.Name and it.value.id == "self" else None
        kept = next((st.value for st in self.under(init, self.nodes_of(ast.Assign)) for t in st.targets
                     if type(t) is ast.Attribute and t.attr == it.attr and type(t.value) is ast.Name
                     and t.value.id == "self"), None) if init is not None else None
        while type(kept) is ast.Call and lb.call_name(kept.func) in ("list", "tuple") and len(kept.args) == 1 \
                or type(kept) is ast.BoolOp and type(kept.op) is ast.Or:
            kept = kept.args[0] if type(kept) is ast.Call else kept.values[0]  # `list(taps or [])`: taps
        if type(kept) is not ast.Name or kept.id not in init.params:
            return []
        index = init.params.index(kept.id) - 1  # (a construction passes no `self`)
        out = []
        for call in self._calls_named(f.cls):
            arg = next((k.value for k in call.keywords if k.arg == kept.id), None)
            out.append((arg if arg is not None else call.args[index] if 0 <= index < len(call.args) else None,
                        self.home_of(call)))
        return out

    def _rebound_function(self, f: FuncInfo, name: str) -> FuncInfo | None:
        """A name f binds more than once, each time to the same factory's function (`step =
        make_step(...)`, later `step = make_step(...)` again): that function."""
        if f.defs.get(name, 1) is not None:
            return None  # (bound once, or not here)
        values = [st.value for st in self.under(f, self.nodes_of(ast.Assign))
                  if any(type(t) is ast.Name and t.id == name for t in st.targets)]
        made = {g.qualname: g for v in values if type(v) is ast.Call for g in self.function_values(v)}
        return next(iter(made.values())) if len(made) == 1 and all(type(v) is ast.Call for v in values) else None

    def _handed_object(self, f: FuncInfo, name: str) -> FuncInfo | None:
        """`def tilt_adjust(tilt: HintTilt): def adjust(...): tilt(logp, y)`: a parameter of f or
        of a function around it, annotated with a module class or handed an object built from
        one (`tilt_adjust(HintTilt(v, b))`, `t = HintTilt(v, b); tilt_adjust(t)`): its __call__."""
        g = f
        while g is not None and g.qualname != "<module>":
            if name in g.params:
                classes = [self.annotated_class(g, name)]
                for arg, caller in self.arguments_for(g, name) if classes[0] is None else ():
                    made = caller.binding(arg.id) if type(arg) is ast.Name and caller is not None else arg
                    classes += self._receiver_classes(made, caller) if type(made) is ast.Call else []
                return next((self.functions[q] for c in classes if c and (q := f"{c}.__call__") in self.functions), None)
            if name in g.defs:
                return None
            g = g.parent
        return None

    def dispatched(self, f: FuncInfo, func: ast.Subscript) -> list[FuncInfo]:
        """The module functions a dispatch table's call reaches (`TTT_PATHS[path](...)`,
        `{"eval": ev, "train": tr}[mode](...)`): the one its key defaults to when the key is a
        constant or an environment read with a constant default, else every one in it."""
        items = dispatch_items(f, func)
        if items is None:
            return []
        chosen = dispatch_entry(f, func)
        values = [chosen] if chosen is not None else [v for _, v in items]
        out = []
        for v in values:
            if type(v) is ast.Call and lb.call_name(v.func) == "partial" and v.args:
                v = v.args[0]
            g = self.resolve(v, f) if type(v) in (ast.Name, ast.Attribute) else None
            if g is not None and g not in out:
                out.append(g)
        return out

    def _iterated_function(self, f: FuncInfo, name: str) -> FuncInfo | None:
        """A loop variable running over a dict of functions (`for key, fn in experts.items()`,
        `for fn in experts.values()`): the first of the dict literal's values that is one."""
        if name not in self.once("dict loop names", _dict_loop_names):
            return None  # (most calls of an unbound name are of no such loop: answered without a walk)
        comps = [g for kind in (ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp)
                 for c in self.under(f, self.nodes_of(kind)) for g in c.generators]
        for loop in [*self.under(f, self.nodes_of(ast.For)), *comps]:
            it, t = loop.iter, loop.target
            if type(it) is not ast.Call or type(it.func) is not ast.Attribute or it.args:
                continue
            picks = (it.func.attr == "items" and type(t) is ast.Tuple and len(t.elts) == 2 and type(t.elts[1]) is ast.Name
                     and t.elts[1].id == name) or (it.func.attr == "values" and type(t) is ast.Name and t.id == name)
            holder = it.func.value
            key = holder.attr if type(holder) is ast.Attribute else holder.id if type(holder) is ast.Name else None
            if not picks or key is None:
                continue
            slots = self.once("function slots", _function_slots)
            for (h, _), value in slots.items():
                if h == key:
                    if type(value) is ast.Call and lb.call_name(value.func) == "partial" and value.args:
                        value = value.args[0]
                    target = self.resolve(value, f) if type(value) in (ast.Name, ast.Attribute) else None
                    if target is not None:
                        return target
        return None

    def _calls_named(self, name: str) -> list[ast.Call]:
        calls = self.once("calls by name", lambda m: _by_call_name(m.nodes_of(ast.Call)))
        return calls.get(name, [])

    def function_values(self, e, depth: int = 0) -> list[FuncInfo]:
        """The module functions an expression may evaluate to: a def by name, a factory's
        returned nested def, the branches of `a if c else None`, what a name is bound to."""
        if depth > 4 or e is None:
            return []
        if type(e) is ast.Name:
            f = self.resolve(e)
            if f is not None:
                return [f]
            bound = self.once("values bound by name", _values_by_name).get(e.id, [])
            return [g for b in bound for g in self.function_values(b, depth + 1)]
        if type(e) is ast.IfExp:
            return self.function_values(e.body, depth + 1) + self.function_values(e.orelse, depth + 1)
        if type(e) is ast.Call:
            if type(e.func) is ast.Call:  # `with_hint(table, b)(score)`: a decorator built, then applied
                made = [self.returned_function(g) for g in self.function_values(e.func, depth + 1)]
                return [g for g in made if g is not None]
            factory = self.resolve(e.func)
            inner = self.returned_function(factory) if factory is not None else None
            if inner is None and type(e.func) is ast.Name and f"{e.func.id}.__call__" in self.functions:
                inner = self.functions[f"{e.func.id}.__call__"]  # `tilt = Tilt(val)`: calling the object runs __call__
            return [inner] if inner is not None else []
        return []

    def unpacked_elements(self, f: FuncInfo, name: str) -> list[tuple[FuncInfo, ast.expr]]:
        """(function, returned element) for a name of f bound by unpacking the tuple a module
        function returns (`lookup, commit = make_cache(n)` with `return lookup, commit`)."""
        out = []
        for st in self.under(f, self.nodes_of(ast.Assign)):
            t = st.targets[0] if len(st.targets) == 1 else None
            if type(t) is not ast.Tuple or type(st.value) is not ast.Call:
                continue
            k = next((i for i, e in enumerate(t.elts) if type(e) is ast.Name and e.id == name), None)
            g = self.resolve(st.value.func, f) if k is not None else None
            for r in self.own_returns(g) if g is not None and g is not f else ():
                if type(r.value) is ast.Tuple and len(r.value.elts) == len(t.elts):
                    out.append((g, r.value.elts[k]))
        return out

    def unpacked_function(self, f: FuncInfo, name: str) -> FuncInfo | None:
        """The nested function a name of f is bound to by unpacking a factory's tuple
        (`lookup, commit = make_cache(n)` with `return lookup, commit`), or None."""
        key = ("unpacked", f.qualname, name)
        if key not in self._facts:
            found = None
            for factory, e in self.unpacked_elements(f, name):
                inner = self.nested(factory)
                if type(e) is ast.Name and e.id in inner:
                    found = inner[e.id]
            self._facts[key] = found
        return self._facts[key]

    def nested(self, f: FuncInfo) -> dict[str, FuncInfo]:
        """The functions defined directly inside f, by name."""
        children = self.once("nested functions", _children)
        return children.get(f.qualname, {})

    def own_returns(self, f: FuncInfo) -> list[ast.Return]:
        """f's return statements, not those of the functions nested in it."""
        spans = [(g.node.lineno, g.node.end_lineno) for g in self.nested(f).values()]
        return [r for r in self.under(f, self.nodes_of(ast.Return)) if not any(a <= r.lineno <= b for a, b in spans)]

    def wrappers(self, f: FuncInfo) -> tuple[str, ...]:
        """The functions that run when f is called because a module decorator replaced it:
        `@deco` whose nested `wrapped` it returns, or `@factory(args)` returning such a
        decorator (`@with_hint(table, beta)` -> `decorate` -> `wrapped`)."""
        key = ("wrappers", f.qualname)
        if key not in self._facts:
            found = []
            for d in getattr(f.node, "decorator_list", ()):
                deco = self.resolve(d.func if type(d) is ast.Call else d, f)
                if deco is not None and type(d) is ast.Call:
                    deco = self.returned_function(deco)
                wrapper = self.returned_function(deco) if deco is not None else None
                if wrapper is not None and wrapper is not f:
                    found.append(wrapper.qualname)
            self._facts[key] = tuple(found)
        return self._facts[key]

    def made_functions(self, f: FuncInfo, value) -> list[FuncInfo]:
        """The module functions a factory call may return, one per return statement of the
        factory: a def by name, `functools.partial(fn, ...)`'s function, both branches of a
        conditional (`head = fastce.make_head(name)` with `return full_logprob` and
        `return partial(shortlist_logprob, k=k)`), every entry of a dispatch table it returns."""
        factory = self.resolve(value.func, f) if type(value) is ast.Call else None
        out: list = []
        for r in self.own_returns(factory) if factory is not None else ():
            for e in (r.value.body, r.value.orelse) if type(r.value) is ast.IfExp else (r.value,):
                if type(e) is ast.Call and lb.call_name(e.func) == "partial" and e.args:
                    e = e.args[0]
                if type(e) is ast.Subscript and type(e.slice) is not ast.Constant:
                    # `def get_source(name): return SOURCES[name]`: a getter of a dispatch table's entry
                    out += [g for g in self.dispatched(factory, e) if g not in out]
                    continue
                g = self.nested(factory).get(e.id) or self.resolve(e, factory) if type(e) is ast.Name else None
                if g is not None and g not in out:
                    out.append(g)
        return out

    def returned_function(self, f: FuncInfo) -> FuncInfo | None:
        """The nested function f returns (`def make_hook(s): def h(...): ...; return h`)."""
        inner = self.nested(f)
        return next((inner[r.value.id] for r in self.own_returns(f) if type(r.value) is ast.Name and r.value.id in inner), None)


def _dict_loop_names(m) -> set[str]:
    """Names bound by loops over a dict's values: `for k, fn in d.items()`, `for fn in d.values()`."""
    out = set()
    comps = [g for kind in (ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp) for c in m.nodes_of(kind)
             for g in c.generators]
    for loop in [*m.nodes_of(ast.For), *comps]:
        it, t = loop.iter, loop.target
        if type(it) is ast.Call and type(it.func) is ast.Attribute and it.func.attr in ("items", "values"):
            names = t.elts if type(t) is ast.Tuple else [t]
            out |= {n.id for n in names if type(n) is ast.Name}
    return out


def _children(m) -> dict[str, dict[str, FuncInfo]]:
    out: dict[str, dict[str, FuncInfo]] = {}
    for g in m.functions.values():
        if g.parent is not None:
            out.setdefault(g.parent.qualname, {})[g.name] = g
    return out


def _values_by_name(m) -> dict[str, list]:
    """name -> the values assigned to it (`name = value`, `a = name = value`), in module order."""
    out: dict[str, list] = {}
    for st in m.nodes_of(ast.Assign):
        for name in dict.fromkeys(t.id for t in st.targets if type(t) is ast.Name):
            out.setdefault(name, []).append(st.value)
    return out


def _made_function_names(m) -> dict[str, list[str]]:
    """qualified name of a nested function -> the names bound to a factory call returning it
    (`step_fn = make_stepper(...)`: calls of `step_fn` are calls of `make_stepper.step`)."""
    out: dict[str, list[str]] = {}
    for name, values in m.once("values bound by name", _values_by_name).items():
        for v in values:
            if type(v) is ast.Call and type(v.func) is ast.Name and v.func.id in m.by_name:
                for g in m.function_values(v):
                    if g.name != name and name not in out.setdefault(g.qualname, []):
                        out[g.qualname].append(name)
    return out


def _by_call_name(calls) -> dict[str, list[ast.Call]]:
    out: dict[str, list[ast.Call]] = {}
    for c in calls:
        out.setdefault(lb.call_name(c.func), []).append(c)
    return out


def _function_attributes(m) -> dict:
    """attribute -> the function or partial stored in `self.attribute`, where the module
    binds that attribute exactly once."""
    bound: dict = {}
    for a in [*m.nodes_of(ast.Assign), *m.nodes_of(ast.AnnAssign)]:  # (`self.objective: Callable = partial(...)`)
        for t in a.targets if type(a) is ast.Assign else [a.target] if a.value is not None else []:
            if type(t) is ast.Attribute and type(t.value) is ast.Name and t.value.id == "self":
                bound.setdefault(t.attr, []).append(a.value)
    return {k: v[0] for k, v in bound.items() if len(v) == 1 and (type(v[0]) is ast.Name or (
        type(v[0]) is ast.Call and lb.call_name(v[0].func) == "partial" and v[0].args))}


def _function_slots(m) -> dict:
    """(holder name or attribute, constant key) -> the value stored there by a dict literal."""
    out = {}
    for c in m.nodes_of(ast.Call):  # `SCORERS.update({f"k@{a}": partial(score, alpha=a) for a in GRID})`
        if type(c.func) is ast.Attribute and c.func.attr == "update" and len(c.args) == 1 and type(c.func.value) is ast.Name:
            arg = c.args[0]
            values = [arg.value] if type(arg) is ast.DictComp else arg.values if type(arg) is ast.Dict else []
            for i, v in enumerate(values):
                if type(v) in (ast.Call, ast.Name, ast.Attribute):
                    out.setdefault((c.func.value.id, f"<update {c.lineno}.{i}>"), v)
    for holder, stores in m.once("constant-key stores", constant_key_stores).items():  # `SCORERS["slot"] = score_slot`
        for k, v in stores:
            if isinstance(k, str) and type(v) in (ast.Call, ast.Name, ast.Attribute):
                out.setdefault((holder, k), v)
    for a in m.nodes_of(ast.Assign):
        if type(a.value) is not ast.Dict or len(a.targets) != 1:
            continue
        t = a.targets[0]
        holder = t.attr if type(t) is ast.Attribute else t.id if type(t) is ast.Name else None
        for k, v in zip(a.value.keys, a.value.values):
            if holder and type(k) is ast.Constant and isinstance(k.value, str) and type(v) in (ast.Call, ast.Name, ast.Attribute):
                out[(holder, k.value)] = v
    return out


def _forwards(lam: ast.Lambda) -> bool:
    """`lambda a, b: g(a, b)`: the body calls something with the lambda's own parameters, in order."""
    body, params = lam.body, [a.arg for a in lam.args.posonlyargs + lam.args.args]
    return type(body) is ast.Call and not body.keywords and len(body.args) == len(params) and all(
        type(a) is ast.Name and a.id == p for a, p in zip(body.args, params))


def _forwarded_to(m, caller, func) -> "FuncInfo | None":
    """The module function a forwarding lambda calls, read from the source (the same in every
    round): a def by name, or what the caller binds the name to (`scorer = partial(stats.blend,
    stream=val)`: the one method of the module named `blend`)."""
    if type(func) is ast.Name:
        found = m.resolve(func, caller)
        if found is not None:
            return found
        values = [a.value for a in m.under(caller, m.nodes_of(ast.Assign))
                  if len(a.targets) == 1 and type(a.targets[0]) is ast.Name and a.targets[0].id == func.id]
        if len(values) != 1:
            return None
        func = values[0].args[0] if type(values[0]) is ast.Call and lb.call_name(values[0].func) == "partial" \
            and values[0].args else values[0]
        if type(func) is ast.Name:
            return m.resolve(func, caller)
    if type(func) is ast.Attribute:
        named = m.by_name.get(func.attr, [])
        return named[0] if len(named) == 1 else None
    return None
