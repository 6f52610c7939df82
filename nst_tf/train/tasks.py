"""What each fast method trains, by name: the only method-specific part of `nst_tf.train`.

A method's training module (named in `BUILTIN`) defines `TASK`, an object with

    TASK.run_name(options)                        -> "wct_relu3_1": the run's folder; raises
                                                     SettingError for a method option that cannot work
    TASK.grid_weight(options)                     the run's grid weight (--grid_weight or the default)
    TASK.build(options, vgg_weights, precision)   -> a task:

and a task has

    task.network          the keras.Model trained (its trainable variables; the rest is frozen)
    task.cost_names       ("total", ...): the losses reported; "total" is minimised
    task.losses(x, ...)   {name: float32 scalar} for a batch x, (n, H, W, 3) RGB minus MEANS, of
                          each kind in task.data_kinds (default ("photo",); AdaIN: ("photo", "style"))
    task.reconstruct(x)   what the preview shows below each held-out photo, like x
    task.model_file       the file name of the trained network in --out
    task.save(path, meta) writes the network (with the JSON-able `meta`: provenance) to path
    task.load(path)       the network's weights from such a file (ship, --init_from)
    task.describe()       a JSON-able dict for provenance.json (network, encoder, loss)

A new method adds a module and a line here; the loop, checkpoints and files are shared.
"""

import importlib

from nst_tf.errors import SettingError

BUILTIN = {"wct": "nst_tf.methods.wct.training", "adain": "nst_tf.methods.adain.training"}


def get(method):
    """The `TASK` of a method that trains a network.

    Raises:
      SettingError: naming `method` when it has nothing to train.
    """
    if method not in BUILTIN:
        raise SettingError(
            "method", f"has no network to train; trainable: {', '.join(sorted(BUILTIN))}", method
        )
    return importlib.import_module(BUILTIN[method]).TASK
