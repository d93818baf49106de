from poolup.plots import plot_per_class
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_per_class(
        per_class=snakemake.input.per_class,
        metric=snakemake.wildcards.metric,
        labels=snakemake.params.labels,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
