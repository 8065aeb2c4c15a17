"""Files the auditor cannot read, or that make one of its rules fail, are reported as
errors, never dropped: a submission must not pass because the auditor gave up."""

from __future__ import annotations

import json

from auditors import audit_path
from auditors.engine import analyze_source


def test_a_file_python_cannot_parse_is_an_active_error(tmp_path):
    bad = tmp_path / "train_gpt.py"
    bad.write_text("def broken(:\n    pass\n" * 60)  # more broken lines than the tolerant parser replaces
    report = audit_path(bad, use_cache=False)
    assert [(f.rule, f.severity, f.reach) for f in report.findings] == [("unparsable-code", "error", "active")]
    assert report.active_errors == 1


def test_a_rule_that_fails_is_reported_and_the_others_still_run(monkeypatch):
    from auditors import rules
    from auditors.rules import network_at_eval

    def explode(m):
        raise KeyError("surprise")

    real = rules.all_rules()
    monkeypatch.setattr("auditors.rules.all_rules", lambda: [network_at_eval] + [r for r in real if r is not network_at_eval])
    monkeypatch.setattr(network_at_eval, "check", explode)
    source = ("import torch.nn.functional as F\nimport numpy as np\n"
              "def f(model, opt):\n"
              "    val = np.fromfile('data/fineweb_val_000000.bin', dtype=np.uint16)\n"
              "    F.cross_entropy(model(val), val).backward()\n")
    facts = analyze_source(source)
    failed = [f for f in facts["findings"] if f["rule"] == "unparsable-code"]
    assert len(failed) == 1 and "network-at-eval" in failed[0]["message"] and "KeyError" in failed[0]["message"]
    assert failed[0]["severity"] == "error"
    assert any(f["rule"] == "ttt-before-score" for f in facts["findings"])  # the rules after it ran
    json.dumps(facts)  # the facts stay cacheable


def test_deep_expressions_are_analysed_or_reported(tmp_path):
    deep = tmp_path / "deep.py"
    deep.write_text("x = " + " + ".join(["1"] * 5000) + "\n")  # deeper than the default recursion limit
    assert audit_path(deep, use_cache=False).findings == []
    deeper = tmp_path / "deeper.py"
    deeper.write_text("x = " + " + ".join(["1"] * 60000) + "\n")  # deeper than any parser goes
    found = audit_path(deeper, use_cache=False).findings
    assert [(f.rule, f.severity) for f in found] == [("unparsable-code", "error")]
