from poolup import stages
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    params = snakemake.params
    log.info(
        "%s",
        stages.pool(
            snakemake.input.raw,
            snakemake.output.pooled,
            snakemake.wildcards.case,
            params.window,
            params.stride,
            params.dtype,
        ),
    )
