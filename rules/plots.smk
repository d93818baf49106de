rule plot_examples:
    input:
        raw="results/{dataset}/raw.h5",
    output:
        png=report(
            "results/{dataset}/figures/examples.png",
            caption="../workflow/report/examples.rst",
            category="1. Data",
            subcategory="{dataset}",
            labels={"name": "Fig. 1 example digits"},
        ),
        pdf="results/{dataset}/figures/examples.pdf",
    log:
        "results/logs/{dataset}/plot_examples.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_examples.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=config["plots"],
    script:
        "../workflow/scripts/plot_examples.py"


rule plot_preprocessing:
    input:
        raw="results/{dataset}/raw.h5",
        # The stored pixels (stored.h5 holds them too, re-encoded), up-sampled in memory.
        pooled="results/{dataset}/{case}/pooled.h5",
    output:
        png=report(
            "results/{dataset}/figures/preprocessing_{case}.png",
            caption="../workflow/report/preprocessing.rst",
            category="1. Data",
            subcategory="{dataset}",
            labels={"name": "Figs. 2-5 preprocessing", "case": "{case}"},
        ),
        pdf="results/{dataset}/figures/preprocessing_{case}.pdf",
    log:
        "results/logs/{dataset}/plot_preprocessing_{case}.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_preprocessing_{case}.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=config["plots"],
        label=case_label,
        method=case_interpolation,
        grid=case_grid,
    script:
        "../workflow/scripts/plot_preprocessing.py"


rule plot_curves:
    input:
        mean_history="results/{dataset}/summary/history.csv",
    output:
        png=report(
            "results/{dataset}/figures/curve_{metric}.png",
            caption="../workflow/report/curves.rst",
            category="2. Learning curves",
            subcategory="{dataset}",
            labels={"name": "Figs. 6-9 learning curves", "metric": "{metric}"},
        ),
        pdf="results/{dataset}/figures/curve_{metric}.pdf",
    log:
        "results/logs/{dataset}/plot_curve_{metric}.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_curve_{metric}.tsv"
    wildcard_constraints:
        metric="|".join(CURVE_FIGURE_METRICS),
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        labels=case_labels(),
    script:
        "../workflow/scripts/plot_curves.py"


rule plot_per_class:
    input:
        per_class="results/{dataset}/summary/per_class.csv",
    output:
        png=report(
            "results/{dataset}/figures/per_class_{metric}.png",
            caption="../workflow/report/per_class.rst",
            category="3. Test scores",
            subcategory="{dataset}",
            labels={"name": "Figs. 10-12 per-class test scores", "metric": "{metric}"},
        ),
        pdf="results/{dataset}/figures/per_class_{metric}.pdf",
    log:
        "results/logs/{dataset}/plot_per_class_{metric}.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_per_class_{metric}.tsv"
    wildcard_constraints:
        metric="|".join(PER_CLASS_FIGURE_METRICS),
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        labels=case_labels(),
    script:
        "../workflow/scripts/plot_per_class.py"


rule plot_tradeoff:
    input:
        summary="results/{dataset}/summary/summary.csv",
        codec_table="results/{dataset}/summary/storage_codecs.csv",
    output:
        png=report(
            "results/{dataset}/figures/tradeoff.png",
            caption="../workflow/report/tradeoff.rst",
            category="4. Summary",
            subcategory="{dataset}",
            labels={"name": "storage-accuracy trade-off"},
        ),
        pdf="results/{dataset}/figures/tradeoff.pdf",
    log:
        "results/logs/{dataset}/plot_tradeoff.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_tradeoff.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        labels=case_labels(),
    script:
        "../workflow/scripts/plot_tradeoff.py"


rule plot_methods:
    input:
        summary="results/{dataset}/summary/summary.csv",
    output:
        png=report(
            "results/{dataset}/figures/methods.png",
            caption="../workflow/report/methods.rst",
            category="4. Summary",
            subcategory="{dataset}",
            labels={"name": "interpolation methods"},
        ),
        pdf="results/{dataset}/figures/methods.pdf",
    log:
        "results/logs/{dataset}/plot_methods.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_methods.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        baseline=config["baseline"],
    script:
        "../workflow/scripts/plot_methods.py"


rule plot_confusion:
    input:
        confusion="results/{dataset}/summary/confusion.json",
    output:
        png=report(
            "results/{dataset}/figures/confusion_vs_baseline.png",
            caption="../workflow/report/confusion.rst",
            category="3. Test scores",
            subcategory="{dataset}",
            labels={"name": "confusion minus baseline"},
        ),
        pdf="results/{dataset}/figures/confusion_vs_baseline.pdf",
    log:
        "results/logs/{dataset}/plot_confusion.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_confusion.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        labels=case_labels(),
        baseline=config["baseline"],
    script:
        "../workflow/scripts/plot_confusion.py"


rule plot_forest:
    input:
        summary="results/{dataset}/summary/summary.csv",
    output:
        png=report(
            "results/{dataset}/figures/forest.png",
            caption="../workflow/report/forest.rst",
            category="4. Summary",
            subcategory="{dataset}",
            labels={"name": "paired ΔF1 against the margin"},
        ),
        pdf="results/{dataset}/figures/forest.pdf",
    log:
        "results/logs/{dataset}/plot_forest.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_forest.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        labels=case_labels(),
        baseline=config["baseline"],
        # only what the figure draws: new bootstrap or power settings do not redraw it
        analysis={key: config["analysis"][key] for key in ("confidence", "margin", "sequential")},
    script:
        "../workflow/scripts/plot_forest.py"


rule plot_per_class_delta:
    input:
        per_class_delta="results/{dataset}/summary/per_class_delta.csv",
    output:
        png=report(
            "results/{dataset}/figures/per_class_delta.png",
            caption="../workflow/report/per_class_delta.rst",
            category="3. Test scores",
            subcategory="{dataset}",
            labels={"name": "per-class ΔF1 against the baseline"},
        ),
        pdf="results/{dataset}/figures/per_class_delta.pdf",
    log:
        "results/logs/{dataset}/plot_per_class_delta.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_per_class_delta.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        labels=case_labels(),
        confidence=config["analysis"]["confidence"],
    script:
        "../workflow/scripts/plot_per_class_delta.py"


rule plot_frontier:
    input:
        table="results/{dataset}/summary/frontier.csv",
    output:
        png=report(
            "results/{dataset}/figures/frontier.png",
            caption="../workflow/report/frontier.rst",
            category="5. Rate-accuracy frontier",
            subcategory="{dataset}",
            labels={"name": "bytes against ΔF1, per recipe"},
        ),
        pdf="results/{dataset}/figures/frontier.pdf",
    log:
        "results/logs/{dataset}/plot_frontier.log",
    benchmark:
        "results/benchmarks/{dataset}/plot_frontier.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        plots=plot_settings("dpi"),
        margin=config["analysis"]["margin"],
    script:
        "../workflow/scripts/plot_frontier.py"
