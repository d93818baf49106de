from poolup import preprocess
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    log.info("%s", preprocess.fetch(raw=snakemake.output.raw, dataset=snakemake.params.dataset))
