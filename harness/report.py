"""A run's verdict, results.json, report.md and the closing terminal summary.

The verdict rule (DESIGN.md): a score is accepted only when the static audit has no
active error finding, every dynamic probe passed, the outputs were valid, and the
artifact (code bytes + model bytes) fits the cap. Each stage reports its own evidence;
this module only combines it, so one place decides.
"""

from __future__ import annotations

import math
from typing import Any

from harness.artifact import SIZE_CAP_BYTES

RESULTS_SCHEMA = 1


def active_errors(audit: dict) -> list[dict]:
    """Error findings the audit judged reachable under its launch profile."""
    return [f for f in audit.get("findings", [])
            if f.get("severity") == "error" and f.get("reach") == "active"]


def decide(eval_result: dict, audit: dict, cap: int = SIZE_CAP_BYTES) -> tuple[str, list[str]]:
    """(verdict, reasons) from the strict eval result and the static audit summary."""
    reasons = list(eval_result.get("reasons") or [])
    if eval_result.get("verdict") != "accepted" and not reasons:
        reasons.append("the evaluation did not accept the run")
    for f in active_errors(audit):
        reasons.append(f"static audit: {f.get('rule')} ({f.get('tag')}) at "
                       f"{f.get('path')}:{f.get('line')}: {f.get('message')}")
    for name, probe in (eval_result.get("probes") or {}).items():
        failed = int(probe.get("failed", 0))
        line = f"{name} probe failed {failed} of {probe.get('run')} time(s)"
        if failed and not any(name in r and "probe" in r for r in reasons):
            reasons.append(line)
    bpb = eval_result.get("val_bpb")
    if not isinstance(bpb, (int, float)) or not math.isfinite(bpb):
        if not any("score" in r for r in reasons):
            reasons.append("no valid score (val_bpb missing or not finite)")
    total = eval_result.get("total_bytes")
    if isinstance(total, int) and total > cap:
        if not any("cap" in r for r in reasons):
            reasons.append(f"artifact over the cap: {total:,} > {cap:,} bytes")
    return ("rejected" if reasons else "accepted"), reasons


def build_results(eval_result: dict, audit: dict, run_info: dict,
                  eval_no_ttt: dict | None = None, cap: int = SIZE_CAP_BYTES) -> dict:
    """results.json: the eval result JSON (DESIGN.md) with the audit summary merged in."""
    verdict, reasons = decide(eval_result, audit, cap)
    results: dict[str, Any] = dict(eval_result)
    results.update({
        "schema": RESULTS_SCHEMA,
        "verdict": verdict,
        "reasons": reasons,
        "audit": {
            "errors": len(active_errors(audit)),
            # the auditor's own count: warnings plus dormant or unknown errors
            "warnings": int(audit.get("warnings", sum(1 for f in audit.get("findings", [])
                                                      if f.get("severity") == "warning"))),
            "findings": list(audit.get("findings", [])),
        },
        "cap_bytes": cap,
        "run": run_info,
    })
    if eval_no_ttt is not None:
        results["no_ttt"] = {k: eval_no_ttt.get(k) for k in
                             ("val_bpb", "val_loss", "tokens_scored", "bytes_scored", "verdict")}
    return results


def _fmt(x, digits: int = 4) -> str:
    return "n/a" if not isinstance(x, (int, float)) else f"{x:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if not isinstance(seconds, (int, float)):
        return "n/a"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def render_markdown(results: dict, plots: dict[str, str]) -> str:
    """report.md for people; `plots` maps a caption to a PNG file name in the run folder."""
    run = results.get("run", {})
    lines = [f"# Run report: {run.get('submission', '?')} ({run.get('preset', '?')}, seed {run.get('seed', '?')})", ""]
    unsandboxed = " (UNSANDBOXED: evaluated with --no-sandbox)" if results.get("sandbox") == "none" else ""
    lines.append(f"**Verdict: {results['verdict'].upper()}**{unsandboxed}")
    lines += [f"- {r}" for r in results["reasons"]] or []
    lines += ["", "## Score", "", "| measure | value |", "|---|---|",
              f"| val_bpb (strict, submission's method) | {_fmt(results.get('val_bpb'))} |",
              f"| val_loss (nats/token) | {_fmt(results.get('val_loss'))} |"]
    no_ttt = results.get("no_ttt")
    if no_ttt:
        lines.append(f"| val_bpb without test-time training | {_fmt(no_ttt.get('val_bpb'))} |")
        if isinstance(no_ttt.get("val_bpb"), (int, float)) and isinstance(results.get("val_bpb"), (int, float)):
            lines.append(f"| TTT gain (BPB) | {_fmt(no_ttt['val_bpb'] - results['val_bpb'])} |")
    lines += [f"| tokens scored | {results.get('tokens_scored', 0):,} |",
              f"| bytes scored | {results.get('bytes_scored', 0):,} |", ""]
    cap = results.get("cap_bytes", SIZE_CAP_BYTES)
    total = results.get("total_bytes")
    lines += ["## Size", "", "| part | bytes |", "|---|---|",
              f"| code | {results.get('code_bytes', 0):,} |",
              f"| model (compressed artifact) | {results.get('model_bytes', 0):,} |",
              f"| total | {total if total is None else f'{total:,}'} |",
              f"| cap | {cap:,} |", ""]
    probes = results.get("probes") or {}
    lines += ["## Probes", ""]
    lines += [f"- {name}: {p.get('run', 0)} run, {p.get('failed', 0)} failed" for name, p in probes.items()]
    audit = results["audit"]
    lines += ["", "## Static audit", "",
              f"{audit['errors']} active error finding(s), {audit['warnings']} warning(s)."]
    for f in audit["findings"]:
        cond = f" (if {f['condition']})" if f.get("condition") else ""
        lines.append(f"- [{f.get('severity')}/{f.get('reach')}{cond}] {f.get('rule')} "
                     f"`{f.get('path')}:{f.get('line')}`: {f.get('message')}")
    ec = results.get("eval_config") or {}
    method = (f"seq_len {ec.get('seq_len')}, stride {ec.get('stride')}, ttt_chunk {ec.get('ttt_chunk')}, "
              f"probe rate {ec.get('probe_rate')}, time limit {ec.get('time_limit')} s")
    if run.get("smoke_eval_method"):
        method += (" (smoke preset: windows capped at the context the smoke model was trained on; "
                   "the full preset uses the submission's [eval] unchanged)")
    sandbox = results.get("sandbox")
    lines += ["", "## Run", "",
              f"- sandbox: {sandbox}" + (" (UNSANDBOXED: --no-sandbox)" if sandbox == "none" else ""),
              f"- eval method: {method}",
              f"- data: `{run.get('dataset_dir')}`; tokenizer: `{run.get('tokenizer_path')}`",
              f"- device: {run.get('device')}; preset: {run.get('preset')}"
              + (f" (steps overridden: {run['steps']})" if run.get("steps") else ""),
              f"- time per stage: " + ", ".join(f"{k} {_duration(v)}" for k, v in (run.get("stage_seconds") or {}).items()),
              f"- harness {results.get('harness_version')}", ""]
    if plots:
        lines += ["## Plots", ""]
        for caption, name in plots.items():
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    return "\n".join(lines)


def terminal_summary(results: dict, run_dir: str, elapsed: float) -> str:
    """The few lines `harness run` ends with; `elapsed` is this invocation's wall time."""
    total, cap = results.get("total_bytes"), results.get("cap_bytes", SIZE_CAP_BYTES)
    size = "n/a" if not isinstance(total, int) else f"{total:,} / {cap:,} bytes ({100 * total / cap:.1f}% of the cap)"
    bpb = _fmt(results.get("val_bpb"))
    no_ttt = results.get("no_ttt")
    if no_ttt:
        bpb += f" (without TTT: {_fmt(no_ttt.get('val_bpb'))})"
    run = results.get("run", {})
    out = [f"verdict: {results['verdict'].upper()}" + (" (UNSANDBOXED)" if results.get("sandbox") == "none" else "")]
    out += [f"  - {r}" for r in results["reasons"]]
    out += [f"val_bpb: {bpb}", f"size:    {size}",
            f"time:    {_duration(elapsed)} (all stages of the run: {_duration(run.get('wall_seconds'))})",
            f"report:  {run_dir}/report.md"]
    return "\n".join(out)
