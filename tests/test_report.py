"""Figures and the HTML report of the tiny end-to-end run."""

import re

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

# (No methods.png: the tiny run's cases use one interpolation method; see
# test_the_methods_figure_is_drawn_where_cases_use_several_methods.)
FIGURES = [
    "examples",
    "preprocessing_w2s2",
    "tradeoff",
    "confusion_vs_baseline",
    "forest",
    "per_class_delta",
    *(f"curve_{m}" for m in ("loss", "precision", "recall", "f1")),
    *(f"per_class_{m}" for m in ("precision", "recall", "f1")),
]
CATEGORIES = ["1. Data", "2. Learning curves", "3. Test scores", "4. Summary"]
# Each category has a subcategory per data set; Snakemake lists them only where there are
# several (here the summary, which also holds the table of every data set).
SUBCATEGORIES = {"4. Summary": ["tiny", "all data sets"]}


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_a_valid_non_blank_image(tiny_run, name):
    workdir, _ = tiny_run
    png = workdir / f"results/tiny/figures/{name}.png"
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400
    assert pixels.std() > 10, "the figure is (almost) blank"
    pdf = workdir / f"results/tiny/figures/{name}.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000


def test_report_is_self_contained_with_every_figure(tiny_run):
    workdir, _ = tiny_run
    html = (workdir / "results/report.html").read_text()
    embedded = set(re.findall(r"data:image/png;charset=utf8;filename=([\w.-]+\.png)", html))
    assert {f"{name}.png" for name in FIGURES} <= embedded
    assert all(category in html for category in CATEGORIES)
    assert not re.search(r"<script[^>]+src=\"https?://", html), "the report must not load scripts from the network"


def test_report_front_page_states_the_result(tiny_run):
    """The landing page holds the per-case result table (from result.csv) with its verdict."""
    import json

    import pandas as pd

    workdir, _ = tiny_run
    html = (workdir / "results/report.html").read_text()
    result = pd.read_csv(workdir / "results/tiny/summary/result.csv")
    assert list(zip(result["case"], result["test_images"])) == [
        ("w2s2", "stored"),
        ("w2webp", "stored"),
        ("w2s2", "raw"),
        ("w2webp", "raw"),
    ]
    assert "tiny: every case against the baseline" in html, "no result table on the front page"
    for _, row in result.iterrows():
        verdict = row["verdict (margin 0.005)"]
        assert verdict in ("loss smaller than the margin", "loss larger than the margin", "undecided")
        for cell in (verdict, row["bytes saved"], row["ΔF1 [95% CI]"], '<th class="head">Holm p</th>'):
            # The report may hold the rendered page as a JavaScript string: accept it escaped too.
            assert cell in html or json.dumps(cell)[1:-1] in html, cell


def test_a_new_margin_reruns_only_the_aggregation_and_what_follows(tiny_run, tmp_path):
    from conftest import run_snakemake, scheduled_jobs, tiny_config

    workdir, _ = tiny_run
    changed = tiny_config(tmp_path / "margin.yaml", analysis={"margin": 0.01})
    result = run_snakemake(workdir, "-n", "--cores", "1", configfiles=[changed])
    rules = {rule for rule, _ in scheduled_jobs(result.stdout)}
    assert {"aggregate", "plot_forest"} <= rules
    # The frontier's answer names the recipes within the margin: it is redone too.
    summary = {"aggregate", "compare_datasets", "frontier", "all"}
    assert rules <= summary | {rule for rule in rules if rule.startswith("plot_")}
    assert not rules & {"plot_examples", "plot_preprocessing"}  # they read no summary


def test_the_methods_figure_is_drawn_where_cases_use_several_methods(tiny_run, tmp_path):
    from conftest import TINY_CASES, run_snakemake, scheduled_jobs, tiny_config

    workdir, config = tiny_run
    assert not (workdir / "results/tiny/figures/methods.png").exists()
    cubic = {**TINY_CASES, "w2s2-cubic": {"window": 2, "stride": 2, "method": "cubic"}}
    result = run_snakemake(
        workdir, "-n", "--cores", "1", configfiles=[tiny_config(tmp_path / "cubic.yaml", cases=cubic)]
    )
    assert "plot_methods" in {rule for rule, _ in scheduled_jobs(result.stdout)}


def render_front_page(config: dict) -> str:
    """workflow/report/workflow.rst as Snakemake renders it (Jinja2, ``snakemake.config``), without result tables."""
    from types import SimpleNamespace

    import jinja2

    from poolup.config import load_schema, validate_config

    template = jinja2.Template((REPO / "workflow/report/workflow.rst").read_text())
    validated = validate_config(config, load_schema(REPO / "workflow/schemas/config.schema.yaml"))
    return template.render(snakemake=SimpleNamespace(config=validated), categories={})


def test_the_front_page_names_the_methods_the_config_uses():
    cases = {"baseline": {"window": 1, "stride": 1}, "a": {"window": 2, "stride": 2, "method": "cubic"}}
    page = render_front_page({"cases": cases, "interpolation": {"method": "nearest"}})
    assert "(nearest, cubic interpolation)" in page and "linear" not in page
    assert "(linear interpolation)" in render_front_page({})


def test_a_report_for_another_config_says_why_first(tiny_run, tmp_path):
    """Snakemake builds the report of the config it is given: for results that are not there, one line says so
    before Snakemake's own messages (a "Missing metadata" line per file, or its stop on a missing file)."""
    from conftest import run_snakemake, tiny_config

    workdir, _ = tiny_run
    other = tiny_config(tmp_path / "other.yaml")
    other.write_text(other.read_text().replace("name: tiny", "name: other"))
    result = run_snakemake(workdir, "--report", str(tmp_path / "other.html"), configfiles=[other], check=False)
    hints = [line for line in result.stderr.splitlines() if line.startswith("poolup: results/")]
    assert len(hints) == 1 and "give --report the run's --configfile options" in hints[0], result.stderr[-2000:]
    if "Creating report" in result.stderr:  # printed while the workflow is read, before the report
        assert result.stderr.index(hints[0]) < result.stderr.index("Creating report")
    same = run_snakemake(workdir, "--report", str(tmp_path / "same.html"), configfiles=[tiny_run[1]])
    assert not [line for line in same.stderr.splitlines() if line.startswith("poolup: results/")]


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    """Open the report in Debian's Chromium, click through every category and every figure."""
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    workdir, _ = tiny_run
    errors, shown = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-quic",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((workdir / "results/report.html").as_uri())
        page.get_by_text("Report", exact=True).wait_for()
        page.screenshot(path=tmp_path / "landing.png")
        for category in CATEGORIES:
            page.get_by_text(category, exact=True).click()
            for subcategory in SUBCATEGORIES.get(category, [None]):
                if subcategory is not None:
                    page.get_by_text(subcategory, exact=True).click()
                rows = page.locator("tr", has=page.locator("[iconname=eye]"))
                rows.first.wait_for()
                for index in range(rows.count()):
                    rows.nth(index).locator("[iconname=eye]").click()
                    figure = page.locator("img[src^='data:image/png']")
                    if figure.count():  # tables open as tables
                        figure.first.wait_for()
                        width = figure.first.evaluate("image => image.complete ? image.naturalWidth : 0")
                        assert width > 300, f"{category}/{subcategory} row {index}: the figure did not render"
                        shown.append(f"{category}/{subcategory}/{index}")
                page.screenshot(path=tmp_path / f"{category[0]}{subcategory or ''}.png")
                if subcategory is not None:
                    page.get_by_text(category, exact=True).click()
            page.get_by_text("Results", exact=True).click()
        browser.close()
    assert not errors, errors
    assert len(shown) >= len(FIGURES) - 1  # every figure (examples and per-case previews included)
    with Image.open(tmp_path / "4tiny.png") as screenshot:
        pixels = np.asarray(screenshot.convert("L"), dtype=np.float64)
    assert pixels.std() > 20, "the last screenshot is blank"
