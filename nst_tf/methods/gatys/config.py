"""The optimisation's settings (the single home of their defaults), its presets, layer lists."""

import dataclasses
from pathlib import Path

import numpy as np

from nst_tf import images
from nst_tf.errors import SettingError
from nst_tf.methods.base import Settings
from nst_tf.nets.layers import ALIGN, CONTENT_LAYER, POOLINGS, STYLE_LAYERS, layer_names

OPTIMIZERS = ("adam", "lbfgs")
INITS = ("noise", "content", "random")
STYLE_LOSSES = ("gram", "mean_cov")  # `losses.STYLE_LOSSES` has one of each
CONTENT_LOSSES = ("mse", "relative")


@dataclasses.dataclass(frozen=True)
class Config(Settings):
    """Every setting of an optimisation (the shared ones in `Settings`); the defaults are the
    assignment's (`--preset assignment`).

    Attributes:
      iterations: optimisation steps (the assignment's `num_iterations`); L-BFGS iterations
        for `optimizer="lbfgs"`.
      save_every: report costs and yield the image every this many steps.
      learning_rate: Adam's learning rate on raw pixel values (0-255 scale).
      alpha: weight of the content cost.
      beta: weight of the style cost.
      style_strength: a multiplier on `beta`, the one knob for the balance (2: twice the style; not
        in the assignment, whose value is 1).
      noise_ratio: share of uniform noise in the starting image (`init="noise"`).
      pooling: "avg" (the assignment's) or "max".
      content_layers: (layer, weight) pairs of the content cost.
      style_layers: (layer, coefficient) pairs of the style cost.
      optimizer: "adam" (the assignment's) or "lbfgs" (scipy's L-BFGS-B, pixels kept in range).
      lbfgs_history: number of corrections L-BFGS keeps.
      init: "noise" (the assignment's noisy content), "content", "random", or an image path.
      tv_weight: weight of the total-variation smoothing term (0: the assignment's loss).
      style_loss: "gram" (the assignment's) or "mean_cov" (2-Wasserstein between Gaussians).
      content_loss: "mse" (the assignment's) or "relative": divided by the content's own feature
        energy, so that the balance holds across sizes and photos (`losses.content_scale`).
      ema: decay of the average of Adam's iterates that is reported and saved (0: off).
      tile_size: compute the loss and gradient in tiles with this core size in pixels
        (a multiple of 16; see `tiling`); 0 tiles only when the image would not fit
        `max_memory`.
      scales: coarse-to-fine: optimise at this many sizes, from 256 px (long side) up to
        width x height by equal factors, each starting from the previous result upsampled;
        0 picks 2x steps automatically; 1 (the assignment's) optimises at one size.
      refine_iterations: iterations at each scale after the first (0: `iterations` at every
        scale): the first, cheap scale takes `iterations` from `init`, the later ones start from
        its result upsampled and need fewer.
      refine_size: 0, or a long side in px above which a later scale takes `refine_iterations`
        x (long side / refine_size)^2, as many per pixel (more pixels converge in more iterations:
        The Scream's content distance at 1024 px was 0.494 / 0.477 / 0.467 after 150 / 300 / 600).
    """

    iterations: int = 200
    save_every: int = 20
    learning_rate: float = 2.0
    alpha: float = 10.0
    beta: float = 40.0
    style_strength: float = 1.0
    noise_ratio: float = images.NOISE_RATIO
    pooling: str = "avg"
    content_layers: tuple = ((CONTENT_LAYER, 1.0),)
    style_layers: tuple = tuple(STYLE_LAYERS)
    optimizer: str = "adam"
    lbfgs_history: int = 10
    init: str = "noise"
    tv_weight: float = 0.0
    style_loss: str = "gram"
    content_loss: str = "mse"
    ema: float = 0.0
    tile_size: int = 0
    scales: int = 1
    refine_iterations: int = 0
    refine_size: int = 0

    def validate(self):
        """Raise SettingError naming the first setting that cannot work; returns self."""
        super().validate()
        for name in ("iterations", "save_every", "learning_rate", "lbfgs_history"):
            if not getattr(self, name) > 0:
                raise SettingError(name, "must be greater than 0", getattr(self, name))
        for name in ("alpha", "beta", "tv_weight", "style_strength"):
            value = getattr(self, name)
            if value < 0 or not np.isfinite(value):
                raise SettingError(name, "must be a finite number >= 0", value)
        if not 0 <= self.noise_ratio <= 1:
            raise SettingError("noise_ratio", "must be between 0 and 1", self.noise_ratio)
        if self.tile_size < 0 or self.tile_size % ALIGN:
            raise SettingError("tile_size", f"must be 0 (automatic) or a multiple of {ALIGN}", self.tile_size)
        if self.refine_size < 0:
            raise SettingError(
                "refine_size", "must be >= 0 (0: refine_iterations at every scale)", self.refine_size
            )
        if self.refine_iterations < 0:
            raise SettingError(
                "refine_iterations", "must be >= 0 (0: iterations at every scale)", self.refine_iterations
            )
        if self.scales < 0:
            raise SettingError("scales", "must be >= 0 (0 = automatic, 1 = one size)", self.scales)
        if not 0 <= self.ema < 1:
            raise SettingError("ema", "must be in [0, 1)", self.ema)
        for name, allowed in (
            ("pooling", POOLINGS),
            ("optimizer", OPTIMIZERS),
            ("style_loss", STYLE_LOSSES),
            ("content_loss", CONTENT_LOSSES),
        ):
            if getattr(self, name) not in allowed:
                raise SettingError(name, f"must be one of {', '.join(allowed)}", getattr(self, name))
        if self.init not in INITS and not Path(self.init).is_file():
            raise SettingError("init", f"must be one of {', '.join(INITS)} or an image file", self.init)
        self._validate_layers()
        return self

    def _validate_layers(self):
        known = layer_names(self.pooling)[1:]
        for name, pairs in (("content_layers", self.content_layers), ("style_layers", self.style_layers)):
            if not pairs:
                raise SettingError(name, "give at least one layer")
            for layer, weight in pairs:
                if layer not in known:
                    raise SettingError(name, f"unknown VGG-19 layer {layer!r}; use conv1_1 ... conv5_4")
                if not (weight >= 0 and np.isfinite(weight)):
                    raise SettingError(name, f"weight of {layer} must be a finite number >= 0")

    def stage_iterations(self, stage, long_side=0):
        """Iterations at coarse-to-fine stage `stage` (0 = the first) of `long_side` px: see
        `refine_iterations` and `refine_size`."""
        if not (stage > 0 and self.refine_iterations):
            return self.iterations
        if self.refine_size and long_side > self.refine_size:
            return round(self.refine_iterations * (long_side / self.refine_size) ** 2)
        return self.refine_iterations

    @property
    def style_weight(self):
        """The style cost's weight in the total: beta x style_strength."""
        return self.beta * self.style_strength

    @property
    def layers(self):
        """The VGG-19 layers the costs read, sorted."""
        return sorted({layer for layer, _ in self.content_layers + self.style_layers})


PRESETS = {
    "assignment": Config(),
    # Chosen by measurement and by looking beside jcjohnson/neural-style's published examples
    # (docs/quality.md, section 5). His loss in the assignment's units: the Gram loss on conv1_1 ...
    # conv5_1 with each Gram divided by C x H x W (a coefficient of 400 / C^2 per layer here);
    # content 5 x the mean squared error at conv4_2 (alpha 20 against the assignment's 1/4); his TV
    # weight 1e-3 (his gradient is that of half our sum: 5e-4); a random start, max pooling, and his
    # style sizing (its own aspect, long side the content's: stretching his portrait paintings onto
    # a landscape photo halved how far the style moved). His style weight 100 is beta 1; at it ours
    # came out more stylised than his and further from the photograph (content distance up to 0.08
    # over his), so beta is 0.7 ("his-weights" in section 5 is beta 1). Coarse to fine from 256 px:
    # 500 L-BFGS iterations there, 150 at 512 px (the style is set within 50, the content sharpens
    # after) and 150 x (long side / 512)^2 at larger scales (600 at 1024: refine_size). The look holds
    # across sizes (section 5): the style is matched at a 512 px long side at every size and
    # scale (style_size; sized from the working
    # size, even the style image itself as the output scores only 0.72-0.89 style moved at 1024 px
    # and 0.79-0.94 at 256); the content cost is relative to the content's own feature energy
    # (content_loss; that energy falls 1.4x per 2x size on the Golden Gate photo), alpha 2.35e6
    # being his 5 x MSE on that photo's conv4_2 energy at 512 px, 4.7e5; the TV term weighs the
    # same per pixel at every size (`losses.tv_cost`). bfloat16 where native.
    "quality": Config(
        precision="auto",
        optimizer="lbfgs",
        init="random",
        pooling="max",
        iterations=500,
        refine_iterations=150,
        refine_size=512,
        scales=0,
        style_fit="keep",
        style_size=512,
        content_loss="relative",
        alpha=2.35e6,
        beta=0.7,
        style_layers=tuple(
            (f"conv{k}_1", 400.0 / c**2) for k, c in zip(range(1, 6), (64, 128, 256, 512, 512))
        ),
        tv_weight=5e-4,
        style_loss="gram",
    ),
}

# --method gatys's presets: without --preset, the assignment's
METHOD_PRESETS = {"default": PRESETS["assignment"], **PRESETS}


def parse_layers(text, setting):
    """`conv4_2` or `conv1_1:0.2,conv2_1:0.3` -> ((layer, weight), ...); weights default to 1/n.

    Raises:
      SettingError: naming `setting` when a weight is not a number.
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    pairs = []
    for item in items:
        name, _, weight = item.partition(":")
        try:
            pairs.append((name.strip(), float(weight) if weight else 1.0 / len(items)))
        except ValueError:
            raise SettingError(setting, f"{item!r} is not layer or layer:weight (e.g. conv1_1:0.2)")
    if not pairs:
        raise SettingError(setting, "give at least one layer")
    return tuple(pairs)
