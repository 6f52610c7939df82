"""The contract every style-transfer method fulfils, and the settings they all share.

A method (a `Method`, registered by name in `nst_tf.methods`) is used the same way by one image
(`nst_tf.app.single`), a batch (`nst_tf.app.batch`) and a Beam worker (`nst_tf.app.beam`):

    engine = method.engine(settings, vgg_weights)       # once: networks built, steps traced
    style = engine.prepare_style([style_image, ...])    # once per style (batch caches it)
    for stage in engine.stages([content], [style]):     # coarse to fine: one stage per size
        for progress in stage.steps():                  # an optimisation: a Progress per step;
            ...                                         # a feed-forward method: one Progress

`Progress` carries the costs (named by `method.cost_names`) and the image whenever there is one
to save. A stage may be saved and continued (`method.resumable`: `stage.checkpoint` is a
`tf.train.Checkpoint`, `stage.restore(prefix)` reads it back). Nothing here prints or writes files.
"""

import dataclasses
import time

import numpy as np

from nst_tf import colors, images, precision
from nst_tf.errors import SettingError

PRESERVE_COLORS = ("none", "luminance", "histogram")
STYLE_FITS = ("stretch", "keep")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every method shares; a method's own settings dataclass extends it.

    Attributes:
      width, height: working size in pixels; the content is resized to it.
      seed: seed of anything random (the starting noise); None for fresh randomness each run.
      style_blend_weights: one weight per style image (normalised to sum 1); None = equal.
      style_scale: size of the style image relative to the content's (or to `style_size`).
      style_size: 0 (the assignment's): the style is sized from the working size, at every scale of
        a coarse-to-fine run; N: its long side is N x `style_scale` px at every size and scale
        (crowsonkb's fixed style size), so its strokes, and the statistics matched, are the same
        at 256, 512 or 1024 px.
      style_fit: how a style image is sized: "stretch" (the assignment's: to the content's width
        and height x `style_scale`) or "keep" (jcjohnson's: its own aspect, its long side the
        content's long side x `style_scale`, so a portrait style is not squashed).
      preserve_colors: "none", "luminance" (stylise the luminance only, keep the content's
        chroma) or "histogram" (match the style's colour statistics to the content first).
      precision: the networks' number format: "float32", "bfloat16" (mixed precision), or
        "auto": bfloat16 where the hardware runs it natively (see `nst_tf.precision`).
      max_memory: memory budget in GiB; 0 = half the available memory.
    """

    width: int = 400
    height: int = 300
    seed: int | None = 1
    style_blend_weights: tuple | None = None
    style_scale: float = 1.0
    style_size: int = 0
    style_fit: str = "stretch"
    preserve_colors: str = "none"
    precision: str = "float32"
    max_memory: float = 0.0

    def validate(self):
        """Raise SettingError naming the first shared setting that cannot work; returns self."""
        for name, value in (("width", self.width), ("height", self.height)):
            if value < images.MIN_SIDE:
                raise SettingError(name, f"must be at least {images.MIN_SIDE} pixels", value)
        if not self.style_scale > 0:
            raise SettingError("style_scale", "must be greater than 0", self.style_scale)
        if self.style_size and self.style_size < images.MIN_SIDE:
            raise SettingError(
                "style_size", f"must be 0 (relative) or at least {images.MIN_SIDE} pixels", self.style_size
            )
        if self.max_memory < 0:
            raise SettingError("max_memory", "must be >= 0 (GiB; 0 = automatic)", self.max_memory)
        for name, value, allowed in (
            ("preserve_colors", self.preserve_colors, PRESERVE_COLORS),
            ("style_fit", self.style_fit, STYLE_FITS),
            ("precision", self.precision, precision.PRECISIONS),
        ):
            if value not in allowed:
                raise SettingError(name, f"must be one of {', '.join(allowed)}", value)
        blend = self.style_blend_weights
        if blend is not None and (min(blend) < 0 or sum(blend) <= 0):
            raise SettingError("style_blend_weights", "weights must be >= 0 and not all 0")
        return self


def blend_weights(n, weights):
    """`style_blend_weights` for n style images, normalised to sum 1 (equal when None)."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise SettingError("style_blend_weights", f"has {len(weights)} weights for {n} style images")
    return [w / sum(weights) for w in weights]


@dataclasses.dataclass
class Inputs:
    """A content image and its style images, resized and recoloured per the shared settings.

    Attributes:
      content: what the network sees, (1, H, W, 3) minus means (grey with luminance-only colours).
      styles: the kept style images (weight > 0), (1, h, w, 3) minus means each.
      blend: their weights, summing to 1.
      content_rgb: the resized uint8 content, whose chroma a luminance-only result takes.
      luminance: `preserve_colors == "luminance"`.
    """

    content: np.ndarray
    styles: list
    blend: list
    content_rgb: np.ndarray
    luminance: bool

    def output(self, x):
        """The image to show for a result `x`: with the content's chroma put back if luminance-only."""
        if not self.luminance:
            return x
        grey = np.clip(x[0] + images.MEANS[0], 0, 255)
        rgb = colors.with_chroma_of(grey, self.content_rgb)
        return (rgb - images.MEANS[0])[np.newaxis].astype(np.float32)


def style_size(shape, settings):
    """(width, height) a style image of `shape` (H, W, ...) is resized to (see `Settings.style_fit`)."""
    factor = settings.style_scale  # of the working size, or of a fixed long side (`style_size`)
    if settings.style_size:
        factor *= settings.style_size / max(settings.width, settings.height)
    width, height = settings.width * factor, settings.height * factor
    if settings.style_fit == "keep":
        side = max(width, height)
        h, w = shape[:2]
        width, height = (side, side * h / w) if w >= h else (side * w / h, side)
    return max(round(width), 16), max(round(height), 16)


def prepare_inputs(content_image, style_images, settings):
    """Resize the content to the working size and the styles by `style_scale`, recolour them as
    `preserve_colors` asks, and preprocess all. Returns Inputs."""
    if isinstance(style_images, np.ndarray):
        style_images = [style_images]
    blend = blend_weights(len(style_images), settings.style_blend_weights)
    kept = [(s, w) for s, w in zip(style_images, blend) if w > 0]  # a zero weight drops its style
    content_rgb = images.resize_to(content_image, settings.width, settings.height)
    styles = [images.resize_to(s, *style_size(s.shape, settings)) for s, _ in kept]
    content_net = content_rgb
    if settings.preserve_colors == "histogram":
        styles = [colors.match_color_statistics(s, content_rgb) for s in styles]
    elif settings.preserve_colors == "luminance":
        styles = [colors.luminance_image(s, match=content_rgb) for s in styles]
        content_net = colors.luminance_image(content_rgb)
    return Inputs(
        content=images.reshape_and_normalize_image(content_net),
        styles=[images.reshape_and_normalize_image(s) for s in styles],
        blend=[w for _, w in kept],
        content_rgb=content_rgb,
        luminance=settings.preserve_colors == "luminance",
    )


@dataclasses.dataclass
class Progress:
    """What a stage yields after each step (an optimisation) or once (a feed-forward method).

    Attributes:
      iteration: index of the step just taken (0-based, as the assignment counts).
      iterations: total number of steps (1 for a feed-forward method).
      elapsed: seconds since the stage's first step started.
      costs: the numbers the method reports ({name: float}, names from `Method.cost_names`, and
        maybe more) when there is an image to save, else None; for a group of images, their sums.
      image: the result, (n, H, W, 3) minus means, when `costs` is set.
      failure: why the stage stopped early (a loss that is not finite, say), else None.
      failure_settings: the settings `failure` names as likely causes.
      stopped: on the last Progress of a run that ended before `iterations`, why, else None.
      per_image: for a group of n > 1 images, each image's costs.
    """

    iteration: int
    iterations: int
    elapsed: float
    costs: dict | None = None
    image: np.ndarray | None = None
    failure: str | None = None
    stopped: str | None = None
    per_image: list | None = None
    failure_settings: tuple = ()

    @classmethod
    def of_group(cls, iteration, iterations, elapsed, per_image, image, failure=None):
        """A Progress for n images from each one's costs: `costs` their sums (one image: its own)."""
        costs = {k: sum(c[k] for c in per_image) for k in per_image[0]}
        grouped = per_image if len(per_image) > 1 else None
        return cls(iteration, iterations, elapsed, costs, image, failure, per_image=grouped)

    @property
    def is_last(self):
        return self.iteration == self.iterations - 1

    def item(self, i):
        """(image (1, H, W, 3), costs) of the i-th image of the group."""
        costs = self.per_image[i] if self.per_image else self.costs
        return self.image[i : i + 1], costs


class Method:
    """A style-transfer method, as run, batch, Beam, the report and run.json see it.

    Attributes:
      name: its `--method` value.
      Settings: its settings dataclass (extends `Settings`); each field is a flag of the CLI.
      presets: {name: Settings instance}; "default" is the one used without `--preset`.
      cost_names: the numbers every result reports (the columns of costs.csv and the manifest).
      resumable: its stages can save their state and continue from it (`--resume`).
    """

    name = ""
    Settings = Settings
    presets = {"default": Settings()}
    cost_names = ()
    resumable = False

    def engine(self, settings, vgg_weights):
        """The method's networks and caches, built once for every image stylised with `settings`."""
        raise NotImplementedError

    def stage_sizes(self, settings):
        """(width, height) of every stage, in order (an optimisation's coarse-to-fine sizes)."""
        return [(settings.width, settings.height)]

    def steps(self, settings):
        """Steps of every stage, in order (an optimisation's iterations; 1 for one pass)."""
        return [1] * len(self.stage_sizes(settings))

    def save_every(self, settings):
        """Save an intermediate image every this many steps; None: only the result."""
        return None

    def stop_text(self, progress, settings):
        """One line on why a stage ended before its last step (`progress.stopped`)."""
        return f"stopped after {progress.iterations} steps: {progress.stopped}; the image is final"

    def files(self, settings):
        """{name: path} of the files the method reads besides VGG-19 (its trained models)."""
        return {}

    def group_limit(self, settings):
        """How many contents one stage may stylise together (`images_per_batch`); None: any number."""
        return 1

    def check_resume(self, settings, stage, done):
        """Raise SettingError when a run saved after `done` steps of `stage` has nothing left to do."""
        if not self.resumable:
            raise SettingError("resume", f"a {self.name} run is one pass; run it again instead")


class OneShot:
    """The stage of a feed-forward method: `run()` -> (images (n, H, W, 3), [costs per image]) once."""

    checkpoint = None

    def __init__(self, settings, run):
        self.settings, self._run, self.scale = settings, run, (0, 1)
        self.last, self.seconds = None, 0.0

    def steps(self):
        start = time.perf_counter()
        image, per_image = self._run()
        self.seconds = time.perf_counter() - start
        self.last = Progress.of_group(0, 1, self.seconds, per_image, image)
        yield self.last

    def snapshot(self):
        return self.last or Progress(-1, 1, 0.0)

    def record(self):
        return {"size": [self.settings.width, self.settings.height], "seconds_in_pass": self.seconds}
