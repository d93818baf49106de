from poolup.plots import plot_preprocessing
from poolup.scripting import logged_job

with logged_job(snakemake):
    plot_preprocessing(
        raw=snakemake.input.raw,
        pooled=snakemake.input.pooled,
        label=snakemake.params.label,
        method=snakemake.params.method,
        grid=snakemake.params.grid,
        case=snakemake.wildcards.case,
        examples=snakemake.params.plots["examples"],
        png=snakemake.output.png,
        pdf=snakemake.output.pdf,
        dpi=snakemake.params.plots["dpi"],
    )
