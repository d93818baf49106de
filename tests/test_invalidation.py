"""What a config change reruns: one dry run per schema key over a finished tiny run.

For every key in workflow/schemas/config.schema.yaml (found at test time, so a
new key needs a row here), the key is changed to another valid value and
``snakemake -n`` lists the rules it would rerun. That table must equal
EXPECTED: each setting reruns the rules whose output it changes, and what reads
those outputs. The table of docs/reruns.md ("What a change reruns") is this one.
"""

from __future__ import annotations

import copy
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import REPO, run_snakemake, scheduled_jobs

from poolup.config import schema_keys

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
# The case that per-case keys (cases.*.window, ...) are changed on; a codec's own keys on the case that has one.
CHANGED_CASE = "w2s2"
CODEC_CASE = "w2webp"
CASE_OF_KEY = {"cases.*.quality": CODEC_CASE, "cases.*.tile": CODEC_CASE}


# Rule families: the training rules are one per seed group (train_seeds_0_4, ...);
# the table names them "train" so that it does not depend on the group size.
def family(rule: str) -> str:
    return "train" if rule == "train" or rule.startswith("train_") else rule


# "summary" stands for the aggregation and every rule after it in the rule graph
# (aggregate, compare_datasets and the figures drawn from the summary files): all
# of them read a file that aggregate rewrites. The rest is named rule by rule.
SUMMARY = "summary"
# And "every figure" stands for every plot_* rule.
FIGURES = "every figure"
PIXELS = {"pool", "store", "codecs", "codec_table", "fidelity", "train", "plot_preprocessing", SUMMARY}
EVERYTHING = {"fetch", "plot_examples"} | PIXELS
TRAINING = {"train", SUMMARY}
SEARCH_ADDED = {"pool", "store", "fidelity", "search_step", "search_summary", "plot_search"}
NOTHING: set[str] = set()

# schema key -> what changing it reruns (the tiny run reads source `bundled`, so the
# keys of the other sources rerun nothing).
EXPECTED: dict[str, set[str]] = {
    "datasets[].name": EVERYTHING,
    "datasets[].source": EVERYTHING,
    "datasets[].path": NOTHING,
    "datasets[].openml_name": NOTHING,
    "datasets[].data_home": NOTHING,
    "datasets[].image_shape": EVERYTHING,
    "datasets[].max_images": EVERYTHING,
    "datasets[].subset_seed": EVERYTHING,
    "datasets[].resize": NOTHING,
    "datasets[].resample": NOTHING,
    "baseline": {"plot_preprocessing", SUMMARY},
    "cases.*.window": PIXELS,
    "cases.*.stride": PIXELS,
    "cases.*.bits": PIXELS,
    "cases.*.codec": PIXELS,
    "cases.*.quality": PIXELS,
    "cases.*.tile": PIXELS,
    # The figures that name the cases (plot_methods names methods instead).
    "cases.*.label": {
        "plot_preprocessing",
        "plot_tradeoff",
        "plot_confusion",
        "plot_curves",
        "plot_forest",
        "plot_per_class",
        "plot_per_class_delta",
        "frontier",
        "plot_frontier",
    },
    # A second method among the cases: the methods figure is drawn now.
    "cases.*.method": {"fidelity", "train", "plot_preprocessing", "plot_methods", SUMMARY},
    "interpolation.method": {"fidelity", "train", "plot_preprocessing", SUMMARY},
    "interpolation.grid": {"fidelity", "train", "plot_preprocessing", SUMMARY},
    "storage.dtype": PIXELS,
    "storage.filter": {"store", SUMMARY},
    "storage.level": {"store", SUMMARY},
    "codecs.names": {"codecs", "codec_table", "plot_tradeoff"},
    "codecs.sample": {"codecs", "codec_table", "plot_tradeoff"},
    "seeds": TRAINING,
    "training.epochs": TRAINING,
    "training.batch_size": TRAINING,
    "training.learning_rate": TRAINING,
    "training.model": TRAINING,
    "training.train_size": TRAINING,
    "training.stratify": TRAINING,
    "training.scaling": TRAINING,
    "training.scaling_fit_on": TRAINING,
    "training.history_every": TRAINING,
    "training.monitor_samples": TRAINING,
    "training.precision": TRAINING,
    "training.onednn": TRAINING,
    "training.seeds_per_job": NOTHING,
    # Fewer files kept: the runs' other files stand, nothing is trained again.
    "training.keep": NOTHING,
    "training.early_stopping.enabled": TRAINING,
    "training.early_stopping.validation_size": TRAINING,
    "training.early_stopping.patience": TRAINING,
    "training.early_stopping.restore_best_weights": TRAINING,
    "plots.examples": {"plot_examples", "plot_preprocessing"},
    "plots.dpi": {FIGURES},
    "analysis.margin": {SUMMARY},
    # Which kind of test images the answer names: the tables of both kinds are made again.
    "analysis.test_images": {SUMMARY},
    "analysis.confidence": {SUMMARY},
    "analysis.bootstrap_resamples": {SUMMARY},
    "analysis.power": {SUMMARY},
    # A one-look sequential design of the seeds already trained: judged again, nothing trained.
    "analysis.sequential.looks": {"look", SUMMARY},
    # A search added (one family, the key's one candidate): its stage one and its walk; nothing else reruns.
    **{f"search.families.*.{key}": SEARCH_ADDED for key in ("window", "stride", "bits", "quality", "tile", "codec")},
}

# Values the generic rule below cannot pick (strings, lists, keys with extra rules).
NEW_VALUES: dict[str, Any] = {
    "datasets[].name": "tiny2",
    "datasets[].path": "/nonexistent/ignored-by-bundled",
    "datasets[].openml_name": "Fashion-MNIST",
    "datasets[].data_home": "/nonexistent/sklearn-cache",
    "datasets[].image_shape": [28, 28, 1],
    "baseline": CHANGED_CASE,
    "cases.*.label": "Case 2: 2x2/2",
    "codecs.names": ["hdf5-gzip", "png"],
    "seeds": 3,
    "analysis.sequential.looks": [2],
    "training.keep": ["model"],
    "training.model": f"{REPO / 'tests/models/small_cnn.py'}:small_cnn",
    "datasets[].resize": [28, 28],
    "datasets[].resample": "nearest",
    "analysis.test_images": "raw",
}


def _parts(key: str) -> list[str]:
    return [part for part in re.split(r"\.|(?=\[\])", key) if part]


def get_key(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in _parts(key):
        if part == "[]":
            node = node[0]
        elif part == "*":
            node = node[CASE_OF_KEY.get(key, CHANGED_CASE)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def set_key(config: dict[str, Any], key: str, value: Any) -> None:
    node: Any = config
    parts = _parts(key)
    case = CASE_OF_KEY.get(key, CHANGED_CASE)
    for part in parts[:-1]:
        node = node[0] if part == "[]" else node[case] if part == "*" else node.setdefault(part, {})
    node[parts[-1]] = value


def new_value(key: str, spec: dict[str, Any], current: Any) -> Any:
    """Another valid value for ``key``: the next enum member, the flipped boolean, a number nudged inside its bounds."""
    if key in NEW_VALUES or key.startswith("search."):
        return NEW_VALUES.get(key)
    if current is None:
        current = spec.get("default")
    if "enum" in spec:
        return next(value for value in spec["enum"] if value != current)
    kind = spec.get("type")
    if isinstance(kind, list):  # e.g. [integer, "null"]: a value of the non-null type
        kind = next(option for option in kind if option != "null")
    if kind == "boolean":
        return not current
    if kind == "integer":
        upper = spec.get("maximum")
        return current + 1 if upper is None or current + 1 <= upper else current - 1
    if kind == "number":
        upper = spec.get("maximum", spec.get("exclusiveMaximum"))
        return (current + upper) / 2 if upper is not None else current * 2
    raise AssertionError(f"schema key {key!r}: no rule picks a new value for it; add one to NEW_VALUES in {__file__}")


def rule_graph(workdir: Path, config: Path) -> dict[str, set[str]]:
    """Rule -> the rules that read its outputs, from ``snakemake --rulegraph``."""
    dot = run_snakemake(workdir, "--rulegraph", configfiles=[config]).stdout
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.M))
    readers: dict[str, set[str]] = {name: set() for name in names.values()}
    for source, target in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M):
        readers[names[source]].add(names[target])
    return readers


def downstream(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for reader in graph.get(todo.pop(), ()):
            if reader not in seen:
                seen.add(reader)
                todo.append(reader)
    return seen


def summarize(rules: set[str], summary_rules: set[str], figures: set[str]) -> set[str]:
    """Families of the rules a dry run planned, with the summary rules folded into SUMMARY
    and all figures into FIGURES."""
    families = {family(rule) for rule in rules} - {"all"}
    if "aggregate" in families:
        families = (families - summary_rules) | {SUMMARY}
    elif figures <= families:
        families = (families - figures) | {FIGURES}
    return families


def rerun_table(workdir: Path, base: dict[str, Any], folder: Path) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Schema key -> the rule families a dry run plans after changing it (and the values used)."""
    schema = yaml.safe_load(SCHEMA.read_text())
    keys = schema_keys(schema)
    missing = sorted(set(keys) - set(EXPECTED))
    assert not missing, (
        f"schema keys without a row in EXPECTED ({__file__}): {', '.join(missing)}; "
        "add what changing each one must rerun"
    )
    base_file = folder / "base.yaml"
    base_file.write_text(yaml.safe_dump(base, sort_keys=False))
    graph = rule_graph(workdir, base_file)
    summary_rules = {family(rule) for rule in downstream(graph, "aggregate")} - {"all"}
    figures = {rule for rule in graph if rule.startswith("plot_")}
    npz = folder / "other.npz"
    np.savez(npz, images=np.zeros((40, 28, 28), np.uint8), labels=np.arange(40) % 10)

    def changed(key: str) -> tuple[str, set[str], str]:
        config = copy.deepcopy(base)
        value = new_value(key, keys[key], get_key(config, key))
        if key.startswith("search.families.*."):  # a family of one candidate: the key's value (a codec's keys need one)
            leaf = key.rsplit(".", 1)[1]
            template = {leaf: 2} | ({"codec": "webp"} if leaf in ("quality", "tile") else {})
            config["search"] = {"families": {"more": {"codec": "webp"} if leaf == "codec" else template}}
            value = config["search"]["families"]["more"]
        else:
            set_key(config, key, value)
        if key == "datasets[].source":
            value = "npz"
            set_key(config, key, value)
            set_key(config, "datasets[].path", str(npz))
        path = folder / f"{key.replace('[]', '').replace('*', CHANGED_CASE)}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        result = run_snakemake(workdir, "-n", "--cores", "1", configfiles=[path])
        return key, summarize({rule for rule, _ in scheduled_jobs(result.stdout)}, summary_rules, figures), repr(value)

    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(changed, keys))
    return {key: rules for key, rules, _ in rows}, {key: value for key, _, value in rows}


def markdown(table: dict[str, set[str]], values: dict[str, str]) -> str:
    """The table as docs/reruns.md shows it."""
    order = [
        "fetch",
        "plot_examples",
        "pool",
        "store",
        "codecs",
        "codec_table",
        "fidelity",
        "train",
        "look",
        "plot_preprocessing",
        "plot_tradeoff",
        SUMMARY,
    ]
    lines = ["| setting (changed to) | reruns |", "|---|---|"]
    for key, rules in table.items():
        named = sorted(rules, key=lambda rule: (order.index(rule) if rule in order else len(order), rule))
        lines.append(f"| `{key}` ({values[key]}) | {', '.join(named) or 'nothing'} |")
    return "\n".join(lines)


@pytest.mark.slow  # one dry run per schema key (about 70): minutes; CI runs it (`pytest -m slow`)
def test_every_setting_reruns_only_what_it_changes(tiny_run, tmp_path):
    workdir, config = tiny_run
    table, values = rerun_table(workdir, yaml.safe_load(config.read_text()), tmp_path)
    expected = {key: EXPECTED[key] for key in table}
    wrong = {key: (sorted(table[key]), sorted(expected[key])) for key in table if table[key] != expected[key]}
    assert not wrong, (
        "planned != expected for:\n"
        + "\n".join(f"  {key}: planned {planned}, expected {wanted}" for key, (planned, wanted) in wrong.items())
        + "\n\nthe table as planned:\n"
        + markdown(table, values)
    )


def test_the_docs_show_the_table():
    """The table of docs/reruns.md lists every schema key with its expected rules."""
    page = (REPO / "docs/reruns.md").read_text()
    schema = yaml.safe_load(SCHEMA.read_text())
    for key in schema_keys(schema):
        row = next((line for line in page.splitlines() if line.startswith(f"| `{key}` (")), None)
        assert row is not None, (
            f"docs/reruns.md: no row for `{key}`; add the row `python {__file__} WORKDIR CONFIG` prints"
        )
        shown = row.rsplit("|", 2)[1].strip()
        assert set(shown.split(", ")) - {"nothing"} == EXPECTED[key], f"docs/reruns.md row for {key}: {shown}"


if __name__ == "__main__":  # print the table for docs/reruns.md: python tests/test_invalidation.py WORKDIR CONFIG
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        table, values = rerun_table(Path(sys.argv[1]), yaml.safe_load(Path(sys.argv[2]).read_text()), Path(folder))
    print(markdown(table, values))
    for key in table:
        if table[key] != EXPECTED.get(key):
            print(f"MISMATCH {key}: planned {sorted(table[key])}, expected {sorted(EXPECTED.get(key, set()))}")
