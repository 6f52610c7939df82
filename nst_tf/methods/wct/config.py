"""WCT's settings (the single home of their defaults), those it shares with AdaIN, and where the
trained decoders are."""

import dataclasses
from pathlib import Path

import numpy as np

from nst_tf import quiet
from nst_tf.errors import SettingError
from nst_tf.methods.base import Settings
from nst_tf.nets import decoder_files as decoders

# The package's models folder (one subfolder per method); `python -m nst_tf.train --out` writes
# one like it.
MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
DEFAULT_DECODER_DIR = MODELS_DIR / "wct"
ALL_LEVELS = "5,4,3,2,1"
ENCODER_POOLING = (
    "max"  # the paper's VGG-19 (trained for ImageNet with max pooling); decoders are trained for it
)


# Peak memory of one image through the five levels, per pixel of the content (and of the style),
# above what the process held before: 1.9 kB in bfloat16 and 3.0 kB in float32, measured (peak
# RSS) at 1024^2 and 2048^2 with the statistics gathered in blocks (`transforms`); with headroom
# for the reported distances. An image over the budget goes through in tiles (`method.tile_core`).
BYTES_PER_PIXEL = {"bfloat16": 2600, "float32": 3800}
WHOLE_IMAGE_BYTES_PER_PIXEL = 64  # the image, the output and the masks, whole, while tiling
MIN_TILE = 64  # the smallest tile core (px)
STRENGTH_HELP = "1 = the style's feature statistics, 0 = the content rebuilt."  # each method's default


def _field(default, help_text):
    return dataclasses.field(default=default, metadata={"help": help_text})


def train_command(level, folder):
    return f"python -m nst_tf.train --method wct --level {level} --data MANIFEST --out {folder}"


@dataclasses.dataclass(frozen=True)
class DecoderSettings(Settings):
    """What the feed-forward methods with trained decoders share (WCT, AdaIN): `strength`, the
    decoders' folder and the style masks. A subclass names its `method`, its `models` folder's name
    in the package, and `levels()`, the decoders it runs, deepest first.

    Attributes:
      strength: the features decoded are strength x the transformed ones + (1 - strength) x the
        content's (0: the content reconstructed); WCT's alpha, AdaIN's alpha.
      decoder: folder of the trained decoders (what `nst_tf.train --out` writes); None: the
        package's models folder.
      style_masks: one mask image per style image, comma-separated: each style is applied where its
        mask is light (> 50% grey), the content kept where no mask is; None: the styles blended.
    """

    method = title = models = ""  # --method, its name in messages, its folder in the package's models
    bytes_per_pixel = BYTES_PER_PIXEL

    strength: float = _field(1.0, STRENGTH_HELP)
    decoder: str | None = _field(
        None, "Folder of the trained decoders (nst_tf.train --out); default: the package's (wct, adain)."
    )
    style_masks: str | None = _field(
        None, "One mask image per --style, comma-separated (light = where it applies) (wct, adain)."
    )

    def levels(self):
        raise NotImplementedError

    def decoder_file(self, level):
        return decoders.decoder_file(level)

    def train_command(self, level, folder):
        return train_command(level, folder)

    def decoder_dir(self):
        return Path(self.decoder) if self.decoder else MODELS_DIR / self.models

    def decoder_paths(self):
        """{level: path of its decoder file}, for the levels used.

        Raises:
          SettingError: naming `decoder`, the first missing file and the command that trains it.
        """
        folder = self.decoder_dir()
        paths = {level: folder / self.decoder_file(level) for level in self.levels()}
        for level, path in paths.items():
            if not path.is_file():
                raise SettingError("decoder", f"{{setting}}: {self.missing(level, path)}")
        return paths

    def missing(self, level, path):
        return f"no trained model: {path} is missing; train it with: {self.train_command(level, path.parent)}"

    def mask_paths(self):
        return [p.strip() for p in self.style_masks.split(",")] if self.style_masks else []

    def validate(self):
        super().validate()
        if not 0.0 <= self.strength <= 1.0:
            raise SettingError("strength", "must be in [0, 1]", self.strength)
        self.decoder_paths()
        self.check_memory()
        return self

    def check_memory(self):
        """Refuse (SettingError naming max_memory) a size that would not fit the budget even in
        the smallest tiles (the style counted as a square of its long side)."""
        quiet.tensorflow()  # the engine's module imports it (and the budget asks it for a GPU)
        from nst_tf.methods.wct.method import tile_core

        side = round((self.style_size or max(self.width, self.height)) * self.style_scale)
        style = np.broadcast_to(np.uint8(0), (1, side, side, 3))  # a shape, nothing allocated
        tile_core(self, (self.height, self.width), [style])


@dataclasses.dataclass(frozen=True)
class WCTSettings(DecoderSettings):
    """WCT's settings (the shared ones in `DecoderSettings` and `Settings`).

    Attributes:
      strength: as `DecoderSettings`'s, 0.6 by default (AdaIN's is 1).
      wct_levels: the levels to transform, comma-separated, run coarse to fine (5 = relu5_1 first).
    """

    method, title, models = "wct", "WCT", "wct"

    # The authors' code's alpha (Li et al.'s test_wct.lua: 0.6, in its README's commands too); at 1
    # the five levels keep little of the photo (docs/fast.md measures both).
    strength: float = _field(0.6, STRENGTH_HELP)
    wct_levels: str = _field(
        ALL_LEVELS, "WCT: levels to transform, coarse to fine (5 = relu5_1 ... 1 = relu1_1)."
    )

    def levels(self):
        """`wct_levels` as ints, coarse to fine (deepest first).

        Raises:
          SettingError: not a comma-separated list of distinct levels 1..5.
        """
        try:
            levels = [int(x) for x in self.wct_levels.split(",")]
        except (ValueError, AttributeError):
            levels = []
        if not levels or len(set(levels)) < len(levels) or not set(levels) <= set(decoders.LEVELS):
            raise SettingError(
                "wct_levels", "give distinct levels 1..5 separated by commas, e.g. 5,4,3,2,1", self.wct_levels
            )
        return tuple(sorted(levels, reverse=True))

    def missing(self, level, path):
        how = f"train it with: {self.train_command(level, path.parent)}"
        folder = path.parent
        have = [lv for lv in decoders.LEVELS if (folder / decoders.decoder_file(lv)).is_file()]
        if have:  # some are there: say which levels can run now
            how += f"; or use the levels {folder} has: --wct_levels {','.join(map(str, reversed(have)))}"
        return f"no trained relu{level}_1 model: {path} is missing; {how}"


PRESETS = {"default": WCTSettings()}
