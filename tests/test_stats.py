"""Paired statistics (poolup.stats) against scipy, statsmodels and hand calculations; the two figures by content."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

# statsmodels is the reference (the test extra): missing, these tests fail rather than skip.
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from poolup import stats

RNG = np.random.default_rng(7)
BASE = RNG.normal(0.975, 0.005, 10)
CASE = BASE + RNG.normal(-0.002, 0.003, 10)


def test_differences_use_only_the_seeds_both_sides_have():
    seeds, diffs = stats.paired_differences({0: 0.9, 1: 0.8, 3: 0.7}, {1: 0.85, 0: 0.95, 2: 0.5})
    assert seeds == [0, 1]
    np.testing.assert_allclose(diffs, [-0.05, -0.05])
    seeds, diffs = stats.paired_differences({0: [1.0, 0.5]}, {0: [0.5, 0.5]})
    assert diffs.shape == (1, 2) and diffs.tolist() == [[0.5, 0.0]]
    assert stats.paired_differences({0: 1.0}, {1: 1.0})[0] == []


def test_t_interval_and_paired_p_equal_scipy():
    diffs = CASE - BASE
    low, high = stats.t_interval(diffs, 0.95)
    reference = scipy_stats.ttest_rel(CASE, BASE)
    ref_low, ref_high = reference.confidence_interval(0.95)
    assert (low, high) == pytest.approx((ref_low, ref_high), rel=1e-12)
    assert stats.paired_p(diffs) == pytest.approx(reference.pvalue, rel=1e-12)
    # by hand: mean ± t(0.975, 9) * sd / sqrt(10)
    half = 2.2621571627409915 * diffs.std(ddof=1) / math.sqrt(10)
    assert (low, high) == pytest.approx((diffs.mean() - half, diffs.mean() + half), rel=1e-9)


def test_bootstrap_interval_is_bca_with_a_fixed_seed_and_close_to_a_hand_bootstrap():
    diffs = CASE - BASE
    low, high = stats.bootstrap_interval(diffs, 0.95, 9999)
    assert (low, high) == stats.bootstrap_interval(diffs, 0.95, 9999)  # fixed seed: reproducible
    expected = scipy_stats.bootstrap((diffs,), np.mean, n_resamples=9999, method="BCa", rng=np.random.default_rng(0))
    assert (low, high) == pytest.approx(tuple(expected.confidence_interval), rel=1e-12)
    # A plain percentile bootstrap by hand (other draws): the ends agree within resampling noise.
    means = diffs[np.random.default_rng(1).integers(0, diffs.size, (20000, diffs.size))].mean(axis=1)
    hand = np.quantile(means, [0.025, 0.975])
    width = high - low
    assert abs(low - hand[0]) < 0.15 * width and abs(high - hand[1]) < 0.15 * width
    assert low < diffs.mean() < high


def test_degenerate_samples_give_defined_values_or_nan_never_an_error():
    one = np.array([-0.01])
    assert all(
        math.isnan(v)
        for v in (
            *stats.t_interval(one, 0.95),
            *stats.bootstrap_interval(one, 0.95, 999),
            stats.paired_p(one),
            stats.noninferiority_p(one, 0.005),
        )
    )
    same = np.array([-0.002, -0.002, -0.002])
    assert stats.t_interval(same, 0.95) == (pytest.approx(-0.002), pytest.approx(-0.002))
    assert stats.bootstrap_interval(same, 0.95, 999) == (-0.002, -0.002)
    assert stats.paired_p(same) == 0.0 and stats.paired_p(np.zeros(3)) == 1.0
    assert stats.noninferiority_p(same, 0.005) == 0.0 and stats.noninferiority_p(same, 0.001) == 1.0
    row = stats.compare_paired(one, 0.005, 0.95, 999, 0.8)
    assert row["verdict"] == stats.UNDECIDED and row["paired_n"] == 1 and math.isnan(row["mde"])
    row = stats.compare_paired(same, 0.005, 0.95, 999, 0.8)
    assert row["verdict"] == stats.SMALLER and row["mde"] == 0.0 and row["seeds_for_margin"] == 2


@pytest.mark.parametrize(
    "pvalues",
    [
        [0.01, 0.04, 0.03, 0.005],
        [0.04, 0.04, 0.01, 0.04],  # ties
        [0.5, 0.2, 0.3, 0.01, 0.011],  # step-down stops and the monotone max carries over
        [0.9, 0.95],  # capped at 1
        [0.02],
    ],
)
def test_holm_equals_statsmodels(pvalues):
    expected = multipletests(pvalues, method="holm")[1]
    np.testing.assert_allclose(stats.holm(pvalues), expected, rtol=1e-12)


def test_holm_by_hand_keeps_order_and_skips_nan():
    # sorted: 0.01 (x3), 0.02 (x2), 0.04 (x1); the monotone max keeps 0.04 from falling below 0.04.
    np.testing.assert_allclose(stats.holm([0.04, np.nan, 0.01, 0.02]), [0.04, np.nan, 0.03, 0.04])
    assert np.isnan(stats.holm([np.nan, np.nan])).all()


def test_noninferiority_p_is_the_lower_test_of_statsmodels_tost():
    margin = 0.005
    p, lower, upper = ttost_paired(CASE, BASE, -margin, np.inf)
    assert stats.noninferiority_p(CASE - BASE, margin) == pytest.approx(lower[1], rel=1e-10)
    assert p == pytest.approx(lower[1])


@pytest.mark.parametrize(
    "shift, expected",
    [
        (-0.0005, stats.SMALLER),  # clearly within the margin
        (-0.02, stats.LARGER),  # clearly a larger loss
        (-0.005, stats.UNDECIDED),  # centred on the margin
        (+0.02, stats.SMALLER),  # a gain is no loss: one-sided on purpose
    ],
)
def test_verdicts_on_constructed_data(shift, expected):
    noise = np.array([-0.0010, 0.0004, 0.0008, -0.0002, 0.0000, -0.0006, 0.0011, -0.0005])
    diffs = shift + noise
    row = stats.compare_paired(diffs, 0.005, 0.95, 999, 0.8)
    assert row["verdict"] == expected
    # The verdict and the one-sided tests agree: shown smaller <=> p < alpha.
    assert (row["noninferiority_p"] < 0.05) == (expected == stats.SMALLER)
    low, high = row["margin_ci_low"], row["margin_ci_high"]
    assert (low, high) == pytest.approx(stats.t_interval(diffs, 0.90))


def test_power_figures_equal_statsmodels():
    solver = TTestPower()
    for n in (2, 3, 5, 10, 30):
        d = solver.solve_power(nobs=n, alpha=0.05, power=0.8, alternative="two-sided")
        assert stats.minimum_detectable(0.004, n, 0.05, 0.8) == pytest.approx(d * 0.004, rel=1e-5)
        assert stats.power(0.7, n, 0.05) == pytest.approx(solver.power(0.7, n, 0.05), rel=1e-9)
        assert stats.power(0.7, n, 0.05, "larger") == pytest.approx(
            solver.power(0.7, n, 0.05, alternative="larger"), rel=1e-9
        )
    for sd, margin in ((0.004, 0.005), (0.01, 0.002), (0.001, 0.005)):
        n = solver.solve_power(effect_size=margin / sd, alpha=0.05, power=0.8, alternative="larger")
        assert stats.seeds_for_margin(sd, margin, 0.05, 0.8) == max(2, math.ceil(n - 1e-6))


def test_compare_paired_columns_agree_with_their_references():
    row = stats.compare_paired(CASE - BASE, 0.005, 0.95, 999, 0.8)
    assert row["paired_n"] == 10 and row["delta_f1"] == pytest.approx((CASE - BASE).mean())
    assert row["paired_p"] == pytest.approx(scipy_stats.ttest_rel(CASE, BASE).pvalue)
    assert tuple(row) == stats.PAIRED_COLUMNS


# --- figures, checked by what they draw ---------------------------------------


def _summary_rows():
    """A summary.csv-like frame: the baseline, a case within the margin, and one clearly worse."""
    rows = [{"case": "baseline", "method": "linear", "paired_n": np.nan, "verdict": np.nan}]
    for case, shift in (("w2s2", -0.0005), ("w3s2", -0.02)):
        diffs = shift + np.array([-0.0010, 0.0004, 0.0008, -0.0002, 0.0000, -0.0006, 0.0011, -0.0005])
        rows.append(
            {"case": case, "method": "linear", **stats.compare_paired(diffs, 0.005, 0.95, 999, 0.8), "holm_p": 0.01}
        )
    return pd.DataFrame(rows)


def test_forest_plot_draws_each_case_interval_margin_and_verdict():
    import matplotlib.pyplot as plt

    from poolup.plots_paired import forest_figure

    summary = _summary_rows()
    figure = forest_figure(summary, "baseline", {"w2s2": "Case 2", "w3s2": "Case 4"}, 0.005, 0.95)
    axis, verdicts = figure.axes[:2]
    assert [t.get_text() for t in axis.get_yticklabels()] == ["Case 2", "Case 4"]  # top to bottom = config order
    assert [t.get_text() for t in verdicts.get_yticklabels()] == [
        f"{stats.SMALLER}, Holm p 0.01",
        f"{stats.LARGER}, Holm p 0.01",
    ]
    # The 95 % t-interval of each case is an error bar: its line ends are the interval.
    bars = [c for c in axis.containers if len(c.lines[0].get_xdata())]
    for container, row in zip(bars, summary.iloc[1:].itertuples()):
        (segment,) = container.lines[2][0].get_segments()
        assert segment[:, 0] == pytest.approx([row.delta_ci_low, row.delta_ci_high])
        assert container.lines[0].get_xdata()[0] == pytest.approx(row.delta_f1)
    # The margin: a dashed line at -margin and the region left of it shaded.
    assert any(
        len(line.get_xdata()) and line.get_xdata()[0] == -0.005 and line.get_linestyle() == "--" for line in axis.lines
    )
    shaded = [p for p in axis.patches if p.get_label().startswith("loss larger")]
    assert len(shaded) == 1 and shaded[0].get_x() + shaded[0].get_width() == pytest.approx(-0.005)
    # The bootstrap intervals, each just below its case's row; the verdict's 90 % intervals on the rows.
    collections = {c.get_label(): c.get_segments() for c in axis.collections}
    boot = collections["95% bootstrap interval (BCa)"]
    verdict = collections["90% t-interval (decides the verdict)"]
    for segment, band, row, y in zip(boot, verdict, summary.iloc[1:].itertuples(), (1, 0)):
        assert segment[:, 0] == pytest.approx([row.delta_boot_low, row.delta_boot_high]) and segment[
            0, 1
        ] == pytest.approx(y - 0.28)
        assert band[:, 0] == pytest.approx([row.margin_ci_low, row.margin_ci_high]) and band[0, 1] == y
    low, high = axis.get_xlim()
    assert low < summary.iloc[2]["delta_boot_low"] and high > summary.iloc[1]["delta_ci_high"]
    plt.close(figure)


def test_forest_plot_names_the_method_when_several_run():
    import matplotlib.pyplot as plt

    from poolup.plots_paired import forest_figure

    summary = _summary_rows()
    summary.loc[2, "method"] = "cubic"
    figure = forest_figure(summary, "baseline", {}, 0.005, 0.95)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["w2s2 (linear)", "w3s2 (cubic)"]
    plt.close(figure)


def test_per_class_heatmap_colours_the_mean_and_frames_intervals_that_exclude_zero():
    import matplotlib.pyplot as plt

    from poolup.plots_paired import per_class_delta_figure

    deltas = pd.DataFrame(
        [
            {"case": "w3s2", "class": 0, "delta_f1": -0.010, "delta_ci_low": -0.02, "delta_ci_high": 0.0001},
            {"case": "w3s2", "class": 1, "delta_f1": 0.002, "delta_ci_low": 0.001, "delta_ci_high": 0.003},
            {"case": "w2s2", "class": 0, "delta_f1": -0.004, "delta_ci_low": -0.006, "delta_ci_high": -0.002},
            {"case": "w2s2", "class": 1, "delta_f1": 0.001, "delta_ci_low": -0.003, "delta_ci_high": 0.005},
        ]
    )
    figure = per_class_delta_figure(deltas, {"w2s2": "Case 2", "w3s2": "Case 4"}, 0.95)
    axis = figure.axes[0]
    # The order of the file (the aggregation's, the config's), not of the labels (passed sorted by name).
    assert [t.get_text() for t in axis.get_yticklabels()] == ["Case 4", "Case 2"]
    np.testing.assert_allclose(axis.images[0].get_array(), [[-0.010, 0.002], [-0.004, 0.001]])
    assert axis.images[0].get_clim() == (-0.010, 0.010)  # symmetric: white is no difference
    texts = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in axis.texts}
    assert texts[(0, 1)] == "-0.004\n±0.002" and texts[(1, 0)] == "+0.002\n±0.001"
    framed = sorted((round(p.get_x() + 0.5), round(p.get_y() + 0.5)) for p in axis.patches)
    assert framed == [(0, 1), (1, 0)]  # (class, row): w2s2 class 0 and w3s2 class 1 exclude 0
    plt.close(figure)


def test_figures_are_byte_identical_when_drawn_again(tmp_path):
    from poolup.plots import save_figure
    from poolup.plots_paired import forest_figure

    for name in ("a", "b"):
        save_figure(
            forest_figure(_summary_rows(), "baseline", {}, 0.005, 0.95),
            tmp_path / f"{name}.png",
            tmp_path / f"{name}.pdf",
            60,
        )
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert b"CreationDate" not in (tmp_path / "a.pdf").read_bytes()
