import re
import sys
from pathlib import Path

from poolup.config import (
    case_method,
    check_config_files,
    dataset_names,
    dataset_settings,
    load_schema,
    seed_list,
    validate_config,
)
from poolup.errors import PoolupError
from poolup.interpolation import effective_grid
from poolup.training import TRAINING_EXECUTION_KEYS, group_seeds

# Validate before any job: one line naming the key and the fix, then stop.
try:
    check_config_files(workflow.configfiles)
    validate_config(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except PoolupError as error:
    sys.stderr.write(f"poolup: config error: {error}\n")
    sys.exit(1)

DATASETS = dataset_names(config)
CASES = list(config["cases"])
SEEDS = seed_list(config["seeds"])


wildcard_constraints:
    dataset="|".join(re.escape(dataset) for dataset in DATASETS),
    case="|".join(re.escape(case) for case in CASES),
    seed=r"\d+",


def dataset_spec(wildcards):
    """The settings of one data set (so editing one data set refetches only that one)."""
    return dataset_settings(config, wildcards.dataset)


def dataset_image_shape(wildcards):
    """Shape of one image of the data set (the CNN's input shape)."""
    return dataset_settings(config, wildcards.dataset)["image_shape"]


def case_window(wildcards):
    return config["cases"][wildcards.case]["window"]


def case_stride(wildcards):
    return config["cases"][wildcards.case]["stride"]


def case_interpolation(wildcards):
    """Interpolation method of one case (so changing one case's method reruns only that case)."""
    return case_method(config, wildcards.case)


def case_grid(wildcards):
    """The grid one case really uses (Pillow's methods keep theirs, so a new grid does not rerun them)."""
    return effective_grid(case_method(config, wildcards.case), config["interpolation"]["grid"])


def case_methods():
    """Interpolation method of every case, in config order (the summary's method column)."""
    return {case: case_method(config, case) for case in CASES}


def training_settings():
    """The training section without the settings that change no result (so changing them reruns nothing)."""
    return {key: value for key, value in config["training"].items() if key not in TRAINING_EXECUTION_KEYS}


def seed_groups():
    """The configured seeds in fixed blocks of training.seeds_per_job: one training job each."""
    return group_seeds(SEEDS, config["training"]["seeds_per_job"])


def train_rule_name(group):
    """Name of the rule that trains one block of seeds, after the block's bounds."""
    size = config["training"]["seeds_per_job"]
    first = group[0] // size * size
    return f"train_seeds_{first}_{first + size - 1}"


CURVE_METRICS = ["loss", "precision", "recall", "f1"]
PER_CLASS_METRICS = ["precision", "recall", "f1"]


def case_labels():
    """Legend text of each case, in config order (plots only: a new label reruns only plots)."""
    return {case: spec.get("label", case) for case, spec in config["cases"].items()}


def case_label(wildcards):
    """Legend text of one case (so a new case does not rerun the other cases' figures)."""
    return case_labels()[wildcards.case]


def all_targets():
    """Everything the default run produces: the summary and every figure."""
    figures = "results/{dataset}/figures/{name}.png"
    return [
        "results/summary/datasets.csv",
        *expand(
            "results/{dataset}/summary/{name}",
            dataset=DATASETS,
            name=["summary.csv", "summary.md", "storage_codecs.csv"],
        ),
        *expand(figures, dataset=DATASETS, name=["examples", "tradeoff", "methods", "confusion_vs_baseline"]),
        *expand(figures, dataset=DATASETS, name=[f"curve_{metric}" for metric in CURVE_METRICS]),
        *expand(figures, dataset=DATASETS, name=[f"per_class_{metric}" for metric in PER_CLASS_METRICS]),
        *expand(
            figures,
            dataset=DATASETS,
            name=[f"preprocessing_{case}" for case in CASES if case != config["baseline"]],
        ),
    ]
