"""`harness audit PATH`: static audit of a file, folder or records-style submission.

Exit codes: 0 clean (no active error finding), 1 active error findings, 2 bad input.
"""

from __future__ import annotations

import sys

from harness.errors import EXIT_OK, EXIT_REJECTED, BadInput


def configure(parser) -> None:
    parser.add_argument("path", help="file, folder or submission to audit")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument("--profile", choices=("official", "single-gpu"), default="official",
                        help="launch profile: official = 8 processes (WORLD_SIZE=8), single-gpu = 1")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="environment override (repeatable)")
    parser.add_argument("--baseline-bpb", type=float, default=None, help="SOTA val_bpb for the significance check")
    parser.add_argument("--no-cache", action="store_true", help="ignore and do not write the per-file cache")
    parser.add_argument("--output", "-o", default=None, help="write the report here (atomically) instead of stdout")


def _env(pairs: list[str]) -> dict:
    env = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise BadInput(f"--env expects K=V, got {p!r}")
        env[key] = value
    return env


def run(args) -> int:
    from auditors import audit_path
    from auditors.output import to_json, to_sarif, to_text

    report = audit_path(args.path, profile=args.profile, env=_env(args.env), use_cache=not args.no_cache,
                        baseline_bpb=args.baseline_bpb, progress=sys.stderr.isatty())
    text = {"text": to_text, "json": to_json, "sarif": to_sarif}[args.format](report)
    if args.output:
        from harness.atomic import atomic_write_text
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_REJECTED if report.errors else EXIT_OK
