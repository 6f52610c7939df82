"""WCT's feature transforms (Li et al. 2017): whitening and colouring, strength, style blends, masks;
and AdaIN's channel-wise one, the same `LinearMap` with a diagonal (Huang and Belongie 2017).

Pure functions on feature maps `(1, H, W, C)` (VGG-19 post-ReLU activations). The statistics are
gathered in chunks of rows: each chunk's sums in the features' own precision (float32, or float64
when given float64), shifted by the first chunk's mean so that the squares do not cancel, and
accumulated in float64 (float32 sums of a chunk err by ~1e-6 relative, far below the bfloat16 or
float32 features' own rounding; 3x faster than float64 sums on these CPUs, and no float64 copy of a
large image's relu1_1 features). The covariance powers are taken in float64: a covariance of 512
channels has eigenvalues spanning many decades, and the whitening raises them to the power -1/2.
`LinearMap` folds centring, whitening, colouring and the strength blend into one affine map
(C x C matrix and offset, float32) applied to the features in one matrix product.
"""

import numpy as np
import tensorflow as tf

from nst_tf import blas

EPS = 1e-5  # eigenvalues at or below this are dropped (the paper's code: its SVD threshold)
ADAIN_EPS = 1e-5  # added to each variance before its square root (AdaIN's reference code)
CHUNK = 1 << 16  # rows per block when gathering statistics


def _rows(features, dtype=tf.float64):
    """(1, H, W, C) or (N, C) features -> (N, C) of `dtype` (float32: no float64 copy)."""
    features = tf.convert_to_tensor(features)
    if features.shape.rank == 4:
        if features.shape[0] != 1:
            raise ValueError(f"features of one image are (1, H, W, C), not {features.shape}")
        features = tf.reshape(features, [-1, features.shape[-1]])
    if features.shape.rank != 2:
        raise ValueError(f"features are (1, H, W, C) or (N, C), not {features.shape}")
    return tf.cast(features, dtype)


class Moments:
    """The channel mean and covariance of rows added in pieces (tiles, blocks), accumulated in
    float64, shifted by the first piece's mean so that the sums of squares do not cancel;
    `diagonal`: only each channel's variance (AdaIN's statistics: C numbers, not C x C)."""

    def __init__(self, diagonal=False):
        self.shift = self.s1 = self.s2 = None
        self.n = 0
        self.diagonal = diagonal

    def add(self, rows, chunk=CHUNK):
        """Add (N, C) rows, `chunk` rows at a time: each chunk's sums in float32 (float64 rows: in
        float64), added to the float64 totals."""
        rows = tf.convert_to_tensor(rows)
        dtype = tf.float64 if rows.dtype == tf.float64 else tf.float32
        for start in range(0, int(rows.shape[0]), chunk):
            block = tf.cast(rows[start : start + chunk], dtype)
            if self.shift is None:  # the shift as `dtype` holds it, so that it is subtracted exactly
                self.shift = tf.cast(tf.reduce_mean(block, 0), tf.float64)
                self.s1 = tf.zeros_like(self.shift)
                self.s2 = tf.zeros([self.shift.shape[0]] * (1 if self.diagonal else 2), tf.float64)
            block -= tf.cast(self.shift, dtype)
            self.s1 += tf.cast(tf.reduce_sum(block, 0), tf.float64)
            if self.diagonal:
                self.s2 += tf.cast(tf.reduce_sum(tf.square(block), 0), tf.float64)
            else:
                self.s2 += tf.cast(tf.matmul(block, block, transpose_a=True), tf.float64)
            self.n += int(block.shape[0])
        return self

    def result(self):
        """(mean (C,), covariance (C, C) divided by N - 1, or its diagonal (C,)), float64."""
        d = self.s1 / self.n
        outer = tf.square(d) if self.diagonal else tf.tensordot(d, d, 0)
        return self.shift + d, (self.s2 - self.n * outer) / max(self.n - 1, 1)


def mean_and_covariance(rows, chunk=CHUNK):
    """The channel mean (C,) and the covariance (C, C) (divided by N - 1) of (N, C) rows, float64."""
    rows = tf.convert_to_tensor(rows)
    rows = _rows(rows, tf.float32 if rows.dtype != tf.float64 else tf.float64)
    return Moments().add(rows, chunk).result()


def covariance_power(cov, power, eps=EPS):
    """cov^power (symmetric) from its eigendecomposition, with eigenvalues <= eps dropped.

    Dropping the near-zero eigenvalues (rather than adding eps to them) is the paper's code: a
    content with fewer positions than channels (relu5_1 of a small image) has a singular
    covariance, and whitening leaves the directions it does not span at zero.
    """
    # LAPACK's through numpy, on one thread (`nst_tf.blas`): 1.5x tf.linalg.eigh's speed at 512
    # channels here; ascending
    with blas.one_thread():
        values, vectors = map(tf.constant, np.linalg.eigh(np.asarray(cov, np.float64)))
    keep = values > eps
    scaled = tf.where(keep, tf.pow(tf.where(keep, values, 1.0), power), 0.0)
    return tf.matmul(vectors * scaled, vectors, transpose_b=True)


def whiten(content_f, eps=EPS):
    """The content's features centred and whitened: (N, C) float64 rows with identity covariance.

    Returns:
      (whitened rows (N, C), the content's channel mean (C,)).
    """
    rows = _rows(content_f)
    mean, cov = mean_and_covariance(rows)
    return tf.matmul(rows - mean, covariance_power(cov, -0.5, eps)), mean


def colour(whitened, style_f, eps=EPS):
    """Whitened (N, C) rows coloured with the style's covariance, plus its mean: (N, C) float64."""
    mean, cov = mean_and_covariance(style_f)
    return tf.matmul(whitened, covariance_power(cov, 0.5, eps)) + mean


class LinearMap:
    """Features -> features A + b, float32 (one matrix product): WCT's (x - content_mean) M +
    style_mean, M = C_c^-1/2 C_s^1/2 (whitening then colouring); AdaIN's with M diagonal, kept as
    the vector of its diagonal (each channel scaled by sigma_s / sigma_c); a blend of styles by
    `blend_colourings`; and `with_strength`, the map's blend with the identity."""

    def __init__(self, matrix, bias):
        """x -> x matrix + bias ((C, C), or (C,) for a diagonal; kept in float64 for `with_strength`)."""
        self.matrix64, self.bias64 = tf.cast(matrix, tf.float64), tf.cast(bias, tf.float64)
        self.matrix, self.bias = tf.cast(matrix, tf.float32), tf.cast(bias, tf.float32)

    @classmethod
    def centred(cls, content_mean, matrix, offset):
        """x -> (x - content_mean) matrix + offset."""
        content_mean, matrix = tf.cast(content_mean, tf.float64), tf.cast(matrix, tf.float64)
        if matrix.shape.rank == 1:
            shifted = content_mean * matrix
        else:
            shifted = tf.linalg.matvec(matrix, content_mean, transpose_a=True)
        return cls(matrix, tf.cast(offset, tf.float64) - shifted)

    def with_strength(self, alpha):
        """WCT's strength: the map x -> alpha * self(x) + (1 - alpha) * x, for alpha in [0, 1]
        (the paper's blend of transformed and content features, folded into the map: A' = alpha A
        + (1 - alpha) I, b' = alpha b; at 0 exactly the identity)."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"strength alpha must be in [0, 1], not {alpha}")
        if alpha == 1.0:
            return self
        c = self.matrix64.shape[0]
        eye = tf.ones([c], tf.float64) if self.matrix64.shape.rank == 1 else tf.eye(c, dtype=tf.float64)
        return type(self)(alpha * self.matrix64 + (1.0 - alpha) * eye, alpha * self.bias64)

    @classmethod
    def wct(cls, content_stats, style_stats, eps=EPS):
        """The map giving features of mean and covariance `content_stats` the style's ones."""
        return cls.wct_coloured(content_stats, colouring(style_stats, eps), eps)

    @classmethod
    def wct_coloured(cls, content_stats, coloured, eps=EPS):
        """`wct` from the style's `colouring` (computed once per style: a batch reuses it)."""
        (content_mean, content_cov), (style_mean, style_root) = content_stats, coloured
        matrix = tf.matmul(covariance_power(content_cov, -0.5, eps), style_root)
        return cls.centred(content_mean, matrix, style_mean)

    @classmethod
    def adain(cls, content_stats, style_stats, eps=ADAIN_EPS):
        """AdaIN's map (Huang and Belongie 2017): each channel of features of mean and variance
        `content_stats` ((C,), (C,): `Moments(diagonal=True)`) takes the style's mean and standard
        deviation; the standard deviations are sqrt(variance + eps), as in the reference code."""
        return cls.adain_coloured(content_stats, adain_colouring(style_stats, eps), eps)

    @classmethod
    def adain_coloured(cls, content_stats, coloured, eps=ADAIN_EPS):
        """`adain` from the style's `adain_colouring`."""
        (content_mean, content_var), (style_mean, style_std) = content_stats, coloured
        return cls.centred(content_mean, style_std / _std(content_var, eps), style_mean)

    def __call__(self, rows):
        """(N, C) rows -> (N, C) float32."""
        rows = tf.cast(rows, tf.float32)
        if self.matrix.shape.rank == 1:  # AdaIN: a diagonal
            return rows * self.matrix + self.bias
        return tf.nn.bias_add(tf.matmul(rows, self.matrix), self.bias)


def colouring(style_stats, eps=EPS):
    """WCT's side of a style: (its mean, its covariance^1/2), float64 (`LinearMap.wct_coloured`)."""
    mean, cov = style_stats
    return mean, covariance_power(cov, 0.5, eps)


def adain_colouring(style_stats, eps=ADAIN_EPS):
    """AdaIN's side of a style: (its channel mean, sqrt(variance + eps)), float64."""
    mean, var = style_stats
    return mean, _std(var, eps)


def blend_colourings(coloured, weights):
    """Several styles' `colouring`s (or `adain_colouring`s) as one: the weighted sums of their means
    and of their covariance^1/2 (standard deviations). The map from it is the weighted sum of the
    styles' maps (each is linear in its colouring, all share the content's side), so a blend
    whitens the content once instead of once per style."""
    return tuple(tf.add_n([w * tf.cast(c[i], tf.float64) for c, w in zip(coloured, weights)]) for i in (0, 1))


def _std(var, eps):
    return tf.sqrt(tf.cast(var, tf.float64) + eps)


def whiten_colour(content_f, style_f, eps=EPS):
    """WCT: the content's features with the style's channel mean and covariance.

    Args:
      content_f: content features, (1, H, W, C).
      style_f: style features, (1, h, w, C) (any size).
      eps: eigenvalue threshold of both covariances (see `covariance_power`).

    Returns:
      float32 (1, H, W, C).
    """
    rows = _rows(content_f, tf.float32)
    transform = LinearMap.wct(mean_and_covariance(rows), mean_and_covariance(style_f), eps)
    return tf.reshape(transform(rows), tf.shape(content_f))


def blend(transformed, content_f, alpha):
    """WCT's strength: alpha * transformed + (1 - alpha) * content, for alpha in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"strength alpha must be in [0, 1], not {alpha}")
    return alpha * tf.cast(transformed, tf.float32) + (1.0 - alpha) * tf.cast(content_f, tf.float32)


def blend_styles(content_f, style_fs, weights, eps=EPS):
    """Several styles: the sum of weights[i] * whiten_colour(content_f, style_fs[i]) (the paper's
    interpolation), as one map from the styles' `blend_colourings` (the content whitened once); the
    weights are used as given (normalise them to sum 1)."""
    if len(style_fs) != len(weights) or not style_fs:
        raise ValueError(f"give one weight per style: {len(style_fs)} styles, {len(weights)} weights")
    rows = _rows(content_f, tf.float32)
    coloured = blend_colourings([colouring(mean_and_covariance(s), eps) for s in style_fs], weights)
    return tf.reshape(
        LinearMap.wct_coloured(mean_and_covariance(rows), coloured, eps)(rows), tf.shape(content_f)
    )


def resize_mask(mask, height, width):
    """A mask (h, w) (any numbers; > 0.5 is inside) resized to (height, width) by nearest neighbour,
    as a boolean array."""
    mask = tf.convert_to_tensor(np.asarray(mask, np.float32))[tf.newaxis, :, :, tf.newaxis]
    resized = tf.image.resize(mask, [height, width], method="nearest")
    return resized[0, :, :, 0].numpy() > 0.5


def masked(content_f, style_fs, masks, eps=EPS):
    """Each style applied to its region: the content features inside masks[i] are whitened with
    their own statistics and coloured with style_fs[i]; positions in no mask keep the content's.

    Args:
      content_f: (1, H, W, C).
      style_fs: one style's features (1, h, w, C) per mask.
      masks: one mask per style, (h', w') of any size (resized to H x W; > 0.5 is inside); where
        masks overlap, the later one wins.

    Returns:
      float32 (1, H, W, C).
    """
    if len(style_fs) != len(masks):
        raise ValueError(f"give one mask per style: {len(style_fs)} styles, {len(masks)} masks")
    _, h, w, c = content_f.shape
    rows = _rows(content_f, tf.float32)
    out = rows
    for style_f, mask in zip(style_fs, masks):
        inside = resize_mask(mask, h, w).reshape(-1)
        if inside.sum() < 2:  # no statistics of one position: the region keeps the content
            continue
        region = LinearMap.wct(
            mean_and_covariance(tf.boolean_mask(rows, inside)), mean_and_covariance(style_f), eps
        )
        out = tf.where(inside[:, np.newaxis], region(rows), out)
    return tf.reshape(out, [1, h, w, c])
