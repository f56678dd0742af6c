"""One JSON architecture language and one builder for every network in the project.

A spec is a plain dict (stored as JSON in each zoo card):

    {"name": "...", "task": "sr_x2", "in_channels": 3, "out_channels": 3, "scale": 2,
     "unshuffle": 1,                                  # pixel-unshuffle the input by 1, 2 or 4 first
     "stem": {"channels": 64, "kernel": 3, "act": "none"},
     "blocks": [{"type": "residual", "channels": 64, "kernel": 3, "act": "relu", "repeat": 16}, ...],
     "body_skip": true,                               # EDSR long skip from stem output to body output
     "tail": {"kernel": 3},                           # conv to out·r² channels + pixel shuffle by r = unshuffle·scale
     "global_residual": "bicubic" | "input" | "none", # add the (upsampled) input to the output
     "residual_channels": 3,                          # how many leading input channels the residual uses
     "luma": false,                                   # true: the net sees only luma and corrects only luma
     "pyramid": 0}                                    # L > 0: the body edits each band of an L-level Laplacian pyramid

Luma networks (`"luma": true`, RGB in and out with a global residual): the body sees Y' = BT.601 luma of the input
(one channel, a fixed 1×1 convolution: 3 MACs per pixel) and its single output channel is added to R', G' and B'
alike, which changes Y' and leaves Cb and Cr as the residual has them. This is how FSRCNN, ESPCN and ECBSR
super-resolve (the Y channel by the network, chroma by bicubic — Dong et al. ECCV 2016, Shi et al. CVPR 2016,
Zhang et al. ACM MM 2021), and exactly what the enhancement reference changes (`isp.stages.enhance`: a luma edit
added to every channel).

Block types (each may carry "repeat"): conv, rep (a conv trained over-parameterised as an edge-oriented block and
run as one plain conv: `RepConv`), dwsep (depthwise-separable, MobileNet), residual (EDSR block,
Lim et al. 2017), inverted (MobileNetV2 inverted bottleneck, Sandler et al. 2018; "expand"), dynamic
(CondConv/DyNet: "experts" kernels mixed per image from its global average, Yang et al. 2019), down (stride-2
conv to "channels", pushes a U-Net skip) and up (conv + pixel shuffle ×2 to "channels", adds the last skip).

Laplacian-pyramid networks (`"pyramid": L`, after LPTN — Liang et al., "High-Resolution Photorealistic Image
Translation in Real-Time: A Laplacian Pyramid Translation Network", CVPR 2021): the image the residual adds to (luma,
or the first residual_channels input channels) is split by the fixed 5-tap binomial filter into L − 1 band-pass
images and a low-pass residual (Burt & Adelson, IEEE Trans. Commun. 1983). One body — stem, blocks, tail, weights
shared by every level — sees each band next to the Gaussian level it came from (and, for extra input channels such
as a noise map, their Gaussian level), predicts a correction of that band, and the pyramid is collapsed again. The
local Laplacian reference of `isp.stages.enhance` applies one remapping function at every level of such a pyramid,
which is the case for shared weights. The low-pass residual passes unchanged; an untrained network (zero tail) is
exactly the identity. The body runs on every level (pixel-unshuffled by "unshuffle" inside each, as elsewhere), so
it takes no down/up blocks, and costs its body's MACs × (1 + 1/4 + 1/16 + …) plus the fixed filters. pyrUp runs as
its four polyphase 3×3 filters and a pixel shuffle — the same output as zero-insertion and a 5×5 blur, at a fifth of
the CPU time of a transposed convolution here.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from isp.errors import InputError

BLOCK_TYPES = ("conv", "rep", "dwsep", "residual", "inverted", "dynamic", "down", "up")
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "silu", "tanh", "none")
RESIDUALS = ("bicubic", "input", "none")
MAX_PYRAMID = 8
BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)    # Burt & Adelson's a = 0.375 generating kernel (÷ 16), as cv2.pyrDown/pyrUp
LUMA_BT601 = (0.299, 0.587, 0.114)        # ITU-R BT.601 luma weights (sum to 1), as isp.stages.enhance


class SpecError(InputError):
    """A spec that cannot describe a valid network (a user error: the CLI prints it as one line)."""


def activation(name: str, channels: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "prelu":
        return nn.PReLU(channels)
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "tanh":
        return nn.Tanh()
    if name == "none":
        return nn.Identity()
    raise SpecError(f"unknown activation {name!r}; choose from {ACTIVATIONS}")


def conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups)


class ConvBlock(nn.Sequential):
    def __init__(self, cin, cout, kernel, act):
        super().__init__(conv(cin, cout, kernel), activation(act, cout))


# ECBSR's fixed edge filters (Zhang, Zeng & Zhang, "Edge-oriented Convolution Block for Real-time Super Resolution
# on Mobile Devices", ACM MM 2021, Sec. 3.2): Sobel-x, Sobel-y and the 4-neighbour Laplacian.
EDGE_FILTERS = (((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0)),
                ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0)),
                ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0)))
REP_MULTIPLIER = 2.0        # width of the 1×1 → k×k expand-squeeze branch relative to cout (ECBSR's default)


class RepConv(nn.Module):
    """A k×k convolution trained as ECBSR's edge-oriented convolution block and run as one plain k×k conv.

    Branches (Zhang et al., ACM MM 2021): a k×k conv; a 1×1 conv to 2·cout channels then a k×k conv (expand-
    squeeze); three 1×1 convs each followed by a fixed Sobel-x, Sobel-y or Laplacian filter with a learned
    per-channel scale and bias (k ≥ 3 only); and the identity when cin = cout. All branches are linear, so their
    sum is one k×k conv: `fused()` merges them, and `forward` always convolves with the merged kernel (online
    re-parameterisation, as OREPA — Hu et al., CVPR 2022): the output equals the branch sum (`forward_branches`,
    the block as drawn in the paper) and gradients reach every branch, while a step costs about one conv. The
    intermediate maps of the 1×1 branches are padded with their bias, not zero, so the merge is exact at the
    borders too. MACs and latency are those of one k×k conv; the file stores the branch parameters."""

    def __init__(self, cin, cout, kernel, act):
        super().__init__()
        self.cin, self.cout, self.kernel = cin, cout, kernel
        mid = max(1, int(round(cout * REP_MULTIPLIER)))
        self.conv = conv(cin, cout, kernel)
        self.expand = nn.Conv2d(cin, mid, 1)
        self.squeeze = nn.Conv2d(mid, cout, kernel)
        self.edges = len(EDGE_FILTERS) if kernel >= 3 else 0
        if self.edges:
            self.edge_in = nn.Conv2d(cin, self.edges * cout, 1)
            self.edge_scale = nn.Parameter(torch.randn(self.edges, cout) * 1e-3)    # ECBSR's initialisation
            self.edge_bias = nn.Parameter(torch.randn(self.edges, cout) * 1e-3)
            masks = torch.zeros(self.edges, kernel, kernel)
            c = kernel // 2
            masks[:, c - 1:c + 2, c - 1:c + 2] = torch.tensor(EDGE_FILTERS)
            self.register_buffer("edge_masks", masks, persistent=False)
        self.identity = cin == cout
        if self.identity:                  # the identity as a k×k kernel: 1 at the centre of each channel's own tap
            eye = torch.zeros(cin, cin, kernel, kernel)
            eye[range(cin), range(cin), kernel // 2, kernel // 2] = 1.0
            self.register_buffer("identity_kernel", eye, persistent=False)
        self.act = activation(act, cout)

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight cout×cin×k×k, bias cout) of the one conv equal to the sum of the branches. Element-wise
        products and sums only, so `torch.utils.flop_counter` counts the block as the conv it runs."""
        w_es, w_ex = self.squeeze.weight, self.expand.weight[:, :, 0, 0]                  # cout×mid×k×k, mid×cin
        weight = self.conv.weight + (w_es[:, :, None] * w_ex[None, :, :, None, None]).sum(1)
        bias = self.conv.bias + self.squeeze.bias + (w_es.sum((2, 3)) * self.expand.bias[None]).sum(1)
        if self.edges:
            depth = self.edge_scale[:, :, None, None] * self.edge_masks[:, None]            # E×cout×k×k
            w_in = self.edge_in.weight[:, :, 0, 0].reshape(self.edges, self.cout, self.cin)
            weight = weight + (depth[:, :, None] * w_in[..., None, None]).sum(0)
            bias = bias + self.edge_bias.sum(0) + (depth.sum((2, 3)) * self.edge_in.bias.reshape(self.edges, -1)).sum(0)
        if self.identity:
            weight = weight + self.identity_kernel
        return weight, bias

    def forward(self, x):
        weight, bias = self.fused()
        return self.act(F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=self.kernel // 2))

    def forward_branches(self, x):
        """The block as drawn in the paper: every branch run separately and summed (a reference for tests)."""
        pad = self.kernel // 2

        def padded(y, bias):       # pad a 1×1 branch's output with its bias value, as the merged conv sees it
            b = bias.reshape(1, -1, 1, 1)
            return F.pad(y - b, (pad,) * 4) + b

        y = self.conv(x) + self.squeeze(padded(self.expand(x), self.expand.bias))
        if self.edges:
            depth = (self.edge_scale[:, :, None, None] * self.edge_masks[:, None]).reshape(
                -1, 1, self.kernel, self.kernel)
            e = F.conv2d(padded(self.edge_in(x), self.edge_in.bias), depth, self.edge_bias.reshape(-1),
                         groups=self.edges * self.cout)
            y = y + e.reshape(x.shape[0], self.edges, self.cout, *e.shape[-2:]).sum(1)
        if self.identity:
            y = y + x
        return self.act(y)


class DepthwiseSeparable(nn.Sequential):
    def __init__(self, cin, cout, kernel, act):
        super().__init__(conv(cin, cin, kernel, groups=cin), conv(cin, cout, 1), activation(act, cout))


class ResidualBlock(nn.Module):
    """EDSR residual block without batch norm (Lim et al., CVPRW 2017)."""

    def __init__(self, channels, kernel, act, res_scale=1.0):
        super().__init__()
        self.body = nn.Sequential(conv(channels, channels, kernel), activation(act, channels),
                                  conv(channels, channels, kernel))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x) * self.res_scale


class InvertedBottleneck(nn.Module):
    """MobileNetV2 inverted residual (Sandler et al., CVPR 2018), no batch norm."""

    def __init__(self, cin, cout, kernel, act, expand):
        super().__init__()
        hidden = max(1, int(round(cin * expand)))
        self.body = nn.Sequential(conv(cin, hidden, 1), activation(act, hidden),
                                  conv(hidden, hidden, kernel, groups=hidden), activation(act, hidden),
                                  conv(hidden, cout, 1))
        self.residual = cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class DynamicConv(nn.Module):
    """Dynamic convolution: K expert kernels mixed per image by a softmax over its global average.

    CondConv (Yang et al., NeurIPS 2019) / DyNet (Zhang et al. 2020) / Dynamic Convolution (Chen et al., CVPR
    2020). The mixed kernel is applied with one grouped convolution over the batch; residual when shapes allow.
    """

    def __init__(self, cin, cout, kernel, act, experts=4, temperature=1.0):
        super().__init__()
        self.cin, self.cout, self.kernel, self.experts = cin, cout, kernel, experts
        self.route = nn.Linear(cin, experts)
        he_std = (2.0 / (cin * kernel * kernel)) ** 0.5
        self.weight = nn.Parameter(torch.randn(experts, cout * cin * kernel * kernel) * he_std)
        self.bias = nn.Parameter(torch.zeros(experts, cout))
        self.act = activation(act, cout)
        self.temperature = temperature
        self.residual = cin == cout

    def forward(self, x):
        b, c, h, w = x.shape
        attention = torch.softmax(self.route(x.mean(dim=(2, 3))) / self.temperature, dim=1)   # B×K
        weight = (attention @ self.weight).reshape(b * self.cout, self.cin, self.kernel, self.kernel)
        bias = (attention @ self.bias).reshape(b * self.cout)
        y = F.conv2d(x.reshape(1, b * c, h, w), weight, bias, padding=self.kernel // 2, groups=b)
        y = self.act(y.reshape(b, self.cout, h, w))
        return x + y if self.residual else y


class Down(nn.Module):
    def __init__(self, cin, cout, kernel, act):
        super().__init__()
        self.body = nn.Sequential(conv(cin, cout, kernel, stride=2), activation(act, cout))

    def forward(self, x):
        return self.body(x)


class Up(nn.Module):
    def __init__(self, cin, cout, kernel, act):
        super().__init__()
        self.body = nn.Sequential(conv(cin, cout * 4, kernel), nn.PixelShuffle(2), activation(act, cout))

    def forward(self, x):
        return self.body(x)


def expand_blocks(blocks: list[dict]) -> list[dict]:
    """Unroll "repeat" so that each entry is one block."""
    out = []
    for block in blocks:
        block = dict(block)
        repeat = int(block.pop("repeat", 1))
        out.extend(copy.deepcopy(block) for _ in range(repeat))
    return out


def normalise_spec(spec: dict) -> dict:
    """Fill defaults and validate; returns a new dict. Raises SpecError with a readable message."""
    s = copy.deepcopy(spec)
    s.setdefault("name", "unnamed")
    for key in ("task", "in_channels", "out_channels"):
        if key not in s:
            raise SpecError(f"The spec has no {key!r} field (every spec names its task, in_channels and out_channels).")
    s.setdefault("scale", 1)
    s.setdefault("unshuffle", 1)
    s.setdefault("stem", {"channels": 32, "kernel": 3, "act": "relu"})
    s["stem"].setdefault("kernel", 3)
    s["stem"].setdefault("act", "relu")
    s.setdefault("blocks", [])
    s.setdefault("body_skip", False)
    s.setdefault("tail", {"kernel": 3})
    s["tail"].setdefault("kernel", 3)
    s.setdefault("global_residual", "none")
    s.setdefault("residual_channels", s["out_channels"])
    s["luma"] = bool(s.get("luma", False))
    s["pyramid"] = int(s.get("pyramid", 0))
    if s["luma"] and not (s["in_channels"] == s["out_channels"] == s["residual_channels"] == 3
                          and s["global_residual"] != "none"):
        raise SpecError("a luma network needs 3 input and output channels, residual_channels 3 and a global residual")
    if s["unshuffle"] not in (1, 2, 4):
        raise SpecError("unshuffle must be 1, 2 or 4")
    if s["global_residual"] not in RESIDUALS:
        raise SpecError(f"global_residual must be one of {RESIDUALS}")
    if s["pyramid"]:
        if not 2 <= s["pyramid"] <= MAX_PYRAMID:
            raise SpecError(f"pyramid is 0 (off) or 2…{MAX_PYRAMID} levels, got {s['pyramid']}")
        if s["scale"] != 1 or s["global_residual"] != "input" or s["residual_channels"] != s["out_channels"]:
            raise SpecError("a pyramid network edits its input's bands: it needs scale 1, global_residual 'input' and "
                            "residual_channels equal to out_channels")
        if any(b.get("type") in ("down", "up") for b in s["blocks"]):
            raise SpecError("a pyramid network's body runs on every level of the pyramid: it takes no down/up blocks")
    depth = 0
    for block in s["blocks"]:
        if block.get("type") not in BLOCK_TYPES:
            raise SpecError(f"unknown block type {block.get('type')!r}; choose from {BLOCK_TYPES}")
        block.setdefault("kernel", 3)
        block.setdefault("act", "relu")
        if block["kernel"] % 2 == 0:
            raise SpecError("kernel sizes must be odd")
        depth += block.get("repeat", 1) * (block["type"] == "down") - block.get("repeat", 1) * (block["type"] == "up")
        if depth < 0:
            raise SpecError("an 'up' block has no matching 'down' block")
    if depth != 0:
        raise SpecError("every 'down' block needs a matching 'up' block")
    return s


class SpecNet(nn.Module):
    """The network a spec describes. forward(x) maps N×C_in×H×W → N×C_out×(H·scale)×(W·scale)."""

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = normalise_spec(spec)
        s = self.spec
        u = s["unshuffle"]
        self.unshuffle = nn.PixelUnshuffle(u) if u > 1 else nn.Identity()
        c = s["stem"]["channels"]
        self.register_buffer("luma_weight", torch.tensor(LUMA_BT601).reshape(1, 3, 1, 1), persistent=False)
        body_in, body_out = body_channels(s)
        if s["pyramid"]:
            taps = torch.tensor(BINOMIAL_5) / sum(BINOMIAL_5)
            self.register_buffer("binomial", torch.outer(taps, taps)[None, None], persistent=False)
            self.register_buffer("binomial_up", polyphase_up_filters(4.0 * torch.outer(taps, taps)), persistent=False)
        self.stem = ConvBlock(body_in * u * u, c, s["stem"]["kernel"], s["stem"]["act"])
        self.blocks = nn.ModuleList()
        self.block_kinds = []
        skip_channels = []
        for block in expand_blocks(s["blocks"]):
            kind, k, act = block["type"], block["kernel"], block["act"]
            cout = block.get("channels", c)
            if kind == "conv":
                module = ConvBlock(c, cout, k, act)
            elif kind == "rep":
                module = RepConv(c, cout, k, act)
            elif kind == "dwsep":
                module = DepthwiseSeparable(c, cout, k, act)
            elif kind == "residual":
                if cout != c:
                    raise SpecError(f"a residual block keeps its channels ({c}), got {cout}")
                module = ResidualBlock(c, k, act, block.get("res_scale", 1.0))
            elif kind == "inverted":
                module = InvertedBottleneck(c, cout, k, act, block.get("expand", 4))
            elif kind == "dynamic":
                module = DynamicConv(c, cout, k, act, block.get("experts", 4))
            elif kind == "down":
                skip_channels.append(c)
                module = Down(c, cout, k, act)
            else:  # up
                cout = skip_channels.pop()
                module = Up(c, cout, k, act)
            self.blocks.append(module)
            self.block_kinds.append(kind)
            c = cout
        r = u * s["scale"]
        self.tail = nn.Sequential(conv(c, body_out * r * r, s["tail"]["kernel"]),
                                  nn.PixelShuffle(r) if r > 1 else nn.Identity())
        self.body_channels_match = c == s["stem"]["channels"]
        self.initialise()

    def initialise(self) -> None:
        """He-normal weights for every convolution (fan-in, ReLU gain; He et al., ICCV 2015), zero biases, and a
        zero tail when there is a global residual, so a fresh network outputs exactly that residual (bicubic or
        its input) and learns only the correction, and the last conv of every residual branch zeroed too (the
        zero-init of Goyal et al. 2017 and Fixup, Zhang et al. ICLR 2019): He init alone doubles the variance in
        each residual block. A `RepConv` starts as its plain k×k conv (He) — or as the identity when it has one,
        like a residual block — with the expand-squeeze branch at zero and the edge scales at ECBSR's 1e-3, so its
        merged kernel starts with the variance of one He conv.

        PyTorch's default (uniform, a = √5) shrinks activations layer by layer: in a 400-step search proxy a deep
        10.5 K-MAC SR net reached 27.59 dB (bicubic 27.47) with it and 28.33 dB with this initialisation."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for module in self.modules():            # residual branches start at zero: each block starts as the
            if isinstance(module, ResidualBlock) or (isinstance(module, InvertedBottleneck) and module.residual):
                nn.init.zeros_(module.body[-1].weight)   # identity, so depth cannot blow the variance up
            if isinstance(module, RepConv):
                nn.init.zeros_(module.squeeze.weight)
                if module.identity:
                    nn.init.zeros_(module.conv.weight)
        if self.spec["global_residual"] != "none":
            nn.init.zeros_(self.tail[0].weight)
            nn.init.zeros_(self.tail[0].bias)

    def forward(self, x):
        s = self.spec
        if s["pyramid"]:
            return self._pyramid_forward(x)
        body_in = F.conv2d(x[:, :3], self.luma_weight) if s["luma"] else x
        out = self._body(body_in)        # N×1×H×W for a luma net: broadcast onto R', G', B' by the residual add
        residual = x[:, : s["residual_channels"]]
        if s["global_residual"] == "bicubic":
            out = out + F.interpolate(residual, scale_factor=s["scale"], mode="bicubic", align_corners=False)
        elif s["global_residual"] == "input":
            out = out + residual
        return out

    def _body(self, z):
        """stem → blocks (with U-Net skips) → optional long skip → tail, on the body's input channels."""
        head = self.stem(self.unshuffle(z))
        y = head
        skips = []
        for kind, block in zip(self.block_kinds, self.blocks):
            if kind == "down":
                skips.append(y)
            y = block(y)
            if kind == "up":
                y = y + skips.pop()
        if self.spec["body_skip"] and self.body_channels_match:
            y = y + head
        return self.tail(y)

    def _pyr_down(self, g):
        """Blur with the 5×5 binomial and keep every second pixel (cv2.pyrDown; edges replicated)."""
        c = g.shape[1]
        return F.conv2d(F.pad(g, (2, 2, 2, 2), mode="replicate"), self.binomial.expand(c, 1, 5, 5), stride=2,
                        groups=c)

    def _pyr_up(self, g):
        """Zero-insert ×2 and blur with 4 × the binomial (cv2.pyrUp; zeros beyond the edges), as its polyphase form:
        exactly twice the size."""
        c = g.shape[1]
        return F.pixel_shuffle(F.conv2d(g, self.binomial_up.repeat(c, 1, 1, 1), padding=1, groups=c), 2)

    def _pyramid_forward(self, x):
        s = self.spec
        r = s["residual_channels"]
        base = F.conv2d(x[:, :3], self.luma_weight) if s["luma"] else x[:, :r]
        extra = x[:, r:] if not s["luma"] and x.shape[1] > r else None      # context only, e.g. a noise map
        gauss, context = [base], [extra]
        for _ in range(s["pyramid"] - 1):
            gauss.append(self._pyr_down(gauss[-1]))
            context.append(None if extra is None else self._pyr_down(context[-1]))
        out = gauss[-1]                                  # the low-pass residual passes unchanged
        for level in range(s["pyramid"] - 2, -1, -1):
            band = gauss[level] - self._pyr_up(gauss[level + 1])
            features = [band, gauss[level]] + ([context[level]] if extra is not None else [])
            out = self._pyr_up(out) + band + self._body(torch.cat(features, 1))
        return x[:, : s["residual_channels"]] + (out - base)


def polyphase_up_filters(kernel: torch.Tensor) -> torch.Tensor:
    """The 4×1×3×3 filters whose outputs, pixel-shuffled by 2, equal zero-insertion ×2 followed by the 5×5 `kernel`
    (output pixel (2i + a, 2j + b) takes input pixel (i + di − 1, j + dj − 1) with tap (a − 2di + 4, b − 2dj + 4))."""
    filters = torch.zeros(4, 1, 3, 3)
    for a in range(2):
        for b in range(2):
            for di in range(3):
                for dj in range(3):
                    row, col = a - 2 * di + 4, b - 2 * dj + 4
                    if row < 5 and col < 5:
                        filters[2 * a + b, 0, di, dj] = kernel[row, col]
    return filters


def body_channels(spec: dict) -> tuple[int, int]:
    """(input, output) channels of a normalised spec's body: luma nets see and correct Y' only; a pyramid's body sees
    a band, its Gaussian level and the extra inputs' Gaussian level, and corrects the band."""
    s = spec
    if s["pyramid"]:
        bands = 1 if s["luma"] else s["residual_channels"]
        extra = 0 if s["luma"] else s["in_channels"] - s["residual_channels"]
        return 2 * bands + extra, bands
    return (1, 1) if s["luma"] else (s["in_channels"], s["out_channels"])


def build(spec: dict) -> SpecNet:
    """The one builder: spec dict → nn.Module."""
    return SpecNet(spec)


def load_spec(path: str | Path) -> dict:
    """A spec from a JSON file: a bare spec, or a zoo card / registered spec holding one under "spec"."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise SpecError(f"Cannot read spec file '{path}': {error.strerror or error}.") from None
    except json.JSONDecodeError as error:
        raise SpecError(f"Spec file '{path}' is not valid JSON ({error.msg} at line {error.lineno}).") from None
    if not isinstance(data, dict):
        raise SpecError(f"Spec file '{path}' must hold a JSON object.")
    spec = data.get("spec", data)
    if "search" in data and "search" not in spec:
        spec = {**spec, "search": data["search"]}
    return normalise_spec(spec)


def spec_to_json(spec: dict) -> str:
    return json.dumps(normalise_spec(spec), indent=2, sort_keys=True)
