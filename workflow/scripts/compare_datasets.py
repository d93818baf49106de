from poolup.aggregate import compare_datasets
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    summaries = dict(zip(snakemake.params.datasets, snakemake.input.summaries, strict=True))
    outputs = {name: snakemake.output[name] for name in ("summary", "summary_md", "manifest")}
    combined = compare_datasets(summaries, outputs, snakemake.params.baseline)
    log.info("\n%s", combined.to_string())
