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
branch first), with or without `else` (a `continue` ends the first branch),
`a if n < COUNT else b`, and cuts of the stream at the count (`islice(docs, COUNT)` or
`docs[:COUNT]` written to val shards, `islice(docs, COUNT, None)` or `docs[COUNT:]` to
train); COUNT is a literal, a module constant, an argparse default (`args.val_docs`)
or an environment default (`int(os.environ.get(K, "10000"))`).
The branches are told apart by the shard names and split words they use.
"""

from __future__ import annotations

import ast
import copy
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

    def __init__(self, m, wanted: set[str]):
        """Only the names in `wanted` (the ones the module's comparisons use) are resolved."""
        self.names: dict[str, int] = {}
        self.options: dict[str, int] = {}
        self.flags: dict[str, str] = {}  # argparse dest -> its command-line flag
        rebound = set()  # a counter (`n = 0`, then `n += 1`) is not a constant
        for node in m.nodes_of(ast.Assign):
            if len(node.targets) == 1 and type(node.targets[0]) is ast.Name and node.targets[0].id in wanted:
                value, target = _int(node.value), node.targets[0].id
                if target in self.names or value is None:
                    rebound.add(target)
                else:
                    self.names[target] = value
        for kind in (ast.AugAssign, ast.AnnAssign, ast.For):
            rebound.update(n.target.id for n in m.nodes_of(kind) if type(n.target) is ast.Name)
        for node in m.nodes_of(ast.Call):
            if type(node.func) is ast.Attribute and node.func.attr == "add_argument":
                self._option(node)
        for name in rebound:
            self.names.pop(name, None)

    def _option(self, call: ast.Call) -> None:
        """`parser.add_argument("--val-docs", default=10_000)`: the default and the flag."""
        flags = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        kw = {k.arg: k.value for k in call.keywords}
        default = _int(kw["default"]) if "default" in kw else None
        dest = kw["dest"].value if isinstance(kw.get("dest"), ast.Constant) else next(
            (f.lstrip("-").replace("-", "_") for f in flags if f.startswith("--")), None)
        if dest and default is not None:
            self.options[dest] = default
            self.flags[dest] = next((f for f in flags if f.startswith("--")), f"--{dest}")

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


_EXITS = (ast.Continue, ast.Return, ast.Break)


def _branches(parent_body: list, index: int) -> tuple[list, list]:
    """An if without else whose body exits: its body, and what runs when it does not hold."""
    return parent_body[index].body, parent_body[index + 1:]


_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def split_points(m) -> list[list]:
    """[line, count, below-count branch first, flag, splits named by the first branch, by
    the second] for each split point inside a loop body (a document stream walked one at a
    time), from the module's node index (`auditors.analysis.ModuleFlow`): the engine keeps
    them among the per-file facts. Counts are resolved only when a comparison asks."""
    tests = [n for kind in (ast.If, ast.IfExp) for n in m.nodes_of(kind)
             if isinstance(n.test, ast.Compare) and len(n.test.ops) == 1]
    tests = [n for n in tests if _may_split(n.test)]
    if not tests:
        return _cut_points(m)
    in_loop = _loop_lines(m)
    tests = [n for n in tests if n.lineno in in_loop]
    wanted = {x.id if isinstance(x, ast.Name) else x.attr for n in tests
              for x in (n.test.left, n.test.comparators[0]) if isinstance(x, (ast.Name, ast.Attribute))}
    counts = _Counts(m, wanted) if tests else None
    out = []
    for node in sorted(tests, key=lambda n: (n.lineno, n.col_offset)):
        point = _split_point(node.test, counts)
        if not point:
            continue
        if isinstance(node, ast.IfExp):
            yes, no = [node.body], [node.orelse]
        elif node.orelse or not (node.body and isinstance(node.body[-1], _EXITS)):
            yes, no = node.body, node.orelse
        else:
            yes, no = _branches(*_enclosing_body(m, node))
        out.append([node.lineno, *point, sorted(_split_words(yes)), sorted(_split_words(no))])
    return out + _cut_points(m)


def _cut(node) -> tuple[str, ast.expr] | None:
    """("head", C) for `islice(docs, C)` / `docs[:C]`, ("rest", C) for `islice(docs, C, None)` /
    `docs[C:]`: the stream cut at a count."""
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)) and not node.keywords \
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) == "islice":
        if len(node.args) == 2:
            return "head", node.args[1]
        if len(node.args) == 3 and isinstance(node.args[2], ast.Constant) and node.args[2].value is None:
            return "rest", node.args[1]
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice) and node.slice.step is None:
        lo, hi = node.slice.lower, node.slice.upper
        if lo is None and hi is not None:
            return "head", hi
        if hi is None and lo is not None:
            return "rest", lo
    return None


def _cut_points(m) -> list[list]:
    """Split points written as cuts of the document stream at one count: the head
    (`islice(docs, args.num_val_docs)`) in a statement that names the val split, the rest
    (`islice(docs, args.num_val_docs, None)`) in one that names train."""
    groups: dict[str, list] = {}  # count expression -> its cuts (kind, node)
    for kind in (ast.Call, ast.Subscript):
        for n in m.nodes_of(kind):
            c = _cut(n)
            if c is not None and (type(c[1]) in (ast.Name, ast.Attribute) or (
                    type(c[1]) is ast.Constant and type(c[1].value) is int and c[1].value >= 1000)):
                groups.setdefault(ast.dump(c[1]), []).append((c[0], c[1], n))  # (`batch[:8]`: no document count)
    groups = {k: g for k, g in groups.items() if {"head", "rest"} <= {kind for kind, _, _ in g}}
    if not groups:
        return []
    statements = [st for st in m.all_nodes if isinstance(st, ast.stmt) and not hasattr(st, "body")]
    counts = _Counts(m, {c.id if isinstance(c, ast.Name) else c.attr for g in groups.values() for _, c, _ in g
                         if isinstance(c, (ast.Name, ast.Attribute))})
    out = []
    for cuts in groups.values():
        count = cuts[0][1]
        value = counts.value(count)
        if value is None or value < 1000:
            continue
        words = {"head": set(), "rest": set()}
        for kind, _, n in cuts:
            st = _statement(statements, n)
            if st is not None:
                words[kind] |= _split_words([_without(st, count)])
        flag = counts.flags.get(count.attr) if isinstance(count, ast.Attribute) else None
        if words["head"] == {"val"} and words["rest"] == {"train"}:
            line = min(n.lineno for kind, _, n in cuts if kind == "head")
            out.append([line, value, True, flag, ["val"], ["train"]])
    return out


def _statement(statements: list, node) -> ast.stmt | None:
    """The simple statement that holds the node."""
    return next((st for st in statements if st.lineno <= node.lineno and node.end_lineno <= st.end_lineno), None)


def _without(st: ast.stmt, count: ast.expr) -> ast.stmt:
    """The statement with every copy of the count expression blanked (`num_val_docs` names
    no split of its own)."""
    return _Blank(ast.dump(count)).visit(copy.deepcopy(st))


class _Blank(ast.NodeTransformer):
    def __init__(self, dump: str):
        self.dump = dump

    def visit(self, node):
        return ast.Constant(0) if isinstance(node, ast.expr) and ast.dump(node) == self.dump else self.generic_visit(node)


def _may_split(test: ast.Compare) -> bool:
    """An ordered comparison of a running value with something that may name a count
    (cheap: decides whether the module's counts need resolving at all)."""
    if not isinstance(test.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
        return False
    sides = (test.left, test.comparators[0])
    return any(isinstance(x, (ast.Name, ast.Attribute)) for x in sides) and not all(
        isinstance(x, ast.Constant) for x in sides)


def _loop_lines(m) -> set[int]:
    """Line numbers inside some loop's body."""
    lines: set[int] = set()
    for kind in _LOOPS:
        for loop in m.nodes_of(kind):
            lines.update(range(loop.body[0].lineno, loop.body[-1].end_lineno + 1))
    return lines


def _enclosing_body(m, st: ast.stmt) -> tuple[list, int]:
    """The statement list holding `st`, and its index there (asked only for split points)."""
    for node in m.all_nodes:
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                for i, child in enumerate(body):
                    if child is st:
                        return body, i
    return [st], 0


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
    from auditors.engine import invocation_lines

    out: dict[str, tuple[int, str]] = {}
    for doc, line in invocation_lines(root, script):
        for flag, value in _FLAG_VALUE.findall(line):
            out.setdefault(flag, (int(value.replace("_", "")), doc))
    return out


def check_val_split(root: Path, items: list[tuple[str, str]], all_facts: list[dict]) -> list[Finding]:
    """Findings for the split points the engine found in the audited units (`audit_path`'s
    items and their facts), judged with the folder's own invocations."""
    out = []
    for (name, source), facts in zip(items, all_facts):
        points = facts.get("val_splits", ())
        if not points:
            continue
        lines = source.splitlines()
        invoked = _invocations(root, Path(name.split("[unpacked")[0]).name)
        for point in points:
            f = _judge(point, name, invoked)
            if f is not None:
                f.source_line = lines[f.line - 1].strip() if 0 < f.line <= len(lines) else ""
                out.append(f)
    return out
