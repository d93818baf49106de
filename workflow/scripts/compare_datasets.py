from poolup.aggregate import compare_datasets
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    combined = compare_datasets(
        summaries=snakemake.input.summaries,
        datasets=snakemake.params.datasets,
        table=snakemake.output.table,
        table_md=snakemake.output.table_md,
        manifest=snakemake.output.manifest,
        baseline=snakemake.params.baseline,
    )
    log.info("\n%s", combined.to_string())
