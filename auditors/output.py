"""Report formats: text for people, JSON (DESIGN.md), SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import json
from itertools import groupby

from auditors.model import AuditReport
from auditors.resolver import is_reason

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_text(report: AuditReport) -> str:
    lines = [f"audit of {report.path} (profile {report.profile})"]
    if not report.findings:
        lines.append("no findings")
    for path, group in groupby(report.findings, key=lambda f: f.path):
        lines.append(f"\n{path}")
        for f in group:
            reach = f.reach
            if f.condition and f.reach != "active":  # why it is not reached, or the guard that would reach it
                reach += f": {f.condition}" if is_reason(f.condition) or f.reach == "unknown" else f"; runs only if {f.condition}"
            lines.append(f"  {f.line:>5}: {f.severity.upper()} [{f.rule} / {f.tag}] ({reach}; confidence {f.confidence})")
            if f.source_line:
                lines.append(f"         | {f.source_line[:160]}")
            lines.append(f"         {f.message}")
            lines.append(f"         see {f.reference}")
    held = sum(f.severity == "error" for f in report.warnings)  # errors not reached under this profile
    lines.append(f"\n{len(report.errors)} active error(s), {held} dormant or unknown error(s), "
                 f"{len(report.warnings) - held} warning(s)")
    return "\n".join(lines) + "\n"


def to_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def _level(f) -> str:
    if f.severity == "error":
        return "error" if f.reach == "active" else "warning"
    return "warning" if f.severity == "warning" else "note"


def to_sarif(report: AuditReport) -> str:
    from auditors.rules import rule_info

    from harness import __version__

    infos = rule_info()
    rules = [{"id": r.id, "name": r.tag, "shortDescription": {"text": r.title},
              "fullDescription": {"text": f"{r.title} ({r.tag})"}, "help": {"text": f"See {r.reference}"},
              "properties": {"tags": [r.tag]}} for r in sorted(infos.values(), key=lambda r: r.id)]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for f in report.findings:
        uri = f.path.split("[unpacked")[0]
        msg = f.message + (f" (reach: {f.reach}" + (f", when {f.condition})" if f.condition else ")"))
        if "[unpacked" in f.path:
            msg += f" [line {f.line} of the unpacked code in {uri}]"
        res = {"ruleId": f.rule, "level": _level(f), "message": {"text": msg},
               "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                                   "region": {"startLine": max(1, f.line if "[unpacked" not in f.path else 1)}}}],
               "properties": {"tag": f.tag, "reach": f.reach, "confidence": f.confidence, "path": f.path, "line": f.line}}
        if f.rule in index:
            res["ruleIndex"] = index[f.rule]
        results.append(res)
    doc = {"version": "2.1.0", "$schema": SARIF_SCHEMA,
           "runs": [{"tool": {"driver": {"name": "pgolf-audit", "version": __version__,
                                         "informationUri": "https://github.com/openai/parameter-golf", "rules": rules}},
                     "results": results}]}
    return json.dumps(doc, indent=2) + "\n"
