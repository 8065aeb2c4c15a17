"""Throughput of the static audit over a folder of Python files: cold and warm cache.

    python benchmarks/audit_corpus.py DIR [--limit-mb N]

The corpus of the issue (the Python files of all pull requests of openai/parameter-golf,
one copy per content) is built by `benchmarks/pr_corpus.py MIRROR DIR`.
Cold: a fresh cache folder, every file analysed (two worker processes). Warm: the
same files again, facts read from the cache. Prints MB/s; timings depend on the load
of the machine, so compare ratios on one machine rather than absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cpu() -> float:
    """CPU seconds used by this process and its finished children (the worker pool)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--limit-mb", type=float, default=None, help="stop adding files past this many MB")
    args = ap.parse_args()
    if not args.folder.is_dir():
        print(f"skipped: {args.folder} is not a folder")
        return 0
    from auditors.engine import analyze_units, collect_code, units

    files, total = [], 0
    for p in collect_code(args.folder):
        size = p.stat().st_size
        if args.limit_mb and total + size > args.limit_mb * 1e6:
            break
        files.append(p)
        total += size
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PGOLF_AUDIT_CACHE"] = cache
        t0, c0 = time.perf_counter(), _cpu()
        analyze_units(units(files, args.folder), progress=sys.stderr.isatty())
        cold, cold_cpu = time.perf_counter() - t0, _cpu() - c0
        t0 = time.perf_counter()
        items, _ = analyze_units(units(files, args.folder))
        warm = time.perf_counter() - t0
    unpacked = sum(len(s) for _, s in items)
    distinct = len({s for _, s in items})
    mb = total / 1e6
    print(f"files: {len(files)} ({mb:.1f} MB on disk, {unpacked / 1e6:.1f} MB after unpacking, {distinct} distinct units)")
    print(f"cold: {cold:.1f} s = {mb / cold:.2f} MB/s   warm: {warm:.1f} s = {mb / warm:.2f} MB/s   warm/cold = {warm / cold:.3f}")
    print(f"cold CPU time (all processes): {cold_cpu:.1f} s = {mb / cold_cpu:.2f} MB per CPU-second "
          f"(on an idle 2-core machine, about {2 * mb / cold_cpu:.2f} MB/s)")
    print(f"cpu count visible: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f} (other users share this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
