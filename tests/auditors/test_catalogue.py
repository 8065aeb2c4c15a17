"""Every rule the audit can report has its row in docs/AUDIT.md's catalogue (a row may
name several rules: `| record-format / record-claim / record-significance |`), and every
row names rules that exist."""

from __future__ import annotations

import re
from pathlib import Path

from auditors.rules import rule_info

DOC = Path(__file__).resolve().parents[2] / "docs" / "AUDIT.md"


def test_the_catalogue_lists_every_rule_and_only_rules():
    rows = re.findall(r"^\| ([a-z0-9 /-]+?) \| ([a-z_]+) \|", DOC.read_text(), re.M)
    documented = {(rule.strip(), tag) for names, tag in rows if names != "rule" for rule in names.split("/")}
    known = {(r.id, r.tag) for r in rule_info().values()}
    assert known - documented == set()
    assert documented - known == set()
