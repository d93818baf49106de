import numpy as np
import pytest

from poolup.errors import PoolupError
from poolup.pooling import average_pool, pooled_side, round_to_dtype

PAPER_CASES = [(1, 1, 28), (2, 1, 27), (2, 2, 14), (3, 1, 26), (3, 2, 13)]


def reference_pool(image: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Plain loop over output pixels: the definition of valid average pooling."""
    side_h = (image.shape[0] - window) // stride + 1
    side_w = (image.shape[1] - window) // stride + 1
    out = np.zeros((side_h, side_w) + image.shape[2:])
    for i in range(side_h):
        for j in range(side_w):
            out[i, j] = image[i * stride : i * stride + window, j * stride : j * stride + window].mean(axis=(0, 1))
    return out


@pytest.mark.parametrize(("window", "stride", "side"), PAPER_CASES)
def test_average_pool_matches_plain_loop(window, stride, side):
    rng = np.random.default_rng(window * 10 + stride)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    pooled = average_pool(images, window, stride)
    assert pooled.shape == (7, side, side) and pooled.dtype == np.float32
    assert pooled_side(28, window, stride) == side
    for image, result in zip(images, pooled):
        np.testing.assert_allclose(result, reference_pool(image.astype(np.float64), window, stride), rtol=0, atol=1e-4)


def test_identity_case_is_exact():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(round_to_dtype(average_pool(images, 1, 1), "uint8"), images)


def test_channels_pooled_independently():
    images = np.random.default_rng(1).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    pooled = average_pool(images, 3, 2)
    assert pooled.shape == (3, 15, 15, 3)
    for c in range(3):
        np.testing.assert_allclose(pooled[..., c], average_pool(images[..., c], 3, 2), atol=1e-5)


def test_round_to_dtype_rounds_and_clips():
    values = np.array([[0.4, 0.5, 1.5, 254.6, 255.0]], dtype=np.float32)
    np.testing.assert_array_equal(round_to_dtype(values, "uint8"), [[0, 0, 2, 255, 255]])
    assert round_to_dtype(values, "float32").dtype == np.float32


def test_bad_pooling_arguments():
    with pytest.raises(PoolupError, match="larger than"):
        pooled_side(28, 29, 1)
    with pytest.raises(PoolupError, match=">= 1"):
        pooled_side(28, 2, 0)
    with pytest.raises(PoolupError, match="dtype"):
        round_to_dtype(np.zeros((1, 2, 2), np.float32), "int16")
