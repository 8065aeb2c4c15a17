"""`harness run` end to end on the tiny dataset and a tiny copy of pr940, then a resume."""

import json
import math
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.result import REQUIRED_KEYS

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A model small enough to train in seconds on a CPU; the pr940 code path is unchanged.
TINY_PRESET = """
[model]
num_layers = 2
model_dim = 64
num_heads = 2
num_kv_heads = 1
bigram_buckets = 256
bigram_dim = 16
xsa_last_n = 2

[train]
iterations = 6
warmdown_iters = 2
train_batch_tokens = 1024
train_seq_len = 128
grad_accum = 1
val_every = 2
val_max_tokens = 2048
log_every = 1
checkpoint_every = 2

[quant]
passthrough_max_numel = 1024
"""


@pytest.fixture(scope="module")
def tiny_pr940(tmp_path_factory) -> Path:
    """pr940 with the tiny preset as `smoke`, an eval window that fits the tiny val split,
    and TTT chunks as long as pr940's TTT training sequences (2048), so observe() really
    trains and the val split still has several chunks."""
    sub = tmp_path_factory.mktemp("sub") / "pr940"
    shutil.copytree(REPO / "submissions" / "pr940", sub, ignore=shutil.ignore_patterns("__pycache__", "*.ptz"))
    (sub / "smoke.toml").write_text(TINY_PRESET)
    toml = (sub / "submission.toml").read_text()
    toml = toml.replace("seq_len = 2048", "seq_len = 256").replace("ttt_chunk = 32768", "ttt_chunk = 2048")
    assert "ttt_chunk = 2048" in toml
    (sub / "submission.toml").write_text(toml)
    return sub


def sandbox_flags() -> list[str]:
    from harness.sandbox.policy import bwrap_path

    return [] if bwrap_path() else ["--no-sandbox"]


@pytest.fixture(scope="module")
def first_run(tiny_pr940, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    argv = ["run", str(tiny_pr940), "--data", str(tiny_data.dataset_dir), "--tokenizer",
            str(tiny_data.tokenizer_path), "--out", str(out), "--steps", "3", *sandbox_flags()]
    return argv, out


def test_run_writes_a_complete_run_folder_and_resumes(first_run, capfd):
    argv, out = first_run
    code = main(argv)
    stdout, stderr = capfd.readouterr()
    assert code == 0, stderr[-3000:]
    assert "no GPU found" in stderr or "cuda" in json.loads((out / "config.json").read_text())["device"]

    for name in ("config.json", "state.json", "audit.json", "eval.json", "eval_no_ttt.json",
                 "results.json", "report.md", "train/metrics.jsonl", "submission/artifact.ptz",
                 "submission/submission.toml"):
        assert (out / name).is_file(), name
    assert list((out / "train" / "checkpoints").glob("*.ckpt"))
    for png in ("training.png", "chunks.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC

    res = json.loads((out / "results.json").read_text())
    ev = json.loads((out / "eval.json").read_text())
    no_ttt = json.loads((out / "eval_no_ttt.json").read_text())
    assert set(REQUIRED_KEYS) <= set(res)
    assert res["schema"] == 1 and res["verdict"] == "accepted" and res["reasons"] == []
    assert math.isfinite(res["val_bpb"]) and res["val_bpb"] == ev["val_bpb"]
    assert res["no_ttt"]["val_bpb"] == no_ttt["val_bpb"]
    assert ev["val_bpb"] != no_ttt["val_bpb"]  # observe() adapted the model: two different evals
    assert ev["observe_called"] > 0 and no_ttt["observe_called"] == 0
    # smoke: windows capped at the preset's train_seq_len (128), stride and TTT chunk kept
    assert ev["eval_config"]["seq_len"] == no_ttt["eval_config"]["seq_len"] == 128
    assert ev["eval_config"]["stride"] == 64 and ev["eval_config"]["ttt_chunk"] == 2048
    assert res["run"]["smoke_eval_method"] == {"seq_len": 128, "stride": 64}
    assert res["model_bytes"] == (out / "submission" / "artifact.ptz").stat().st_size
    assert res["total_bytes"] == res["code_bytes"] + res["model_bytes"] <= res["cap_bytes"]
    assert res["audit"]["errors"] == 0 and res["sandbox"] == ("none" if sandbox_flags() else "bwrap")
    assert res["run"]["steps"] == 3 and set(res["run"]["stage_seconds"]) == {"data", "train", "audit", "eval"}
    metrics = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    report = (out / "report.md").read_text()
    assert "ACCEPTED" in report and "(training.png)" in report and "(chunks.png)" in report
    assert "verdict: ACCEPTED" in stdout and f"{res['total_bytes']:,} / 16,000,000" in stdout

    # Same command again: every stage is found done and skipped, nothing is rewritten.
    stamp = {p: p.stat().st_mtime_ns for p in (out / "eval.json", out / "submission" / "artifact.ptz")}
    assert main(argv) == 0
    stdout, stderr = capfd.readouterr()
    assert stderr.count("done earlier, skipped") == 5
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    assert "verdict: ACCEPTED" in stdout

    # A lost report is rebuilt from the recorded stages, and only the report stage runs.
    (out / "results.json").unlink()
    assert main(argv) == 0
    _, stderr = capfd.readouterr()
    assert stderr.count("done earlier, skipped") == 4 and "[5/5] report ..." in stderr
    assert json.loads((out / "results.json").read_text())["val_bpb"] == res["val_bpb"]

    # Other settings on the same folder are refused, naming what changed.
    other = list(argv)
    other[other.index("--steps") + 1] = "4"
    assert main(other) == 2
    assert "steps=3" in capfd.readouterr().err


@pytest.mark.parametrize("extra, words", [
    (["--steps", "0"], "--steps"),
    (["--probe-rate", "2"], "--probe-rate"),
    (["--tokenizer", "x.model"], "--tokenizer"),
])
def test_bad_flags_are_one_line_errors(tiny_pr940, extra, words, capsys):
    assert main(["run", str(tiny_pr940), *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_submission_is_bad_input(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope")]) == 2
    assert "not a submission folder" in capsys.readouterr().err
