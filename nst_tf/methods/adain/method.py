"""AdaIN on the method seam: `--method adain` gives the content's relu4_1 features each channel's
mean and standard deviation of the style's, and decodes them with the decoder trained for that.

It is WCT's engine with one level and a diagonal transform (`transforms.LinearMap.adain` from
`Moments(diagonal=True)`): the same strength, blends (the AdaIN targets interpolated), masks (each
region aligned by its own statistics), colour preservation, tiling within `--max_memory`, batch and
Beam.
"""

from nst_tf.methods import base
from nst_tf.methods.adain.config import DECODER_FILE, PRESETS, AdaINSettings
from nst_tf.methods.wct import method as wct
from nst_tf.methods.wct import transforms


class Engine(wct.Engine):
    """VGG-19 to relu4_1 (max pooling), the AdaIN decoder, and the channel-wise alignment."""

    diagonal = True
    colour = staticmethod(transforms.adain_colouring)
    transform = staticmethod(transforms.LinearMap.adain_coloured)


class AdaIN(base.Method):
    """Huang and Belongie's arbitrary style transfer: one encoder pass, AdaIN, one decoder pass."""

    name = "adain"
    Settings = AdaINSettings
    presets = PRESETS
    cost_names = ("content", "style")

    def engine(self, settings, vgg_weights):
        return Engine(settings, vgg_weights)

    def files(self, settings):
        return {DECODER_FILE.removesuffix(".npz"): path for path in settings.decoder_paths().values()}

    def group_limit(self, settings):
        return None  # each content is aligned on its own; any number go through one stage


METHOD = AdaIN()
