import re
import sys
from pathlib import Path

from poolup.config import check_config_files, load_schema, seed_list, validate_config
from poolup.errors import PoolupError

# Validate before any job: one line naming the key and the fix, then stop.
try:
    check_config_files(workflow.configfiles)
    validate_config(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except PoolupError as error:
    sys.stderr.write(f"poolup: config error: {error}\n")
    sys.exit(1)

DATASET = config["dataset"]["name"]
CASES = list(config["cases"])
SEEDS = seed_list(config["seeds"])


wildcard_constraints:
    dataset=re.escape(DATASET),
    case="|".join(re.escape(case) for case in CASES),
    seed=r"\d+",


def case_window(wildcards):
    return config["cases"][wildcards.case]["window"]


def case_stride(wildcards):
    return config["cases"][wildcards.case]["stride"]


def all_targets():
    """Everything the default run produces."""
    return expand(
        "results/{dataset}/{case}/seed{seed}/test_metrics.json",
        dataset=DATASET,
        case=CASES,
        seed=SEEDS,
    )
