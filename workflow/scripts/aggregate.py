from poolup.aggregate import aggregate
from poolup.scripting import logged_job

with logged_job(snakemake) as log:
    summary = aggregate(
        metrics=snakemake.input.metrics,
        history=snakemake.input.history,
        storage=snakemake.input.storage,
        runs=snakemake.output.runs,
        summary=snakemake.output.summary,
        summary_md=snakemake.output.summary_md,
        result=snakemake.output.result,
        methods_md=snakemake.output.methods_md,
        mean_history=snakemake.output.mean_history,
        per_class=snakemake.output.per_class,
        per_class_delta=snakemake.output.per_class_delta,
        confusion=snakemake.output.confusion,
        manifest=snakemake.output.manifest,
        baseline=snakemake.params.baseline,
        analysis=snakemake.params.analysis,
        methods=snakemake.params.methods,
        design=snakemake.input.design,
    )
    log.info("\n%s", summary.to_string())
