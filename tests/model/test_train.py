"""The trainer on the tiny dataset: one process vs torchrun with two (gloo), a run
killed with SIGKILL and resumed vs an uninterrupted one, and the run folder's files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from reference_model.artifact import load_artifact
from reference_model.checkpoint import list_checkpoints, load_checkpoint
from reference_model.train import train_submission
from tests.model.helpers import make_submission


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _train(sub, out, tiny_data, **kw):
    return train_submission(sub, out, preset="tiny", data_dir=tiny_data.dataset_dir,
                            tokenizer=tiny_data.tokenizer_path, device="cpu", **kw)


def test_run_folder_and_artifact(tmp_path, tiny_data):
    sub = make_submission(tmp_path / "sub", iterations=4, warmdown=2)
    result = _train(sub, tmp_path / "run", tiny_data)
    out = tmp_path / "run"
    assert {"config.json", "metrics.jsonl", "result.json", "artifact.ptz", "checkpoints"} <= {p.name for p in out.iterdir()}
    records = _metrics(out)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all({"step", "train_loss", "lr", "tokens_per_s"} <= r.keys() for r in records)
    assert "val_bpb" in records[-1] and records[-1]["lr"] < records[0]["lr"]  # warmdown
    assert result.details["code_bytes"] == (sub / "predictor.py").stat().st_size
    assert result.details["model_bytes"] == result.artifact_path.stat().st_size
    assert result.unigram_bpb > 0 and result.val_bpb > 0
    loaded = load_artifact(result.artifact_path)
    assert loaded.cfg.num_layers == 2


def test_two_process_torchrun_matches_one_process(tmp_path, tiny_data):
    sub = make_submission(tmp_path / "sub", iterations=3, warmdown=1, grad_accum=2, checkpoint_every=3)
    _train(sub, tmp_path / "one", tiny_data, nproc=1)
    _train(sub, tmp_path / "two", tiny_data, nproc=2)
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=2e-3)
    w1 = load_checkpoint(list_checkpoints(tmp_path / "one" / "checkpoints")[-1]).model
    w2 = load_checkpoint(list_checkpoints(tmp_path / "two" / "checkpoints")[-1]).model
    for name in w1:
        assert torch.allclose(w1[name], w2[name], atol=2e-2, rtol=0), name


def test_compiled_training_matches_eager(tmp_path, tiny_data):
    """The full preset's torch.compile path (inductor on CPU here): same losses as eager."""
    eager = make_submission(tmp_path / "eager", iterations=2, warmdown=1, checkpoint_every=0)
    compiled = make_submission(tmp_path / "compiled", iterations=2, warmdown=1, checkpoint_every=0, compile=True)
    _train(eager, tmp_path / "e", tiny_data)
    _train(compiled, tmp_path / "c", tiny_data)
    a, b = _metrics(tmp_path / "e"), _metrics(tmp_path / "c")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2]
    for x, y in zip(a, b):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)


def test_killed_run_resumes_to_the_same_weights(tmp_path, tiny_data):
    iterations = 40
    sub = make_submission(tmp_path / "sub", iterations=iterations, warmdown=10, checkpoint_every=4)
    _train(sub, tmp_path / "straight", tiny_data)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "harness", "train", str(sub), "--preset", "tiny", "--out", str(out),
           "--data", str(tiny_data.dataset_dir), "--tokenizer", str(tiny_data.tokenizer_path), "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not list_checkpoints(out / "checkpoints") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    steps_done = load_checkpoint(list_checkpoints(out / "checkpoints")[-1]).step
    assert steps_done < iterations and not (out / "result.json").exists()

    _train(sub, out, tiny_data)  # resumes from the newest checkpoint
    final_a = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1])
    final_b = load_checkpoint(list_checkpoints(out / "checkpoints")[-1])
    assert final_a.step == final_b.step == iterations
    for name, t in final_a.model.items():
        assert torch.equal(t, final_b.model[name]), name
    for name, t in final_a.ema.items():
        assert torch.equal(t, final_b.ema[name]), name
    assert [r["step"] for r in _metrics(out)] == list(range(1, iterations + 1))
    assert [r["train_loss"] for r in _metrics(out)] == [r["train_loss"] for r in _metrics(tmp_path / "straight")]


def test_cli_bad_input_exits_2(tmp_path, capsys):
    from harness.cli import main

    assert main(["train", str(tmp_path / "missing")]) == 2
    sub = make_submission(tmp_path / "sub")
    assert main(["train", str(sub), "--preset", "nope"]) == 2
    assert main(["train", str(sub), "--preset", "tiny", "--data", str(tmp_path)]) == 2  # --tokenizer missing
    err = capsys.readouterr().err
    assert err.count("harness: error:") == 3 and "Traceback" not in err
