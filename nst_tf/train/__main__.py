"""`python -m nst_tf.train`: see `nst_tf.cli.train`."""

from nst_tf.cli.train import entry

entry()
