"""Build the benchmark corpus: the Python files that the pull requests of a repository add
or change, one copy of each distinct content.

    python benchmarks/pr_corpus.py MIRROR OUT

MIRROR is a git directory holding the pull-request heads as `refs/pull/N/head` (a mirror
of openai/parameter-golf, as the `fetch` tool makes). For each head, the `.py` files it
adds or modifies against its merge base with `main` are written to OUT/NNNNN/<path>,
skipping contents already written for an earlier head. `benchmarks/audit_corpus.py OUT`
then measures the audit over them. Reads git objects only; nothing is executed.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path


def git(mirror: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(mirror), *args], capture_output=True, text=True, check=True).stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mirror", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--base", default="refs/heads/main", help="branch the heads are compared with")
    args = ap.parse_args()
    try:
        heads = git(args.mirror, "for-each-ref", "--format=%(refname)", "refs/pull/*/head").split()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"pr_corpus: error: cannot read {args.mirror}: {e}", file=sys.stderr)
        return 2
    seen: set[str] = set()
    files = size = 0
    for ref in sorted(heads, key=lambda r: int(r.split("/")[2])):
        number = int(ref.split("/")[2])
        try:
            base = git(args.mirror, "merge-base", args.base, ref).strip()
            changed = git(args.mirror, "diff", "--name-only", "--diff-filter=AM", base, ref, "--", "*.py").splitlines()
        except subprocess.CalledProcessError:
            continue  # a head with no common history
        for name in changed:
            blob = subprocess.run(["git", "-C", str(args.mirror), "show", f"{ref}:{name}"], capture_output=True).stdout
            digest = hashlib.sha256(blob).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            dest = args.out / f"{number:05d}" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob)
            files, size = files + 1, size + len(blob)
    print(f"{files} distinct files, {size / 1e6:.1f} MB, from {len(heads)} heads into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
