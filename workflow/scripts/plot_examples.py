from poolup.plots import plot_examples
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_examples(
        raw=snakemake.input.raw,
        examples=snakemake.params.plots["examples"],
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
