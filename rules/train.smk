rule train:
    input:
        upsampled="results/{dataset}/{case}/upsampled.h5",
    output:
        model="results/{dataset}/{case}/seed{seed}/model.keras",
        history="results/{dataset}/{case}/seed{seed}/history.csv",
        metrics="results/{dataset}/{case}/seed{seed}/test_metrics.json",
        predictions="results/{dataset}/{case}/seed{seed}/predictions.h5",
    params:
        training=config["training"],
        image_shape=dataset_image_shape,
    threads: 1
    log:
        "results/logs/{dataset}/{case}/seed{seed}/train.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/seed{seed}/train.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    script:
        "../workflow/scripts/train.py"
