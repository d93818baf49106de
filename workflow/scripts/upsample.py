from poolup import stages
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    interpolation = snakemake.params.interpolation
    log.info("%s", stages.upsample(snakemake.input.stored, snakemake.output.upsampled, interpolation["method"], interpolation["grid"]))
