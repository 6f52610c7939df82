"""`python -m nst_tf.batch --content DIR --style DIR --output_dir OUT`: see `nst_tf.cli.batch`."""

from absl import flags

from nst_tf.cli import flags as cli_flags
from nst_tf.cli.batch import entry

flags.adopt_module_key_flags(cli_flags)  # --help lists them (absl shows the main module's key flags)

if __name__ == "__main__":
    entry()
