# One rule per group of seeds (training.seeds_per_job), generated from the config:
# a job trains its seeds of one case in one process, paying TensorFlow's start and
# the data loading once, and writes each seed's files at the per-seed paths. Groups
# are fixed blocks of seed numbers (seed // seeds_per_job), cut at the looks of a
# sequential design, and a block's finished seeds are a group of their own
# (seed_groups): adding seeds adds jobs and reruns no finished run.
for group in seed_groups():

    rule:
        name:
            group_name(group)
        input:
            # The stored payload, up-sampled in memory: the same arrays upsampled.h5 holds,
            # without writing 220 MB of float32 per MNIST case (rule upsample, on request).
            pooled="results/{dataset}/{case}/pooled.h5",
            # The images before the recipe: each run is evaluated on its test images as stored and raw.
            raw="results/{dataset}/raw.h5",
        output:
            model=run_files(group, "model"),
            history=run_files(group, "history"),
            metrics=run_files(group, "metrics"),
            predictions=run_files(group, "predictions"),
        log:
            f"results/logs/{{dataset}}/{{case}}/{group_name(group)}.log",
        benchmark:
            f"results/benchmarks/{{dataset}}/{{case}}/{group_name(group)}.tsv"
        conda:
            "../workflow/envs/poolup.yaml"
        threads: 1
        resources:
            # Per-rule settings cannot be listed in a profile for generated rules: here.
            # Peak RSS of one job on all 70,000 MNIST digits: 1,616 MB (+50 %).
            mem_mb=2500,
            runtime=10 + 5 * len(group),  # minutes; about 1 per seed on one CPU thread
        params:
            # Not the group's seeds: they come from the output paths, so that a new
            # seeds_per_job (new groups, same runs) reruns nothing.
            training=training_settings(),
            image_shape=dataset_image_shape,
            recipe=case_recipe,
            # The model file's content digest ("" for the paper's CNN): editing the file retrains.
            model_sha256=MODEL_SHA256,
        script:
            "../workflow/scripts/train.py"
