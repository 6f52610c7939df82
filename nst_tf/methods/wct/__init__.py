"""WCT (Li et al. 2017, "Universal Style Transfer via Feature Transforms"): `--method wct`.

`transforms` (whitening and colouring, pure), `config` (its settings), `method` (the cascade on the
method seam), `training` (what `python -m nst_tf.train --method wct` trains: the decoders).
"""
