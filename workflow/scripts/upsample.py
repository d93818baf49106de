from poolup import stages
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    log.info(
        "%s",
        stages.upsample(
            snakemake.input.pooled, snakemake.output.upsampled, snakemake.params.method, snakemake.params.grid
        ),
    )
