import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log

from poolup.scripting import logged_job
from poolup.training import RunPaths, TrainSettings, train_run

with logged_job(snakemake):
    train_run(
        snakemake.input.upsampled,
        RunPaths(**{name: snakemake.output[name] for name in ("model", "history", "metrics", "predictions")}),
        case=snakemake.wildcards.case,
        seed=int(snakemake.wildcards.seed),
        settings=TrainSettings.from_config(snakemake.params.training),
        image_shape=tuple(snakemake.params.image_shape),
        threads=snakemake.threads,
    )
