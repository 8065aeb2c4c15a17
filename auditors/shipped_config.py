"""Settings kept in data files shipped with a submission (`eval_config.json`, `data.toml`,
`profiles.yaml`).

A submission may hold its switches in a JSON, TOML or YAML file beside its script and read
them with `json.load(open(...))`, `tomllib.loads(path.read_text())` or `yaml.safe_load(f)`. What such a file
says decides what runs, as an environment variable's default does, so reachability
reads it: the audit parses the folder's files as data (never runs anything) and the
guard evaluator looks the loader's file up by the name its argument spells. A file the
folder does not hold, or one that does not parse, leaves the value to the run.
"""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import yaml

from auditors import labels as lb
from auditors.labels import walk
from auditors.reach_scope import Scope, Unknown, parse_source
from auditors.settings_forms import substituted

LOADERS = {"json.load", "json.loads", "tomllib.load", "tomllib.loads", "tomli.load", "tomli.loads", "toml.load", "toml.loads",
           "yaml.safe_load", "yaml.load", "yaml.full_load"}
_SUFFIXES = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
_MAX_BYTES = 1 << 20  # settings files are small; a larger JSON is data (a table), not read for reach


def shipped_data(root: Path, recursive: bool = True) -> dict[str, object]:
    """{path relative to root (POSIX): parsed content} of the folder's JSON, TOML and YAML files
    that parse (symlinks and files over 1 MiB are left out); with recursive=False, only
    those directly in it (the folder of a script audited alone)."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*") if recursive else root.iterdir()):
        kind = _SUFFIXES.get(p.suffix)
        if kind is None or p.is_symlink() or not p.is_file() or p.stat().st_size > _MAX_BYTES:
            continue
        try:
            text = p.read_text(encoding="utf-8")
            parsed = json.loads(text) if kind == "json" else tomllib.loads(text) if kind == "toml" \
                else yaml.safe_load(text)  # (safe_load builds plain data only, never objects)
            if kind == "yaml" and not _small(parsed):
                continue  # YAML aliases can share one node many times over ("billion laughs"): not settings
            out[p.relative_to(root).as_posix()] = parsed
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):  # (TOMLDecodeError, JSONDecodeError: ValueErrors)
            continue
    return out


def _small(data, budget: int = 100_000) -> bool:
    """The data has at most `budget` nodes when every shared node is counted each time it is reached."""
    todo, seen = [data], 0
    while todo:
        node = todo.pop()
        seen += 1
        if seen > budget:
            return False
        if isinstance(node, dict):
            todo += node.keys()
            todo += node.values()
        elif isinstance(node, list):
            todo += node
    return True


def named_files(arg: ast.expr, bound, depth: int = 0, flags: dict | None = None, fields: dict | None = None) -> list[str]:
    """The settings-file names that a loader's argument spells: string constants ending in
    .json or .toml in it, or in what its names are bound to (`bound(name)`: an expression or
    None; `open(cfg_path)`, a `with open(...) as fh` target), in the default of a
    command-line flag it reads (`open(args.settings)` with `flags`: {destination: default}), or
    in the default of a settings class's attribute (`args.config_file` with `fields`: the
    class attributes' sources)."""
    names = []
    for n in walk(arg):
        if type(n) is ast.Constant and isinstance(n.value, str) and n.value.endswith(tuple(_SUFFIXES)):
            names.append(n.value)
        elif type(n) is ast.Name and depth < 3:
            held = bound(n.id)
            if held is not None:
                names += named_files(held, bound, depth + 1, flags, fields)
        elif type(n) is ast.Attribute and flags and n.attr in flags and depth < 3:
            names += named_files(flags[n.attr], bound, depth + 1, flags)
        elif type(n) is ast.Attribute and fields and n.attr in fields and depth < 3:
            held = _parsed(fields[n.attr])  # `args.config_file` of a settings class: its default names the file
            names += named_files(held, bound, depth + 1, flags, fields) if held is not None else []
    return names


def _parsed(src: str | None):
    try:
        return ast.parse(src, mode="eval").body if src else None
    except SyntaxError:
        return None


def shipped_file(data: dict[str, object], name: str) -> str | None:
    """The shipped file a name refers to: its relative path, or the one file whose path ends
    with it (`Path(__file__).parent / "eval_config.json"`); None when none or several do."""
    name = name.replace("\\", "/").removeprefix("./")
    if name in data:
        return name
    ending = [p for p in data if p.endswith("/" + name)]
    return ending[0] if len(ending) == 1 else None


def field_tables(m, seg) -> list[list]:
    """[function, class, its fields, loader call source, keys] for each object of a dataclass
    made from a table of a settings file (`cls(**tomllib.load(fh)["quant"])`, also through
    names and a dict comprehension over the table's items) or set from one field by field
    (`setattr(cfg, k, v)` over its items): the file sets those fields."""
    out = []
    for f, ev in m.events("call"):
        made = ev.data["name"] if ev.data["name"] != "cls" else f.cls
        given = [k.value for k in ev.node.keywords if k.arg is None]  # `**table`
        fields = m.dataclass_fields(made) if given and made else []
        read = _table_read(f, given[0]) if fields else None
        if read is not None:
            out.append([f.qualname, made, fields, seg(read[0]), read[1]])
        elif fields and _param_table(f, given[0]):
            out.append([f.qualname, made, fields, f"<param {_param_table(f, given[0])}>", []])
    for f, st in ((f, n) for f in m.functions.values() for n in m.under(f, m.nodes_of(ast.Assign))):
        made = _stored_table(m, f, st)  # `cfg.ttt = dict(raw.get("ttt", {}))` on `cfg = cls()`
        read = _table_read(f, st.value) if made else None
        if read is not None:
            out.append([f.qualname, made, [st.targets[0].attr], seg(read[0]), read[1], "whole"])
    for f, loop in ((f, n) for f in m.functions.values() for n in m.under(f, m.nodes_of(ast.For))):
        made = _set_by_name(m, f, loop)
        for table in _sections(m, f, loop, loop.iter.func.value) if made else ():
            read = _table_read(f, table)
            if read is not None:
                out.append([f.qualname, made, _class_fields(m, made), seg(read[0]), read[1]])
        made, held = _set_per_field(m, f, loop)
        for table in _filled_from(m, f, held) if made else ():
            read = _table_read(f, table)
            if read is not None:
                out.append([f.qualname, made, _class_fields(m, made), seg(read[0]), read[1]])
    return out


def _set_per_field(m, f, loop: ast.For) -> tuple[str | None, str | None]:
    """(settings class, dict name) of a loop over a dataclass's fields that sets each field from
    a dict by its name (`for fl in fields(cfg): ... setattr(cfg, fl.name, conv(values[fl.name]))`)."""
    if not (type(loop.iter) is ast.Call and lb.call_name(loop.iter.func) == "fields" and type(loop.target) is ast.Name):
        return None, None
    var = loop.target.id

    def by_name(e) -> bool:
        return type(e) is ast.Attribute and e.attr == "name" and type(e.value) is ast.Name and e.value.id == var
    for n in walk(loop):
        if type(n) is ast.Call and lb.call_name(n.func) == "setattr" and len(n.args) == 3 and type(n.args[0]) is ast.Name \
                and by_name(n.args[1]):
            held = next((x.value.id for x in walk(loop) if type(x) is ast.Subscript and type(x.value) is ast.Name
                         and by_name(x.slice)), None) or next(  # (`values[f.name]`, or `raw.get(f.name)` anywhere in the loop)
                (x.func.value.id for x in walk(loop) if type(x) is ast.Call and type(x.func) is ast.Attribute
                 and x.func.attr == "get" and type(x.func.value) is ast.Name and x.args and by_name(x.args[0])), None)
            if held is not None:
                return _made_here(m, f, n.args[0].id), held
    return None, None


def _filled_from(m, f, name: str) -> list:
    """What a dict of f is filled from: its binding, and each `name.update(table)`."""
    out = [f.binding(name)] if f.binding(name) is not None else []
    return out + [c.args[0] for c in m.under(f, m.nodes_of(ast.Call)) if type(c.func) is ast.Attribute
                  and c.func.attr == "update" and type(c.func.value) is ast.Name and c.func.value.id == name and len(c.args) == 1]


def _sections(m, f, loop: ast.For, table: ast.expr) -> list:
    """The tables a loop over `table.items()` reads: `(cfg.get(section) or {})` inside `for
    section in ("train", "eval"):` is `cfg.get("train")`, then `cfg.get("eval")`."""
    if type(table) is ast.BoolOp and type(table.op) is ast.Or:
        table = table.values[0]  # (`or {}`: an absent section sets nothing)
    keyed = table.args[0] if type(table) is ast.Call and lb.call_name(table.func) == "get" and table.args else \
        table.slice if type(table) is ast.Subscript else None
    if type(keyed) is not ast.Name:
        return [table]
    outer = next((n for n in m.under(f, m.nodes_of(ast.For)) if n is not loop and n.lineno < loop.lineno <= n.end_lineno
                  and type(n.target) is ast.Name and n.target.id == keyed.id and type(n.iter) in (ast.Tuple, ast.List)), None)
    if outer is None:
        return [table]
    return [substituted(table, {keyed.id: ast.Constant(c.value)}) for c in outer.iter.elts
            if type(c) is ast.Constant and isinstance(c.value, str)]


def _class_fields(m, cls: str) -> list[str]:
    """A dataclass's fields, or the names a plain settings class binds in its body."""
    fields = m.dataclass_fields(cls)
    node = next((c for c in m.nodes_of(ast.ClassDef) if c.name == cls), None)
    if fields or node is None:
        return fields
    return [t.id for st in node.body for t in (st.targets if type(st) is ast.Assign else [st.target] if type(st) is ast.AnnAssign
                                                else []) if type(t) is ast.Name]


def _param_table(f, e: ast.expr) -> str | None:
    """The parameter a table handed in is read from: `cls(**d)`, `cls(**{k: v for k, v in
    d.items() if k in cls.__dataclass_fields__})`; its callers say what it holds."""
    if type(e) is ast.DictComp and len(e.generators) == 1:
        it = e.generators[0].iter
        e = it.func.value if type(it) is ast.Call and type(it.func) is ast.Attribute and it.func.attr == "items" else None
    return e.id if type(e) is ast.Name and e.id in f.params else None


def _made_here(m, f, name: str) -> str | None:
    """The settings class a name of f is an object of: `cfg = cls()`, `cfg = Settings()`, or a
    parameter annotated with it (`def apply(args: Hyperparameters)`)."""
    made = f.binding(name)
    cls = lb.call_name(made.func) if type(made) is ast.Call and not made.args and not made.keywords else None
    cls = f.cls if cls == "cls" else cls
    if cls is None and name in f.params and type(f.node) in (ast.FunctionDef, ast.AsyncFunctionDef):
        note = next((a.annotation for a in f.node.args.args if a.arg == name), None)
        cls = note.id if type(note) is ast.Name else None
    return cls if cls and _class_fields(m, cls) else None


def _stored_table(m, f, st: ast.Assign) -> str | None:
    """The dataclass whose field one table of a settings file is stored in whole
    (`cfg.ttt = dict(raw.get("ttt", {}))`), else None."""
    t = st.targets[0] if len(st.targets) == 1 else None
    if type(t) is not ast.Attribute or type(t.value) is not ast.Name:
        return None
    cls = _made_here(m, f, t.value.id)
    return cls if cls and t.attr in m.dataclass_fields(cls) else None


def _set_by_name(m, f, loop: ast.For) -> str | None:
    """The settings class whose object a loop over a table's items sets field by field
    (`for k, v in json.load(fh).items(): setattr(cfg, k, v)` with `cfg = cls()`, `cfg =
    Settings()` or `args: Hyperparameters`; the value may be converted, `bool(v)`), else None."""
    it, target = loop.iter, loop.target
    if not (type(it) is ast.Call and type(it.func) is ast.Attribute and it.func.attr == "items" and not it.args
            and type(target) is ast.Tuple and len(target.elts) == 2 and all(type(e) is ast.Name for e in target.elts)):
        return None
    key, value = (e.id for e in target.elts)
    for n in walk(loop):
        if type(n) is ast.Call and lb.call_name(n.func) == "setattr" and len(n.args) == 3 and type(n.args[0]) is ast.Name \
                and type(n.args[1]) is ast.Name and n.args[1].id == key \
                and any(type(x) is ast.Name and x.id == value for x in walk(n.args[2])):  # (`v`, or `bool(v)`)
            return _made_here(m, f, n.args[0].id)
    return None


def _table_read(f, e: ast.expr, depth: int = 0) -> tuple[ast.Call, list] | None:
    """(loader call, keys) of a table of a settings file that `e` holds: `load(fh)["quant"]`,
    `load(fh).get("quant", {})`, a name bound to one, `{k: conv(v) for k, v in t.items()}`."""
    if depth > 6:
        return None
    if type(e) is ast.Name:
        held = f.binding(e.id)
        return _table_read(f, held, depth + 1) if held is not None else None
    if type(e) is ast.DictComp and len(e.generators) == 1:
        it = e.generators[0].iter
        if type(it) is ast.Call and type(it.func) is ast.Attribute and it.func.attr == "items" and not it.args:
            return _table_read(f, it.func.value, depth + 1)
        return None
    if type(e) is ast.Subscript and type(e.slice) is ast.Constant and isinstance(e.slice.value, str):
        inner = _table_read(f, e.value, depth + 1)
        return (inner[0], inner[1] + [e.slice.value]) if inner else None
    if type(e) is not ast.Call:
        return None
    dotted = lb.dotted(e.func)
    if dotted in LOADERS:
        return e, []
    if type(e.func) is ast.Attribute and e.func.attr == "get" and e.args and type(e.args[0]) is ast.Constant \
            and isinstance(e.args[0].value, str):
        inner = _table_read(f, e.func.value, depth + 1)
        return (inner[0], inner[1] + [e.args[0].value]) if inner else None
    if lb.call_name(e.func) == "dict" and len(e.args) == 1 and not e.keywords:
        return _table_read(f, e.args[0], depth + 1)
    return None


class ShippedReads:
    """The guard evaluator's reads of shipped settings files (mixed into `reach.Evaluator`)."""

    def table_field(self, attr: str) -> tuple | None:
        """(value,) of a dataclass field that a shipped settings table sets (see `field_tables`),
        else None: the class default stands (also where no shipped file is named)."""
        for func, _, fields, src, keys, *whole in self.facts.get("field_tables", ()):
            if attr not in fields:
                continue
            try:
                scope = Scope(self.facts, func, self.env)
                data = self.name(src[7:-1], scope) if src.startswith("<param ") else self.loaded(parse_source(src), scope)
            except Unknown:
                continue
            for k in keys:
                data = data.get(k) if isinstance(data, dict) else None
            if whole and data is not None:
                return (data,)  # the table is the field's value
            if isinstance(data, dict) and attr in data:
                return (data[attr],)
        return None

    def loaded(self, n: ast.Call, scope):
        """The content of the shipped file a loader call reads (`json.loads(p.read_text())`)."""
        data = self.facts.get("shipped_data", {})
        names = [found for a in n.args[:1] for name in named_files(a, lambda k: _parsed(self._held(k, scope)),
                                                                    fields=self.facts.get("class_defs"))
                 for found in [shipped_file(data, name)] if found is not None]
        if len(set(names)) != 1:
            raise Unknown  # no file of the folder (or several) named there: the run decides
        self.touched.setdefault(names[0], f"{names[0]} as shipped")
        return data[names[0]]

    def ships(self, path: ast.expr, scope) -> bool:
        """A file check (`path.is_file()`, `os.path.exists(p)`) of a settings file: whether the
        folder ships it (the record runs in its folder); of any other path the run decides."""
        names = set(named_files(path, lambda k: _parsed(self._held(k, scope)), fields=self.facts.get("class_defs")))
        found = {shipped_file(self.facts.get("shipped_data", {}), name) for name in names}
        if len(names) != 1:
            raise Unknown
        name = names.pop()
        self.touched.setdefault(name, f"{name} {'shipped' if found != {None} else 'not shipped'}")
        return found != {None}

    def _held(self, name: str, scope) -> str | None:
        """The source a name holds in the scope: its binding; for a parameter, the argument an
        inlined call binds it to, or the arguments its call sites pass as one tuple
        (`QuantSettings.load(HERE / "settings.toml")`; sites are found by name, so `torch.load(buf)`
        is among them, naming no settings file); else its module-level binding."""
        if name in scope.bound:  # a parameter of an inlined helper: the argument (or default) it was given
            return ast.unparse(scope.bound[name][0])
        held = scope.define(name)
        if held is None:
            passed = sorted({a for _, a in self.param_sources(scope.func, name, every=True)})
            held = f"({', '.join(passed)},)" if passed else None
        if held is None and scope.func != "<module>":  # `SETTINGS_PATH = HERE / "run.toml"` at module level
            held = self.facts["functions"].get("<module>", {"defs": {}})["defs"].get(name) or None
        return held

    def entry(self, base, key):
        """`cfg["recall"]`, `cfg[0]` of a value read from a shipped file."""
        if isinstance(base, dict) and key in base or isinstance(base, list) and isinstance(key, int) and -len(base) <= key < len(base):
            return base[key]
        raise Unknown


_MAX_LITERAL = 1 << 16  # a settings file inlined as a literal: small ones (a data table is no setting)


def inlined(source: str, loads: list, data: dict[str, object]) -> str | None:
    """The source with each loader call of a shipped settings file replaced by the file's
    content as a Python literal, on the same lines (so the data flow sees the splits its
    strings name, `streams = ["fineweb_train_*.bin", "fineweb_val_*.bin"]`), or None when
    no call reads a shipped file. Text only: nothing is run."""
    lines = source.split("\n")
    done = False
    for line, col, end_line, end_col, names in sorted(loads, reverse=True):
        found = {shipped_file(data, n) for n in names} - {None}
        if len(found) != 1 or not 0 < line <= end_line <= len(lines):
            continue
        literal = repr(data[found.pop()])
        if len(literal) > _MAX_LITERAL:
            continue
        try:
            ast.literal_eval(literal)
        except (ValueError, SyntaxError, RecursionError):
            continue  # (TOML dates and times have no literal)
        first, last = lines[line - 1].encode(), lines[end_line - 1].encode()  # (columns count UTF-8 bytes)
        head, tail = first[:col].decode(errors="replace"), last[end_col:].decode(errors="replace")
        # parentheses let the call's other lines stay lines, so every later line keeps its number
        lines[line - 1:end_line] = [f"{head}({literal}"] + [""] * (end_line - line - 1) + [f"){tail}"] \
            if end_line > line else [f"{head}({literal}){tail}"]
        done = True
    return "\n".join(lines) if done else None


def inlined_texts(items: list[tuple[str, str]], all_facts: list[dict], data: dict[str, object]) -> dict[int, str]:
    """{unit index: its text with the shipped settings files it loads inlined (see `inlined`)}."""
    return {i: text for i, ((_, source), facts) in enumerate(zip(items, all_facts)) if facts.get("settings_loads")
            for text in [inlined(source, facts["settings_loads"], data)] if text is not None}


def with_inlined_findings(all_facts: list[dict], texts: dict[int, str], use_cache: bool = True) -> list[dict]:
    """The facts, with the findings of each unit in `texts` taken from that text; the rest
    of its facts (what reachability reads) stay those of the text as written, where the
    loader call itself is what a guard evaluates."""
    from auditors.engine import facts_for

    out = list(all_facts)
    for i, facts in zip(texts, facts_for(list(texts.values()), use_cache) if texts else ()):
        if not facts.get("parse_error"):
            out[i] = {**out[i], "findings": facts["findings"]}
    return out


def remote_setting(data: dict[str, object], key: str) -> tuple[str, str] | None:
    """(file, value) of a remote address (`"simplecache::hf://..."`) that a shipped settings
    file sets under `key`, at any depth; submission.json is the record's metadata (its
    author's links), not settings the code reads."""
    def found(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key and isinstance(v, str) and "URL" in lb.constant_labels(v):
                    return v
            nodes = node.values()
        else:
            nodes = node if isinstance(node, list) else ()
        return next((hit for hit in map(found, nodes) if hit is not None), None)

    for name, content in data.items():
        hit = None if name.rsplit("/", 1)[-1] == "submission.json" else found(content)
        if hit is not None:
            return name, hit
    return None
