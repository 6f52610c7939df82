"""Training the fast methods' networks: `python -m nst_tf.train --method wct --level 3 --data M --out D`.

`options` (the settings and their defaults), `tasks` (what each method trains: its network and loss),
`loop` (Adam steps, resumable; no files), `session` (checkpoints, losses.csv, previews, provenance).
"""
