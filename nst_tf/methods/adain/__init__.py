"""AdaIN (Huang and Belongie 2017, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization"): `--method adain`.

`transforms` (the channel-wise alignment, pure, batched for training), `config` (its settings),
`method` (one encoder pass, the alignment, one decoder pass, on the method seam: WCT's engine with
AdaIN's statistics), `training` (what `python -m nst_tf.train --method adain` trains: its decoder).
"""
