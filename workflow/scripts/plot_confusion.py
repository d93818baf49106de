from poolup.plots import plot_confusion
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_confusion(
        confusion=snakemake.input.confusion,
        baseline=snakemake.params.baseline,
        labels=snakemake.params.labels,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
