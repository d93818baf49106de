from poolup import preprocess
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    record = preprocess.pool(
        raw=snakemake.input.raw,
        pooled=snakemake.output.pooled,
        case=snakemake.wildcards.case,
        window=snakemake.params.window,
        stride=snakemake.params.stride,
        dtype=snakemake.params.dtype,
        encoding=snakemake.params.encoding,
    )
    log.info("%s", record)
