"""The optimisation: costs, Adam and L-BFGS, the engine shared by every image, `stylize()`.

Nothing here prints or writes files: a `Stylizer` yields `Progress` and the caller decides
what to show and save (see `nst_tf.app.report` and `nst_tf.app.single`).
"""

import dataclasses
import itertools
import re
import time

import numpy as np
import tensorflow as tf

from nst_tf import costs, images, precision
from nst_tf.errors import SettingError
from nst_tf.methods.base import Inputs, Progress, prepare_inputs
from nst_tf.methods.gatys import lbfgs, tiling
from nst_tf.methods.gatys.config import PRESETS, Config, parse_layers  # noqa: F401 (optimize.Config, as before)
from nst_tf.methods.gatys.losses import SCALE, content_targets, style_loss, total, tv_cost
from nst_tf.methods.gatys.memory import resident_bytes, tile_core
from nst_tf.nets.vgg import build_vgg


class Adam:
    """Adam with tf.compat.v1.train.AdamOptimizer's update (the assignment's, epsilon 1e-8).

    Written out rather than taken from Keras so that its state is three plain
    variables, on the same device as the image, easy to inspect and checkpoint.
    """

    def __init__(self, var, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.lr, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.m = tf.Variable(tf.zeros_like(var), trainable=False, name="adam_m")
        self.v = tf.Variable(tf.zeros_like(var), trainable=False, name="adam_v")
        self.t = tf.Variable(0.0, trainable=False, name="adam_t")

    def propose(self, grad, var):
        """The next (m, v, t, var) without changing anything, so a bad step can be refused."""
        t = self.t + 1.0
        m = self.beta_1 * self.m + (1 - self.beta_1) * grad
        v = self.beta_2 * self.v + (1 - self.beta_2) * tf.square(grad)
        lr_t = self.lr * tf.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        return m, v, t, var - lr_t * m / (tf.sqrt(v) + self.epsilon)

    def commit(self, m, v, t):
        self.m.assign(m)
        self.v.assign(v)
        self.t.assign(t)

    def apply(self, grad, var):
        m, v, t, new_var = self.propose(grad, var)
        self.commit(m, v, t)
        var.assign(new_var)


class Average:
    """Bias-corrected exponential moving average of the iterates (crowsonkb's output averaging)."""

    def __init__(self, var, decay):
        self.decay = decay
        self.sum = tf.Variable(tf.zeros_like(var), trainable=False, name="ema_sum")
        self.weight = tf.Variable(0.0, trainable=False, name="ema_weight")

    def update(self, var):
        self.sum.assign(self.decay * self.sum + (1 - self.decay) * var)
        self.weight.assign(self.decay * self.weight + (1 - self.decay))

    def value(self):
        return self.sum / self.weight


def style_targets(model, styles, blend, config):
    """Per style layer, the blended target statistics of the style images (computed once)."""
    loss = style_loss(config)
    outputs = [model(tf.constant(style)) for style in styles]
    return {
        layer: loss.blend([loss.target(out[layer]) for out in outputs], blend)
        for layer, _ in config.style_layers
    }


def cost_terms(a_G, image, a_C, targets, config):
    """(J, J_content, J_style) of a generated image from its activations: the one formula of every path.

    With the assignment's settings J is exactly its `total_cost(compute_content_cost(...),
    compute_style_cost(...))`; the style Gram matrices are precomputed and normalised by
    their own size (same value, and style images may then differ in size or be blended).
    """
    layer_cost = style_loss(config).layer_cost
    J_content = tf.add_n(
        [
            w * a_C.get(l + SCALE, 1.0) * costs.compute_content_cost(a_C[l], a_G[l])
            for l, w in config.content_layers
        ]
    )
    J_style = tf.add_n([k * layer_cost(targets[l], a_G[l]) for l, k in config.style_layers])
    return total(J_content, J_style, image, config), J_content, J_style


def group_cost(model, a_C, targets, config):
    """`cost(image)` for n images (n, H, W, 3): a list of each image's (J, J_content, J_style).

    `a_C` and `targets` hold, per image, {layer: content activations} and {layer: style target}.
    VGG treats the images of a batch independently, so minimising the sum gives each image its
    own cost's gradient; for one image it is exactly `cost_terms` of it.
    """
    n = len(a_C)

    def one(image, a_G, i):
        pick = (lambda t: t) if n == 1 else (lambda t: t[i : i + 1])
        return cost_terms({l: pick(a) for l, a in a_G.items()}, pick(image), a_C[i], targets[i], config)

    def cost(image):
        a_G = model(image)
        return [one(image, a_G, i) for i in range(n)]

    return cost


def summed(cost):
    """`group_cost`'s costs summed over the images; for one image, exactly its own (J, J_content, J_style)."""

    def add(image):
        return tuple(tf.add_n(list(values)) for values in zip(*cost(image)))

    return add


def make_cost_fn(model, content, styles, blend, config):
    """Targets computed once; returns `cost(image) -> (J, J_content, J_style)` of one image."""
    content_out = model(tf.constant(content))
    a_C = content_targets(content_out, config)  # constants
    return summed(group_cost(model, [a_C], [style_targets(model, styles, blend, config)], config))


def make_train_step(cost, image, optimizer, done, average=None):
    """A `tf.function` taking one Adam step on `image`; returns (J, ok).

    A step whose loss or resulting image is not finite changes nothing (`ok` is False),
    so the image stays the last good one.
    """

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            J, _, _ = cost(image)
        return J, _guarded_update(J, tape.gradient(J, image), image, optimizer, done, average)

    return train_step


def make_apply_step(image, optimizer, done, average=None):
    """A `tf.function` applying one Adam step from a given gradient; refuses non-finite results."""

    @tf.function
    def apply(J, grad):
        return _guarded_update(J, grad, image, optimizer, done, average)

    return apply


NOT_FINITE_HINT = "too high a learning_rate (or beta, tv_weight); try a smaller one"
NOT_FINITE_SETTINGS = ("learning_rate", "beta", "tv_weight")  # what the hint names


def not_finite(i, J):
    """Why a run stopped at Adam step i whose loss J or new image was not finite (the likely cause
    is `NOT_FINITE_HINT`)."""
    what = f"step {i} made the loss or the image infinite or NaN (loss {float(J):.3g})"
    return f"{what}; likely cause: {NOT_FINITE_HINT}"


def _guarded_update(J, grad, image, optimizer, done, average):
    """Commit the Adam step only if the loss and the new image are finite; returns whether it did."""
    m, v, t, new_image = optimizer.propose(grad, image)
    ok = tf.math.is_finite(J) & tf.reduce_all(tf.math.is_finite(new_image))
    if ok:
        optimizer.commit(m, v, t)
        image.assign(new_image)
        if average is not None:
            average.update(image)
        done.assign_add(1)
    return ok


@dataclasses.dataclass
class Problem(Inputs):
    """The images of one optimisation, ready for the network, and its starting image (1, H, W, 3)."""

    start: np.ndarray | None = None


def prepare(content_image, style_images, config):
    """Resize, recolour, preprocess the images (`prepare_inputs`); the starting image. Returns a Problem."""
    inputs = prepare_inputs(content_image, style_images, config)
    return Problem(**vars(inputs), start=_start_image(inputs.content, config))


def _start_image(content, config):
    if config.init == "noise":
        return images.generate_noise_image(content, config.noise_ratio, config.seed)
    if config.init == "content":
        return content.copy()
    if config.init == "random":
        return images.generate_noise_image(content, 1.0, config.seed)
    start = images.load_image(config.init)
    start = images.resize_to(start, content.shape[2], content.shape[1])
    return images.reshape_and_normalize_image(start)


def _pixel_bounds(shape):
    """L-BFGS-B box: every pixel within [0, 255] once the means are added back."""
    low = np.broadcast_to(-images.MEANS, shape).ravel().astype(np.float64)
    return np.stack([low, low + 255.0], axis=1)


class Style:
    """A style's images and its targets, computed once per working size (what a batch caches per style)."""

    def __init__(self, style_images):
        self.images = [style_images] if isinstance(style_images, np.ndarray) else list(style_images)
        self._targets = {}

    def targets(self, model, problem, config, tile=0):
        """The problem's style targets (tiled moments if `tile`); reused unless they depend on the content."""

        def compute():
            if tile:
                return tiling.style_targets(model, problem.styles, problem.blend, config, tile)
            return style_targets(model, problem.styles, problem.blend, config)

        if config.preserve_colors != "none":  # the style images were recoloured for this content
            return compute()
        key = (
            config.width,
            config.height,
            config.style_scale,
            config.style_size,
            config.style_fit,
            config.style_blend_weights,
            tile,
        )
        if key not in self._targets:
            self._targets[key] = compute()
        return self._targets[key]


class Solver:
    """The traced steps of one image size and group size, on variables reassigned for every problem,
    so a batch traces its steps once per size, not once per pair."""

    def __init__(self, model, start, a_C, targets, config):
        self.image = tf.Variable(start, name="image")
        self.done = tf.Variable(0, dtype=tf.int64, name="iterations_done")
        self.a_C = tf.nest.map_structure(tf.Variable, a_C)
        self.targets = tf.nest.map_structure(tf.Variable, targets)
        self.cost = group_cost(model, self.a_C, self.targets, config)  # each image's (J, J_content, J_style)
        self.total = total = summed(self.cost)
        self.evaluate = tf.function(self.cost)
        self.adam = self.average = self.train_step = None
        if config.optimizer == "adam":
            self.adam = Adam(self.image, config.learning_rate)
            self.average = Average(self.image, config.ema) if config.ema else None
            self.train_step = make_train_step(total, self.image, self.adam, self.done, self.average)

        @tf.function
        def value_and_grad(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                J = total(x)[0]
            return J, tape.gradient(J, x)

        self.value_and_grad = value_and_grad

    def load(self, start, a_C, targets):
        """Start a new problem: its image, content activations and targets; the optimiser's state zeroed."""
        self.image.assign(start)
        tf.nest.map_structure(lambda v, t: v.assign(t), (self.a_C, self.targets), (a_C, targets))
        state = [self.done]
        if self.adam is not None:
            state += [self.adam.m, self.adam.v, self.adam.t]
        if self.average is not None:
            state += [self.average.sum, self.average.weight]
        for variable in state:
            variable.assign(tf.zeros_like(variable))
        return self


class Engine:
    """The optimisation's fixed parts, built once for a run, a batch or a Beam worker: VGG-19, and
    the traced steps per image size (`Solver`). `stages()` is the method contract's entry."""

    def __init__(self, config, vgg_weights):
        self.config = config.validate()
        self.weights = vgg_weights
        self.precision = precision.resolve(config.precision)  # on a Beam worker: that machine's answer
        self.model = build_vgg(vgg_weights, config.pooling, outputs=config.layers, precision=self.precision)
        self._solvers = {}

    def prepare_style(self, style_images):
        return Style(style_images)

    def solver(self, problems, a_C, targets, config):
        """The Solver for these problems' size and number, loaded with them."""
        start = np.concatenate([p.start for p in problems])
        graph = dataclasses.replace(config, width=0, height=0, init="", iterations=1, save_every=1, seed=None)
        key = (start.shape, graph)  # what the traced graph depends on
        if key not in self._solvers:
            self._solvers[key] = Solver(self.model, start, a_C, targets, config)
            return self._solvers[key]
        return self._solvers[key].load(start, a_C, targets)

    def stages(self, contents, styles, config=None, first_stage=0):
        """Coarse to fine: a Stylizer per scale of `scale_sizes(config)`, from `first_stage` on.

        Each starts from the previous one's image (`shown()`), resized, taken when the next one is
        asked for, so optimise (or restore and optimise) each before asking for the next. A stage
        whose run failed (`Progress.failure`) should end the loop: the next would start from it.

        Args:
          contents: content images (H, W, 3) uint8, optimised together.
          styles: a `Style` (from `prepare_style`) per content.
          config: this call's settings (default: the engine's); they may differ from the engine's
            only in what does not change the network (size, init, iterations, seed, ...).
        """
        config = (config or self.config).validate()
        sizes, previous = scale_sizes(config), None
        for k in range(first_stage, len(sizes)):
            sized = dataclasses.replace(config, width=sizes[k][0], height=sizes[k][1])
            sized = dataclasses.replace(sized, iterations=config.stage_iterations(k, max(sizes[k])))
            stylizer = Stylizer.on(self, contents, styles, sized, previous)
            stylizer.scale = (k, len(sizes))
            yield stylizer
            previous = stylizer.shown().numpy()


class Stylizer:
    """One stage of a style transfer: the images, the targets, the image variable and the optimiser's state.

    `steps()` runs the optimisation; `checkpoint` (a `tf.train.Checkpoint`) holds all the
    state needed to continue exactly where it stopped; `snapshot()` reports the current
    image at any moment (after an interruption, say).
    """

    def __init__(self, content_image, style_images, weights, config=Config(), start=None):
        """One content image at one size (`Engine.stages` makes the stages of runs and batches)."""
        engine = Engine(config, weights)
        self._setup(engine, [content_image], [engine.prepare_style(style_images)], config, start)

    @classmethod
    def on(cls, engine, contents, styles, config, start=None):
        """A stage on `engine` for the contents, each with its Style, optimised together."""
        stylizer = cls.__new__(cls)
        stylizer._setup(engine, contents, styles, config, start)
        return stylizer

    def _setup(self, engine, contents, styles, config, start):
        self.config = self.settings = config.validate()
        self.engine = engine
        self.problems = [prepare(c, s.images, config) for c, s in zip(contents, styles)]
        self.problem = self.problems[0]
        if start is not None:  # coarse-to-fine: the previous scale's result, resized to this one
            resized = resize_image(start, config.width, config.height)
            for i, p in enumerate(self.problems):
                p.start = resized[i : i + 1]
        self.precision = engine.precision
        self.resident = resident_bytes()  # what the process holds before the optimisation (run.json)
        p, n = self.problem, len(self.problems)
        self.tile = tile_core(config, p.content.shape[1:3], p.styles, self.precision, self.resident, n)
        if self.tile and n > 1:
            raise SettingError("images_per_batch", "must be 1 for images this large (they are tiled)", n)
        targets = [s.targets(engine.model, q, config, self.tile) for s, q in zip(styles, self.problems)]
        if self.tile:
            self.tiled = tiling.TiledCost(engine.model, p.content, targets[0], config, self.tile)
            self._own_state(config)
        else:
            self.tiled = None
            a_C = [self._content_targets(q) for q in self.problems]
            solver = engine.solver(self.problems, a_C, targets, config)
            self.solver, self.evaluate, self.cost = solver, solver.evaluate, solver.total
            self.image, self.done, self.adam, self.average = (
                solver.image,
                solver.done,
                solver.adam,
                solver.average,
            )
        state = {"image": self.image, "done": self.done}
        if self.adam is not None:
            state.update(adam_m=self.adam.m, adam_v=self.adam.v, adam_t=self.adam.t)
        if self.average is not None:
            state.update(ema_sum=self.average.sum, ema_weight=self.average.weight)
        self.checkpoint = tf.train.Checkpoint(**state)
        self.started = None
        self.scale = (0, 1)  # (index, count) in a coarse-to-fine run

    def _content_targets(self, problem):
        return content_targets(self.engine.model(tf.constant(problem.content)), self.config)

    def _own_state(self, config):
        """The tiled path's variables (its steps run eagerly, so nothing is traced to share)."""
        self.image = tf.Variable(self.problem.start, name="image")
        self.done = tf.Variable(0, dtype=tf.int64, name="iterations_done")
        self.adam = self.average = None
        if config.optimizer == "adam":
            self.adam = Adam(self.image, config.learning_rate)
            self.average = Average(self.image, config.ema) if config.ema else None

    def restore(self, prefix):
        """Load the state written by `checkpoint.write(prefix)` (Adam continues exactly)."""
        self.checkpoint.read(prefix).assert_consumed()

    def record(self):
        """Size, tiling and memory of this stage, for run.json."""
        return {
            "size": [self.config.width, self.config.height],
            "tile": self.tile,
            "resident_before_mb": self.resident / 2**20,
            "iterations_done": int(self.done),
        }

    def shown(self):
        """The image to show and save: the average of the iterates if kept, else the image."""
        return self.average.value() if self.average is not None else tf.convert_to_tensor(self.image)

    def _costs(self, image):
        """Each image's {"total", "content", "style"} (and "tv", unweighted, when `tv_weight` > 0)."""
        per = [self.tiled.costs(image.numpy())] if self.tiled else self.evaluate(image)
        found = []
        for i, (J, J_content, J_style) in enumerate(per):
            c = {"total": float(J), "content": float(J_content), "style": float(J_style)}
            if self.config.tv_weight:  # so that total = alpha content + beta style + tv_weight tv
                c["tv"] = float(tv_cost(image[i : i + 1]))
            found.append(c)
        return found

    def snapshot(self, failure=None):
        """Progress for the current state, with its costs and image (one forward pass)."""
        done = int(self.done)
        image = self.shown()
        # the costs of the image after this step, as model_nn reported them
        per_image = self._costs(image)
        elapsed = time.perf_counter() - self.started if self.started else 0.0
        x = image.numpy()
        shown = np.concatenate([p.output(x[i : i + 1]) for i, p in enumerate(self.problems)])
        return Progress.of_group(done - 1, self.config.iterations, elapsed, per_image, shown, failure)

    def _progress(self, i):
        if i % self.config.save_every == 0 or i == self.config.iterations - 1:
            return self.snapshot()
        return Progress(i, self.config.iterations, time.perf_counter() - self.started)

    def steps(self):
        """Yield Progress after each remaining step; costs and image every `save_every` and at the end."""
        self.started = time.perf_counter()
        if self.adam is not None:
            yield from self._adam_steps()
        else:
            yield from self._lbfgs_steps()

    def _offset(self, i):
        """The tile grid's offset at step i: random, seeded, the same after a resume."""
        rng = np.random.default_rng([self.config.seed or 0, i])
        return tuple(int(v) * tiling.ALIGN for v in rng.integers(0, self.tile // tiling.ALIGN, 2))

    def _tiled_step(self):
        """One Adam step with the tiled gradient; returns (J, ok) like the fused train step."""
        i = int(self.done)
        J, _, _, grad = self.tiled(self.image.numpy(), self._offset(i))
        return J, self._apply(tf.constant(J, tf.float32), tf.constant(grad))

    def _adam_steps(self):
        if self.tiled:
            self._apply = make_apply_step(self.image, self.adam, self.done, self.average)
            train_step = self._tiled_step
        else:
            train_step = self.solver.train_step
        for i in range(int(self.done), self.config.iterations):
            J, ok = train_step()
            if not bool(ok):
                failed = self.snapshot(failure=not_finite(i, J))
                failed.failure_settings = NOT_FINITE_SETTINGS
                yield failed
                return
            yield self._progress(i)

    def _lbfgs_steps(self):
        """L-BFGS-B from the current image (a resumed run starts with an empty history).

        Not in scipy's L-BFGS-B (nor in Gatys et al.): when it stalls before `iterations` (its line
        search gives up, or an iteration lowers the loss by nothing, which ftol 0 reports as
        convergence: both common with bfloat16's rounding at strong style weights), it starts again
        from where it stopped with an empty history, for as long as each new start gets past its
        first iteration; jcjohnson's torch L-BFGS has no line search to give up and always runs its
        iterations.
        """
        shape = self.image.shape
        evaluations = itertools.count()  # the tile grid moves at every evaluation

        def fun(x):
            image = x.reshape(shape).astype(np.float32)
            if self.tiled:
                J, _, _, grad = self.tiled(image, self._offset(next(evaluations)))
            else:
                J, grad = (v.numpy() for v in self.solver.value_and_grad(tf.constant(image)))
            if not np.isfinite(J):  # reject the point: the line search backs off
                return 1e30, np.zeros(x.size)
            return float(J), grad.ravel().astype(np.float64)

        again = True
        while again:
            again, first = False, int(self.done)
            x0 = self.image.numpy().ravel().astype(np.float64)
            left = self.config.iterations - first
            for k, (x, stop) in enumerate(
                lbfgs.iterates(fun, x0, _pixel_bounds(shape), left, self.config.lbfgs_history)
            ):
                self.image.assign(x.reshape(shape).astype(np.float32))
                self.done.assign(first + k + 1)
                early = first + k + 1 < self.config.iterations
                if stop is None or (early and k > 0 and STALLED.search(stop)):
                    again = stop is not None  # the line search gave up after some progress: restart
                    yield self._progress(first + k)
                    continue
                progress = self.snapshot()
                if early:  # ended early: say why
                    progress.iterations, progress.stopped = first + k + 1, stop
                yield progress


STALLED = re.compile("ABNORMAL|RELATIVE REDUCTION")  # scipy's messages for an L-BFGS-B that stalled


def resize_image(image, width, height):
    """Resize a preprocessed (1, H, W, 3) image (bicubic) to (1, height, width, 3)."""
    resized = tf.image.resize(tf.constant(image), (height, width), method="bicubic", antialias=True)
    return resized.numpy().astype(np.float32)


def scale_sizes(config, start=256):
    """The (width, height) of every scale of a coarse-to-fine run, smallest first."""
    long_side = max(config.width, config.height)
    scales = config.scales or max(1, int(np.ceil(np.log2(max(long_side / start, 1)))) + 1)
    if scales == 1:
        return [(config.width, config.height)]
    start = min(start, long_side / 2 ** (scales - 1))  # small images: 2x steps below 256 px
    factor = (long_side / start) ** (1 / (scales - 1))
    sizes = []
    for k in reversed(range(scales)):
        w, h = round(config.width / factor**k), round(config.height / factor**k)
        sizes.append((max(w, images.MIN_SIDE), max(h, images.MIN_SIDE)))
    return sizes


def stylizers(content_image, style_images, weights, config=Config(), first_scale=0):
    """Coarse to fine for one content image: `Engine.stages` on a new engine (see there).

    Yields:
      Stylizer with `scale = (k, number of scales)` and the config of its size.
    """
    engine = Engine(config, weights)
    yield from engine.stages([content_image], [engine.prepare_style(style_images)], config, first_scale)


def stylize(content_image, style_images, weights, config=Config()):
    """Optimise an image towards the content and the style(s); yield after each step.

    Args:
      content_image: (H, W, 3) uint8 RGB, any size (resized to the config's).
      style_images: one (H, W, 3) uint8 RGB array, or a list of them (blended).
      weights: VGGWeights (see `nst_tf.nets.weights.resolve_weights`).
      config: Config.

    Yields:
      Progress after each step of each scale (`config.scales`, coarse to fine, see
      `stylizers`); with costs and the image every `save_every` steps and after the last. A
      step whose loss is not finite ends the run with a Progress whose `failure` says so and
      whose image is the last good one.
    """
    for stylizer in stylizers(content_image, style_images, weights, config):
        last = None
        for last in stylizer.steps():
            yield last
        if last is None or last.failure:
            return
