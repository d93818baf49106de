from poolup.plots import plot_methods
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_methods(
        summary=snakemake.input.summary,
        baseline=snakemake.params.baseline,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
