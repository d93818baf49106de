from poolup.codecs import measure_case
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    settings = snakemake.params.codecs
    log.info(
        "%s",
        measure_case(
            snakemake.input.raw, snakemake.input.pooled, snakemake.output.codecs, settings["names"], settings["sample"]
        ),
    )
