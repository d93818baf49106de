import os
import re
import sys
import time
from pathlib import Path

from poolup.config import (
    add_search_cases,
    case_method,
    check_config_files,
    check_inputs,
    dataset_names,
    dataset_settings,
    load_schema,
    seed_list,
    validate_config,
)
from poolup.errors import PoolupError
from poolup.hints import answer_lines, config_options, report_command, report_hint, seeds_notice
from poolup.interpolation import effective_grid
from poolup.recipe import Recipe, storage_dtype
from poolup.folders import folder_files
from poolup.records import read_json
from poolup.sources import idx_files
from poolup.preprocess import fetch_settings
from poolup.splits import SplitCheck, check_raw
from poolup.sequential import configured_looks
from poolup.runs import TRAINING_EXECUTION_KEYS, group_name, group_seeds, groups_sent, kept_run_files

# Whether a config file (or --config) sets `seeds`, before the schema's default fills it in.
SEEDS_GIVEN = "seeds" in config
# Validate before any job: one line naming the key and the fix, then stop.
try:
    check_config_files(workflow.configfiles)
    SCHEMA = load_schema(workflow.source_path("../workflow/schemas/config.schema.yaml"))
    validate_config(config, SCHEMA)
    # A data set's path or the model's file that is not there: one line, before any job.
    MODEL_SHA256 = check_inputs(config)
    # The cases config lists, before a search adds its candidates to config["cases"] (rules/search.smk).
    CASES = list(config["cases"])
    SEARCH_FAMILIES = add_search_cases(config, SCHEMA)
except PoolupError as error:
    sys.stderr.write(f"poolup: config error: {error}\n")
    sys.exit(1)

# Run at top level (not as a module, whose config comes from its `config:`)
# in a directory without config.yaml: Snakemake then runs the --configfile
# files alone over the schema's defaults. Say so, since the workflow's own
# config.yaml (the paper's experiment) is not read.
if not workflow.modifier.skip_configfile and not Path("config.yaml").is_file():
    sys.stderr.write(
        f"poolup: no config.yaml in {Path.cwd()}: running {', '.join(map(str, workflow.configfiles)) or 'no config file'}"
        " over the schema's defaults (the paper's experiment: workflow/schemas/config.schema.yaml)\n"
    )

DATASETS = dataset_names(config)
# A search's candidates, in family order: cases trained only as far as the search needs them.
SEARCH_CASES = [name for names in SEARCH_FAMILIES.values() for name in names]
SEEDS = seed_list(config["seeds"])
COMPARED_CASES = [case for case in CASES if case != config["baseline"]]
# A sequential design (analysis.sequential.looks, rules/sequential.smk) trains seeds 0..L-1 of
# its looks L as the verdicts require; None: a fixed design of `seeds`.
LOOKS = configured_looks(config["analysis"])
TRAINABLE_SEEDS = list(range(LOOKS[-1])) if LOOKS else SEEDS
if SEEDS_GIVEN and (notice := seeds_notice(SEEDS, LOOKS, config["seeds"])):
    sys.stderr.write(f"{notice}\n")
# Each run's files (the training rules' outputs, rules/train.smk), by output name: those that
# training.keep leaves out are not outputs.
RUN_FILES = kept_run_files(config["training"]["keep"])
# The record of look {look} (from 1) of a sequential design (rules/sequential.smk).
LOOK_RECORD = "results/{dataset}/summary/looks/look{look}.json"


def split_check(dataset):
    """What decides whether data set ``dataset`` can be split for training as configured (poolup.splits)."""
    # Every seed the design may train (a sequential design's last look, not `seeds`).
    return SplitCheck.from_config(config, dataset, TRAINABLE_SEEDS)


# The training split, checked before any job with what is known of the data: the
# labels of a raw.h5 fetched with these settings, else the max_images (one line, then stop).
try:
    for dataset in config["datasets"]:
        check_raw(f"results/{dataset['name']}/raw.h5", fetch_settings(dataset), split_check(dataset["name"]))
except PoolupError as error:
    sys.stderr.write(f"poolup: config error: {error}\n")
    sys.exit(1)


wildcard_constraints:
    dataset="|".join(re.escape(dataset) for dataset in DATASETS),
    case="|".join(re.escape(case) for case in [*CASES, *SEARCH_CASES]),
    seed=r"\d+",
    look=r"[1-9]\d*",
    step=r"[1-9]\d*",


def dataset_spec(wildcards):
    """The settings fetch reads for one data set (so editing one data set refetches only that one,
    and a key its source ignores, such as `path` for `openml`, refetches nothing)."""
    return fetch_settings(dataset_settings(config, wildcards.dataset))


def dataset_source_files(wildcards):
    """The files a data set is read from, as fetch's inputs: a dry run reports them missing,
    and a replaced file reruns fetch (none for `openml` and `bundled`)."""
    dataset = dataset_settings(config, wildcards.dataset)
    if not dataset.get("path"):
        return {}
    if dataset["source"] == "idx":
        return {"source": [str(path) for path in idx_files(dataset["path"])]}
    if dataset["source"] == "npz":
        return {"source": os.path.expanduser(dataset["path"])}
    if dataset["source"] == "folder":  # every image file: one added, replaced or deleted refetches
        return {"source": folder_files(dataset["path"])}
    return {}


def storage_encoding():
    """How stored.h5 is encoded: the gzip level only counts for gzip (so a level change under lzf reruns nothing)."""
    settings = config["storage"]
    return {"filter": settings["filter"], "level": settings["level"] if settings["filter"] == "gzip" else None}


def dataset_image_shape(wildcards):
    """Shape of one image of the data set (the CNN's input shape)."""
    return dataset_settings(config, wildcards.dataset)["image_shape"]


def case_window(wildcards):
    return config["cases"][wildcards.case]["window"]


def case_stride(wildcards):
    return config["cases"][wildcards.case]["stride"]


def storage_recipe(case):
    """The storage recipe of one case (src/poolup/recipe.py)."""
    return Recipe.from_case(config["cases"][case])


def case_dtype(wildcards):
    """The dtype a case's pooled pixels are rounded to: storage.dtype, but always uint8 when the recipe
    quantises or encodes (both start from 8-bit pixels), so that storage.dtype reruns only pooling-only cases."""
    return storage_dtype(storage_recipe(wildcards.case), config["storage"]["dtype"])


def case_encoding(wildcards):
    """The recipe's steps after pooling (bits, codec, quality, tile): the pool rule's params."""
    return storage_recipe(wildcards.case).encoding()


def case_interpolation(wildcards):
    """Interpolation method of one case (so changing one case's method reruns only that case)."""
    return case_method(config, wildcards.case)


def case_grid(wildcards):
    """The grid one case really uses (Pillow's methods keep theirs, so a new grid does not rerun them)."""
    return effective_grid(case_method(config, wildcards.case), config["interpolation"]["grid"])


def case_recipe(wildcards):
    """What one case's up-sampled images must record to be trained on (a file of another case, or made with
    other settings, is refused): its window, stride, the recipe's later steps where they are not at their
    defaults (bits, codec, quality, tile), method and the grid it really uses."""
    return {
        "window": case_window(wildcards),
        "stride": case_stride(wildcards),
        **storage_recipe(wildcards.case).recorded(),
        "method": case_interpolation(wildcards),
        "grid": case_grid(wildcards),
    }


def case_methods():
    """Interpolation method of every case (the summary's method column), by case name.

    A lookup, sorted so that reordering cases in a config file (or Snakemake's
    merge of --configfile files, which puts a case an overlay restates first)
    changes no parameter: the tables take their order from the inputs.
    """
    return {case: case_method(config, case) for case in sorted(CASES)}


def compares_methods():
    """Whether the compared cases use more than one interpolation method (else methods.png has one column)."""
    return len({case_method(config, case) for case in COMPARED_CASES}) > 1


def training_settings():
    """The training section without the settings that change no result (so changing them reruns nothing)."""
    return {key: value for key, value in config["training"].items() if key not in TRAINING_EXECUTION_KEYS}


def run_files(group, name):
    """One output of a training rule: the file `name` (RUN_FILES) of each seed of the group; none where
    training.keep leaves the file out."""
    if name not in RUN_FILES:
        return []
    return expand("results/{{dataset}}/{{case}}/seed{seed}/{file}", seed=group, file=RUN_FILES[name])


def finished_runs(seed):
    """The (data set, case) pairs whose run of `seed` has the files the analysis reads (its record is written
    last): what a training job must not redo. Not the kept model and predictions, so that a new training.keep
    groups no run anew; a fixed design's default target asks for them, which trains such a run again."""
    return frozenset(
        (dataset, case)
        for dataset in DATASETS
        for case in [*CASES, *SEARCH_CASES]
        if all(Path(f"results/{dataset}/{case}/seed{seed}/{file}").is_file() for file in kept_run_files().values())
    )


def seed_groups():
    """The seeds of one training job each: fixed blocks of training.seeds_per_job, cut at the looks, and split
    into the seeds already trained and the others (so a block that grows adds a job, and reruns no finished one).

    A job process (a cluster job runs Snakemake again to run one job) cannot see the files as the main
    process saw them (other jobs write runs meanwhile), and need not: it builds only the rules its command
    line names, whose names hold their seeds.
    """
    if not workflow.is_main_process:
        return groups_sent(sys.argv[1:])
    return group_seeds(TRAINABLE_SEEDS, config["training"]["seeds_per_job"], LOOKS or (), finished_runs)


# The sequential design's input functions (rules/sequential.smk, README "Sequential design").


def look_record(dataset, look):
    """The record of one look of a data set; None while it is not on disk.

    A record on disk is read through its checkpoint, so Snakemake re-reads the plan once the
    look is up to date (it may be judged again first, when its params changed). A record not on
    disk is an ordinary missing input of the job that needs it, so a design that has not started,
    or a fixed design turned sequential, schedules its first look even where the summary exists
    (a job waiting for a checkpoint is not checked for changed params until the checkpoint runs).
    """
    if not Path(LOOK_RECORD.format(dataset=dataset, look=look)).is_file():
        return None
    return read_json(checkpoints.look.get(dataset=dataset, look=str(look)).output.record, stage="look")


def look_plan(dataset, look):
    """Seeds each case has at a look: the first look's count for every case, then what the look before
    planned (None until the look before is judged)."""
    if look == 1:
        return dict.fromkeys(CASES, LOOKS[0])
    record = look_record(dataset, look - 1)
    if record is not None and record["next"] is None:
        raise PoolupError(f"look {look - 1} of data set {dataset} ended the design: there is no look {look}")
    return None if record is None else record["next"]


def design_state(dataset):
    """Where the design of a data set stands: (seeds each case trains, or None while a look is to be judged;
    the record of the look that ended the design, or of the look to be judged)."""
    look = 1
    while (record := look_record(dataset, look)) is not None and record["next"] is not None:
        look += 1
    return (None if record is None else record["design"]), LOOK_RECORD.format(dataset=dataset, look=look)


def runs_of(plan, dataset, name):
    """One file (RUN_FILES) of every run a plan {case: seeds or a seed count} holds, case by case (none: no plan)."""
    return (
        [
            f"results/{dataset}/{case}/seed{seed}/{RUN_FILES[name]}"
            for case in CASES
            for seed in (range(plan[case]) if isinstance(plan[case], int) else plan[case])
        ]
        if plan
        else []
    )


def design_runs(name):
    """Input function of the aggregation: one file of every run the design trains (every case's `seeds`
    in a fixed design)."""
    if not LOOKS:
        return lambda wildcards: runs_of(dict.fromkeys(CASES, SEEDS), wildcards.dataset, name)
    return lambda wildcards: runs_of(design_state(wildcards.dataset)[0], wildcards.dataset, name)


def design_record(wildcards):
    """Input function of the aggregation: the record of the look that ended a sequential design, or of the look
    it waits for (none in a fixed design)."""
    return [design_state(wildcards.dataset)[1]] if LOOKS else []


def look_runs(wildcards):
    """Input function of a look: the test metrics of the seeds each case has at that look."""
    return runs_of(look_plan(wildcards.dataset, int(wildcards.look)), wildcards.dataset, "metrics")


def previous_look(wildcards):
    """The record of the look before (none before the first)."""
    look = int(wildcards.look)
    return [] if look == 1 else [LOOK_RECORD.format(dataset=wildcards.dataset, look=look - 1)]


# The search's input functions (rules/search.smk, src/poolup/search.py).
SEARCH_STEP = "results/{dataset}/search/step{step}.json"
# The search's looks: analysis.sequential's, else one look of every seed (a fixed design).
SEARCH_LOOKS = LOOKS or [len(SEEDS)]


def search_record(dataset, step):
    """The record of one step of a data set's search, read through its checkpoint (so the plan is re-read)."""
    return read_json(checkpoints.search_step.get(dataset=dataset, step=str(step)).output.record, stage="search")


def search_storage(wildcards):
    """Stage one's records of the baseline and every candidate: what the walk orders by."""
    return expand(
        "results/{dataset}/{case}/storage.json", dataset=wildcards.dataset, case=[config["baseline"], *SEARCH_CASES]
    )


def search_previous_step(wildcards):
    """The record of the step before (none before the first)."""
    step = int(wildcards.step)
    return [] if step == 1 else [SEARCH_STEP.format(dataset=wildcards.dataset, step=step - 1)]


def search_step_runs(wildcards):
    """A step's runs: the test metrics of the seeds the step before planned (none at the first step)."""
    step = int(wildcards.step)
    if step == 1:
        return []
    planned = search_record(wildcards.dataset, step - 1)["runs"]
    return [
        f"results/{wildcards.dataset}/{case}/seed{seed}/{RUN_FILES['metrics']}"
        for case, seeds in planned.items()
        for seed in range(seeds)
    ]


def search_final(wildcards):
    """The record of the step that ended the search (the steps before run first)."""
    step = 1
    while search_record(wildcards.dataset, step)["next"] is not None:
        step += 1
    return SEARCH_STEP.format(dataset=wildcards.dataset, step=step)


def plot_settings(*keys):
    """The `plots` settings a figure uses (so a new number of examples redraws only the figures that show examples)."""
    return {key: config["plots"][key] for key in keys}


# The metrics drawn as figures: one learning-curve figure each (of the ten history.csv columns) and one per-class figure each.
CURVE_FIGURE_METRICS = ["loss", "precision", "recall", "f1"]
PER_CLASS_FIGURE_METRICS = ["precision", "recall", "f1"]


def case_labels():
    """Legend text of each case, by case name (plots only: a new label reruns only plots).

    A lookup, sorted like case_methods(): figures take their order from the
    summary files they draw.
    """
    return {case: config["cases"][case].get("label", case) for case in sorted(CASES)}


def case_label(wildcards):
    """Legend text of one case (so a new case does not rerun the other cases' figures)."""
    return case_labels()[wildcards.case]


def all_targets():
    """Every file a run writes, except the intermediates that only feed other jobs (raw.h5, pooled.h5, upsampled.h5).

    Snakemake remakes a deleted file only if it is asked for, so the default target asks for every
    record, run file, summary file and figure: the plain command redoes a deleted one (and what was
    made from it). A deleted intermediate is not remade by it (deleting one to save space costs no
    rerun); `poolup verify` names it and the command that remakes exactly it.
    """
    per_case = {"dataset": DATASETS, "case": CASES}
    figures = ["results/{dataset}/figures/{name}.png", "results/{dataset}/figures/{name}.pdf"]
    return [
        *rules.compare_datasets.output,
        *expand(rules.store.output, **per_case),
        *expand(rules.codecs.output, **per_case),
        # Every run's files of a fixed design (a sequential design's runs are asked for by its looks).
        *(
            path
            for dataset in (DATASETS if not LOOKS else [])
            for name in RUN_FILES
            for path in runs_of(dict.fromkeys(CASES, SEEDS), dataset, name)
        ),
        *expand(rules.aggregate.output, dataset=DATASETS),
        *expand(rules.codec_table.output, dataset=DATASETS),
        *expand(figures, dataset=DATASETS, name=["examples", "tradeoff"]),
        # The methods figure compares interpolation methods: drawn where the cases use several.
        *expand(figures, dataset=DATASETS if compares_methods() else [], name=["methods"]),
        # The frontier: every case's bytes against its paired ΔF1 (needs a case besides the baseline).
        *expand(
            "results/{dataset}/summary/{name}",
            dataset=DATASETS if COMPARED_CASES else [],
            name=["frontier.csv", "frontier.md", "frontier.manifest.json"],
        ),
        *expand(figures, dataset=DATASETS if COMPARED_CASES else [], name=["frontier"]),
        # Figures of the paired comparison need a case besides the baseline.
        *expand(
            figures,
            dataset=DATASETS if COMPARED_CASES else [],
            name=["confusion_vs_baseline", "forest", "per_class_delta"],
        ),
        *expand(figures, dataset=DATASETS, name=[f"curve_{metric}" for metric in CURVE_FIGURE_METRICS]),
        *expand(
            figures,
            dataset=DATASETS,
            name=[f"per_class_{metric}" for metric in PER_CLASS_FIGURE_METRICS],
        ),
        *expand(figures, dataset=DATASETS, name=[f"preprocessing_{case}" for case in COMPARED_CASES]),
        # A search (rules/search.smk): its table, its answer and its figure.
        *expand(
            ["results/{dataset}/summary/search.csv", "results/{dataset}/summary/search.md", *figures],
            dataset=DATASETS if SEARCH_CASES else [],
            name=["search"],
        ),
    ]


# When this Snakemake process started: the end of the run names only the answers it wrote.
RUN_STARTED = time.time()


def run_config_options():
    """The command-line options that selected this run's config (for the report command)."""
    settings = workflow.config_settings
    return config_options(settings.configfiles, settings.replace_workflow_config, settings.config_args or ())


def say_where_the_answer_is():
    """At the end of a successful run: where the answer is and the report command for this config."""
    for line in answer_lines(DATASETS, report_command(run_config_options(), workflow.main_snakefile), RUN_STARTED):
        sys.stderr.write(line + "\n")
