"""improvement_test against hand-computed t statistics, and its monotonicity."""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from harness.errors import BadInput
from harness.stats import improvement_test, mean_std, nats_from_bpb


def hand_one_sample(xs, mu):
    n = len(xs)
    m = sum(xs) / n
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    t = (m - mu) / (s / math.sqrt(n))
    return t, sps.t.cdf(t, df=n - 1)


def test_one_sample_matches_hand_t_statistic():
    cand = [1.090, 1.094, 1.088, 1.091]
    base = 1.102
    res = improvement_test(cand, base)
    t, p = hand_one_sample(cand, base - 0.005)
    assert res.t == pytest.approx(t, rel=1e-9)
    assert res.p == pytest.approx(p, rel=1e-9)
    assert res.delta == pytest.approx(base - sum(cand) / 4)
    assert res.n == 4 and res.significant == (p < 0.01)


def test_welch_matches_hand_formula():
    cand = [1.080, 1.084, 1.079]
    base = [1.095, 1.099, 1.093, 1.097]
    res = improvement_test(cand, base, margin_nats=0.005)
    mc, sc = mean_std(cand)
    mb, sb = mean_std(base)
    va, vb = sc**2 / 3, sb**2 / 4
    t = (mc - (mb - 0.005)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    assert res.t == pytest.approx(t, rel=1e-9)
    assert res.p == pytest.approx(sps.t.cdf(t, df), rel=1e-6)
    assert res.significant


def test_improvement_below_margin_is_not_significant():
    # 0.003 nats better, very tight: clearly better, but not by 0.005.
    res = improvement_test([1.0970, 1.0971, 1.0969], 1.1000)
    assert res.delta == pytest.approx(0.003, abs=1e-9)
    assert not res.significant and res.p > 0.5


def test_single_run_is_untestable():
    res = improvement_test([1.0], 1.2)
    assert math.isnan(res.p) and not res.significant
    assert res.to_dict()["p"] is None


def test_bad_values_are_bad_input():
    with pytest.raises(BadInput):
        improvement_test([], 1.0)
    with pytest.raises(BadInput):
        improvement_test([1.0, float("nan")], 1.0)


def test_nats_from_bpb_round_trip():
    # 1000 tokens, 4000 bytes, total nll 2000 nats: bpb = 2000 / (ln2 * 4000)
    bpb = 2000 / (math.log(2) * 4000)
    assert nats_from_bpb(bpb, 1000, 4000) == pytest.approx(2.0)


samples = st.lists(st.floats(0.8, 1.4, allow_nan=False), min_size=2, max_size=8)


@settings(max_examples=60, deadline=None)
@given(samples, st.floats(0.8, 1.4), st.floats(0.0001, 0.05))
def test_shifting_candidates_down_increases_significance(cand, base, shift):
    assume(mean_std(cand)[1] > 1e-6)
    before = improvement_test(cand, base)
    after = improvement_test([c - shift for c in cand], base)
    assert after.p <= before.p + 1e-12
    assert after.delta == pytest.approx(before.delta + shift)
    if before.significant:
        assert after.significant


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_significant_implies_margin_cleared(cand, base):
    assume(mean_std(cand)[1] > 1e-6 and mean_std(base)[1] > 1e-6)
    res = improvement_test(cand, base)
    assert 0.0 <= res.p <= 1.0
    if res.significant:
        assert res.delta > 0.005
