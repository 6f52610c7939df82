"""Style-transfer methods behind one contract (`base.Method`), registered by name.

A new method is a module or sub-package here with a `Method` subclass, named in `BUILTIN`
(imported when first asked for) with its settings' module in `CONFIGS` (TensorFlow-free: the
command line defines its flags and checks them from there), or passed to `register()`; nothing
outside it changes.
"""

import importlib
import types

from nst_tf.errors import SettingError

DEFAULT = "gatys"
BUILTIN = {"gatys": "nst_tf.methods.gatys.method"}  # name -> module defining METHOD
BUILTIN["wct"] = "nst_tf.methods.wct.method"
BUILTIN["adain"] = "nst_tf.methods.adain.method"
# name -> (module, its presets' name) of the method's settings, without TensorFlow (a command's
# flags are checked before TensorFlow is imported: `spec`)
CONFIGS = {
    "gatys": ("nst_tf.methods.gatys.config", "METHOD_PRESETS"),
    "wct": ("nst_tf.methods.wct.config", "PRESETS"),
    "adain": ("nst_tf.methods.adain.config", "PRESETS"),
}
_REGISTERED = {}


def register(method):
    """Make `method` (a `base.Method` instance) available as `--method <method.name>`; returns it."""
    _REGISTERED[method.name] = method
    return method


def names():
    """The known methods' names, sorted."""
    return sorted(set(BUILTIN) | set(_REGISTERED))


def spec(name=DEFAULT):
    """What settings the method called `name` takes, without importing its engine (nor TensorFlow):
    `.name`, `.Settings` (its dataclass), `.presets` ({name: Settings}); a registered method is
    its own spec.

    Raises:
      SettingError: no method has that name (the message lists the known ones).
    """
    if name in _REGISTERED or name not in CONFIGS:
        return get(name)
    module, attribute = CONFIGS[name]
    presets = getattr(importlib.import_module(module), attribute)
    return types.SimpleNamespace(name=name, Settings=type(presets["default"]), presets=presets)


def get(name=DEFAULT):
    """The method called `name`.

    Raises:
      SettingError: no method has that name (the message lists the known ones).
    """
    if name not in _REGISTERED and name in BUILTIN:
        register(importlib.import_module(BUILTIN[name]).METHOD)
    if name not in _REGISTERED:
        raise SettingError("method", f"no such method; known methods: {', '.join(names())}", name)
    return _REGISTERED[name]
