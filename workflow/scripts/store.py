from poolup import stages
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    storage = snakemake.params.storage
    record = stages.store(
        snakemake.input.raw,
        snakemake.output.stored,
        snakemake.output.storage,
        case=snakemake.wildcards.case,
        window=snakemake.params.window,
        stride=snakemake.params.stride,
        dtype=storage["dtype"],
        filter_name=storage["filter"],
        level=storage["level"],
    )
    log.info("%s", record)
