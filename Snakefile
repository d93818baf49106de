# poolup: classification quality lost, and disk saved, when images are stored
# average-pooled and interpolated back to full size. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/preprocess.smk"
include: "rules/codecs.smk"
include: "rules/train.smk"
include: "rules/sequential.smk"
include: "rules/aggregate.smk"
include: "rules/plots.smk"


rule all:
    default_target: True
    input:
        all_targets(),
