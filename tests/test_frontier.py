"""The frontier: PSNR and SSIM against scikit-image, the front against brute force, the answer's sentences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from poolup.fidelity import psnr, squared_error, ssim_per_image
from poolup.frontier import answer, frontier_markdown, frontier_table, on_front


def test_psnr_and_ssim_equal_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, size=(6, 28, 28)).astype(np.uint8)
    noisy = np.clip(reference + rng.normal(0, 20, size=reference.shape), 0, 255).astype(np.float32)
    mse = squared_error(reference, noisy) / reference.size
    assert psnr(mse) == pytest.approx(metrics.peak_signal_noise_ratio(reference, noisy, data_range=255), rel=1e-9)
    ours = ssim_per_image(reference, noisy)
    for image, value in zip(range(6), ours):
        expected = metrics.structural_similarity(
            reference[image].astype(np.float64),
            noisy[image].astype(np.float64),
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert value == pytest.approx(expected, rel=1e-9)


def test_ssim_of_colour_images_averages_the_channels_as_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(2, 20, 20, 3)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 30, size=x.shape), 0, 255)
    expected = metrics.structural_similarity(
        x[0], y[0], data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=2
    )
    assert ssim_per_image(x, y)[0] == pytest.approx(expected, rel=1e-9)


def test_an_exact_copy_has_infinite_psnr_and_ssim_one():
    images = np.random.default_rng(2).integers(0, 256, size=(3, 28, 28)).astype(np.uint8)
    assert math.isinf(psnr(squared_error(images, images) / images.size))
    np.testing.assert_allclose(ssim_per_image(images, images), 1.0)


def test_the_front_is_what_brute_force_finds():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        ratios = rng.choice([0.1, 0.2, 0.3, 0.5, 1.0], size=n)
        deltas = rng.choice([-0.01, -0.005, -0.001, 0.0], size=n)
        expected = [
            not any(ratios[j] <= ratios[i] and deltas[j] > deltas[i] for j in range(n) if j != i) for i in range(n)
        ]
        assert on_front(ratios, deltas) == expected


def summary_and_records():
    cases = ["baseline", "w2s2", "bits2", "bits1", "webp"]
    summary = pd.DataFrame(
        {
            "case": cases,
            # A sequential design [10, 20]: bits2 and webp decided at the first look, the others open at the second.
            "seeds": [20, 20, 10, 20, 10],
            "looks_used": [np.nan, 2, 1, 2, 1],
            "deciding_look": [np.nan, np.nan, 1, np.nan, 1],
            "seeds_saved": [0, 0, 10, 0, 10],
            "macro_f1_mean": [0.98, 0.977, 0.979, 0.975, 0.97],
            "byte_ratio_to_baseline": [1.0, 0.42, 0.38, 0.22, 1.3],
            "delta_f1": [np.nan, -0.003, -0.001, -0.004, -0.008],
            "delta_ci_low": [np.nan, -0.005, -0.002, -0.007, -0.01],
            "delta_ci_high": [np.nan, -0.001, 0.0, -0.001, -0.006],
            "holm_p": [np.nan, 0.01, 0.2, 0.03, 0.001],
            "verdict": ["", "undecided", "loss smaller than the margin", "undecided", "loss larger than the margin"],
        }
    )
    specs = {
        "baseline": {"window": 1, "stride": 1},
        "w2s2": {"window": 2, "stride": 2},
        "bits2": {"window": 1, "stride": 1, "bits": 2},
        "bits1": {"window": 1, "stride": 1, "bits": 1},
        "webp": {"window": 1, "stride": 1, "codec": "webp", "quality": 50, "tile": 1},
    }
    storage = {
        case: {**spec, "case": case, "bytes_per_image": 160 * ratio}
        for (case, spec), ratio in zip(specs.items(), summary["byte_ratio_to_baseline"])
    }
    storage["webp"]["file_bytes_per_image"] = 200.0
    fidelity = {case: {"psnr_db": None if case == "baseline" else 20.0, "ssim": 0.9} for case in cases}
    return summary, storage, fidelity


def test_the_table_joins_bytes_verdicts_and_fidelity_cheapest_first():
    summary, storage, fidelity = summary_and_records()
    table = frontier_table(summary, storage, fidelity, "baseline", {"bits1": "1 bit"})
    assert table["case"].tolist() == ["bits1", "bits2", "w2s2", "baseline", "webp"]
    assert table["family"].tolist() == ["quantize", "quantize", "pool", "baseline", "codec"]
    assert table["on_front"].tolist() == [True, True, False, True, False]
    baseline = table.set_index("case").loc["baseline"]
    assert (baseline.delta_f1, baseline.verdict, math.isnan(baseline.psnr_db)) == (0.0, "baseline", True)
    assert table.set_index("case").loc["webp", "file_bytes_per_image"] == 200.0
    assert table.set_index("case").loc["bits1", "label"] == "1 bit"
    design = table.set_index("case")[["seeds", "looks_used", "deciding_look", "seeds_saved"]]
    assert design.loc["bits2"].tolist() == [10, 1, 1, 10] and design.loc["w2s2"].tolist()[:2] == [20, 2]
    assert math.isnan(design.loc["w2s2", "deciding_look"]) and math.isnan(design.loc["baseline", "looks_used"])


def test_the_answer_names_the_cheapest_shown_recipe_and_the_best_within_each_budget():
    summary, storage, fidelity = summary_and_records()
    table = frontier_table(summary, storage, fidelity, "baseline", {})
    lines = answer(table, 0.005)
    assert lines[0].startswith("Cheapest recipe shown to lose less than the margin (0.005 macro F1): bits2 (38%")
    assert "Within 50% of the baseline's bytes, least loss: bits2" in lines[1]
    assert "Within 25% of the baseline's bytes, least loss: bits1 (22%" in lines[2] and "undecided" in lines[2]
    assert lines[3] == "Within 10% of the baseline's bytes: no recipe."
    assert lines[4] == "No recipe that pools is on the front."
    text = frontier_markdown(table, 0.005, [10, 20])
    assert text.count("| * |") == 3
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| ")}
    assert "| 10 | look 1 of 2 (10 seeds) |" in rows["bits2"]
    assert "| 20 | undecided after look 2 of 2 (20 seeds) |" in rows["w2s2"]
    assert "| 20 |  |" in rows["baseline"]


def test_pooling_on_the_front_is_named():
    summary, storage, fidelity = summary_and_records()
    summary.loc[summary["case"] == "w2s2", "delta_f1"] = -0.0005  # now better than bits2 at more bytes
    lines = answer(frontier_table(summary, storage, fidelity, "baseline", {}), 0.005)
    assert lines[-1].startswith("On the front with pooling: w2s2 (42%")


@pytest.mark.parametrize("n", range(1, 6))
def test_every_subset_of_cases_gives_a_front_containing_the_cheapest_best(n):
    summary, storage, fidelity = summary_and_records()
    for cases in itertools.combinations(summary["case"], n):
        if "baseline" not in cases:
            continue
        table = frontier_table(summary[summary["case"].isin(cases)], storage, fidelity, "baseline", {})
        best = table.loc[table["delta_f1"].idxmax()]
        cheapest_best = table[table["delta_f1"] == best.delta_f1]["byte_ratio"].min()
        assert table[(table["byte_ratio"] == cheapest_best) & (table["delta_f1"] == best.delta_f1)]["on_front"].all()
