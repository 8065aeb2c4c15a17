"""`harness run SUBMISSION`: data -> train -> audit -> strict sandboxed eval -> report.

Everything lands in one run folder (default runs/<submission>-<preset>-seed<N>);
running the same command again resumes: finished stages are skipped and training
continues from its last checkpoint. Exit code 0 when the run is accepted, 1 when
it is rejected, 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from harness.errors import EXIT_OK, EXIT_REJECTED, BadInput


def configure(parser) -> None:
    parser.add_argument("submission", metavar="SUBMISSION", help="submission folder (with submission.toml)")
    parser.add_argument("--preset", choices=("smoke", "full"), default=None,
                        help="training preset: smoke (CPU-sized, minutes) or full (the published "
                             "configuration); default: full on a GPU machine, smoke otherwise")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="dataset folder with *_train_*.bin / *_val_*.bin shards "
                             "(default: the embedded corpus, built once under data/)")
    parser.add_argument("--tokenizer", metavar="MODEL", default=None,
                        help="SentencePiece .model for --data (default: the only one in "
                             "<data>/../../tokenizers/)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="run folder (default: runs/<submission>-<preset>-seed<N>)")
    parser.add_argument("--seed", type=int, default=1337, help="training seed (default 1337); the probe seed is drawn fresh for every eval")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's training steps")
    parser.add_argument("--nproc", type=int, default=1,
                        help="training processes (torchrun-style, one per GPU; default 1)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="evaluate without bubblewrap (the report marks the run unsandboxed)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="wall-time limit of each strict eval's load/score/observe "
                             "(default: the evaluator's, 600 s, the challenge's eval budget)")
    parser.add_argument("--probe-rate", type=float, default=None, metavar="R",
                        help="fraction of requests replayed by the causality/purity probes "
                             "(1.0 = every request)")


def run(args) -> int:
    import time

    from harness.pipeline import Pipeline, RunSettings, default_run_dir, fingerprint, log, read_submission_toml
    from harness.report import terminal_summary

    if args.steps is not None and args.steps < 1:
        raise BadInput(f"--steps {args.steps}: must be at least 1")
    if args.nproc < 1:
        raise BadInput(f"--nproc {args.nproc}: must be at least 1")
    if args.probe_rate is not None and not 0.0 <= args.probe_rate <= 1.0:
        raise BadInput(f"--probe-rate {args.probe_rate}: must be between 0 and 1")
    if args.time_limit is not None and not args.time_limit > 0:
        raise BadInput(f"--time-limit {args.time_limit}: must be positive")
    if args.tokenizer and not args.data:
        raise BadInput("--tokenizer: only meaningful with --data")

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    preset = args.preset or ("full" if device == "cuda" else "smoke")
    if device == "cpu":
        note = "the smoke preset" if preset == "smoke" else "the FULL preset (this will be very slow)"
        log(f"harness run: no GPU found, training {note} on the CPU"
            + ("" if args.preset else "; --preset full trains the published configuration on a GPU"))
    submission = Path(args.submission)
    if not submission.is_dir():
        raise BadInput(f"{submission}: not a submission folder")
    manifest = read_submission_toml(submission)["submission"]
    artifact_name = PurePosixPath(str(manifest["artifact"])).as_posix()
    packages = manifest.get("packages", [])
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise BadInput(f"{submission / 'submission.toml'}: [submission] packages must be a list of names")
    run_dir = Path(args.out) if args.out else default_run_dir(submission, preset, args.seed)
    settings = RunSettings(
        submission=str(submission.resolve()), preset=preset, seed=args.seed, steps=args.steps,
        data=str(Path(args.data).resolve()) if args.data else None,
        tokenizer=str(Path(args.tokenizer).resolve()) if args.tokenizer else None,
        sandbox=not args.no_sandbox, probe_rate=args.probe_rate, time_limit=args.time_limit,
        nproc=args.nproc, device=device,
        submission_sha256=fingerprint(submission, artifact_name, packages))
    log(f"harness run: {submission} -> {run_dir}")
    start = time.time()
    results = Pipeline(settings, run_dir).execute()
    print(terminal_summary(results, str(run_dir), time.time() - start))
    return EXIT_OK if results["verdict"] == "accepted" else EXIT_REJECTED
