rule aggregate:
    input:
        # Every case's `seeds`, or in a sequential design the seeds its looks trained (rules/sequential.smk).
        metrics=design_runs("metrics"),
        history=design_runs("history"),
        storage=expand("results/{{dataset}}/{case}/storage.json", case=CASES),
        design=design_record,
    output:
        runs="results/{dataset}/summary/runs.csv",
        summary=report(
            "results/{dataset}/summary/summary.csv",
            caption="../workflow/report/summary.rst",
            category="4. Summary",
            subcategory="{dataset}",
            labels={"name": "per-case summary"},
        ),
        summary_md="results/{dataset}/summary/summary.md",
        result=report(
            "results/{dataset}/summary/result.csv",
            caption="../workflow/report/result.rst",
            category="4. Summary",
            subcategory="{dataset}",
            labels={"name": "the answer: paired ΔF1 and verdict"},
        ),
        methods_md="results/{dataset}/summary/methods.md",
        mean_history="results/{dataset}/summary/history.csv",
        per_class="results/{dataset}/summary/per_class.csv",
        per_class_delta="results/{dataset}/summary/per_class_delta.csv",
        confusion="results/{dataset}/summary/confusion.json",
        manifest="results/{dataset}/summary/manifest.json",
    log:
        "results/logs/{dataset}/aggregate.log",
    benchmark:
        "results/benchmarks/{dataset}/aggregate.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        baseline=config["baseline"],
        analysis=config["analysis"],
        methods=case_methods(),
    script:
        "../workflow/scripts/aggregate.py"


rule compare_datasets:
    input:
        summaries=expand("results/{dataset}/summary/summary.csv", dataset=DATASETS),
    output:
        table=report(
            "results/summary/datasets.csv",
            caption="../workflow/report/datasets.rst",
            category="4. Summary",
            subcategory="all data sets",
            labels={"name": "every data set"},
        ),
        table_md="results/summary/datasets.md",
        manifest="results/summary/manifest.json",
    log:
        "results/logs/compare_datasets.log",
    benchmark:
        "results/benchmarks/compare_datasets.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        datasets=DATASETS,
        baseline=config["baseline"],
    script:
        "../workflow/scripts/compare_datasets.py"
