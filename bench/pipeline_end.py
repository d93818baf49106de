"""What the end of a run's input pipeline costs: deleting the tf.data iterator, with and without autotuning.

Each run builds the training pipeline of one seed over 56,000 images of 28x28 (random
pixels: the pipeline does not look at them), takes its 1,750 batches of 32 at the pace
of training (``--seconds`` per run; the steps themselves are a sleep, so that the timing
does not depend on the CPU), and deletes the iterator, as the end of a training run does.
The two pipelines run side by side, each in its own process:

- ``autotune``: ``prefetch(tf.data.AUTOTUNE)``, tf.data's default, whose autotuning thread
  sleeps between its rounds, up to a minute; deleting the iterator waits for it;
- ``fixed``: :func:`poolup.loop.training_batches`, a fixed prefetch buffer with autotuning off.

Prints lscpu's model name and flags, then per pipeline the seconds each deletion took, their mean
and the largest.

Usage: python bench/pipeline_end.py [--runs 4] [--seconds 70]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import cpu_description  # noqa: E402  (bench/train.py)

IMAGES, BATCH = 56_000, 32


def worker(pipeline: str, runs: int, seconds: float) -> None:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    import tensorflow as tf

    from poolup.loop import training_batches

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    images = np.zeros((IMAGES, 28, 28, 1), np.float32)
    labels = np.zeros(IMAGES, np.int32)
    steps = IMAGES // BATCH
    deletions = []
    for seed in range(runs):
        if pipeline == "fixed":
            batches = training_batches(images, labels, seed, BATCH, 1)
        else:
            batches = (
                tf.data.Dataset.from_tensor_slices((images, labels))
                .shuffle(IMAGES, seed=seed, reshuffle_each_iteration=True)
                .batch(BATCH)
                .repeat(1)
                .prefetch(tf.data.AUTOTUNE)
            )
        iterator = iter(batches)
        for step, _ in enumerate(iterator, start=1):
            if step % 100 == 0:
                time.sleep(seconds * 100 / steps)
        started = time.perf_counter()
        del iterator, batches
        deletions.append(time.perf_counter() - started)
    print(json.dumps(deletions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=70.0, help="training time per run to stand in for")
    args = parser.parse_args()
    print(cpu_description(), flush=True)
    print(f"\n{args.runs} runs per pipeline, {IMAGES:,} images in batches of {BATCH}, {args.seconds:.0f} s per run\n")
    command = [sys.executable, __file__, "worker", str(args.runs), str(args.seconds)]
    workers = {
        name: subprocess.Popen([*command, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("autotune", "fixed")
    }
    for name, process in workers.items():
        out, err = process.communicate()
        if process.returncode != 0:
            sys.exit(f"the {name} worker failed:\n{err[-2000:]}")
        deletions = json.loads(out.strip().splitlines()[-1])
        listed = " ".join(f"{d:5.2f}" for d in deletions)
        print(
            f"{name:9} deleting the iterator: {listed} s;"
            f" mean {sum(deletions) / len(deletions):5.2f}, max {max(deletions):5.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[4], int(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
