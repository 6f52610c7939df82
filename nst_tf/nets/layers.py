"""VGG-19's layer table: the conv blocks, their widths and the assignment's output keys (no TensorFlow)."""

# (block, convs per block, width) of VGG-19.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
CONV_LAYERS = tuple(f"conv{b}_{c}" for b, n, _ in BLOCKS for c in range(1, n + 1))
CONV_WIDTHS = {f"conv{b}_{c}": w for b, n, w in BLOCKS for c in range(1, n + 1)}

POOLINGS = ("avg", "max")

# The assignment's layers (`nst_tf.costs` re-exports them; here, so that settings and flags are
# defined without importing TensorFlow).
CONTENT_LAYER = "conv4_2"

# The assignment's (layer, weight) pairs: conv1_1 ... conv5_1, 0.2 each.
STYLE_LAYERS = [
    ("conv1_1", 0.2),
    ("conv2_1", 0.2),
    ("conv3_1", 0.2),
    ("conv4_1", 0.2),
    ("conv5_1", 0.2),
]

ALIGN = 16  # the downsampling of conv5_x: tile edges on multiples of it keep every layer aligned


def layer_names(pooling="avg"):
    """The assignment's 22 output keys in network order: input, conv1_1, ..., avgpool5.

    With `pooling="max"` the pooling keys are `maxpool1` ... `maxpool5`.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    names = ["input"]
    for block, n, _ in BLOCKS:
        names += [f"conv{block}_{c}" for c in range(1, n + 1)] + [f"{pooling}pool{block}"]
    return names
