"""Style-transfer methods behind one contract (`base.Method`), registered by name.

A new method is a module or sub-package here with a `Method` subclass, named in `BUILTIN`
(imported when first asked for) or passed to `register()`; nothing outside it changes.
"""

import importlib

from nst_tf.errors import SettingError

DEFAULT = "gatys"
BUILTIN = {"gatys": "nst_tf.methods.gatys.method"}  # name -> module defining METHOD
BUILTIN["wct"] = "nst_tf.methods.wct.method"
BUILTIN["adain"] = "nst_tf.methods.adain.method"
_REGISTERED = {}


def register(method):
    """Make `method` (a `base.Method` instance) available as `--method <method.name>`; returns it."""
    _REGISTERED[method.name] = method
    return method


def names():
    """The known methods' names, sorted."""
    return sorted(set(BUILTIN) | set(_REGISTERED))


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
