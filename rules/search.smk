# The cheapest recipe, searched (config `search`, src/poolup/search.py, docs/search.md). Stage
# one is every candidate's pool, store and fidelity jobs (rules/preprocess.smk, frontier.smk):
# bytes, PSNR and SSIM without training. Stage two is a chain of checkpoints: each step replays
# the walk on the runs it is given and plans the seeds of the test it stopped at, and Snakemake
# re-reads the plan when the step has run, so one command trains, judges and walks on, a dry run
# lists the next step's training, and an interrupted search resumes without retraining a run.
# Input functions: rules/common.smk.


checkpoint search_step:
    input:
        storage=search_storage,
        previous=search_previous_step,
        metrics=search_step_runs,
    output:
        record=SEARCH_STEP,
    log:
        "results/logs/{dataset}/search/step{step}.log",
    benchmark:
        "results/benchmarks/{dataset}/search/step{step}.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        baseline=config["baseline"],
        families=SEARCH_FAMILIES,
        looks=SEARCH_LOOKS,
        # Only what the verdicts use: new bootstrap or power settings walk no step again.
        analysis={key: config["analysis"][key] for key in ("confidence", "margin", "test_images")},
    script:
        "../workflow/scripts/search_step.py"


rule search_summary:
    input:
        record=search_final,
        storage=search_storage,
        fidelity=expand("results/{{dataset}}/{case}/fidelity.json", case=SEARCH_CASES),
    output:
        table=report(
            "results/{dataset}/summary/search.csv",
            caption="../workflow/report/search_table.rst",
            category="6. Search",
            subcategory="{dataset}",
            labels={"name": "every candidate of the search"},
        ),
        markdown="results/{dataset}/summary/search.md",
    log:
        "results/logs/{dataset}/search_summary.log",
    benchmark:
        "results/benchmarks/{dataset}/search_summary.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        baseline=config["baseline"],
        families=SEARCH_FAMILIES,
        labels={case: config["cases"][case]["label"] for case in SEARCH_CASES},
    script:
        "../workflow/scripts/search_summary.py"


rule plot_search:
    input:
        table="results/{dataset}/summary/search.csv",
    output:
        png=report(
            "results/{dataset}/figures/search.png",
            caption="../workflow/report/search_figure.rst",
            category="6. Search",
            subcategory="{dataset}",
            labels={"name": "bytes against ΔF1, every candidate"},
        ),
        pdf="results/{dataset}/figures/search.pdf",
    log:
        "results/logs/{dataset}/plot_search.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_search.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        margin=config["analysis"]["margin"],
        plots=plot_settings("dpi"),
    script:
        "../workflow/scripts/plot_search.py"
