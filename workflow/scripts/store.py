from poolup import preprocess
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    record = preprocess.store(
        pooled=snakemake.input.pooled,
        raw=snakemake.input.raw,
        stored=snakemake.output.stored,
        storage=snakemake.output.storage,
        encoding=snakemake.params.encoding,
        case=snakemake.wildcards.case,
    )
    log.info("%s", record)
