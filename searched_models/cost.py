"""Analytic cost of a spec (MACs, params, bytes moved) and measured latency of a module.

MACs count every multiply-accumulate of convolutions, linear layers and the dynamic-kernel mixing — exactly
what `torch.utils.flop_counter` counts (it reports FLOPs = 2 × MACs); element-wise ops (activations, residual
adds, the bicubic skip) are left out, as in the papers' "Mult-Adds". A Laplacian-pyramid network's fixed 5×5
binomial filters are depthwise convolutions and count as such (per channel, 25 MACs per pixel a pyrDown writes and
36 per pixel a pyrUp reads: its four polyphase 3×3 filters).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from searched_models.spec import EDGE_FILTERS, REP_MULTIPLIER, body_channels, expand_blocks, normalise_spec


@dataclass(frozen=True)
class Cost:
    """MACs = macs_per_pixel · (input pixels) + macs_per_image; same shape for activations."""

    macs_per_pixel: float          # per input pixel of the network (LR pixel for sr_x2, packed pixel for denoise)
    macs_per_image: float          # size-independent part (dynamic-kernel routing and mixing)
    params: int                    # stored parameters (what the .safetensors file holds)
    activations_per_pixel: float   # elements read + written by all layers, per input pixel
    deployed_params: int           # parameters of the network as it runs (rep blocks merged)

    def macs(self, height: int, width: int) -> float:
        return self.macs_per_pixel * height * width + self.macs_per_image

    def macs_per_mp(self) -> float:
        return self.macs(1000, 1000)

    def bytes_moved(self, height: int, width: int, bytes_per_value: float = 4.0) -> float:
        """Weights (as deployed) read once plus every activation read and written once, in bytes."""
        return (self.deployed_params + self.activations_per_pixel * height * width) * bytes_per_value


def spec_cost(spec: dict) -> Cost:
    """Walk the spec the way `searched_models.spec.SpecNet` builds it and add up the work."""
    s = normalise_spec(spec)
    u = s["unshuffle"]
    levels = s["pyramid"]
    # layer pixels per input pixel: a pyramid's one body runs on levels 0 … L − 2, i.e. on 1 + 1/4 + … of the pixels
    area = (sum(0.25 ** level for level in range(levels - 1)) if levels else 1.0) / (u * u)
    macs = image_macs = acts = 0.0
    params = train_only = 0                 # train_only: stored parameters of re-parameterised branches

    def add_conv(cin, cout, k, groups=1, stride_area=1.0):
        nonlocal macs, params, acts
        out_area = area * stride_area
        macs += out_area * k * k * (cin // groups) * cout
        params += k * k * (cin // groups) * cout + cout
        acts += area * cin + out_area * cout

    def add_prelu(act, channels):
        nonlocal params
        if act == "prelu":
            params += channels

    c = s["stem"]["channels"]
    body_in, body_out = body_channels(s)
    if s["luma"]:                           # Y' = BT.601 weights · RGB, a fixed 1×1 conv at input resolution
        macs += 3
        acts += 3 + 1
    if levels:
        bands = body_out                    # channels split into bands; the extra inputs get Gaussian levels only
        pyramided = body_in - body_out
        below = sum(0.25 ** level for level in range(1, levels))     # pixels of levels 1 … L − 1 per input pixel
        macs += 25 * pyramided * below      # pyrDown writes each coarser level
        macs += 2 * 36 * bands * below      # pyrUp reads levels 1 … L − 1 twice: for the bands and the collapse
        acts += pyramided * (below * 4 + below) + 2 * bands * (below + 4 * below) + 3 * bands * area * u * u
    add_conv(body_in * u * u, c, s["stem"]["kernel"])
    add_prelu(s["stem"]["act"], c)
    skips = []
    for block in expand_blocks(s["blocks"]):
        kind, k, act = block["type"], block["kernel"], block["act"]
        cout = block.get("channels", c)
        if kind == "conv":
            add_conv(c, cout, k)
        elif kind == "rep":                 # runs as one k×k conv (RepConv.fused); the file holds its branches
            add_conv(c, cout, k)
            mid = max(1, int(round(cout * REP_MULTIPLIER)))
            stored = c * mid + mid + mid * k * k * cout + cout
            if k >= 3:
                stored += c * len(EDGE_FILTERS) * cout + 3 * len(EDGE_FILTERS) * cout
            params += stored
            train_only += stored
        elif kind == "dwsep":
            add_conv(c, c, k, groups=c)
            add_conv(c, cout, 1)
        elif kind == "residual":
            cout = c
            add_conv(c, c, k)
            add_prelu(act, c)
            add_conv(c, c, k)
        elif kind == "inverted":
            hidden = max(1, int(round(c * block.get("expand", 4))))
            add_conv(c, hidden, 1)
            add_prelu(act, hidden)
            add_conv(hidden, hidden, k, groups=hidden)
            add_prelu(act, hidden)
            add_conv(hidden, cout, 1)
        elif kind == "dynamic":
            experts = block.get("experts", 4)
            kernel_size = cout * c * k * k
            macs += area * k * k * c * cout
            acts += area * (c + cout)
            image_macs += c * experts + experts * kernel_size + experts * cout
            params += c * experts + experts + experts * kernel_size + experts * cout
        elif kind == "down":
            skips.append(c)
            add_conv(c, cout, k, stride_area=0.25)
            area *= 0.25
        elif kind == "up":
            cout = skips.pop()
            add_conv(c, cout * 4, k)
            area *= 4.0
        if kind in ("conv", "rep", "dwsep", "dynamic", "down", "up"):
            add_prelu(act, cout)
        c = cout
    r = u * s["scale"]
    add_conv(c, body_out * r * r, s["tail"]["kernel"])
    if levels:                              # the body runs once per band level: so does its per-image part
        image_macs *= levels - 1
    return Cost(macs_per_pixel=macs, macs_per_image=image_macs, params=int(params), activations_per_pixel=acts,
                deployed_params=int(params - train_only))


def counted_macs(module: torch.nn.Module, example: torch.Tensor) -> float:
    """MACs of one forward pass as counted by torch.utils.flop_counter (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(example)
    return counter.get_total_flops() / 2.0


def measure_latency_ms(module: torch.nn.Module, example: torch.Tensor, runs: int = 5, warmup: int = 2,
                       clock=time.perf_counter) -> float:
    """Median time in ms of `runs` forward passes after `warmup` (torch inference mode). clock: wall time by
    default; `time.process_time` gives this process's CPU time, which other jobs on a shared machine barely move
    (they take turns on the cores, so they stretch wall time but not the CPU time the network needs)."""
    module.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = clock()
            module(example)
            if i >= warmup:
                times.append((clock() - start) * 1000.0)
    return statistics.median(times)
