"""Each agreement statistic against a hand-worked example (the arithmetic is in the comments)."""

import pytest

from workbench import calibration


def test_spearman_and_kendall_hand_worked():
    judge, human = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    # rank differences -1, 1, -1, 1, 0: sum d^2 = 4; rho = 1 - 6*4 / (5*(25-1)) = 0.8
    assert calibration.spearman(judge, human) == pytest.approx(0.8)
    # 10 pairs, discordant (1,2) and (3,4): tau = (8 - 2) / 10
    assert calibration.kendall(judge, human) == pytest.approx(0.6)
    assert calibration.spearman([3, 3, 3], [1, 2, 3]) is None  # a constant judge has no correlation


def test_exact_and_within_1():
    assert calibration.exact([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.2)
    assert calibration.within_1([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(1.0)
    assert calibration.exact([4.5, 2.4], [5, 2]) == pytest.approx(1.0)  # 4.5 reads as 5


def test_kappa_unweighted_and_weighted():
    # po = 3/4; pe = .5*.25 + .5*.75 = .5; kappa = (.75 - .5) / .5
    assert calibration.kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    # judge 1,2,3 vs human 1,3,3. Linear: observed disagreement (1/2)/3 = 1/6, expected 1/2 -> 1 - 1/3
    assert calibration.kappa([1, 2, 3], [1, 3, 3], [1, 2, 3], "linear") == pytest.approx(2 / 3)
    # quadratic: observed 1/3, expected (8 + 1 + 2 + 4)/9 = 5/3 -> 1 - 1/5
    assert calibration.kappa([1, 2, 3], [1, 3, 3], [1, 2, 3], "quadratic") == pytest.approx(0.8)


def test_confusion_rows_are_human():
    matrix = calibration.confusion([1, 2, 3], [1, 3, 3], [1, 2, 3])
    assert matrix == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]


def test_precision_recall_hand_worked():
    judge, human = [True, True, False, True], [True, False, False, True]
    # TP 2, FP 1, FN 0
    assert calibration.precision(judge, human) == pytest.approx(2 / 3)
    assert calibration.recall(judge, human) == pytest.approx(1.0)
    assert calibration.precision([False, False], [True, False]) is None


def test_krippendorff_alpha_nominal_hand_worked():
    # coincidences: o11 = 2, o12 = o21 = 1, o22 = 4; n = 8, n1 = 3, n2 = 5
    # Do = 2/8, De = 2*3*5 / (8*7) = 30/56; alpha = 1 - (2/8)/(30/56) = 8/15
    alpha = calibration.krippendorff_alpha([[1, 1, 2, 2], [1, 2, 2, 2]], level="nominal")
    assert alpha == pytest.approx(8 / 15)
    # an item only one reviewer labelled does not count
    assert calibration.krippendorff_alpha([[1, 1, 2, 2, 1], [1, 2, 2, 2, None]], level="nominal") == pytest.approx(
        8 / 15
    )
    assert calibration.krippendorff_alpha([[3, 3], [3, 3]]) is None


def test_agreement_has_intervals_counts_and_warning():
    perfect = [{"judge": v, "human": v, "judge_pass": v >= 4, "human_pass": v >= 4} for v in [1, 2, 3, 4, 5] * 2]
    result = calibration.agreement(perfect, scale=(1, 5), n_boot=200)
    by = {m["metric"]: m for m in result["metrics"]}
    assert by["kappa"]["value"] == pytest.approx(1.0)
    assert by["spearman"]["n"] == 10 and by["spearman"]["low"] is not None
    assert by["precision"]["value"] == 1.0 and by["recall"]["value"] == 1.0
    assert calibration.poor(result) is None
    assert result["confusion"]["matrix"][0][0] == 2

    reversed_ = [{"judge": 6 - v, "human": v} for v in [1, 2, 3, 4, 5] * 2]
    bad = calibration.agreement(reversed_, n_boot=100)
    assert calibration.value_of(bad, "spearman") == pytest.approx(-1.0)
    assert "kappa" in calibration.poor(bad)

    few = calibration.agreement(reversed_[:3], n_boot=50)
    assert calibration.poor(few) is None  # too few rows to call a judge poor


def test_vectorised_resample_statistics_match_the_libraries():
    import numpy as np

    rng = np.random.default_rng(5)
    for _ in range(20):
        judge = rng.integers(1, 6, size=12)
        human = np.clip(judge + rng.integers(-2, 3, size=12), 1, 5)
        j, h = judge[None, :].astype(float), human[None, :].astype(float)
        assert calibration.spearman_rows(j, h)[0] == pytest.approx(calibration.spearman(judge, human))
        assert calibration.kendall_rows(j, h)[0] == pytest.approx(calibration.kendall(judge, human))
        for weights in (None, "linear", "quadratic"):
            expected = calibration.kappa(judge.tolist(), human.tolist(), [1, 2, 3, 4, 5], weights)
            got = calibration.kappa_rows(judge[None, :] - 1, human[None, :] - 1, 5, weights)[0]
            assert got == pytest.approx(expected)
        jp, hp = judge >= 4, human >= 4
        if jp.any():
            assert calibration.precision_rows(jp[None, :], hp[None, :])[0] == pytest.approx(
                calibration.precision(jp.tolist(), hp.tolist())
            )
        if hp.any():
            assert calibration.recall_rows(jp[None, :], hp[None, :])[0] == pytest.approx(
                calibration.recall(jp.tolist(), hp.tolist())
            )
