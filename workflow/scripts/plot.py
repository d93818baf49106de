from poolup.plots import draw
from poolup.scripting import logged_job

with logged_job(snakemake):
    draw(
        snakemake.rule,
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        dict(snakemake.params.items()),
        dict(snakemake.wildcards.items()),
    )
