from poolup.codecs import codec_table
from poolup.scripting import logged_job

with logged_job(snakemake):
    codec_table(snakemake.input.codecs, snakemake.output.table)
