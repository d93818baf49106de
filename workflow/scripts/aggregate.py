from poolup.aggregate import OUTPUT_NAMES, aggregate
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    outputs = {name: snakemake.output[name] for name in OUTPUT_NAMES}
    summary = aggregate(
        snakemake.input.metrics,
        snakemake.input.history,
        snakemake.input.storage,
        outputs,
        snakemake.params.baseline,
        snakemake.params.analysis,
        snakemake.params.methods,
    )
    log.info("\n%s", summary.to_string())
