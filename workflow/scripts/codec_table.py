from poolup.codecs import codec_table
from poolup.scripting import logged_job

with logged_job(snakemake):
    codec_table(
        storage_codecs=snakemake.input.storage_codecs,
        table=snakemake.output.table,
        in_case_folders=snakemake.params.in_case_folders,
    )
