"""Non-square images (20x36): every stage records, and every figure shows, their real shape."""

from __future__ import annotations

import numpy as np
import pytest

from poolup import plots, preprocess
from poolup.h5files import read_image_set
from poolup.records import read_json


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """raw.h5 of 40 images of 20x36, pooled 2x2/2 (10x18), stored and up-sampled back."""
    folder = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    np.savez(folder / "d.npz", images=rng.integers(0, 256, (40, 20, 36), dtype=np.uint8), labels=np.arange(40) % 4)
    preprocess.fetch_source(folder / "raw.h5", "npz", str(folder / "d.npz"), expected_shape=(20, 36))
    preprocess.pool(folder / "raw.h5", folder / "pooled.h5", "w2s2", 2, 2)
    preprocess.store(
        folder / "pooled.h5",
        folder / "raw.h5",
        folder / "stored.h5",
        folder / "storage.json",
        {"filter": "gzip", "level": 4},
    )
    preprocess.upsample(folder / "pooled.h5", folder / "upsampled.h5")
    return folder


def test_every_stage_records_the_real_shape(chain):
    record = read_json(chain / "storage.json")
    assert record["original_shape"] == [20, 36] and record["stored_shape"] == [10, 18]
    assert read_image_set(chain / "pooled.h5").images.shape[1:] == (10, 18)
    assert read_image_set(chain / "upsampled.h5").images.shape[1:] == (20, 36)


def test_figures_show_the_real_shape(chain, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, *args: drawn.append(figure))
    plots.plot_preprocessing(chain / "raw.h5", chain / "pooled.h5", "2x2/2", "x.png", "x.pdf", 3, 50)
    plots.plot_examples(chain / "raw.h5", "y.png", "y.pdf", 3, 50)
    preprocessing, examples = drawn
    labels = [axis.get_ylabel() for axis in preprocessing.axes if axis.get_ylabel()]
    assert labels == ["original", "stored 10x18", "up-sampled to 20x36"]
    for axis in preprocessing.axes:  # each image at its true size, in the frame of the original
        assert axis.get_xlim() == (0, 36) and axis.get_ylim() == (20, 0)
    stored = [axis.images[0].get_extent() for axis in preprocessing.axes[3:6]]
    assert stored == [[0, 18, 10, 0]] * 3
    assert examples.texts[0].get_text() == "Example digits (20 x 36, uint8)"


def test_another_cases_files_are_not_drawn_under_its_label(chain):
    from poolup.errors import PoolupError

    with pytest.raises(PoolupError, match="pooled.h5: made for case 'w2s2', expected case 'w3s2'"):
        plots.plot_preprocessing(chain / "raw.h5", chain / "pooled.h5", "3x3/2", "x.png", "x.pdf", 3, 50, case="w3s2")
