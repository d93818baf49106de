from poolup.plots_paired import plot_frontier
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_frontier(
        table=snakemake.input.table,
        margin=snakemake.params.margin,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
