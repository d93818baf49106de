from poolup.plots import plot_curves
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_curves(
        mean_history=snakemake.input.mean_history,
        metric=snakemake.wildcards.metric,
        labels=snakemake.params.labels,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
