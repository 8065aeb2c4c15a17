"""Checks on a records-style folder (RULES.md §1: README rules 1, 6, 8).

- format: README.md, submission.json, a train log and train_gpt.py are present;
- `oversize_artifact`: any total size reported in submission.json or the logs is above
  16,000,000 bytes (decimal; 16 MiB is *not* the cap, #861, #1835);
- `oversize_artifact` also when the model bytes submission.json declares plus the bytes of
  all the code the run ships (train_gpt.py and the folder's modules it imports, also
  through them: a helper package) are above the cap, though the declared total leaves
  that code out;
- the claimed val_bpb appears among the logged scores or is the mean of the logs' final
  scores; else a warning, which says so when the claim is better than every log's final
  score and their mean (merged records such as #86 ship one log of a three-seed claim,
  so this stays for the reviewer to weigh);
- significance: with `baseline_bpb`, the per-seed final losses must beat it by
  0.005 nats with a one-sided t-test at p < 0.01 (`harness.stats.improvement_test`).
Logs and JSON are read as data; nothing in the folder is executed.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from auditors.model import Finding, RuleInfo

CAP_BYTES = 16_000_000
FORMAT = RuleInfo("record-format", "other", "records folder is missing a required file", "RULES.md §1.8 (README format; #1143)")
SIZE = RuleInfo("record-oversize", "oversize_artifact", "artifact above 16,000,000 bytes", "RULES.md §1.1 (#861, #1698, #1835)")
CLAIM = RuleInfo("record-claim", "other", "claimed val_bpb not found in the logs", "RULES.md §1.6")
SIGNIF = RuleInfo("record-significance", "other", "improvement not significant", "RULES.md §1.6 (0.005 nats, p < 0.01)")
VAL_AS_TRAIN = RuleInfo("record-val-as-train", "val_in_training", "a validation shard placed where training reads",
                        "RULES.md §1.3 (#44: val shard symlinked as a train shard)")
RECORD_RULES = (FORMAT, SIZE, CLAIM, SIGNIF, VAL_AS_TRAIN)
# shell commands that place a file at a new name: ln [-s] / cp / mv SRC DST
_PLACE = re.compile(r"^\s*(?:sudo\s+)?(ln|cp|mv)\s+(?:-\w+\s+)*(\S+)\s+(\S+)\s*$")

_SIZE_LINE = re.compile(r"total[^\n:]*?:\s*([0-9][0-9,_]*)\s*bytes", re.I)
_SCORE = re.compile(r"val_loss[:=\s]+([0-9.]+)\s+val_bpb[:=\s]+([0-9.]+)")


def _finding(rule: RuleInfo, severity: str, path: str, line: int, msg: str) -> Finding:
    return Finding(rule.id, rule.tag, severity, "high", "active", None, path, line, msg, rule.reference, "")


def _json_sizes(obj):
    """(dotted key, value) of the sizes submission.json reports for the whole artifact."""
    for key, value in _flat_numbers(obj):
        low = key.lower()
        if ("byte" in low or "size" in low) and any(w in low for w in ("total", "compressed", "artifact", "submission")):
            yield key, value


def _flat_numbers(obj, prefix=""):
    """(dotted key, value) of every number in a JSON object."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flat_numbers(v, f"{prefix}{k}.")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix[:-1], obj


def _readable(p: Path, root: Path) -> bool:
    """A regular file inside the folder (never a pipe, never a symlink leaving it)."""
    try:
        return p.is_file() and p.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def train_logs(root: Path) -> list[Path]:
    """The folder's train logs: `*.log`, and `*.txt` files with "log" in the name."""
    return sorted(p for p in root.glob("*.log") if _readable(p, root)) + sorted(
        p for p in root.glob("*.txt") if "log" in p.name and _readable(p, root))


def check_records(root: Path, baseline_bpb: float | None = None) -> list[Finding]:
    sub = root / "submission.json"
    logs = train_logs(root)
    if not _readable(sub, root) and not _readable(root / "README.md", root) and not logs:
        return []  # not a records folder (one holding only its train logs is, incomplete)
    out = []
    missing = [n for n in ("README.md", "submission.json", "train_gpt.py") if not _readable(root / n, root)]
    if not logs:
        missing.append("a train log (*.log)")
    if missing:
        out.append(_finding(FORMAT, "warning", str(root.name), 1, "missing " + ", ".join(missing)))
    meta = {}
    if _readable(sub, root):
        try:
            meta = json.loads(sub.read_text(errors="replace"))
        except json.JSONDecodeError as e:
            out.append(_finding(FORMAT, "warning", "submission.json", e.lineno, f"submission.json is not valid JSON: {e.msg}"))
        text = sub.read_text(errors="replace").splitlines()
        for key, value in _json_sizes(meta):
            if value > CAP_BYTES:
                line = next((i + 1 for i, t in enumerate(text) if f'"{key.rsplit(".", 1)[-1]}"' in t), 1)
                out.append(_finding(SIZE, "error", "submission.json", line,
                                    f"{key} = {int(value):,} bytes is above the 16,000,000-byte cap (decimal; {value / 2**20:.2f} MiB)"))
    out.extend(_uncounted_code(root, meta))
    finals = []
    for log in logs:
        last, size = None, None
        for i, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            m = _SIZE_LINE.search(line)
            if m:
                size = (i, int(m.group(1).replace(",", "").replace("_", "")))  # the last total is the shipped artifact
            s = _SCORE.search(line)
            if s:
                last = (float(s.group(1)), float(s.group(2)))
        if size and size[1] > CAP_BYTES:
            out.append(_finding(SIZE, "error", log.name, size[0], f"logged total {size[1]:,} bytes is above the 16,000,000-byte cap"))
        if last:
            finals.append(last)
    out.extend(_val_placed_as_train(root))
    claimed = meta.get("val_bpb") if isinstance(meta, dict) else None
    if isinstance(claimed, (int, float)) and finals and logs:
        logged = [b for log in logs for b in (float(m.group(2)) for m in _SCORE.finditer(log.read_text(errors="replace")))]
        mean = sum(b for _, b in finals) / len(finals)  # (a record claims the mean of its seeds)
        if claimed < min(b for _, b in finals) - 5e-4 and claimed < mean - 5e-4 and not any(abs(b - claimed) < 5e-4 for b in logged):
            out.append(_finding(CLAIM, "warning", "submission.json", 1,
                                f"claimed val_bpb {claimed} is better than every log's final val_bpb "
                                f"(best {min(b for _, b in finals):.5f}, mean {mean:.5f}): the logs do not support it"))
        elif abs(mean - claimed) >= 5e-4 and not any(abs(b - claimed) < 5e-4 for b in logged):
            out.append(_finding(CLAIM, "warning", "submission.json", 1, f"claimed val_bpb {claimed} matches no logged val_bpb"))
    if baseline_bpb is not None and finals:
        from harness.stats import improvement_test

        nats_per_bpb = sum(loss / bpb for loss, bpb in finals) / len(finals)
        test = improvement_test([loss for loss, _ in finals], baseline_bpb * nats_per_bpb)
        if not test.significant:
            out.append(_finding(SIGNIF, "warning", logs[0].name, 1,
                                f"{test.n} seed log(s), mean {test.mean:.5f} nats vs baseline {baseline_bpb * nats_per_bpb:.5f}: "
                                f"delta {test.delta:.5f}, p = {test.p} (needs >= 0.005 nats at p < 0.01)"))
    return out


def _val_placed_as_train(root: Path) -> list[Finding]:
    """Shell lines (README code blocks, *.sh) that link or copy a val shard to a train-shard name."""
    from auditors.labels import split_labels

    out = []
    for doc in sorted(p for p in list(root.glob("*.md")) + list(root.glob("*.sh")) if _readable(p, root)):
        for i, line in enumerate(doc.read_text(errors="replace").splitlines(), 1):
            m = _PLACE.match(line)
            if not m:
                continue
            src, dst = Path(m.group(2)).name, Path(m.group(3)).name
            if "VAL" in split_labels(src) and "TRAIN" in split_labels(dst) and "VAL" not in split_labels(dst):
                out.append(_finding(VAL_AS_TRAIN, "error", doc.name, i,
                                    f"`{m.group(1)}` puts validation shard {src} where training reads {dst}"))
    return out


def _uncounted_code(root: Path, meta) -> list[Finding]:
    """An error when submission.json's model bytes plus every shipped code file the entry
    imports exceed the cap while the declared total does not (the code outside
    train_gpt.py left out of the count)."""
    if not isinstance(meta, dict) or not _readable(root / "train_gpt.py", root):
        return []
    numbers = [(k.lower(), v) for k, v in _flat_numbers(meta)]
    model = next((v for k, v in numbers if "model" in k and "byte" in k), None)
    total = next((v for k, v in numbers if "total" in k and "byte" in k), None)
    if model is None:
        return []
    code = shipped_code(root)
    actual = model + sum(size for _, size in code)
    if actual <= CAP_BYTES or (total is not None and total > CAP_BYTES):
        return []  # (a declared total above the cap is reported as such)
    listed = ", ".join(f"{name} {size:,}" for name, size in code)
    return [_finding(SIZE, "error", "submission.json", 1,
                     f"model {int(model):,} bytes + the code the run ships ({listed}) = {int(actual):,} bytes, "
                     f"above the 16,000,000-byte cap; the declared total leaves code out")]


def shipped_code(root: Path) -> list[tuple[str, int]]:
    """(path, bytes) of train_gpt.py and of the folder's Python files it imports, also
    through the ones it imports (a package counts with its __init__.py). Parsed, never run;
    a file that does not parse brings no further imports."""
    todo, seen, out = [root / "train_gpt.py"], set(), []
    while todo:
        p = todo.pop()
        if p in seen or not _readable(p, root):
            continue
        seen.add(p)
        data = p.read_bytes()
        out.append((p.relative_to(root).as_posix(), len(data)))
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if type(node) is ast.Import else \
                [node.module or ""] + [f"{node.module}.{a.name}" if node.module else a.name for a in node.names] \
                if type(node) is ast.ImportFrom else []
            level = node.level if type(node) is ast.ImportFrom else 0
            base = p.parents[level - 1] if 0 < level <= len(p.parents) else root
            for name in names:
                parts = [x for x in name.split(".") if x]
                for i in range(1, len(parts) + 1):
                    stem = base.joinpath(*parts[:i])
                    todo += [stem.with_suffix(".py"), stem / "__init__.py"]
    return sorted(out)

