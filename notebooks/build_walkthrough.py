"""Build notebooks/walkthrough.ipynb from the cells below and execute it headless with nbclient."""

import argparse
import re
import sys
import textwrap
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "walkthrough.ipynb"
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
CELL_TIMEOUT = 600  # seconds per cell

# What TensorFlow's C++ start-up writes to stderr (CUDA probing, CPU features); not kept in the render.
TF_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] .*"
    r"|To enable the following instructions: .*)$"
)

CELLS = []


def md(text):
    CELLS.append(new_markdown_cell(textwrap.dedent(text).strip()))


def code(text, tags=()):
    cell = new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    CELLS.append(cell)


md(r"""
    # Neural style transfer, step by step

    This notebook retells the deeplearning.ai assignment *Art Generation with Neural Style Transfer*
    (Gatys, Ecker & Bethge, 2015) with the `nst_tf` package. We take a **content** image $C$ and a
    **style** image $S$ and optimise the pixels of a **generated** image $G$ so that it has the content
    of $C$ and the style of $S$, as judged by a VGG-19 network trained on ImageNet.

    Every number and figure below comes from running the code. To keep each run to seconds on a CPU,
    the images are small and the runs short (first code cell); the assignment itself uses 400×300 and
    200 iterations. The images ship with the repository: Chelsea the cat (CC0) and a swirl painting drawn
    by the project (see `images/README.md`). Regenerate this notebook with
    `python notebooks/build_walkthrough.py`.
""")

code(
    r"""
    # Parameters: working size (width, height) in pixels and Adam steps of every optimisation run.
    SIZE = (128, 96)
    ITERATIONS = 40
    # WEIGHTS: path of a VGG-19 file; None = pretrained-model/imagenet-vgg-verydeep-19.mat if present,
    # else the embedded default (fetched once with pip).
    WEIGHTS = None
    """,
    tags=["parameters"],
)

code(r'''
    import subprocess
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    from matplotlib.colors import PowerNorm

    from nst_tf import costs, images
    from nst_tf.methods.gatys.optimize import Config, stylize
    from nst_tf.nets.vgg import build_vgg
    from nst_tf.nets.weights import resolve_weights

    plt.rcParams.update({"figure.dpi": 72, "font.size": 9, "image.interpolation": "nearest"})
    WIDTH, HEIGHT = SIZE
    SAVE_EVERY = max(1, ITERATIONS // 20)  # record the costs and the image every SAVE_EVERY steps


    def picture(image):
        """uint8 (H, W, 3) for display; a preprocessed (1, H, W, 3) image is deprocessed first."""
        return images.deprocess(image) if np.ndim(image) == 4 else image


    def show_row(pictures, titles, width=2.4):
        """Images side by side, each with its title."""
        size = (width * len(pictures), width * HEIGHT / WIDTH + 0.6)
        fig, axes = plt.subplots(1, len(pictures), figsize=size)
        for ax, image, title in zip(np.atleast_1d(axes), pictures, titles):
            ax.imshow(picture(image))
            ax.set_title(title)
            ax.axis("off")
        plt.show()


    weights = resolve_weights(WEIGHTS, pip_output=subprocess.DEVNULL)
    print(f"VGG-19 weights: {weights.source} ({Path(weights.path).name})")
''')

code(r"""
    IMAGES = Path("..", "images")  # the notebook runs from notebooks/
    content_uint8 = images.resize_to(images.load_image(IMAGES / "chelsea.jpg"), WIDTH, HEIGHT)
    style_uint8 = images.resize_to(images.load_image(IMAGES / "swirls.jpg"), WIDTH, HEIGHT)
    # The assignment's preprocessing: add a batch axis and subtract VGG's RGB means.
    content_image = images.reshape_and_normalize_image(content_uint8)
    style_image = images.reshape_and_normalize_image(style_uint8)
    print("content", content_uint8.shape, "->", content_image.shape, "  means", images.MEANS.ravel())
    show_row([content_uint8, style_uint8], ["content C", "style S"])
""")

md(r"""
    ## 1. What the layers of VGG-19 see

    VGG-19 is used as a fixed feature extractor: its weights never change, only the pixels of $G$ do.
    `build_vgg(weights)` (the assignment's `load_vgg_model`) returns a Keras model whose output is a dict
    of 22 activations, `input`, `conv1_1`, …, `avgpool5`. Each pooling halves the resolution while the
    number of channels grows from 64 to 512.

    Shallow layers respond to colours, edges and fine texture at full resolution; deeper layers respond
    to larger, more complex patterns on a coarse grid. Below, for three layers, the six channels most
    active on the cat.
""")

code(r"""
    model = build_vgg(weights)  # average pooling, as in the assignment
    content_outputs = model(content_image)
    for name in ("input", "conv1_1", "conv3_1", "conv5_1", "avgpool5"):
        print(f"{name:9s} {tuple(content_outputs[name].shape)}")
""")

code(r'''
    def feature_grid(outputs, layers, n_channels=6):
        """For each layer, its n_channels most active channels as images."""
        fig, axes = plt.subplots(len(layers), n_channels, figsize=(1.7 * n_channels, 1.5 * len(layers)))
        for row, name in zip(axes, layers):
            maps = outputs[name][0].numpy()  # (n_H, n_W, n_C)
            strongest = np.argsort(maps.mean(axis=(0, 1)))[::-1][:n_channels]
            for ax, channel in zip(row, strongest):
                ax.imshow(maps[:, :, channel], cmap="magma")
                ax.set_title(f"{name} #{channel}", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
        fig.tight_layout()
        plt.show()


    feature_grid(content_outputs, ["conv1_1", "conv3_1", "conv5_1"])
''')

md(r"""
    ## 2. The content cost

    $G$ should have the same content as $C$: its activations at one middle layer,
    `costs.CONTENT_LAYER` = `conv4_2`, should match. With $a^{(C)}$ and $a^{(G)}$ the $(1, n_H, n_W, n_C)$
    activations of that layer,

    $$J_{content}(C,G) = \frac{1}{4 \times n_H \times n_W \times n_C}\sum_{\text{all entries}}
    \left(a^{(C)} - a^{(G)}\right)^2$$

    The optimisation starts from $G$ = the content image blended with uniform noise
    (`generate_noise_image`, 60 % noise in the assignment), so the content cost starts small but not zero;
    it is exactly zero for $G = C$ and large for an unrelated image such as $S$.
""")

code(r"""
    generated_image = images.generate_noise_image(content_image, noise_ratio=0.6, seed=1)
    generated_outputs = model(generated_image)
    style_outputs = model(style_image)

    a_C = content_outputs[costs.CONTENT_LAYER]  # (1, n_H, n_W, n_C)
    a_G = generated_outputs[costs.CONTENT_LAYER]
    print(costs.CONTENT_LAYER, tuple(a_C.shape))
    J_content = costs.compute_content_cost(a_C, a_G)
    print(f"J_content(C, G) = {float(J_content):10.1f}   G = 60 % noise + 40 % content")
    print(f"J_content(C, C) = {float(costs.compute_content_cost(a_C, a_C)):10.1f}")
    J_content_S = costs.compute_content_cost(a_C, style_outputs[costs.CONTENT_LAYER])
    print(f"J_content(C, S) = {float(J_content_S):10.1f}   the style image in the place of G")
    show_row([content_image, generated_image, style_image], ["C", "G at the start", "S"])
""")

md(r"""
    ## 3. The Gram matrix: which channels fire together

    Style is captured by *correlations* between the channels of a layer. Unroll the activations of a layer
    into $A$ of shape $(n_C, n_H n_W)$, one row $v_i$ per channel; the Gram matrix is

    $$\mathbf{G}_{gram} = \mathbf{A}\mathbf{A}^T, \qquad G_{(gram)i,j} = v_i^T v_j$$

    $G_{(gram)i,j}$ is large when channels $i$ and $j$ are active at the same places: e.g. if one detects
    blue and another curved strokes, a large value says "blue strokes curve". The diagonal $G_{(gram)i,i}$
    says how active channel $i$ is overall. All positions are summed over, so *where* things happen is
    lost: that is what makes it a description of style rather than of content.
""")

code(r'''
    GRAM_LAYER = "conv1_1"


    def unrolled(a):
        """(1, n_H, n_W, n_C) -> (n_C, n_H * n_W): one row per channel, as the assignment unrolls it."""
        _, n_H, n_W, n_C = a.shape
        return tf.transpose(tf.reshape(a, [n_H * n_W, n_C]))


    G_S = costs.gram_matrix(unrolled(style_outputs[GRAM_LAYER])).numpy()  # (n_C, n_C)
    G_C = costs.gram_matrix(unrolled(content_outputs[GRAM_LAYER])).numpy()
    print(GRAM_LAYER, "Gram matrix", G_S.shape)

    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6))
    norm = PowerNorm(0.5, vmin=0, vmax=max(G_S.max(), G_C.max()))  # square-root colour scale
    for ax, gram, name in zip(axes, [G_S, G_C], ["S", "C"]):
        shown = ax.imshow(gram, cmap="viridis", norm=norm)
        ax.set_title(f"Gram matrix of {GRAM_LAYER} on {name}")
        ax.set_xlabel("channel j")
        ax.set_ylabel("channel i")
    fig.colorbar(shown, ax=axes, shrink=0.8)
    plt.show()
''')

md(r"""
    The two images give different Gram matrices: that difference is what the style cost measures.
    To see the "fire together" intuition, normalise each Gram matrix to cosines,
    $G_{(gram)i,j} / \sqrt{G_{(gram)i,i}\, G_{(gram)j,j}}$: 1 when channels $i$ and $j$ fire in proportion
    everywhere, 0 when they never fire at the same place. Below, the pair of channels whose cosine differs
    most between $S$ and $C$, and the pair that fires most apart on $S$, each channel drawn on both images
    on one colour scale.
""")

code(r'''
    def cosines(gram):
        """G_ij / sqrt(G_ii G_jj), the Gram matrix normalised channel by channel."""
        norms = np.sqrt(np.diag(gram))
        return gram / np.maximum(np.outer(norms, norms), 1e-12)


    cos_S, cos_C = cosines(G_S), cosines(G_C)
    fires = np.diag(G_S) > 1e-6 * np.diag(G_S).max()  # channels active on S
    pairs = np.outer(fires, fires) & ~np.eye(len(G_S), dtype=bool)
    together = np.unravel_index(np.argmax(np.where(pairs, cos_S - cos_C, -np.inf)), G_S.shape)
    apart = np.unravel_index(np.argmin(np.where(pairs, cos_S, np.inf)), G_S.shape)
    for (i, j), role in [(together, "together"), (apart, "apart")]:
        print(f"channels {i:2d} and {j:2d} ({role}): cosine {cos_S[i, j]:.2f} on S, {cos_C[i, j]:.2f} on C")

    maps = {"S": style_outputs[GRAM_LAYER][0].numpy(), "C": content_outputs[GRAM_LAYER][0].numpy()}
    shown = [(int(c), "together") for c in together] + [(int(c), "apart") for c in apart]
    fig, axes = plt.subplots(2, 5, figsize=(11, 3.8))
    for row, (name, image) in zip(axes, [("S", style_uint8), ("C", content_uint8)]):
        row[0].imshow(image)
        row[0].set_title(name)
        for ax, (channel, role) in zip(row[1:], shown):
            top = max(maps["S"][:, :, channel].max(), maps["C"][:, :, channel].max())
            ax.imshow(maps[name][:, :, channel], cmap="magma", vmin=0, vmax=top)
            ax.set_title(f"#{channel} ({role}) on {name}")
    for ax in axes.flat:
        ax.axis("off")
    plt.show()
''')

md(r"""
    ## 4. The style cost, layer by layer

    For one layer, the style cost compares the Gram matrices of $S$ and $G$:

    $$J_{style}^{[l]}(S,G) = \frac{1}{4 \times {n_C}^2 \times (n_H \times n_W)^2}
    \sum_{i=1}^{n_C}\sum_{j=1}^{n_C}
    \left(G^{(S)}_{(gram)i,j} - G^{(G)}_{(gram)i,j}\right)^2$$

    and the style cost merges several layers with weights $\lambda^{[l]}$
    (`costs.STYLE_LAYERS`: `conv1_1` … `conv5_1`, 0.2 each):

    $$J_{style}(S,G) = \sum_{l} \lambda^{[l]} J^{[l]}_{style}(S,G)$$

    Here for $G$ the noisy start image:
""")

code(r"""
    terms = costs.style_cost_terms(style_outputs, generated_outputs, costs.STYLE_LAYERS)  # {layer: λ J^[l]}
    J_style = costs.compute_style_cost(style_outputs, generated_outputs, costs.STYLE_LAYERS)
    header = ("layer", "n_H x n_W x n_C", "λ", "J_style^[l]", "λ J_style^[l]", "share")
    print("{:8s} {:>16s} {:>4s} {:>12s} {:>14s} {:>7s}".format(*header))
    for name, coeff in costs.STYLE_LAYERS:
        a_S, a_G = style_outputs[name], generated_outputs[name]
        J_layer = float(costs.compute_layer_style_cost(a_S, a_G))
        dims = "x".join(str(n) for n in a_S.shape[1:])
        share = float(terms[name] / J_style)
        print(f"{name:8s} {dims:>16s} {coeff:4.1f} {J_layer:12.4g} {float(terms[name]):14.4g} {share:7.2%}")
    print(f"J_style(S, G) = {float(J_style):.4g}")
    print(f"J_style(S, S) = {float(costs.compute_style_cost(style_outputs, style_outputs)):.4g}")
""")

md(r"""
    Equal weights $\lambda^{[l]}$ do not give the layers an equal say: the raw layer costs differ by
    orders of magnitude (the normalisation depends on $n_C$ and $n_H n_W$, and deeper activations are
    larger), so a few layers dominate the sum (the *share* column).

    ## 5. The total cost

    $$J(G) = \alpha J_{content}(C,G) + \beta J_{style}(S,G)$$

    with the assignment's $\alpha = 10$, $\beta = 40$ (`Config()`'s defaults):
""")

code(r"""
    ALPHA, BETA = Config().alpha, Config().beta
    J = costs.total_cost(J_content, J_style, alpha=ALPHA, beta=BETA)
    print(f"J(G) = {ALPHA:g} x {float(J_content):.4g} + {BETA:g} x {float(J_style):.4g} = {float(J):.4g}")
    print(f"style term / content term = {BETA * float(J_style) / (ALPHA * float(J_content)):.2g}")
    beta_balanced = ALPHA * float(J_content) / float(J_style)
    print(f"the beta that would make both terms equal at the start: {beta_balanced:.2g}")
""")

md(r"""
    At the start the style term outweighs the content term by orders of magnitude, so the first steps are
    almost all about style; the content cost, small at the start, grows as $G$ drifts away from $C$
    and holds it back.

    ## 6. Optimising the image

    The assignment's `model_nn`: start from the noisy image and take Adam steps (learning rate 2.0, on
    pixel values in the 0–255 range) on the pixels of $G$ to lower $J(G)$. `stylize()` does this and
    yields a `Progress` after each step, with the costs and the image every `save_every` steps.
""")

code(r'''
    def run(**changes):
        """One stylize() run at the notebook's size; the Progress of every recorded step."""
        config = Config(width=WIDTH, height=HEIGHT, iterations=ITERATIONS, save_every=SAVE_EVERY, **changes)
        return [p for p in stylize(content_uint8, style_uint8, weights, config) if p.costs]


    baseline = run()  # the assignment's settings
    seconds = baseline[-1].elapsed
    print(f"{ITERATIONS} steps in {seconds:.1f} s ({1000 * seconds / ITERATIONS:.0f} ms a step)")
    print(f"{'iteration':>9s} {'total':>10s} {'content':>10s} {'style':>10s}")
    picks = sorted(set(np.linspace(0, len(baseline) - 1, 5).round().astype(int)))
    for p in (baseline[k] for k in picks):
        c = p.costs
        print(f"{p.iteration:9d} {c['total']:10.4g} {c['content']:10.4g} {c['style']:10.4g}")
    show_row(
        [content_uint8] + [baseline[k].image for k in picks] + [style_uint8],
        ["C"] + [f"iteration {baseline[k].iteration}" for k in picks] + ["S"],
        width=2.0,
    )
''')

code(r"""
    steps = [p.iteration for p in baseline]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(steps, [p.costs["total"] for p in baseline], label=r"total $J$")
    ax.plot(steps, [ALPHA * p.costs["content"] for p in baseline], label=r"$\alpha J_{content}$")
    ax.plot(steps, [BETA * p.costs["style"] for p in baseline], "--", label=r"$\beta J_{style}$")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost (log scale)")
    ax.legend()
    plt.show()
""")

md(r"""
    The total cost falls, driven by the style term, while the content term grows from its small starting
    value as the image leaves the start point. The images show the swirls' strokes and colours
    appearing over the cat, whose eyes and outline survive.

    ## 7. What the settings do

    Short runs side by side, each changing one of the assignment's settings; the run marked *(assignment)*
    is the one above. The titles give the final unweighted costs $J_{content}$ (Jc) and $J_{style}$ (Js).
""")

code(r'''
    def compare(variants, curves=False):
        """Run each variant ({label: Config changes}, None = the baseline); show final images (and costs)."""
        results = {label: run(**changes) if changes else baseline for label, changes in variants.items()}
        n = len(results) + curves
        fig, axes = plt.subplots(1, n, figsize=(2.6 * n + curves, 2.6 * HEIGHT / WIDTH + 0.9))
        for ax, (label, saved) in zip(axes, results.items()):
            ax.imshow(picture(saved[-1].image))
            ax.set_title(f"{label}\nJc {saved[-1].costs['content']:.3g}, Js {saved[-1].costs['style']:.3g}")
            ax.axis("off")
            if curves:
                axes[-1].plot([p.iteration for p in saved], [p.costs["total"] for p in saved], label=label)
        if curves:
            axes[-1].set(yscale="log", xlabel="iteration", title="total cost (log scale)")
            axes[-1].legend(fontsize=7)
        fig.tight_layout()
        plt.show()
''')

md(r"""
    ### α and β

    Only the ratio $\alpha/\beta$ matters (Adam scales its steps by the size of the gradient, so multiplying
    the whole cost by a constant changes nothing), and with the assignment's values the style term is orders
    of magnitude larger. So to see content win, β has to fall by orders of magnitude: to the value that
    balances the two terms at the start (section 5), and ten times that.
""")

code(r"""
    compare(
        {
            f"beta = {beta_balanced:.1g} (balanced)": {"beta": beta_balanced},
            f"beta = {10 * beta_balanced:.1g}": {"beta": 10 * beta_balanced},
            f"beta = {BETA:g} (assignment)": None,
        }
    )
""")

md(r"""
    ### Which layers define the style

    Style taken from `conv1_1` alone matches colours and fine grain; from `conv5_1` alone it matches large,
    complex patterns but not the palette. The assignment blends `conv1_1` … `conv5_1`.
""")

code(r"""
    compare(
        {
            "style: conv1_1 only": {"style_layers": (("conv1_1", 1.0),)},
            "conv1_1 ... conv5_1 (assignment)": None,
            "style: conv5_1 only": {"style_layers": (("conv5_1", 1.0),)},
        }
    )
""")

md(r"""
    ### The starting image

    `noise_ratio` is the share of noise in the starting image: 0 starts from the content image itself,
    1 from pure noise, where the content has to be rebuilt by the content cost alone.
""")

code(r"""
    compare(
        {
            "noise_ratio 0": {"noise_ratio": 0.0},
            "noise_ratio 0.6 (assignment)": None,
            "noise_ratio 1": {"noise_ratio": 1.0},
        },
        curves=True,
    )
""")

md(r"""
    ### The learning rate

    With Adam, the learning rate is roughly how far each pixel value (0–255) may move per step: too small
    and the image has barely changed after a short run; larger values lower the cost faster at first,
    with harsher colours.
""")

code(r"""
    compare(
        {
            "learning rate 0.5": {"learning_rate": 0.5},
            "learning rate 2 (assignment)": None,
            "learning rate 8": {"learning_rate": 8.0},
        },
        curves=True,
    )
""")

md(r"""
    ## Next

    The same optimisation at the assignment's size and length, writing `output/0.png`, `output/20.png`, …,
    `output/generated_image.jpg` and `output/costs.csv`:

    ```
    python -m nst_tf.run --content chelsea.jpg --style swirls.jpg
    ```

    Try your own images, `--alpha`/`--beta`, `--noise_ratio`, `--learning_rate` or `--pooling max`.
""")


def make_notebook():
    """The walkthrough with empty outputs."""
    nb = new_notebook(cells=[nbformat.from_dict(cell) for cell in CELLS])
    for number, cell in enumerate(nb.cells):
        cell.id = f"walkthrough-{number:02d}"  # stable ids keep the committed diffs small
    nb.metadata["kernelspec"] = dict(KERNEL)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def inject_parameters(nb, **values):
    """Insert a cell overriding parameters right after the cell tagged "parameters" (as papermill does)."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "# Injected parameters\n" + "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = new_code_cell(source, id="injected-parameters")
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)
    return nb


def strip_tensorflow_log(nb):
    """Drop TensorFlow's C++ start-up lines from stderr outputs; other output is kept."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                lines = output.text.splitlines(keepends=True)
                output.text = "".join(line for line in lines if not TF_LOG_LINE.match(line.rstrip("\n")))
        cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and not o.text)]
    return nb


def execute(nb, cwd=HERE, timeout=CELL_TIMEOUT):
    """Run every cell in a fresh kernel started in `cwd`; raises CellExecutionError on an error."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL["name"], record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )  # fmt: skip
    client.execute()
    return strip_tensorflow_log(nb)


def figures(nb):
    """Number of PNG figures in the outputs."""
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def parse_size(text):
    width, height = (int(n) for n in text.lower().split("x"))
    return width, height


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=NOTEBOOK, help=f"default: {NOTEBOOK}")
    parser.add_argument("--size", type=parse_size, help="override SIZE, e.g. 64x48 (needs --output)")
    parser.add_argument("--iterations", type=int, help="override ITERATIONS (needs --output)")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("SIZE", args.size), ("ITERATIONS", args.iterations)) if v is not None}
    if overrides and args.output.resolve() == NOTEBOOK:
        parser.error("the committed notebook is rendered at the defaults; give --output with overrides")
    nb = make_notebook()
    if overrides:
        inject_parameters(nb, **overrides)
    if not args.no_execute:
        start = time.perf_counter()
        execute(nb, timeout=args.timeout)
        print(f"executed in {time.perf_counter() - start:.0f} s, {figures(nb)} figures", file=sys.stderr)
    nbformat.validate(nb)
    nbformat.write(nb, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
