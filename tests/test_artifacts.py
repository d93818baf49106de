import h5py
import numpy as np
import pytest

from poolup.artifacts import bytes_under_filter, read_image_set, stored_bytes, write_h5
from poolup.cli import main as cli_main
from poolup.errors import PoolupError
from poolup.stages import fetch, store, upsample


def test_h5_round_trip_with_attributes_and_checksum(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([1, 2, 3], np.uint8)
    path = tmp_path / "a.h5"
    digest = write_h5(path, {"images": images, "labels": labels}, {"case": "x", "settings": {"k": [1, 2]}}, "gzip", 6)
    data = read_image_set(path, image_shape=(28, 28), dtype="uint8")
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.attrs["settings"] == {"k": [1, 2]} and data.attrs["content_sha256"] == digest
    with h5py.File(path) as file:
        assert file["images"].compression == "gzip" and file["images"].compression_opts == 6
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "b.h5"
    with pytest.raises(TypeError):
        write_h5(path, {"images": np.zeros((2, 4, 4), np.uint8)}, {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_inspect_reports_and_detects_tampering(tmp_path, capsys):
    path = tmp_path / "c.h5"
    write_h5(path, {"images": np.ones((4, 5, 5), np.uint8), "labels": np.zeros(4, np.uint8)}, {"stage": "test"}, "gzip")
    assert cli_main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "/images: shape (4, 5, 5), uint8, filter gzip level 4" in out and "checksum: OK" in out
    with h5py.File(path, "r+") as file:
        file["images"][0, 0, 0] = 7
    assert cli_main(["inspect", str(path)]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_inspect_refuses_non_hdf5(tmp_path, capsys):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not hdf5 at all")
    assert cli_main(["inspect", str(bad)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err


def test_store_records_real_bytes_and_upsample_chain(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    npz = tmp_path / "d.npz"
    np.savez(npz, images=images, labels=rng.integers(0, 10, 300))
    raw = tmp_path / "raw.h5"
    fetch(raw, "npz", str(npz))
    record = store(raw, tmp_path / "stored.h5", tmp_path / "storage.json", "w2s2", 2, 2, "uint8", "gzip", 4)
    assert record["stored_shape"] == [14, 14] and record["pixel_ratio"] == 0.25
    assert record["stored_bytes"] == stored_bytes(tmp_path / "stored.h5")
    with h5py.File(raw) as file:
        assert record["raw_bytes_same_filter"] == bytes_under_filter(file["images"], "gzip", 4)
        raw_sha = file.attrs["content_sha256"]
    with h5py.File(tmp_path / "stored.h5") as file:
        assert file.attrs["source_sha256"] == raw_sha and file.attrs["window"] == 2
        assert file.attrs["stored_bytes"] == record["stored_bytes"]
    upsample(tmp_path / "stored.h5", tmp_path / "up.h5")
    result = read_image_set(tmp_path / "up.h5", image_shape=(28, 28), dtype="float32")
    assert result.attrs["source_sha256"] == record["stored_sha256"]


def test_baseline_upsampled_equals_raw_exactly(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "e.npz", images=images, labels=np.arange(40) % 10)
    fetch(tmp_path / "raw.h5", "npz", str(tmp_path / "e.npz"))
    store(tmp_path / "raw.h5", tmp_path / "s.h5", tmp_path / "s.json", "baseline", 1, 1)
    upsample(tmp_path / "s.h5", tmp_path / "u.h5")
    np.testing.assert_array_equal(read_image_set(tmp_path / "u.h5").images, images.astype(np.float32))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.__delitem__("labels"), "no 'labels' dataset"),
        (lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.zeros((4, 28, 28), np.float32) * np.nan)), "NaN"),
        (lambda f: (f.__delitem__("labels"), f.create_dataset("labels", data=np.array([0, 1, 2, 300]))), "outside 0..255"),
        (lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.zeros((4, 27, 27), np.uint8))), "expected (28, 28)"),
        (lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.full((4, 28, 28), np.inf, np.float32))), "NaN or infinite"),
        (lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.zeros((4, 28, 28), bool))), "dtype bool"),
    ],
)
def test_bad_hdf5_content_is_one_line_error(tmp_path, mutate, message):
    path = tmp_path / "f.h5"
    write_h5(path, {"images": np.zeros((4, 28, 28), np.uint8), "labels": np.zeros(4, np.uint8)}, {})
    with h5py.File(path, "r+") as file:
        mutate(file)
    with pytest.raises(PoolupError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_image_set(path, image_shape=(28, 28))
    assert "\n" not in str(info.value)


def test_truncated_hdf5_is_one_line_error(tmp_path):
    path = tmp_path / "g.h5"
    write_h5(path, {"images": np.zeros((400, 28, 28), np.uint8), "labels": np.zeros(400, np.uint8)}, {}, "gzip")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoolupError, match="truncated"):
        read_image_set(path)


def test_stages_refuse_bad_inputs_and_leave_no_output(tmp_path):
    raw = tmp_path / "raw.h5"
    write_h5(raw, {"images": np.zeros((4, 28, 28), np.float32), "labels": np.zeros(4, np.uint8)}, {})
    with pytest.raises(PoolupError, match="expected uint8"):
        store(raw, tmp_path / "stored.h5", tmp_path / "storage.json", "w2s2", 2, 2)
    stored = tmp_path / "stored.h5"
    write_h5(stored, {"images": np.zeros((4, 14, 14), np.uint8), "labels": np.zeros(4, np.uint8)}, {})
    with pytest.raises(PoolupError, match="attributes .* missing"):
        upsample(stored, tmp_path / "upsampled.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5", "stored.h5"]
