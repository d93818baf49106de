from poolup import preprocess
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    record = preprocess.upsample(
        pooled=snakemake.input.pooled,
        upsampled=snakemake.output.upsampled,
        method=snakemake.params.method,
        grid=snakemake.params.grid,
        case=snakemake.wildcards.case,
    )
    log.info("%s", record)
