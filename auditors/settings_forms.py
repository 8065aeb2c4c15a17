"""Settings written in forms a reachability guard must see through, read from the syntax tree
for `auditors.reach_facts`: a settings dict filled in a loop over a defaults dict and spread
into a namespace, dataclass fields read from the environment per field (in a loop or a
comprehension over `fields(cls)`), module-level `CFG.update(k=...)`, a small function that
rebinds a name under a test, an instance attribute set under a condition, and a name
bound once and rebound under a test (or bound in both branches of one test).
"""

from __future__ import annotations

import ast
import copy

from auditors import labels as lb
from auditors.calls import NAMESPACES
from auditors.rules import ctx_of


def looped_fields(m, f) -> list[tuple[str, str, ast.For, str]]:
    """(field, source of its value, loop, dict) for a settings dict filled in a loop over a dict literal
    of defaults and made a namespace (`for key, default in DEFAULTS.items(): raw =
    os.environ.get(key); cfg[key.lower()] = default if raw is None else type(default)(raw)`,
    then `SimpleNamespace(**cfg)`): each entry's value with the loop's names replaced by
    that entry's key and default, so `cfg.word_boost` reads `os.environ.get("WORD_BOOST")`."""
    loops = [lp for lp in m.under(f, m.nodes_of(ast.For)) if type(lp.iter) is ast.Call]
    loops += _comprehended(m, f)
    if not loops:  # (most functions: no loop over a call such as `CFG.items()`)
        return []
    spread = {k.value.id for c in m.under(f, m.nodes_of(ast.Call)) if lb.call_name(c.func) in NAMESPACES
              for k in c.keywords if k.arg is None and type(k.value) is ast.Name}
    spread |= {c.args[2].id for c in m.under(f, m.nodes_of(ast.Call)) if type(c.func) is ast.Name and c.func.id == "type"
               and len(c.args) == 3 and type(c.args[2]) is ast.Name}  # `C = type("C", (), CFG)`: a class of the dict
    out = []
    for loop in loops:
        names = [getattr(e, "id", None) for e in getattr(loop.target, "elts", ())]
        it = loop.iter
        if type(it) is ast.Call and lb.call_name(it.func) == "list" and len(it.args) == 1:
            it = it.args[0]  # `for k, v in list(CFG.items())`: the same entries
        if len(names) != 2 or None in names or type(it) is not ast.Call or lb.call_name(it.func) != "items" \
                or type(it.func) is not ast.Attribute or type(it.func.value) is not ast.Name:
            continue
        into = spread | {it.func.value.id, getattr(loop, "into", None)}  # (`for k, v in list(CFG.items()): CFG[k] = ...`)
        table = f.binding(it.func.value.id) or m.functions["<module>"].binding(it.func.value.id)
        entries = list(zip(table.keys, table.values)) if type(table) is ast.Dict else \
            [(ast.Constant(k.arg), k.value) for k in table.keywords if k.arg] \
            if type(table) is ast.Call and lb.call_name(table.func) == "dict" and not table.args else None
        for k, v in entries or ():
            if type(k) is not ast.Constant or not isinstance(k.value, str):
                continue
            bound = {names[0]: ast.Constant(k.value), names[1]: v}
            for st, test in _assignments(loop.body):
                t, value = st.targets[0], substituted(st.value, bound)
                if type(t) is ast.Name:
                    bound[t.id] = value  # `raw = os.environ.get(key)`: inlined where it is read
                elif type(t) is ast.Subscript and type(t.value) is ast.Name and t.value.id in into:
                    field = key_text(substituted(t.slice, bound))
                    if field:  # (set under `if key.upper() in os.environ:`: else the entry keeps its default)
                        kept = v if t.value.id == it.func.value.id else None
                        if test is not None and kept is not None:
                            value = ast.IfExp(substituted(test, bound), value, kept)
                        out.append((field, ast.unparse(value), loop, t.value.id))
    return out


def _comprehended(m, f) -> list[ast.For]:
    """`C = {k: env_or(k, v) for k, v in DEFAULTS.items()}` written as the loop it stands for
    (`for k, v in DEFAULTS.items(): C[k] = env_or(k, v)`), so its entries are read the same way."""
    out = []
    for st in m.under(f, m.nodes_of(ast.Assign)) if m.under(f, m.nodes_of(ast.DictComp)) else ():
        comp = st.value
        if type(comp) is ast.DictComp and len(comp.generators) == 1 and not comp.generators[0].ifs \
                and len(st.targets) == 1 and type(st.targets[0]) is ast.Name:
            gen, name = comp.generators[0], st.targets[0].id
            store = ast.Assign(targets=[ast.Subscript(value=ast.Name(id=name, ctx=ast.Load()), slice=comp.key, ctx=ast.Store())],
                               value=comp.value)
            loop = ast.copy_location(ast.For(target=gen.target, iter=gen.iter, body=[ast.copy_location(store, st)],
                                             orelse=[]), st)
            loop.into = name  # (the dict the comprehension builds)
            out.append(loop)
    return out


def _assignments(body) -> list[tuple[ast.Assign, ast.expr | None]]:
    """The single-target assignments of a loop body, each with the test of the `if` (without
    else) around it, if any: `if k.upper() in os.environ: CFG[k] = type(v)(os.environ[k.upper()])`."""
    out = []
    for st in body:
        if type(st) is ast.Assign and len(st.targets) == 1:
            out.append((st, None))
        elif type(st) is ast.If and not st.orelse:
            out += [(b, st.test) for b in st.body if type(b) is ast.Assign and len(b.targets) == 1]
    return out


def substituted(e: ast.expr, bound: dict) -> ast.expr:
    """e with the names in `bound` replaced by their expressions (`type(0.0)` becomes `float`)."""
    class Sub(ast.NodeTransformer):
        def visit_Name(self, n):
            return copy.deepcopy(bound[n.id]) if n.id in bound and type(n.ctx) is ast.Load else n

        def visit_Call(self, n):
            self.generic_visit(n)
            if type(n.func) is ast.Name and n.func.id == "type" and len(n.args) == 1 and type(n.args[0]) is ast.Constant:
                return ast.Name(type(n.args[0].value).__name__, ast.Load())
            return n
    return Sub().visit(copy.deepcopy(e))


def inlined_return(m, f, call: ast.Call, with_locals: bool = False) -> ast.expr | None:
    """What a call of a module function with one `return` gives, written in the caller's terms:
    the returned expression with the parameters replaced by the call's arguments (and, with
    `with_locals`, the names the function binds once replaced by their values first:
    `lo = total * rank // world; return lo, hi`). None for anything else."""
    g = m.resolve(call.func, f) if not call.keywords else None
    returns = [r.value for r in (g.nodes if g is not None else ()) if type(r) is ast.Return and r.value is not None]
    if g is None or len(returns) != 1 or len(call.args) != len(g.params):
        return None
    value = returns[0]
    if with_locals:
        value = substituted(value, {t.id: a.value for a in g.nodes if type(a) is ast.Assign for t in a.targets
                                    if type(t) is ast.Name})
    return substituted(value, dict(zip(g.params, call.args)))


def key_text(e: ast.expr) -> str | None:
    """The text of a key written `"K"`, `"K".lower()`, `"K".upper()`; else None."""
    if type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in ("lower", "upper") and not e.args:
        inner = key_text(e.func.value)
        return getattr(inner, e.func.attr)() if inner is not None else None
    return e.value if type(e) is ast.Constant and isinstance(e.value, str) else None


def field_env(m) -> list[tuple[str, str]]:
    """(prefix, case) of the environment variables a loop over a dataclass's fields reads per
    field (`for f in fields(cls): raw = env.get(f.name.upper())`, `os.environ.get("PG_" + f.name.upper())`,
    `cls(**{f.name: _env(f.name.upper(), f.default) for f in fields(cls)})`)."""
    loops = [(n.target, n.body) for n in m.nodes_of(ast.For) if over_fields(n.iter)]
    loops += [(g.target, [c]) for c in m.nodes_of(ast.DictComp) + m.nodes_of(ast.ListComp)
              for g in c.generators if over_fields(g.iter)]
    out = []
    for target, body in loops:
        if type(target) is not ast.Name:
            continue
        var = target.id
        # the key handed to a getter (`env.get(k)`, a helper `_env(k, f.default)`) or read from `os.environ[k]`
        reads = [(n.args[0], lb.call_name(n.func) in ("get", "getenv")) for st in body for n in lb.walk(st)
                 if type(n) is ast.Call and n.args]
        reads += [(n.slice, True) for st in body for n in lb.walk(st)
                  if type(n) is ast.Subscript and (lb.dotted(n.value) or "").endswith("environ")]
        local = {a.targets[0].id: a.value for st in body for a in lb.walk(st) if type(a) is ast.Assign
                 and len(a.targets) == 1 and type(a.targets[0]) is ast.Name}  # `key = f.name.upper()`, then `_env(key, ...)`
        for key, getter in reads:
            key = local.get(key.id, key) if type(key) is ast.Name else key
            prefix = ""
            if type(key) is ast.BinOp and type(key.op) is ast.Add and type(key.left) is ast.Constant and isinstance(key.left.value, str):
                key, prefix = key.right, key.left.value
            elif type(key) is ast.JoinedStr and len(key.values) == 2 and type(key.values[0]) is ast.Constant \
                    and type(key.values[1]) is ast.FormattedValue and key.values[1].format_spec is None:
                key, prefix = key.values[1].value, key.values[0].value  # f"TTT_{f.name.upper()}"
            case = "plain"
            if type(key) is ast.Call and type(key.func) is ast.Attribute and key.func.attr in ("upper", "lower") and not key.args:
                key, case = key.func.value, key.func.attr
            named = type(key) is ast.Attribute and key.attr == "name" and type(key.value) is ast.Name and key.value.id == var
            if named and (getter or prefix or case != "plain") and (prefix, case) not in out:
                out.append((prefix, case))  # (a plain `f.name` handed to any call is no environment key)
    return out


def over_fields(it) -> bool:
    return type(it) is ast.Call and lb.call_name(it.func) == "fields"


def dict_updates(tree, seg) -> dict[str, dict[str, str]]:
    """Settings a module-level `NAME.update(k=v, ...)` (or `.update({"k": v})`) stores: name ->
    key -> source of the value (the last update of a key wins)."""
    out: dict[str, dict[str, str]] = {}
    for st in tree.body:
        c = st.value if type(st) is ast.Expr else None
        if type(c) is not ast.Call or type(c.func) is not ast.Attribute or c.func.attr != "update" \
                or type(c.func.value) is not ast.Name:
            continue
        entries = out.setdefault(c.func.value.id, {})
        entries.update({k.arg: seg(k.value) for k in c.keywords if k.arg})
        if c.args and type(c.args[0]) is ast.Dict:
            entries.update({k.value: seg(v) for k, v in zip(c.args[0].keys, c.args[0].values)
                            if type(k) is ast.Constant and isinstance(k.value, str)})
    return out


def rebound_return(head, last) -> str | None:
    """The returned expression of a body that binds names and rebinds them under a test
    (`raw = env.get(prefix + name)`; `if raw is None: raw = env.get(name)`; `return default if
    raw is None else cast(raw)`), with each name replaced by what it holds there."""
    held: dict = {}
    for st in head:
        if type(st) is ast.If and not st.orelse and len(st.body) == 1 and type(st.body[0]) is ast.Assign:
            inner = st.body[0]
            if len(inner.targets) != 1 or type(inner.targets[0]) is not ast.Name:
                return None
            name = inner.targets[0].id
            held[name] = ast.IfExp(substituted(st.test, held), substituted(inner.value, held),
                                   held.get(name, ast.Name(name, ast.Load())))
        elif type(st) is ast.Assign and len(st.targets) == 1 and type(st.targets[0]) is ast.Name:
            held[st.targets[0].id] = substituted(st.value, held)
        else:
            return None
    return f"({ast.unparse(substituted(last.value, held))})"


def field_overrides(m, seg, flags: set = frozenset()) -> dict:
    """A settings-class attribute (or an argparse flag of `flags`) set on an instance under a
    condition, in one place (`if world_size == 1: args.temp_mix = False`; `if args.n is None:
    args.n = 1 if world > 1 else 0`), or in a function that reads a settings file
    (`out.calibrate = bool(cal.get("enabled", out.calibrate))` after `doc = tomllib.load(fh)`):
    attribute -> [function, source of the value, [[test, polarity], ...]]. Read as the value
    where the condition holds, else the default."""
    from auditors.shipped_config import LOADERS

    found: dict[str, list] = {}
    loading: set[str] = set()  # functions that read a settings file: their stores set fields from it
    for f in m.functions.values():
        if f.qualname == "<module>":
            continue
        if any(e.kind == "call" and lb.dotted(e.node.func) in LOADERS for e in f.events):
            loading.add(f.qualname)
        for a in m.under(f, m.nodes_of(ast.Assign)):
            for t in a.targets:
                if type(t) is ast.Attribute and type(t.value) is ast.Name and t.value.id != "self" \
                        and (t.attr in m.class_defs or t.attr in flags):
                    guards = [[seg(test), pol] for test, pol in ctx_of(f, a).guards if pol in (True, False)]
                    found.setdefault(t.attr, []).append([f.qualname, seg(a.value), guards])
    # (set under a condition, or by a loader: `out.calibrate = bool(cal.get("enabled", out.calibrate))`)
    return {k: v[0] for k, v in found.items() if len(v) == 1 and (v[0][2] or v[0][0] in loading)}


def guarded_defs(m, f, seg) -> dict[str, str]:
    """Names bound exactly twice in f's own body, both times at its top level or directly in
    the branches of one of its top-level `if`s: `cache = None`, then `if args.ngram: cache =
    Cache()` (or `if t: x = a` / `else: x = b`) -> the source `(Cache()) if (args.ngram) else
    (None)`, so a later `if cache is not None:` is decided by the setting that decides it."""
    multi = {k for k, v in f.defs.items() if v is None}
    if not multi or type(f.node) not in (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module):
        return {}
    found: dict[str, str] = {}
    first: dict[str, ast.expr] = {}
    for st in f.node.body:
        name = _bound_name(st)
        if name in multi:
            first[name] = st.value
        elif type(st) is ast.If:
            then = {_bound_name(b): b.value for b in st.body if _bound_name(b) in multi}
            other = {_bound_name(b): b.value for b in st.orelse if _bound_name(b) in multi}
            for name in then.keys() | other.keys():
                if name in then and (name in other) != (name in first):
                    no = other[name] if name in other else first[name]
                    found[name] = f"({seg(then[name])}) if ({seg(st.test)}) else ({seg(no)})"
                elif name in other and name in first:
                    found[name] = f"({seg(first[name])}) if ({seg(st.test)}) else ({seg(other[name])})"
    if not found:
        return {}
    counts = _stores(m, f, set(found))
    return {k: v for k, v in found.items() if counts.get(k) == 2}


def _stores(m, f, names: set[str]) -> dict[str, int]:
    """How many times f's code binds each of these names (a nested function's bindings count
    too: then no single pair of bindings is the whole story)."""
    if type(f.node) is ast.Module:  # its own statements: functions and classes bind their own names
        todo = [st for st in f.node.body if type(st) not in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)]
        targets = []
        while todo:
            n = todo.pop()
            if type(n) is ast.Name and type(n.ctx) is ast.Store:
                targets.append(n)
            elif type(n) not in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda):
                todo.extend(ast.iter_child_nodes(n))
    else:
        roots = [t for a in m.under(f, m.nodes_of(ast.Assign)) for t in a.targets]
        roots += [st.target for kind in (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.NamedExpr)
                  for st in m.under(f, m.nodes_of(kind))]
        roots += [i.optional_vars for kind in (ast.With, ast.AsyncWith) for st in m.under(f, m.nodes_of(kind))
                  for i in st.items if i.optional_vars is not None]
        targets = [n for r in roots for n in lb.walk(r) if type(n) is ast.Name]
    counts: dict[str, int] = {}
    for n in targets:
        if n.id in names:
            counts[n.id] = counts.get(n.id, 0) + 1
    return counts


def _bound_name(st) -> str | None:
    if type(st) is ast.Assign and len(st.targets) == 1 and type(st.targets[0]) is ast.Name:
        return st.targets[0].id
    return None


def init_attrs(m, f, seg) -> dict[str, str]:
    """`self.x = <expr>` statements at the top level of an `__init__`: attribute -> source of
    the value, read in the constructor's scope (`self.boost = boost` is what its callers pass);
    "" for an attribute set more than once or under a condition there, or set by any other
    code of the module under that name (no single value)."""
    if f.name != "__init__" or not f.is_method or not f.params:
        return {}
    me = f.params[0]
    def own(t) -> str | None:
        return t.attr if type(t) is ast.Attribute and type(t.value) is ast.Name and t.value.id == me else None
    top = {id(st) for st in f.node.body}
    out: dict[str, str] = {}
    stores = sorted((st for kind in (ast.Assign, ast.AnnAssign, ast.AugAssign) for st in m.under(f, m.nodes_of(kind))),
                    key=lambda st: (st.lineno, st.col_offset))
    for st in stores:
        targets = st.targets if type(st) is ast.Assign else [st.target] if type(st) in (ast.AnnAssign, ast.AugAssign) else []
        for t in targets:
            value = getattr(st, "value", None)
            # (`self.a, self.b = a, b`: each attribute its own element of the tuple)
            paired = type(t) is ast.Tuple and type(value) is ast.Tuple and len(value.elts) == len(t.elts) \
                and not any(type(e) is ast.Starred for e in value.elts)
            for i, x in enumerate(t.elts if type(t) is ast.Tuple else [t]):
                attr = own(x)
                if attr is None:
                    continue
                single = id(st) in top and type(st) is not ast.AugAssign and (x is t or paired) and value is not None
                out[attr] = seg(value.elts[i] if paired else value) if single and attr not in out else ""
    stored = m.once("attributes stored by name", _attributes_stored)
    lo, hi = f.node.lineno, f.node.end_lineno
    for attr in out:  # set anywhere else (a method, a subclass, `hints.boost = 0.3`): no single value
        if any(not lo <= a.lineno <= hi for a in stored.get(attr, ())):
            out[attr] = ""
    return out


def _attributes_stored(m) -> dict[str, list]:
    """Attribute name -> the attribute nodes the module stores to (`x.a = ...`, `del x.a`)."""
    out: dict[str, list] = {}
    for a in m.nodes_of(ast.Attribute):
        if type(a.ctx) is not ast.Load:
            out.setdefault(a.attr, []).append(a)
    return out


def spec_fields(m, seg) -> dict[str, str]:
    """Fields set from a table of (environment variable, default, conversion) entries in a
    loop (`SPEC = {"ttt_lr": ("TTT_LR", "0.002", float), ...}`, then `for name, (env, default,
    cast) in cls.SPEC.items(): raw = os.environ.get(env); setattr(cfg, name, cast(raw if raw
    else default))`): field -> source of what it reads, `float(os.environ.get("TTT_LR", "0.002"))`."""
    out: dict[str, str] = {}
    for loop in m.nodes_of(ast.For):
        t, it = loop.target, loop.iter
        if type(t) is not ast.Tuple or len(t.elts) != 2 or type(t.elts[0]) is not ast.Name \
                or type(t.elts[1]) is not ast.Tuple or not 2 <= len(t.elts[1].elts) <= 3 \
                or not all(type(e) is ast.Name for e in t.elts[1].elts) \
                or type(it) is not ast.Call or type(it.func) is not ast.Attribute or it.func.attr != "items":
            continue
        name, (env, _, *cast) = t.elts[0].id, [e.id for e in t.elts[1].elts]
        nodes = [n for st in loop.body for n in lb.walk(st) if type(n) in (ast.Call, ast.Subscript)]
        sets = any(type(n) is ast.Call and lb.call_name(n.func) == "setattr" and len(n.args) == 3
                   and type(n.args[1]) is ast.Name and n.args[1].id == name for n in nodes)
        reads = any((type(n) is ast.Call and lb.call_name(n.func) in ("get", "getenv") and n.args
                     and type(n.args[0]) is ast.Name and n.args[0].id == env)
                    or (type(n) is ast.Subscript and type(n.slice) is ast.Name and n.slice.id == env) for n in nodes)
        table = _table_literal(m, it.func.value)
        if not (sets and reads and table):
            continue
        for k, v in zip(table.keys, table.values):
            if type(k) is ast.Constant and isinstance(k.value, str) and type(v) is ast.Tuple and len(v.elts) == 2 + len(cast) \
                    and type(v.elts[0]) is ast.Constant and isinstance(v.elts[0].value, str):
                read = f"os.environ.get({v.elts[0].value!r}, {seg(v.elts[1])})"
                out[k.value] = f"{seg(v.elts[2])}({read})" if cast else read
    return out | _spec_rows(m, seg)


def _spec_rows(m, seg) -> dict[str, str]:
    """The same from a list of rows (`_SPEC = [("TTT_LR", float, 0.002), ...]`, then `for name,
    typ, default in _SPEC: raw = os.environ.get(name); setattr(a, name.lower(), typ(raw) if raw
    is not None else default)`): the row's variable names the field (lower-cased as the key is),
    the loop says which element is read, which converts and which is the default."""
    out: dict[str, str] = {}
    for loop in m.nodes_of(ast.For):
        t = loop.target
        if type(t) is not ast.Tuple or len(t.elts) != 3 or not all(type(e) is ast.Name for e in t.elts) \
                or type(loop.iter) is not ast.Name:
            continue
        names = [e.id for e in t.elts]
        nodes = [n for st in loop.body for n in lb.walk(st) if type(n) is ast.Call]
        env = next((n.args[0].id for n in nodes if lb.call_name(n.func) in ("get", "getenv") and n.args
                    and type(n.args[0]) is ast.Name and n.args[0].id in names), None)
        setter = next((n for n in nodes if lb.call_name(n.func) == "setattr" and len(n.args) == 3), None)
        key = setter.args[1] if setter is not None else None
        case = key.func.attr if type(key) is ast.Call and type(key.func) is ast.Attribute and key.func.attr in ("lower", "upper") \
            and type(key.func.value) is ast.Name and key.func.value.id == env else "" if type(key) is ast.Name and key.id == env else None
        cast = next((n.func.id for n in (lb.walk(setter.args[2]) if setter is not None else ()) if type(n) is ast.Call
                     and type(n.func) is ast.Name and n.func.id in names), None)
        rest = [x for x in names if x not in (env, cast)]
        rows = _rows_literal(m, loop.iter.id)
        if env is None or case is None or cast is None or len(rest) != 1 or rows is None:
            continue
        at = {x: names.index(x) for x in (env, cast, rest[0])}
        for row in rows.elts:
            if type(row) is ast.Tuple and len(row.elts) == 3 and type(row.elts[at[env]]) is ast.Constant \
                    and isinstance(row.elts[at[env]].value, str):
                var = row.elts[at[env]].value
                field = getattr(var, case)() if case else var
                out[field] = f"{seg(row.elts[at[cast]])}(os.environ.get({var!r}, {seg(row.elts[at[rest[0]]])}))"
    return out


def _rows_literal(m, name: str) -> ast.List | ast.Tuple | None:
    """The list (or tuple) literal a module-level name is bound to, once."""
    found = [st.value for st in m.tree.body if type(st) in (ast.Assign, ast.AnnAssign)
             and type(st.value) in (ast.List, ast.Tuple)
             and any(type(x) is ast.Name and x.id == name for x in (st.targets if type(st) is ast.Assign else [st.target]))]
    return found[0] if len(found) == 1 else None


def _table_literal(m, expr) -> ast.Dict | None:
    """The dict literal a table name (`SPEC`, `cls.SPEC`, `Config.SPEC`) is bound to, once,
    at module level or in a class body."""
    name = expr.id if type(expr) is ast.Name else expr.attr if type(expr) is ast.Attribute else None
    bodies = [m.tree.body] + [c.body for c in m.nodes_of(ast.ClassDef)]
    found = [st.value for body in bodies for st in body
             if type(st) in (ast.Assign, ast.AnnAssign) and type(st.value) is ast.Dict
             and any(type(t) is ast.Name and t.id == name for t in (st.targets if type(st) is ast.Assign else [st.target]))]
    return found[0] if len(found) == 1 else None
