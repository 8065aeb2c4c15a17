"""Facts about one module that reachability and folder checks read (JSON-ready, cached
with the rest of the analysis): each function's parameters and single bindings as
source text, every call site of the module's functions with its arguments and guards,
argparse defaults, environment variables the file sets or gives a default, hook
factories, imports, classes, and the script names the file mentions."""

from __future__ import annotations

import ast
import collections
import functools
import re

from auditors import labels as lb
from auditors.calls import NAMESPACES
from auditors.reach_scope import EACH
from auditors.rules import ctx_of
from auditors.dispatch import fields_set_by_name
from auditors.shipped_config import LOADERS, field_tables, named_files
from auditors.settings_forms import (dict_updates, field_env, field_overrides, guarded_defs, init_attrs, looped_fields,
                                     rebound_return, spec_fields)
from auditors.dispatch import ANY_KEY, default_value, dispatch_items, loop_keys
from auditors.registries import property_sites, registry_sites, table_constructions

PY_NAME = re.compile(r"""['"/\\]([\w.-]+\.py)\b""")  # a script named in a string or a path


def _segment(lines: list[bytes], node: ast.AST) -> str:
    """Source text of a node sliced from the file (much cheaper than unparsing it)."""
    if type(node) is _KeyIs:
        return f"({_segment(lines, node.key)}) == {node.value!r}"
    bounds = getattr(node, "range_guard", None)
    if bounds is not None:  # a loop's `stop > start`, made by the analysis: no text of its own
        stop, start, op = bounds
        return f"({_segment(lines, stop)}) {op} ({_segment(lines, start) if hasattr(start, 'lineno') else start.value})"
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first][node.col_offset:node.end_col_offset].decode("utf-8", "replace")
    parts = [lines[first][node.col_offset:]] + lines[first + 1:last] + [lines[last][:node.end_col_offset]]
    return b"\n".join(parts).decode("utf-8", "replace")


def _defs(m, f, seg) -> dict[str, str]:
    """Each name bound once in f -> the source of its value ("" when bound more than once); a
    loop variable as `__each_item__(<iterable>)`."""
    loops = {id(n.iter) for kind in (ast.For, ast.AsyncFor) for n in m.under(f, m.nodes_of(kind)) if type(n.target) is ast.Name}
    return {k: "" if v is None else f"{EACH}({seg(v)})" if id(v) in loops else seg(v) for k, v in f.defs.items()}


def reach_facts(m, tree) -> dict:
    raw_lines = [line.encode("utf-8") for line in m.lines]  # the lines the tree was parsed from
    seg = functools.partial(_segment, raw_lines)
    functions = {q: {"params": f.params, "is_method": f.is_method, "defs": {**_defs(m, f, seg), **guarded_defs(m, f, seg)}}
                 for q, f in m.functions.items()}
    for q, f in m.functions.items():
        held = init_attrs(m, f, seg)
        if held:  # `self.boost = boost`: read by `self.boost` in the class's other methods
            functions[q]["self_attrs"] = held
        last = f.node.body[-1] if q != "<module>" and f.node.body else None
        if type(last) is ast.Return and type(last.value) is ast.Name and f"{q}.{last.value.id}" in m.functions:
            functions[q]["returns"] = f"{q}.{last.value.id}"  # `def make_getter(prefix): def get(...): ...; return get`
        ret = _returned(f.node, seg) if q != "<module>" and (not f.is_method or f.is_property) and len(f.node.body) <= 6 else None
        if ret is not None and f.is_property:  # `@property def repo(self): return os.getenv("REPO", "")`, read as `cfg.repo`
            functions[q]["property"] = True
        if ret is not None:  # a small helper (`def env_int(k, d): return int(os.environ.get(k, d))`): inlined by guards
            functions[q]["ret"] = ret
            args = f.node.args
            functions[q]["param_defaults"] = {a.arg: seg(d) for a, d in zip(args.args[len(args.args) - len(args.defaults):],
                                                                          args.defaults)}
    calls: dict[str, list] = {}  # a function's (or a class's: its construction) name -> call sites
    classes = sorted({n.name for n in m.nodes_of(ast.ClassDef)})
    known = set(m.by_name) | set(classes)
    # mentions of each class besides its `class` line: one named other than in a call (a base, a table) escapes
    mentions = collections.Counter(re.findall(r"\b(" + "|".join(classes) + r")\b", m.source)) if classes else {}
    # (an annotation, `tilt: HintTilt`, or an import of the name builds or hands on nothing)
    typed = collections.Counter()
    if classes:
        typed.update(n.id for a in _annotations(m) for n in lb.walk(a) if type(n) is ast.Name)
        typed.update(a.asname or a.name for n in m.nodes_of(ast.ImportFrom) for a in n.names)
    class_refs = {c: mentions[c] - 1 - typed[c] for c in classes}
    called: set[str] = set()  # every called name: another file's functions may be among them
    arg_defaults: dict[str, str] = {}  # argparse destination -> source of its default
    arg_homes: dict[str, str] = {}  # argparse destination -> the function that declares it
    fields: dict[str, tuple] = {}  # settings-namespace field -> (its call, [function, source of its value])
    # partials bound to a name that the file calls (`run = partial(f, x)`, later `run(y)`)
    named_calls = {c.func.id for c in m.nodes_of(ast.Call) if type(c.func) is ast.Name}
    bound_partials = {id(a.value) for a in m.nodes_of(ast.Assign) if type(a.value) is ast.Call
                      and lb.call_name(a.value.func) == "partial" and len(a.targets) == 1
                      and type(a.targets[0]) is ast.Name and a.targets[0].id in named_calls}
    # (and those in a table's entries: `{"https": partial(fetch, timeout=120)}` runs where the table's entry is called)
    bound_partials |= {id(v) for d in m.nodes_of(ast.Dict) for v in d.values
                       if type(v) is ast.Call and lb.call_name(v.func) == "partial"}
    records = {c.name for c in m.nodes_of(ast.ClassDef) if any(lb.dotted(b) in ("NamedTuple", "typing.NamedTuple")
                                                              for b in c.bases)
               or any(lb.call_name(d.func if type(d) is ast.Call else d) == "dataclass"
                      for d in c.decorator_list)}  # classes whose keywords are their fields (`@dataclass(frozen=True)` too)
    for f in m.functions.values():
        for ev in f.events:
            if ev.kind != "call":
                continue
            node: ast.Call = ev.node
            called.add(ev.data["name"])
            own = f.cls if ev.data["name"] == "cls" and f.cls in records else None  # `return cls(rank, ws, ...)`
            if ev.data["name"] in NAMESPACES or ev.data["name"] in records or own \
                    or lb.dotted(node.func) in ("replace", "dataclasses.replace"):  # `replace(c, beta=_E("BETA", c.beta))`
                # `SimpleNamespace(two_pass=g("TWO_PASS", "0") == "1")`, `RunCfg(ttt_mode=...)` of a NamedTuple or
                # dataclass: read as `cfg.two_pass`
                made = ev.data["name"] if ev.data["name"] in records else own
                given = [(k.arg, k.value) for k in node.keywords]
                if made is not None:  # `RunContext(rank, world_size, ...)`: positional arguments fill the fields in order
                    given += list(zip(m.dataclass_fields(made), node.args))
                for arg, value in given:  # (a field two constructions set has no one value; one call may be recorded twice)
                    if arg and fields.get(arg, (node, None))[0] is node:  # (with the tests it is made under, if any)
                        fields[arg] = (node, [f.qualname, seg(value)] + ([[[seg(t), p] for t, p in ev.ctx.guards]]
                                                                         if ev.ctx.guards else []))
                    elif arg:
                        fields[arg] = (None, "")
            if ev.data["name"] == "add_argument" or (type(node.func) is ast.Name and type(f.binding(node.func.id)) is ast.Attribute
                                                     and f.binding(node.func.id).attr == "add_argument"):  # `a = p.add_argument`
                found = _argparse_default(node, seg)
                arg_defaults.update(found)
                arg_homes.update({dest: f.qualname for dest in found})  # (`env = os.environ` there, say)
            elif ev.data["name"] == "add_subparsers":
                arg_defaults.update(_subcommand_default(m, node))
            # call sites matter for this file's own functions, called here or passed as values (called by the receiver)
            targets = [(ev.data["name"], ())] if ev.data["name"] in known else _chosen(known, f, node.func)
            if not (ev.data["name"] == "partial" and id(node) in bound_partials):
                # (`run = partial(f, x)`: f runs where `run(...)` is called, and those calls name it)
                targets += [(a.id, ()) for a in list(node.args) + [k.value for k in node.keywords]
                            if isinstance(a, ast.Name) and a.id in m.by_name]
            handed = type(node.func) is ast.Name and node.func.id in f.params  # passed in: the passing call is its site
            for q in () if handed else m.targets(ev):  # what the analysis found the call reaches (a dict of bound methods, a partial)
                reached = q.rsplit(".", 1)[-1]
                if reached != ev.data["name"] and all(reached != t for t, _ in targets):
                    targets.append((reached, ()))
            if not targets:
                continue  # the site's text is sliced only when it is kept
            made = f.binding(node.func.id) if type(node.func) is ast.Name else None
            given = made if type(made) is ast.Call and lb.call_name(made.func) == "partial" and made.args else None
            args = [*given.args[1:], *node.args] if given is not None else node.args  # (a partial's bound arguments first)
            keywords = [*given.keywords, *node.keywords] if given is not None else node.keywords
            site = {"caller": f.qualname, "line": node.lineno, "method": isinstance(node.func, ast.Attribute),
                    "args": [seg(a) for a in args],
                    "kwargs": {k.arg: seg(k.value) for k in keywords if k.arg},
                    "guards": [[seg(t), p] for t, p in ev.ctx.guards]}
            for name, choice in targets:
                calls.setdefault(name, []).append(
                    {**site, "guards": site["guards"] + [[seg(t), p] for t, p in choice]} if choice else site)
    _decorator_sites(m, known, calls, seg)
    def site_of(g, c: ast.Call, ctx, *more) -> dict:  # a plain call `c` in g, under its guards and `more`
        return {"caller": g.qualname, "line": c.lineno, "method": False, "args": [seg(a) for a in c.args],
                "kwargs": {k.arg: seg(k.value) for k in c.keywords if k.arg},
                "guards": [[seg(t), p] for t, p in ctx.guards] + list(more)}
    for name, g, c, ctx in registry_sites(m):  # `for fn in _HOOKS[event]: fn(ctx)` runs each registered hook
        calls.setdefault(name, []).append(site_of(g, c, ctx))
    for name, g, c, ctx, guard in table_constructions(m):  # `ADAPTERS[mode](...)` builds Tent where mode == "tent"
        if not any(s["caller"] == g.qualname and s["line"] == c.lineno for s in calls.get(name, ())):
            calls.setdefault(name, []).append(site_of(g, c, ctx, [guard, True]))  # (a dict literal's are choices already)
    for name, g, a, ctx in property_sites(m):  # `self.body.encode()` runs the property `body`
        calls.setdefault(name, []).append({"caller": g.qualname, "line": a.lineno, "method": True, "args": [],
                                           "kwargs": {}, "guards": [[seg(t), p] for t, p in ctx.guards]})
    looped: dict[str, tuple] = {}  # (the module's walk sees a function's loops too: each loop's entries once)
    updates = dict_updates(tree, seg)
    for f in sorted(m.functions.values(), key=lambda g: g.qualname == "<module>"):
        for attr, value, loop, held in looped_fields(m, f):
            looped.setdefault((attr, id(loop)), (attr, value, f.qualname))
            if f.qualname == "<module>":  # `CFG["k"]` read back: the entry the loop rewrote
                updates.setdefault(held, {}).setdefault(attr, value)
    for attr, value, q in looped.values():  # `for key, default in DEFAULTS.items(): cfg[key.lower()] = ...`
        fields[attr] = (value, [q, value]) if attr not in fields else (None, "")
    entry = any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) or isinstance(s, ast.If) for s in tree.body)
    for q, f in m.functions.items():  # `self.flag = int(env.get("FLAG", "0"))` in a settings class's __init__
        if f.is_method and q.endswith(".__init__"):
            for a in m.under(f, m.nodes_of(ast.Assign)):
                for t in a.targets:
                    if type(t) is ast.Attribute and type(t.value) is ast.Name and t.value.id == "self":
                        fields[t.attr] = (t, [q, seg(a.value)]) if t.attr not in fields else (None, "")
    env_sets = {}
    for ev in m.functions["<module>"].events:
        if ev.kind == "call" and lb.dotted(ev.node.func) in ("os.environ.setdefault",) and len(ev.node.args) == 2:
            k, v = ev.node.args
            if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                env_sets[str(k.value)] = str(v.value)
    for st in tree.body:  # os.environ["K"] = "V" before the real script runs
        if (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Subscript)
                and lb.dotted(st.targets[0].value) == "os.environ" and isinstance(st.targets[0].slice, ast.Constant)
                and isinstance(st.value, ast.Constant)):
            env_sets[str(st.targets[0].slice.value)] = str(st.value.value)
        env_sets.update(_looped_env_sets(m, st))
    env_defaults = {}  # os.environ.setdefault("K", expr) anywhere: what a later os.environ["K"] reads when unset
    for f in m.functions.values():
        for ev in f.events:
            if ev.kind == "call" and ev.data["name"] == "setdefault" and lb.dotted(ev.node.func) == "os.environ.setdefault" \
                    and len(ev.node.args) == 2 and isinstance(ev.node.args[0], ast.Constant):
                env_defaults.setdefault(str(ev.node.args[0].value), [f.qualname, seg(ev.node.args[1])])
            elif ev.kind == "call" and ev.data["name"] == "setdefault" and ev.ctx.loops \
                    and lb.dotted(ev.node.func) == "os.environ.setdefault":
                for key, value in _looped_defaults(m, f, ev.ctx.loops[-1], ev.node.args, seg):
                    env_defaults.setdefault(key, value)
    factories = sorted(_factories(m))
    outgoing = _outgoing(m)
    loads = _loads(m, seg)
    # (`from .core import *` as ".core"; `from pkg import mod` also as "pkg.mod", a submodule it may name)
    imports = sorted({a.name for n in m.nodes_of(ast.Import) for a in n.names}
                     | {"." * n.level + (n.module or "") for n in m.nodes_of(ast.ImportFrom) if n.module}
                     | {"." * n.level + (f"{n.module}." if n.module else "") + a.name
                        for n in m.nodes_of(ast.ImportFrom) for a in n.names if a.name != "*"}
                     | loads[0])
    return {"functions": functions, "calls": calls, "called": sorted(called), "class_defs": m.class_defs, "entry": entry,
            "env_sets": env_sets, "imports": imports, "classes": classes, "mentions": sorted(set(PY_NAME.findall(m.source))),
            "arg_defaults": arg_defaults, "field_env": field_env(m), "spec_fields": spec_fields(m, seg), "dict_updates": updates, "arg_homes": arg_homes, "namespace_fields": _settled(m, fields, seg), "field_overrides": field_overrides(m, seg, set(arg_defaults)), "class_refs": class_refs, "env_defaults": env_defaults, "factories": factories,
            "outgoing": outgoing, "module_choices": loads[1], "settings_loads": loads[2],
            "field_tables": field_tables(m, seg) if m.has_dataclasses or m.once("fields set by name", fields_set_by_name)
            else []}


def _settled(m, fields: dict, seg) -> dict:
    """Fields with one value: the constructor's keyword, unless the field is assigned
    afterwards (`hp.eval_mode = env_str("EVAL_MODE", "phrase")`): then that one assignment,
    or none when several places assign it."""
    stores: dict[str, list] = {}
    for f in m.functions.values():
        for a in m.under(f, m.nodes_of(ast.Assign)) if f.qualname != "<module>" else m.nodes_of(ast.Assign):
            for t in a.targets:
                if type(t) is ast.Attribute and (t.attr in fields or type(t.value) is ast.Name and t.value.id != "self"):
                    stores.setdefault(t.attr, []).append((f.qualname, t, a.value))
    out = {}
    for k, found in stores.items():  # `hp = SimpleNamespace(...)`, then `hp.ttt_order = env_str(...)`: a field added later
        q, t, value = found[-1]  # (a store inside a function is also seen by the module's walk: its own function last)
        if k not in fields and len({id(x) for _, x, _ in found}) == 1 and _namespace_object(m, q, t):
            out[k] = [q, seg(value)]
    for k, (made, v) in fields.items():  # (a module-level store is seen once per scope; an __init__ field is its own)
        later = {id(t): (q, t, value) for q, t, value in stores.get(k, []) if t is not made}
        if not later:
            out[k] = v
        elif len(later) == 1 and v:
            q, t, value = next(iter(later.values()))
            if not (type(t.value) is ast.Name and t.value.id == "self"):
                out[k] = [q, seg(value)]
    return {k: v for k, v in out.items() if v}


def _decorator_sites(m, known: set, calls: dict, seg) -> None:
    """`@combine_with(expert, w)` on a def inside `__init__`: a call of the decorator factory
    (or of the decorator) where the def runs, under that place's guards."""
    for f in m.functions.values():
        if f.qualname == "<module>":
            continue
        for d in f.node.decorator_list:
            called = d.func if type(d) is ast.Call else d
            name = called.attr if type(called) is ast.Attribute else called.id if type(called) is ast.Name else None
            if name not in known:
                continue
            home = f.parent or m.functions["<module>"]
            ctx = ctx_of(home, f.node)
            calls.setdefault(name, []).append(
                {"caller": home.qualname, "line": d.lineno, "method": type(called) is ast.Attribute,
                 "args": [seg(a) for a in d.args] if type(d) is ast.Call else [],
                 "kwargs": {k.arg: seg(k.value) for k in d.keywords if k.arg} if type(d) is ast.Call else {},
                 "guards": [[seg(t), p] for t, p in ctx.guards]})


def _annotations(m) -> list:
    """The annotations of the module's parameters, returns and annotated assignments."""
    out = [st.annotation for st in m.nodes_of(ast.AnnAssign)]
    for f in m.functions.values():
        if f.qualname != "<module>":
            args = f.node.args
            out += [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.annotation is not None]
            out += [f.node.returns] if f.node.returns is not None else []
    return out


def _namespace_object(m, q: str, target: ast.Attribute) -> bool:
    """The attribute is stored on a name bound, in that function, to a settings namespace."""
    bound = m.functions[q].binding(target.value.id) if type(target.value) is ast.Name else None
    return type(bound) is ast.Call and lb.call_name(bound.func) in NAMESPACES


def _outgoing(m) -> dict:
    """Data splits this file hands to functions imported from other modules (`from evaluate
    import ttt_eval; ttt_eval(model, val, cfg)`, `ev.ttt_eval(...)`): {name: {"args": [labels
    per position], "kws": {name: labels}}}, so that a submission's other files can be
    analysed with what their functions are given (`auditors.cross_file`)."""
    imported = {a.asname or a.name for n in m.nodes_of(ast.ImportFrom) for a in n.names}
    modules = {(a.asname or a.name).split(".")[0] for n in m.nodes_of(ast.Import) for a in n.names}
    out: dict = {}
    for f in m.functions.values():
        for ev in f.events:
            if ev.kind != "call" or ev.data["callee"] is not None:
                continue
            func = ev.node.func
            if not ((type(func) is ast.Name and func.id in imported) or (
                    type(func) is ast.Attribute and type(func.value) is ast.Name and func.value.id in modules)):
                continue
            args = [sorted(a & lb.DATA) for a in ev.data["args"]]
            kws = {k: sorted(v & lb.DATA) for k, v in ev.data["kws"].items() if k and v & lb.DATA}
            if not any(args) and not kws:
                continue
            slot = out.setdefault(ev.data["name"], {"args": [], "kws": {}})
            slot["args"] += [[] for _ in range(len(args) - len(slot["args"]))]
            slot["args"] = [sorted(set(a) | set(b)) for a, b in zip(slot["args"], args + [[]] * len(slot["args"]))]
            for k, v in kws.items():
                slot["kws"][k] = sorted(set(slot["kws"].get(k, [])) | set(v))
    return out


def _returned(node, seg) -> str | None:
    """What a small function returns, as one expression: its body is bindings (and loops
    of calls only), then `if test: return a` lines and a final `return b` (read as `a if
    test else b`)."""
    *head, last = node.body
    if type(last) is ast.With and len(last.body) == 1:
        last = last.body[0]  # `with open(path, "rb") as fh: return tomllib.load(fh)` (fh is a binding of the function)
    if type(last) is not ast.Return or last.value is None:
        return None
    if any(type(st) is ast.If and not st.orelse and len(st.body) == 1 and type(st.body[0]) is ast.Assign for st in head):
        return rebound_return(head, last)
    out = f"({seg(last.value)})"
    for st in reversed(head):
        if type(st) is ast.If and not st.orelse and len(st.body) == 1 and type(st.body[0]) is ast.Return \
                and st.body[0].value is not None:
            out = f"({seg(st.body[0].value)}) if ({seg(st.test)}) else {out}"
        elif type(st) is ast.For and not st.orelse and all(type(b) is ast.Expr for b in st.body):
            continue  # `for k, v in DEFAULTS.items(): os.environ.setdefault(k, v)`: effects only, no binding
        elif type(st) is ast.With and all(type(b) in (ast.Assign, ast.AnnAssign) for b in st.body):
            continue  # `with open(path) as fh: cfg = json.load(fh)`: bindings (fh and cfg are the function's)
        elif type(st) not in (ast.Assign, ast.AnnAssign, ast.Expr):
            return None  # a loop that binds, a nested return, a try: not one expression
    return out


def _chosen(known: set[str], f, func: ast.expr, depth: int = 0) -> list[tuple[str, tuple]]:
    """The module functions a call of a local name reaches, each with the conditions that
    pick it: `run = fast if args.cache else plain; run(...)` calls `fast` only where
    `args.cache` holds (so `fast` is as reachable as that condition, not always)."""
    if depth > 4:
        return []
    if type(func) is ast.Name:
        if func.id in known:
            return [(func.id, ())]
        bound = f.defs.get(func.id)
        return _chosen(known, f, bound, depth + 1) if bound is not None else []
    if type(func) is ast.Call and lb.call_name(func.func) == "partial" and func.args:
        return _chosen(known, f, func.args[0], depth + 1)  # (an entry `partial(fetch, timeout=120)` runs fetch)
    if type(func) is ast.IfExp:
        return ([(n, ((func.test, True),) + c) for n, c in _chosen(known, f, func.body, depth + 1)]
                + [(n, ((func.test, False),) + c) for n, c in _chosen(known, f, func.orelse, depth + 1)])
    items = dispatch_items(f, func)
    if items is not None and type(func.slice) is not ast.Constant:
        looped = loop_keys(f, func.slice)
        if looped is not None:  # `for ph in PHASES: TABLE[ph](...)`: the entries the loop names, each in turn
            return [(n, c) for k, v in items if looped is ANY_KEY or k in looped for n, c in _chosen(known, f, v, depth + 1)]
        # `TTT_PATHS[path](...)`: each entry runs only where the key names it
        return [(n, ((_KeyIs(func.slice, k), True),) + c) for k, v in items for n, c in _chosen(known, f, v, depth + 1)]
    return []




def _passed(m, f, param: str) -> ast.Tuple | None:
    """The arguments f's callers pass for one of its parameters, as one tuple (None when none do)."""
    if f.qualname == "<module>" or param not in f.params:
        return None
    passed = [a for a, _ in m.arguments_for(f, param) if a is not None]
    return ast.Tuple(passed, ast.Load()) if passed else None


def _loads(m, seg) -> tuple[set[str], list[list[str]], list[list]]:
    """What the file loads by a name it computes or from a settings file, in one pass over its calls:
    - modules named under the file's own defaults (`import_module(os.environ.get("HINT_MODULE",
      "hints"))`: hints);
    - [function, name expression, constant prefix] of a module the run names from a prefix and a
      setting (`import_module("calib." + source)`: the folder's modules under the prefix are the
      candidates, each loaded only where the name is its own);
    - [line, col, end line, end col, file names] of each loader call of a settings file
      (`tomllib.loads(path.read_text())`), with the .json/.toml names its argument spells."""
    named, choices, settings, flags = set(), [], [], None
    for f, ev in m.events("call"):
        if not ev.node.args:
            continue
        arg = ev.node.args[0]
        if ev.data["name"] in ("import_module", "__import__"):
            name = default_value(f, arg)
            head = arg.left if type(arg) is ast.BinOp and type(arg.op) is ast.Add else \
                arg.values[0] if type(arg) is ast.JoinedStr and arg.values else None
            if isinstance(name, str) and name:
                named.add(name)
            elif name is None and type(head) is ast.Constant and isinstance(head.value, str) and head.value:
                choices.append([f.qualname, seg(arg), head.value])
        elif lb.dotted(ev.node.func) in LOADERS:
            if flags is None:  # `open(ns.settings)` with `--settings` defaulting to `HERE / "settings.toml"`
                flags = {dest: e for c in m.nodes_of(ast.Call) if lb.call_name(c.func) == "add_argument"
                         for dest, e in _argparse_default(c, lambda x: x).items() if isinstance(e, ast.expr)}
            defaults = lb.param_defaults(f.node.args) if f.qualname != "<module>" else {}
            # (`def load(path=HERE / "eval.json")`: the default names the file; else what callers
            # pass, `Settings.load(HERE / "run.json")`)
            files = named_files(arg, lambda k: f.binding(k) or defaults.get(k) or _passed(m, f, k), flags=flags)
            if files:
                c = ev.node
                settings.append([c.lineno, c.col_offset, c.end_lineno, c.end_col_offset, sorted(set(files))])
    return named, choices, settings


class _KeyIs:
    """A guard made by the analysis: the dispatch key equals one table key (no text of its own)."""

    def __init__(self, key: ast.expr, value):
        self.key, self.value = key, value


def _looped_env_sets(m, st) -> dict[str, str]:
    """`for key, value in SETTINGS.items(): os.environ.setdefault(key, value)` at module level, over
    a dict literal of constants: each entry set for the script the wrapper runs."""
    it = st.iter if type(st) is ast.For else None
    names = [getattr(e, "id", None) for e in getattr(st.target, "elts", ())] if it is not None else []
    if len(names) != 2 or type(it) is not ast.Call or lb.call_name(it.func) != "items" or type(it.func) is not ast.Attribute \
            or type(it.func.value) is not ast.Name or len(st.body) != 1 or type(st.body[0]) is not ast.Expr:
        return {}
    call, table = st.body[0].value, m.functions["<module>"].binding(it.func.value.id)
    if type(call) is not ast.Call or lb.dotted(call.func) != "os.environ.setdefault" or type(table) is not ast.Dict \
            or [getattr(a, "id", None) for a in call.args] != names:
        return {}
    return {str(k.value): str(v.value) for k, v in zip(table.keys, table.values)
            if type(k) is ast.Constant and type(v) is ast.Constant}


def _factories(m) -> set[str]:
    """Names of functions that always return one of their own nested functions (a hook
    factory): what they return is never None."""
    out = set()
    for f in m.functions.values():
        inner = m.nested(f)
        rets = m.own_returns(f) if inner else []
        if rets and all(type(r.value) is ast.Name and r.value.id in inner for r in rets):
            out.add(f.name)
    return out


def _argparse_default(node: ast.Call, seg) -> dict[str, str]:
    """{destination: default source} of `parser.add_argument("--flag", ...)`: what the
    script sees when launched without the flag (store_true: False, no default: None)."""
    names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    kws = {k.arg: k.value for k in node.keywords if k.arg}
    dest = kws["dest"].value if isinstance(kws.get("dest"), ast.Constant) else next(
        (n.lstrip("-") for n in names if n.startswith("--")), names[0].lstrip("-") if names else None)
    if not dest:
        return {}
    action = kws["action"].value if isinstance(kws.get("action"), ast.Constant) else None
    if "default" in kws:
        default = seg(kws["default"])
    else:
        default = {"store_true": "False", "store_false": "True"}.get(action, "None")
    return {dest.replace("-", "_"): default}


def _subcommand_default(m, node: ast.Call) -> dict[str, str]:
    """{destination: subcommand} of `parser.add_subparsers(dest="cmd")`: launched without
    arguments the script runs none (None), or the one its fallback names
    (`parser.parse_args(sys.argv[1:] or ["run"])`)."""
    dest = next((k.value.value for k in node.keywords if k.arg == "dest" and isinstance(k.value, ast.Constant)), None)
    if not isinstance(dest, str):
        return {}
    chosen = "None"
    for call in m.nodes_of(ast.Call):
        if lb.call_name(call.func) == "parse_args" and call.args and type(call.args[0]) is ast.BoolOp \
                and type(call.args[0].op) is ast.Or and type(call.args[0].values[-1]) in (ast.List, ast.Tuple):
            first = call.args[0].values[-1].elts[:1]
            if first and type(first[0]) is ast.Constant and isinstance(first[0].value, str):
                chosen = repr(first[0].value)
    return {dest: chosen}


# A .py file named in a string or path (`"inner.py"`, `here / 'eval.py'`,
# `__file__.replace("train_gpt.py", "decode.py")`): a file this one may exec, runpy or
# launch. Counted as run by it, so a wrapper cannot make the real script look unused.


def _looped_defaults(m, f, loop, args, seg) -> list:
    """`for k, v in DEFAULTS.items(): os.environ.setdefault(k, v)` over a dict literal with
    constant keys: (key, [where the dict is written, its value's source]) for each entry."""
    if type(loop) is not ast.For or len(args) != 2 or not all(type(a) is ast.Name for a in args):
        return []
    target, it = loop.target, loop.iter
    if type(target) is not ast.Tuple or [getattr(e, "id", None) for e in target.elts] != [a.id for a in args] \
            or type(it) is not ast.Call or type(it.func) is not ast.Attribute or it.func.attr != "items" \
            or type(it.func.value) is not ast.Name:
        return []
    owner, table = f, f.binding(it.func.value.id)
    if table is None:
        owner, table = m.functions["<module>"], m.functions["<module>"].binding(it.func.value.id)
    if type(table) is not ast.Dict:
        return []
    return [(str(k.value), [owner.qualname, seg(v)])
            for k, v in zip(table.keys, table.values) if type(k) is ast.Constant]
