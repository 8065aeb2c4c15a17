"""Controls that show the red-team checks can fail, and the static audit on the cases.

- Without the sandbox (--no-sandbox) the import-time escape does write a marker, reach
  the host listener and find the host secret: so "no marker, no contact, no secret"
  in test_submissions.py is a real observation, not a vacuous one.
- The static audit (harness audit / auditors.audit_path) must flag the PR #779
  construct of cases/ngram_target_key and stay quiet on the honest control.
"""

from __future__ import annotations

import json
import shutil

import pytest

from harness.cli import main
from tests.adversarial.runner import BASE_DIR, CASES_DIR, code_files, expectations, run_case


def test_detectors_see_an_unsandboxed_escape(redteam_data, tmp_path):
    out = run_case(expectations()["import_time_escape"], tmp_path / "case", redteam_data.dataset_dir,
                   redteam_data.tokenizer, redteam_data.vocab, extra=["--no-sandbox"])
    assert out.exit == 1 and out.result["sandbox"] == "none"
    assert out.markers, "the unsandboxed import wrote no marker"
    assert out.hits, "the unsandboxed import reached no listener"
    assert out.secret_seen_in, "the unsandboxed import's secret did not show in the output"


def _audited(name: str, tmp_path, capsys) -> tuple[int, dict]:
    """`harness audit --format json` on the case's code (the shared modules copied in)."""
    folder = tmp_path / name
    shutil.copytree(CASES_DIR / name, folder)
    for f in code_files(folder):
        if (BASE_DIR / f).is_file():
            shutil.copy(BASE_DIR / f, folder / f)
    capsys.readouterr()
    code = main(["audit", str(folder), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_audit_is_quiet_on_the_honest_controls(tmp_path, capsys):
    for name in ("honest_plain", "honest_ttt"):
        code, report = _audited(name, tmp_path, capsys)
        assert code == 0 and report["errors"] == 0, report["findings"]


@pytest.mark.xfail(strict=True, reason="HOLE: auditors/rules/target_keyed_cache.py does not flag "
                   "full_table[(ctx_key ^ (target * PRIME)) % BUCKETS] with min(full, ctx) / ctx "
                   "in tests/adversarial/cases/ngram_target_key/predictor.py")
def test_audit_flags_the_target_keyed_cache(tmp_path, capsys):
    code, report = _audited("ngram_target_key", tmp_path, capsys)
    assert code == 1
    assert any(f["tag"] == "target_in_key_ngram" and f["severity"] == "error" and f["reach"] == "active"
               for f in report["findings"]), report["findings"]
