"""Fuzz: seeded mutations of every artifact type and both source formats.

Each mutation is applied to a copy of a small real artifact (written by the
library's own stages), and the real consumer is run on it: the source
loader, the next stage, the training-side reader, the aggregation-side
readers, and ``poolup verify`` on a whole tree. Besides damage, an input may
be swapped for another case's file or a stale one (made with other settings,
an earlier config), each written by the library too: the training and
aggregation readers must refuse those, naming both. Every outcome must be a clear
error (one-line ``PoolupError``) or a result equal to the unmutated one;
when the consumer refuses a file, ``verify`` must report it too. A table of
mutation class x outcome is printed (``pytest -s``) and is part of the
failure message.
"""

from __future__ import annotations

import collections
import gzip
import json
import signal
import struct
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import write_idx

from poolup import preprocess
from poolup.aggregate import read_run_record, read_storage_record
from poolup.errors import PoolupError
from poolup.h5files import open_h5, read_image_set, write_h5
from poolup.job_inputs import load_training_data
from poolup.provenance import file_sha256
from poolup.records import write_json
from poolup.sources import load_source
from poolup.verify import verify_tree

SEED = 20261128
SIDE = 12
MUTATIONS_PER_TARGET = 60  # 12 targets: 720 mutations
TIME_LIMIT_S = 150  # a guard against a run gone slow (a hang), not a speed goal
HANG_LIMIT_S = 30  # a last resort: the alarm interrupts h5py mid-call, so only for a real hang

CLEAR, CORRECT = "clear error", "correct result"


def labelled_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random small images; labels cycle through all ten classes (every split has every class)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, SIDE, SIDE), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


# The file the up-sampling reads.
POOLED = "pooled.h5"
# What the training of case w2s2 expects its up-sampled images to record besides the case (rules/train.smk).
RECIPE = {"window": 2, "stride": 2, "method": "linear", "grid": "corners"}


def pool_stage(raw: Path, output: Path) -> str:
    """The stage that reads raw.h5."""
    return preprocess.pool(raw, output, "w2s2", 2, 2)["content_sha256"]


def h5_content(path: Path) -> dict[str, Any]:
    """Everything in an HDF5 artifact, for comparing a result with the unmutated one."""
    with open_h5(path) as file:
        data: dict[str, Any] = {name: file[name][()].tobytes() for name in file}
        data.update({f"@{key}": repr(file.attrs[key]) for key in file.attrs})
    return data


# --- the artifacts, written once --------------------------------------------


@dataclass
class Target:
    """One artifact under test: its file, the consumer that reads it, and that consumer's unmutated result.

    ``others`` are files that may stand in its place, by mutation class ("swapped input": another case's
    or run's; "stale input": the same case's, made with other settings), for consumers that must refuse them.
    """

    name: str
    path: Path
    consume: Callable[[Path], Any]
    kind: str  # "idx", "npz", "h5" or "json"
    reference: Any = None
    in_tree: bool = False
    others: dict[str, list[Path]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> tuple[list[Target], Path, Path]:
    base = tmp_path_factory.mktemp("fuzz")
    scratch = base / "scratch"
    scratch.mkdir()
    idx = base / "idx"
    idx.mkdir()
    for prefix, n, seed in (("train", 40, 1), ("t10k", 20, 2)):
        images, labels = labelled_images(n, seed)
        write_idx(idx / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(idx / f"{prefix}-labels-idx1-ubyte.gz", labels)
    npz = base / "data.npz"
    train, train_labels = labelled_images(40, 3)
    test, test_labels = labelled_images(20, 4)
    np.savez_compressed(npz, x_train=train, y_train=train_labels, x_test=test, y_test=test_labels)
    plain_npz = base / "plain.npz"  # members stored uncompressed: only the zip CRC guards them
    np.savez(plain_npz, images=np.concatenate([train, test]), labels=np.concatenate([train_labels, test_labels]))

    # A complete results tree, every file written by the library itself.
    tree = base / "results"
    run = tree / "tiny/w2s2/seed0"
    preprocess.fetch_source(tree / "tiny/raw.h5", "npz", str(npz), expected_shape=(SIDE, SIDE))
    pooled = tree / "tiny/w2s2" / POOLED
    pool_stage(tree / "tiny/raw.h5", pooled)
    preprocess.upsample(pooled, tree / "tiny/w2s2/upsampled.h5")
    # Encoded stores: packed 2-bit codes, and WebP files (4 images per file) with their offsets.
    encoded = {}
    for case, encoding in (("bits2", {"bits": 2}), ("webp", {"codec": "webp", "quality": 50, "tile": 4})):
        encoded[case] = tree / f"tiny/{case}" / POOLED
        preprocess.pool(tree / "tiny/raw.h5", encoded[case], case, 1, 1, encoding=encoding)
    upsampled = read_image_set(tree / "tiny/w2s2/upsampled.h5")
    n_test = 12
    rng = np.random.default_rng(5)
    probabilities = rng.dirichlet(np.ones(10), size=n_test).astype(np.float32)
    predictions = write_h5(
        run / "predictions.h5",
        {
            "labels": upsampled.labels[:n_test],
            "predicted": probabilities.argmax(1).astype(np.uint8),
            "probabilities": probabilities,
            "test_indices": np.arange(n_test, dtype=np.int64),
        },
        {"stage": "train", "case": "w2s2", "seed": 0, "source_sha256": upsampled.attrs["content_sha256"]},
    )
    (run / "history.csv").write_text("epoch,step,train_loss\n1,1,2.3\n1,2,2.1\n")
    with zipfile.ZipFile(run / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    write_json(
        run / "test_metrics.json",
        {
            "case": "w2s2",
            "seed": 0,
            "accuracy": 0.5,
            "macro_f1": 0.4,
            "n_test": n_test,
            "n_classes": 10,
            "f1": [0.4] * 10,
            "confusion_matrix": np.eye(10, dtype=int).tolist(),
            "settings": {"epochs": 1, "learning_rate": 0.001},
            "source_sha256": upsampled.attrs["content_sha256"],
            "outputs": {
                "predictions.h5": predictions,
                "history.csv": file_sha256(run / "history.csv"),
                "model.keras": file_sha256(run / "model.keras"),
            },
        },
    )
    assert list(verify_tree(tree)) == [], "the unmutated tree verifies"

    def load(source: str) -> Callable[[Path], Any]:
        def consume(path: Path) -> Any:
            images, labels, _ = load_source(source, str(path))
            return images.tobytes(), labels.tobytes()

        return consume

    def pool_consumer(path: Path) -> Any:
        out = scratch / "stored.h5"
        out.unlink(missing_ok=True)
        return pool_stage(path, out), h5_content(out)

    def upsample_consumer(path: Path) -> Any:
        out = scratch / "upsampled.h5"
        out.unlink(missing_ok=True)
        return preprocess.upsample(path, out)["content_sha256"], h5_content(out)

    def training_reader(path: Path) -> Any:
        data = load_training_data(path, (SIDE, SIDE), {"case": "w2s2", **RECIPE})
        return data.images.tobytes(), data.labels.tobytes(), data.source_sha256

    # Files that may stand in for a target: another case's, another run's, or one made with other settings.
    others = base / "others"
    others.mkdir()
    preprocess.pool(tree / "tiny/raw.h5", others / "baseline-pooled.h5", "baseline", 1, 1)
    preprocess.upsample(others / "baseline-pooled.h5", others / "baseline-upsampled.h5")
    preprocess.pool(tree / "tiny/raw.h5", others / "w3s2-pooled.h5", "w2s2", 3, 2)  # w2s2 once was 3x3/2
    preprocess.upsample(others / "w3s2-pooled.h5", others / "w2s2-was-w3s2-upsampled.h5")
    preprocess.upsample(pooled, others / "w2s2-nearest-upsampled.h5", method="nearest")
    record = json.loads((run / "test_metrics.json").read_text())
    for name, case, seed in (("baseline-seed0", "baseline", 0), ("w2s2-seed1", "w2s2", 1)):
        write_json(others / f"{name}-test_metrics.json", {**record, "case": case, "seed": seed})
    storage_record = {"stored_bytes": 1234, "byte_ratio": 0.41, "stored_shape": [6, 6], "source_sha256": "ab" * 32}
    write_json(others / "baseline-storage.json", {**storage_record, "case": "baseline"})
    (base / "w2s2").mkdir()
    write_json(base / "w2s2/storage.json", {**storage_record, "case": "w2s2"})

    found = [
        Target("idx images (gzip)", idx / "train-images-idx3-ubyte.gz", lambda p: load("idx")(p.parent), "idx"),
        Target("idx labels (gzip)", idx / "t10k-labels-idx1-ubyte.gz", lambda p: load("idx")(p.parent), "idx"),
        Target("npz (Keras layout)", npz, load("npz"), "npz"),
        Target("npz (uncompressed)", plain_npz, load("npz"), "npz"),
        Target("raw.h5 -> pool", tree / "tiny/raw.h5", pool_consumer, "h5", in_tree=True),
        Target(f"{POOLED} -> upsample", pooled, upsample_consumer, "h5", in_tree=True),
        Target(f"{POOLED} (2-bit codes) -> upsample", encoded["bits2"], upsample_consumer, "h5", in_tree=True),
        Target(f"{POOLED} (WebP files) -> upsample", encoded["webp"], upsample_consumer, "h5", in_tree=True),
        Target(
            "upsampled.h5 -> training reader",
            tree / "tiny/w2s2/upsampled.h5",
            training_reader,
            "h5",
            in_tree=True,
            others={
                "swapped input": [others / "baseline-upsampled.h5"],
                "stale input": [others / "w2s2-was-w3s2-upsampled.h5", others / "w2s2-nearest-upsampled.h5"],
            },
        ),
        Target("predictions.h5 -> reader", run / "predictions.h5", h5_content, "h5", in_tree=True),
        Target(
            "test_metrics.json -> aggregation reader",
            run / "test_metrics.json",
            read_run_record,
            "json",
            in_tree=True,
            others={
                "swapped input": [others / "baseline-seed0-test_metrics.json", others / "w2s2-seed1-test_metrics.json"]
            },
        ),
        Target(
            "storage.json -> aggregation reader",
            base / "w2s2/storage.json",
            read_storage_record,
            "json",
            others={"swapped input": [others / "baseline-storage.json"]},
        ),
    ]
    for target in found:
        target.reference = target.consume(target.path)
    return found, tree, scratch


# --- mutations ----------------------------------------------------------------


def flip_byte(data: bytes, rng: np.random.Generator) -> bytes:
    mutated = bytearray(data)
    mutated[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    return bytes(mutated)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(len(data)))]


def append_garbage(data: bytes, rng: np.random.Generator) -> bytes:
    return data + rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()


def _swap_value(value: Any, rng: np.random.Generator) -> Any:
    """A value of another JSON type (or the same type, different)."""
    choices: list[Any] = ["text", 3, 2.5, None, True, [1, 2], {"k": 1}]
    if isinstance(value, bool):
        return not value if rng.random() < 0.5 else choices[int(rng.integers(len(choices)))]
    if isinstance(value, (int, float)):
        return value + 1 if rng.random() < 0.5 else str(value)
    return choices[int(rng.integers(len(choices)))]


def json_edit(path: Path, rng: np.random.Generator) -> str:
    record = json.loads(path.read_text())
    keys = sorted(record)
    key = keys[int(rng.integers(len(keys)))]
    roll = rng.random()
    if roll < 0.15:
        path.write_text(json.dumps([record]))
        return "JSON type swap"
    if roll < 0.3:
        del record[key]
        path.write_text(json.dumps(record))
        return "JSON key deleted"
    record[key] = _swap_value(record[key], rng)
    path.write_text(json.dumps(record))
    return "JSON type swap" if roll < 0.65 else "JSON value edit"


def _edited_attr(value: Any, rng: np.random.Generator) -> Any:
    if isinstance(value, np.ndarray) and value.size and np.issubdtype(value.dtype, np.number):
        edited = value.copy()
        edited.flat[int(rng.integers(edited.size))] += 1
        return edited
    if isinstance(value, (np.integer, int, np.floating, float)) and not isinstance(value, (bool, np.bool_)):
        return value + 1 if rng.random() < 0.7 else str(value)
    if isinstance(value, (str, bytes)):
        return (value.decode() if isinstance(value, bytes) else value) + "x" if rng.random() < 0.7 else 7
    return "edited"


def h5_edit(path: Path, rng: np.random.Generator) -> str:
    with h5py.File(path, "r+") as file:
        names = sorted(file)
        attrs = sorted(file.attrs)
        roll = rng.random()
        if roll < 0.35:
            key = attrs[int(rng.integers(len(attrs)))]
            file.attrs[key] = _edited_attr(file.attrs[key], rng)
            return "attribute edit"
        if roll < 0.5:
            del file.attrs[attrs[int(rng.integers(len(attrs)))]]
            return "attribute deleted"
        name = names[int(rng.integers(len(names)))]
        if roll < 0.7:
            del file[name]
            return "dataset deleted"
        dataset = file[name]
        index = tuple(int(rng.integers(s)) for s in dataset.shape)
        value = dataset[index]
        dataset[index] = value + 1 if dataset.dtype.kind in "iuf" else value
        return "dataset element edit"


def idx_edit(path: Path, rng: np.random.Generator) -> str:
    """Edits inside a valid gzip stream: header dimensions, data type, stray labels."""
    raw = bytearray(gzip.decompress(path.read_bytes()))
    ndim = raw[3]
    roll = rng.random()
    if roll < 0.3:
        dim = int(rng.integers(ndim))
        value = struct.unpack(">I", raw[4 + 4 * dim : 8 + 4 * dim])[0]
        raw[4 + 4 * dim : 8 + 4 * dim] = struct.pack(">I", max(0, value + int(rng.choice([-1, 1, 1000]))))
        kind = "IDX header edit"
    elif roll < 0.45:
        raw[2] = int(rng.choice([0x09, 0x0B, 0x0D]))
        kind = "IDX header edit"
    elif ndim == 1:
        raw[4 + 4 * ndim + int(rng.integers(len(raw) - 4 - 4 * ndim))] = int(rng.choice([10, 200, 255]))
        kind = "stray label"
    else:
        raw = raw[: 4 + 4 * ndim + int(rng.integers(len(raw) - 4 - 4 * ndim))]
        kind = "IDX data cut (valid gzip)"
    path.write_bytes(gzip.compress(bytes(raw)))
    return kind


def npz_edit(path: Path, rng: np.random.Generator) -> str:
    """Valid archives with hostile content: wrong shapes, types, labels, missing parts."""
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    keras = "x_train" in arrays
    images, labels = ("x_test", "y_train") if keras else ("images", "labels")
    roll = rng.random()
    if roll < 0.2:
        arrays[images] = arrays[images][:, :-1, :] if keras else arrays[images][:-1]
        kind = "NPZ split shapes differ" if keras else "NPZ image/label counts differ"
    elif roll < 0.4:
        values = arrays[labels].astype(np.int64)
        values[int(rng.integers(values.size))] = int(rng.choice([10, 200, -1]))
        arrays[labels] = values
        kind = "stray label"
    elif roll < 0.55:
        key = "y_test" if keras else labels
        arrays[key] = np.where(arrays[key] == 3, 4, arrays[key])
        kind = "class absent from a split"
    elif roll < 0.7:
        for key in ("y_train", "y_test") if keras else (labels,):
            arrays[key] = np.zeros_like(arrays[key])
        kind = "one class"
    elif roll < 0.85:
        key = str(rng.choice(sorted(arrays)))
        arrays[key] = arrays[key].astype(str(rng.choice(["float64", "U3", "complex64", "bool"])))
        kind = "NPZ dtype swap"
    else:
        del arrays[str(rng.choice(sorted(arrays)))]
        kind = "NPZ array deleted"
    (np.savez_compressed if keras else np.savez)(path, **arrays)
    return kind


def mutate(target: Target, rng: np.random.Generator) -> str:
    if target.others and rng.random() < 0.15:
        kind = sorted(target.others)[int(rng.integers(len(target.others)))]
        choices = target.others[kind]
        target.path.write_bytes(choices[int(rng.integers(len(choices)))].read_bytes())
        return kind
    roll = rng.random()
    data = target.path.read_bytes()
    if roll < 0.4:
        target.path.write_bytes(flip_byte(data, rng))
        return "byte flip"
    if roll < 0.55:
        target.path.write_bytes(truncate(data, rng))
        return "truncation"
    if roll < 0.62:
        target.path.write_bytes(append_garbage(data, rng))
        return "garbage appended"
    edit = {"idx": idx_edit, "npz": npz_edit, "h5": h5_edit, "json": json_edit}[target.kind]
    return edit(target.path, rng)


# --- the run ------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def outcome(target: Target) -> tuple[str, str]:
    """(outcome class, detail) of running the target's consumer on its (mutated) file."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_LIMIT_S)
    try:
        result = target.consume(target.path)
    except PoolupError as error:
        message = str(error)
        if "\n" in message or not message:
            return "multi-line error", message
        return CLEAR, message
    except Hang:
        return "hang", ""
    except Exception as error:  # noqa: BLE001 - the test's point: nothing else may escape
        return "traceback", f"{type(error).__name__}: {error}"
    finally:
        signal.alarm(0)
    return (CORRECT, "") if result == target.reference else ("wrong result", "")


def table(counts: dict[str, collections.Counter], columns: list[str]) -> str:
    width = max(len(row) for row in counts) + 2
    lines = [f"{'mutation class':{width}}" + "".join(f"{c:>17}" for c in columns)]
    for row in sorted(counts):
        lines.append(f"{row:{width}}" + "".join(f"{counts[row][c]:>17}" for c in columns))
    totals = collections.Counter()
    for row in counts.values():
        totals.update(row)
    lines.append(f"{'total':{width}}" + "".join(f"{totals[c]:>17}" for c in columns))
    return "\n".join(lines)


def test_fuzz_every_artifact_and_source(targets):
    found, tree, scratch = targets
    rng = np.random.default_rng(SEED)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    started = time.perf_counter()
    for target in found:
        original = target.path.read_bytes()
        for index in range(MUTATIONS_PER_TARGET):
            kind = mutate(target, rng)
            result, detail = outcome(target)
            counts[kind][result] += 1
            if result == CLEAR and target.in_tree:
                findings = list(verify_tree(tree))
                if not findings:
                    counts[kind]["verify silent"] += 1
                    failures.append(
                        f"{target.name} #{index} {kind}: the consumer refused it ({detail}) but verify found nothing"
                    )
            if result not in (CLEAR, CORRECT):
                failures.append(f"{target.name} #{index} {kind}: {result} {detail[:200]}")
            if kind in ("swapped input", "stale input") and not (result == CLEAR and "made for " in detail):
                failures.append(f"{target.name} #{index} {kind}: not refused as another's or stale: {detail[:200]}")
            target.path.write_bytes(original)
            for leftover in scratch.iterdir():
                leftover.unlink()
    elapsed = time.perf_counter() - started
    columns = [CLEAR, CORRECT, "wrong result", "traceback", "multi-line error", "hang", "verify silent"]
    outcomes = (CLEAR, CORRECT, "wrong result", "traceback", "multi-line error", "hang")
    mutations = sum(sum(c[k] for k in outcomes) for c in counts.values())
    report = table(counts, columns) + f"\n{mutations} mutations in {elapsed:.1f} s"
    print("\n" + report)
    total = sum(counts[row][CLEAR] + counts[row][CORRECT] for row in counts)
    assert not failures, report + "\n" + "\n".join(failures[:20])
    assert total >= 500, report
    assert elapsed < TIME_LIMIT_S, report
    # Not vacuous: every mutation class was refused at least once.
    assert all(counts[row][CLEAR] > 0 for row in counts), report
    assert list(verify_tree(tree)) == [], "the tree is restored after the run"
