"""What objects, dicts and split selectors carry, for the data-flow pass (`auditors.flow`).

An instance carries the data splits its constructor stored from its arguments (a train
pool and a val pool of one class stay apart); a method called on it returns those of
the attributes it reads. A dict's constant keys keep their own values, and a value
picked by comparing a name with a split's name (`TRAIN if split == "train" else VAL`)
is the split that name carries. `FuncInfo` inherits these helpers; they use its
environment (`lookup`, `set_env`, `events`) and the module's facts.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from auditors import labels as lb
from auditors.labels import DATA, EMPTY

if TYPE_CHECKING:
    from auditors.flow import FuncInfo


_SERIALIZED = frozenset({"tobytes", "tostring", "dumps", "getvalue"})  # data as bytes, stored as it is


class ObjectFlow:
    """Mixed into `FuncInfo`: the per-instance, per-key and per-split parts of its pass."""

    def stored_in_container(self, holder: ast.Attribute, data: frozenset, value: ast.expr) -> None:
        """`obj.container[k] = arr.tobytes()`: data kept as is (serialized) in an object's
        container is read by the methods of its class: `self.sections[name] = ...` in a method,
        `exporter.extras["memo"] = compress(val.tobytes())` on an object of a module class.
        (Features computed from data stay per call: the class's objects differ.)"""
        if type(holder.value) is not ast.Name or not any(
                type(c) is ast.Call and lb.call_name(c.func) in _SERIALIZED for c in lb.walk(value)):
            return
        if holder.value.id == "self":
            self.add_attr_labels(holder.attr, data, self.cls)
            return
        for cls in self.module._receiver_classes(holder.value, self)[:1]:
            self.add_attr_labels(holder.attr, data, cls)

    def _constructed(self, value: ast.Call) -> dict[str, frozenset]:
        """attribute -> data splits, for `ShardPool(pattern)` with a class of this module: what
        its `__init__` stores from the arguments of this call."""
        fields = self.module.constructor_fields(value.func.id)
        ev = next((e for e in reversed(self.events) if e.node is value), None) if fields else None
        if ev is None:
            return {}
        params = self.module.functions[f"{value.func.id}.__init__"].params[1:]
        passed = dict(zip(params, ev.data["args"])) | {k: v for k, v in ev.data["kws"].items() if k}
        return {attr: EMPTY.union(*[passed.get(p, EMPTY) for p in feeds]) & DATA for attr, feeds in fields.items()}

    def _instance_fields(self, name: str, value: ast.expr) -> None:
        """`pool = ShardPool(pattern)`: `pool.files` holds the data splits of the arguments
        `__init__` stores there. Kept per instance (as names of this function), so a train
        loader and a val loader of one class stay apart. `pool = ShardPool(p) if on else None`
        builds it on one side; `stream = late_stream` makes stream that object too."""
        if type(value) is ast.IfExp:
            for side in (value.body, value.orelse):
                self._instance_fields(name, side)
            return
        if type(value) is ast.Name:
            prefix = value.id + "."
            for key in [k for k in self.env if k.startswith(prefix)]:
                v = self.lookup(key)
                self.read_names.setdefault(key, v)
                if v & DATA:
                    self.module.instances.add(name)
                    self.set_env(name + key[len(value.id):], v)
            return
        if type(value) is not ast.Call or type(value.func) is not ast.Name:
            return
        for attr, v in self._constructed(value).items():
            if v:
                self.module.instances.add(name)
                self.set_env(f"{name}.{attr}", v)

    def _instance_data(self, recv: ast.expr, method: "FuncInfo") -> frozenset:
        """The data splits `obj.method()` returns from what obj was built with: those of the
        attributes of obj that the method reads and may return (obj named, or built right there:
        `TokenStream(pattern).take(n)`)."""
        if type(recv) is ast.Call and type(recv.func) is ast.Name and method.is_method:
            built = self._constructed(recv)
            return EMPTY.union(*[built.get(a, EMPTY) for a in self.module.returned_reads(method)])
        if not method.is_method or not self.module.instances:
            return EMPTY  # (most modules build no object from data: spare the name lookups)
        d = lb.dotted(recv)
        if d is None or d == "self" or d not in self.module.instances:
            return EMPTY
        out = EMPTY
        for attr in self.module.returned_reads(method):
            key = f"{d}.{attr}"
            v = self.lookup(key)
            self.read_names.setdefault(key, v)
            out |= v
        return out & DATA

    def _receiver_data(self, recv: ast.expr, method: "FuncInfo", recv_labels: frozenset) -> frozenset:
        """The data splits `obj.method()` returns: what this instance was built with, or, for
        an object of unknown construction (a loader a helper handed back), the splits the
        object itself carries when the method returns data."""
        own = self._instance_data(recv, method)
        if not own and method.is_method and (method.ret & (DATA | {"BLOB"}) or _reads_files(self.module, method)):
            own = recv_labels & DATA
        return own

    def _split_selector(self, test) -> frozenset:
        """The data split a test picks, when it compares a value to a split's name
        (`split == "train"`): the splits that value carries (a parameter's, per call)."""
        if type(test) is not ast.Compare or len(test.ops) != 1 or type(test.ops[0]) not in (ast.Eq, ast.NotEq):
            return EMPTY
        sides = (test.left, test.comparators[0])
        named = [s for s in sides if type(s) is ast.Constant and isinstance(s.value, str) and lb.split_labels(s.value)]
        if len(named) != 1:
            return EMPTY
        other = sides[1] if named[0] is sides[0] else sides[0]
        return self.labels_of(other) & DATA if type(other) in (ast.Name, ast.Attribute) else EMPTY

    def namespace(self, e: ast.Call, every: frozenset) -> frozenset:
        """`SimpleNamespace(**cfg)` (or `(train_files=..., val_files=...)`): a settings object
        read by attribute, like a Hyperparameters class. Each field's labels go to the
        module's attribute labels (`c.val_files` reads VAL, `c.train_files` TRAIN), and the
        object itself no longer carries the splits its fields name, so `GPT(c)` is not
        built from validation data."""
        fields: dict[str, frozenset] = {k.arg: self.L(k.value) for k in e.keywords if k.arg}
        for holder in [k.value for k in e.keywords if k.arg is None] + list(e.args[:1]):
            copied = self._copied_entries(holder.id) if type(holder) is ast.Name else None
            keyed = type(holder) is ast.Name and holder.id in self.module.keyed_roots
            if copied is None and not keyed:
                return every  # fields unknown: the object carries what it was built from
            entries = dict(copied or {})
            for name, v in (self._keyed_entries(holder.id) if keyed else {}).items():
                entries[name] = entries.get(name, EMPTY) | v
            for name, v in entries.items():
                fields[name] = fields.get(name, EMPTY) | v
        for name, v in fields.items():
            self.add_attr_labels(name, v)
        named = EMPTY.union(*fields.values()) & DATA
        return every - named

    def _copied_entries(self, name: str) -> dict[str, frozenset] | None:
        """`for k, default in DEFAULTS.items(): cfg[k.lower()] = ...default...`: the settings
        dict `name` filled by a loop over a dict literal's entries, each key kept as it is or
        in lower or upper case; None when `name` is not filled that way."""
        m = self.module
        for loop in m.under(self, m.nodes_of(ast.For)):
            it, target = loop.iter, loop.target
            if type(it) is not ast.Call or lb.call_name(it.func) != "items" or type(it.func) is not ast.Attribute \
                    or type(it.func.value) is not ast.Name or it.func.value.id not in m.keyed_roots \
                    or type(target) is not ast.Tuple or len(target.elts) != 2 or type(target.elts[0]) is not ast.Name:
                continue
            key = target.elts[0].id
            for st in lb.walk(loop):
                if type(st) is ast.Assign and len(st.targets) == 1 and type(st.targets[0]) is ast.Subscript \
                        and type(st.targets[0].value) is ast.Name and st.targets[0].value.id == name:
                    slot = st.targets[0].slice
                    case = None if type(slot) is ast.Name and slot.id == key else (
                        slot.func.attr if type(slot) is ast.Call and type(slot.func) is ast.Attribute and slot.func.attr in
                        ("lower", "upper") and type(slot.func.value) is ast.Name and slot.func.value.id == key else "")
                    if case == "":
                        return None
                    source = self._keyed_entries(it.func.value.id)
                    return {(k if case is None else getattr(k, case)()): v for k, v in source.items() if isinstance(k, str)}
        return None

    def _keyed_entries(self, name: str) -> dict[str, frozenset]:
        """Constant key -> labels, of the dict `name` (here, around here, or in the module)."""
        prefix, out = f"{name}[", {}
        f, chain = self, []
        while f is not None:
            chain.append(f)
            f = f.parent
        mod = self.module.functions.get("<module>")
        for g in chain + ([mod] if mod is not None and mod not in chain else []):
            for key, v in g.env.items():
                if key.startswith(prefix) and key.endswith("]"):
                    k = ast.literal_eval(key[len(prefix):-1])
                    out[k] = out.get(k, EMPTY) | v
        return out

    def keyed_entries(self, name: str, value: ast.expr) -> None:
        """The constant keys of a dict literal, of `dict(k=v, ...)` or of the keywords of
        `name.update(k=v)` / `name.update({...})` each keep their own value (`CFG["data_path"]`
        is not the `val_shard_names=` stored beside it)."""
        if type(value) is ast.DictComp:  # `{s: f"fineweb_{s}_*.bin" for s in ("train", "val")}`: one entry per name
            g = value.generators[0]
            if len(value.generators) == 1 and not g.ifs and type(g.target) is ast.Name and type(value.key) is ast.Name \
                    and value.key.id == g.target.id and type(g.iter) in (ast.Tuple, ast.List) \
                    and all(type(c) is ast.Constant and isinstance(c.value, str) for c in g.iter.elts):
                for c in g.iter.elts:
                    self.module.keyed_roots.add(name)
                    self.set_env(keyed(name, c.value), self.labels_of(value.value, {g.target.id: lb.split_labels(c.value)}))
            return
        if type(value) is ast.Dict:
            pairs = [(k.value, v) for k, v in zip(value.keys, value.values) if type(k) is ast.Constant and isinstance(k.value, str)]
        else:
            pairs = [(k.arg, k.value) for k in value.keywords if k.arg]
            if value.args and type(value.args[0]) is ast.Dict:
                self.keyed_entries(name, value.args[0])
        for k, v in pairs:
            self.module.keyed_roots.add(name)
            self.set_env(keyed(name, k), self.labels_of(v))

    def _field_read(self, e: ast.Attribute) -> frozenset | None:
        """What `obj.attr` holds when obj's class is known and keeps that field: a dataclass
        parameter's field (`win: Window`, `win.y` the targets, `win.x` the context), or
        `self.trainer.recent` with `self.trainer = Trainer(...)` (what Trainer keeps in
        `recent`, not everything the trainer object was built with); else None."""
        m = self.module
        if type(e.value) is ast.Name and e.value.id in self.params and m.class_attr_labels and m.has_dataclasses:
            cls = m.annotated_class(self, e.value.id)
            if cls is not None and e.attr in m.dataclass_fields(cls):  # (what constructions put in that field)
                v = m.class_attr_labels.get((cls, e.attr), m.attr_labels.get(e.attr, EMPTY))
                self.read_shared.setdefault(("class_attr", cls, e.attr), v)
                return v
        if self.cls and type(e.value) is ast.Attribute and type(e.value.value) is ast.Name and e.value.value.id == "self":
            held = m.field_classes(self.cls, e.value.attr)
            if len(held) == 1 and (held[0], e.attr) in m.class_attr_labels:
                v = m.class_attr_labels[(held[0], e.attr)]
                self.read_shared.setdefault(("class_attr", held[0], e.attr), v)
                return v
        return None

    def _constant_keys(self, it) -> list[str] | None:
        """The string constants a loop runs over: a tuple or list of them, a name bound to one,
        or to a dict literal with such keys (`for k in MIX`, `MIX.keys()`, `MIX.items()`'s keys
        are not a Name target), else None."""
        if type(it) is ast.Call and type(it.func) is ast.Attribute and it.func.attr == "keys" and not it.args:
            it = it.func.value
        if type(it) is ast.Name:
            it = self.binding(it.id)
        elems = it.keys if type(it) is ast.Dict else it.elts if type(it) in (ast.Tuple, ast.List) else None
        if elems and all(type(k) is ast.Constant and isinstance(k.value, str) for k in elems):
            return [k.value for k in elems]
        return None

    def _bound(self, key: str) -> bool:
        """Some function around this one (or the module) has set this name."""
        self.read_own.add(key)
        f = self
        while f is not None:
            if key in f.env:
                return True
            f = f.parent
        mod = self.module.functions.get("<module>")
        return mod is not None and key in mod.env


def _reads_files(m, method) -> bool:
    """The method returns a value and reads a file on the way, itself or through a helper
    (`self.buf = read_shard(self.files[i])`, then `return torch.cat(out)`), or its object's
    `__init__` builds a reader (`self.it = stream(files)`, then `next(self.it)`): it returns the data
    of the files its object holds, even where the path's split is not followed into the object
    (an `__init__` is not seeded with what each construction passes)."""
    returns = [r.value for r in m.under(method, m.nodes_of(ast.Return)) if r.value is not None]
    if not returns or any(type(v) is ast.Attribute and type(v.value) is ast.Name and v.value.id == "self" for v in returns):
        return False  # (`return self.model` after training on what it read: the model, not the files' data)
    def reads(g) -> bool:
        return m._transitive(g, lambda h: any(e.kind == "call" and e.data["name"] in lb.BLOB_FUNCS for e in h.events),
                             ("reads files",))
    init = m.functions.get(f"{method.cls}.__init__") if method.cls else None
    return reads(method) or (init is not None and reads(init))  # (`self.it = stream(files)`: a reader built once)


def keyed(name: str, key: str) -> str:
    """The env name of one constant key of a dict (`patterns["train"]`)."""
    return f"{name}[{key!r}]"
