"""`python -m nst_tf.batch --content DIR --style DIR --output_dir OUT`: see `nst_tf.cli.batch`."""

from nst_tf.cli.batch import entry

if __name__ == "__main__":
    entry()
