"""Settings kept in data files shipped with a submission (`eval_config.json`, `data.toml`).

A submission may hold its switches in a JSON or TOML file beside its script and read
them with `json.load(open(...))` or `tomllib.loads(path.read_text())`. What such a file
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

from auditors.reach_scope import Unknown

LOADERS = {"json.load": "json", "json.loads": "json", "tomllib.load": "toml", "tomllib.loads": "toml",
           "tomli.load": "toml", "tomli.loads": "toml", "toml.load": "toml", "toml.loads": "toml"}
_SUFFIXES = {".json": "json", ".toml": "toml"}
_MAX_BYTES = 1 << 20  # settings files are small; a larger JSON is data (a table), not read for reach


def shipped_data(root: Path, recursive: bool = True) -> dict[str, object]:
    """{path relative to root (POSIX): parsed content} of the folder's JSON and TOML files
    that parse (symlinks and files over 1 MiB are left out); with recursive=False, only
    those directly in it (the folder of a script audited alone)."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*") if recursive else root.iterdir()):
        kind = _SUFFIXES.get(p.suffix)
        if kind is None or p.is_symlink() or not p.is_file() or p.stat().st_size > _MAX_BYTES:
            continue
        try:
            text = p.read_text(encoding="utf-8")
            out[p.relative_to(root).as_posix()] = json.loads(text) if kind == "json" else tomllib.loads(text)
        except (OSError, UnicodeDecodeError, ValueError):  # (TOMLDecodeError and JSONDecodeError are ValueErrors)
            continue
    return out


def named_files(arg: ast.expr, define, depth: int = 0) -> list[str]:
    """The settings-file names that a loader's argument spells: string constants ending in
    .json or .toml in it, or in what its names are bound to (`open(cfg_path)`, a `with
    open(...) as fh` target)."""
    names = []
    for n in ast.walk(arg):
        if type(n) is ast.Constant and isinstance(n.value, str) and n.value.endswith(tuple(_SUFFIXES)):
            names.append(n.value)
        elif type(n) is ast.Name and depth < 3:
            bound = define(n.id)
            if bound:
                try:
                    names += named_files(ast.parse(bound, mode="eval").body, define, depth + 1)
                except SyntaxError:
                    continue
    return names


def shipped_file(data: dict[str, object], name: str) -> str | None:
    """The shipped file a name refers to: its relative path, or the one file whose path ends
    with it (`Path(__file__).parent / "eval_config.json"`); None when none or several do."""
    name = name.replace("\\", "/").lstrip("./")
    if name in data:
        return name
    ending = [p for p in data if p.endswith("/" + name) or p == name.rsplit("/", 1)[-1] and "/" not in p]
    return ending[0] if len(ending) == 1 else None


class ShippedReads:
    """The guard evaluator's reads of shipped settings files (mixed into `reach.Evaluator`)."""

    def loaded(self, n: ast.Call, scope):
        """The content of the shipped file a loader call reads (`json.loads(p.read_text())`)."""
        data = self.facts.get("shipped_data", {})
        names = [found for a in n.args[:1] for name in named_files(a, scope.define)
                 for found in [shipped_file(data, name)] if found is not None]
        if len(set(names)) != 1:
            raise Unknown  # no file of the folder (or several) named there: the run decides
        self.touched.setdefault(names[0], f"{names[0]} as shipped")
        return data[names[0]]

    def entry(self, base, key):
        """`cfg["recall"]`, `cfg[0]` of a value read from a shipped file."""
        if isinstance(base, dict) and key in base or isinstance(base, list) and isinstance(key, int) and -len(base) <= key < len(base):
            return base[key]
        raise Unknown
