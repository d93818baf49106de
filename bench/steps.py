"""Images/s of the training steps alone, for one precision, thread count and batch size.

The steady-state speed of ``poolup.loop``'s step loop (after 50 warm-up steps),
without start-up, evaluation or learning curves: the numbers behind the README's
"what did not help" (larger batches as a proxy for stacking seeds in one graph).
Needs a ``pooled.h5`` (any case of a finished run; up-sampled in memory) or an ``upsampled.h5``.

Usage: python bench/steps.py POOLED_H5 PRECISION THREADS BATCH
  e.g. for b in 32 64 320; do python bench/steps.py results/mnist/baseline/pooled.h5 mixed_bfloat16 1 $b; done
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from poolup.job_inputs import TrainSettings, load_training_data
from poolup.loop import Trainer, prepare, training_batches
from poolup.model import build_model
from poolup.runtime import PRECISIONS, configure_tensorflow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upsampled", help="an upsampled.h5 of a finished run")
    parser.add_argument("precision", choices=PRECISIONS)
    parser.add_argument("threads", type=int)
    parser.add_argument("batch", type=int)
    args = parser.parse_args()
    upsampled, precision, threads, batch = args.upsampled, args.precision, args.threads, args.batch
    data = load_training_data(upsampled)
    run = prepare(data, 0, TrainSettings(precision=precision))
    configure_tensorflow(threads, precision)
    import tensorflow as tf

    trainer = Trainer(build_model(run.images.shape[1:], data.n_classes), data.n_classes, 1e-3)
    iterator = iter(training_batches(run.images[run.fit], data.labels[run.fit], 0, batch, None))
    trainer.run_steps(iterator, tf.constant(50))
    steps = 600 * 32 // batch
    start = time.perf_counter()
    trainer.run_steps(iterator, tf.constant(steps))
    print(f"{precision} {threads} thread(s) batch {batch}: {steps * batch / (time.perf_counter() - start):.0f} img/s")


if __name__ == "__main__":
    main()
