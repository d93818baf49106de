from poolup.frontier import fidelity
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    record = fidelity(
        raw=snakemake.input.raw,
        upsampled=snakemake.input.upsampled,
        fidelity=snakemake.output.fidelity,
        case=snakemake.wildcards.case,
    )
    log.info("%s", record)
