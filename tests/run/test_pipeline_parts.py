"""Pieces of the run pipeline that need no training: fingerprints, tokenizer lookup, metrics."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import BadInput
from harness.pipeline import default_run_dir, fingerprint, guess_tokenizer, read_jsonl


def make_submission(root, predictor: bytes):
    root.mkdir(parents=True, exist_ok=True)
    (root / "submission.toml").write_text('[submission]\nartifact = "artifact.ptz"\n')
    (root / "predictor.py").write_bytes(predictor)
    return root


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_fingerprint_follows_code_not_artifact(tmp_path_factory, a, b):
    one = make_submission(tmp_path_factory.mktemp("s"), a)
    two = make_submission(tmp_path_factory.mktemp("s"), b)
    (two / "artifact.ptz").write_bytes(b"trained weights")
    (two / "__pycache__").mkdir()
    (two / "__pycache__" / "predictor.pyc").write_bytes(b"compiled")
    assert (fingerprint(one, "artifact.ptz") == fingerprint(two, "artifact.ptz")) == (a == b)


def test_fingerprint_sees_renames(tmp_path):
    sub = make_submission(tmp_path / "s", b"x = 1\n")
    before = fingerprint(sub, "artifact.ptz")
    (sub / "predictor.py").rename(sub / "other.py")
    assert fingerprint(sub, "artifact.ptz") != before


def test_fingerprint_covers_shipped_packages(tmp_path, monkeypatch):
    pkg = tmp_path / "lib" / "shipped"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    sub = make_submission(tmp_path / "s", b"import shipped\n")
    before = fingerprint(sub, "artifact.ptz", ["shipped"])
    assert before != fingerprint(sub, "artifact.ptz")
    (pkg / "__init__.py").write_text("x = 2\n")
    assert fingerprint(sub, "artifact.ptz", ["shipped"]) != before


def test_default_run_dir_is_deterministic(tmp_path):
    assert default_run_dir(tmp_path / "pr940", "smoke", 7) == default_run_dir(tmp_path / "pr940", "smoke", 7)
    assert str(default_run_dir(tmp_path / "pr940", "smoke", 7)).endswith("pr940-smoke-seed7")


def test_guess_tokenizer_uses_the_official_layout(tmp_path):
    dataset = tmp_path / "datasets" / "fineweb10B_sp1024"
    dataset.mkdir(parents=True)
    with pytest.raises(BadInput, match="--tokenizer"):
        guess_tokenizer(dataset)
    (tmp_path / "tokenizers").mkdir()
    (tmp_path / "tokenizers" / "fineweb_1024_bpe.model").write_bytes(b"m")
    assert guess_tokenizer(dataset).name == "fineweb_1024_bpe.model"
    (tmp_path / "tokenizers" / "other.model").write_bytes(b"m")
    with pytest.raises(BadInput, match="--tokenizer"):
        guess_tokenizer(dataset)


def test_read_jsonl_skips_a_line_cut_by_a_kill(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "train_loss": 6.9}\n{"step": 2, "train_loss": 6.8}\n{"step": 3, "tra')
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]
    assert read_jsonl(tmp_path / "missing.jsonl") == []
