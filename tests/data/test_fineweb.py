"""FineWeb download logic against a fake hub (no network): manifest, layout, validation, offline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data import fineweb
from harness.data.shards import write_shard
from harness.errors import BadInput


@pytest.fixture
def fake_hub(tmp_path, tiny_data, monkeypatch):
    """A local folder laid out like the challenge's HF dataset, served by a stand-in hf_hub_download."""
    remote = tmp_path / "remote"
    name = "fineweb10B_sp1024"
    shards = remote / "datasets" / "datasets" / name
    rng = np.random.default_rng(0)
    for split, count in (("val", 1), ("train", 3)):
        for i in range(count):
            write_shard(shards / f"fineweb_{split}_{i:06d}.bin", rng.integers(0, 1024, 500 + i))
    (remote / "datasets" / "tokenizers").mkdir(parents=True)
    shutil.copyfile(tiny_data.tokenizer_path, remote / "datasets" / "tokenizers" / "fineweb_1024_bpe.model")
    (remote / "datasets" / "manifest.json").write_text(json.dumps({
        "datasets": [{"name": name, "tokenizer_name": "sp_bpe_1024",
                      "stats": {"files_train": 3, "files_val": 1}}],
        "tokenizers": [{"name": "sp_bpe_1024", "model_path": "tokenizers/fineweb_1024_bpe.model"}],
    }))
    requested = []

    def fake_download(repo_id, filename, *, subfolder, repo_type, etag_timeout):
        assert (repo_id, repo_type) == ("willdepueoai/parameter-golf", "dataset")
        requested.append(f"{subfolder}/{filename}")
        return str(remote / subfolder / filename)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(fineweb, "_check_reachable", lambda: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return remote, requested


def test_download_places_files_in_the_official_layout(tmp_path, fake_hub):
    remote, requested = fake_hub
    data = tmp_path / "data"
    dataset_dir = fineweb.download(data, train_shards=2)
    assert dataset_dir == data / "datasets" / "fineweb10B_sp1024"
    assert sorted(p.name for p in dataset_dir.iterdir()) == [
        "fineweb_train_000000.bin", "fineweb_train_000001.bin", "fineweb_val_000000.bin"]
    for p in dataset_dir.iterdir():
        assert p.read_bytes() == (remote / "datasets" / "datasets" / dataset_dir.name / p.name).read_bytes()
    assert (data / "tokenizers" / "fineweb_1024_bpe.model").is_file()
    first = len(requested)
    fineweb.download(data, train_shards=2)  # everything is there: nothing is requested again
    assert len(requested) == first


def test_download_rejects_bad_requests_and_bad_shards(tmp_path, fake_hub, capsys):
    remote, _ = fake_hub
    with pytest.raises(BadInput, match="only 3 train shards"):
        fineweb.download(tmp_path / "d1", train_shards=4)
    bad = remote / "datasets" / "datasets" / "fineweb10B_sp1024" / "fineweb_train_000000.bin"
    write_shard(bad, np.array([5, 2000]))  # a token id outside the 1024 vocabulary
    assert main(["data", "fineweb", "--train-shards", "1", "--data-dir", str(tmp_path / "d2")]) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress bar: one error line
    assert last.startswith("harness: error:") and "fineweb_train_000000.bin" in last and "token id 2000" in last
    assert not (tmp_path / "d2" / "datasets" / "fineweb10B_sp1024" / "fineweb_train_000000.bin").exists()


def test_bad_variant_and_offline_flag(tmp_path, monkeypatch, capsys):
    assert main(["data", "fineweb", "--variant", "gpt2", "--data-dir", str(tmp_path)]) == 2
    assert "--variant" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["data", "fineweb", "--data-dir", str(tmp_path)]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err


def test_without_network_fails_fast_in_one_line(tmp_path):
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-m", "harness", "data", "fineweb", "--train-shards", "1", "--data-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "cannot reach" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "datasets").exists()
