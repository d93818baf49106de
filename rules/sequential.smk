# The sequential design (analysis.sequential.looks; README, "Sequential design"): each look is a
# checkpoint that judges every case on the seeds trained so far and plans the seeds of the next
# look; Snakemake re-reads the plan when the checkpoint has run, so one command trains, judges
# and trains again look after look, a dry run lists what the next look trains, and an
# interrupted design resumes at its first look without a record. In a fixed design (no looks)
# no rule here runs: the aggregation takes every case's `seeds`. Input functions: rules/common.smk.


checkpoint look:
    input:
        metrics=look_runs,
        previous=previous_look,
    output:
        record=LOOK_RECORD,
    log:
        "results/logs/{dataset}/look{look}.log",
    benchmark:
        "results/benchmarks/{dataset}/look{look}.tsv"
    conda:
        "../workflow/envs/poolup.yaml"
    params:
        baseline=config["baseline"],
        cases=CASES,
        looks=LOOKS,
        # Only what the verdict uses: new bootstrap or power settings judge no look again.
        analysis={key: config["analysis"][key] for key in ("confidence", "margin", "test_images")},
    script:
        "../workflow/scripts/look.py"
