"""Dynamic probes: replays that check causality and purity of score() (DESIGN.md).

Causality: pick a cut c in the request's scored target range; replace every token at
stream position >= c by another token (the same replacement wherever that position
appears, in every row), replay, and compare the log-probabilities of every target at
position <= c. The row that predicts position p only has inputs < p <= c, which the
replay left alone, so a causal predictor gives identical numbers. Because the
replacement is done in stream coordinates across rows, reading a later token from
another row of the batch is caught as well as reading it in one's own row.

Purity: replay the request unchanged; score() must not have changed any state.

Both compare the harness's float32 log_softmax of the scores. A replay has the same
shapes as the original call, so a deterministic predictor reproduces its numbers
bit for bit; PROBE_TOLERANCE (absolute, in nats) leaves room for nondeterministic
GPU kernels and is far below what any use of a future token gains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.plan import Score

PROBE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ProbeFailure:
    kind: str  # "causality" | "purity"
    request: int
    row: int
    position: int  # stream position of the target with the largest difference
    max_diff: float
    cut: int | None = None

    def reason(self) -> str:
        where = f"request {self.request}, row {self.row}, target position {self.position}"
        cut = f" (tokens from position {self.cut} on replaced)" if self.cut is not None else ""
        return (f"{self.kind} probe failed at {where}: log-probabilities differ by up to "
                f"{self.max_diff:.3g} nats (tolerance {PROBE_TOLERANCE:g}){cut}")


class ProbeSchedule:
    """Which requests get which probe: a seeded sample at `rate`, at least one of each kind.

    A sampled request gets one replay, the kinds alternating from a random start, so a
    rate of 0.05 costs about 5% more score() calls; at rate 1.0 (full verification)
    every request is replayed both ways.
    """

    def __init__(self, n_requests: int, rate: float, seed: int):
        rng = np.random.default_rng([seed, 1])
        sampled = np.flatnonzero(rng.random(n_requests) < rate)
        self.causality = np.zeros(n_requests, dtype=bool)
        self.purity = np.zeros(n_requests, dtype=bool)
        if rate >= 1.0:
            self.causality[:] = self.purity[:] = True
        else:
            start = int(rng.integers(2))
            self.causality[sampled[start::2]] = True
            self.purity[sampled[1 - start::2]] = True
        if rate > 0 and n_requests > 0:
            for mask in (self.causality, self.purity):
                if not mask.any():
                    mask[rng.integers(n_requests)] = True
        self.rng = np.random.default_rng([seed, 2])  # cuts and replacement tokens


def window_rows(stream: np.ndarray, step: Score) -> np.ndarray:
    """The request's input rows [B, T] (int64)."""
    return np.stack([stream[w.start:w.end] for w in step.windows]).astype(np.int64)


def perturbed_rows(stream: np.ndarray, step: Score, cut: int, vocab: int, rng: np.random.Generator) -> np.ndarray:
    """Rows with every token at stream position >= cut replaced by a different token."""
    last = max(w.end for w in step.windows)
    replaced = stream[cut:last].astype(np.int64)
    if len(replaced):
        replaced = (replaced + rng.integers(1, vocab, len(replaced))) % vocab
    rows = []
    for w in step.windows:
        row = stream[w.start:w.end].astype(np.int64)
        lo = max(cut, w.start)
        if lo < w.end:
            row[lo - w.start:] = replaced[lo - cut: w.end - cut]
        rows.append(row)
    return np.stack(rows)


def pick_cut(step: Score, rng: np.random.Generator) -> int:
    """A stream position inside the request's scored target range."""
    first = min(w.first_target for w in step.windows)
    last = max(w.end for w in step.windows)
    return int(rng.integers(first, last + 1))


def compare(kind: str, step: Score, original: np.ndarray, replay: np.ndarray, cut: int | None) -> ProbeFailure | None:
    """Compare log-probs [B, n, V] of the targets at positions <= cut (all of them for purity)."""
    worst: tuple[float, int, int] = (-1.0, 0, 0)
    for r, w in enumerate(step.windows):
        targets = np.arange(w.first_target, w.end + 1)
        keep = targets <= cut if cut is not None else np.ones(len(targets), dtype=bool)
        if not keep.any():
            continue
        a, b = original[r, keep], replay[r, keep]
        with np.errstate(invalid="ignore"):
            diff = np.where(a == b, 0.0, np.abs(a - b))  # equal infinities are equal
        diff = np.where(np.isnan(diff), np.inf, diff).max(axis=-1)
        i = int(diff.argmax())
        if diff[i] > worst[0]:
            worst = (float(diff[i]), r, int(targets[keep][i]))
    if worst[0] > PROBE_TOLERANCE:
        return ProbeFailure(kind, step.index, worst[1], worst[2], worst[0], cut)
    return None
