from poolup.plots_search import plot_search
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_search(
        table=snakemake.input.table,
        margin=snakemake.params.margin,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
