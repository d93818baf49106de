from poolup.codecs import measure_case
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    records = measure_case(
        raw=snakemake.input.raw,
        pooled=snakemake.input.pooled,
        storage_codecs=snakemake.output.storage_codecs,
        names=snakemake.params.codecs["names"],
        sample=snakemake.params.codecs["sample"],
        case=snakemake.wildcards.case,
    )
    log.info("%s", records)
