from poolup.scripting import logged_job
from poolup.search import summarise

with logged_job(snakemake):
    summarise(
        record=snakemake.input.record,
        storage=snakemake.input.storage,
        fidelity=snakemake.input.fidelity,
        table=snakemake.output.table,
        markdown=snakemake.output.markdown,
        families=snakemake.params.families,
        labels=snakemake.params.labels,
        baseline=snakemake.params.baseline,
    )
