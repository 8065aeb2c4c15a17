"""The result JSON of `harness eval` (DESIGN.md "Result JSON"; docs/EVALUATION.md)."""

from __future__ import annotations

from typing import Any

from harness import __version__

SCHEMA = 1
REQUIRED_KEYS = (
    "schema", "verdict", "reasons", "val_bpb", "val_loss", "tokens_scored", "bytes_scored",
    "code_bytes", "model_bytes", "total_bytes", "probes", "audit", "sandbox", "eval_seconds",
    "harness_version",
)


def build_result(*, reasons: list[str], complete: bool, val_bpb: float | None, val_loss: float | None,
                 tokens_scored: int, bytes_scored: int, code_bytes: int, model_bytes: int, cap_bytes: int,
                 probes: dict[str, dict[str, int]], audit: dict[str, Any], sandbox: bool,
                 eval_seconds: float, extra: dict[str, Any]) -> dict[str, Any]:
    """Accepted only with no reason against it and every target scored."""
    verdict = "accepted" if complete and not reasons else "rejected"
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "verdict": verdict,
        "reasons": list(reasons),
        "val_bpb": val_bpb,
        "val_loss": val_loss,
        "tokens_scored": int(tokens_scored),
        "bytes_scored": int(bytes_scored),
        "code_bytes": int(code_bytes),
        "model_bytes": int(model_bytes),
        "total_bytes": int(code_bytes + model_bytes),
        "cap_bytes": int(cap_bytes),
        "probes": probes,
        "audit": audit,
        "sandbox": "bwrap" if sandbox else "none",
        "eval_seconds": round(float(eval_seconds), 3),
        "harness_version": __version__,
    }
    result.update(extra)
    return result


def summary(result: dict[str, Any]) -> str:
    """A few lines for people."""
    bpb = result["val_bpb"]
    lines = [
        f"verdict: {result['verdict']}" + (f"  val_bpb {bpb:.6f}  val_loss {result['val_loss']:.6f}" if bpb is not None else ""),
        f"scored {result['tokens_scored']:,} tokens / {result['bytes_scored']:,} bytes in {result['eval_seconds']:.1f} s"
        f"  (sandbox: {result['sandbox']})",
        f"size: {result['total_bytes']:,} bytes = code {result['code_bytes']:,} + model {result['model_bytes']:,}"
        f"  (cap {result['cap_bytes']:,})",
        "probes: " + ", ".join(f"{k} {v['run']} run / {v['failed']} failed" for k, v in result["probes"].items()),
    ]
    audit = result["audit"]
    if audit.get("skipped"):
        lines.append(f"audit: skipped ({audit['skipped']})")
    else:
        lines.append(f"audit: {audit.get('errors')} errors, {audit.get('warnings')} warnings")
    # One line per reason: a reason may quote a submission's own output, which must not be
    # able to forge lines of this summary (e.g. a second "verdict: accepted").
    lines += [f"reason: {_one_line(r)}" for r in result["reasons"]]
    if not result.get("eval_config", {}).get("independent_probes", True):
        lines.append("warning: causality replays ran in the scoring worker (--same-worker-probes)")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
