"""Gatys et al.'s optimisation on the method seam: `--method gatys` (the default)."""

from nst_tf.errors import SettingError
from nst_tf.methods import base
from nst_tf.methods.gatys.config import METHOD_PRESETS, Config
from nst_tf.methods.gatys.optimize import Engine, scale_sizes


class Gatys(base.Method):
    """The assignment's optimisation and everything built on it: L-BFGS, tiling, coarse to fine."""

    name = "gatys"
    Settings = Config
    presets = METHOD_PRESETS
    cost_names = ("total", "content", "style")
    resumable = True

    def engine(self, settings, vgg_weights):
        return Engine(settings, vgg_weights)

    def stage_sizes(self, settings):
        return scale_sizes(settings)

    def steps(self, settings):
        return [settings.stage_iterations(k, max(size)) for k, size in enumerate(scale_sizes(settings))]

    def save_every(self, settings):
        return settings.save_every

    def stop_text(self, progress, settings):
        """Why L-BFGS-B ended before `iterations`, in words a user can act on."""
        done, reason = progress.iterations, progress.stopped.strip().rstrip(":").strip()
        if "ABNORMAL" in reason:
            why = "its line search found no lower loss: the loss has stopped improving at float32 precision"
        elif "CONVERGENCE" in reason:
            why = "it converged"
        else:
            why = "it ended"
        stopped = f"L-BFGS-B stopped after {done} of {settings.iterations} iterations"
        return f"{stopped}: {why} (scipy: {reason}); the image is final"

    def group_limit(self, settings):
        # L-BFGS optimises one vector; tiled images are checked per stage (Stylizer)
        return 1 if settings.optimizer == "lbfgs" else None

    def check_resume(self, settings, stage, done):
        sizes = scale_sizes(settings)
        last = len(sizes) - 1
        if stage == last and done >= settings.stage_iterations(last, max(sizes[last])):
            flag = "refine_iterations" if last and settings.refine_iterations else "iterations"
            raise SettingError(
                "resume", f"the run is complete ({done} iterations); add --{flag} N (> {done}) to go on"
            )


METHOD = Gatys()
