"""Real TensorFlow training on a few hundred real digits (the bundled subset)."""

import csv
import math
from dataclasses import fields, replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from poolup.errors import PoolupError
from poolup.h5files import write_h5
from poolup.job_inputs import TrainSettings
from poolup.model import build_model, load_model
from poolup.preprocess import fetch_source, pool_and_store, upsample
from poolup.records import read_json
from poolup.runs import TRAINING_EXECUTION_KEYS, RunPaths, group_name, group_of, group_seeds, groups_sent, reproducible
from poolup.scaling import fit_scaler, scale_images
from poolup.splits import split_indices
from poolup.training import train_run, train_seeds

# float32: the same arithmetic on every CPU, so these tests see the same numbers everywhere.
FAST = TrainSettings(epochs=2, batch_size=32, history_every=5, monitor_samples=50, precision="float32")


@pytest.fixture(scope="module")
def upsampled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    fetch_source(folder / "raw.h5", "bundled", max_images=600)
    pool_and_store(folder / "raw.h5", folder / "stored.h5", folder / "storage.json", "w2s2", 2, 2)
    upsample(folder / "stored.h5", folder / "upsampled.h5")
    return folder / "upsampled.h5"


def run_paths(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return RunPaths(
        *(str(folder / name) for name in ("model.keras", "history.csv", "test_metrics.json", "predictions.h5"))
    )


@pytest.fixture(scope="module")
def trained(upsampled, tmp_path_factory):
    paths = run_paths(tmp_path_factory.mktemp("run"))
    metrics = train_run(upsampled, paths, "w2s2", 3, FAST, image_shape=(28, 28))
    return paths, metrics


def test_model_is_the_papers():
    model = build_model((28, 28, 1), 10)
    assert model.count_params() == 68_522
    expected = [
        ("Conv2D", (None, 26, 26, 32)),
        ("Conv2D", (None, 24, 24, 32)),
        ("MaxPooling2D", (None, 12, 12, 32)),
        ("Conv2D", (None, 10, 10, 32)),
        ("Conv2D", (None, 8, 8, 32)),
        ("MaxPooling2D", (None, 4, 4, 32)),
        ("Flatten", (None, 512)),
        ("Dense", (None, 64)),
        ("Dense", (None, 64)),
        ("Dense", (None, 32)),
        ("Dense", (None, 32)),
        ("Dense", (None, 10)),
    ]
    assert [(type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers] == expected
    activations = [layer.activation.__name__ for layer in model.layers if hasattr(layer, "activation")]
    assert activations == ["relu"] * 8 + ["softmax"]
    assert all(layer.padding == "valid" for layer in model.layers if hasattr(layer, "padding"))


def test_split_matches_the_authors_call():
    from sklearn.model_selection import train_test_split

    labels = np.arange(1000) % 10
    images = np.arange(1000)
    train, test = split_indices(labels, 0.8, 7)
    x_train, x_test = train_test_split(images, train_size=0.8, random_state=7)
    np.testing.assert_array_equal(train, x_train)
    np.testing.assert_array_equal(test, x_test)
    _, stratified = split_indices(labels, 0.8, 7, stratify=True)
    assert np.bincount(labels[stratified]).tolist() == [20] * 10


def test_scaler_matches_sklearn():
    from sklearn.preprocessing import StandardScaler

    images = np.random.default_rng(0).integers(0, 256, size=(50, 6, 6)).astype(np.float32)
    images[:, 0, 0] = 0  # a constant pixel, like MNIST's corners
    mean, scale = fit_scaler(images)
    reference = StandardScaler().fit(images.reshape(50, -1))
    np.testing.assert_allclose(mean.ravel(), reference.mean_, rtol=1e-6)
    np.testing.assert_allclose(scale.ravel(), reference.scale_, rtol=1e-5)


def test_training_beats_chance_by_far(trained):
    _, metrics = trained
    assert metrics["n_train"] == 480 and metrics["n_test"] == 120
    assert metrics["accuracy"] > 0.6 and metrics["macro_f1"] > 0.55  # chance is 0.1
    assert metrics["parameters"] == 68_522 and metrics["settings"]["scaling"] == "standard"


def test_metrics_equal_sklearn_recomputed_from_predictions(trained):
    paths, metrics = trained
    with h5py.File(paths.predictions) as file:
        truth, predicted, probabilities = file["labels"][:], file["predicted"][:], file["probabilities"][:]
    np.testing.assert_array_equal(predicted, probabilities.argmax(axis=1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=range(10), zero_division=0
    )
    macro = precision_recall_fscore_support(truth, predicted, labels=range(10), average="macro", zero_division=0)
    saved = read_json(paths.metrics)
    assert saved["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert (saved["macro_precision"], saved["macro_recall"], saved["macro_f1"]) == pytest.approx(macro[:3])
    np.testing.assert_allclose(saved["precision"], precision)
    np.testing.assert_allclose(saved["recall"], recall)
    np.testing.assert_allclose(saved["f1"], f1)
    assert saved["support"] == support.tolist()
    assert saved["confusion_matrix"] == confusion_matrix(truth, predicted, labels=range(10)).tolist()


def test_history_has_interval_and_epoch_rows(trained):
    paths, _ = trained
    with open(paths.history) as handle:
        rows = list(csv.DictReader(handle))
    # 480 images / 32 = 15 batches per epoch, a row every 5: 3 per epoch.
    assert [int(row["step"]) for row in rows] == [5, 10, 15, 20, 25, 30]
    assert [float(row["progress"]) for row in rows][-1] == 2.0
    assert all(0 <= float(row["val_f1"]) <= 1 and float(row["train_loss"]) > 0 for row in rows)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_saved_model_loads_in_safe_mode_and_reproduces_predictions(trained, upsampled):
    paths, _ = trained
    model = load_model(paths.model)
    with h5py.File(paths.predictions) as file:
        test_indices, probabilities = file["test_indices"][:5], file["probabilities"][:5]
    with h5py.File(upsampled) as file:
        images, labels = file["images"][:], file["labels"][:]
    train, _ = split_indices(labels, 0.8, 3)
    scaled, _ = scale_images(images, train, "standard", "train")
    np.testing.assert_allclose(model(scaled[test_indices][..., None]).numpy(), probabilities, atol=1e-5)


def test_same_seed_twice_is_bit_identical(upsampled, trained, tmp_path_factory):
    paths, metrics = trained
    # At the same depth as the first run: each output names its input relative to itself (source_file).
    again = run_paths(tmp_path_factory.mktemp("again"))
    metrics_again = train_run(upsampled, again, "w2s2", 3, FAST, image_shape=(28, 28))
    first, second = load_model(paths.model), load_model(again.model)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert reproducible(metrics) == reproducible(metrics_again)
    assert "train_seconds" in metrics and "train_seconds" not in reproducible(metrics)


def test_input_without_labels_fails_cleanly(tmp_path):
    bad = tmp_path / "nolabels.h5"
    write_h5(bad, {"images": np.zeros((40, 28, 28), np.float32)}, {"stage": "upsample"})
    out = tmp_path / "run"
    with pytest.raises(PoolupError, match="no 'labels' HDF5 dataset"):
        train_run(bad, run_paths(out), "x", 0, FAST, image_shape=(28, 28))
    assert list(out.iterdir()) == []


def test_wrong_image_shape_fails_cleanly(tmp_path):
    bad = tmp_path / "shape.h5"
    write_h5(bad, {"images": np.zeros((40, 27, 27), np.float32), "labels": np.arange(40) % 10}, {"stage": "upsample"})
    out = tmp_path / "run"
    with pytest.raises(PoolupError, match=r"images are \(27, 27\), expected \(28, 28\)"):
        train_run(bad, run_paths(out), "x", 0, FAST, image_shape=(28, 28))
    assert list(out.iterdir()) == []


def test_a_file_from_another_stage_or_edited_is_refused(upsampled, tmp_path):
    import shutil

    out = tmp_path / "run"
    stored = upsampled.parent / "stored.h5"  # a real poolup file, from the store stage
    with pytest.raises(PoolupError, match="written by stage 'store', expected 'pool'"):
        train_run(stored, run_paths(out), "w2s2", 0, FAST)
    edited = tmp_path / "edited.h5"
    shutil.copy(upsampled, edited)
    with h5py.File(edited, "r+") as file:
        file["images"][0, 0, 0] += 1.0
    with pytest.raises(PoolupError, match="content does not match its recorded sha256"):
        train_run(edited, run_paths(out), "w2s2", 0, FAST, image_shape=(28, 28))
    assert list(out.iterdir()) == []


def test_not_a_model_file(tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(PoolupError, match="not a loadable Keras model"):
        load_model(fake)


def _outputs_equal(a: RunPaths, b: RunPaths) -> None:
    """Two runs wrote the same thing: weights, predictions, history and the reproducible metrics."""
    for x, y in zip(load_model(a.model).get_weights(), load_model(b.model).get_weights()):
        np.testing.assert_array_equal(x, y)
    with h5py.File(a.predictions) as fa, h5py.File(b.predictions) as fb:
        for name in ("probabilities", "test_indices"):
            np.testing.assert_array_equal(fa[name][:], fb[name][:])
    assert Path(a.history).read_bytes() == Path(b.history).read_bytes()
    assert reproducible(read_json(a.metrics)) == reproducible(read_json(b.metrics))


def test_seeds_trained_in_one_job_equal_solo_runs(upsampled, trained, tmp_path_factory):
    """A group job gives each seed exactly what a solo run gives (same split, weights, batch order)."""
    solo_paths, _ = trained  # seed 3, trained alone earlier in this process
    # Every run folder at the same depth: each output names its input relative to itself (source_file).
    group = {seed: run_paths(tmp_path_factory.mktemp(f"group-seed{seed}")) for seed in (3, 5, 8)}
    records = train_seeds(upsampled, group, "w2s2", FAST, image_shape=(28, 28))
    assert [record["seed"] for record in records] == [3, 5, 8]
    assert all(record["seeds_in_job"] == 3 for record in records)
    _outputs_equal(solo_paths, group[3])
    # A solo run of a later seed, after the group ran in this same process, equals its grouped run.
    solo_8 = run_paths(tmp_path_factory.mktemp("solo8"))
    train_run(upsampled, solo_8, "w2s2", 8, FAST, image_shape=(28, 28))
    _outputs_equal(solo_8, group[8])
    # Different seeds really are different runs.
    assert read_json(group[5].metrics)["macro_f1"] != read_json(group[8].metrics)["macro_f1"]


def test_seed_groups_are_fixed_blocks_of_seed_numbers():
    assert group_seeds(range(7), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    # Adding seeds never moves a seed to another group: finished groups keep their members.
    before, after = group_seeds(range(10), 5), group_seeds(range(17), 5)
    assert after[: len(before)] == before
    assert group_seeds([12, 3, 4, 40], 5) == [[3, 4], [12], [40]]


def test_a_partly_filled_block_keeps_its_finished_seeds_in_a_job_of_their_own():
    """2 -> 3 seeds: seeds 0 and 1 are trained, so seed 2 is a job of its own and the finished job stays as it was."""
    finished = {0, 1}
    assert group_seeds(range(2), 5) == [[0, 1]]
    assert group_seeds(range(3), 5, state=lambda seed: seed in finished) == [[0, 1], [2]]
    # What is finished where: a seed finished for one case only is not grouped with one finished for none.
    where = {0: {"a", "b"}, 1: {"a"}, 2: set(), 3: set()}
    assert group_seeds(range(4), 5, state=lambda seed: frozenset(where[seed])) == [[0], [1], [2, 3]]


def test_seed_groups_are_cut_at_the_looks():
    """No job trains seeds of two looks: a case decided at a look trains no seed of the next."""
    assert group_seeds(range(12), 5, boundaries=[3, 8]) == [[0, 1, 2], [3, 4], [5, 6, 7], [8, 9], [10, 11]]
    assert group_seeds(range(40), 5, boundaries=[10, 20, 40]) == group_seeds(range(40), 5)


def test_a_group_name_holds_its_seeds():
    for group in ([0, 1, 2, 3, 4], [2], [0, 1, 3, 4], [7, 9, 10, 11]):
        assert group_of(group_name(group)) == group
    assert group_name([0, 1, 2, 3, 4]) == "train_seeds_0_4"
    assert group_name([0, 1, 3, 4]) == "train_seeds_0_1_3_4"
    assert group_of("train_seeds_0_") is None and group_of("aggregate") is None


def test_a_job_process_builds_the_training_rules_its_command_line_names():
    argv = ["--snakefile", "Snakefile", "--target-jobs", "train_seeds_2_2:dataset=d,case=c", "look:dataset=d,look=2"]
    assert groups_sent([*argv, "--allowed-rules", "train_seeds_2_2", "look", "--cores", "1"]) == [[2]]
    assert groups_sent(["--target-jobs", "aggregate:dataset=d"]) == [] == groups_sent([])


def test_schema_defaults_equal_the_settings_defaults():
    from poolup.config import load_schema

    schema = load_schema(Path(__file__).resolve().parent.parent / "workflow/schemas/config.schema.yaml")
    training = schema["properties"]["training"]["properties"]
    expected = {
        name: spec["default"]
        for name, spec in training.items()
        if name not in ("early_stopping", *TRAINING_EXECUTION_KEYS)
    }
    expected.update(
        {
            ("early_stopping" if name == "enabled" else name): spec["default"]
            for name, spec in training["early_stopping"]["properties"].items()
        }
    )
    assert {field.name: field.default for field in fields(TrainSettings)} == expected


def test_early_stopping_selects_on_a_validation_part_of_the_training_split(upsampled, tmp_path):
    settings = TrainSettings(
        epochs=6,
        batch_size=32,
        history_every=5,
        monitor_samples=50,
        learning_rate=0.01,
        early_stopping=True,
        validation_size=0.25,
        patience=0,
        precision="float32",
    )
    paths = run_paths(tmp_path / "es")
    metrics = train_run(upsampled, paths, "w2s2", 1, settings, image_shape=(28, 28))
    train, test = split_indices(np.arange(600) % 10, 0.8, 1)
    # The validation part comes out of the authors' training split; the test split is untouched.
    assert metrics["n_train"] + metrics["n_validation"] == train.shape[0] == 480
    assert metrics["n_validation"] == 120 and metrics["n_test"] == test.shape[0] == 120
    losses = [epoch["validation_loss"] for epoch in metrics["epochs"]]
    best = int(np.argmin(losses)) + 1
    assert metrics["best_epoch"] == best
    # patience 0: training stops right after the first epoch that does not improve.
    assert metrics["epochs_run"] == min(6, best + 1) == len(losses)
    # The restored weights are the best epoch's: re-evaluating the saved model gives that epoch's validation loss.
    with h5py.File(upsampled) as file:
        images, labels = file["images"][:], file["labels"][:]
    from sklearn.model_selection import train_test_split

    fit, validation = train_test_split(split_indices(labels, 0.8, 1)[0], test_size=0.25, random_state=1)
    scaled, _ = scale_images(images, fit, "standard", "train")
    probabilities = load_model(paths.model)(scaled[validation][..., None]).numpy()
    picked = np.clip(probabilities[np.arange(len(validation)), labels[validation]], 1e-7, 1)
    assert -np.log(picked).mean() == pytest.approx(losses[best - 1], rel=1e-4)


def test_non_finite_loss_stops_with_one_line_and_writes_nothing(upsampled, tmp_path):
    diverging = TrainSettings(batch_size=32, history_every=5, monitor_samples=50, learning_rate=1e6, scaling="none")
    out = tmp_path / "nan"
    with pytest.raises(PoolupError, match=r"training loss became nan .*lower training.learning_rate"):
        train_run(upsampled, run_paths(out), "w2s2", 0, diverging, image_shape=(28, 28))
    assert list(out.iterdir()) == []


def test_scaling_none_trains_on_raw_values(upsampled, tmp_path):
    """The authors' code: the scaler is fitted but never applied."""
    settings = TrainSettings(epochs=1, history_every=5, monitor_samples=50, scaling="none", precision="float32")
    paths = run_paths(tmp_path / "none")
    metrics = train_run(upsampled, paths, "w2s2", 2, settings, image_shape=(28, 28))
    assert metrics["settings"]["scaling"] == "none"
    with h5py.File(upsampled) as file:
        images = file["images"][:]
    with h5py.File(paths.predictions) as file:
        test_indices, probabilities = file["test_indices"][:5], file["probabilities"][:5]
    np.testing.assert_allclose(
        load_model(paths.model)(images[test_indices][..., None]).numpy(), probabilities, atol=1e-5
    )


def test_scaling_fit_on_all_uses_every_image(upsampled):
    with h5py.File(upsampled) as file:
        images = file["images"][:]
    train, _ = split_indices(np.zeros(images.shape[0]), 0.8, 0)
    scaled_all, info = scale_images(images, train, "standard", "all")
    scaled_train, _ = scale_images(images, train, "standard", "train")
    assert info == {"scaling": "standard", "fit_on": "all"}
    flat = scaled_all.reshape(len(images), -1)
    varying = images.reshape(len(images), -1).std(axis=0) > 0
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(flat[:, varying].std(axis=0), 1, rtol=1e-3)
    assert not np.allclose(scaled_all, scaled_train)


def test_mixed_bfloat16_trains_and_records_the_precision_used(upsampled, tmp_path):
    from poolup.runtime import bfloat16_hardware

    settings = replace(FAST, precision="mixed_bfloat16")
    metrics = train_run(upsampled, run_paths(tmp_path / "bf16"), "w2s2", 3, settings, image_shape=(28, 28))
    expected = "mixed_bfloat16" if bfloat16_hardware() else "float32"
    assert metrics["precision_used"] == expected and metrics["settings"]["precision"] == "mixed_bfloat16"
    assert math.isfinite(metrics["macro_f1"]) and metrics["macro_f1"] > 0.5  # float32 gives ~0.6 on these 480 digits
    # The global policy must not leak into the next run in this process.
    metrics32 = train_run(upsampled, run_paths(tmp_path / "f32"), "w2s2", 0, FAST, image_shape=(28, 28))
    assert metrics32["precision_used"] == "float32"


def test_bfloat16_without_hardware_falls_back_to_float32_with_a_log_line(upsampled, tmp_path, monkeypatch, caplog):
    import poolup.runtime as runtime

    monkeypatch.setattr(runtime, "bfloat16_hardware", lambda: False)  # as on a CPU without AVX512_BF16/AMX
    settings = replace(FAST, precision="mixed_bfloat16", epochs=1)
    with caplog.at_level("WARNING", logger="poolup"):
        metrics = train_run(upsampled, run_paths(tmp_path / "fallback"), "w2s2", 0, settings, image_shape=(28, 28))
    assert metrics["precision_used"] == "float32"
    assert "no bfloat16 hardware found" in caplog.text and "training in float32" in caplog.text
    # Bit for bit the float32 run.
    plain = train_run(
        upsampled, run_paths(tmp_path / "plain"), "w2s2", 0, replace(FAST, epochs=1), image_shape=(28, 28)
    )
    assert {k: v for k, v in reproducible(metrics).items() if k != "settings"} == {
        k: v for k, v in reproducible(plain).items() if k != "settings"
    }


def test_the_training_batches_come_in_the_seeded_order_of_tfdatas_default_pipeline_without_its_autotuning():
    """training_batches turns tf.data's autotuning off (deleting an autotuned iterator at a run's end
    waited up to a minute for its thread, bench/pipeline_end.py); the batches, and so the runs, stay
    those of the autotuned pipeline, element for element."""
    import tensorflow as tf

    from poolup.loop import training_batches

    images = np.arange(130 * 4 * 4, dtype=np.float32).reshape(130, 4, 4, 1)
    labels = np.arange(130, dtype=np.int32)
    ours = training_batches(images, labels, 7, 32, 2)
    autotuned = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(130, seed=7, reshuffle_each_iteration=True)
        .batch(32)
        .repeat(2)
        .prefetch(tf.data.AUTOTUNE)
    )
    assert ours.options().autotune.enabled is False
    got, expected = list(ours.as_numpy_iterator()), list(autotuned.as_numpy_iterator())
    assert [len(b[1]) for b in got] == [32, 32, 32, 32, 2] * 2
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(got, expected, strict=True))
    assert not np.array_equal(got[0][1], got[5][1])  # reshuffled each epoch


ONEDNN_PROBE = """
import json, logging, sys
from dataclasses import replace
from pathlib import Path
from poolup.runs import RunPaths
from poolup.job_inputs import TrainSettings
from poolup.training import train_run
logging.basicConfig(level=logging.WARNING)
settings = TrainSettings(epochs=1, history_every=5, monitor_samples=50, precision="float32")
records = []
for index, onednn in enumerate(json.loads(sys.argv[2])):
    folder = Path(sys.argv[3], str(index))
    folder.mkdir()
    paths = RunPaths(*(str(folder / name) for name in ("m.keras", "h.csv", "t.json", "p.h5")))
    records.append(train_run(sys.argv[1], paths, "w2s2", 0, replace(settings, onednn=onednn), image_shape=(28, 28)))
print(json.dumps([[r["settings"]["onednn"], r["onednn_used"], r["outputs"]["p.h5"]] for r in records]))
"""


def onednn_runs(upsampled, folder, requests, switch):
    """Train seed 0 once per request of training.onednn, one after the other in a fresh process whose
    environment sets TF_ENABLE_ONEDNN_OPTS=switch; each run's (asked, used, predictions digest) and the log."""
    import json
    import os
    import subprocess
    import sys

    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", ONEDNN_PROBE, str(upsampled), json.dumps(requests), str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": switch, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


@pytest.mark.slow  # a whole run and its reruns (python -m pytest -m slow)
def test_training_onednn_picks_tensorflows_kernels_when_it_starts_and_each_run_records_them(upsampled, tmp_path):
    """TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at its import: the job's setting wins over the
    environment's, and a later run in the same process that asks for the other kernels keeps the
    running ones, says so in the log and records what it ran."""
    from poolup.runtime import onednn_kernels

    on, log_on = onednn_runs(upsampled, tmp_path / "on", [True, False], switch="0")
    off, log_off = onednn_runs(upsampled, tmp_path / "off", [False], switch="1")
    if not onednn_kernels():
        pytest.skip("this TensorFlow has no oneDNN kernels")
    assert [run[:2] for run in on] == [[True, True], [False, True]]
    assert "training.onednn false: TensorFlow in this process runs with oneDNN kernels on" in log_on
    assert off[0][:2] == [False, False] and "training.onednn" not in log_off
    assert on[0][2] == on[1][2]  # the same kernels, the same run bit for bit
    # Other kernels add in another order: the same seed ends in other last bits.
    assert on[0][2] != off[0][2]


def test_the_scaler_equals_numpys_mean_and_var_bit_for_bit():
    """fit_scaler sums a block of rows at a time (no float64 copy of the images): the same numbers as
    numpy's mean and var over the rows picked (test_scaler_matches_sklearn compares with scikit-learn)."""
    from poolup.scaling import SCALER_BLOCK

    rng = np.random.default_rng(3)
    images = (rng.random((3 * SCALER_BLOCK + 17, 12, 9)) * 255).astype(np.float32)
    images[:, 0, 0] = 7.0  # a constant pixel: scale 1
    rows = rng.choice(images.shape[0], size=2 * SCALER_BLOCK + 5, replace=False)  # in split order, not sorted
    for picked in (images, images[rows]):
        flat = picked.reshape(picked.shape[0], -1)
        expected_scale = np.sqrt(flat.var(axis=0, dtype=np.float64))
        expected_scale[expected_scale == 0] = 1.0
        mean, scale = fit_scaler(images, rows) if picked is not images else fit_scaler(images)
        assert mean.tobytes() == flat.mean(axis=0, dtype=np.float64).astype(np.float32).reshape(12, 9).tobytes()
        assert scale.tobytes() == expected_scale.astype(np.float32).reshape(12, 9).tobytes()


@pytest.mark.parametrize(
    ("history_every", "steps_per_epoch", "expected"), [(100, 1500, 100), (100, 75, 25), (100, 2, 1), (3, 75, 3)]
)
def test_a_small_epoch_still_draws_a_curve_of_three_points(history_every, steps_per_epoch, expected):
    """3,000 digits (75 batches of 32 at train_size 0.8) and the default history_every of 100: a point every
    25 batches (3 per epoch), not one at the epoch's end; MNIST's 1,500 batches keep the 100."""
    from poolup.loop import curve_interval

    assert curve_interval(history_every, steps_per_epoch) == expected


def test_a_job_states_its_memory_need_and_refuses_where_the_machine_has_less(caplog):
    """70,000 MNIST digits: about 1.6 GB (the calibration); 20,000 photos of 256x256x3 need 75 GB (float32
    in memory, a few copies), refused in one line naming what brings it down."""
    from poolup.runtime import check_memory, training_memory

    assert 1_600 * 2**20 < training_memory(70_000, (28, 28)) < 1_700 * 2**20
    with caplog.at_level("INFO", logger="poolup"):
        check_memory(70_000, (28, 28), available=8 * 2**30)
    assert "memory: about 1646 MB for 70000 images of 28x28 in float32; 8192 MB available" in caplog.text
    with pytest.raises(PoolupError) as error:
        check_memory(20_000, (256, 256, 3), available=8 * 2**30)
    message = str(error.value)
    need = training_memory(20_000, (256, 256, 3)) // 2**20
    assert message.startswith(f"training needs about {need} MB for 20000 images of 256x256x3") and "\n" not in message
    assert 70_000 < need < 80_000
    assert "datasets[].max_images" in message and "8192 MB are available" in message
