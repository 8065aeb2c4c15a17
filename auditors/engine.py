"""Audit driver: files -> per-file facts (cached) -> findings.

Per-file facts are independent of the launch profile: they hold rule findings with
their guards, plus what reachability needs (function parameters, simple definitions,
call sites with guards), and the code packed inside the file (see auditors.unpack),
read from the same parse. They are cached as JSON by content hash, and computed in a
process pool over two workers; packed layers are analysed in the waves that follow.
"""

from __future__ import annotations

import ast
import functools
import gc
import hashlib
import json
import os
import re
import stat
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from harness.atomic import atomic_write_text

from auditors import labels as lb
from auditors.model import RawFinding, RuleInfo
from auditors.dispatch import entry_guards
from auditors.reach_facts import PY_NAME, reach_facts
from auditors.syntax_bridge import bridged, parses
from auditors.unpack import MAX_DEPTH, MAX_OUTPUT, layer_name, packed_payloads

CODE_SUFFIXES = {".py"}
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".hypothesis", ".pytest_cache"}
WORKERS = 2


@functools.lru_cache(maxsize=1)
def engine_version() -> str:
    """Hash of the auditor's own code: a rule change invalidates the cache."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("PGOLF_AUDIT_CACHE", Path.home() / ".cache" / "pgolf-audit"))


def analyze_source(source: str, seeds: dict | None = None) -> dict:
    """Facts of one module (see module docstring). Never executes the source.

    The cyclic garbage collector is paused while one module is analysed: the analysis
    allocates millions of small objects that die young (or by reference counting), and
    each automatic collection would re-traverse the whole syntax tree. `labels.src`
    memoizes by node identity, so it is emptied afterwards: kept, it would pin every
    analysed tree in memory and make later collections slower still.
    """
    was_enabled, limit = gc.isenabled(), sys.getrecursionlimit()
    gc.disable()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        return _analyze(source, seeds)
    finally:
        sys.setrecursionlimit(limit)
        lb.src.cache_clear()
        if was_enabled:
            gc.enable()


# The analysis recurses once per level of expression nesting; CPython's own parser
# stops near 1,000 levels, and Python-to-Python calls do not use the C stack (3.11+).
RECURSION_LIMIT = 20_000


def _analyze(source: str, seeds: dict | None = None) -> dict:
    from auditors.aliases import unaliased
    from auditors.analysis import ModuleFlow
    from auditors.rules import all_rules
    from auditors.table_gets import as_subscripts
    from auditors.val_split import split_points

    tree, skipped = parse_tolerant(source)
    if tree is not None:
        tree = as_subscripts(unaliased(tree))
    if tree is None:
        return {"parse_error": "not parsable as Python", "functions": {}, "calls": {}, "class_defs": {},
                "entry": False, "env_sets": {}, "imports": [], "findings": [asdict(_unreadable_file())],
                "payloads": []}
    try:
        m = ModuleFlow(source, tree, seeds)
    except RecursionError:
        return {"parse_error": "nested too deeply for the analysis", "functions": {}, "calls": {}, "class_defs": {},
                "entry": False, "env_sets": {}, "imports": [], "payloads": [],
                "findings": [asdict(_not_analysed(1, "the data-flow analysis", "RecursionError"))]}
    try:
        findings = [asdict(_unparsable(line, f"line {line}")) for line in skipped]
        for rule in all_rules():
            try:
                findings.extend(asdict(f) for f in rule.check(m))
            except Exception as e:  # noqa: BLE001 - one rule failing must not hide the others' findings
                findings.append(asdict(_not_analysed(1, f"rule {rule.RULE.id}", type(e).__name__)))
        for lo, hi, func, guard in entry_guards(m):  # a dispatch table's lambda runs only under its key
            for f in findings:
                if f["function"] == func and lo <= f["line"] <= hi and [guard, True] not in f["guards"]:
                    f["guards"] = [[guard, True], *f["guards"]]
        payloads = packed_payloads(source, tree, m.by_type)
        findings += [asdict(_too_large(line, executed)) for line, text, executed in payloads if text is None]
        return {"parse_error": None, **reach_facts(m, tree), "findings": findings, "val_splits": split_points(m),
                "payloads": [[line, text] for line, text, _ in payloads if text is not None]}
    finally:
        m.release()


MAX_SKIPPED_LINES = 50


def parse_tolerant(source: str):
    """(tree, skipped lines): syntax of a newer Python is rewritten on the same lines
    (`auditors.syntax_bridge`): the line this Python fails on by itself (cheap), else the
    whole file (a construct over several lines); lines it still cannot parse are replaced by
    `pass` at the same indentation, so line numbers still point into the file."""
    lines = source.splitlines()
    skipped, rewritten, whole_tried = [], set(), False
    while True:
        try:
            return ast.parse("\n".join(lines)), skipped
        except (RecursionError, MemoryError):
            return None, skipped  # nested deeper than the parser goes: CPython cannot compile it either
        except (SyntaxError, ValueError) as e:
            line = getattr(e, "lineno", None)
            if not line or line > len(lines) or len(skipped) >= MAX_SKIPPED_LINES or line in skipped:
                return None, skipped
            text = lines[line - 1]
            indent = text[: len(text) - len(text.lstrip())]
            alone = bridged(text.lstrip() + "\n") if line not in rewritten and text.strip() else None
            if alone is not None and alone.count("\n") == 1 and parses(alone):
                lines[line - 1] = indent + alone.rstrip("\n")
                rewritten.add(line)
                continue
            if not whole_tried:  # (an f-string or a signature over several lines: libcst reads the whole file)
                whole_tried = True
                newer = bridged("\n".join(lines))
                if newer is not None:
                    lines = newer.splitlines()
                    continue
            lines[line - 1] = f"{indent}pass"
            skipped.append(line)


# Not a compliance rule: a line the auditor could not read is reported, because a
# construct hidden on it would otherwise pass unseen (RULES.md §11).
UNPARSABLE = RuleInfo("unparsable-code", "other", "code not audited because it does not parse",
                      "RULES.md §11 (static checks must read what runs)")


def _too_large(line: int, executed: bool) -> RawFinding:
    """A blob too large to decode hides what it holds: code run here is an error; a blob
    that no runner visibly takes may be data (a word list) or code run out of sight."""
    if executed:
        return RawFinding(UNPARSABLE.id, "error", "high", line, f"packed code executed here decodes to over "
                          f"{MAX_OUTPUT:,} bytes and was not audited", "<module>", [])
    return RawFinding(UNPARSABLE.id, "warning", "low", line, f"a literal blob decoded here holds over {MAX_OUTPUT:,} "
                      "bytes, data or code; it was not audited", "<module>", [])


def _not_analysed(line: int, what: str, why: str) -> RawFinding:
    """The auditor itself failed on this file: nothing it would have found is known, so
    the file is not passed as clean."""
    return RawFinding(UNPARSABLE.id, "error", "low", line, f"{what} failed on this file ({why}); it was not checked "
                      "by it: report this file to the harness developers", "<module>", [])


def _unreadable_file() -> RawFinding:
    """Python that this interpreter cannot parse cannot run in the harness either, and
    whatever it holds went unseen: not a pass."""
    return RawFinding(UNPARSABLE.id, "error", "high", 1, "the file could not be parsed by this Python and was not "
                      "audited", "<module>", [])


def _unparsable(line: int, what: str):
    return RawFinding(UNPARSABLE.id, "warning", "high", line, f"{what} could not be parsed and was not audited", "<module>", [])




def invocation_lines(root: Path, script: str) -> list[tuple[str, str]]:
    """(document, line) for the lines of the folder's shell scripts and READMEs that
    name `script` (backslash continuations joined): how the folder says to run it."""
    out = []
    if not root.is_dir():
        return out
    for doc in sorted(p for p in (*root.glob("*.sh"), *root.glob("*.md")) if p.is_file() and not p.is_symlink()):
        try:
            text = doc.read_text(errors="replace")
        except OSError:
            continue
        out += [(doc.name, line) for line in text.replace("\\\n", " ").splitlines() if script in line]
    return out


def launch_flags(root: Path, script: str) -> dict[str, str]:
    """{argparse destination: value as Python source} of the `--flags` the folder's own
    run commands pass to `script`: `--n 3` gives "3", `--name x` "'x'", a bare `--cache` "True"."""
    out: dict[str, str] = {}
    for _, line in invocation_lines(root, script):
        for flag, value in re.findall(r"--([A-Za-z][\w-]*)(?:[ =]+([^\s-][^\s]*))?", line):
            if not value:
                source = "True"
            elif re.fullmatch(r"[0-9.eE+_]+", value):
                source = value
            else:
                source = repr(value.strip("'\""))
            out.setdefault(flag.replace("-", "_"), source)
    return out


def entry_files(root: Path) -> list[str] | None:
    """Files a folder runs: submission.toml's entrypoint and code list, else train_gpt.py; None if unknown."""
    toml = root / "submission.toml"
    if toml.is_file():
        import tomllib
        try:
            sub = tomllib.loads(toml.read_text()).get("submission", {})
        except tomllib.TOMLDecodeError:
            sub = {}
        names = [sub["entrypoint"]] if isinstance(sub.get("entrypoint"), str) else []
        names += [c for c in sub.get("code", []) if isinstance(c, str)]
        if names:
            return names
    return ["train_gpt.py"] if (root / "train_gpt.py").exists() else None


def shipped_packages(root: Path) -> list[tuple[str, Path]]:
    """(name, folder) of the installed packages a submission.toml ships (their code runs with it)."""
    toml = root / "submission.toml"
    if not toml.is_file():
        return []
    import importlib.util
    import tomllib

    try:
        names = tomllib.loads(toml.read_text()).get("submission", {}).get("packages", [])
    except tomllib.TOMLDecodeError:
        return []
    out = []
    for name in names if isinstance(names, list) else []:
        spec = importlib.util.find_spec(name) if isinstance(name, str) and name.isidentifier() else None
        if spec is not None and spec.submodule_search_locations:  # located, never imported
            out.append((name, Path(list(spec.submodule_search_locations)[0])))
    return out


def reachable_files(entries: list[str], imports: dict[str, list[str]],
                    mentions: dict[str, list[str]] | None = None) -> dict[str, str | None]:
    """Entry files plus the folder's files they import or name (exec, runpy, a
    subprocess), transitively: {file: the file that reached it first, None for entries}."""
    by_module = {name[:-3].replace("/", "."): name for name in imports if name.endswith(".py")}
    by_module.update({name[:-len("/__init__.py")].replace("/", "."): name for name in imports if name.endswith("/__init__.py")})
    by_base: dict[str, list[str]] = {}
    for name in imports:
        by_base.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    parent: dict[str, str | None] = {}
    todo: list[tuple[str, str | None]] = [(e, None) for e in reversed(entries) if e in imports]
    while todo:
        name, via = todo.pop()
        if name in parent:
            continue
        parent[name] = via
        for mod in absolute_imports(name, imports[name]):
            parts = mod.split(".")
            for i in range(len(parts), 0, -1):  # `from pkg.mod import x` and `import pkg.mod`
                target = by_module.get(".".join(parts[:i])) or by_module.get(".".join(parts[i - 1:i]))
                if target:
                    todo.append((target, name))
                    break
        for base in (mentions or {}).get(name, ()):
            todo.extend((target, name) for target in by_base.get(base, ()) if target != name)
    return parent


def absolute_imports(name: str, imports: list[str]) -> list[str]:
    """A file's imports as absolute module names: `.core` (`from .core import *`) in
    evalkit/__init__.py or evalkit/io.py is evalkit.core; each further dot climbs a package."""
    package = name.split("/")[:-1]
    out = []
    for mod in imports:
        rest = mod.lstrip(".")
        level = len(mod) - len(rest)
        if level == 0:
            out.append(mod)
        elif level - 1 <= len(package):
            out.append(".".join([*package[:len(package) - level + 1], *([rest] if rest else [])]))
    return out


def _cache_path(key: str) -> Path:
    return cache_dir() / key[:2] / f"{key}.json"


def _cache_read(key: str) -> dict | None:
    try:
        return json.loads(_cache_path(key).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _cache_write(key: str, value) -> None:
    try:
        atomic_write_text(_cache_path(key), json.dumps(value, separators=(",", ":")))
    except OSError:
        pass  # a read-only or full cache only costs time


def _cached_analyze(args) -> dict:
    source, key, use_cache = args
    facts = analyze_source(source)
    if use_cache:
        _cache_write(key, facts)
    return facts


def analyze_seeded(source: str, seeds: dict, use_cache: bool = True) -> dict:
    """Facts of a module analysed with parameter labels that other files pass to its
    functions (cached under the seeds too)."""
    key = hashlib.sha256((engine_version() + json.dumps(seeds, sort_keys=True) + source).encode("utf-8", "replace")).hexdigest()
    hit = _cache_read(key) if use_cache else None
    return hit if hit is not None else _cached_analyze_seeded(source, seeds, key, use_cache)


def _cached_analyze_seeded(source: str, seeds: dict, key: str, use_cache: bool) -> dict:
    facts = analyze_source(source, {name: {p: set(v) for p, v in params.items()} for name, params in seeds.items()})
    if use_cache:
        _cache_write(key, facts)
    return facts


def collect_code(root: Path, suffixes=CODE_SUFFIXES) -> list[Path]:
    """Regular files with these suffixes under root (Python code by default; the folder
    checks ask for kernels and data files). Symlinks that leave the folder are not
    followed; anything that is not a regular file (a named pipe would block the reader)
    is refused. A file given as root is returned whatever its suffix."""
    if root.is_file() or not root.is_dir():
        _check_regular(root, root.parent)
        return [root]
    out = []
    base = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix in suffixes and _check_regular(p, base):
                out.append(p)
    return out


_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import|import[ \t]+([\w.]+))", re.M)


def siblings_run_by(path: Path, limit: int = 50) -> list[Path]:
    """Files of path's folder that path imports or names (`exec(open("inner.py").read())`,
    runpy, a subprocess), and those that they name, transitively: a file audited alone
    still runs them. Found by text; whether each is really run is judged from the
    analysis (`reachable_files`), and those that are not are reported dormant."""
    folder, seen, todo, out = path.parent, {path.name}, [path], []
    while todo and len(seen) < limit:
        try:
            text = todo.pop().read_text(errors="replace")
        except OSError:
            continue
        names = set(PY_NAME.findall(text)) | {(a or b).split(".")[0] + ".py" for a, b in _IMPORT_LINE.findall(text)}
        for name in sorted(names - seen):
            q = folder / name
            if q.is_file() and _check_regular(q, folder):
                seen.add(name)
                out.append(q)
                todo.append(q)
    return out


def _check_regular(p: Path, base: Path) -> bool:
    """True for a regular file inside `base`; False for a symlink leaving it; BadInput otherwise."""
    from harness.errors import BadInput

    try:
        if p.is_symlink() and not p.resolve().is_relative_to(base.resolve()):
            return False  # points outside the audited folder: not part of it, never read
        mode = p.stat().st_mode
    except OSError as e:
        raise BadInput(f"cannot read {p}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise BadInput(f"{p} is not a regular file; refusing to read it")
    return True


def units(files: list[Path], root: Path) -> list[tuple[str, str]]:
    """[(display path, source)] of the files (unreadable ones are skipped)."""
    out = []
    for p in files:
        try:
            source = p.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        out.append((p.name if root.is_file() else str(p.relative_to(root)), source))
    return out


def analyze_units(items: list[tuple[str, str]], use_cache: bool = True,
                  progress: bool = False) -> tuple[list[tuple[str, str]], list[dict]]:
    """(units, facts): the given units and the code packed inside them, each file
    followed by its layers (`name[unpacked]`, depth first, at most MAX_DEPTH deep), with
    the facts of each. The workers find the payloads in the trees they parse anyway, so
    a file is parsed once, and never in this process."""
    names, sources = [n for n, _ in items], [s for _, s in items]
    facts = facts_for(sources, use_cache, progress)
    children: dict[int, list[int]] = {}
    frontier = list(range(len(items)))
    for _depth in range(MAX_DEPTH):
        found = []
        for i in frontier:
            for k, (_line, text) in enumerate(facts[i]["payloads"]):
                children.setdefault(i, []).append(len(names))
                names.append(layer_name(names[i], k))
                sources.append(text)
                found.append(len(names) - 1)
        if not found:
            break
        facts += facts_for([sources[j] for j in found], use_cache, progress)
        frontier = found
    order: list[int] = []

    def visit(i: int) -> None:
        order.append(i)
        for c in children.get(i, ()):
            visit(c)

    for i in range(len(items)):
        visit(i)
    return [(names[i], sources[i]) for i in order], [facts[i] for i in order]


def facts_for(sources: list[str], use_cache: bool, progress: bool = False) -> list[dict]:
    """Facts for each source, in order; cache misses analysed in parallel."""
    version = engine_version()
    jobs = [(src, hashlib.sha256(version.encode() + src.encode("utf-8", "replace")).hexdigest(), use_cache) for src in sources]
    unique: dict[str, tuple] = {}
    for j in jobs:
        unique.setdefault(j[1], j)
    results: dict[str, dict] = {}
    todo = []
    for job in unique.values():  # cache hits are read here: no worker needed
        hit = _cache_read(job[1]) if use_cache else None
        if hit is not None:
            results[job[1]] = hit
        else:
            todo.append(job)
    if len(todo) <= 1:
        for j in todo:
            results[j[1]] = _cached_analyze(j)
    else:
        todo.sort(key=lambda j: -len(j[0]))  # largest first: the last file to finish is a small one
        with ProcessPoolExecutor(max_workers=WORKERS) as pool:
            it = pool.map(_cached_analyze, todo, chunksize=1)
            if progress:
                from tqdm import tqdm
                it = tqdm(it, total=len(todo), desc="audit", unit="file")
            for j, facts in zip(todo, it):
                results[j[1]] = facts
    return [results[j[1]] for j in jobs]
