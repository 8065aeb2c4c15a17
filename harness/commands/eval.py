"""`harness eval SUBMISSION --data DIR --tokenizer MODEL`: strict sandboxed evaluation.

Exit codes: 0 accepted, 1 rejected, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.errors import EXIT_OK, EXIT_REJECTED


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _ttt_chunk(text: str) -> int:
    """0 (also "none", "off") disables test-time training."""
    return 0 if text.lower() in ("0", "none", "off") else _positive_int(text)


def configure(parser) -> None:
    parser.add_argument("submission", type=Path, help="submission folder (with submission.toml)")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder with *_val_*.bin shards")
    parser.add_argument("--tokenizer", type=Path, required=True, help="SentencePiece .model of the dataset")
    parser.add_argument("--json", type=Path, help="write the result JSON here (atomically)")
    parser.add_argument("--probe-rate", type=float, default=0.05,
                        help="share of requests replayed by a probe (default 0.05; 1.0 = every request, both probes)")
    parser.add_argument("--seq-len", type=_positive_int, default=None)
    parser.add_argument("--stride", type=_positive_int, default=None)
    parser.add_argument("--ttt-chunk", type=_ttt_chunk, default=None,
                        help="tokens per test-time-training chunk; 0 or none disables observe()")
    parser.add_argument("--batch-seqs", type=_positive_int, default=None)
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="seconds for load() + score() + observe() (default 600)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--max-val-tokens", type=_positive_int, help="evaluate only the first N validation tokens")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the probe sample (default: fresh and random each run, recorded in the "
                             "result; fix it only to reproduce a run, since a known seed reveals the schedule)")
    parser.add_argument("--no-sandbox", action="store_true", help="run the worker without bubblewrap (marked in the report)")
    parser.add_argument("--same-worker-probes", action="store_true",
                        help="answer causality replays from the scoring worker itself instead of a second, "
                             "separately loaded one: halves model memory and observe() cost, but a predictor "
                             "that memoizes its outputs then passes every replay (weaker; marked in the result)")
    parser.add_argument("--no-audit", action="store_true", help="skip the static audit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from harness.atomic import atomic_write_json
    from harness.evaluator import FROM_SUBMISSION, EvalOptions, evaluate_submission
    from harness.result import summary

    def given(value):  # flags left out keep the submission's [eval] setting
        return FROM_SUBMISSION if value is None else value

    options = EvalOptions(
        seq_len=given(args.seq_len), stride=given(args.stride), batch_seqs=given(args.batch_seqs),
        ttt_chunk=FROM_SUBMISSION if args.ttt_chunk is None else (args.ttt_chunk or None),
        probe_rate=args.probe_rate, seed=args.seed, time_limit=args.time_limit, device=args.device,
        max_val_tokens=args.max_val_tokens, sandbox=not args.no_sandbox, progress=not args.quiet,
        audit=not args.no_audit, independent_probes=not args.same_worker_probes,
    )
    result = evaluate_submission(args.submission, args.data, args.tokenizer, options=options)
    if args.json:
        atomic_write_json(args.json, result)
    print(summary(result))
    if result["sandbox"] == "none":
        print("warning: evaluated WITHOUT the sandbox (--no-sandbox)", file=sys.stderr)
    return EXIT_OK if result["verdict"] == "accepted" else EXIT_REJECTED
