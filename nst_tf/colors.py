"""Colour control (Gatys et al. 2016, "Controlling Perceptual Factors"): luminance-only transfer
and matching the style image's colour statistics to the content's."""

import numpy as np

# ITU-R BT.601 full-range RGB <-> YCbCr (JPEG's), on 0-255 values.
_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_FROM_YCBCR = np.linalg.inv(_TO_YCBCR)
_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb):
    """(..., 3) RGB 0-255 -> (..., 3) YCbCr 0-255, float64."""
    return np.asarray(rgb, np.float64) @ _TO_YCBCR.T + _OFFSET


def ycbcr_to_rgb(ycbcr):
    """(..., 3) YCbCr 0-255 -> (..., 3) RGB 0-255, float64 (not clipped)."""
    return (np.asarray(ycbcr, np.float64) - _OFFSET) @ _FROM_YCBCR.T


def luminance_image(rgb, match=None):
    """The image's luminance as a grey RGB image (uint8); optionally with `match`'s mean and spread.

    Gatys et al. match the style luminance's mean and standard deviation to the content's
    before transferring, so the brightness of the result follows the content.
    """
    y = rgb_to_ycbcr(rgb)[..., 0]
    if match is not None:
        target = rgb_to_ycbcr(match)[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-8) * target.std() + target.mean()
    return np.repeat(np.clip(y, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def with_chroma_of(luminance_rgb, colour_rgb):
    """Luminance of `luminance_rgb` with the chroma (Cb, Cr) of `colour_rgb`: float RGB 0-255."""
    y = rgb_to_ycbcr(luminance_rgb)[..., 0]
    ycbcr = rgb_to_ycbcr(colour_rgb)
    ycbcr[..., 0] = y
    return ycbcr_to_rgb(ycbcr)


def _sqrt_and_inverse_sqrt(cov):
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 1e-5)
    return (vectors * np.sqrt(values)) @ vectors.T, (vectors / np.sqrt(values)) @ vectors.T


def match_color_statistics(style_rgb, content_rgb):
    """Recolour the style so its pixels' mean and covariance equal the content's (uint8).

    The linear map x -> C^(1/2) S^(-1/2) (x - mu_S) + mu_C (the symmetric "image analogies"
    choice in Gatys et al. 2016), applied to every style pixel.
    """
    s = np.asarray(style_rgb, np.float64).reshape(-1, 3)
    c = np.asarray(content_rgb, np.float64).reshape(-1, 3)
    c_root, _ = _sqrt_and_inverse_sqrt(np.cov(c, rowvar=False))
    _, s_inverse_root = _sqrt_and_inverse_sqrt(np.cov(s, rowvar=False))
    mapped = (s - s.mean(0)) @ (c_root @ s_inverse_root).T + c.mean(0)
    return np.clip(mapped, 0, 255).round().astype(np.uint8).reshape(np.shape(style_rgb))
