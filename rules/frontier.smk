# The rate-accuracy frontier (src/poolup/frontier.py): how close each case's images
# come back (PSNR, SSIM), then one table per data set of bytes against paired ΔF1.
rule fidelity:
    input:
        raw="results/{dataset}/raw.h5",
        pooled="results/{dataset}/{case}/pooled.h5",
    output:
        fidelity="results/{dataset}/{case}/fidelity.json",
    log:
        "results/logs/{dataset}/{case}/fidelity.log",
    benchmark:
        "results/benchmarks/{dataset}/{case}/fidelity.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        method=case_interpolation,
        grid=case_grid,
    script:
        "../workflow/scripts/fidelity.py"


rule frontier:
    input:
        summary="results/{dataset}/summary/summary.csv",
        storage=expand("results/{{dataset}}/{case}/storage.json", case=CASES),
        fidelity=expand("results/{{dataset}}/{case}/fidelity.json", case=CASES),
    output:
        table=report(
            "results/{dataset}/summary/frontier.csv",
            caption="../workflow/report/frontier_table.rst",
            category="5. Rate-accuracy frontier",
            subcategory="{dataset}",
            labels={"name": "bytes against ΔF1, per recipe"},
        ),
        table_md="results/{dataset}/summary/frontier.md",
        manifest="results/{dataset}/summary/frontier.manifest.json",
    log:
        "results/logs/{dataset}/frontier.log",
    benchmark:
        "results/benchmarks/{dataset}/frontier.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        baseline=config["baseline"],
        labels=case_labels(),
        margin=config["analysis"]["margin"],
        looks=LOOKS,
        # Each listed storage.json and fidelity.json must have been made for the case whose folder holds it.
        in_case_folders=True,
    script:
        "../workflow/scripts/frontier.py"
