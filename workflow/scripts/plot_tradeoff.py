from poolup.plots import plot_tradeoff
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_tradeoff(
        summary=snakemake.input.summary,
        codec_table=snakemake.input.codec_table,
        labels=snakemake.params.labels,
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
