"""The verdict rule, results.json merging, report.md and the plots, on results the test makes."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.plots import chunk_points, plot_chunks, plot_training, training_curves
from harness.report import SIZE_CAP_BYTES, build_results, decide, render_markdown, terminal_summary


def eval_result(**over):
    base = {"schema": 1, "verdict": "accepted", "reasons": [], "val_bpb": 1.9, "val_loss": 3.1,
            "tokens_scored": 1000, "bytes_scored": 3800, "code_bytes": 5000, "model_bytes": 900_000,
            "total_bytes": 905_000,
            "probes": {"causality": {"run": 4, "failed": 0}, "purity": {"run": 4, "failed": 0}},
            "sandbox": "bwrap", "eval_seconds": 2.0, "harness_version": "0.1.0"}
    base.update(over)
    return base


def finding(severity="error", reach="active"):
    return {"rule": "R1", "tag": "ttt_before_score", "severity": severity, "confidence": "high",
            "reach": reach, "condition": None, "path": "predictor.py", "line": 3, "message": "m"}


CLEAN = {"schema": 1, "errors": 0, "warnings": 0, "findings": []}


def test_clean_run_is_accepted():
    assert decide(eval_result(), CLEAN) == ("accepted", [])


@pytest.mark.parametrize("ev, audit, words", [
    (eval_result(), {"findings": [finding()]}, "static audit"),
    (eval_result(probes={"causality": {"run": 4, "failed": 1}}), CLEAN, "causality probe"),
    (eval_result(val_bpb=None), CLEAN, "no valid score"),
    (eval_result(val_bpb=math.nan), CLEAN, "no valid score"),
    (eval_result(total_bytes=SIZE_CAP_BYTES + 1), CLEAN, "over the cap"),
    (eval_result(verdict="rejected", reasons=["worker crashed"]), CLEAN, "worker crashed"),
])
def test_each_rule_rejects_on_its_own(ev, audit, words):
    verdict, reasons = decide(ev, audit)
    assert verdict == "rejected"
    assert any(words in r for r in reasons)


def test_dormant_errors_and_warnings_do_not_reject():
    audit = {"findings": [finding(reach="dormant"), finding(severity="warning")]}
    assert decide(eval_result(), audit)[0] == "accepted"
    res = build_results(eval_result(), audit, {"submission": "x"})
    assert res["audit"] == {"errors": 0, "warnings": 1, "findings": audit["findings"]}


@given(st.integers(0, 3 * SIZE_CAP_BYTES))
def test_cap_boundary(total):
    verdict, _ = decide(eval_result(total_bytes=total), CLEAN)
    assert (verdict == "accepted") == (total <= SIZE_CAP_BYTES)


def test_results_keep_eval_fields_and_add_no_ttt():
    res = build_results(eval_result(), CLEAN, {"submission": "s", "wall_seconds": 61},
                        eval_no_ttt=eval_result(val_bpb=2.0))
    for key in ("val_bpb", "val_loss", "tokens_scored", "bytes_scored", "code_bytes",
                "model_bytes", "total_bytes", "probes", "sandbox", "eval_seconds", "harness_version"):
        assert res[key] == eval_result()[key]
    assert res["no_ttt"]["val_bpb"] == 2.0 and res["verdict"] == "accepted"
    md = render_markdown(res, {"Chunks": "chunks.png"})
    assert "ACCEPTED" in md and "![Chunks](chunks.png)" in md and "2.0000" in md
    summary = terminal_summary(res, "runs/x", 5.0)
    assert "905,000 / 16,000,000" in summary and "without TTT: 2.0000" in summary and "1m01s" in summary


def test_unsandboxed_runs_say_so_next_to_the_verdict():
    res = build_results(eval_result(sandbox="none"), CLEAN, {"submission": "s"})
    assert "UNSANDBOXED" in render_markdown(res, {}).splitlines()[2]
    assert "UNSANDBOXED" in terminal_summary(res, "runs/x", 1.0).splitlines()[0]
    assert "UNSANDBOXED" not in terminal_summary(build_results(eval_result(), CLEAN, {}), "r", 1.0)


def test_training_curves_and_pngs(tmp_path):
    records = [{"step": 2, "train_loss": 5.0}, {"step": 1, "train_loss": 6.0},
               {"step": 2, "val_bpb": 3.0}, {"note": "no step"}, {"step": 3, "train_loss": "x"}]
    train, val = training_curves(records)
    assert train == [(1, 6.0), (2, 5.0)] and val == [(2, 3.0)]
    png = plot_training(records, tmp_path / "t.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_training([], tmp_path / "none.png", "t") is None
    chunks = [{"first_target": 1, "tokens": 100, "bpb": 1.0}, {"first_target": 101, "tokens": 50, "bpb": 0.9}]
    assert chunk_points(chunks) == [(51.0, 1.0), (126.0, 0.9)]
    png = plot_chunks(chunks, chunks[:1], tmp_path / "c.png", "c")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
