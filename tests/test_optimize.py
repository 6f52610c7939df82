import dataclasses
import hashlib
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import EPS32

from nst_tf import costs, images
from nst_tf.cli import flags as cli_flags
from nst_tf.errors import SettingError
from nst_tf.methods.gatys.optimize import Adam, Config, Stylizer, stylize
from nst_tf.nets.vgg import build_vgg

CONTENT = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
STYLE = np.random.default_rng(1).integers(0, 256, (50, 50, 3), dtype=np.uint8)
SMALL = Config(width=64, height=48, iterations=5, save_every=2)


def test_adam_is_tf1_adam_with_epsilon_1e_8():
    x_ours = tf.Variable([1.0, -2.0, 3.0])
    x_keras = tf.Variable([1.0, -2.0, 3.0])
    ours = Adam(x_ours, 0.1)
    keras = tf.keras.optimizers.Adam(0.1, epsilon=1e-8)
    for _ in range(5):
        for x, apply in (
            (x_ours, lambda g, x: ours.apply(g, x)),
            (x_keras, lambda g, x: keras.apply([g], [x])),
        ):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(x**4)
            apply(tape.gradient(loss, x), x)
    # the same update written in another order: a few float32 roundings of |x| per step, 5 steps
    np.testing.assert_allclose(x_ours.numpy(), x_keras.numpy(), rtol=0, atol=5 * 8 * EPS32 * 3.0)


def reference_costs(image, content, style, layers, config):
    model = build_vgg(layers)
    a_G, a_C, a_S = model(image), model(content), model(style)
    ((layer, _),) = config.content_layers
    J_content = costs.compute_content_cost(a_C[layer], a_G[layer])
    J_style = costs.compute_style_cost(a_S, a_G, config.style_layers)
    return costs.total_cost(J_content, J_style, config.alpha, config.beta), J_content, J_style


def test_stylize_follows_model_nn(tiny):
    """Costs reported at i are those of the image after step i+1; the first Adam step is lr * sign(grad)."""
    progress = list(stylize(CONTENT, STYLE, tiny, SMALL))
    assert [p.iteration for p in progress] == [0, 1, 2, 3, 4]
    assert [p.costs is not None for p in progress] == [True, False, True, False, True]
    assert progress[-1].is_last and progress[-1].image.shape == (1, 48, 64, 3)
    assert progress[-1].elapsed >= progress[0].elapsed > 0

    content = images.reshape_and_normalize_image(images.resize_to(CONTENT, 64, 48))
    style = images.reshape_and_normalize_image(images.resize_to(STYLE, 64, 48))
    start = tf.Variable(images.generate_noise_image(content, SMALL.noise_ratio, SMALL.seed))
    with tf.GradientTape() as tape:
        J = reference_costs(start, content, style, tiny, SMALL)[0]
    grad = tape.gradient(J, start).numpy()
    after_first = start.numpy() - SMALL.learning_rate * np.sign(grad)
    moved = np.abs(grad) > 1e-3 * np.abs(grad).max()  # where Adam's epsilon is negligible
    np.testing.assert_allclose(progress[0].image[moved], after_first[moved], atol=1e-3)
    for p in (progress[0], progress[-1]):
        want = [float(v) for v in reference_costs(p.image, content, style, tiny, SMALL)]
        got = [p.costs[k] for k in ("total", "content", "style")]
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_same_seed_same_result_and_other_seed_differs(tiny):
    config = dataclasses.replace(SMALL, iterations=3)
    a = list(stylize(CONTENT, STYLE, tiny, config))[-1].image
    b = list(stylize(CONTENT, STYLE, tiny, config))[-1].image
    c = list(stylize(CONTENT, STYLE, tiny, dataclasses.replace(config, seed=2)))[-1].image
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "change,flag",
    [
        ({"iterations": 0}, "--iterations"),
        ({"iterations": -5}, "--iterations"),
        ({"save_every": 0}, "--save_every"),
        ({"learning_rate": -1.0}, "--learning_rate"),
        ({"width": 0}, "--width"),
        ({"height": 8}, "--height"),
        ({"noise_ratio": 1.5}, "--noise_ratio"),
        ({"alpha": float("nan")}, "--alpha"),
        ({"pooling": "median"}, "--pooling"),
        ({"content_layers": (("conv9_9", 1.0),)}, "--content_layers: unknown VGG-19 layer 'conv9_9'"),
        ({"style_layers": ()}, "--style_layers"),
        ({"optimizer": "sgd"}, "--optimizer"),
        ({"init": "nowhere.png"}, "--init"),
        ({"preserve_colors": "some"}, "--preserve_colors"),
        ({"style_loss": "l1"}, "--style_loss"),
        ({"ema": 1.0}, "--ema"),
        ({"tv_weight": -1.0}, "--tv_weight"),
        ({"style_scale": 0.0}, "--style_scale"),
        ({"style_blend_weights": (0.0, 0.0)}, "--style_blend_weights"),
    ],
)
def test_bad_settings_name_their_flag(change, flag):
    """The library names the setting; the command line shows it as its flag."""
    with pytest.raises(SettingError) as error:
        dataclasses.replace(Config(), **change).validate()
    assert flag.startswith(f"--{error.value.setting}") and str(error.value).startswith(flag[2:])
    assert cli_flags.flag_message(error.value).startswith(flag)


def test_defaults_are_the_assignments():
    c = Config()
    assert (c.iterations, c.save_every, c.learning_rate, c.alpha, c.beta) == (200, 20, 2.0, 10, 40)
    assert (c.noise_ratio, c.width, c.height, c.pooling) == (0.6, 400, 300, "avg")
    assert c.content_layers == (("conv4_2", 1.0),)
    assert (c.optimizer, c.init, c.tv_weight, c.style_loss, c.preserve_colors, c.ema) == (
        "adam",
        "noise",
        0,
        "gram",
        "none",
        0,
    )
    assert list(c.style_layers) == costs.STYLE_LAYERS


@pytest.mark.parametrize("tile_size", [0, 32])
def test_reported_costs_add_up_with_the_tv_term(tiny, tile_size):
    """With --tv_weight the report has the TV term too: total = alpha content + beta style + w tv."""
    rng = np.random.default_rng(7)
    content, style = (rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(2))
    config = Config(width=56, height=40, iterations=2, save_every=1, tv_weight=1e-3, tile_size=tile_size)
    for p in Stylizer(content, style, tiny, config).steps():
        c = p.costs
        want = config.alpha * c["content"] + config.beta * c["style"] + config.tv_weight * c["tv"]
        assert c["tv"] > 0 and c["total"] == pytest.approx(want, rel=1e-5)
    plain = Config(width=56, height=40, iterations=1)
    assert "tv" not in list(Stylizer(content, style, tiny, plain).steps())[0].costs


def test_style_strength_multiplies_the_style_weight_and_keeps_old_hashes(tiny):
    from nst_tf.app import batch

    stronger = Stylizer(CONTENT, STYLE, tiny, dataclasses.replace(SMALL, style_strength=2.5))
    same = Stylizer(CONTENT, STYLE, tiny, dataclasses.replace(SMALL, beta=SMALL.beta * 2.5))
    x = tf.constant(stronger.problem.start)
    J, J_content, J_style = (float(v) for v in stronger.cost(x))
    assert J == float(same.cost(x)[0])
    np.testing.assert_allclose(J, SMALL.alpha * J_content + SMALL.beta * 2.5 * J_style, rtol=1e-6)
    with pytest.raises(SettingError, match="style_strength=-1"):
        dataclasses.replace(SMALL, style_strength=-1.0).validate()
    digest = lambda c: batch.settings_hash(c, "w", "c", "s", "jpg")  # noqa: E731
    assert digest(SMALL) != digest(dataclasses.replace(SMALL, style_strength=2.0))
    # the hash as it was computed before precision, style_strength, style_fit and refine_iterations
    # existed: older manifests keep theirs
    newer = (
        "save_every",
        "precision",
        "style_strength",
        "style_fit",
        "refine_iterations",
        "style_size",
        "content_loss",
        "refine_size",
    )
    old = {k: v for k, v in dataclasses.asdict(SMALL).items() if k not in newer}
    record = {"config": old, "weights": "w", "content": "c", "style": "s", "format": "jpg"}
    assert (
        digest(SMALL)
        == hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
    )
