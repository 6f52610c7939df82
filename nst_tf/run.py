"""`python -m nst_tf.run --content louvre.jpg --style monet.jpg`: see `nst_tf.cli.run`."""

from nst_tf.cli.run import entry

if __name__ == "__main__":
    entry()
