"""Reading and checking a submission folder's `submission.toml` (docs/SUBMISSIONS.md).

Trusted code: it only parses TOML and resolves paths; nothing in the folder is
imported or executed here.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.errors import BadInput

MANIFEST = "submission.toml"
_SUBMISSION_KEYS = {"name", "entrypoint", "artifact", "code", "packages", "vocab_size"}
_EVAL_KEYS = {"seq_len", "stride", "ttt_chunk", "batch_seqs"}


@dataclass(frozen=True)
class EvalSettings:
    """The submission's evaluation method ([eval]); None = the harness default."""

    seq_len: int | None = None
    stride: int | None = None
    ttt_chunk: int | None = None
    batch_seqs: int | None = None


@dataclass(frozen=True)
class Submission:
    root: Path  # resolved folder
    name: str
    entrypoint: Path  # resolved, inside root
    artifact: Path  # resolved, inside root
    code: tuple[Path, ...]  # resolved, inside root
    packages: tuple[str, ...]
    vocab_size: int
    eval: EvalSettings = field(default_factory=EvalSettings)
    train: dict = field(default_factory=dict)


def inside(root: Path, relative: object, what: str, must_exist: bool = True) -> Path:
    """Resolve `relative` against root; BadInput unless it stays inside root.

    Rejects absolute paths, `..` components and symlinks that point out of the folder.
    """
    if not isinstance(relative, str) or not relative:
        raise BadInput(f"{MANIFEST}: {what} must be a non-empty string, got {relative!r}")
    rel = PurePosixPath(relative)
    if rel.is_absolute() or os.path.isabs(relative):
        raise BadInput(f"{MANIFEST}: {what} {relative!r} is an absolute path; it must be relative to the folder")
    if ".." in rel.parts:
        raise BadInput(f"{MANIFEST}: {what} {relative!r} contains '..'; it must stay inside the folder")
    resolved = (root / rel).resolve()
    if resolved != root and root not in resolved.parents:
        raise BadInput(f"{MANIFEST}: {what} {relative!r} resolves outside the submission folder ({resolved})")
    if must_exist and not resolved.is_file():
        raise BadInput(f"{MANIFEST}: {what} {relative!r} is not a file in {root}")
    return resolved


def _positive_int(table: dict, key: str, section: str, required: bool = False) -> int | None:
    if key not in table:
        if required:
            raise BadInput(f"{MANIFEST}: [{section}] {key} is missing")
        return None
    value = table[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadInput(f"{MANIFEST}: [{section}] {key} must be a positive integer, got {value!r}")
    return value


def _string_list(table: dict, key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadInput(f"{MANIFEST}: [submission] {key} must be a list of non-empty strings, got {value!r}")
    return value


def load_submission(folder: str | os.PathLike) -> Submission:
    """Parse and check `folder/submission.toml`; BadInput naming the first bad field."""
    root = Path(folder).resolve()
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise BadInput(f"{manifest}: no {MANIFEST} (is {folder} a submission folder?)")
    try:
        doc = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{manifest}: not valid TOML: {e}") from None
    unknown = set(doc) - {"submission", "eval", "train"}
    if unknown:
        raise BadInput(f"{MANIFEST}: unknown table(s) {sorted(unknown)}")
    sub = doc.get("submission")
    if not isinstance(sub, dict):
        raise BadInput(f"{MANIFEST}: [submission] table is missing")
    unknown = set(sub) - _SUBMISSION_KEYS
    if unknown:
        raise BadInput(f"{MANIFEST}: [submission] unknown field(s) {sorted(unknown)}")
    name = sub.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadInput(f"{MANIFEST}: [submission] name must be a non-empty string, got {name!r}")
    for key in ("entrypoint", "artifact"):
        if key not in sub:
            raise BadInput(f"{MANIFEST}: [submission] {key} is missing")
    entrypoint = inside(root, sub["entrypoint"], "[submission] entrypoint")
    if entrypoint.suffix != ".py":
        raise BadInput(f"{MANIFEST}: [submission] entrypoint {sub['entrypoint']!r} must be a .py file")
    artifact = inside(root, sub["artifact"], "[submission] artifact")
    code = tuple(inside(root, c, "[submission] code entry") for c in _string_list(sub, "code"))
    if entrypoint not in code:
        raise BadInput(f"{MANIFEST}: [submission] code must list the entrypoint {sub['entrypoint']!r}")
    packages = _string_list(sub, "packages")
    for pkg in packages:
        if not pkg.isidentifier():
            raise BadInput(f"{MANIFEST}: [submission] packages entry {pkg!r} is not a top-level package name")
    vocab_size = _positive_int(sub, "vocab_size", "submission", required=True)

    ev = doc.get("eval", {})
    if not isinstance(ev, dict):
        raise BadInput(f"{MANIFEST}: [eval] must be a table")
    unknown = set(ev) - _EVAL_KEYS
    if unknown:
        raise BadInput(f"{MANIFEST}: [eval] unknown field(s) {sorted(unknown)}")
    settings = EvalSettings(**{k: _positive_int(ev, k, "eval") for k in _EVAL_KEYS})
    train = doc.get("train", {})
    if not isinstance(train, dict):
        raise BadInput(f"{MANIFEST}: [train] must be a table")
    return Submission(root, name, entrypoint, artifact, code, tuple(packages), vocab_size, settings, train)
