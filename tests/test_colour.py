"""Colour images (H x W x C) through every stage: pooled per channel, CNN input shape from the data."""

import numpy as np

from poolup.h5files import read_image_set
from poolup.job_inputs import TrainSettings
from poolup.plots import plot_preprocessing
from poolup.preprocess import fetch_source, pool_and_store, upsample
from poolup.runs import RunPaths
from poolup.training import train_run


def colour_digits(n: int, seed: int = 0):
    """32x32 RGB images whose class sets the colour and place of a bright square (learnable)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    images = rng.integers(0, 60, size=(n, 32, 32, 3)).astype(np.uint8)
    for i, label in enumerate(labels):
        row, col = 4 + (label // 2) * 14, 4 + (label % 2) * 14
        images[i, row : row + 10, col : col + 10, label % 3] = 250
    return images, labels


def test_colour_images_through_every_stage(tmp_path):
    images, labels = colour_digits(400)
    np.savez(tmp_path / "colour.npz", images=images, labels=labels)
    fetch_source(tmp_path / "raw.h5", "npz", str(tmp_path / "colour.npz"), expected_shape=(32, 32, 3))
    record = pool_and_store(tmp_path / "raw.h5", tmp_path / "stored.h5", tmp_path / "storage.json", "w2s2", 2, 2)
    assert record["stored_shape"] == [16, 16, 3] and record["pixel_ratio"] == 0.25
    upsample(tmp_path / "stored.h5", tmp_path / "upsampled.h5")
    up = read_image_set(tmp_path / "upsampled.h5", image_shape=(32, 32, 3), dtype="float32")
    # Each channel is pooled and interpolated on its own: a red square stays red.
    red = up.images[labels == 0][:, 8, 8]
    assert (red[:, 0] > red[:, 1] + 100).all()
    paths = RunPaths(*(str(tmp_path / name) for name in ("m.keras", "h.csv", "t.json", "p.h5")))
    metrics = train_run(
        tmp_path / "upsampled.h5",
        paths,
        "w2s2",
        0,
        TrainSettings(epochs=2, history_every=5, monitor_samples=20),
        (32, 32, 3),
    )
    assert metrics["n_classes"] == 4 and metrics["accuracy"] > 0.8
    plot_preprocessing(
        tmp_path / "raw.h5",
        tmp_path / "stored.h5",
        "colour",
        tmp_path / "f.png",
        tmp_path / "f.pdf",
        4,
        60,
    )
    # The figure draws the images in colour: strongly red pixels (the class-0 squares) are in it.
    from PIL import Image

    figure = np.asarray(Image.open(tmp_path / "f.png").convert("RGB")).astype(int)
    red = (figure[..., 0] > 150) & (figure[..., 0] > figure[..., 1] + 100) & (figure[..., 0] > figure[..., 2] + 100)
    assert red.sum() > 100
