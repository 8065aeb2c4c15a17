"""A file the evaluation loads that the script's own size count leaves out (RULES.md §1.1,
§1.2).

The artifact is the code plus every byte of model state the evaluation starts from; data
the evaluation reads that is not counted is unpaid side information. A script that writes
its weights to more than one file (`np.save(out / "final_model.embed.fp16.npy", emb)` beside
the compressed blob), reads both back to build the model it scores, and reports the
artifact size from a pattern that matches only one of them
(`sum(os.path.getsize(p) for p in glob.glob("final_model*.ptz"))`) reports a total short
by the other file: the artifact may be over 16,000,000 bytes while the log says it is not.
Data flow: file names are read from string constants (through names bound to them, path
joins `d / NAME`, `os.path.join(d, NAME)`, f-strings as patterns); the size count is what
`os.path.getsize`, `.stat().st_size` or `len(....read_bytes())` is applied to, or the glob a
loop or comprehension over it runs over, and a file whose written bytes are measured where
they are made (`f.write(quant_blob)` with `len(quant_blob)`). A written file is reported
when it is also read back, nothing counts it, and its name continues a counted artifact's
stem (`final_model.embed.fp16.npy` beside `final_model*.ptz`): the sidecar of the artifact,
not a checkpoint, a cache or a result file of the run under a name of its own.
Legal counterparts: every file the evaluation loads is counted (one glob covers them, or a
sum over the whole output folder); files written and never read (a raw checkpoint kept for
later); logs and settings files; modules with no size count (the record checks judge the
logged total).
"""

from __future__ import annotations

import ast
import fnmatch

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import by_function, guards_of, raw

RULE = RuleInfo("uncounted-artifact-file", "oversize_artifact",
                "a file the evaluation loads is left out of the size the script reports",
                "RULES.md §1.1 (artifact = code + compressed model bytes), §1.2")

_NOT_WEIGHTS = (".py", ".log", ".txt", ".json", ".md", ".csv", ".yaml", ".toml")
_GLOBS = {"glob", "rglob", "iglob"}


def check(m):
    counted, everything = _counted(m)
    if everything:
        return []  # a whole folder counted
    reads = {name for _, node, path in _file_calls(m, _read_path) for name in _file_names(path[0], path[1])}
    measured, writes = _measured(m), list(_file_calls(m, _written_path))
    for f, node, (g, path) in writes:
        if any(type(c) is ast.Name and c.id in measured for c in _contents(f, node)):
            counted |= set(_file_names(g, path))  # `quant_file_bytes = len(quant_blob)` of the bytes written
    stems = {_stem(p) for p in counted} - {""}
    if not stems:
        return []  # no size count here: the record checks judge the logged total
    out = []
    for f, node, (g, path) in writes:
        for name in _file_names(g, path):
            if name.endswith(_NOT_WEIGHTS) or name not in reads or any(_covers(p, name) for p in counted) \
                    or not any(name.startswith(stem + ".") or name.startswith(stem + "_") for stem in stems):
                continue
            out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error",
                           "medium", f"writes `{name}` beside the counted artifact and reads it back, but the script's "
                           f"size count covers only {', '.join(sorted(f'`{p}`' for p in counted))}: the reported "
                           "artifact total leaves this file out"))
            break
    return out


def _stem(pattern: str) -> str:
    """The artifact's name before its first dot or wildcard (`final_model*.ptz`: `final_model`);
    "" for a name too short to tell an artifact by."""
    stem = pattern.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0].split(".", 1)[0]
    return stem if len(stem) >= 4 and not pattern.endswith(".py") else ""


def _measured(m) -> set[str]:
    """Names whose length the module takes (`len(quant_blob)`): bytes counted where they are
    made; also names bound to such a name (`quant_blob = custom_blob`, the smaller of two kept)."""
    out = {c.args[0].id for f in m.functions.values() for c in f.nodes if type(c) is ast.Call
           and lb.call_name(c.func) == "len" and len(c.args) == 1 and type(c.args[0]) is ast.Name}
    copies = [(a.targets[0].id, a.value.id) for a in m.nodes_of(ast.Assign)
              if len(a.targets) == 1 and type(a.targets[0]) is ast.Name and type(a.value) is ast.Name]
    grown = True
    while grown:
        grown = False
        for target, value in copies:
            if value in out and target not in out:
                out.add(target)
                grown = True
    return out


def _contents(f, write: ast.Call) -> list:
    """What a write puts in its file: `np.save(p, a)` a, `torch.save(obj, p)` obj, `p.write_bytes(b)`
    b, and for `with open(p, "wb") as fh:` what `fh.write(...)` is handed in that block."""
    name = lb.call_name(write.func)
    if name in ("save", "savez", "savez_compressed"):
        return list(write.args[:1] if lb.dotted(write.func).startswith("torch") else write.args[1:])
    if name in ("write_bytes", "write_text"):
        return list(write.args[:1])
    if name != "open":
        return []
    for w in f.nodes:
        if type(w) is ast.With and any(item.context_expr is write and type(item.optional_vars) is ast.Name for item in w.items):
            fh = next(item.optional_vars.id for item in w.items if item.context_expr is write)
            return [c.args[0] for st in w.body for c in lb.walk(st) if type(c) is ast.Call and type(c.func) is ast.Attribute
                    and c.func.attr == "write" and lb.dotted(c.func.value) == fh and c.args]
    return []


def _covers(pattern: str, name: str) -> bool:
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


def _file_calls(m, which):
    """(function, call, (function the path is read in, path expression)) for each call that
    `which` recognises."""
    for f, node in by_function(m, ast.Call):
        path = which(node)
        if path is not None:
            yield f, node, (f, path)


def _written_path(c: ast.Call):
    name, func = lb.call_name(c.func), c.func
    base = lb.dotted(func.value) if type(func) is ast.Attribute else ""
    if name in ("save", "savez", "savez_compressed") and base in ("np", "numpy") and c.args:
        return c.args[0]
    if name == "save" and base == "torch" and len(c.args) >= 2:
        return c.args[1]
    if name in ("write_bytes", "write_text") and type(func) is ast.Attribute:
        return func.value
    if name == "tofile" and c.args:
        return c.args[0]
    if name == "open" and base in ("", "io", "builtins") and c.args and "w" in _mode(c):
        return c.args[0]
    return None


def _read_path(c: ast.Call):
    name, func = lb.call_name(c.func), c.func
    base = lb.dotted(func.value) if type(func) is ast.Attribute else ""
    if name in ("load", "fromfile", "memmap") and base in ("np", "numpy", "torch") and c.args:
        return c.args[0]
    if name in ("read_bytes", "read_text") and type(func) is ast.Attribute:
        return func.value
    if name == "open" and base in ("", "io", "builtins") and c.args and "w" not in _mode(c) and "a" not in _mode(c):
        return c.args[0]
    return None


def _mode(c: ast.Call) -> str:
    mode = c.args[1] if len(c.args) > 1 else next((k.value for k in c.keywords if k.arg == "mode"), None)
    return mode.value if type(mode) is ast.Constant and isinstance(mode.value, str) else "r"


def _file_names(f, path, depth: int = 0) -> list[str]:
    """The file names (last path components, `*` for a formatted part) a path expression
    spells: `out / EMBED_FILE`, `os.path.join(d, "x.npy")`, `f"{run}.npz"`, a name bound to one."""
    if depth > 3 or path is None:
        return []
    if type(path) is ast.Constant and isinstance(path.value, str):
        return [path.value.replace("\\", "/").rsplit("/", 1)[-1]] if path.value else []
    if type(path) is ast.JoinedStr:
        text = "".join(v.value if type(v) is ast.Constant else "*" for v in path.values)
        last = text.rsplit("/", 1)[-1]
        return [last] if last.strip("*") else []
    if type(path) is ast.BinOp and type(path.op) is ast.Div:
        return _file_names(f, path.right, depth + 1)
    if type(path) is ast.Call:
        name = lb.call_name(path.func)
        if name == "join" and path.args:
            return _file_names(f, path.args[-1], depth + 1)
        if name in ("str", "Path", "fspath", "abspath", "expanduser", "resolve") and path.args:
            return _file_names(f, path.args[0], depth + 1)
        if name in ("with_name", "joinpath") and path.args:
            return _file_names(f, path.args[-1], depth + 1)
        if name == "resolve" and type(path.func) is ast.Attribute:
            return _file_names(f, path.func.value, depth + 1)
        return []
    if type(path) is ast.Name:
        return _file_names(f, f.binding(path.id), depth + 1)
    return []


def _counted(m) -> tuple[set[str], bool]:
    """(the names and patterns the module's size counts cover, whether one counts a whole
    folder: `os.listdir`, `iterdir()`, `glob("*")`)."""
    out, everything = set(), False
    for f in m.functions.values():
        loops = _loop_sources(f)
        for node in f.nodes:
            sized = _sized(node)
            if sized is None:
                continue
            sources = [sized]
            if type(sized) is ast.Name and sized.id in loops:
                sources = [loops[sized.id]]
            for src in sources:
                pats, whole = _patterns(f, src)
                out |= pats
                everything |= whole
    return out, everything


def _sized(node):
    """The path whose size is taken: `os.path.getsize(p)`, `p.stat().st_size`, `os.stat(p).st_size`,
    `len(p.read_bytes())`, `len(open(p, "rb").read())`."""
    if type(node) is ast.Call and lb.call_name(node.func) == "getsize" and node.args:
        return node.args[0]
    if type(node) is ast.Attribute and node.attr == "st_size" and type(node.value) is ast.Call:
        stat = node.value
        if lb.call_name(stat.func) == "stat":
            return stat.args[0] if stat.args else stat.func.value if type(stat.func) is ast.Attribute else None
    if type(node) is ast.Call and lb.call_name(node.func) == "len" and len(node.args) == 1 and type(node.args[0]) is ast.Call:
        inner = node.args[0]
        if lb.call_name(inner.func) == "read_bytes" and type(inner.func) is ast.Attribute:
            return inner.func.value
        if lb.call_name(inner.func) == "read" and type(inner.func) is ast.Attribute and type(inner.func.value) is ast.Call \
                and lb.call_name(inner.func.value.func) == "open" and inner.func.value.args:
            return inner.func.value.args[0]
    return None


def _loop_sources(f) -> dict[str, ast.expr]:
    """Loop and comprehension variables -> what they run over (`for p in glob.glob(...)`)."""
    out = {}
    for n in f.nodes:
        if type(n) in (ast.For, ast.comprehension) and type(n.target) is ast.Name:
            out[n.target.id] = n.iter
    return out


def _patterns(f, src, depth: int = 0) -> tuple[set[str], bool]:
    """The names or glob patterns a sized path or the collection it comes from covers."""
    if depth > 3:
        return set(), False
    if type(src) is ast.Call:
        name = lb.call_name(src.func)
        if name in ("listdir", "scandir", "iterdir", "walk"):
            return set(), True
        if name in _GLOBS and src.args:
            pats = set(_file_names(f, src.args[0]))
            return pats, any(p.strip("*") == "" for p in pats) or "**" in lb.src(src.args[0])
        if name in ("sorted", "list", "tuple", "set", "chain") and src.args:
            found = [_patterns(f, a, depth + 1) for a in src.args]
            return set().union(*(p for p, _ in found)), any(w for _, w in found)
    if type(src) in (ast.List, ast.Tuple, ast.Set):
        found = [_patterns(f, e, depth + 1) for e in src.elts]
        return set().union(*(p for p, _ in found)), any(w for _, w in found)
    if type(src) is ast.Name:
        bound = f.binding(src.id)
        if bound is not None and type(bound) in (ast.Call, ast.List, ast.Tuple, ast.Set):
            found = _patterns(f, bound, depth + 1)
            if found[0] or found[1]:
                return found
    return set(_file_names(f, src)), False
