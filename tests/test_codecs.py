import numpy as np
import pytest

from poolup.codecs import CODECS, measure_case, measure_codec
from poolup.preprocess import fetch_source, pool_and_store


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_round_trips_real_digits_and_compresses(codec, tmp_path):
    from poolup.sources import load_bundled

    images = np.asarray(load_bundled()[0][:200]).reshape(200, 28, 28).astype(np.uint8)
    size, encode, decode = measure_codec(images, codec)
    assert 0 < size < images.nbytes  # real digits compress
    assert size == reference_size(images, codec, tmp_path)
    assert 0 < encode < 60 and 0 < decode < 60


def reference_size(images, codec, folder):
    """Bytes of the same images written the plain way: an HDF5 file on disk, or one Pillow file per image."""
    import io

    import h5py
    import hdf5plugin
    from PIL import Image

    if codec.startswith("hdf5-"):
        options = {
            "hdf5-gzip": {"compression": "gzip", "compression_opts": 6, "shuffle": True},
            "hdf5-lzf": {"compression": "lzf", "shuffle": True},
            "hdf5-zstd": dict(hdf5plugin.Zstd(clevel=9)),
            "hdf5-blosc-zstd": dict(hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)),
        }[codec]
        with h5py.File(folder / "reference.h5", "w") as file:
            file.create_dataset("images", data=images, chunks=(min(len(images), 1024), 28, 28), **options)
        with h5py.File(folder / "reference.h5") as file:
            return file["images"].id.get_storage_size()
    options = {
        "png": {"format": "PNG", "optimize": True},
        "webp": {"format": "WEBP", "lossless": True, "quality": 100},
    }[codec]
    total = 0
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, **options)
        total += len(buffer.getvalue())
    return total


def test_unknown_codec():
    from poolup.errors import PoolupError

    with pytest.raises(PoolupError, match="unknown codec"):
        measure_codec(np.zeros((2, 4, 4), np.uint8), "jpeg")


def test_case_measurement_compares_with_raw_under_the_same_codec(tmp_path):
    fetch_source(tmp_path / "raw.h5", "bundled", max_images=300)
    pool_and_store(tmp_path / "raw.h5", tmp_path / "s.h5", tmp_path / "s.json", "w2s2", 2, 2)
    pool_and_store(tmp_path / "raw.h5", tmp_path / "f.h5", tmp_path / "f.json", "w2s2f", 2, 2, dtype="float32")
    records = {
        r["codec"]: r for r in measure_case(tmp_path / "raw.h5", tmp_path / "s.h5", tmp_path / "c.json", sample=50)
    }
    assert records["png"]["images_measured"] == 50 and records["hdf5-gzip"]["images_measured"] == 300
    for record in records.values():
        assert record["ratio_to_raw"] == pytest.approx(record["bytes_per_image"] / record["raw_bytes_per_image"])
        assert record["ratio_to_raw"] < 1  # a quarter of the pixels costs less under every codec
    floats = {
        r["codec"]: r
        for r in measure_case(
            tmp_path / "raw.h5", tmp_path / "f.h5", tmp_path / "d.json", ["hdf5-lzf", "png"], sample=20
        )
    }
    assert "skipped" in floats["png"] and floats["hdf5-lzf"]["bytes_per_image"] > 0
