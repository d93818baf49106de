# What the stored images cost under the codecs people use (src/poolup/codecs.py):
# one record per case, then one table per data set.
rule codecs:
    input:
        raw="results/{dataset}/raw.h5",
        pooled="results/{dataset}/{case}/pooled.h5",
    output:
        storage_codecs="results/{dataset}/{case}/storage_codecs.json",
    log:
        "results/logs/{dataset}/{case}/codecs.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/codecs.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        codecs=config["codecs"],
    script:
        "../workflow/scripts/codecs.py"


rule codec_table:
    input:
        storage_codecs=expand("results/{{dataset}}/{case}/storage_codecs.json", case=CASES),
    output:
        table=report(
            "results/{dataset}/summary/storage_codecs.csv",
            caption="../workflow/report/codecs.rst",
            category="4. Summary",
            subcategory="{dataset}",
            labels={"name": "storage under real codecs"},
        ),
    log:
        "results/logs/{dataset}/codec_table.log",
    benchmark:
        "results/benchmarks/{dataset}/codec_table.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        # Each listed storage_codecs.json must have been made for the case whose folder holds it.
        in_case_folders=True,
    script:
        "../workflow/scripts/codec_table.py"
