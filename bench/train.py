"""Benchmark multi-seed training jobs against a plain ``model.fit`` (the authors' method).

On the real MNIST digits (../shared/data/mnist), baseline case: a seeded subset
of ``--images`` digits (80 % of them trained, one epoch per seed), each
configuration in its own process (TensorFlow's threads are per process), all
measured in one run:

- ``fit``: ``model.compile(Adam(1e-3), categorical_crossentropy)`` then
  ``model.fit(x, y, batch_size=32, epochs=1)``, one seed per process: the configurations
  a user would pick without poolup (float32 and mixed bfloat16, one and two threads, on
  the kernels TensorFlow picks for this CPU; where it does not pick oneDNN by itself, also
  float32 with ``TF_ENABLE_ONEDNN_OPTS=1``);
- ``ours``: ``poolup.training.train_seeds`` training K seeds one after the
  other in one process (one TensorFlow start, one data load, learning curves
  and the held-out evaluation included), for K = 1, 2, 5, 10, 1 and 2 threads,
  float32 and mixed bfloat16, on oneDNN kernels (``training.onednn``, the default;
  one row on TensorFlow's own where it would not pick oneDNN);
- two 1-thread ``ours`` jobs at once: what the workflow runs on 2 cores.

Prints the CPU (lscpu's model name and flags), then per configuration the
images/s of the training steps and end to end (process start to exit, summed
over its seeds), the mean test macro F1, and the ratios to the plain fit
measured in this run; last, the steps against the fastest plain fit (goal: 1.5x).

Usage: python bench/train.py [--mnist DIR] [--images N] [--ks 1,2,5,10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def cpu_description() -> str:
    """lscpu's model name and flags (the CPU decides what bfloat16 gains)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "lscpu not available"
    lines = [line for line in text.splitlines() if line.startswith(("Model name", "Flags"))]
    return "\n".join(lines)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process, printed as a JSON line."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    seeds = list(range(args.k))
    onednn = bool(args.onednn)
    if args.mode == "ours":
        from poolup.job_inputs import TrainSettings
        from poolup.runs import RunPaths
        from poolup.training import train_seeds

        out = Path(args.out)
        runs = {
            seed: RunPaths(*(str(out / f"seed{seed}" / n) for n in ("m.keras", "h.csv", "t.json", "p.h5")))
            for seed in seeds
        }
        for paths in runs.values():
            Path(paths.model).parent.mkdir(parents=True, exist_ok=True)
        records = train_seeds(
            args.upsampled,
            runs,
            "baseline",
            TrainSettings(precision=args.precision, onednn=onednn),
            (28, 28),
            threads=args.threads,
        )
        print(
            json.dumps(
                {
                    "train_seconds": sum(r["train_seconds"] for r in records),
                    "images": sum(r["n_train"] for r in records),
                    "f1": [r["macro_f1"] for r in records],
                    "precision_used": records[0]["precision_used"],
                    "onednn_used": records[0]["onednn_used"],
                }
            )
        )
        return
    from poolup.job_inputs import TrainSettings, load_training_data
    from poolup.loop import prepare
    from poolup.metrics import classification_report
    from poolup.runtime import configure_tensorflow, seed_everything

    settings = TrainSettings(precision=args.precision)
    data = load_training_data(args.upsampled, (28, 28))
    onednn_used = configure_tensorflow(args.threads, args.precision, onednn)
    import keras

    seed_everything(0)
    run = prepare(data, 0, settings)
    model = plain_fit_model((28, 28, 1), 10)
    x, y = run.images[run.fit], keras.utils.to_categorical(data.labels[run.fit], 10)
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    predicted = model.predict(run.images[run.test], batch_size=1024, verbose=0).argmax(axis=1)
    report = classification_report(data.labels[run.test], predicted, 10)
    print(
        json.dumps(
            {
                "train_seconds": seconds,
                "images": int(len(x)),
                "f1": [report["macro_f1"]],
                "precision_used": keras.mixed_precision.global_policy().name,
                "onednn_used": onednn_used,
            }
        )
    )


def plain_fit_model(input_shape: tuple[int, ...], n_classes: int) -> Any:
    """The paper's CNN compiled as the authors trained it with ``model.fit``: Adam at 1e-3, categorical
    cross-entropy (labels one-hot)."""
    import keras

    from poolup.model import build_model

    model = build_model(input_shape, n_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return model


def tensorflow_picks_onednn() -> bool:
    """Whether TensorFlow, left to itself (TF_ENABLE_ONEDNN_OPTS unset), runs oneDNN kernels on this CPU."""
    probe = "from poolup.runtime import onednn_kernels; print(onednn_kernels())"
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip().splitlines()[-1] == "True"


def launch(
    upsampled: Path,
    workdir: Path,
    mode: str,
    threads: int,
    precision: str,
    k: int = 1,
    tag: str = "",
    onednn: bool = True,
) -> subprocess.Popen:
    out = workdir / f"{mode}-{threads}-{precision}-{k}-{int(onednn)}{tag}"
    command = [
        sys.executable,
        __file__,
        "worker",
        "--mode",
        mode,
        "--threads",
        str(threads),
        "--precision",
        precision,
        "--upsampled",
        str(upsampled),
        "--out",
        str(out),
        "--k",
        str(k),
        "--onednn",
        str(int(onednn)),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def finish(process: subprocess.Popen, started: float) -> dict:
    """The worker's JSON line, with the process's wall time (imports and start-up included)."""
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"worker failed: {out}")
    record = json.loads(out.strip().splitlines()[-1])
    record["wall"] = time.perf_counter() - started
    return record


def measure(upsampled: Path, workdir: Path, **options) -> dict:
    started = time.perf_counter()
    return finish(launch(upsampled, workdir, **options), started)


def line(name: str, record: dict, reference: dict | None) -> str:
    steps = record["images"] / record["train_seconds"]
    end = record["images"] / record["wall"]
    text = f"{name:40} {steps:6.0f} img/s steps {end:6.0f} end to end  F1 {sum(record['f1']) / len(record['f1']):.4f}"
    if reference is not None:
        text += (
            f"  {steps / (reference['images'] / reference['train_seconds']):4.2f}x steps"
            f" {end / (reference['images'] / reference['wall']):4.2f}x end to end"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    parser.add_argument(
        "--images", type=int, default=14_000, help="digits used (a seeded subset; 80 %% trained per seed)"
    )
    parser.add_argument("--ks", default="1,2,5,10", help="seeds per job to measure")
    args = parser.parse_args()
    if not args.mnist.is_dir():
        sys.exit(f"no MNIST IDX folder at {args.mnist}; pass --mnist DIR")
    ks = [int(k) for k in args.ks.split(",")]
    from poolup import preprocess

    print(cpu_description(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        preprocess.fetch_source(
            workdir / "raw.h5", "idx", str(args.mnist), max_images=args.images if args.images < 70_000 else None
        )
        preprocess.pool(workdir / "raw.h5", workdir / "pooled.h5", "baseline", 1, 1)
        upsampled = workdir / "pooled.h5"  # up-sampled in memory by every worker, as the workflow's jobs do
        print(
            f"\n{args.images:,} digits, {int(args.images * 0.8):,} trained per seed, batch 32, 1 epoch;"
            " each row one process (K seeds one after the other); ratios to the first row\n",
            flush=True,
        )
        default_onednn = tensorflow_picks_onednn()
        kernels = "oneDNN" if default_onednn else "TF's own kernels"
        print(f"TensorFlow left to itself on this CPU: {kernels}\n", flush=True)
        reference = measure(upsampled, workdir, mode="fit", threads=2, precision="float32", onednn=default_onednn)
        print(line(f"plain fit, 2 thr, float32, {'oneDNN' if default_onednn else 'TF own'}", reference, reference))
        plain = {("float32", 2, default_onednn): reference}
        anchors = [(1, "float32", default_onednn), (1, "mixed_bfloat16", default_onednn)]
        anchors += [(2, "mixed_bfloat16", default_onednn)]
        if not default_onednn:  # what a user who sets TF_ENABLE_ONEDNN_OPTS=1 gets
            anchors += [(1, "float32", True), (2, "float32", True)]
        for threads, precision, onednn in anchors:
            record = measure(upsampled, workdir, mode="fit", threads=threads, precision=precision, onednn=onednn)
            plain[(record["precision_used"], threads, record["onednn_used"])] = record
            used = "oneDNN" if record["onednn_used"] else "TF own"
            fallback = " (bf16 asked)" if record["precision_used"] != precision else ""
            name = f"plain fit, {threads} thr, {record['precision_used']}{fallback}, {used}"
            print(line(name, record, reference), flush=True)
        fastest_plain = max(plain.items(), key=lambda item: item[1]["images"] / item[1]["train_seconds"])
        fastest_ours: tuple[float, str] = (0.0, "")
        best: dict[str, tuple[float, int, int]] = {}
        for precision in ("float32", "mixed_bfloat16"):
            for threads in (1, 2):
                for k in ks:
                    record = measure(upsampled, workdir, mode="ours", threads=threads, precision=precision, k=k)
                    fallback = " (bf16 asked)" if record["precision_used"] != precision else ""
                    used = "oneDNN" if record["onednn_used"] else "TF own"
                    name = f"ours K={k:<2} {threads} thr {record['precision_used']}{fallback}, {used}"
                    print(line(name, record, reference), flush=True)
                    fastest_ours = max(fastest_ours, (record["images"] / record["train_seconds"], name))
        if not default_onednn:  # training.onednn: false
            k = max(ks)
            record = measure(upsampled, workdir, mode="ours", threads=1, precision="float32", k=k, onednn=False)
            print(line(f"ours K={k:<2} 1 thr float32, TF own", record, reference), flush=True)
        # What the workflow does on 2 cores: two 1-thread jobs at once (K = the largest measured).
        k = max(ks)
        for precision in ("float32", "mixed_bfloat16"):
            started = time.perf_counter()
            pair = [launch(upsampled, workdir, "ours", 1, precision, k, tag=f"-pair{i}") for i in range(2)]
            records = [finish(p, started) for p in pair]
            wall = max(r["wall"] for r in records)
            images = sum(r["images"] for r in records)
            together = {
                "images": images,
                "wall": wall,
                "train_seconds": max(r["train_seconds"] for r in records),
                "f1": [f for r in records for f in r["f1"]],
            }
            used = records[0]["precision_used"]
            fallback = " (bf16 asked)" if used != precision else ""
            print(line(f"two K={k} jobs x 1 thr {used}{fallback}", together, reference), flush=True)
            best[precision] = (images / wall, k, 2)
        (plain_precision, plain_threads, plain_onednn), plain_record = fastest_plain
        plain_rate = plain_record["images"] / plain_record["train_seconds"]
        plain_kernels = "oneDNN" if plain_onednn else "TF own"
        print(
            f"\ngoal: steps >= 1.5x the fastest plain fit ({plain_precision}, {plain_threads} thr, {plain_kernels},"
            f" {plain_rate:,.0f} img/s):"
            f" {fastest_ours[1].strip()} {fastest_ours[0]:,.0f} img/s = {fastest_ours[0] / plain_rate:4.2f}x"
        )
        reference_end = reference["images"] / reference["wall"]
        print("\ngoal: >= 4x plain fit (2 threads, end to end) on the fastest path, >= 2x in float32:")
        for precision, (rate, k, _jobs) in best.items():
            print(
                f"  {precision:15} two 1-thread K={k} jobs: {rate:6.0f} img/s end to end = {rate / reference_end:4.2f}x"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        parser = argparse.ArgumentParser()
        parser.add_argument("worker")
        parser.add_argument("--mode", choices=["fit", "ours"])
        parser.add_argument("--threads", type=int)
        parser.add_argument("--precision", default="float32")
        parser.add_argument("--upsampled")
        parser.add_argument("--out")
        parser.add_argument("--k", type=int, default=1)
        parser.add_argument("--onednn", type=int, choices=[0, 1], default=1)
        worker(parser.parse_args())
    else:
        main()
