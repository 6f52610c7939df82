"""The networks: VGG-19's layer table, its weights from every source, the Keras model."""
