"""`harness compare` on run folders whose results.json the test writes."""

import json
import math

import pytest

from harness.cli import main
from harness.stats import improvement_test


def make_run(root, name, seed, bpb, verdict="accepted", tokens=1000, n_bytes=4200):
    folder = root / f"{name}-seed{seed}"
    folder.mkdir()
    loss = bpb * math.log(2) * n_bytes / tokens
    results = {"schema": 1, "verdict": verdict, "reasons": [] if verdict == "accepted" else ["x"],
               "val_bpb": bpb, "val_loss": loss, "tokens_scored": tokens, "bytes_scored": n_bytes,
               "run": {"submission": name, "seed": seed}}
    (folder / "results.json").write_text(json.dumps(results))
    return folder, loss


def test_compare_groups_seeds_and_tests_against_baseline(tmp_path, capsys):
    cand = [make_run(tmp_path, "fast", s, b) for s, b in enumerate([1.100, 1.102, 1.099])]
    base = [make_run(tmp_path, "base", s, b) for s, b in enumerate([1.130, 1.133, 1.128])]
    rejected, _ = make_run(tmp_path, "fast", 9, 0.5, verdict="rejected")
    out = tmp_path / "cmp.json"
    code = main(["compare", *(str(f) for f, _ in cand), str(rejected),
                 "--baseline", *(str(f) for f, _ in base), "--json", str(out)])
    assert code == 0
    res = json.loads(out.read_text())
    fast = res["submissions"]["fast"]
    assert fast["n"] == 3 and len(fast["left_out"]) == 1  # the rejected run does not count
    assert fast["val_bpb_mean"] == pytest.approx((1.100 + 1.102 + 1.099) / 3)
    expected = improvement_test([l for _, l in cand], [l for _, l in base])
    assert res["tests"]["fast"]["p"] == pytest.approx(expected.p)
    assert res["tests"]["fast"]["significant"] == expected.significant
    printed = capsys.readouterr().out
    assert "fast vs baseline" in printed and "left out" in printed


def test_compare_converts_bpb_when_val_loss_missing(tmp_path):
    folder, loss = make_run(tmp_path, "a", 0, 1.2)
    data = json.loads((folder / "results.json").read_text())
    del data["val_loss"]
    (folder / "results.json").write_text(json.dumps(data))
    other, loss2 = make_run(tmp_path, "a", 1, 1.21)
    out = tmp_path / "c.json"
    assert main(["compare", str(folder), str(other), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["submissions"]["a"]["val_loss_mean"] == pytest.approx((loss + loss2) / 2)


def test_compare_missing_results_is_bad_input(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and "Traceback" not in err
