"""`harness compare RUN... [--baseline RUN...] [--json OUT]`: seeds and submissions side by side.

Each RUN is a run folder (holding results.json) or a results.json file. Runs are
grouped by submission; each group gets the mean and sample std of val_bpb and of
val_loss. With --baseline, every candidate group is tested against the baseline runs
with the README record rule (harness.stats.improvement_test): at least 0.005 nats
better, one-sided t-test, p < 0.01. The unit of that test is nats per token, taken
from each run's val_loss (or converted from val_bpb with its token and byte counts).
Only accepted runs enter the statistics; rejected ones are listed and left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.errors import EXIT_OK, BadInput


def configure(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders or results.json files")
    parser.add_argument("--baseline", nargs="+", metavar="RUN", default=[],
                        help="baseline run folders (e.g. the current record over several seeds)")
    parser.add_argument("--json", metavar="OUT", help="also write the comparison as JSON")
    parser.add_argument("--margin", type=float, default=None, help="required improvement in nats (default 0.005)")
    parser.add_argument("--alpha", type=float, default=None, help="significance level (default 0.01)")


def load_run(path: str | Path) -> dict:
    """One run's summary: submission, verdict, val_bpb, val_loss (nats/token), path."""
    from harness.stats import nats_from_bpb

    p = Path(path)
    file = p / "results.json" if p.is_dir() else p
    try:
        res = json.loads(file.read_text())
    except FileNotFoundError:
        raise BadInput(f"{file}: no results.json (is this a run folder?)") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"{file}: not a readable results JSON ({e.__class__.__name__})") from None
    if not isinstance(res, dict) or "verdict" not in res:
        raise BadInput(f"{file}: not a results JSON (no verdict)")
    run = res.get("run") if isinstance(res.get("run"), dict) else {}
    name = run.get("submission") or res.get("submission") or (p.name if p.is_dir() else p.parent.name)
    bpb, loss = res.get("val_bpb"), res.get("val_loss")
    tokens, n_bytes = res.get("tokens_scored") or 0, res.get("bytes_scored") or 0
    if not isinstance(loss, (int, float)) and isinstance(bpb, (int, float)) and tokens > 0 and n_bytes > 0:
        loss = nats_from_bpb(bpb, tokens, n_bytes)
    usable = res["verdict"] == "accepted" and all(
        isinstance(v, (int, float)) and math.isfinite(v) for v in (bpb, loss))
    return {"path": str(file.parent if file.name == "results.json" else file), "submission": name,
            "seed": run.get("seed"), "verdict": res["verdict"], "val_bpb": bpb, "val_loss": loss,
            "usable": usable}


def summarize(runs: list[dict]) -> dict:
    from harness.stats import mean_std

    used = [r for r in runs if r["usable"]]
    out = {"n": len(used), "runs": [r["path"] for r in used],
           "left_out": [f"{r['path']} ({r['verdict']})" for r in runs if not r["usable"]]}
    for key in ("val_bpb", "val_loss"):
        m, s = mean_std([r[key] for r in used]) if used else (math.nan, math.nan)
        out[f"{key}_mean"], out[f"{key}_std"] = _num(m), _num(s)
    return out


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def compare(runs: list[dict], baseline: list[dict], margin: float | None, alpha: float | None) -> dict:
    from harness.stats import RECORD_ALPHA, RECORD_MARGIN_NATS, improvement_test

    margin = RECORD_MARGIN_NATS if margin is None else margin
    alpha = RECORD_ALPHA if alpha is None else alpha
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(r["submission"], []).append(r)
    result = {"schema": 1, "unit": "nats/token (val_loss)", "margin_nats": margin, "alpha": alpha,
              "submissions": {name: summarize(rs) for name, rs in groups.items()},
              "baseline": summarize(baseline) if baseline else None, "tests": {}}
    base_losses = [r["val_loss"] for r in baseline if r["usable"]]
    if baseline and not base_losses:
        raise BadInput("--baseline: no accepted baseline run to compare against")
    for name, rs in groups.items():
        cand = [r["val_loss"] for r in rs if r["usable"]]
        if base_losses and cand:
            result["tests"][name] = improvement_test(cand, base_losses, margin, alpha).to_dict()
    return result


def render(result: dict) -> str:
    def fmt(x, d=5):
        return "   n/a " if x is None else f"{x:.{d}f}"

    rows = [f"{'submission':<24} {'n':>3} {'val_bpb mean':>13} {'std':>9} {'val_loss mean':>14} {'std':>9}"]
    items = list(result["submissions"].items())
    if result["baseline"]:
        items.append(("(baseline)", result["baseline"]))
    for name, s in items:
        rows.append(f"{name:<24} {s['n']:>3} {fmt(s['val_bpb_mean']):>13} {fmt(s['val_bpb_std']):>9} "
                    f"{fmt(s['val_loss_mean']):>14} {fmt(s['val_loss_std']):>9}")
        rows += [f"    left out: {x}" for x in s["left_out"]]
    for name, t in result["tests"].items():
        verdict = "SIGNIFICANT" if t["significant"] else "not significant"
        p = "untestable (need >= 2 runs with spread)" if t["p"] is None else f"p = {t['p']:.4g}"
        rows.append(f"{name} vs baseline: improvement {t['delta']:+.5f} nats/token "
                    f"(needs >= {result['margin_nats']}), {p}, alpha {result['alpha']}: {verdict}")
    return "\n".join(rows)


def run(args) -> int:
    from harness.atomic import atomic_write_json

    result = compare([load_run(p) for p in args.runs], [load_run(p) for p in args.baseline],
                     args.margin, args.alpha)
    print(render(result))
    if args.json:
        atomic_write_json(args.json, result)
    return EXIT_OK
