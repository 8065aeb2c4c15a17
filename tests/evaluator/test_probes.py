"""Probe mechanics: replacements in stream coordinates, comparison, sampling."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from harness.plan import Score, plan
from harness.probes import PROBE_TOLERANCE, ProbeSchedule, compare, perturbed_rows, pick_cut, window_rows

requests = st.tuples(st.integers(20, 300), st.integers(4, 40), st.integers(1, 4), st.integers(0, 2**31))


def _some_request(n, seq_len, batch, seed) -> Score:
    steps = [s for s in plan(n, seq_len, max(1, seq_len // 4), None, batch) if isinstance(s, Score)]
    return steps[seed % len(steps)]


@settings(max_examples=200, deadline=None)
@given(requests)
def test_perturbation_is_consistent_across_rows_and_only_from_the_cut(args):
    n, seq_len, batch, seed = args
    rng = np.random.default_rng(seed)
    vocab = 7
    stream = rng.integers(0, vocab, n)
    step = _some_request(n, seq_len, batch, seed)
    cut = pick_cut(step, rng)
    assert min(w.first_target for w in step.windows) <= cut <= max(w.end for w in step.windows)
    rows = window_rows(stream, step)
    new = perturbed_rows(stream, step, cut, vocab, rng)
    seen: dict[int, int] = {}
    for r, w in enumerate(step.windows):
        positions = np.arange(w.start, w.end)
        assert (new[r][positions < cut] == rows[r][positions < cut]).all()
        assert (new[r][positions >= cut] != rows[r][positions >= cut]).all()
        assert ((0 <= new[r]) & (new[r] < vocab)).all()
        for p, tok in zip(positions, new[r]):
            assert seen.setdefault(int(p), int(tok)) == int(tok)  # same token for the same position


def test_compare_names_row_position_and_difference():
    step = _some_request(200, 16, 3, 5)
    original = np.zeros((len(step.windows), step.n_last, 5), dtype=np.float32)
    replay = original.copy()
    w = step.windows[-1]
    replay[-1, 0, 2] = 0.5  # the first target of the last row
    failure = compare("purity", step, original, replay, None)
    assert (failure.row, failure.position, failure.max_diff) == (len(step.windows) - 1, w.first_target, 0.5)
    assert "row" in failure.reason() and str(w.first_target) in failure.reason()
    # a difference after the cut is allowed for causality, and tiny ones always
    assert compare("causality", step, original, replay, w.first_target - 1) is None
    replay[-1, 0, 2] = PROBE_TOLERANCE / 2
    assert compare("purity", step, original, replay, None) is None


@given(st.integers(1, 500), st.floats(0, 1), st.integers(0, 100))
def test_schedule_is_seeded_and_probes_at_least_once(n, rate, seed):
    a, b = ProbeSchedule(n, rate, seed), ProbeSchedule(n, rate, seed)
    assert (a.causality == b.causality).all() and (a.purity == b.purity).all()
    if rate > 0:
        assert a.causality.any() and a.purity.any()
    else:
        assert not a.causality.any() and not a.purity.any()
    if rate == 1:
        assert a.causality.all() and a.purity.all()
    elif n >= 100 and rate >= 0.2:  # one replay per sampled request
        both = int((a.causality & a.purity).sum())
        assert both <= 2  # only where the at-least-one rule had to add a kind
        assert abs((a.causality | a.purity).mean() - rate) < 0.2


def test_equal_infinite_log_probs_are_equal():
    step = _some_request(200, 16, 3, 5)
    original = np.zeros((len(step.windows), step.n_last, 5), dtype=np.float32)
    original[..., 1] = -np.inf
    assert compare("purity", step, original, original.copy(), None) is None
    replay = original.copy()
    replay[0, 0, 1] = 0.0
    assert compare("purity", step, original, replay, None).max_diff == np.inf
