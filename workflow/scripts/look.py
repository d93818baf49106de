from poolup.scripting import logged_job
from poolup.sequential import judge_look

with logged_job(snakemake) as log:
    record = judge_look(
        metrics=snakemake.input.metrics,
        previous=snakemake.input.previous,
        record=snakemake.output.record,
        look=snakemake.wildcards.look,
        baseline=snakemake.params.baseline,
        cases=snakemake.params.cases,
        looks=snakemake.params.looks,
        analysis=snakemake.params.analysis,
    )
    log.info("look %s (%s seeds): open %s, next %s", record["look"], record["seeds"], record["open"], record["next"])
