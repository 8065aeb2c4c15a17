"""Property tests of harness.plan: the four invariants of DESIGN.md "The strict protocol"."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.errors import BadInput
from harness.plan import Observe, Score, plan

plan_args = st.integers(1, 64).flatmap(
    lambda seq_len: st.tuples(
        st.integers(2, 400),  # n_tokens
        st.just(seq_len),
        st.integers(1, seq_len),  # stride
        st.one_of(st.none(), st.integers(1, 150)),  # ttt_chunk
        st.integers(1, 5),  # batch_seqs
    )
)


def _scored_positions(step: Score) -> list[int]:
    return [p for w in step.windows for p in range(w.first_target, w.end + 1)]


@settings(max_examples=300, deadline=None)
@given(plan_args)
def test_every_target_scored_exactly_once_with_maximal_context(args):
    n_tokens, seq_len, stride, ttt_chunk, batch_seqs = args
    counts = np.zeros(n_tokens, dtype=np.int64)
    for step in plan(*args):
        if isinstance(step, Score):
            assert 1 <= len(step.windows) <= batch_seqs
            for w in step.windows:
                assert (w.length, w.n_score) == (step.length, step.n_last)  # one tensor per request
                assert w.start == max(0, w.end - seq_len)  # maximal left context
                assert 1 <= w.n_score <= w.length <= seq_len
                assert w.n_score <= max(stride, seq_len if w.start == 0 else stride)
            counts[_scored_positions(step)] += 1
    assert counts[0] == 0  # the opening BOS is never a target
    assert (counts[1:] == 1).all()


@settings(max_examples=300, deadline=None)
@given(plan_args)
def test_request_holds_only_tokens_before_its_last_target(args):
    for step in plan(*args):
        if isinstance(step, Score):
            last_target = max(w.end for w in step.windows)
            for w in step.windows:
                assert w.end <= last_target  # inputs are positions start..end-1 < last target


@settings(max_examples=300, deadline=None)
@given(plan_args)
def test_observe_only_scored_tokens_in_order_without_gaps(args):
    n_tokens, _, _, ttt_chunk, _ = args
    scored = np.zeros(n_tokens, dtype=bool)
    scored[0] = True  # context, never a target: observable from the start
    next_start = 0
    observes = 0
    for step in plan(*args):
        if isinstance(step, Score):
            positions = _scored_positions(step)
            assert not scored[positions].any()  # scored before any observe of them
            scored[positions] = True
            # chunk discipline: nothing observed yet may be a target of this request
            assert min(positions) >= next_start
        else:
            assert isinstance(step, Observe)
            assert step.start == next_start and step.end > step.start
            assert scored[step.start:step.end].all()
            next_start = step.end
            observes += 1
    if ttt_chunk is None:
        assert observes == 0
    else:
        assert next_start == n_tokens  # the spans tile the stream
        assert observes == -(-(n_tokens - 1) // ttt_chunk)


def _causal_scores(tokens: np.ndarray, row: np.ndarray, n_last: int) -> np.ndarray:
    """A causal toy predictor: output i of a row depends on row[..i] only."""
    return np.cumsum(row * 7 + 3)[-n_last:]


@settings(max_examples=150, deadline=None)
@given(plan_args, st.integers(0, 2**32 - 1))
def test_causal_predictor_scores_do_not_change_when_later_tokens_change(args, seed):
    n_tokens = args[0]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 50, n_tokens)
    y = x.copy()
    cut = int(rng.integers(1, n_tokens))
    y[cut:] = rng.integers(0, 50, n_tokens - cut)
    for step in plan(*args):
        if isinstance(step, Score):
            for w in step.windows:
                a = _causal_scores(x, x[w.start:w.end], w.n_score)
                b = _causal_scores(y, y[w.start:w.end], w.n_score)
                targets = np.arange(w.first_target, w.end + 1)
                assert (a[targets <= cut] == b[targets <= cut]).all()


def test_official_defaults_match_the_published_sliding_window():
    steps = [s for s in plan(2048 * 3 + 1, 2048, 64, None, 1000)]
    windows = [w for s in steps for w in s.windows]
    assert (windows[0].start, windows[0].end, windows[0].n_score) == (0, 2048, 2048)
    assert (windows[1].start, windows[1].end, windows[1].n_score) == (64, 2048 + 64, 64)
    assert windows[-1].end == 2048 * 3 and all(w.length == 2048 for w in windows)


def test_stride_equal_to_seq_len_gives_non_overlapping_windows():
    windows = [w for s in plan(1001, 100, 100, None, 3) for w in s.windows]
    assert [(w.start, w.end) for w in windows] == [(i * 100, i * 100 + 100) for i in range(10)]


@pytest.mark.parametrize("kwargs, field", [
    (dict(seq_len=0), "seq_len"), (dict(stride=0), "stride"), (dict(stride=9, seq_len=8), "stride"),
    (dict(ttt_chunk=0), "ttt_chunk"), (dict(batch_seqs=0), "batch_seqs"), (dict(n_tokens=1), "at least 2"),
])
def test_bad_plan_arguments_are_bad_input_naming_the_field(kwargs, field):
    args = dict(n_tokens=100, seq_len=8, stride=4, ttt_chunk=None, batch_seqs=2) | kwargs
    with pytest.raises(BadInput, match=field):
        plan(**args)
