"""Recall / false-positive table of the static audit on the real PR cases.

    python benchmarks/audit_dev_cases.py /work/.mirror/openai+parameter-golf/repo [--cases TSV]

For each case the record folder holding the evidence file is materialized from the
PR head, or from the commit the case note pins the evidence to (read-only, into a
temporary folder: nothing is kept) and audited under the
official profile. An illegal case counts as caught when a finding with the case's
tag exists (any reachability: dormant constructs are still found); a legal case is a
false positive when any *active error* is reported. "unclear" cases are listed apart.
Skips cleanly when the mirror is absent.

`--cases benchmarks/heldout_cases.tsv` runs the held-out set: the pull requests that
RULES.md names and the dev cases do not, labelled from the rulings and the PR heads by a
reviewer who had not seen the auditor (unclear where no ruling settles them).
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def materialize(mirror: Path, pr: str, evidence: str, dest: Path, ref: str | None = None) -> Path:
    ref = ref or f"refs/pull/{pr}/head"
    folder = str(Path(evidence).parent)
    spec = [folder] if folder != "." else [evidence]
    listing = subprocess.run(["git", "-C", str(mirror), "ls-tree", "-r", "--name-only", ref, "--", *spec],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    if evidence not in listing:
        raise FileNotFoundError(evidence)
    for name in listing:
        shown = subprocess.run(["git", "-C", str(mirror), "show", f"{ref}:{name}"], capture_output=True)
        if shown.returncode != 0:
            continue  # a submodule or an unreadable entry: not part of the audit
        data = shown.stdout
        out = dest / (Path(name).relative_to(folder) if folder != "." else Path(name).name)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mirror", type=Path)
    ap.add_argument("--cases", type=Path, default=Path("/work/shared/cases/dev_cases.tsv"))
    ap.add_argument("--only", nargs="*", default=None, help="PR numbers to run")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not (args.mirror / "HEAD").exists() or not args.cases.exists():
        print(f"skipped: mirror {args.mirror} or cases {args.cases} not found")
        return 0
    from auditors import audit_path

    rows = list(csv.DictReader(args.cases.open(), delimiter="\t"))
    table = defaultdict(lambda: {"caught": 0, "missed": 0, "legal_ok": 0, "legal_fp": 0})
    unclear, misses, fps = [], [], []
    for row in rows:
        pr, verdict, tag = row["pr_number"], row["verdict"], row["rule_violated"]
        if args.only and pr not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            # a case whose evidence is pinned to an earlier commit ("at commit 713bb3fcd") is read there
            pinned = re.search(r"\bcommit ([0-9a-f]{7,40})\b", row.get("note") or "")
            try:
                folder = materialize(args.mirror, pr, row["evidence_path"], Path(tmp), pinned.group(1) if pinned else None)
            except (subprocess.CalledProcessError, FileNotFoundError):
                print(f"#{pr}: evidence not in mirror, skipped")
                continue
            report = audit_path(folder, profile="official")
        tagged = [f for f in report.findings if f.tag == tag and f.severity == "error"]
        active = report.errors
        desc = "; ".join(f"{f.tag}@{f.path}:{f.line}({f.reach})" for f in report.findings if f.severity == "error")[:300]
        if verdict == "illegal":
            key = "caught" if tagged else "missed"
            table[tag][key] += 1
            if not tagged:
                misses.append(f"#{pr} {tag}: {desc or 'no error findings'}")
        elif verdict == "legal":
            key = "legal_fp" if active else "legal_ok"
            table["none (legal)"][key] += 1
            if active:
                fps.append(f"#{pr}: " + "; ".join(f"{f.tag}@{f.path}:{f.line}" for f in active)[:300])
        else:
            unclear.append(f"#{pr} unclear/{tag}: {desc or 'no error findings'}")
        if args.verbose:
            print(f"#{pr} {verdict} {tag}: {desc}", flush=True)
    print(f"\n{'tag':26s} {'caught':>7s} {'missed':>7s} {'recall':>7s} {'legal ok':>9s} {'legal FP':>9s}")
    tot_c = tot_m = 0
    for tag, t in sorted(table.items()):
        n = t["caught"] + t["missed"]
        rec = f"{t['caught'] / n:.2f}" if n else "-"
        tot_c, tot_m = tot_c + t["caught"], tot_m + t["missed"]
        print(f"{tag:26s} {t['caught']:7d} {t['missed']:7d} {rec:>7s} {t['legal_ok']:9d} {t['legal_fp']:9d}")
    if tot_c + tot_m:
        print(f"{'ALL illegal':26s} {tot_c:7d} {tot_m:7d} {tot_c / (tot_c + tot_m):7.2f}")
    for title, items in (("missed", misses), ("false positives on legal", fps), ("unclear (reported apart)", unclear)):
        print(f"\n{title}:")
        for s in items:
            print("  " + s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
