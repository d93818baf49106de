"""How close the images a recipe gives back are to the originals: PSNR and SSIM.

Secondary columns of the frontier: they describe the reconstruction, not the
classification (pooling 2x2/2 reconstructs at ~18 dB and loses little F1), so
only the trained runs decide a recipe's cost.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

# Wang et al. (2004): a Gaussian window of sigma 1.5, truncated at 3.5 sigma (11 pixels), constants
# K1 = 0.01 and K2 = 0.03 of the data range; the settings of skimage.metrics.structural_similarity
# with gaussian_weights=True, use_sample_covariance=False.
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03
DATA_RANGE = 255.0


def squared_error(reference: NDArray, images: NDArray) -> float:
    """Sum of squared differences (float64)."""
    difference = (np.asarray(images, dtype=np.float64) - np.asarray(reference, dtype=np.float64)).ravel()
    return float(np.dot(difference, difference))


def psnr(mse: float, data_range: float = DATA_RANGE) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error; ``inf`` for an exact copy."""
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def ssim_per_image(reference: NDArray, images: NDArray, data_range: float = DATA_RANGE) -> NDArray[np.float64]:
    """Mean structural similarity of each image (n, h, w[, c]) with its reference.

    Channels are compared separately and averaged; the mean over each image
    leaves out a border of the window's half width, as scikit-image does.
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x, y = x[..., None], y[..., None]
    sigma = (0, SSIM_SIGMA, SSIM_SIGMA, 0)

    def blur(a: NDArray) -> NDArray:
        return gaussian_filter(a, sigma=sigma, truncate=SSIM_TRUNCATE, mode="reflect")

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    return index[:, pad:-pad, pad:-pad, :].mean(axis=(1, 2, 3))
