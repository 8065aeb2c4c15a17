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

from auditors import labels as lb
from auditors.model import Finding, RuleInfo

RULE = RuleInfo("short-val-split", "val_in_training",
                "data preparation puts validation documents into training shards",
                "RULES.md §9 (issue #2127; #2018, #2130), §1.3")
CANONICAL_VAL_DOCS = 50_000
CANONICAL_TRAIN_SHARDS = 80  # the challenge's download: a split of its own shows many more (issue #2127: 1,499)
_WORDS = re.compile(r"[a-z]+")
_VAL, _TRAIN = {"val", "valid", "validation"}, {"train", "training"}
_FLAG_VALUE = re.compile(r"(--[\w-]+)(?:=|\s+)(\d[\d_]*)\b")


def _split_words(nodes) -> set[str]:
    """'val' / 'train': the splits a branch names in its strings (shard names); identifiers
    only when it has no such string (a branch that just fills `val_buf`)."""
    strings, names = set(), set()
    for node in nodes:
        for n in lb.walk(node):
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
        self.defaults: dict[str, ast.expr] = {}  # argparse dest -> a default that is no literal
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
        elif dest and "default" in kw:  # (a name: resolved by whoever asks)
            self.defaults[dest] = kw["default"]
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
        return [[*p, _reaching(m, p[0])] for p in _cut_points(m)]
    skips = _skip_points(m, tests)
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
    return [[*p, _reaching(m, p[0])] for p in out + skips + _cut_points(m)]


def _reaching(m, line: int) -> list[str]:
    """The functions that hold the line or call one that does (directly or not): a file
    that calls any of them (`prep_data.ensure_train_shards(...)` in train_gpt.py) runs it."""
    around = [g for g in m.functions.values() if g.qualname != "<module>" and g.node.lineno <= line <= g.node.end_lineno]
    todo, seen = [max(around, key=lambda g: g.node.lineno)] if around else [], set()
    while todo and len(seen) < 32:
        g = todo.pop()
        if g.qualname not in seen:
            seen.add(g.qualname)
            todo += [h for h, _ in m.call_sites(g) if h.qualname != "<module>"]
    return sorted(seen)


def _skip_points(m, tests: list) -> list[list]:
    """`if i < skip: continue` in a generator over the document stream (`iter_docs(path,
    skip)`), whose callers pass the count (`iter_docs(path, skip=val_docs)`, with
    `val_docs=10_000` by default) and write what it yields to `*_train_*` shards: the
    documents before the count are passed over as the validation set, the rest trained on."""
    out = []
    for g in m.functions.values():
        if g.qualname == "<module>" or not any(m.under(g, m.nodes_of(kind)) for kind in (ast.Yield, ast.YieldFrom)):
            continue
        for node in m.under(g, tests):
            if type(node) is not ast.If or node.orelse or [type(st) for st in node.body] != [ast.Continue]:
                continue
            op, left, right = node.test.ops[0], node.test.left, node.test.comparators[0]
            count = right if type(op) is ast.Lt else left if type(op) is ast.Gt else None
            if type(count) is not ast.Name or count.id not in g.params:
                continue
            for caller, site in m.call_sites(g):
                value, flag = _passed(m, caller, site.node, g, count.id)
                consumers = [lp for lp in m.under(caller, m.nodes_of(ast.For))  # (`enumerate(iter_docs(...))` too)
                             if any(n is site.node for n in lb.walk(lp.iter))]
                if value is not None and consumers and _split_words(consumers[0].body) == {"train"}:
                    out.append([node.lineno, value, True, flag, ["val"], ["train"]])
    return out


def _passed(m, caller, call: ast.Call, g, param: str, depth: int = 0) -> tuple[int | None, str | None]:
    """(the count a call hands g's parameter, its command-line flag): a literal, a module
    constant, an argparse option's default, or the caller's own parameter, followed to what
    its callers pass (the smallest) or its default."""
    index = g.params.index(param) - (1 if g.is_method else 0)
    given = next((k.value for k in call.keywords if k.arg == param), None)
    if given is None and 0 <= index < len(call.args):
        given = call.args[index]
    given = given if given is not None else lb.param_defaults(g.node.args).get(param)
    return _count_value(m, caller, given, depth)


def _count_value(m, f, e, depth: int) -> tuple[int | None, str | None]:
    if e is None or depth > 3:
        return None, None
    if type(e) is ast.Name and e.id in f.params and f.qualname != "<module>":
        passed = [_passed(m, h, site.node, f, e.id, depth + 1) for h, site in m.call_sites(f)]
        passed = [p for p in passed if p[0] is not None] or [_count_value(m, f, lb.param_defaults(f.node.args).get(e.id), depth + 1)]
        return min(passed, key=lambda p: p[0] if p[0] is not None else 1 << 62)
    counts = _Counts(m, {e.id if type(e) is ast.Name else e.attr} if type(e) in (ast.Name, ast.Attribute) else set())
    for dest, default in counts.defaults.items():  # `add_argument("--val-docs", default=DEFAULT_VAL_DOCS)`
        counts.options.setdefault(dest, _count_value(m, f, default, depth + 1)[0])
    return counts.value(e), counts.flags.get(e.attr) if type(e) is ast.Attribute else None


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


def _judge(point: list, name: str, invoked: dict[str, tuple[int, str]], run_by: str | None = None,
           logged: list[int] = ()) -> Finding | None:
    line, count, below_first, flag, yes, no = point[:6]
    below, above = (yes, no) if below_first else (no, yes)
    if not (below == ["val"] and above == ["train"]):
        return None
    if logged and max(logged) <= CANONICAL_TRAIN_SHARDS and (invoked.get(flag) or invoked.get("") or run_by):
        # the folder says to build the shards, but its runs trained on the canonical download's shards
        invoked, run_by = {}, None
        canonical = f"the logs show {max(logged)} training shards, the canonical download's count"
    else:
        canonical = None
    run = invoked.get(flag) if flag else None
    if run is not None:
        count = run[0]  # the folder's own instructions run the script with this value
    elif "" in invoked:
        run = invoked[""]  # they run it without the flag: with its default
    if count >= CANONICAL_VAL_DOCS:
        return None
    leaked = CANONICAL_VAL_DOCS - count
    msg = (f"documents from {count:,} on go to the training shards, but the validation set is the first "
           f"{CANONICAL_VAL_DOCS:,} documents: {leaked:,} of them ({leaked / CANONICAL_VAL_DOCS:.0%}) are trained on "
           + (f"as {run[1]} runs it ({flag} {count})" if run and run[0] is not None else f"as {run[1]} runs it "
              "(with the default)" if run else f"as {run_by} builds the shards it trains on "
              "with this split" if run_by else "when the shards are built with this split"))
    if run or run_by:
        return Finding(RULE.id, RULE.tag, "error", "high", "active", None, name, line, msg, RULE.reference, "")
    return Finding(RULE.id, RULE.tag, "error", "medium", "unknown",
                   f"the training shards are built by this script with this count (not so in this record's runs: "
                   f"{canonical})" if canonical else "the training shards are built by this script with this count",
                   name, line, msg, RULE.reference, "")


def _invocations(root: Path, script: str) -> dict[str, tuple[int, str]]:
    """`--flag N` values on lines of the folder's shell scripts and READMEs that run `script`;
    under "" the first document with a command that runs it at all."""
    from auditors.engine import invocation_lines

    out: dict[str, tuple[int | None, str]] = {}
    for doc, line in invocation_lines(root, script):
        for flag, value in _FLAG_VALUE.findall(line):
            out.setdefault(flag, (int(value.replace("_", "")), doc))
        if re.search(rf"\b(python3?|torchrun|uv run|bash|sh)\b.*{re.escape(script)}", line):
            out.setdefault("", (None, doc))  # (a command that runs it, not a sentence naming it)
    return out


def check_val_split(root: Path, items: list[tuple[str, str]], all_facts: list[dict],
                    entries: list[str] | None = None) -> list[Finding]:
    """Findings for the split points the engine found in the audited units (`audit_path`'s
    items and their facts), judged with the folder's own invocations, and as run by the
    entry script when it calls a function that reaches the split."""
    out, logged = [], None
    for index, ((name, source), facts) in enumerate(zip(items, all_facts)):
        points = facts.get("val_splits", ())
        if not points:
            continue
        lines = source.splitlines()
        invoked = _invocations(root, Path(name.split("[unpacked")[0]).name)
        logged = _logged_train_shards(root) if logged is None else logged
        for point in points:
            run_by = _run_by(point[6] if len(point) > 6 else [], index, items, all_facts, entries)
            f = _judge(point, name, invoked, run_by, logged)
            if f is not None:
                f.source_line = lines[f.line - 1].strip() if 0 < f.line <= len(lines) else ""
                out.append(f)
    return out


def _run_by(reaching: list[str], index: int, items, all_facts, entries) -> str | None:
    """The entry script (another file) that calls a function reaching the split, or None."""
    for j, ((name, _), facts) in enumerate(zip(items, all_facts)):
        if j != index and entries and name in entries and any(
                q in facts.get("called", ()) and q not in facts.get("functions", {}) for q in reaching):
            return name
    return None


_TRAIN_SHARDS = re.compile(r"train_shards:\s*(\d+)")


def _logged_train_shards(root: Path) -> list[int]:
    """The training-shard counts the folder's train logs report (`train_shards: 80`)."""
    from auditors.records import train_logs

    out = []
    for log in train_logs(root) if root.is_dir() else ():
        try:
            out += [int(n) for n in _TRAIN_SHARDS.findall(log.read_text(errors="replace")[:200_000])]
        except OSError:
            continue
    return out
