"""The training images as a `tf.data` pipeline: one split of a manifest, decoded, randomly scaled,
cropped and flipped, batched; the same batches for the same seed.

Batches are float32 RGB in [0, 255], as `nst_tf.images.load_image` gives pixels: the model side
subtracts `nst_tf.images.MEANS` (the assignment's RGB means), as it does for every other image.
"""

import json
from pathlib import Path

import tensorflow as tf

from nst_tf.errors import SettingError

CROP = 256  # the ports: 512 px images cropped to 256
SHORT_SIDE = (256, 512)  # the short side is scaled to a random length in this range, then cropped
BATCH = 8


def manifest_files(manifest, kind="photo", split="train"):
    """The paths of a manifest's `kind` ("photo", "style") files in `split` ("train", "heldout").

    Args:
      manifest: the path of a manifest.json written by `nst_tf.data.assemble`.

    Raises:
      SettingError: naming `manifest` when it cannot be read, or has no such files.
    """
    path = Path(manifest)
    try:
        records = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SettingError("manifest", f"not a readable manifest ({type(e).__name__}: {e})", path)
    files = [str(path.parent / r["file"]) for r in records if r["kind"] == kind and r["split"] == split]
    if not files:
        raise SettingError("manifest", f"lists no {kind} in the {split} split", path)
    return files


def decode(path):
    """An image file as a (H, W, 3) float32 tensor in [0, 255]."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.cast(tf.ensure_shape(image, [None, None, 3]), tf.float32)


def augment(image, seed, crop=CROP, short_side=SHORT_SIDE, hue=0.0):
    """Scale `image` so its short side is a random length in `short_side` (and at least `crop`),
    crop a random `crop` x `crop` square, flip it left-right half the time, and with `hue` > 0
    rotate its hues by a random fraction of the colour circle in [-hue, hue]; all drawn from `seed`
    (a shape [2] int tensor), so the same seed gives the same crop (and, the hue's seed being
    folded in apart, the same crop as with no hue)."""
    scale_seed, crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    short = tf.random.stateless_uniform([], scale_seed, short_side[0], short_side[1] + 1, tf.int32)
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.cast(tf.maximum(short, crop), tf.float32) / tf.reduce_min(hw)
    size = tf.maximum(tf.cast(tf.round(hw * factor), tf.int32), crop)
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    image = tf.image.stateless_random_crop(image, [crop, crop, 3], crop_seed)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.clip_by_value(image, 0.0, 255.0)
    if hue > 0:
        hue_seed = tf.random.experimental.stateless_fold_in(seed, 3)
        image = tf.image.stateless_random_hue(image / 255.0, hue, hue_seed) * 255.0
    return image  # (crop, crop, 3)


def batches(
    manifest,
    kind="photo",
    split="train",
    batch_size=BATCH,
    crop=CROP,
    short_side=SHORT_SIDE,
    seed=0,
    epochs=None,
    hue=0.0,
):
    """Batches of random crops of a manifest's images: (batch_size, crop, crop, 3) float32 RGB 0-255.

    Each epoch visits every file once in an order drawn from (`seed`, epoch); each image's scale,
    crop and flip are drawn from (`seed`, its position in the stream): the same seed gives the
    same batches, on any number of threads.

    Args:
      manifest: a manifest.json of `nst_tf.data.assemble`.
      kind, split: which of its files.
      batch_size: images a batch (the last, short one of a finite stream is dropped).
      crop: side of the square crops.
      short_side: (low, high) range of the short side before cropping.
      seed: the seed of every random choice.
      epochs: passes over the files; None: forever.
      hue: the largest random hue rotation, a fraction of the colour circle in [0, 0.5] (0: none).

    Raises:
      SettingError: a manifest without such files, or sizes that cannot work.
    """
    if not 1 <= crop <= short_side[0] <= short_side[1]:
        raise SettingError("short_side", f"give low <= high, both at least the crop ({crop})", short_side)
    if batch_size < 1:
        raise SettingError("batch_size", "give at least 1", batch_size)
    if not 0.0 <= hue <= 0.5:
        raise SettingError("hue", "give a fraction of the colour circle in [0, 0.5]", hue)
    files = tf.constant(manifest_files(manifest, kind, split))
    n = int(files.shape[0])

    def epoch(e):  # every file once, in an order drawn from (seed, e)
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n), tf.stack([tf.constant(seed, tf.int64), e])
        )
        return tf.data.Dataset.from_tensor_slices(tf.gather(files, order))

    def crop_of(i, path):  # the i-th image of the stream, scaled, cropped and flipped by (seed, i)
        return augment(decode(path), tf.stack([tf.constant(seed, tf.int64), i]), crop, short_side, hue)

    passes = tf.data.Dataset.counter() if epochs is None else tf.data.Dataset.range(epochs)
    stream = passes.flat_map(epoch).enumerate()
    crops = stream.map(crop_of, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return crops.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
