"""Shared fixtures of the auditor tests."""

from __future__ import annotations

import pytest

from auditors import audit_path


@pytest.fixture
def audit_errors(tmp_path, monkeypatch):
    """Audit a text as a submission's train_gpt.py (with a cache of its own) under a launch
    environment: (line, tag, reach) of each error finding."""
    monkeypatch.setenv("PGOLF_AUDIT_CACHE", str(tmp_path / "c"))

    def run(text: str, env: dict | None = None) -> list[tuple[int, str, str]]:
        p = tmp_path / "train_gpt.py"
        p.write_text(text)
        return [(f.line, f.tag, f.reach) for f in audit_path(p, env=env or {}).findings if f.severity == "error"]
    return run
