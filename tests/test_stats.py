"""The A/B statistics: checked against scipy, hand-computed values and constructed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from workbench import stats


def _normal(seed, n, loc=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(loc, scale, n)


# ------------------------------------------------------------ rows and repeats


def test_row_means_ignore_none_and_nan_and_drop_all_error_rows():
    means = stats.row_means({"r1": [1, 0, None], "r2": [0.5, float("nan")], "r3": [None, None], "r4": 0.25})
    assert means == {"r1": 0.5, "r2": 0.5, "r4": 0.25}


def test_flaky_row_shows_spread_and_statistics_use_row_means():
    spread = stats.row_spread({"flaky": [1, 0, 0], "solid": [1, 1, 1], "broken": [None, None]})
    assert spread["flaky"]["pass_fraction"] == pytest.approx(1 / 3)
    assert spread["flaky"]["flaky"] is True
    assert (spread["flaky"]["n"], spread["flaky"]["min"], spread["flaky"]["max"]) == (3, 0.0, 1.0)
    assert spread["solid"]["flaky"] is False and spread["solid"]["pass_fraction"] == 1.0
    assert spread["broken"] == {
        "n": 0,
        "errors": 2,
        "mean": None,
        "min": None,
        "max": None,
        "pass_fraction": None,
        "flaky": False,
    }

    # 12 rows, 3 repeats each: A passes everything, B is flaky (1 of 3) on the first 4 rows.
    a = {i: [1, 1, 1] for i in range(12)}
    b = {i: ([1, 0, 0] if i < 4 else [1, 1, 1]) for i in range(12)}
    (result,) = stats.compare_variants({"A": a, "B": b}, baseline="A", kind="pass")
    assert result.n == 12  # rows, not 36 repeats
    assert result.mean_b == pytest.approx((4 / 3 + 8) / 12)
    assert result.diff == pytest.approx(-(4 * 2 / 3) / 12)
    assert result.losses == 4 and result.wins == 0
    assert "pass rates" in result.test  # fractional rows: permutation on rates, not McNemar
    # Exact sign flips: only the 4 equal nonzero differences matter, all-negative or all-positive.
    assert result.p_value == pytest.approx(2 / 16)


# ------------------------------------------------------------ intervals


def test_mean_ci_matches_scipy_percentile_bootstrap():
    x = _normal(1, 50, loc=3.0)
    ours = stats.mean_ci(x, n_boot=20000, seed=3)
    ref = sp.bootstrap(
        (x,), np.mean, method="percentile", n_resamples=20000, rng=np.random.default_rng(4)
    ).confidence_interval
    assert ours.mean == pytest.approx(x.mean())
    assert ours.n == 50
    assert ours.low == pytest.approx(ref.low, abs=0.02)
    assert ours.high == pytest.approx(ref.high, abs=0.02)


def test_mean_ci_edge_cases():
    assert stats.mean_ci([]) == (None, None, None, 0)
    assert stats.mean_ci([None, float("nan")]) == (None, None, None, 0)
    assert stats.mean_ci([0.7]) == (0.7, None, None, 1)
    assert stats.mean_ci([2, 2, 2]) == (2.0, 2.0, 2.0, 3)


def test_wilson_ci_known_value():
    # 8 of 10, 95%: the textbook Wilson interval is (0.490, 0.943).
    low, high = stats.wilson_ci(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = stats.wilson_ci(0, 5)
    assert low == 0.0 and 0 < high < 1  # no zero-width interval at 0/n
    assert stats.wilson_ci(0, 0) == (None, None)


# ------------------------------------------------------------ paired tests


def test_identical_variants_show_no_difference():
    a = list(_normal(5, 40))
    result = stats.paired_difference(a, list(a))
    assert result.diff == 0 and result.ci_low <= 0 <= result.ci_high and result.p_value == 1.0
    assert (result.wins, result.ties, result.losses) == (0, 40, 0)

    # Row-level noise (sd 0.5) around a true difference of 0.01: far below what 40 rows can see.
    noise = _normal(6, 40, scale=0.5)
    b = np.array(a) + (noise - noise.mean()) + 0.01
    result = stats.paired_difference(a, b)
    assert result.ci_low < 0 < result.ci_high and result.p_value > 0.5
    assert stats.verdict("correctness", result).startswith("no detectable difference")


def test_large_shift_is_detected():
    base = _normal(7, 30)
    a = base + _normal(8, 30, scale=0.3)
    b = base + 1.0 + _normal(9, 30, scale=0.3)
    result = stats.paired_difference(a, b)
    assert result.p_value < 0.01
    assert 0 < result.ci_low < result.diff < result.ci_high
    assert result.test.startswith("paired permutation (10000")
    text = stats.verdict("correctness", result)
    assert text.startswith("B is better than A on correctness (+")
    assert "95% CI +" in text and "p<0.001" in text
    worse = stats.verdict("correctness", stats.paired_difference(b, a))
    assert worse.startswith("B is worse than A on correctness (\u2212")


def test_permutation_p_value_matches_scipy_exact_and_random():
    def statistic(x, y):
        return np.mean(x - y)

    a, b = _normal(10, 12), _normal(11, 12, loc=0.6)
    ours = stats.paired_difference(a, b)
    ref = sp.permutation_test((b, a), statistic, permutation_type="samples", n_resamples=np.inf)
    assert ours.test == "paired permutation (exact)"
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-9)

    a, b = _normal(12, 40), _normal(13, 40, loc=0.35)
    ours = stats.paired_difference(a, b, n_perm=20000)
    ref = sp.permutation_test(
        (b, a), statistic, permutation_type="samples", n_resamples=20000, rng=np.random.default_rng(0)
    )
    assert 0.005 < ref.pvalue < 0.5  # a p-value where Monte Carlo error is visible
    assert ours.p_value == pytest.approx(ref.pvalue, abs=0.015)


def test_paired_difference_drops_missing_rows_and_handles_tiny_n():
    result = stats.paired_difference([1.0, None, 0.5, float("nan")], [1.0, 0.2, None, 0.3])
    assert (result.n, result.dropped) == (1, 3)
    assert result.ci_low is None and result.p_value == 1.0
    warnings = stats.warnings_for(result)
    assert any("only 1 paired row" in w for w in warnings)
    assert any("3 rows dropped" in w for w in warnings)
    assert "no 95% CI from 1 row" in stats.verdict("accuracy", result)

    empty = stats.paired_difference([None, None], [1, None])
    assert (empty.n, empty.dropped, empty.diff, empty.p_value) == (0, 2, None, None)
    assert stats.warnings_for(empty) == ["no rows where both variants have a value: nothing to compare"]
    assert stats.verdict("accuracy", empty).startswith("cannot compare")
    assert stats.paired_difference([], []).n == 0

    with pytest.raises(ValueError):
        stats.paired_difference([1, 2], [1])


def test_results_are_deterministic_under_a_seed():
    a, b = _normal(14, 60), _normal(15, 60, loc=0.2)
    first = stats.paired_difference(a, b, seed=42)
    assert stats.paired_difference(a, b, seed=42) == first
    other = stats.paired_difference(a, b, seed=43)
    assert (other.ci_low, other.p_value) != (first.ci_low, first.p_value)
    assert stats.mean_ci(a, seed=1) == stats.mean_ci(a, seed=1)
    values = {"A": dict(enumerate(a)), "B": dict(enumerate(b))}
    shuffled = {"A": dict(reversed(list(values["A"].items()))), "B": values["B"]}
    assert stats.compare_variants(values, "A", seed=9) == stats.compare_variants(shuffled, "A", seed=9)


def test_mcnemar_exact_against_hand_computation():
    # 10 concordant rows, B-only passes on 1 row, A-only passes on 7.
    a = [1] * 5 + [0] * 5 + [0] + [1] * 7
    b = [1] * 5 + [0] * 5 + [1] + [0] * 7
    result = stats.mcnemar(a, b)
    # Two-sided exact: 2 * P(X <= 1), X ~ Binomial(8, 1/2) = 2 * (1 + 8) / 256.
    assert result.p_value == pytest.approx(18 / 256)
    assert (result.b_only, result.a_only, result.n, result.exact, result.statistic) == (1, 7, 18, True, 1.0)


def test_mcnemar_chi_square_for_many_discordant_rows():
    a = [0] * 30 + [1] * 10 + [1] * 20
    b = [1] * 30 + [0] * 10 + [1] * 20
    result = stats.mcnemar(a, b)
    assert not result.exact and (result.b_only, result.a_only) == (30, 10)
    assert result.statistic == pytest.approx((20 - 1) ** 2 / 40)
    assert result.p_value == pytest.approx(sp.chi2.sf(361 / 40, 1))
    assert stats.mcnemar([1, 0, None], [1, 0, 1]) == (0.0, 1.0, 0, 0, 2, True)


def test_sign_test_matches_scipy_binomtest():
    for wins, losses in [(9, 1), (3, 3), (0, 6), (14, 5), (1, 0)]:
        a = [0.0] * (wins + losses) + [0.5, 0.5]
        b = [1.0] * wins + [-1.0] * losses + [0.5, 0.5]
        result = stats.sign_test(a, b)
        assert (result.wins, result.losses, result.ties, result.n) == (wins, losses, 2, wins + losses)
        assert result.p_value == pytest.approx(sp.binomtest(wins, wins + losses, 0.5).pvalue)
    assert stats.sign_test([1, 2], [1, 2]).p_value is None


# ------------------------------------------------------------ several variants


def test_compare_variants_pass_uses_mcnemar_and_holm_for_three_variants():
    rows = range(40)
    base = {r: [1 if r % 2 else 0] for r in rows}
    same = {r: [v[0]] for r, v in base.items()}
    better = {r: [1 if (r % 2 or r < 30) else 0] for r in rows}  # fixes 15 failing rows
    results = stats.compare_variants({"v1": base, "v2": same, "v3": better}, baseline="v1", kind="pass")
    assert [r.variant for r in results] == ["v2", "v3"]
    same_r, better_r = results
    assert better_r.test == "McNemar exact"
    assert better_r.p_value == pytest.approx(
        stats.mcnemar([base[r][0] for r in rows], [better[r][0] for r in rows]).p_value
    )
    assert better_r.p_value == pytest.approx(2 * 0.5**15)
    # Holm: the smaller p is multiplied by 2, the larger by 1 (and kept monotone).
    assert better_r.p_adjusted == pytest.approx(2 * better_r.p_value)
    assert same_r.p_adjusted == 1.0
    note = stats.multiple_comparisons_note(results)
    assert note is not None and "Holm" in note and "v1" in note
    text = stats.verdict("valid_json", better_r)
    assert text.startswith("v3 is better than v1 on valid_json (+37.5 pp")
    assert "Holm-adjusted p<0.001" in text

    (two,) = stats.compare_variants({"v1": base, "v3": better}, baseline="v1", kind="pass")
    assert two.p_adjusted is None and stats.multiple_comparisons_note([two]) is None
    assert two.ci_low == better_r.ci_low  # adding a variant does not move another's interval


def test_compare_variants_counts_rows_missing_from_one_side():
    a = {"r1": [0.1], "r2": [0.2], "r3": [None]}
    b = {"r1": [0.3], "r2": [0.4], "r4": [0.9]}
    (result,) = stats.compare_variants({"A": a, "B": b}, baseline="A")
    assert (result.n, result.dropped) == (2, 2)
    assert result.diff == pytest.approx(0.2)
    with pytest.raises(ValueError):
        stats.compare_variants({"A": a, "B": b}, baseline="A", kind="rating")
    with pytest.raises(KeyError):
        stats.compare_variants({"A": a}, baseline="Z")


def test_warnings_flag_wide_intervals_but_not_a_solid_result():
    wide = stats.paired_difference([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1], [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0])
    assert any("of the scale" in w for w in stats.warnings_for(wide, scale=1.0))
    assert not any("of the scale" in w for w in stats.warnings_for(wide, scale=10.0))
    base = _normal(16, 50)
    solid = stats.paired_difference(base, base + 0.5 + _normal(17, 50, scale=0.1))
    assert stats.warnings_for(solid, scale=1.0) == []


# ------------------------------------------------------------ planning


def test_required_sample_size_normal_approximation():
    # ((1.95996 + 0.84162) * 1 / 0.5) ** 2 = 31.40 -> 32 rows.
    assert stats.required_sample_size(1.0, 0.5) == 32
    assert stats.required_sample_size(1.0, -0.5) == 32
    # Halving the detectable difference quadruples n (before rounding): 125.6 -> 126.
    assert stats.required_sample_size(1.0, 0.25) == 126
    assert stats.required_sample_size(0.0, 0.1) == 2
    # 0.5 -> 0.6, independent outcomes: 7.849 * (0.25 + 0.24) / 0.01 = 384.6 -> 385.
    assert stats.required_sample_size_proportions(0.5, 0.1) == 385
    # McNemar (Connor 1987), 20% discordant rows: (1.96*sqrt(.2) + 0.8416*sqrt(.19))**2 / .01 = 154.6.
    assert stats.required_sample_size_proportions(0.5, 0.1, p_discordant=0.2) == 155
    with pytest.raises(ValueError):
        stats.required_sample_size(1.0, 0)


# ------------------------------------------------------------ pairwise judge


def test_pairwise_outcome_cancels_position_bias():
    assert stats.pairwise_outcome("second", "first") == "B"  # B preferred in both orders
    assert stats.pairwise_outcome("first", "second") == "A"
    assert stats.pairwise_outcome("first", "first") == "tie"  # same position both times
    assert stats.pairwise_outcome("B", "A") == "B"  # A/B as position labels
    assert stats.pairwise_outcome("tie", "first") == "tie"
    assert stats.pairwise_outcome(None, "first") is None
    with pytest.raises(ValueError):
        stats.pairwise_outcome("better", "first")


def _judge(prefers):
    """A fake judge: given (first_content, second_content) returns a position verdict."""

    def judge(first, second):
        if prefers == "first":
            return "first"
        return "first" if first == prefers else "second"

    return judge


def test_position_biased_judge_gives_all_ties_and_consistent_judge_gives_b():
    for prefers, expected_rate in [("first", 0.5), ("B", 1.0), ("A", 0.0)]:
        judge = _judge(prefers)
        outcomes = [stats.pairwise_outcome(judge("A", "B"), judge("B", "A")) for _ in range(20)]
        rate, low, high, counts = stats.pairwise_win_rate(outcomes)
        assert rate == expected_rate
        assert low <= rate <= high
        if prefers == "first":
            assert counts["tie"] == 20
    rate, low, high, counts = stats.pairwise_win_rate(["B"] * 20)
    assert (low, high) == pytest.approx(stats.wilson_ci(20, 20)) and high == 1.0 and low > 0.8
    assert counts == {"A": 0, "B": 20, "tie": 0, "n": 20, "missing": 0}


def test_pairwise_win_rate_counts_ties_as_half_and_skips_missing():
    result = stats.pairwise_win_rate(["B", "B", "A", "tie", None])
    assert result.win_rate == pytest.approx(2.5 / 4)
    assert result.counts == {"A": 1, "B": 2, "tie": 1, "n": 4, "missing": 1}
    empty = {"A": 0, "B": 0, "tie": 0, "n": 0, "missing": 1}
    assert stats.pairwise_win_rate([None]) == (None, None, None, empty)


# ------------------------------------------------------------ latency and cost


def test_summary_stats_percentiles_interpolate_like_numpy():
    values = list(range(1, 11)) + [None, float("nan")]
    summary = stats.summary_stats(values)
    assert summary == {"mean": 5.5, "p50": 5.5, "p95": pytest.approx(9.55), "n": 10, "missing": 2}
    assert summary["p95"] == pytest.approx(np.percentile(np.arange(1, 11), 95))
    assert stats.summary_stats([]) == {"mean": None, "p50": None, "p95": None, "n": 0, "missing": 0}
    assert stats.summary_stats([120.0]) == {"mean": 120.0, "p50": 120.0, "p95": 120.0, "n": 1, "missing": 0}
    assert math.isfinite(stats.summary_stats([1e9, 2e9])["p95"])
