"""TensorFlow's process setup for a training job: threads, CPU kernels, op determinism, precision, seeds.

Each call imports TensorFlow itself, so the rest of the package never pays its
import time.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

from poolup.errors import PoolupError

log = logging.getLogger("poolup")

PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16")


def configure_tensorflow(threads: int, precision: str, onednn: bool = True) -> bool:
    """Threads, kernels, op determinism and precision: once per process, before any model exists.

    Threads can be set only before TensorFlow starts its thread pools; a
    second call in the same process keeps the first call's threads. Without
    bfloat16 hardware (AVX512_BF16, AMX or a GPU that has it), a
    ``mixed_bfloat16`` request falls back to float32 with a log line, since
    emulated bfloat16 is several times slower than float32.

    ``onednn`` picks TensorFlow's CPU kernels. TensorFlow reads its switch
    (``TF_ENABLE_ONEDNN_OPTS``) once, when it is first imported, and by
    default uses oneDNN only on CPUs with AVX-512 VNNI or BF16 or AMX; on an
    AVX2 CPU its own kernels train 1.3x slower (docs/training.md, "Kernels"). So the switch
    is set here when this call imports TensorFlow. Where TensorFlow was
    imported before, or was built without oneDNN, the kernels it has stay,
    with a log line. Returns whether oneDNN kernels are in use (each run
    records it as ``onednn_used``).
    """
    if precision not in PRECISIONS:
        raise PoolupError(f"training.precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    if "tensorflow" not in sys.modules:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    import keras
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        # TensorFlow's own start-up lines ("Could not find cuda drivers", "failed call to cuInit") come
        # first and read like errors: on a machine without a GPU they are not.
        log.info("no GPU found: training on the CPU (the CUDA and cuInit lines above only say that)")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        log.info("TensorFlow threads were already set in this process; keeping them")
    used = onednn_kernels()
    if used != onednn:
        log.warning(
            "training.onednn %s: TensorFlow in this process runs with oneDNN kernels %s (it was imported before, "
            "with TF_ENABLE_ONEDNN_OPTS=%s, or has no oneDNN); keeping them",
            str(onednn).lower(),
            "on" if used else "off",
            os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        )
    tf.config.experimental.enable_op_determinism()
    if precision == "mixed_bfloat16" and not bfloat16_hardware():
        log.warning(
            "training.precision mixed_bfloat16: no bfloat16 hardware found (CPU flags avx512_bf16/amx_bf16, "
            "or a GPU); training in float32"
        )
        precision = "float32"
    keras.mixed_precision.set_global_policy(precision)
    return used


def onednn_kernels() -> bool:
    """Whether this process's TensorFlow runs its CPU ops on oneDNN (``TF_ENABLE_ONEDNN_OPTS``)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # TensorFlow's own probe; no public API has it
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def bfloat16_hardware() -> bool:
    """Whether this machine computes bfloat16 natively (a GPU, or x86 AVX512_BF16 / AMX)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def seed_everything(seed: int) -> None:
    """Python's, NumPy's, TensorFlow's and Keras' global seeds, right before a run's model and pipeline.

    Everything random in a run (initial weights, the shuffle's seed pair
    ``(seed, seed)``) is drawn after this call, so a run does not depend on
    what ran before it in the same process (tests/test_training.py checks
    that grouped runs equal solo runs bit for bit).
    """
    import keras

    keras.utils.set_random_seed(seed)


# A training job's peak memory: TensorFlow and the model, then the up-sampled float32 images a few
# times over (the array, its training and test parts, the scaled copy and the raw test images).
# Calibrated on all 70,000 MNIST digits (28x28, 209 MiB of float32): 1,654 MiB peak RSS
# (the baseline, 5 seeds in one job).
JOB_BASE_BYTES = 600 * 2**20
IMAGE_COPIES = 5.0


def training_memory(n_images: int, image_shape: tuple[int, ...]) -> int:
    """Bytes a training job needs at its peak for ``n_images`` up-sampled images of ``image_shape``."""
    pixels = n_images * math.prod(image_shape)
    return int(JOB_BASE_BYTES + IMAGE_COPIES * 4 * pixels)


def available_memory() -> int | None:
    """Bytes the system can give a new job now (MemAvailable, Linux); None where it cannot say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(n_images: int, image_shape: tuple[int, ...], available: int | None = None) -> int:
    """State a training job's memory need in its log and refuse with one line where the machine has less.

    The images are shared by every seed of the job (training.seeds_per_job adds no copy), so what
    brings the need down is fewer or smaller images. Returns the need in bytes.
    """
    need = training_memory(n_images, image_shape)
    free = available_memory() if available is None else available
    shape = "x".join(map(str, image_shape))
    log.info(
        "memory: about %d MB for %d images of %s in float32%s",
        need // 2**20,
        n_images,
        shape,
        "" if free is None else f"; {free // 2**20} MB available",
    )
    if free is not None and need > free:
        raise PoolupError(
            f"training needs about {need // 2**20} MB for {n_images} images of {shape} (float32, in memory) but "
            f"{free // 2**20} MB are available; use datasets[].max_images, a smaller datasets[].resize, or a machine "
            "with more memory"
        )
    return need
