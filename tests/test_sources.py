import gzip

import numpy as np
import pytest

from conftest import SHARED_MNIST, synthetic_digits, write_idx
from poolup.errors import PoolupError
from poolup.sources import load_bundled, load_idx, load_npz, load_source, read_idx, subsample


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
    np.savez(tmp_path / "k.npz", x_train=train.reshape(40, -1), y_train=train_labels, x_test=test.reshape(40, -1), y_test=test_labels)
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
    with pytest.raises(PoolupError, match=r"offline, run with --configfile configs/offline.yaml or set datasets\[\].source to idx, npz or bundled"):
        load_source("openml")


def test_missing_path_for_idx():
    with pytest.raises(PoolupError, match=r"needs datasets\[\].path"):
        load_source("idx", None)
