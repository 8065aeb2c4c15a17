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


def test_audit_flags_the_target_keyed_cache(tmp_path, capsys):
    code, report = _audited("ngram_target_key", tmp_path, capsys)
    assert code == 1
    assert any(f["tag"] == "target_in_key_ngram" and f["severity"] == "error" and f["reach"] == "active"
               for f in report["findings"]), report["findings"]


def test_run_copy_does_not_follow_symlinks_out_of_the_folder(redteam_data, tmp_path):
    """`harness run` copies the submission into its run folder before training and scoring."""
    import dataclasses

    from harness.errors import BadInput
    from harness.pipeline import Pipeline, RunSettings
    from tests.adversarial.runner import Listeners, World, assemble

    world = World(tmp_path / "case", redteam_data.dataset_dir, redteam_data.tokenizer)
    listeners = Listeners()
    try:
        assemble(expectations()["honest_plain"], world, redteam_data.vocab, listeners)
        (world.submission / "notes.txt").symlink_to(world.secret_file)
        known = dict(submission=str(world.submission), preset="smoke", seed=1, sandbox=True, nproc=1, device="cpu",
                     data=str(redteam_data.dataset_dir), tokenizer=str(redteam_data.tokenizer), probe_rate=1.0)
        settings = RunSettings(**{f.name: known.get(f.name) for f in dataclasses.fields(RunSettings)})
        try:
            Pipeline(settings, world.run_dir).copy_submission()
        except BadInput:
            return  # refusing the symlink is a fine answer
        copied = [p for p in (world.run_dir / "submission").rglob("*") if p.is_file() and not p.is_symlink()]
        leaked = [p for p in copied if world.secret.encode() in p.read_bytes()]
        assert not leaked, f"host file copied into the run's submission: {leaked}"
    finally:
        listeners.close()
        world.cleanup()
