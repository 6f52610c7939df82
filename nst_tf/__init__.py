"""nst_tf: the deeplearning.ai neural style transfer assignment (Gatys et al., VGG-19) in TensorFlow 2.

`from nst_tf import load_vgg_model` works; TensorFlow is imported only when a
name that needs it is first used, so `python -m nst_tf.run` can quiet it first.
"""

__version__ = "1.0.0"

_LAZY = {
    "load_vgg_model": "nst_tf.nets.vgg",
    "build_vgg": "nst_tf.nets.vgg",
    "stylize": "nst_tf.methods.gatys.optimize",
    "Config": "nst_tf.methods.gatys.optimize",
    "resolve_weights": "nst_tf.nets.weights",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nst_tf' has no attribute {name!r}")
