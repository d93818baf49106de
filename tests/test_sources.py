import gzip

import numpy as np
import pytest
from conftest import SHARED_MNIST, synthetic_digits, write_idx

from poolup.errors import PoolupError
from poolup.sources import (
    load_bundled,
    load_idx,
    load_npz,
    load_source,
    read_idx,
    subsample,
)


def test_idx_folder_loads_train_then_test(mnist_idx_folder):
    images, labels, detail = load_source("idx", str(mnist_idx_folder))
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28) and labels.dtype == np.uint8
    assert images.shape[0] == labels.shape[0] and labels.max() <= 9
    train = read_idx(next(mnist_idx_folder.glob("train-images*")))
    np.testing.assert_array_equal(images[: train.shape[0]], train)
    if mnist_idx_folder == SHARED_MNIST:
        assert images.shape == (70000, 28, 28)
        # Class counts of MNIST's training and test sets, as published.
        assert np.bincount(labels[:60000]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        assert np.bincount(labels[60000:]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_idx_wrong_magic(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(PoolupError, match="wrong magic number"):
        read_idx(path)


def test_idx_count_disagrees_with_data(tmp_path):
    images, _ = synthetic_digits(5)
    path = write_idx(tmp_path / "a-idx3-ubyte.gz", images)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(PoolupError, match="truncated or corrupt"):
        read_idx(path)


def test_idx_truncated_gzip(tmp_path):
    images, _ = synthetic_digits(50)
    path = write_idx(tmp_path / "b-idx3-ubyte.gz", images)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(PoolupError, match="cannot be read"):
        read_idx(path)


def test_idx_labels_and_images_disagree(tmp_path):
    for prefix in ("train", "t10k"):
        images, labels = synthetic_digits(10)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels[:9])
    with pytest.raises(PoolupError, match="9 labels for 10 images"):
        load_idx(tmp_path)


def test_idx_missing_file(tmp_path):
    with pytest.raises(PoolupError, match="four MNIST IDX files"):
        load_idx(tmp_path)


@pytest.mark.parametrize("keys", [("images", "labels"), ("x", "y"), ("X", "y")])
def test_npz_keys(tmp_path, keys):
    images, labels = synthetic_digits(40)
    np.savez(tmp_path / "d.npz", **{keys[0]: images, keys[1]: labels})
    loaded, loaded_labels, _ = load_source("npz", str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(loaded, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_npz_keras_layout_and_flat_images(tmp_path):
    train, train_labels = synthetic_digits(40)
    test, test_labels = synthetic_digits(40, seed=3)
    np.savez(
        tmp_path / "k.npz",
        x_train=train.reshape(40, -1),
        y_train=train_labels,
        x_test=test.reshape(40, -1),
        y_test=test_labels,
    )
    images, labels, _ = load_source("npz", str(tmp_path / "k.npz"))
    np.testing.assert_array_equal(images, np.concatenate([train, test]))
    np.testing.assert_array_equal(labels, np.concatenate([train_labels, test_labels]))


def test_npz_without_expected_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", foo=np.zeros(3))
    with pytest.raises(PoolupError, match="no images/labels arrays"):
        load_npz(tmp_path / "bad.npz")


def test_npz_refuses_pickled_objects(tmp_path):
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}], dtype=object), labels=np.array([1]))
    with pytest.raises(PoolupError, match="Object arrays cannot be loaded"):
        load_npz(tmp_path / "obj.npz")


def test_npz_bad_pixel_values(tmp_path):
    np.savez(tmp_path / "f.npz", images=np.full((3, 28, 28), 0.5), labels=np.array([1, 2, 3]))
    with pytest.raises(PoolupError, match="whole numbers in 0..255"):
        load_source("npz", str(tmp_path / "f.npz"))


def test_labels_out_of_range(tmp_path):
    np.savez(tmp_path / "g.npz", images=np.zeros((3, 28, 28), np.uint8), labels=np.array([1, -2, 3]))
    with pytest.raises(PoolupError, match="outside"):
        load_source("npz", str(tmp_path / "g.npz"))


def test_bundled_subset_is_real_mnist():
    images, labels, _ = load_source("bundled")
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    assert 0.1 < (images > 0).mean() < 0.3  # real handwriting: a fifth of pixels are ink


def test_subsample_is_seeded_and_ordered():
    images, labels, _ = load_bundled()
    a_images, a_labels = subsample(images, labels, 300, 0)
    b_images, _ = subsample(images, labels, 300, 0)
    np.testing.assert_array_equal(a_images, b_images)
    assert len(set(np.asarray(a_labels).tolist())) == 10  # not just the first class


def test_openml_offline_error_names_the_offline_sources(monkeypatch):
    import sklearn.datasets

    def unreachable(*args, **kwargs):
        raise OSError("Network is unreachable")  # what urllib raises with no network

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", unreachable)
    with pytest.raises(
        PoolupError,
        match=r"offline, run with --configfile configs/offline.yaml or set datasets\[\].source to idx, npz or bundled",
    ):
        load_source("openml")


def test_missing_path_for_idx():
    with pytest.raises(PoolupError, match=r"needs datasets\[\].path"):
        load_source("idx", None)


# --- hostile sources: one line naming the file, nothing written ---------------


def idx_folder(folder, train=None, test=None):
    """An IDX folder of 40 + 20 small images whose labels cycle through ten classes; parts replaceable."""
    folder.mkdir(exist_ok=True)
    for prefix, n, part in (("train", 40, train), ("t10k", 20, test)):
        images, labels = (
            part
            if part is not None
            else (np.random.default_rng(n).integers(0, 256, (n, 12, 12), dtype=np.uint8), np.arange(n) % 10)
        )
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.asarray(labels, np.uint8))
    return folder


def fetch_refuses(tmp_path, source, path, message):
    """The fetch stage on a hostile source: one-line PoolupError naming the file, and no raw.h5."""
    from poolup.preprocess import fetch_source

    with pytest.raises(PoolupError, match=message) as info:
        fetch_source(tmp_path / "out" / "raw.h5", source, str(path))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    return str(info.value)


def test_corrupt_bytes_inside_the_compressed_stream(tmp_path):
    folder = idx_folder(tmp_path / "idx")
    path = folder / "train-images-idx3-ubyte.gz"
    original = path.read_bytes()
    reference = load_source("idx", str(folder))[0]
    messages = []
    # Every byte of the deflate stream (after the 10-byte header, before the 8-byte CRC and size).
    for position in range(10, len(original) - 8, 7):
        mutated = bytearray(original)
        mutated[position] ^= 0x55
        path.write_bytes(bytes(mutated))
        try:
            images = load_source("idx", str(folder))[0]
        except PoolupError as error:
            messages.append(str(error))
            continue
        np.testing.assert_array_equal(images, reference)  # else it must be the same data
    assert messages and all(str(path) in m and "\n" not in m for m in messages)
    assert any("Error -3 while decompressing" in m for m in messages), "a zlib error inside the stream"
    assert any("CRC check failed" in m for m in messages), "a flip that still inflates is caught by the CRC"


def test_truncated_npz_archive(tmp_path):
    images, labels = synthetic_digits(40)
    np.savez_compressed(tmp_path / "t.npz", images=images, labels=labels)
    data = (tmp_path / "t.npz").read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        (tmp_path / "t.npz").write_bytes(data[:cut])
        fetch_refuses(tmp_path, "npz", tmp_path / "t.npz", r"t\.npz: not a readable \.npz file .*save it again")


def test_corrupt_byte_inside_an_npz_member(tmp_path):
    images, labels = synthetic_digits(40)
    np.savez(tmp_path / "c.npz", images=images, labels=labels)
    data = bytearray((tmp_path / "c.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the images member: only the zip CRC sees it
    (tmp_path / "c.npz").write_bytes(bytes(data))
    fetch_refuses(tmp_path, "npz", tmp_path / "c.npz", "Bad CRC-32")


def test_train_and_test_images_of_different_shapes(tmp_path):
    rng = np.random.default_rng(0)
    folder = idx_folder(tmp_path / "idx", test=(rng.integers(0, 256, (20, 14, 14), dtype=np.uint8), np.arange(20) % 10))
    fetch_refuses(
        tmp_path, "idx", folder, r"t10k-images-idx3-ubyte.gz: images are \(14, 14\) but those of .* are \(12, 12\)"
    )
    np.savez(
        tmp_path / "k.npz",
        x_train=rng.integers(0, 256, (40, 12, 12), dtype=np.uint8),
        y_train=np.arange(40) % 10,
        x_test=rng.integers(0, 256, (20, 12, 13), dtype=np.uint8),
        y_test=np.arange(20) % 10,
    )
    fetch_refuses(
        tmp_path, "npz", tmp_path / "k.npz", r"x_train images are \(12, 12\) and x_test images are \(12, 13\)"
    )


@pytest.mark.parametrize(
    ("train_labels", "test_labels", "message"),
    [
        (np.r_[np.arange(39) % 10, 200], None, "labels run up to 200 but class 10, 11, 12, 13, 14, ... has no image"),
        (np.r_[np.arange(39) % 10, 10], None, "class 10 has only 1 image; every class needs at least 2"),
        (np.zeros(40), np.zeros(20), "every label is \\[0\\]; classification needs at least two classes"),
        (
            None,
            np.where(np.arange(20) % 10 == 7, 6, np.arange(20) % 10),
            "class 7 has no image in t10k-labels-idx1-ubyte.gz",
        ),
    ],
)
def test_labels_that_are_not_the_classes_0_to_k(tmp_path, train_labels, test_labels, message):
    rng = np.random.default_rng(1)
    train = None if train_labels is None else (rng.integers(0, 256, (40, 12, 12), dtype=np.uint8), train_labels)
    test = None if test_labels is None else (rng.integers(0, 256, (20, 12, 12), dtype=np.uint8), test_labels)
    fetch_refuses(tmp_path, "idx", idx_folder(tmp_path / "idx", train, test), message)


def test_a_subset_that_loses_a_class(tmp_path):
    labels = np.r_[np.zeros(95, np.uint8), np.arange(1, 10).repeat(2)]
    with pytest.raises(PoolupError, match="max_images 20: the subset .* has no image of class"):
        subsample(np.zeros((labels.size, 4, 4), np.uint8), labels, 20, 0)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((20, 0, 12), np.uint8), "labels": np.arange(20) % 10}, "none of them 0"),
        ({"images": np.zeros((20, 12, 12), np.complex64), "labels": np.arange(20) % 10}, "dtype complex64"),
        (
            {"images": np.zeros((20, 12, 12), np.uint8), "labels": (np.arange(20) % 10).astype(str)},
            "not whole class numbers",
        ),
        (
            {"images": np.zeros((20, 12, 12), np.uint8), "labels": np.arange(19) % 10},
            r"'labels' has shape \(19,\) for 'images' of shape \(20, 12, 12\)",
        ),
        (
            {
                "x_train": np.zeros((20, 12, 12), bool),
                "y_train": np.arange(20) % 10,
                "x_test": np.zeros((20, 12, 12), np.uint8),
                "y_test": np.arange(20) % 10,
            },
            "x_train\\): images have dtype bool",
        ),
    ],
)
def test_npz_arrays_of_the_wrong_kind(tmp_path, arrays, message):
    np.savez(tmp_path / "w.npz", **arrays)
    fetch_refuses(tmp_path, "npz", tmp_path / "w.npz", message)


def test_a_folder_or_nothing_where_a_file_is_meant(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    fetch_refuses(tmp_path, "npz", tmp_path / "dir.npz", "not a file")
    fetch_refuses(tmp_path, "npz", tmp_path / "absent.npz", "not found")
    (tmp_path / "afile").write_text("x")
    fetch_refuses(tmp_path, "idx", tmp_path / "afile", "not a folder")
