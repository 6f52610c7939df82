"""Gatys et al.'s optimisation (the assignment): settings, losses, Adam and L-BFGS, tiling, coarse to fine.

`config` (the settings and presets), `losses` (the style losses), `optimize` (the engine, the
stages and `stylize()`), `tiling` (large images), `memory` (the budget), `lbfgs`, `method` (the seam).
"""
