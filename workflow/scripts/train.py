import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log

from poolup.scripting import logged_job
from poolup.training import RunPaths, TrainSettings, train_seeds

with logged_job(snakemake):
    out = snakemake.output
    train_seeds(
        snakemake.input.upsampled,
        {
            int(Path(paths.metrics).parent.name.removeprefix("seed")): paths  # .../seed{seed}/test_metrics.json
            for paths in map(RunPaths, out.model, out.history, out.metrics, out.predictions)
        },
        case=snakemake.wildcards.case,
        settings=TrainSettings.from_config(snakemake.params.training),
        image_shape=tuple(snakemake.params.image_shape),
        threads=snakemake.threads,
    )
