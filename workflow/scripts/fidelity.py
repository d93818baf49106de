from poolup.frontier import fidelity
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    record = fidelity(
        raw=snakemake.input.raw,
        pooled=snakemake.input.pooled,
        fidelity=snakemake.output.fidelity,
        method=snakemake.params.method,
        grid=snakemake.params.grid,
        case=snakemake.wildcards.case,
    )
    log.info("%s", record)
