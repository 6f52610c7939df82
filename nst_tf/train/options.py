"""The settings of a training run (the single home of their defaults), each a flag of `nst_tf.train`."""

import dataclasses
import typing

from nst_tf import precision
from nst_tf.errors import SettingError

STYLE_WEIGHT = 65.0  # AdaIN's lambda, in its relative units (nst_tf.methods.adain.training)

# What --resume may change: how long to go on and how often to save, preview and report.
RESUMABLE_CHANGES = ("iterations", "save_every", "preview_every", "log_every")

# What a model file records of each stage of its training (`session`, `ship`, and `jax_train`,
# whose options have all but style_hue).
STAGE_SETTINGS = (
    "crop", "batch_size", "learning_rate", "lr_decay", "precision", "style_weight", "style_hue",
    "grid_weight", "seed",
)  # fmt: skip


def flag_type(field):
    """int, float or str: the type a command-line flag of a dataclass field parses to (`int | None`:
    int). `nst_tf.cli.train` and `nst_tf.train.jax_train` define their flags with it."""
    return next(k for k in typing.get_args(field.type) or (field.type,) if k is not type(None))


def _field(default, help_text, **extra):
    return dataclasses.field(default=default, metadata={"help": help_text, **extra})


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """One training run of a fast method's network (`nst_tf.train.tasks` says which network)."""

    method: str = _field("wct", "The method whose network is trained (wct, adain).")
    level: int | None = _field(None, "wct: the decoder's level, 1..5 (after relu1_1 ... relu5_1).")
    data: str | None = _field(
        None, "The manifest.json of the training photos and styles (python -m nst_tf.data.assemble)."
    )
    out: str | None = _field(None, "Folder of the trained models; each run keeps its state in a subfolder.")
    iterations: int = _field(15000, "Adam steps in all (a resumed run goes on to this many).")
    batch_size: int = _field(8, "Images a step.")
    learning_rate: float = _field(1e-4, "Adam's learning rate.")
    lr_decay: float = _field(
        0.0,
        "Adam's rate at step t of this run: learning_rate / (1 + lr_decay * t) (AdaIN's reference "
        "code: 5e-5; 0: constant).",
    )
    crop: int = _field(
        256, "Side of the square training crops, from images scaled to a short side of 1-2x it."
    )
    save_every: int = _field(500, "Save the state, the model and the losses every N steps.")
    preview_every: int = _field(
        500, "Write a preview grid (held-out photos, their reconstructions) every N steps."
    )
    log_every: int = _field(
        10, "Write losses.csv, and report the losses when stderr is not a terminal, every N steps."
    )
    seed: int = _field(0, "Seed of the initial weights and of the crops: the same seed, the same run.")
    precision: str = _field("auto", "float32, bfloat16 (mixed), or auto (bfloat16 where native).")
    weights: str | None = _field(None, "VGG-19 weights of the encoder (default: the embedded default).")
    style_weight: float = _field(
        STYLE_WEIGHT, "adain: weight of the style loss against the content loss (both relative)."
    )
    style_hue: float = _field(
        0.0,
        "adain: rotate each style crop's hues by a random fraction of the colour circle up to this "
        "(0-0.5; 0: none): more distinct palettes from the same styles.",
    )
    grid_weight: float | None = _field(
        None,
        "Weight of the penalty on the decoder's stride grid, the lattice a nearest-neighbour "
        "decoder leaves where it invents detail (0: none; default: the method's, "
        "nst_tf.methods.<method>.training.GRID_WEIGHT, 0 for relu1_1; a run saved before it had 0).",
    )
    init_from: str | None = _field(
        None,
        "Start the network from this trained model file: the same network (to go on in another "
        "session or with other settings; adain: WCT's decoder_relu4_1.npz), or, for a WCT level, a "
        "lower level's decoder, which is its tail (decoder_relu3_1.npz for --level 4).",
    )

    def validate(self):
        """Raise SettingError naming the first setting that cannot work; returns self."""
        for name in ("data", "out"):
            if not getattr(self, name):
                raise SettingError(name, "{setting} is required")
        for name in ("iterations", "batch_size", "save_every", "preview_every", "log_every"):
            if getattr(self, name) < 1:
                raise SettingError(name, "must be at least 1", getattr(self, name))
        if not self.learning_rate > 0:
            raise SettingError("learning_rate", "must be greater than 0", self.learning_rate)
        if not 0.0 <= self.lr_decay < float("inf"):
            raise SettingError("lr_decay", "must be 0 (a constant rate) or more", self.lr_decay)
        if self.crop < 16 or self.crop % 16:
            raise SettingError(
                "crop", "must be a multiple of 16 (the deepest decoder upsamples 16x)", self.crop
            )
        if self.grid_weight is not None and not 0.0 <= self.grid_weight < float("inf"):
            raise SettingError("grid_weight", "must be 0 (none) or more", self.grid_weight)
        if not 0.0 <= self.style_hue <= 0.5:
            raise SettingError(
                "style_hue", "must be a fraction of the colour circle in [0, 0.5]", self.style_hue
            )
        if self.precision not in precision.PRECISIONS:
            raise SettingError(
                "precision", f"must be one of {', '.join(precision.PRECISIONS)}", self.precision
            )
        return self
