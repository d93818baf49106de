from poolup.scripting import logged_job
from poolup.search import search_step

with logged_job(snakemake) as log:
    record = search_step(
        storage=snakemake.input.storage,
        metrics=snakemake.input.metrics,
        previous=snakemake.input.previous,
        record=snakemake.output.record,
        step=snakemake.wildcards.step,
        baseline=snakemake.params.baseline,
        families=snakemake.params.families,
        looks=snakemake.params.looks,
        analysis=snakemake.params.analysis,
    )
    log.info(
        "search step %s: %d tests judged, next %s, answer so far %s",
        record["step"],
        len(record["tests"]),
        record["next"],
        record["answer"],
    )
