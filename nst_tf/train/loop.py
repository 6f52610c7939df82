"""The training loop every fast method shares: Adam on a task's network, over seeded batches, in one
`tf.train.Checkpoint` (network, optimiser, the batch iterator's position, steps done), so that a
resumed run takes exactly the steps an uninterrupted one would. Nothing here writes files."""

import dataclasses
import math
import time

import numpy as np
import tensorflow as tf

from nst_tf import images
from nst_tf.data import pipeline
from nst_tf.errors import SettingsMentionedError


@dataclasses.dataclass
class Step:
    """What the loop yields after each Adam step.

    Attributes:
      iteration: steps done so far, this one included (1-based), over every session of the run.
      iterations: steps the run goes to.
      losses: {name: float} of this step's batch (names: the task's `cost_names`).
      seconds: this step's time.
      elapsed: seconds since this session's first step started.
      first: this session's first step (its time includes tracing the step).
    """

    iteration: int
    iterations: int
    losses: dict
    seconds: float
    elapsed: float
    first: bool = False


class Trainer:
    """A task, Adam and the batches of `options.data`; `steps()` trains, `checkpoint` holds the state."""

    def __init__(self, task, options):
        self.task, self.options = task, options
        self.variables = task.network.trainable_variables
        rate = options.learning_rate  # lr / (1 + lr_decay t), t: the optimiser's steps (checkpointed)
        if options.lr_decay:
            rate = tf.keras.optimizers.schedules.InverseTimeDecay(rate, 1, options.lr_decay)
        self.optimizer = tf.keras.optimizers.Adam(rate)
        self.optimizer.build(self.variables)  # its slots exist before a restore
        self.done = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps_done")
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="training_seconds")
        crop = options.crop
        streams = [  # a batch of each kind the task trains on (photos; AdaIN: and styles) a step
            pipeline.batches(
                options.data,
                kind,
                "train",
                options.batch_size,
                crop,
                (crop, 2 * crop),
                options.seed + i,
                hue=options.style_hue if kind == "style" else 0.0,
            )
            for i, kind in enumerate(getattr(task, "data_kinds", ("photo",)))
        ]
        data = streams[0] if len(streams) == 1 else tf.data.Dataset.zip(tuple(streams))
        symbolic = tf.data.Options()
        symbolic.experimental_symbolic_checkpoint = True  # the state saves positions, not buffered images
        self.batches = iter(data.with_options(symbolic))
        self.checkpoint = tf.train.Checkpoint(
            network=task.network,
            optimizer=self.optimizer,
            batches=self.batches,
            done=self.done,
            seconds=self.seconds,
        )
        self._update = tf.function(self.update)

    def update(self, batch):
        """One Adam step on a batch of (n, crop, crop, 3) RGB 0-255 images (a tuple of them, one per
        `task.data_kinds`); returns the losses."""
        batch = batch if isinstance(batch, tuple) else (batch,)
        with tf.GradientTape() as tape:
            losses = self.task.losses(*(b - images.MEANS for b in batch))
        gradients = tape.gradient(losses["total"], self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        self.done.assign_add(1)
        return losses

    def restore(self, prefix):
        """Continue from the state saved at `prefix` (`checkpoint.write`)."""
        self.checkpoint.read(prefix).assert_existing_objects_matched()

    def steps(self):
        """Train up to `options.iterations` steps, yielding a `Step` after each.

        Raises:
          SettingsMentionedError: a loss is not finite (naming learning_rate, the likely cause).
        """
        start, first = time.perf_counter(), True
        while int(self.done) < self.options.iterations:
            tick = time.perf_counter()
            losses = {name: float(value) for name, value in self._update(next(self.batches)).items()}
            seconds = time.perf_counter() - tick
            self.seconds.assign_add(seconds)
            done = int(self.done)
            if not all(math.isfinite(v) for v in losses.values()):
                why = f"the loss is {losses['total']} at step {done}: the network diverged"
                raise SettingsMentionedError(
                    f"{why}; lower learning_rate and start again", ("learning_rate",)
                )
            yield Step(done, self.options.iterations, losses, seconds, time.perf_counter() - start, first)
            first = False

    def reconstruct(self, x):
        """The task's reconstruction of (n, H, W, 3) images minus means, as numpy."""
        return np.asarray(self.task.reconstruct(tf.convert_to_tensor(x, tf.float32)))
