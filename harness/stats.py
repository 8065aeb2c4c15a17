"""The challenge's significance rule for records, and small summary statistics.

README rule: a new record must beat the existing one by at least 0.005 nats, shown
at p < 0.01. The unit is nats per token (the `val_loss` of a run, lower is better).
We test it as a one-sided t-test of

    H0: mean(candidate) >= baseline - margin   against   H1: mean(candidate) < baseline - margin

- baseline given as one number (the published SOTA): one-sample t-test of the
  candidate runs against `baseline - margin`;
- baseline given as several runs (seeds): Welch's two-sample t-test of the
  candidate runs against the baseline runs shifted down by `margin`.

Scores are compared in nats/token because that is what the rule says; runs that
only report BPB are converted with `nats_from_bpb` (exact when the tokenizer and
validation set are the same, which is the only case where the comparison means
anything).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

from harness.errors import BadInput

RECORD_MARGIN_NATS = 0.005
RECORD_ALPHA = 0.01


@dataclass(frozen=True)
class ImprovementTest:
    mean: float  # mean candidate score (nats/token)
    std: float  # sample standard deviation of the candidate (ddof=1; nan for one run)
    n: int  # number of candidate runs
    delta: float  # improvement: mean(baseline) - mean(candidate); positive is better
    t: float  # t statistic of (candidate - (baseline - margin)); nan when untestable
    p: float  # one-sided p-value; nan when untestable (a single run, no spread)
    significant: bool  # p < alpha (which implies delta > margin)

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; nan for fewer than two values)."""
    xs = _finite_list(values, "values")
    m = math.fsum(xs) / len(xs)
    if len(xs) < 2:
        return m, math.nan
    var = math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(var)


def nats_from_bpb(bpb: float, tokens: int, n_bytes: int) -> float:
    """Per-token loss in nats from bits per byte: bpb * ln 2 * bytes / tokens."""
    if tokens <= 0 or n_bytes <= 0:
        raise BadInput(f"cannot convert bpb to nats with tokens={tokens}, bytes={n_bytes}")
    return bpb * math.log(2.0) * n_bytes / tokens


def improvement_test(candidate_nats: Sequence[float],
                     baseline_nats: float | Sequence[float],
                     margin_nats: float = RECORD_MARGIN_NATS,
                     alpha: float = RECORD_ALPHA) -> ImprovementTest:
    """Does the candidate beat the baseline by at least `margin_nats` at level `alpha`?"""
    from scipy import stats

    cand = _finite_list(candidate_nats, "candidate_nats")
    if isinstance(baseline_nats, (int, float)):
        base = [float(baseline_nats)]
    else:
        base = _finite_list(baseline_nats, "baseline_nats")
    mean, std = mean_std(cand)
    base_mean = math.fsum(base) / len(base)
    delta = base_mean - mean
    excess = delta - margin_nats  # > 0 when the improvement clears the margin

    spread_c = len(cand) >= 2 and std > 0
    spread_b = len(base) >= 2 and mean_std(base)[1] > 0
    if len(base) == 1:
        if not spread_c:
            return ImprovementTest(mean, std, len(cand), delta, math.nan, math.nan, False)
        res = stats.ttest_1samp(cand, popmean=base_mean - margin_nats, alternative="less")
    else:
        if len(cand) < 2 or not (spread_c or spread_b):
            return ImprovementTest(mean, std, len(cand), delta, math.nan, math.nan, False)
        shifted = [b - margin_nats for b in base]
        res = stats.ttest_ind(cand, shifted, equal_var=False, alternative="less")
    t, p = float(res.statistic), float(res.pvalue)
    significant = bool(p < alpha and excess > 0)
    return ImprovementTest(mean, std, len(cand), delta, t, p, significant)


def _finite_list(values, name: str) -> list[float]:
    try:
        xs = [float(v) for v in values]
    except (TypeError, ValueError):
        raise BadInput(f"{name}: expected a list of numbers") from None
    if not xs:
        raise BadInput(f"{name}: no values")
    if not all(math.isfinite(x) for x in xs):
        raise BadInput(f"{name}: values must be finite, got {xs}")
    return xs
