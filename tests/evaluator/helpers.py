"""Building submission folders and running evaluations for the evaluator tests."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np

from harness.data.shards import find_shards, read_shard
from harness.evaluator import EvalOptions, evaluate_submission

EXAMPLE = Path(__file__).resolve().parents[2] / "submissions" / "example"
# Small windows keep each evaluation to a few seconds on a loaded 2-core machine.
SMALL = dict(seq_len=128, stride=32, batch_seqs=8, progress=False, audit=False)


def write_submission(folder: Path, predictor: str, vocab: int, artifact: bytes = b"none", **eval_settings) -> Path:
    """A submission folder whose predictor.py is `predictor` (dedented)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictor.py").write_text(textwrap.dedent(predictor))
    (folder / "weights.bin").write_bytes(artifact)
    lines = ["[submission]", 'name = "test"', 'entrypoint = "predictor.py"', 'artifact = "weights.bin"',
             'code = ["predictor.py"]', f"vocab_size = {vocab}"]
    if eval_settings:
        lines.append("[eval]")
        lines += [f"{k} = {v}" for k, v in eval_settings.items()]
    (folder / "submission.toml").write_text("\n".join(lines) + "\n")
    return folder


def bigram_counts(dataset_dir: Path, vocab: int) -> np.ndarray:
    counts = np.zeros((vocab, vocab), dtype=np.int64)
    for shard in find_shards(dataset_dir, "train"):
        t = read_shard(shard).astype(np.int64)
        np.add.at(counts, (t[:-1], t[1:]), 1)
    return counts


def example_submission(folder: Path, counts: np.ndarray, alpha: float) -> Path:
    """A copy of submissions/example with an artifact holding `counts`."""
    import importlib.util

    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.bgm"))
    spec = importlib.util.spec_from_file_location("example_bigram_format", EXAMPLE / "bigram_format.py")
    fmt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fmt)  # our own example's format module (trusted test code)
    (folder / "bigram.bgm").write_bytes(fmt.encode(counts, alpha))
    return folder


def evaluate(folder: Path, data, **options) -> dict:
    opts = dict(SMALL, **options)
    return evaluate_submission(folder, data.dataset_dir, data.tokenizer_path, options=EvalOptions(**opts))
