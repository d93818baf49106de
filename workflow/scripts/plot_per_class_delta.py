from poolup.plots_paired import plot_per_class_delta
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_per_class_delta(
        per_class_delta=snakemake.input.per_class_delta,
        labels=snakemake.params.labels,
        confidence=snakemake.params.confidence,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
