rule fetch:
    input:
        unpack(dataset_source_files),
    output:
        raw="results/{dataset}/raw.h5",
    log:
        "results/logs/{dataset}/fetch.log",
    benchmark:
        "results/benchmarks/{dataset}/fetch.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        dataset=dataset_spec,
    script:
        "../workflow/scripts/fetch.py"


# pool applies the case's storage recipe (pool -> quantise -> encode, src/poolup/recipe.py)
# and writes what the case stores, in one fixed HDF5 encoding; store writes it again
# under the configured filter and measures the bytes. Everything that reads pixels
# reads pooled.h5 (through the recipe's way back), so a new filter or level reruns
# only store and the summaries of its byte counts (README, "What a config change reruns").
rule pool:
    input:
        raw="results/{dataset}/raw.h5",
    output:
        pooled="results/{dataset}/{case}/pooled.h5",
    log:
        "results/logs/{dataset}/{case}/pool.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/pool.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        window=case_window,
        stride=case_stride,
        dtype=case_dtype,
        encoding=case_encoding,
    script:
        "../workflow/scripts/pool.py"


rule store:
    input:
        pooled="results/{dataset}/{case}/pooled.h5",
        raw="results/{dataset}/raw.h5",
    output:
        stored="results/{dataset}/{case}/stored.h5",
        storage="results/{dataset}/{case}/storage.json",
    log:
        "results/logs/{dataset}/{case}/store.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/store.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        encoding=storage_encoding(),
    script:
        "../workflow/scripts/store.py"


rule upsample:
    input:
        pooled="results/{dataset}/{case}/pooled.h5",
    output:
        upsampled="results/{dataset}/{case}/upsampled.h5",
    log:
        "results/logs/{dataset}/{case}/upsample.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/upsample.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        method=case_interpolation,
        grid=case_grid,
    script:
        "../workflow/scripts/upsample.py"
