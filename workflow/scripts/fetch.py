from poolup import stages
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    log.info("%s", stages.fetch_from_settings(snakemake.output.raw, snakemake.params.dataset))
