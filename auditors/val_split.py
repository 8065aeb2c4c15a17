"""Data-preparation scripts that cut the validation split short (RULES.md §9, §1.3).

The validation set is fixed: the first 50,000 documents of the canonical stream
(PR940_SPEC.md s.1). A script that rebuilds shards walks the document stream and sends
documents before a count to `*_val_*` files and the rest to `*_train_*` files. When
that count defaults to less than 50,000, the training shards it writes begin inside
the validation set: with `--val-docs=10000` (the CaseOps `prepare_caseops_data.py`
default), documents 10,000-49,999, 80% of what is scored, are trained on. Maintainers
excluded #2018 and dropped #2130 for this (issue #2127).

Whether a record's shards came from the script or from the canonical download is not
visible in code, so the finding's reachability is `unknown` with that condition; a
reviewer confirms it from the logs (e.g. `train_shards:` far above the canonical 80).
When the folder's own `*.sh` / `*.md` lines run the script with the count's flag
(`--val-docs 10000`), that value is judged instead and the finding is `active`.
Recognised split points: `if n < COUNT:` (val branch first) or `if n >= COUNT:` (train
branch first), with or without `else` (a `continue` ends the first branch), and
`a if n < COUNT else b`; COUNT is a literal, a module constant, an argparse default
(`args.val_docs`) or an environment default (`int(os.environ.get(K, "10000"))`).
The branches are told apart by the shard names and split words they use.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from auditors.model import Finding, RuleInfo

RULE = RuleInfo("short-val-split", "val_in_training",
                "data preparation puts validation documents into training shards",
                "RULES.md §9 (issue #2127; #2018, #2130), §1.3")
CANONICAL_VAL_DOCS = 50_000
_WORDS = re.compile(r"[a-z]+")
_VAL, _TRAIN = {"val", "valid", "validation"}, {"train", "training"}
_FLAG_VALUE = re.compile(r"(--[\w-]+)(?:=|\s+)(\d[\d_]*)\b")


def _split_words(nodes) -> set[str]:
    """'val' / 'train': the splits a branch names in its strings (shard names); identifiers
    only when it has no such string (a branch that just fills `val_buf`)."""
    strings, names = set(), set()
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                strings |= _words(n.value)
            elif isinstance(n, (ast.Name, ast.Attribute)):
                names |= _words(n.id if isinstance(n, ast.Name) else n.attr)
    return strings or names


def _words(text: str) -> set[str]:
    words = set(_WORDS.findall(text.lower()))
    return ({"val"} if words & _VAL else set()) | ({"train"} if words & _TRAIN else set())


def _int(node) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)) and not isinstance(node.value, bool):
        try:
            return int(str(node.value).replace("_", ""))
        except ValueError:
            return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "float") and node.args:
        inner = node.args[0]
        if isinstance(inner, ast.Call) and len(inner.args) == 2 and isinstance(inner.func, ast.Attribute) \
                and inner.func.attr in ("get", "getenv"):
            return _int(inner.args[1])  # os.environ.get(K, "10000") / os.getenv(K, "10000")
        return _int(inner)
    return None


class _Counts:
    """Integer values a split count can resolve to in one module."""

    def __init__(self, tree: ast.Module):
        self.names: dict[str, int] = {}
        self.options: dict[str, int] = {}
        self.flags: dict[str, str] = {}  # argparse dest -> its command-line flag
        rebound = set()  # a counter (`n = 0`, then `n += 1`) is not a constant
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value, target = _int(node.value), node.targets[0].id
                if target in self.names or value is None:
                    rebound.add(target)
                else:
                    self.names[target] = value
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)) and isinstance(node.target, ast.Name):
                rebound.add(node.target.id)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                kw = {k.arg: k.value for k in node.keywords}
                default = _int(kw["default"]) if "default" in kw else None
                dest = kw["dest"].value if isinstance(kw.get("dest"), ast.Constant) else next(
                    (f.lstrip("-").replace("-", "_") for f in flags if f.startswith("--")), None)
                if dest and default is not None:
                    self.options[dest] = default
                    self.flags[dest] = next((f for f in flags if f.startswith("--")), f"--{dest}")
        for name in rebound:
            self.names.pop(name, None)

    def value(self, node) -> int | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id, self.options.get(node.id))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return self.options.get(node.attr, self.names.get(node.attr))
        return _int(node)


def _split_point(test, counts: _Counts) -> tuple[int, bool, str | None] | None:
    """(count, first branch is the documents below the count, its command-line flag) for
    `n < C`-style tests, where exactly one side is a known count and the other a running value."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    op, left, right = test.ops[0], test.left, test.comparators[0]
    lcount, rcount = counts.value(left), counts.value(right)
    if (lcount is None) == (rcount is None) or isinstance(left if lcount is None else right, ast.Constant):
        return None
    side = right if rcount is not None else left
    flag = counts.flags.get(side.attr) if isinstance(side, ast.Attribute) else None
    if rcount is not None and rcount > 0 and isinstance(op, (ast.Lt, ast.GtE)):
        return rcount, isinstance(op, ast.Lt), flag
    if lcount is not None and lcount > 0 and isinstance(op, (ast.Gt, ast.LtE)):
        return lcount, isinstance(op, ast.Gt), flag  # C > n: n below C
    return None


def _branches(parent_body: list, index: int) -> tuple[list, list]:
    """The statements run when the if at `index` holds, and when it does not."""
    node = parent_body[index]
    if node.orelse:
        return node.body, node.orelse
    if node.body and isinstance(node.body[-1], (ast.Continue, ast.Return, ast.Break)):
        return node.body, parent_body[index + 1:]
    return node.body, []


def split_points(source: str) -> list[list]:
    """[line, count, below-count branch first, flag, splits named by the first branch, by
    the second] for each split point inside a loop (a document stream walked one at a time).
    Depends on the source only, so it is cached with the engine's per-file facts."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # reported by the engine as unparsable
    counts = _Counts(tree)
    out, seen = [], set()
    loops = [n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.AsyncFor, ast.While))]
    for loop in loops:
        for parent in ast.walk(loop):
            for field in ("body", "orelse", "finalbody"):
                body = getattr(parent, field, None)
                if not isinstance(body, list) or parent is loop and field == "orelse":
                    continue
                for i, st in enumerate(body):
                    if isinstance(st, ast.If) and id(st) not in seen and (point := _split_point(st.test, counts)):
                        seen.add(id(st))
                        yes, no = _branches(body, i)
                        out.append([st.lineno, *point, sorted(_split_words(yes)), sorted(_split_words(no))])
            if isinstance(parent, ast.IfExp) and id(parent) not in seen and (point := _split_point(parent.test, counts)):
                seen.add(id(parent))
                out.append([parent.lineno, *point, sorted(_split_words([parent.body])), sorted(_split_words([parent.orelse]))])
    return out


def _judge(point: list, name: str, invoked: dict[str, tuple[int, str]]) -> Finding | None:
    line, count, below_first, flag, yes, no = point
    below, above = (yes, no) if below_first else (no, yes)
    if not (below == ["val"] and above == ["train"]):
        return None
    run = invoked.get(flag) if flag else None
    if run is not None:
        count = run[0]  # the folder's own instructions run the script with this value
    if count >= CANONICAL_VAL_DOCS:
        return None
    leaked = CANONICAL_VAL_DOCS - count
    msg = (f"documents from {count:,} on go to the training shards, but the validation set is the first "
           f"{CANONICAL_VAL_DOCS:,} documents: {leaked:,} of them ({leaked / CANONICAL_VAL_DOCS:.0%}) are trained on "
           + (f"as {run[1]} runs it ({flag} {count})" if run else "when the shards are built with this split"))
    if run:
        return Finding(RULE.id, RULE.tag, "error", "high", "active", None, name, line, msg, RULE.reference, "")
    return Finding(RULE.id, RULE.tag, "error", "medium", "unknown",
                   "the training shards are built by this script with this count", name, line, msg,
                   RULE.reference, "")


def _invocations(root: Path, script: str) -> dict[str, tuple[int, str]]:
    """`--flag N` values on lines of the folder's shell scripts and READMEs that run `script`."""
    out: dict[str, tuple[int, str]] = {}
    if not root.is_dir():
        return out
    for doc in sorted(p for p in (*root.glob("*.sh"), *root.glob("*.md")) if p.is_file() and not p.is_symlink()):
        try:
            text = doc.read_text(errors="replace")
        except OSError:
            continue
        for line in text.replace("\\\n", " ").splitlines():
            if script in line:
                for flag, value in _FLAG_VALUE.findall(line):
                    out.setdefault(flag, (int(value.replace("_", "")), doc.name))
    return out


def check_val_split(root: Path, files: list[Path], use_cache: bool = True) -> list[Finding]:
    """Findings for the data-preparation code among `files` (paths under `root`)."""
    from auditors.engine import cached_by_content

    out = []
    for path in files:
        try:
            source = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        if not ("val" in source and "train" in source):
            continue
        points = cached_by_content("val-split", source, split_points, use_cache)
        name = path.name if root.is_file() else str(path.relative_to(root))
        lines = source.splitlines()
        for point in points:
            f = _judge(point, name, _invocations(root, path.name))
            if f is not None:
                f.source_line = lines[f.line - 1].strip() if 0 < f.line <= len(lines) else ""
                out.append(f)
    return out

