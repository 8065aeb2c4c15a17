"""End-to-end sandboxed evaluation of the example bigram predictor, checked independently."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.bpb import target_bytes
from harness.cli import main as cli_main
from harness.data.tokenizer import build_byte_tables, load_tokenizer
from harness.evaluator import val_stream
from harness.result import REQUIRED_KEYS

from tests.evaluator.helpers import bigram_counts, evaluate, example_submission

ALPHA = 0.25


def _log_probs(counts: np.ndarray) -> np.ndarray:
    """The contract's precision: float32 logits, log_softmax over the vocabulary in float32."""
    logits = np.log(counts.astype(np.float64) + ALPHA).astype(np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True, dtype=np.float32))).astype(np.float64)


def _expected(data, stream: np.ndarray, counts: np.ndarray, ttt_chunk: int | None) -> tuple[float, float]:
    """(bpb, loss) of the bigram model computed here, with the score-first count updates of TTT."""
    tables = build_byte_tables(load_tokenizer(data.tokenizer_path), data.vocab_size)
    targets = np.arange(1, len(stream))
    n_bytes = int(target_bytes(tables, stream[:-1], stream[1:]).sum())
    counts = counts.copy()
    nll = 0.0
    chunk = ttt_chunk or len(stream)
    for first in range(1, len(stream), chunk):
        t = targets[first - 1: first - 1 + chunk]
        lp = _log_probs(counts)
        nll += float(-lp[stream[t - 1], stream[t]].sum())
        observed = stream[(0 if first == 1 else first - 1): t[-1] + 1].astype(np.int64)  # pairs up to chunk end
        np.add.at(counts, (observed[:-1], observed[1:]), 1)
    return nll / (math.log(2) * n_bytes), nll / len(targets)


@pytest.fixture(scope="module")
def counts(tiny_data):
    return bigram_counts(tiny_data.dataset_dir, tiny_data.vocab_size)


@pytest.mark.parametrize("ttt_chunk", [None, 1000])
def test_sandboxed_bpb_equals_independent_computation(tiny_data, counts, tmp_path, ttt_chunk):
    sub = example_submission(tmp_path / "example", counts, ALPHA)
    # with TTT, causality replays also go to an independent verifier worker fed the same observe()
    result = evaluate(sub, tiny_data, ttt_chunk=ttt_chunk, probe_rate=0.3, independent_probes=ttt_chunk is not None)
    assert result["verdict"] == "accepted", result["reasons"]
    assert result["sandbox"] == "bwrap"
    stream = val_stream(tiny_data.dataset_dir)
    bpb, loss = _expected(tiny_data, stream, counts, ttt_chunk)
    assert result["val_bpb"] == pytest.approx(bpb, rel=1e-9)
    assert result["val_loss"] == pytest.approx(loss, rel=1e-9)
    assert result["tokens_scored"] == len(stream) - 1
    assert result["observe_called"] == (0 if ttt_chunk is None else -(-(len(stream) - 1) // ttt_chunk))
    assert result["probes"]["causality"]["run"] >= 1 and result["probes"]["purity"]["run"] >= 1
    assert sum(c["bytes"] for c in result["chunks"]) == result["bytes_scored"]
    if ttt_chunk:
        assert len(result["bpb_per_chunk"]) == result["observe_called"]


def test_ttt_lowers_the_loss_of_an_untrained_bigram(tiny_data, tmp_path):
    """observe() really adapts: with empty counts, TTT must beat the uniform model."""
    sub = example_submission(tmp_path / "empty", np.zeros((tiny_data.vocab_size,) * 2, dtype=np.int64), ALPHA)
    plain = evaluate(sub, tiny_data, ttt_chunk=None, probe_rate=0.0)
    ttt = evaluate(sub, tiny_data, ttt_chunk=500, probe_rate=0.0)
    assert plain["val_loss"] == pytest.approx(math.log(tiny_data.vocab_size), rel=1e-6)
    assert ttt["verdict"] == "accepted" and ttt["val_loss"] < plain["val_loss"] - 0.5


def test_cli_exit_codes_and_json(tiny_data, counts, tmp_path, capsys):
    sub = example_submission(tmp_path / "example", counts, ALPHA)
    out = tmp_path / "result.json"
    args = [str(sub), "--data", str(tiny_data.dataset_dir), "--tokenizer", str(tiny_data.tokenizer_path),
            "--seq-len", "128", "--stride", "64", "--ttt-chunk", "0", "--quiet", "--no-audit"]
    assert cli_main(["eval", *args, "--json", str(out), "--no-sandbox"]) == 0
    result = json.loads(out.read_text())
    assert set(REQUIRED_KEYS) <= set(result) and result["sandbox"] == "none"
    assert result["eval_config"]["ttt_chunk"] is None and result["observe_called"] == 0
    (sub / "submission.toml").write_text((sub / "submission.toml").read_text().replace('"bigram.bgm"', '"../x.bgm"'))
    assert cli_main(["eval", *args]) == 2
    assert "artifact" in capsys.readouterr().err


def test_declared_package_is_importable_in_the_sandbox_and_counted(tiny_data, tmp_path, monkeypatch):
    import importlib
    import sys

    pkg = tmp_path / "site" / "pgolf_fixture_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pgolf_fixture_pkg.values import VALUE\n")
    (pkg / "values.py").write_text("VALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    source = f"""
import torch
import pgolf_fixture_pkg

class Uniform:
    def score(self, tokens, n_last):
        return torch.zeros(tokens.shape[0], n_last, {tiny_data.vocab_size})

def load(path, device):
    assert pgolf_fixture_pkg.VALUE == 3 and pgolf_fixture_pkg.__file__.startswith("/opt/pgolf/")
    return Uniform()
"""
    from tests.evaluator.helpers import write_submission

    sub = write_submission(tmp_path / "pkg_sub", source, tiny_data.vocab_size)
    toml = (sub / "submission.toml").read_text().replace("vocab_size", 'packages = ["pgolf_fixture_pkg"]\nvocab_size')
    (sub / "submission.toml").write_text(toml)
    result = evaluate(sub, tiny_data, probe_rate=0.0, max_val_tokens=600)
    assert result["verdict"] == "accepted", result["reasons"]
    package_bytes = len("from pgolf_fixture_pkg.values import VALUE\n") + len("VALUE = 3\n")
    assert result["code_bytes"] == (sub / "predictor.py").stat().st_size + package_bytes
    assert "pgolf_fixture_pkg" not in sys.modules  # located, never imported, by the harness


@pytest.mark.parametrize("extra, field", [
    (["--time-limit", "inf"], "--time-limit"), (["--time-limit", "1e300"], "--time-limit"),
    (["--seed", "-1"], "--seed"), (["--batch-seqs", "1000000"], "batch_seqs"),
])
def test_out_of_range_options_are_one_line_exit_2(tiny_data, counts, tmp_path, capsys, monkeypatch, extra, field):
    import harness.evaluator

    monkeypatch.setattr(harness.evaluator, "MAX_REQUEST_VALUES", 1 << 16)  # the tiny stream's replies stay small
    sub = example_submission(tmp_path / "example", counts, ALPHA)
    args = [str(sub), "--data", str(tiny_data.dataset_dir), "--tokenizer", str(tiny_data.tokenizer_path),
            "--seq-len", "128", "--stride", "64", "--quiet", "--no-audit", *extra]
    assert cli_main(["eval", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and "\n" not in err and "Traceback" not in err


def test_the_scored_stream_does_not_depend_on_the_submission_seq_len(tiny_data, counts, tmp_path):
    """A submission must not choose how much of the val set counts: a seq_len just above
    half the stream once trimmed the stream to whole sequences of that length."""
    sub = example_submission(tmp_path / "example", counts, ALPHA)
    short = evaluate(sub, tiny_data, probe_rate=0.0, seq_len=64, stride=64, ttt_chunk=None)
    n = short["eval_config"]["val_tokens"]
    long = evaluate(sub, tiny_data, probe_rate=0.0, seq_len=n // 2 + 7, stride=64, ttt_chunk=None)
    assert long["eval_config"]["val_tokens"] == n


def test_a_vocab_size_other_than_the_tokenizer_s_is_bad_input(tiny_data, counts, tmp_path, capsys):
    """Probes draw replacement tokens below vocab_size: ids the tokenizer cannot produce
    would make an honest predictor fail."""
    sub = example_submission(tmp_path / "example", counts, ALPHA)
    toml = sub / "submission.toml"
    toml.write_text(toml.read_text().replace(f"vocab_size = {tiny_data.vocab_size}", f"vocab_size = {2 * tiny_data.vocab_size}"))
    args = [str(sub), "--data", str(tiny_data.dataset_dir), "--tokenizer", str(tiny_data.tokenizer_path), "--quiet", "--no-audit"]
    assert cli_main(["eval", *args]) == 2
    assert "differs from the tokenizer" in capsys.readouterr().err
