"""`pixelnas bench-train`: time training steps of a spec in fp32 and bf16 autocast, in one run.

This is the A/B behind the default precision: on CPUs without AVX512-BF16/AMX, bf16 autocast is slower.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from isp.cli_types import positive_int
from searched_models import zoo
from searched_models.spec import build, load_spec


def time_steps(spec: dict, bf16: bool, batch: int, patch: int, steps: int) -> float:
    """Median seconds per optimisation step (forward, L1 loss, backward, Adam) on random data."""
    torch.manual_seed(0)
    model = build(spec).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    scale = spec.get("scale", 1)
    x = torch.rand(batch, spec["in_channels"], patch, patch).to(memory_format=torch.channels_last)
    y = torch.rand(batch, spec["out_channels"], patch * scale, patch * scale)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = F.l1_loss(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:                      # the first step warms up the kernels
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def add_command(sub) -> None:
    p = sub.add_parser("bench-train", help="time training steps in fp32 vs bf16 autocast (one run)",
                       description="Median seconds per training step of a zoo spec in fp32 and in bf16 autocast, "
                                   "measured alternately in one run; prints the ratio.")
    p.add_argument("--task", required=True, choices=["denoise_raw", "sr_x2", "enhance"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--name", help="a shipped spec in searched_models/specs/<task>/")
    src.add_argument("--spec", help="a JSON spec file")
    p.add_argument("--batch", type=positive_int, default=16, help="patches per step (default 16)")
    p.add_argument("--patch", type=positive_int, default=48, help="crop size in network-input pixels (default 48)")
    p.add_argument("--steps", type=positive_int, default=3, help="timed steps per mode after one warm-up (default 3)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = load_spec(args.spec) if args.spec else zoo.named_spec(args.task, args.name)
    fp32 = time_steps(spec, False, args.batch, args.patch, args.steps)
    bf16 = time_steps(spec, True, args.batch, args.patch, args.steps)
    print(f"{spec.get('name', 'spec')}: batch {args.batch} × {args.patch}² on {torch.get_num_threads()} threads")
    print(f"fp32 {fp32:.3f} s/step   bf16 autocast {bf16:.3f} s/step   bf16/fp32 = {bf16 / fp32:.2f}")
    return 0
