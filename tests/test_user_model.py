"""training.model: a model function of the user's own, FILE.py:FUNCTION, trained by the same multi-seed loop."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, run_snakemake, scheduled_jobs, write_config

from poolup.errors import PoolupError
from poolup.job_inputs import TrainSettings
from poolup.model import make_model, model_sha256
from poolup.provenance import file_sha256
from poolup.runs import RunPaths, reproducible
from poolup.training import train_run

SMALL_CNN = REPO / "tests/models/small_cnn.py"


def user_model(folder: Path, body: str, name: str = "mine.py") -> str:
    path = folder / name
    path.write_text("import keras\nfrom keras import layers\n\n\n" + body)
    return str(path)


@pytest.fixture(scope="module")
def upsampled_file(tmp_path_factory):
    from conftest import synthetic_digits

    from poolup.preprocess import fetch_source, pool_and_store, upsample

    folder = tmp_path_factory.mktemp("user-model")
    images, labels = synthetic_digits(300)
    np.savez(folder / "d.npz", images=images, labels=labels)
    fetch_source(folder / "raw.h5", "npz", str(folder / "d.npz"))
    pool_and_store(folder / "raw.h5", folder / "stored.h5", folder / "storage.json", "w2s2", 2, 2)
    upsample(folder / "stored.h5", folder / "upsampled.h5")
    return folder / "upsampled.h5"


def run_paths(folder: Path) -> RunPaths:
    folder.mkdir(parents=True, exist_ok=True)
    return RunPaths(*(str(folder / name) for name in ("model.keras", "history.csv", "test_metrics.json", "p.h5")))


def test_a_user_model_trains_records_its_name_digest_and_size_and_a_seed_reproduces(upsampled_file, tmp_path):
    spec = f"{SMALL_CNN}:small_cnn"
    settings = TrainSettings(history_every=5, monitor_samples=20, precision="float32", model=spec)
    first = train_run(upsampled_file, run_paths(tmp_path / "a"), "w2s2", 3, settings, (28, 28))
    again = train_run(upsampled_file, run_paths(tmp_path / "b"), "w2s2", 3, settings, (28, 28))
    # Conv 8x(3x3x1)+8, Dense 8x10+10: the parameters keras counts for the file's model.
    assert first["model"] == {"name": spec, "sha256": file_sha256(SMALL_CNN), "parameters": 80 + 90}
    assert first["settings"]["model"] == spec and first["parameters"] == 170
    assert reproducible(first) == reproducible(again), "the same seed gives the same record"
    other = train_run(upsampled_file, run_paths(tmp_path / "c"), "w2s2", 4, settings, (28, 28))
    assert reproducible(other) != reproducible(first), "another seed is another run"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("def build(input_shape, n_classes)\n    return None\n", r"mine\.py:5: syntax error in the model file"),
        (
            "def helper():\n    pass\n\n\ndef other(a, b):\n    pass\n",
            r"mine\.py: no function 'build'; the file defines helper, other; name one in training\.model",
        ),
        (
            "def build(input_shape, n_classes):\n    raise ValueError('no such layer')\n",
            r"mine\.py: build\(\(28, 28, 1\), 10\) raised ValueError: no such layer; fix the model function",
        ),
        (
            "def build(input_shape, n_classes):\n    return keras.Sequential(\n"
            "        [keras.Input(input_shape), layers.Flatten(), layers.Dense(7, activation='softmax')]\n    )\n",
            r"mine\.py: the model of build outputs shape \(7,\) per image, expected \(10,\)",
        ),
        (
            "def build(input_shape, n_classes):\n    return keras.Sequential(\n"
            "        [keras.Input(input_shape), layers.Flatten(), layers.Dense(n_classes)]\n    )\n",
            r"mine\.py: the model of build does not output probabilities .* end it with a softmax \(logits are not",
        ),
        ("def build(input_shape, n_classes):\n    return 'a model'\n", r"mine\.py: build returned str, not a keras"),
        ("import no_such_package\n", r"mine\.py: importing the model file raised ModuleNotFoundError"),
    ],
    ids=["syntax-error", "missing-function", "raises", "wrong-width", "logits", "not-a-model", "import-fails"],
)
def test_each_faulty_model_file_gets_one_line_naming_it(tmp_path, body, message):
    spec = user_model(tmp_path, body) + ":build"
    with pytest.raises(PoolupError, match=message) as caught:
        make_model(spec, (28, 28, 1), 10)
    assert "\n" not in str(caught.value)


def test_a_missing_model_file_or_a_malformed_spec_is_a_config_error_before_any_job(tmp_path):
    with pytest.raises(PoolupError, match=r"training\.model .*nowhere\.py not found"):
        model_sha256(f"{tmp_path}/nowhere.py:build")
    with pytest.raises(PoolupError, match=r"expected 'paper' or FILE\.py:FUNCTION"):
        model_sha256("mine.py")
    config = write_config(
        tmp_path / "c.yaml",
        datasets=[{"name": "tiny", "source": "bundled", "max_images": 200}],
        training={"model": "nowhere.py:build"},
    )
    result = run_snakemake(tmp_path, "-n", configfiles=[config], check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("poolup:")]
    assert lines == [
        "poolup: config error: training.model 'nowhere.py:build': nowhere.py not found (relative paths are read from "
        "the working directory); fix the path or use training.model: paper"
    ]
    assert "Traceback" not in result.stderr and not (tmp_path / "results").exists()


def test_editing_the_model_file_plans_the_training_again_and_another_file_changes_nothing(tiny_run, tmp_path):
    source, config = tiny_run
    workdir = tmp_path / "own-model"
    shutil.copytree(source, workdir, symlinks=True)
    shutil.copy(SMALL_CNN, workdir / "small_cnn.py")
    (workdir / "helpers.py").write_text("# helpers\n")
    settings = yaml.safe_load(config.read_text())
    settings["training"] = {**settings["training"], "model": "small_cnn.py:small_cnn"}
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(settings))
    target = "results/tiny/baseline/seed0/test_metrics.json"
    run_snakemake(workdir, "--cores", "2", target, configfiles=[mine])
    assert "Nothing to be done" in run_snakemake(workdir, "-n", target, configfiles=[mine]).stdout
    (workdir / "helpers.py").write_text("# helpers, a comment edited\n")
    assert "Nothing to be done" in run_snakemake(workdir, "-n", target, configfiles=[mine]).stdout
    edited = (workdir / "small_cnn.py").read_text().replace("Conv2D(8,", "Conv2D(4,")
    (workdir / "small_cnn.py").write_text(edited)
    planned = run_snakemake(workdir, "-n", target, configfiles=[mine]).stdout
    assert {rule for rule, _ in scheduled_jobs(planned)} == {"train"} and "Params have changed" in planned
