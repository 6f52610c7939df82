"""Torch side of the fast-method bench: WCT's or AdaIN's architecture in PyTorch, float32, CPU, timed.

Run by `fast_methods.py` with the torch interpreter (see `setup.sh`); it never imports TensorFlow
or nst_tf. The peer is the reference ports' layout (PytorchWCT, Li et al.'s Torch code): for each
level relu5_1 ... relu1_1 an encoder VGG-19 up to relu<L>_1 (max pooling), the whitening and
colouring of the content's features with the style's (eigendecompositions in float64, eigenvalues
<= 1e-5 dropped, as ours), and the level's mirrored decoder (reflection padding, 3x3 convolutions,
nearest-neighbour upsampling) with random weights; `--method adain`: the relu4_1 encoder, AdaIN
(the reference code's `adaptive_instance_normalization`) and the relu4_1 decoder. Inputs:
`weights.npz` (VGG-19 convolutions in torch layout, RGB 0-255 minus the means), `content.png`,
`style.png` in a folder; results to JSON.
"""

import argparse
import json
import statistics
import sys

import numpy as np
import timing
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

MEANS = (123.68, 116.779, 103.939)
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
EPS = 1e-5


class Encoder(nn.Module):
    """VGG-19 from the image to relu<level>_1, max pooling between blocks."""

    def __init__(self, weights, level):
        super().__init__()
        self.names = []
        for block, n, _ in BLOCKS:
            if block > level:
                break
            for conv in range(1, n + 1):
                name = f"conv{block}_{conv}"
                self.names.append(name)
                if block == level:
                    break
        self.weights = {
            n: (torch.from_numpy(weights[n + "/w"]), torch.from_numpy(weights[n + "/b"])) for n in self.names
        }

    def forward(self, x):
        for name in self.names:
            if name.endswith("_1") and name != "conv1_1":
                x = F.max_pool2d(x, 2)
            w, b = self.weights[name]
            x = F.relu(F.conv2d(x, w, b, padding=1))
        return x


class Decoder(nn.Module):
    """The encoder mirrored from relu<level>_1: reflection pad, 3x3 conv, ReLU (not the last), 2x up."""

    def __init__(self, level):
        super().__init__()
        mirrored = [
            (block, conv, width)
            for block, n, width in BLOCKS
            for conv in range(1, n + 1)
            if (block, conv) <= (level, 1)
        ][::-1]
        widths = {block: width for block, _, width in BLOCKS}
        layers = []
        for block, conv, width in mirrored:
            out = 3 if (block, conv) == (1, 1) else widths[block - 1] if conv == 1 else width
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(width, out, 3)]
            if (block, conv) != (1, 1):
                layers.append(nn.ReLU())
            if conv == 1 and block > 1:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def power(cov, p):
    values, vectors = torch.linalg.eigh(cov)
    keep = values > EPS
    scaled = torch.where(
        keep, torch.where(keep, values, torch.ones_like(values)) ** p, torch.zeros_like(values)
    )
    return (vectors * scaled) @ vectors.T


def wct(fc, fs):
    """(1, C, H, W) content features with the style's mean and covariance (float64 statistics)."""
    c, h, w = fc.shape[1:]
    x = fc[0].reshape(c, -1).double()
    s = fs[0].reshape(c, -1).double()
    xm, sm = x.mean(1, keepdim=True), s.mean(1, keepdim=True)
    xc, sc = x - xm, s - sm
    cov_x = xc @ xc.T / (xc.shape[1] - 1)
    cov_s = sc @ sc.T / (sc.shape[1] - 1)
    out = power(cov_s, 0.5) @ (power(cov_x, -0.5) @ xc) + sm
    return out.float().reshape(1, c, h, w)


def adain(fc, fs):
    """(1, C, H, W) content features with each channel's mean and std of the style's (AdaIN's
    reference `calc_mean_std`: unbiased variance + 1e-5)."""

    def stats(f):
        flat = f[0].reshape(f.shape[1], -1)
        return flat.mean(1).reshape(1, -1, 1, 1), (flat.var(1) + 1e-5).sqrt().reshape(1, -1, 1, 1)

    (mc, sc), (ms, ss) = stats(fc), stats(fs)
    return (fc - mc) / sc * ss + ms


def load(path):
    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32) - np.array(MEANS, np.float32)
    return torch.from_numpy(rgb.transpose(2, 0, 1)[None].copy())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    parser.add_argument("--method", default="wct", choices=("wct", "adain"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    weights = dict(np.load(f"{args.inputs}/weights.npz"))
    levels = (5, 4, 3, 2, 1) if args.method == "wct" else (4,)
    transform = wct if args.method == "wct" else adain
    encoders = {lv: Encoder(weights, lv).eval() for lv in levels}
    decoders = {lv: Decoder(lv).eval() for lv in levels}
    content, style = load(f"{args.inputs}/content.png"), load(f"{args.inputs}/style.png")
    low = -torch.tensor(MEANS).reshape(1, 3, 1, 1)

    def stylise():
        with torch.no_grad():
            x = content
            for lv in levels:
                f = transform(encoders[lv](x), encoders[lv](style))
                x = torch.maximum(torch.minimum(decoders[lv](f), 255 + low), low)
            return x

    times = timing.time_steps(stylise, 1 + args.warmup, args.iterations)
    result = {
        "peer": f"torch-{args.method}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seconds": times,
        "median": statistics.median(times),
    }
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"[torch] {args.method} {levels}: {result['median']:.2f} s per image", file=sys.stderr)


if __name__ == "__main__":
    main()
