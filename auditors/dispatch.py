"""Dispatch tables: callables picked from a dict by a key (`TTT_PATHS[path](...)`,
`{"eval": ev, "train": tr}[mode]()`, a registry a decorator fills or one built from the
module's own names), the entry a key's default picks, and the keys a loop runs through.
Found from the source, so the answers are the same in every fixpoint round.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from auditors import labels as lb

if TYPE_CHECKING:  # (flow imports calls, which reads dispatch tables from here)
    from auditors.flow import FuncInfo


def dispatch_table(f: FuncInfo, func: ast.expr) -> ast.Dict | None:
    """The dict literal a subscript call reads its callable from (`TABLE[key](...)`)."""
    if type(func) is not ast.Subscript:
        return None
    name = table_name(f, func.value)
    table = f.binding(name) if name else func.value
    return table if type(table) is ast.Dict else None


def table_name(f: FuncInfo, value: ast.expr) -> str | None:
    """The name a table is read by: `TABLE`, or `calib.TABLE` of a sibling module merged
    into this one (a library's attribute is none of this file's tables)."""
    if type(value) is ast.Name:
        return value.id
    from auditors.analysis import LIBRARIES  # (analysis imports the flow, which imports this module)
    imported = f.module.imported_modules()
    if type(value) is ast.Attribute and type(value.value) is ast.Name and value.value.id in imported \
            and imported[value.value.id] not in LIBRARIES and value.attr in f.module.functions["<module>"].defs:
        return value.attr
    return None


def dispatch_items(f: FuncInfo, func: ast.expr) -> list | None:
    """(constant key, value) of a dispatch table: its dict literal's items, then entries the
    module adds with constant keys (`SCORERS["slot"] = score_slot`)."""
    table = dispatch_table(f, func)
    name = table_name(f, func.value) if type(func) is ast.Subscript else None
    if table is None:
        held = f.binding(name) if name else None
        return _by_name_prefix(f.module, held) if type(held) is ast.DictComp else None
    items = [(k.value, v) for k, v in zip(table.keys, table.values) if type(k) is ast.Constant]
    if name:
        items += f.module.once("constant-key stores", constant_key_stores).get(name, [])
        items += f.module.once("registered by decorators", _registered).get(name, [])
    return items


def _registered(m) -> dict:
    """name -> (key, function) of the functions a registering decorator stores in a table
    (`@prior_source("hub") def from_hub(...)` with `def prior_source(name): def deco(fn):
    PRIOR_SOURCES[name] = fn; return fn; return deco`)."""
    stores: dict[str, tuple[str, int]] = {}  # factory name -> (table, index of the key parameter)
    for g in m.functions.values():
        if g.parent is None or g.parent.qualname == "<module>" or len(g.params) != 1:
            continue
        factory = g.parent
        for a in m.under(g, m.nodes_of(ast.Assign)):
            t = a.targets[0] if len(a.targets) == 1 else None
            if type(t) is ast.Subscript and type(t.value) is ast.Name and type(t.slice) is ast.Name \
                    and t.slice.id in factory.params and type(a.value) is ast.Name and a.value.id == g.params[0]:
                stores[factory.name] = (t.value.id, factory.params.index(t.slice.id))
    out: dict = {}
    for d in m.nodes_of(ast.FunctionDef):
        for dec in d.decorator_list:
            if type(dec) is ast.Call and type(dec.func) is ast.Name and dec.func.id in stores:
                table, i = stores[dec.func.id]
                if i < len(dec.args) and type(dec.args[i]) is ast.Constant:
                    out.setdefault(table, []).append((dec.args[i].value, ast.Name(d.name, ast.Load(), lineno=d.lineno,
                                                                                    col_offset=d.col_offset)))
    return out


def constant_key_stores(m) -> dict:
    """name -> (key, value) of each `NAME["key"] = value` in the module, in order."""
    out: dict = {}
    for a in m.nodes_of(ast.Assign):
        for t in a.targets:
            if type(t) is ast.Subscript and type(t.value) is ast.Name and type(t.slice) is ast.Constant:
                out.setdefault(t.value.id, []).append((t.slice.value, a.value))
    return out


def _by_name_prefix(m, comp: ast.DictComp) -> list | None:
    """(key, function name) of a registry built from the module's own names, `{name[len(P):]:
    fn for name, fn in globals().items() if name.startswith(P)}` (also over `dict(globals())`
    or `vars()`, keyed by `name.removeprefix(P)` or the whole name): every module function
    whose name starts with the prefix, under its key."""
    if len(comp.generators) != 1:
        return None
    g = comp.generators[0]
    it = g.iter
    source = it.func.value if type(it) is ast.Call and type(it.func) is ast.Attribute and it.func.attr == "items" else None
    if type(source) is ast.Call and lb.call_name(source.func) == "dict" and len(source.args) == 1:
        source = source.args[0]
    if not (type(source) is ast.Call and lb.call_name(source.func) in ("globals", "vars") and not source.args) \
            or type(g.target) is not ast.Tuple or len(g.target.elts) != 2 \
            or not all(type(e) is ast.Name for e in g.target.elts) or type(comp.value) is not ast.Name \
            or comp.value.id != g.target.elts[1].id:
        return None
    name = g.target.elts[0].id
    prefixes = [c.args[0].value for c in g.ifs if type(c) is ast.Call and type(c.func) is ast.Attribute
                and c.func.attr == "startswith" and type(c.func.value) is ast.Name and c.func.value.id == name
                and len(c.args) == 1 and type(c.args[0]) is ast.Constant and isinstance(c.args[0].value, str)]
    if len(prefixes) != 1:
        return None
    prefix, key = prefixes[0], comp.key
    cut = (type(key) is ast.Subscript and type(key.value) is ast.Name and key.value.id == name
           and type(key.slice) is ast.Slice and key.slice.upper is None) or (
        type(key) is ast.Call and type(key.func) is ast.Attribute and key.func.attr == "removeprefix")
    if not cut and not (type(key) is ast.Name and key.id == name):
        return None
    out = []
    for st in m.tree.body:
        if type(st) in (ast.FunctionDef, ast.AsyncFunctionDef) and st.name.startswith(prefix):
            ref = ast.copy_location(ast.Name(id=st.name, ctx=ast.Load()), st)
            out.append((st.name[len(prefix):] if cut else st.name, ref))
    return out


def dispatch_entry(f: FuncInfo, func: ast.Subscript):
    """The value of the dispatch table's entry that the key selects under the file's own
    defaults (a constant, a name bound to one, `os.environ.get("K", "eval")`, a constant
    slot of a settings dict), or None when the launch decides."""
    items = dispatch_items(f, func)
    key = default_value(f, func.slice) if items is not None else None
    if not isinstance(key, str):
        return None
    return next((v for k, v in items if k == key), None)


def default_value(f: FuncInfo, e, depth: int = 0):
    """A constant an expression evaluates to with nothing set in the environment, or None."""
    if depth > 4 or e is None:
        return None
    if type(e) is ast.Constant:
        return e.value
    if type(e) is ast.Name:
        return default_value(f, f.binding(e.id), depth + 1)
    if type(e) is ast.Call and len(e.args) >= 2 and type(e.args[0]) is ast.Constant and isinstance(e.args[0].value, str) \
            and lb.call_name(e.func) not in ("replace", "join", "split"):
        return default_value(f, e.args[1], depth + 1)  # `os.environ.get("SOURCE", "eval")`, `E("SOURCE", "eval")`
    if type(e) is ast.Call and type(e.func) is ast.Name and e.func.id in ("str", "int") and len(e.args) == 1:
        return default_value(f, e.args[0], depth + 1)
    if type(e) is ast.Attribute and e.attr in f.module.class_defs and type(e.value) in (ast.Name, ast.Attribute):
        if f.module.once("fields set by name", fields_set_by_name):
            return None  # `for k, v in json.load(fh).items(): setattr(cfg, k, v)`: a settings file may change any field
        try:  # `cfg.calib_source` of a settings class: `calib_source: str = _env("GPTQ_CALIB_SOURCE", "selfgen")`
            return default_value(f, ast.parse(f.module.class_defs[e.attr], mode="eval").body, depth + 1)
        except SyntaxError:
            return None
    if type(e) is ast.Attribute and lb.dotted(e):  # `hp.polish_src` set once: `hp.polish_src = env("POLISH_SRC", "replay")`
        stores = f.module.once("attribute stores", _attribute_stores).get(lb.dotted(e), ())
        return default_value(f, stores[0], depth + 1) if len(stores) == 1 else None
    if type(e) is ast.Subscript and type(e.slice) is ast.Constant:
        holder = f.binding(e.value.id) if type(e.value) is ast.Name else None
        if type(holder) is ast.Dict:  # `CALIB["source"]` of a settings dict literal
            return default_value(f, next((v for k, v in zip(holder.keys, holder.values)
                                          if type(k) is ast.Constant and k.value == e.slice.value), None), depth + 1)
    return None


def fields_set_by_name(m) -> bool:
    """The module sets attributes by computed names (`setattr(cfg, k, v)`,
    `cfg.__dict__.update(loaded)`, `vars(cfg).update(loaded)`)."""
    for c in m.nodes_of(ast.Call):
        name = lb.call_name(c.func)
        if name == "setattr" and len(c.args) == 3 and type(c.args[1]) is not ast.Constant:
            return True
        if name == "update" and type(c.func) is ast.Attribute and (
                type(c.func.value) is ast.Attribute and c.func.value.attr == "__dict__"
                or type(c.func.value) is ast.Call and lb.call_name(c.func.value.func) == "vars"):
            return True
    return False


def _attribute_stores(m) -> dict[str, list]:
    """Dotted attribute name -> the values assigned to it anywhere in the module."""
    out: dict[str, list] = {}
    for a in m.nodes_of(ast.Assign):
        for t in a.targets:
            if type(t) is ast.Attribute and lb.dotted(t):
                out.setdefault(lb.dotted(t), []).append(a.value)
    return out


ANY_KEY = ["<any>"]  # a loop variable over something not known here: every entry may run


def loop_over(f, key):
    """The innermost `for` of f whose variable is the name `key`, around where it is used."""
    if type(key) is not ast.Name:
        return None
    around = [n for n in lb.walk(f.node) if type(n) in (ast.For, ast.AsyncFor) and type(n.target) is ast.Name
              and n.target.id == key.id and n.lineno <= key.lineno <= n.end_lineno]
    return max(around, key=lambda n: n.lineno) if around else None


def loop_keys(f, key) -> list | None:
    """The constants a loop variable runs over (`for ph in ("fit", "score")`, a name bound to
    such a tuple, a settings attribute whose class default is one: `for op in plan.ops`),
    ANY_KEY for a loop variable over anything else, None when the key is no loop variable."""
    loop = loop_over(f, key)
    if loop is None:
        return _planned_keys(f, key)
    it = loop.iter
    if type(it) is ast.Name:
        it = f.binding(it.id)
    elif type(it) is ast.Attribute and it.attr in f.module.class_defs:
        try:
            it = ast.parse(f.module.class_defs[it.attr], mode="eval").body
        except SyntaxError:
            it = None
    if type(it) in (ast.Tuple, ast.List) and all(type(e) is ast.Constant for e in it.elts):
        return [e.value for e in it.elts]
    return ANY_KEY


def _planned_keys(f, key) -> list | None:
    """The keys that a field of the items of a generator takes, in the order it yields them
    (`for step in iter_steps(...): OPS[step.kind](step)`, where iter_steps yields
    `Step(kind=phase, ...)` inside `for phase in ("score", "adapt")`); ANY_KEY when some
    yield's field is not known here, None when the key is no such field."""
    if type(key) is not ast.Attribute or type(key.value) is not ast.Name:
        return None
    loop = loop_over(f, key.value)
    gen = f.module.resolve(loop.iter.func, f) if loop is not None and type(loop.iter) is ast.Call else None
    if gen is None:
        return None
    yields = sorted(gen.module.under(gen, gen.module.nodes_of(ast.Yield)), key=lambda y: (y.lineno, y.col_offset))
    if not yields:
        return None
    keys = []
    for y in yields:
        field = next((k.value for k in y.value.keywords if k.arg == key.attr), None) if type(y.value) is ast.Call else None
        if type(field) is ast.Constant:
            keys.append(field.value)
            continue
        looped = loop_keys(gen, field) if type(field) is ast.Name else None
        if not looped or looped is ANY_KEY:
            return ANY_KEY
        keys += looped
    return keys


def entry_guards(m) -> list[tuple[int, int, str, str]]:
    """(first line, last line, function, guard) for each lambda of a dispatch table that its
    function calls at one place with a key not fixed in the code (`providers[source]()` with
    `providers = {"val": lambda: rows(val_glob), ...}`): the lambda's body runs only when
    `source == "val"`, so what lies in it takes that guard."""
    out = []
    for f in m.functions.values():
        calls = [c for c in m.under(f, m.nodes_of(ast.Call)) if type(c.func) is ast.Subscript
                 and type(c.func.slice) is not ast.Constant and dispatch_table(f, c.func) is not None]
        tables = [id(dispatch_table(f, c.func)) for c in calls]
        for c in calls:
            table = dispatch_table(f, c.func)
            if tables.count(id(table)) != 1:
                continue  # called at two places: no one key decides
            for k, v in zip(table.keys, table.values):
                if type(k) is ast.Constant and isinstance(k.value, str) and type(v) is ast.Lambda:
                    out.append((v.lineno, v.end_lineno, f.qualname, f"{lb.src(c.func.slice)} == {k.value!r}"))
    return out


def lambdas_applied(info, func, entry, args: list, kws: dict) -> frozenset:
    """What the lambdas a call may reach return with this call's arguments bound to their
    parameters (`gate = GATES[mode]` holding `lambda lp, y: where(lp.gather(1, y) < tau, ...)`):
    the entry its key picks, else every lambda of the table."""
    if entry is None:
        value = info.binding(func.id) if type(func) is ast.Name else func
        if type(value) is ast.Subscript and type(value.slice) is not ast.Constant:
            items = dispatch_items(info, value)
            entry = dispatch_entry(info, value) if items is not None else None
            lambdas = [entry] if entry is not None else [v for _, v in items or ()]
        else:
            lambdas = [value]
    else:
        lambdas = [entry]
    out = lb.EMPTY
    for lam in lambdas:
        if type(lam) is ast.Lambda:
            params = [a.arg for a in lam.args.posonlyargs + lam.args.args]
            bound = dict(zip(params, args)) | {k: v for k, v in kws.items() if k in params}
            if None in kws:  # `SOURCES[name](net, cfg, **kw)`: the spread may fill any parameter left
                bound |= {p: kws[None] for p in params + [a.arg for a in lam.args.kwonlyargs] if p not in bound}
            out |= info.applied(lam.body, {p: bound.get(p, lb.EMPTY) for p in params + [a.arg for a in lam.args.kwonlyargs]})
    return out
