import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log

from poolup.scripting import logged_job
from poolup.training import train

with logged_job(snakemake):
    train(
        pooled=snakemake.input.pooled,
        raw=snakemake.input.raw,
        model=snakemake.output.model,
        history=snakemake.output.history,
        metrics=snakemake.output.metrics,
        predictions=snakemake.output.predictions,
        case=snakemake.wildcards.case,
        dataset=snakemake.wildcards.dataset,
        training=snakemake.params.training,
        image_shape=snakemake.params.image_shape,
        recipe=snakemake.params.recipe,
        model_sha256=snakemake.params.model_sha256,
        threads=snakemake.threads,
    )
