"""How stylised and how recognisable a result is: "style moved" and "content distance" (VGG-19).

The definitions (issue 15, so that numbers compare across methods and with published outputs):
post-ReLU activations F_l of VGG-19 (the assignment's preprocessing, average pooling);

    S(x, s) = sum over l in relu1_1, relu2_1, relu3_1, relu4_1 of
              (|mu_l(x) - mu_l(s)|^2 + |sigma_l(x) - sigma_l(s)|^2) / C_l

with mu, sigma each channel's mean and standard deviation over the positions, C_l the channel count,
and the style image resized to a long side of 512 px;

    style moved      = 1 - S(output, style) / S(content, style)
    content distance = mean((F(output) - F(content))^2) / mean(F(content)^2)   at relu4_1,

the content centre-cropped to the output's aspect and resized to its size. 1 = as far as the style's
statistics; 0 = the content's. A feed-forward method is judged with the same numbers.
"""

import numpy as np
import tensorflow as tf

from nst_tf import images
from nst_tf.nets.vgg import build_vgg

STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")  # the model's convX_Y are post-ReLU
CONTENT_LAYER = "conv4_1"
STYLE_LONG_SIDE = 512


def long_side(image, side):
    """`image` (H, W, 3) uint8 resized (not cropped) so that its longer side is `side` px."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    return images.resize_to(image, max(round(w * scale), 1), max(round(h * scale), 1))


def content_distance(a, c):
    """mean((a - c)^2) / mean(c^2): features `a` against the content's `c` (same shape)."""
    return float(np.mean((a - c) ** 2) / np.mean(c**2))


class Judge:
    """The measuring VGG-19, built once: `scores(output, content, style)` for any number of results."""

    def __init__(self, vgg_weights):
        self.model = build_vgg(vgg_weights, "avg", outputs=list(STYLE_LAYERS))

    def features(self, rgb):
        """{layer: (positions, C) float64} of an (H, W, 3) uint8 image."""
        out = self.model(tf.constant(images.reshape_and_normalize_image(rgb)))
        return {
            layer: out[layer][0].numpy().reshape(-1, out[layer].shape[-1]).astype(np.float64) for layer in out
        }

    @staticmethod
    def moments(features):
        return {layer: (f.mean(0), f.std(0)) for layer, f in features.items()}

    @staticmethod
    def style_distance(a, b):
        """S between two images' moments (`moments`)."""
        return float(
            sum(
                (np.sum((a[l][0] - b[l][0]) ** 2) + np.sum((a[l][1] - b[l][1]) ** 2)) / a[l][0].size
                for l in a
            )
        )

    def scores(self, output, content, style):
        """{"style_moved", "content_distance", "style_distance"} of `output` (all (H, W, 3) uint8)."""
        h, w = output.shape[:2]
        content = images.resize_to(content, w, h)
        f_out, f_content = self.features(output), self.features(content)
        m_style = self.moments(self.features(long_side(style, STYLE_LONG_SIDE)))
        m_out, m_content = self.moments(f_out), self.moments(f_content)
        s_out = self.style_distance(m_out, m_style)
        a, c = f_out[CONTENT_LAYER], f_content[CONTENT_LAYER]
        return {
            "style_moved": 1.0 - s_out / self.style_distance(m_content, m_style),
            "content_distance": content_distance(a, c),
            "style_distance": s_out,
        }
