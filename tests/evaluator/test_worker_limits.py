"""Size cap, time limit counting observe(), bounded worker output, sandbox refusal."""

from __future__ import annotations

import pytest

from harness.cli import main as cli_main
from harness.errors import BadInput
from harness.evaluator import EvalOptions, evaluate_submission

from tests.evaluator.helpers import evaluate, write_submission

UNIFORM = """
import os, sys, time
import torch

class Uniform:
    def score(self, tokens, n_last):
        return torch.zeros(tokens.shape[0], n_last, VOCAB)

    def observe(self, tokens):
        if SLOW_OBSERVE:
            time.sleep(600)

def load(path, device):
    for _ in range(FLOOD_MB):
        sys.stdout.write("x" * (1 << 20))
    sys.stdout.flush()
    return Uniform()
"""


def _source(vocab, slow_observe=False, flood_mb=0):
    return f"VOCAB = {vocab}\nSLOW_OBSERVE = {slow_observe}\nFLOOD_MB = {flood_mb}\n" + UNIFORM


def test_over_the_cap_is_rejected(tiny_data, tmp_path):
    sub = write_submission(tmp_path / "big", _source(tiny_data.vocab_size), tiny_data.vocab_size)
    with open(sub / "weights.bin", "r+b") as f:
        f.truncate(16_000_001)
    result = evaluate(sub, tiny_data, probe_rate=0.0, max_val_tokens=600)
    assert result["verdict"] == "rejected" and result["total_bytes"] > 16_000_000
    assert any("exceeds the cap of 16,000,000" in r for r in result["reasons"])


def test_slow_observe_counts_against_the_time_limit(tiny_data, tmp_path):
    sub = write_submission(tmp_path / "slow", _source(tiny_data.vocab_size, slow_observe=True), tiny_data.vocab_size)
    result = evaluate(sub, tiny_data, probe_rate=0.0, ttt_chunk=200, time_limit=2.0, max_val_tokens=600)
    assert result["verdict"] == "rejected"
    assert any("time limit exceeded during observe of chunk 0" in r for r in result["reasons"])


def test_output_flood_is_bounded(tiny_data, tmp_path):
    sub = write_submission(tmp_path / "flood", _source(tiny_data.vocab_size, flood_mb=8), tiny_data.vocab_size)
    log = tmp_path / "worker.log"
    result = evaluate(sub, tiny_data, probe_rate=0.0, max_val_tokens=600, log_path=str(log))
    assert result["verdict"] == "accepted", result["reasons"]
    assert log.stat().st_size == 1 << 20
    assert "more bytes of worker output were dropped" in result["worker_log_tail"]
    assert len(result["worker_log_tail"]) < 10_000


def test_no_bwrap_refuses_unless_no_sandbox(tiny_data, tmp_path, monkeypatch, capsys):
    import harness.sandbox.policy as policy

    monkeypatch.setattr(policy, "bwrap_path", lambda: None)
    sub = write_submission(tmp_path / "s", _source(tiny_data.vocab_size), tiny_data.vocab_size)
    with pytest.raises(BadInput, match="--no-sandbox"):
        evaluate_submission(sub, tiny_data.dataset_dir, tiny_data.tokenizer_path, options=EvalOptions(progress=False))
    args = ["eval", str(sub), "--data", str(tiny_data.dataset_dir), "--tokenizer", str(tiny_data.tokenizer_path),
            "--seq-len", "128", "--max-val-tokens", "600", "--quiet", "--no-audit"]
    assert cli_main(args) == 2
    assert "bwrap" in capsys.readouterr().err
    assert cli_main(args + ["--no-sandbox"]) == 0
