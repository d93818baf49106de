from poolup.plots_paired import plot_forest
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_forest(
        summary=snakemake.input.summary,
        baseline=snakemake.params.baseline,
        labels=snakemake.params.labels,
        analysis=snakemake.params.analysis,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
