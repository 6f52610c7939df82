"""The command line: every flag (`flags`) and the entry points of `nst_tf.run` and `nst_tf.batch`."""
