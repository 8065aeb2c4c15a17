"""Findings and reports of the static audit (DESIGN.md "Static audit").

A rule produces `RawFinding`s while a file is analysed; they carry the guards around
the construct (enclosing `if` tests and the function they sit in), not a verdict on
reachability, so the per-file cache stays independent of the launch profile. The
resolver (`auditors.reach`) turns them into `Finding`s under a profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SEVERITIES = ("error", "warning", "info")
CONFIDENCES = ("high", "medium", "low")
REACHES = ("active", "dormant", "unknown")


@dataclass(frozen=True)
class RuleInfo:
    """What a rule is about: shown in reports and in SARIF rule metadata."""

    id: str
    tag: str  # RULES.md tag vocabulary
    title: str
    reference: str  # RULES.md section and PR numbers


@dataclass
class RawFinding:
    """A construct a rule found, before reachability is judged."""

    rule: str
    severity: str
    confidence: str
    line: int
    message: str
    function: str  # qualified name of the enclosing function, "<module>" at top level
    guards: list = field(default_factory=list)  # [[expr_source, polarity], ...] innermost last
    # functions at least one of which must also run for the construct to matter (a SmearGate
    # leaks across documents only where an evaluation splits the stream into documents)
    requires: list = field(default_factory=list)
    # a key that a settings file the folder ships must set to a remote address for the
    # construct to matter (`fsspec.open(source)` fetches only where `"source"` is a URL)
    setting: str = ""


@dataclass
class Finding:
    rule: str
    tag: str
    severity: str
    confidence: str
    reach: str
    condition: str | None
    path: str
    line: int
    message: str
    reference: str = ""
    source_line: str = ""

    def to_dict(self) -> dict:
        """DESIGN.md finding fields, plus the rule's reference."""
        d = asdict(self)
        d.pop("source_line")
        return d


@dataclass
class AuditReport:
    """All findings for one audited path under one profile."""

    path: str
    profile: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Error-level findings that are reachable (active) under the profile."""
        return [f for f in self.findings if f.severity == "error" and f.reach == "active"]

    @property
    def warnings(self) -> list[Finding]:
        """Everything worth a look that does not reject: warnings, dormant or unknown errors."""
        return [f for f in self.findings if f not in self.errors and f.severity != "info"]

    @property
    def active_errors(self) -> int:
        return len(self.errors)

    def to_dict(self) -> dict:
        return {
            "schema": 1,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }
