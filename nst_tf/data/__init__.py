"""Training data for the fast methods: `sources` (the registry packages), `assemble`, `pipeline` (tf.data)."""
