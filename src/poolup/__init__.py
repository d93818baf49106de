"""poolup: how much classification quality is lost when images are stored average-pooled
and interpolated back to full size, and how much disk is saved."""

__version__ = "0.1.0"

# The package's modules. A workflow loaded as a Snakemake module from a git source
# (github(...), a URL) has no src/ folder on disk: rules/common.smk copies these
# files out of the source into the working directory. tests/test_deploy.py checks
# that the list names every module file.
MODULES = (
    "__init__",
    "__main__",
    "aggregate",
    "cli",
    "codecs",
    "config",
    "errors",
    "eval_images",
    "fidelity",
    "folders",
    "frontier",
    "h5files",
    "hints",
    "image_files",
    "job_inputs",
    "interpolation",
    "loop",
    "metrics",
    "model",
    "plots",
    "plots_paired",
    "plots_search",
    "pooling",
    "preprocess",
    "provenance",
    "quantization",
    "recipe",
    "records",
    "runs",
    "runtime",
    "scaling",
    "scripting",
    "search",
    "sequential",
    "sources",
    "splits",
    "stats",
    "storage",
    "summary_tables",
    "training",
    "verify",
)
