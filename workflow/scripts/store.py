from poolup import stages
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    encoding = snakemake.params.encoding
    record = stages.store_pooled(
        snakemake.input.pooled,
        snakemake.input.raw,
        snakemake.output.stored,
        snakemake.output.storage,
        filter_name=encoding["filter"],
        level=encoding["level"],
    )
    log.info("%s", record)
