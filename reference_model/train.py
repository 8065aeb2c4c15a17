"""Train a submission's reference model: the Python API behind `harness train`.

    train_submission("submissions/pr940", "runs/pr940-smoke", preset="smoke")

reads the preset file named by the submission's `[train]` table, writes
out_dir/config.json, trains (in this process, or under torchrun with nproc > 1),
and leaves metrics.jsonl, checkpoints/, result.json and the artifact in out_dir.
Run again on the same out_dir and it resumes from the newest checkpoint.

`python -m reference_model.train CONFIG_JSON` is the per-rank entry torchrun starts.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import atomic_write_json
from harness.errors import BadInput

from .config import load_preset, to_dict


@dataclass
class TrainResult:
    out_dir: Path
    artifact_path: Path
    val_bpb: float  # dequantized (artifact) model on the full val split
    unigram_bpb: float
    details: dict  # everything in result.json


def _submission_table(submission_dir: Path) -> dict:
    path = submission_dir / "submission.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"{path}: cannot read ({e})") from None


def preset_path(submission_dir: Path, preset: str) -> Path:
    """The preset file that submission.toml's [train] table names for `preset`."""
    table = _submission_table(submission_dir).get("train", {})
    name = table.get(preset)
    if not isinstance(name, str):
        raise BadInput(f"{submission_dir / 'submission.toml'}: [train] names no preset {preset!r} "
                       f"(has {sorted(k for k, v in table.items() if isinstance(v, str))})")
    path = (submission_dir / name).resolve()
    if not path.is_relative_to(submission_dir.resolve()) or not path.is_file():
        raise BadInput(f"{submission_dir / 'submission.toml'}: preset file {name!r} is not a file in the folder")
    return path


def code_bytes(submission_dir: Path) -> int:
    """Bytes of the files listed in `code` plus every .py file of the listed `packages`."""
    from harness.artifact import package_py_files  # the evaluator's accounting, one place

    table = _submission_table(submission_dir).get("submission", {})
    files = {(submission_dir / f).resolve() for f in table.get("code", [])}
    for pkg in table.get("packages", []):
        files.update(package_py_files(pkg))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise BadInput(f"{submission_dir / 'submission.toml'}: code files missing: {missing}")
    return sum(f.stat().st_size for f in files)


def _default_data(data_dir, tokenizer) -> tuple[Path, Path]:
    if data_dir is not None and tokenizer is not None:
        return Path(data_dir), Path(tokenizer)
    from harness.data.corpus import ensure_embedded

    info = ensure_embedded()
    return Path(data_dir or info.dataset_dir), Path(tokenizer or info.tokenizer_path)


def train_submission(submission_dir, out_dir=None, preset: str = "smoke", data_dir=None, tokenizer=None,
                     steps: int | None = None, nproc: int = 1, seed: int | None = None,
                     artifact_path=None, device: str = "auto", overrides: dict | None = None) -> TrainResult:
    """Train and write the artifact (default out_dir/artifact.ptz).

    `steps` replaces the preset's iteration count and scales its warmdown in proportion.
    `overrides` ({"train": {...}, "model": {...}, "quant": {...}}) adjust the preset.
    """
    submission_dir = Path(submission_dir)
    name = _submission_table(submission_dir).get("submission", {}).get("name", submission_dir.name)
    out = Path(out_dir or Path("runs") / f"{name}-{preset}")
    cfg = load_preset(preset_path(submission_dir, preset))
    for section, values in (overrides or {}).items():
        setattr(cfg, section, dataclasses.replace(getattr(cfg, section), **values))
    if steps is not None:
        if steps <= 0:
            raise BadInput(f"--steps must be positive, got {steps}")
        t = cfg.train
        cfg.train = dataclasses.replace(t, iterations=steps, warmdown_iters=round(t.warmdown_iters * steps / t.iterations))
    if seed is not None:
        cfg.train = dataclasses.replace(cfg.train, seed=seed)
    if nproc < 1:
        raise BadInput(f"--nproc must be >= 1, got {nproc}")
    dataset_dir, tokenizer_path = _default_data(data_dir, tokenizer)
    config = {
        "submission": str(submission_dir.resolve()),
        "preset_name": preset,
        "preset": json.loads(json.dumps(to_dict(cfg))),  # tuples -> lists, as a reload sees them
        "dataset_dir": str(dataset_dir.resolve()),
        "tokenizer_path": str(tokenizer_path.resolve()),
        "out_dir": str(out.resolve()),
        "artifact_path": str(Path(artifact_path or out / "artifact.ptz").resolve()),
        "code_bytes": code_bytes(submission_dir),
        "device": device or "auto",
        "nproc": nproc,
    }
    out.mkdir(parents=True, exist_ok=True)
    config_path = atomic_write_json(out / "config.json", config)
    if nproc == 1:
        from .trainer import run_training

        result = run_training(config)
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "reference_model.train", str(config_path)]
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            raise BadInput(f"torchrun with {nproc} processes failed (exit {proc.returncode}); see its output above")
        result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    return TrainResult(out, Path(result["artifact"]), result["val_bpb_roundtrip"], result["unigram_bpb"], result)


def main(argv: list[str] | None = None) -> int:
    """Entry point of one torchrun rank: train from a config.json written by train_submission."""
    from .trainer import run_training

    args = sys.argv[1:] if argv is None else argv
    try:
        run_training(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    except BadInput as e:
        print(f"reference_model.train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
