"""AdaIN's settings (the single home of their defaults) and where its trained decoder is."""

import dataclasses

from nst_tf.methods.wct.config import MODELS_DIR, DecoderSettings

LEVEL = 4  # AdaIN aligns relu4_1 (conv4_1 in nst_tf.nets.vgg); its decoder has the relu4_1 architecture
DECODER_FILE = "adain_decoder.npz"  # beside WCT's decoder_relu<L>_1.npz in one --out folder
DEFAULT_DECODER_DIR = MODELS_DIR / "adain"

# Peak memory per pixel of the content (and the style) above what the process held: measured (peak
# RSS, a 512 px style) 1.5 / 1.7 kB in bfloat16 at 1024^2 / 2048^2 and 2.6 kB in float32 at 2048^2
# (the reported distances' VGG pass to relu1_1 at full size dominates), with a fifth of headroom.
BYTES_PER_PIXEL = {"bfloat16": 2100, "float32": 3100}


def train_command(level, folder):
    return f"python -m nst_tf.train --method adain --data MANIFEST --out {folder}"


@dataclasses.dataclass(frozen=True)
class AdaINSettings(DecoderSettings):
    """AdaIN's settings: those of `DecoderSettings` (strength, decoder, style_masks) and `Settings`.

    `strength` is the paper's alpha (content-style trade-off: the decoded features are alpha x
    AdaIN's + (1 - alpha) x the content's); `style_blend_weights` interpolate the AdaIN targets.
    """

    method, title, models = "adain", "AdaIN", "adain"
    bytes_per_pixel = BYTES_PER_PIXEL

    def levels(self):
        return (LEVEL,)

    def decoder_file(self, level):
        return DECODER_FILE

    def train_command(self, level, folder):
        return train_command(level, folder)


PRESETS = {"default": AdaINSettings()}
