import numpy as np
import pytest

from poolup.codecs import CODECS, measure_case, measure_codec
from poolup.stages import fetch, store


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_round_trips_real_digits_and_compresses(codec):
    from poolup.sources import load_bundled

    images = np.asarray(load_bundled()[0][:200]).reshape(200, 28, 28).astype(np.uint8)
    size, encode, decode = measure_codec(images, codec)
    assert 0 < size < images.nbytes  # real digits compress
    assert encode > 0 and decode > 0


def test_unknown_codec():
    from poolup.errors import PoolupError

    with pytest.raises(PoolupError, match="unknown codec"):
        measure_codec(np.zeros((2, 4, 4), np.uint8), "jpeg")


def test_case_measurement_compares_with_raw_under_the_same_codec(tmp_path):
    fetch(tmp_path / "raw.h5", "bundled", max_images=300)
    store(tmp_path / "raw.h5", tmp_path / "s.h5", tmp_path / "s.json", "w2s2", 2, 2)
    store(tmp_path / "raw.h5", tmp_path / "f.h5", tmp_path / "f.json", "w2s2f", 2, 2, dtype="float32")
    records = {r["codec"]: r for r in measure_case(tmp_path / "raw.h5", tmp_path / "s.h5", tmp_path / "c.json", sample=50)}
    assert records["png"]["images_measured"] == 50 and records["hdf5-gzip"]["images_measured"] == 300
    for record in records.values():
        assert record["ratio_to_raw"] == pytest.approx(record["bytes_per_image"] / record["raw_bytes_per_image"])
        assert record["ratio_to_raw"] < 1  # a quarter of the pixels costs less under every codec
    floats = {r["codec"]: r for r in measure_case(tmp_path / "raw.h5", tmp_path / "f.h5", tmp_path / "d.json", ["hdf5-lzf", "png"], sample=20)}
    assert "skipped" in floats["png"] and floats["hdf5-lzf"]["bytes_per_image"] > 0
