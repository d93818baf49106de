import numpy as np
import pytest
from scipy.interpolate import RectBivariateSpline, RegularGridInterpolator
from scipy.ndimage import zoom

from poolup.interpolation import METHODS, grid_coordinates, interpolation_matrix, upsample_images
from poolup.pooling import average_pool

PAPER_CASES = [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2)]


def scipy_reference(image: np.ndarray, grid: str, window: int, stride: int, side: int = 28) -> np.ndarray:
    """One RectBivariateSpline per image, as the authors' code did."""
    source, target = grid_coordinates(grid, side, image.shape[0], window, stride)
    # RectBivariateSpline has no edge hold: clamp the targets, as the centers grid defines.
    target = np.clip(target, source[0], source[-1])
    return RectBivariateSpline(source, source, image.astype(np.float64), kx=1, ky=1, s=0)(target, target)


@pytest.mark.parametrize("grid", ["corners", "centers"])
@pytest.mark.parametrize(("window", "stride"), PAPER_CASES)
def test_upsample_matches_scipy(grid, window, stride):
    rng = np.random.default_rng(window + 7 * stride)
    pooled = np.rint(average_pool(rng.integers(0, 256, size=(6, 28, 28)), window, stride)).astype(np.uint8)
    result = upsample_images(pooled, (28, 28), window, stride, grid=grid, chunk_size=4)
    assert result.shape == (6, 28, 28) and result.dtype == np.float32
    for image, upsampled in zip(pooled, result):
        np.testing.assert_allclose(upsampled, scipy_reference(image, grid, window, stride), rtol=0, atol=1e-4)


def test_corners_grid_equals_ndimage_zoom():
    # The authors' grid is the corner-aligned one that scipy.ndimage.zoom(order=1) uses.
    image = np.random.default_rng(3).random((13, 13)) * 255
    expected = zoom(image, 28 / 13, order=1, grid_mode=False)
    np.testing.assert_allclose(upsample_images(image[None], (28, 28), 3, 2)[0], expected, atol=1e-3)


def test_baseline_is_exactly_the_raw_images():
    images = np.random.default_rng(4).integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    for grid in ("corners", "centers"):
        np.testing.assert_array_equal(upsample_images(images, (28, 28), 1, 1, grid=grid), images.astype(np.float32))


def test_interpolation_matrix_rows_sum_to_one_and_hold_edges():
    weights = interpolation_matrix(np.array([0.5, 2.5, 4.5]), np.arange(6.0))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(weights[0], [1, 0, 0])  # before the first sample: edge held
    np.testing.assert_allclose(weights[5], [0, 0, 1])
    np.testing.assert_allclose(weights[1], [0.75, 0.25, 0])


def test_colour_images_interpolate_per_channel():
    images = np.random.default_rng(5).random((4, 15, 15, 3)).astype(np.float32)
    result = upsample_images(images, (32, 32), 3, 2, chunk_size=3)
    assert result.shape == (4, 32, 32, 3)
    for c in range(3):
        np.testing.assert_allclose(result[..., c], upsample_images(images[..., c], (32, 32), 3, 2), atol=1e-5)


def scipy_method_reference(image: np.ndarray, grid: str, window: int, stride: int, method: str) -> np.ndarray:
    """The scipy reference of each method, one image at a time."""
    source, target = grid_coordinates(grid, 28, image.shape[0], window, stride)
    target = np.clip(target, source[0], source[-1])
    if method == "nearest":
        rows, cols = np.meshgrid(target, target, indexing="ij")
        return RegularGridInterpolator((source, source), image.astype(np.float64), method="nearest")((rows, cols))
    order = {"linear": 1, "cubic": 3}[method]
    return RectBivariateSpline(source, source, image.astype(np.float64), kx=order, ky=order, s=0)(target, target)


@pytest.mark.parametrize("method", ["nearest", "cubic"])
@pytest.mark.parametrize("grid", ["corners", "centers"])
@pytest.mark.parametrize(("window", "stride"), PAPER_CASES[1:])
def test_other_methods_match_scipy(method, grid, window, stride):
    rng = np.random.default_rng(window * 3 + stride)
    pooled = np.rint(average_pool(rng.integers(0, 256, size=(5, 28, 28)), window, stride)).astype(np.uint8)
    result = upsample_images(pooled, (28, 28), window, stride, grid=grid, method=method, chunk_size=2)
    for image, upsampled in zip(pooled, result):
        np.testing.assert_allclose(
            upsampled, scipy_method_reference(image, grid, window, stride, method), rtol=0, atol=1e-3
        )


def pillow_reference(image: np.ndarray, method: str) -> np.ndarray:
    """Pillow's own resize of one image, in 32-bit float mode ``F``."""
    from PIL import Image

    resample = {"area": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}[method]
    return np.asarray(Image.fromarray(image.astype(np.float32)).resize((28, 28), resample))


@pytest.mark.parametrize("method", ["area", "lanczos"])
@pytest.mark.parametrize(("window", "stride"), PAPER_CASES[1:])
def test_pillow_methods_match_pillow(method, window, stride):
    rng = np.random.default_rng(window * 5 + stride)
    pooled = np.rint(average_pool(rng.integers(0, 256, size=(5, 28, 28)), window, stride)).astype(np.uint8)
    for grid in ("corners", "centers"):  # Pillow keeps its own grid
        result = upsample_images(pooled, (28, 28), window, stride, grid=grid, method=method, chunk_size=2)
        for image, upsampled in zip(pooled, result):
            np.testing.assert_allclose(upsampled, pillow_reference(image, method), rtol=0, atol=1e-4)


def test_area_on_an_exact_doubling_repeats_each_pixel():
    image = np.random.default_rng(8).integers(0, 256, size=(14, 14)).astype(np.float32)
    np.testing.assert_array_equal(
        upsample_images(image[None], (28, 28), 2, 2, method="area")[0], np.kron(image, np.ones((2, 2)))
    )


@pytest.mark.parametrize("method", METHODS)
def test_baseline_is_exact_for_every_method(method):
    images = np.random.default_rng(6).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(upsample_images(images, (28, 28), 1, 1, method=method), images.astype(np.float32))


def test_cubic_needs_four_points():
    from poolup.errors import PoolupError

    with pytest.raises(PoolupError, match="cubic interpolation needs at least 4"):
        interpolation_matrix(np.arange(3.0), np.linspace(0, 2, 28), "cubic")
