from poolup.frontier import frontier
from poolup.scripting import logged_job

with logged_job(snakemake):
    frontier(
        summary=snakemake.input.summary,
        storage=snakemake.input.storage,
        fidelity=snakemake.input.fidelity,
        table=snakemake.output.table,
        table_md=snakemake.output.table_md,
        manifest=snakemake.output.manifest,
        baseline=snakemake.params.baseline,
        labels=snakemake.params.labels,
        margin=snakemake.params.margin,
        looks=snakemake.params.looks,
        in_case_folders=snakemake.params.in_case_folders,
    )
