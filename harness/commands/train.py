"""`harness train SUBMISSION`: train the reference model of a submission and write its artifact.

    harness train submissions/pr940 [--preset smoke|full] [--nproc N] [--steps K]
        [--out DIR] [--data DATASET_DIR] [--tokenizer MODEL] [--seed N] [--device D]
        [--artifact PATH]

The run folder (default runs/<name>-<preset>) gets config.json, metrics.jsonl,
checkpoints/, result.json and the artifact. Re-running on the same folder resumes.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import BadInput


def configure(parser):
    parser.add_argument("submission", type=Path, help="submission folder with submission.toml")
    parser.add_argument("--preset", default="smoke", help="preset named in the [train] table (smoke, full)")
    parser.add_argument("--nproc", type=int, default=1, help="processes (torchrun) for data-parallel training")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's iteration count")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/<name>-<preset>)")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder with *_train_*/*_val_* shards "
                        "(default: the embedded corpus, built if needed)")
    parser.add_argument("--tokenizer", type=Path, default=None, help="SentencePiece .model of the dataset")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--artifact", type=Path, default=None, help="where to write the artifact "
                        "(default OUT/artifact.ptz)")


def run(args) -> int:
    if not (args.submission / "submission.toml").is_file():
        raise BadInput(f"{args.submission}: no submission.toml")
    if (args.data is None) != (args.tokenizer is None):
        raise BadInput("--data and --tokenizer go together (or neither, for the embedded corpus)")
    from reference_model.train import train_submission

    result = train_submission(args.submission, args.out, preset=args.preset, data_dir=args.data,
                              tokenizer=args.tokenizer, steps=args.steps, nproc=args.nproc, seed=args.seed,
                              artifact_path=args.artifact, device=args.device)
    d = result.details
    print(f"trained {d['steps']} steps, {d['parameters']:,} parameters -> {result.out_dir}")
    print(f"val bpb: {d['val_bpb']:.4f} (final float weights), {result.val_bpb:.4f} (artifact round trip); "
          f"unigram {result.unigram_bpb:.4f}; ratio {d['ratio_to_unigram']:.3f}")
    print(f"artifact {result.artifact_path}: {d['model_bytes']:,} model + {d['code_bytes']:,} code = "
          f"{d['total_bytes']:,} bytes of {d['size_limit']:,} ({'fits' if d['fits'] else 'OVER BUDGET'})")
    return 0 if d["fits"] else 1
