"""Torch side of the step benchmark: the pytorch.org NST tutorial (Adam) and pastiche, timed per step.

Run by `bench_step.py` with the torch interpreter (see `setup.sh`); it never imports TensorFlow
or nst_tf. Inputs come through files in a temporary folder: `weights.npz` (VGG-19 convs in
torch layout `(out, in, kh, kw)`, for RGB input in 0-255 minus the ImageNet means) and
`content_WxH.png`, `style_WxH.png` at each benchmarked size. Results go to a JSON file.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import contention
import numpy as np
import timing
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

MEANS = (123.68, 116.779, 103.939)  # RGB means the canonical weights expect (0-255 scale)
VGG19_CFG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)
CONV_NAMES = tuple(
    f"conv{b}_{c}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for c in range(1, n + 1)
)

# The tutorial's own layer choice, in its sequential numbering: conv_4 = conv2_2, conv_5 = conv3_1.
TUTORIAL_LAYERS = (["conv_4"], ["conv_1", "conv_2", "conv_3", "conv_4", "conv_5"])
# The assignment's layers in the same numbering: conv4_2 content; conv1_1, 2_1, 3_1, 4_1, 5_1 style.
DEEP_LAYERS = (["conv_10"], ["conv_1", "conv_3", "conv_5", "conv_9", "conv_13"])
PEERS = ("torch-tutorial", "torch-tutorial-deep", "pastiche")


def log(message):
    print(f"[torch] {message}", file=sys.stderr, flush=True)


# --- the pytorch.org tutorial, as written there (LBFGS swapped for Adam) ----------------------


class ContentLoss(nn.Module):
    """The tutorial's transparent content-loss layer: records the MSE to a fixed target."""

    def __init__(self, target):
        super().__init__()
        self.target = target.detach()

    def forward(self, input):
        self.loss = F.mse_loss(input, self.target)
        return input


def gram_matrix(input):
    """The tutorial's Gram matrix, normalised by the number of elements."""
    a, b, c, d = input.size()
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):
    """The tutorial's transparent style-loss layer: records the MSE between Gram matrices."""

    def __init__(self, target_feature):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input):
        G = gram_matrix(input)
        self.loss = F.mse_loss(G, self.target)
        return input


class Normalization(nn.Module):
    """The tutorial's `(img - mean) / std`; here mean = MEANS/255, std = 1/255 (caffe-style weights)."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, img):
        return (img - self.mean) / self.std


def vgg19_features(weights):
    """torchvision's `vgg19().features` (convs, in-place ReLUs, 2x2 max pools), with the given weights.

    Args:
      weights: mapping `convB_C_W` -> (out, in, 3, 3) and `convB_C_b` -> (out,) float32 arrays.

    Returns:
      nn.Sequential in eval mode.
    """
    layers, in_channels, names = [], 3, iter(CONV_NAMES)
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
        name = next(names)
        conv.weight.data = torch.from_numpy(np.ascontiguousarray(weights[f"{name}_W"]))
        conv.bias.data = torch.from_numpy(np.ascontiguousarray(weights[f"{name}_b"]))
        layers += [conv, nn.ReLU(inplace=True)]
        in_channels = v
    return nn.Sequential(*layers).eval()


def get_style_model_and_losses(cnn, mean, std, style_img, content_img, content_layers, style_layers):
    """The tutorial's model builder: loss layers inserted after the named convs, the rest cut off."""
    normalization = Normalization(mean, std)
    content_losses, style_losses = [], []
    model = nn.Sequential(normalization)
    i = 0
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = f"conv_{i}"
        elif isinstance(layer, nn.ReLU):
            name = f"relu_{i}"
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = f"pool_{i}"
        else:
            raise RuntimeError(f"Unrecognized layer: {layer.__class__.__name__}")
        model.add_module(name, layer)
        if name in content_layers:
            content_loss = ContentLoss(model(content_img).detach())
            model.add_module(f"content_loss_{i}", content_loss)
            content_losses.append(content_loss)
        if name in style_layers:
            style_loss = StyleLoss(model(style_img).detach())
            model.add_module(f"style_loss_{i}", style_loss)
            style_losses.append(style_loss)
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], (ContentLoss, StyleLoss)):
            break
    return model[: i + 1], style_losses, content_losses


def tutorial_step_fn(weights, content_img, style_img, layers, style_weight=1e6, content_weight=1):
    """The tutorial's `run_style_transfer` set-up and closure, with Adam(lr=0.02) for LBFGS.

    Returns:
      A function taking one optimisation step (forward, backward to the image, Adam update).
    """
    content_layers, style_layers = layers
    cnn = vgg19_features(weights)
    mean, std = [m / 255.0 for m in MEANS], [1 / 255.0] * 3
    model, style_losses, content_losses = get_style_model_and_losses(
        cnn, mean, std, style_img, content_img, content_layers, style_layers
    )
    input_img = content_img.clone()
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = torch.optim.Adam([input_img], lr=0.02)

    def closure():
        with torch.no_grad():
            input_img.clamp_(0, 1)
        optimizer.zero_grad()
        model(input_img)
        style_score = sum(sl.loss for sl in style_losses) * style_weight
        content_score = sum(cl.loss for cl in content_losses) * content_weight
        loss = style_score + content_score
        loss.backward()
        return loss

    return lambda: optimizer.step(closure)


def image_tensor(path):
    """A PNG as the tutorial's input: (1, 3, H, W) float32 in [0, 1]."""
    pixels = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).contiguous()


# --- pastiche -------------------------------------------------------------------------------


def pastiche_step_fn(content_path, style_path, width, height):
    """pastiche's own artist (its VGG-19, weights, losses and defaults) with Adam on the CPU.

    Returns:
      `artist.draw`, which takes one step (forward, backward to the image, Adam update).
    """
    from pastiche.pastiche import PasticheArtist

    size = (height, width)
    artist = PasticheArtist(
        str(content_path), [str(style_path)], optimizer="adam", device="cpu", size=size, style_size=size
    )
    return artist.draw


# --- timing ---------------------------------------------------------------------------------


def matmul_gflops(n=4096, repeats=5):
    """Best GFLOP/s of an n x n float32 matmul in torch (one untimed warm-up)."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def make_step(peer, folder, weights, width, height):
    content_path = folder / f"content_{width}x{height}.png"
    style_path = folder / f"style_{width}x{height}.png"
    if peer == "pastiche":
        return pastiche_step_fn(content_path, style_path, width, height)
    layers = TUTORIAL_LAYERS if peer == "torch-tutorial" else DEEP_LAYERS
    return tutorial_step_fn(weights, image_tensor(content_path), image_tensor(style_path), layers)


def run(args):
    """Time every requested peer at every size; return the JSON-ready record."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder = Path(args.folder)
    with np.load(folder / "weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    import pastiche

    record = {
        "torch_version": torch.__version__,
        "pastiche_version": pastiche.__version__,
        "torch_threads": torch.get_num_threads(),
        "results": [],
    }
    if args.peak:
        record["peak_torch_gflops"] = matmul_gflops()
        log(f"torch matmul 4096: {record['peak_torch_gflops']:.1f} GFLOP/s")
    for peer in args.peers:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            log(f"{peer} {width}x{height}: {args.warmup} warm-up + {args.iterations} timed steps")
            with contention.Meter() as meter:
                step = make_step(peer, folder, weights, width, height)
                times = timing.time_steps(step, args.warmup, args.iterations)
            del step
            median_ms = statistics.median(times) * 1e3
            log(f"{peer} {width}x{height}: median {median_ms:.0f} ms; others' CPU share {meter.others}")
            result = {
                "impl": peer,
                "width": width,
                "height": height,
                "times_s": times,
                "others_cpu": meter.others,
            }
            record["results"].append(result)
    return record


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="folder with weights.npz and the PNGs")
    parser.add_argument("--sizes", nargs="+", required=True, help="WxH sizes, e.g. 256x192 512x384")
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peak", action="store_true", help="also time a 4096x4096 torch matmul")
    parser.add_argument("--out", required=True, help="JSON file to write")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    record = run(args)
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
