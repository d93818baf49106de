rule fetch:
    output:
        raw="results/{dataset}/raw.h5",
    params:
        dataset=dataset_spec,
    log:
        "results/logs/{dataset}/fetch.log",
    benchmark:
        "results/benchmarks/{dataset}/fetch.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    script:
        "../workflow/scripts/fetch.py"


rule store:
    input:
        raw="results/{dataset}/raw.h5",
    output:
        stored="results/{dataset}/{case}/stored.h5",
        storage="results/{dataset}/{case}/storage.json",
    params:
        window=case_window,
        stride=case_stride,
        storage=config["storage"],
    log:
        "results/logs/{dataset}/{case}/store.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/store.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    script:
        "../workflow/scripts/store.py"


rule codecs:
    input:
        raw="results/{dataset}/raw.h5",
        stored="results/{dataset}/{case}/stored.h5",
    output:
        codecs="results/{dataset}/{case}/storage_codecs.json",
    params:
        codecs=config["codecs"],
    log:
        "results/logs/{dataset}/{case}/codecs.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/codecs.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    script:
        "../workflow/scripts/codecs.py"


rule upsample:
    input:
        stored="results/{dataset}/{case}/stored.h5",
    output:
        upsampled="results/{dataset}/{case}/upsampled.h5",
    params:
        method=case_interpolation,
        grid=case_grid,
    log:
        "results/logs/{dataset}/{case}/upsample.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/upsample.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    script:
        "../workflow/scripts/upsample.py"
