"""`pixelnas bench-train`: time training steps of a spec in fp32 and bf16 autocast, in one run; with
`--ab-steps K`, also the quality A/B that decides whether a run may use bf16.

On CPUs without AVX512-BF16/AMX, bf16 autocast is slower. Where it is faster, the model-zoo issue (#3) keeps it
only if a short A/B shows validation PSNR within 0.05 dB of fp32: `--ab-steps K` continues a zoo checkpoint
K steps twice, on the same batches and schedule, once per precision, and validates both in fp32.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from isp.cli_types import positive_int
from isp.errors import SettingError
from searched_models import zoo
from searched_models.spec import build, load_spec
from searched_models.train import precision_name

AB_TOLERANCE_DB = 0.05   # the model-zoo issue (#3): keep bf16 only if validation PSNR is within this of fp32
BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}   # Linux /proc/cpuinfo names of the bf16 units autocast uses


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether this CPU has AVX512-BF16 or AMX-BF16 (None when /proc/cpuinfo cannot tell: not Linux)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return None
    flags = {f for line in lines if line.startswith("flags") for f in line.partition(":")[2].split()}
    return bool(flags & BF16_CPU_FLAGS) if flags else None


def bf16_warning(has_bf16: bool | None) -> str | None:
    """What `pixelnas train --bf16` prints on a CPU without bf16 units (has_bf16 from cpu_has_bf16), else None.
    On such a CPU (an AVX2-only AMD EPYC here, 2026-12-04) a heavy's step took 40x longer than in fp32."""
    if has_bf16 is not False:
        return None
    return ("warning: this CPU has no AVX512-BF16/AMX-BF16, so --bf16 autocast is emulated and much slower than "
            "fp32; drop --bf16 (a checkpoint resumes in either precision) or measure with `pixelnas bench-train`")


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


def precision_ab(task_name: str, name: str, images: str, val_images: str, steps: int, val_limit: int = 8,
                 zoo_dir=zoo.ZOO_DIR, log=print) -> dict:
    """Continue zoo/<task>/<name>'s checkpoint (weights, Adam state, step, schedule, seed, teacher) for `steps`
    steps in fp32 and again in bf16 autocast on the same batches; validate each copy in fp32 on `val_images`.
    Both arms start from one snapshot of the file (a run still training may rewrite it meanwhile). Nothing is
    written. Returns {"start_step", "start_psnr", "fp32": {...}, "bf16": {...}, "delta_db", "within_tolerance"};
    each arm holds "psnr" and "sec_per_step"."""
    import dataclasses
    import shutil
    import tempfile

    from searched_models.data import load_folder, load_training_photos
    from searched_models.tasks import get_task
    from searched_models.train import TrainConfig, checkpoint_meta, fit, load_checkpoint, validate

    weights = zoo.weights_path(task_name, name, zoo_dir)
    if not weights.exists():
        raise SettingError(f"--ab-steps continues a trained checkpoint, and {weights} does not exist: "
                           f"train {task_name}/{name} first.")
    card = zoo.read_card(task_name, name, zoo_dir)
    with tempfile.TemporaryDirectory() as folder:
        snapshot = Path(folder) / weights.name
        shutil.copyfile(weights, snapshot)
        meta = checkpoint_meta(snapshot)
        own = {"task", "name", "spec", "command", "zoo_dir", "images"}        # this call's, not the run's
        known = {f.name for f in dataclasses.fields(TrainConfig)} - own
        settings = {**{k: v for k, v in card.get("training", {}).items() if k in known},     # card, then the
                    **{k: v for k, v in meta.get("config", {}).items() if k in known}}       # checkpoint's own
        if "steps" not in settings:
            raise SettingError(f"{weights} records no schedule length (steps): it is not a `pixelnas train` run.")
        cfg = TrainConfig(task=task_name, name=name, images=images, spec=card["spec"], zoo_dir=str(zoo_dir),
                          **settings)
        task = get_task(task_name)
        start = int(meta.get("step", 0))
        log(f"loading {images} and {val_images} …")
        prepared = task.prepare(load_training_photos(images, task.photo_side(cfg.patch or task.patch)))   # as train
        pairs = task.val_pairs(load_folder(val_images, limit=val_limit), seed=0)
        teacher = zoo.load(task_name, cfg.teacher, zoo_dir)[0] if cfg.teacher else None

        def restored(with_optimizer: bool = True) -> tuple[torch.nn.Module, torch.optim.Optimizer | None]:
            model = build(card["spec"]).to(memory_format=torch.channels_last)
            optimizer = (torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999)) if with_optimizer
                         else None)                        # the start point's validation needs no Adam state
            load_checkpoint(snapshot, model, optimizer)
            return model, optimizer

        def arm(bf16: bool) -> dict:
            model, optimizer = restored()
            began = time.perf_counter()
            fit(dataclasses.replace(cfg, bf16=bf16), model, task, prepared, cfg.patch or task.patch, teacher,
                optimizer=optimizer, start=start, until=start + steps)
            seconds = (time.perf_counter() - began) / steps
            result = {"psnr": validate(model, task, pairs), "sec_per_step": seconds}
            log(f"{precision_name(bf16)}: {steps} steps from step {start}, {seconds:.2f} s/step, "
                f"val {result['psnr']:.3f} dB")
            return result

        start_psnr = validate(restored(with_optimizer=False)[0], task, pairs)
        log(f"{task_name}/{name} at step {start}: val {start_psnr:.3f} dB on {len(pairs)} image(s) of {val_images}")
        fp32, bf16 = arm(False), arm(True)
    delta = bf16["psnr"] - fp32["psnr"]
    return {"start_step": start, "start_psnr": start_psnr, "fp32": fp32, "bf16": bf16, "delta_db": delta,
            "within_tolerance": abs(delta) <= AB_TOLERANCE_DB}


def add_command(sub) -> None:
    p = sub.add_parser("bench-train", help="time training steps in fp32 vs bf16 autocast (one run); with "
                                           "--ab-steps, the quality A/B behind --bf16",
                       description="Median seconds per training step of a zoo spec in fp32 and in bf16 autocast, "
                                   "measured one after the other in one run; prints the ratio. With --ab-steps K, "
                                   "also continues the zoo checkpoint of --name K steps in each precision and "
                                   "compares their validation PSNR (nothing is written).")
    p.add_argument("--task", required=True, choices=["denoise_raw", "sr_x2", "enhance"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--name", help="a shipped spec in searched_models/specs/<task>/, or with --ab-steps a trained "
                                    "zoo model (its card's spec)")
    src.add_argument("--spec", help="a JSON spec file")
    p.add_argument("--batch", type=positive_int, default=16, help="patches per step (default 16)")
    p.add_argument("--patch", type=positive_int, default=48, help="crop size in network-input pixels (default 48)")
    p.add_argument("--steps", type=positive_int, default=3, help="timed steps per mode after one warm-up (default 3)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: all cores)")
    p.add_argument("--ab-steps", type=positive_int, metavar="K",
                   help="also the quality A/B: continue the zoo checkpoint of --name K steps in fp32 and again in "
                        "bf16 autocast (same batches and schedule) and compare validation PSNR; needs --images "
                        f"and --val-images; passes when within {AB_TOLERANCE_DB} dB")
    p.add_argument("--images", help="with --ab-steps: the training photos of the run")
    p.add_argument("--val-images", help="with --ab-steps: the validation photos of the run")
    p.add_argument("--val-limit", type=positive_int, default=8, help="with --ab-steps: validation photos (default 8)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ab_steps and not (args.name and args.images and args.val_images):
        raise SettingError("--ab-steps needs --name (a trained zoo model), --images and --val-images.")
    if not args.ab_steps and (args.images or args.val_images):
        raise SettingError("--images and --val-images are for the quality A/B: add --ab-steps K.")
    if args.spec:
        spec = load_spec(args.spec)
    elif args.ab_steps:
        if not zoo.card_path(args.task, args.name).exists():
            raise SettingError(f"No zoo model {args.task}/{args.name}: --ab-steps continues a trained checkpoint.")
        spec = zoo.read_card(args.task, args.name)["spec"]
    else:
        spec = zoo.named_spec(args.task, args.name)
    fp32 = time_steps(spec, False, args.batch, args.patch, args.steps)
    bf16 = time_steps(spec, True, args.batch, args.patch, args.steps)
    print(f"{spec.get('name', 'spec')}: batch {args.batch} × {args.patch}² on {torch.get_num_threads()} threads")
    print(f"fp32 {fp32:.3f} s/step   bf16 autocast {bf16:.3f} s/step   bf16/fp32 = {bf16 / fp32:.2f}")
    if args.ab_steps:
        ab = precision_ab(args.task, args.name, args.images, args.val_images, args.ab_steps, args.val_limit)
        verdict = "within" if ab["within_tolerance"] else "NOT within"
        print(f"quality A/B over {args.ab_steps} steps from step {ab['start_step']} (val {ab['start_psnr']:.3f} dB "
              f"there): fp32 {ab['fp32']['psnr']:.3f} dB, bf16 autocast {ab['bf16']['psnr']:.3f} dB, "
              f"Δ {ab['delta_db']:+.3f} dB — {verdict} {AB_TOLERANCE_DB} dB; "
              f"s/step bf16/fp32 = {ab['bf16']['sec_per_step'] / ab['fp32']['sec_per_step']:.2f}")
    return 0
