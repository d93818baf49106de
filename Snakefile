# poolup: what each way of storing images in fewer bytes (a recipe: pool, quantise, encode)
# costs in classification quality. See README.md and docs/.
from snakemake.utils import min_version

min_version("9.19")  # the same lower bound as pyproject.toml's snakemake>=9.19 (tests/test_deploy.py)


# The workflow's package on sys.path, and config.yaml checked before Snakemake reads it.
include: "rules/startup.smk"


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/preprocess.smk"
include: "rules/codecs.smk"
include: "rules/train.smk"
include: "rules/sequential.smk"
include: "rules/aggregate.smk"
include: "rules/frontier.smk"
include: "rules/search.smk"
include: "rules/plots.smk"


# Jobs of seconds that read and write a few small files: run them on the submitting
# host instead of one cluster job each.
localrules:
    all,
    codec_table,
    compare_datasets,
    plot_examples,
    plot_preprocessing,
    plot_curves,
    plot_per_class,
    plot_tradeoff,
    plot_methods,
    plot_confusion,
    plot_forest,
    plot_per_class_delta,
    frontier,
    plot_frontier,
    search_summary,
    plot_search,


rule all:
    default_target: True
    input:
        all_targets(),


# `snakemake --report` builds the report of the config it is given. Asked for with
# another config than the run's, it would report missing results without a word of
# why (one "Missing metadata" line per file): say it once, first (here, once every rule is defined: all_targets reads their outputs). Snakemake tells a
# Snakefile nothing about --report, so the command line is read.
if any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv):
    hint = report_hint([target for target in all_targets() if not Path(target).exists()])
    if hint:
        sys.stderr.write(hint + "\n")


onsuccess:
    say_where_the_answer_is()
