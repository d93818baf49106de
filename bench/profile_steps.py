"""Where a training step's time goes: oneDNN's kernels against everything else, for poolup's loop and a plain fit.

Each configuration runs twice in its own process on oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS=1``,
``training.onednn``'s default), on the baseline's images of a seeded MNIST subset: 50 warm-up
steps, then ``--steps`` timed steps of batch 32.

- the plain run gives the wall time per step;
- the run with ``ONEDNN_VERBOSE=1`` (oneDNN prints every primitive it executes, with its time)
  gives the milliseconds per step inside oneDNN's kernels, by primitive, for the same steps.

The rest of a step is TensorFlow's own ops (bias, activations, Adam's updates, the loss) and its
runtime (op dispatch, memory, the input pipeline). On one thread, the step of a loop that cost
nothing outside oneDNN's kernels would take the kernels' time alone: the plain fit's step over
that time is the most any training loop on these kernels could gain over it, set against the
1.5x goal. On more threads two ops run at once, each timing itself, so the kernels' times add
up to more than their share of the step.

Prints lscpu's model name and flags first.

Usage: python bench/profile_steps.py [--mnist DIR] [--images N] [--steps N] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import DEFAULT_MNIST, cpu_description, plain_fit_model  # noqa: E402  (bench/train.py)

WARMUP = 50
START, STOP = "== timed steps start", "== timed steps stop"


def worker(mode: str, pooled: str, threads: int, steps: int) -> None:
    """The timed steps of one configuration, between two marker lines; prints its wall seconds."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from poolup.job_inputs import TrainSettings, load_training_data
    from poolup.loop import Trainer, prepare, training_batches
    from poolup.model import build_model
    from poolup.runtime import configure_tensorflow, seed_everything

    data = load_training_data(pooled, (28, 28))
    run = prepare(data, 0, TrainSettings(precision="float32"))
    configure_tensorflow(threads, "float32", onednn=True)
    import keras
    import tensorflow as tf

    seed_everything(0)
    images, labels = run.images[run.fit], data.labels[run.fit]
    if mode == "ours":
        trainer = Trainer(build_model(images.shape[1:], data.n_classes), data.n_classes, 1e-3)
        iterator = iter(training_batches(images, labels, 0, 32, None))
        trainer.run_steps(iterator, tf.constant(WARMUP))

        def timed() -> None:
            trainer.run_steps(iterator, tf.constant(steps))

    else:
        model = plain_fit_model(images.shape[1:], data.n_classes)
        onehot = keras.utils.to_categorical(labels, data.n_classes)
        model.fit(images[: WARMUP * 32], onehot[: WARMUP * 32], batch_size=32, epochs=1, verbose=0)

        def timed() -> None:
            model.fit(images[: steps * 32], onehot[: steps * 32], batch_size=32, epochs=1, verbose=0)

    print(START, flush=True)
    started = time.perf_counter()
    timed()
    seconds = time.perf_counter() - started
    print(STOP, flush=True)
    print(f"seconds {seconds}", flush=True)


def run_worker(mode: str, pooled: Path, threads: int, steps: int, verbose: bool) -> str:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_VERBOSE": "1" if verbose else "0"}
    command = [sys.executable, __file__, "worker", mode, str(pooled), str(threads), str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} worker failed: {done.stderr[-2000:]}")
    return done.stdout


def kernel_milliseconds(log: str) -> dict[str, float]:
    """oneDNN's execution times between the markers, summed per primitive (kind and propagation)."""
    inside, totals = False, defaultdict(float)
    for line in log.splitlines():
        if line.startswith(START):
            inside = True
        elif line.startswith(STOP):
            break
        elif inside and line.startswith("onednn_verbose") and ",exec," in line:
            fields = line.split(",")
            at = fields.index("exec")
            kind, propagation = fields[at + 2], fields[at + 4]
            totals[kind if propagation in ("", "undef") else f"{kind} {propagation}"] += float(fields[-1])
    return dict(totals)


def seconds_of(log: str) -> float:
    return float(next(line for line in log.splitlines() if line.startswith("seconds ")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    parser.add_argument("--images", type=int, default=14_000, help="digits used (a seeded subset)")
    parser.add_argument("--steps", type=int, default=300, help="timed steps of batch 32")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    if not args.mnist.is_dir():
        sys.exit(f"no MNIST IDX folder at {args.mnist}; pass --mnist DIR")
    if args.steps * 32 > args.images * 0.8:
        sys.exit(f"--steps {args.steps} needs {args.steps * 32:,} training images; raise --images")
    from poolup import preprocess

    print(cpu_description(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        preprocess.fetch_source(folder / "raw.h5", "idx", str(args.mnist), max_images=args.images)
        preprocess.pool(folder / "raw.h5", folder / "pooled.h5", "baseline", 1, 1)
        print(f"\nbaseline 28x28, batch 32, float32 on oneDNN kernels; {args.steps} timed steps after {WARMUP}")
        print("ms per step: wall (plain run), in oneDNN's kernels (ONEDNN_VERBOSE run), the rest\n")
        for threads in (int(t) for t in args.threads.split(",")):
            rows = {}
            for mode in ("fit", "ours"):
                wall = seconds_of(run_worker(mode, folder / "pooled.h5", threads, args.steps, False))
                kernels = kernel_milliseconds(run_worker(mode, folder / "pooled.h5", threads, args.steps, True))
                rows[mode] = (1000 * wall / args.steps, {k: v / args.steps for k, v in kernels.items()})
            for mode, (step, kernels) in rows.items():
                inside = sum(kernels.values())
                name = "plain fit" if mode == "fit" else "ours"
                print(
                    f"{name:9} {threads} thr: step {step:6.2f} ms = oneDNN {inside:5.2f} ms ({inside / step:4.0%})"
                    f" + rest {step - inside:5.2f} ms"
                )
                for kind, ms in sorted(kernels.items(), key=lambda item: -item[1]):
                    print(f"    {kind:34} {ms:6.3f} ms")
            fit_step, (ours_step, ours_kernels) = rows["fit"][0], rows["ours"]
            summary = f"  {threads} thr: ours {fit_step / ours_step:4.2f}x the plain fit's steps"
            if threads == 1:
                summary += (
                    f"; a loop with nothing outside the kernels: at most {fit_step / sum(ours_kernels.values()):4.2f}x"
                    " (goal 1.5x)"
                )
            else:  # two ops run at once (inter-op threads), each timing itself: the sum is no share of the step
                summary += "; the kernels overlap on several threads, so their sum is not a part of the step"
            print(summary + "\n", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
