"""The `pixelnas` command line: ISP commands (process, demosaic-bench) and model-zoo commands (train, eval, …).

It registers both packages' commands; `isp` never imports training or search code.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from isp.cli_types import (iso_list, non_negative_int, output_file, positive_float, positive_int, unit_fraction,
                           write_text)
from isp.errors import InputError

# Training recipes by name. "light" is the one recipe every peer and every searched model gets (same data,
# steps, batch, learning rate), so that their comparison is about architecture only.
# 4000 steps proved too short (FSRCNN reached 35.31 dB on Set5, published 37.0); 10000 is what the CPU budget
# allows for eight light networks (~0.15-0.3 s per step each on one core).
RECIPES = {"light": {"steps": 10000, "batch": 16, "lr": 5e-4}}
TASK_CHOICES = ["denoise_raw", "sr_x2", "enhance"]
ROLE_CHOICES = ["heavy", "peer", "candidate", "searched"]     # searched_models.zoo.ROLES (kept torch-free here)
TASK_PATCH = {"denoise_raw": 64, "sr_x2": 48, "enhance": 96}  # searched_models.tasks.TASKS[t].patch (torch-free)


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a network of the zoo (heavy original, peer or searched)",
                       description="Train a spec network on random patches of a folder of photos; checkpoints "
                                   "into searched_models/zoo/<task>/<name>.safetensors and logs <name>.log.jsonl.")
    p.add_argument("--task", required=True, choices=TASK_CHOICES)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="a JSON spec file (or a zoo card)")
    source.add_argument("--name", help="a shipped spec in searched_models/specs/<task>/")
    p.add_argument("--as", dest="save_as", help="name to save under (default: the spec's name)")
    p.add_argument("--role", default=None, choices=ROLE_CHOICES,
                   help="role written into the card (default: heavy for *_heavy/edsr_baseline specs, else peer; "
                        "with --resume: the card's role, which only set-role changes; candidate: a search front "
                        "member trained for comparison, never resolved as 'searched')")
    p.add_argument("--images", required=True, help="folder of training photos (searched recursively)")
    p.add_argument("--val-images", help="folder of validation photos (without it: no validation, so the card has no "
                                        "PSNR curve and no plateau verdict)")
    p.add_argument("--val-limit", type=positive_int, default=8,
                   help="use at most this many validation photos (default 8)")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="named settings shared by peers and searched "
                   "models (" + "; ".join(f"{k}: {v}" for k, v in RECIPES.items()) + "); explicit flags override")
    p.add_argument("--steps", type=positive_int, help="total optimisation steps (the cosine schedule's length)")
    p.add_argument("--batch", type=positive_int, help="patches per step (default 16, or the recipe's)")
    p.add_argument("--patch", type=positive_int, help="crop size in network-input pixels (default: "
                   + ", ".join(f"{t} {TASK_PATCH[t]}" for t in TASK_CHOICES) + ")")
    p.add_argument("--lr", type=positive_float, help="peak Adam learning rate of the cosine schedule "
                                                     "(default 2e-4, or the recipe's)")
    p.add_argument("--teacher", help="distil from this zoo model (e.g. heavy)")
    p.add_argument("--distill-weight", type=unit_fraction, default=0.5,
                   help="with --teacher: weight (0–1) of the L1 to the teacher's output; the ground truth gets "
                        "1 − it (default 0.5)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (only faster on CPUs with AVX512-BF16/AMX)")
    p.add_argument("--val-every", type=positive_int, default=500, help="validate every N steps (default 500)")
    p.add_argument("--ckpt-every", type=positive_int, default=250, help="checkpoint every N steps (default 250)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the patch sampler and the "
                                                                    "initial weights (default 0)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: all cores)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the zoo (refused if "
                   "there is none: a new run starts without it); the card keeps its role and role history")
    p.add_argument("--restart", action="store_true",
                   help="with --resume and --lr: a warm restart (SGDR) — a new warm-up and cosine cycle from the "
                        "checkpoint's step to --steps, peaking at --lr; recorded in the card's training.restarts")
    p.add_argument("--zoo", help="zoo folder (default: the package's zoo)")
    p.set_defaults(func=run_train)


def default_role(name: str) -> str:
    """The role a new run gets without --role: heavy for *_heavy specs and edsr_baseline, else peer."""
    return "heavy" if name.endswith("_heavy") or name == "edsr_baseline" else "peer"


def resumed_role(task: str, name: str, asked: str | None, zoo_dir) -> str:
    """The role a resumed run keeps: its card's. A different --role is refused (set-role changes roles and records
    it); so is --resume without a checkpoint, since a mistyped name would otherwise start a new run quietly."""
    from searched_models import zoo

    if not zoo.weights_path(task, name, zoo_dir).exists():
        raise InputError(f"Nothing to resume: {zoo.weights_path(task, name, zoo_dir)} does not exist. Check --task and "
                         f"the name (--as / the spec's name), or start a new run without --resume.")
    try:
        current = zoo.read_card(task, name, zoo_dir).get("role")
    except (OSError, ValueError):
        current = None
    if asked and current and asked != current:
        raise InputError(f"{task}/{name} is a {current}; a resumed run keeps its role. Resume without --role (or "
                         f"with --role {current}), and change roles with `pixelnas set-role --task {task} --name "
                         f"{name} --role {asked}`.")
    return current or asked or default_role(name)


def run_train(args) -> int:
    from pathlib import Path

    from searched_models import zoo
    from searched_models.spec import load_spec
    from searched_models.train import TrainConfig, train

    recipe = RECIPES.get(args.recipe, {})
    steps = args.steps or recipe.get("steps")
    if not steps:
        from isp.errors import SettingError

        raise SettingError("Give --steps N or a --recipe.")
    if args.restart and not (args.resume and args.lr):
        from isp.errors import SettingError

        raise SettingError("--restart needs --resume (it continues a checkpoint) and --lr (the new cycle's peak).")
    spec = load_spec(args.spec) if args.spec else zoo.named_spec(args.task, args.name)
    name = args.save_as or spec.get("name") or args.name
    zoo_dir = Path(args.zoo) if args.zoo else zoo.ZOO_DIR
    role = resumed_role(args.task, name, args.role, zoo_dir) if args.resume else args.role or default_role(name)
    if args.distill_weight != 0.5 and not args.teacher:
        print("note: --distill-weight has no effect without --teacher", file=sys.stderr, flush=True)
    taken = zoo.holders(zoo.list_models(args.task, zoo_dir), role, name)
    if taken:     # one model per task holds it: set-role hands it over, demoting the holder, and records that
        raise InputError(f"{args.task}/{taken[0]} already has role {role}. Train {name} with --role candidate, then "
                         f"`pixelnas set-role --task {args.task} --name {name} --role {role}` when it is done.")
    if args.bf16:
        from searched_models.bench_train import bf16_warning, cpu_has_bf16

        warning = bf16_warning(cpu_has_bf16())
        if warning:
            print(warning, file=sys.stderr, flush=True)
    cfg = TrainConfig(task=args.task, name=name, spec=spec, images=args.images, steps=steps, role=role,
                      val_images=args.val_images, val_limit=args.val_limit, batch=args.batch or recipe.get("batch", 16),
                      patch=args.patch, lr=args.lr or recipe.get("lr", 2e-4), teacher=args.teacher,
                      distill_weight=args.distill_weight, bf16=args.bf16,
                      val_every=args.val_every, ckpt_every=args.ckpt_every, seed=args.seed, threads=args.threads,
                      **({"zoo_dir": args.zoo} if args.zoo else {}))
    card = train(cfg, resume=args.resume, restart=args.restart)
    print(json.dumps({k: card[k] for k in ("name", "task", "role", "params", "macs_per_input_pixel")}
                     | {"validation": card["validation"], "steps_done": card["training"]["steps_done"]}, indent=2))
    return 0


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate classical, heavy, peers and searched models of a task",
                       description="Print (and write as JSON) per model: role, params, MACs per input MP, "
                                   "measured ms per MP, PSNR, SSIM, R = MACs(heavy)/MACs(model) and "
                                   "G = (PSNR−PSNR_classical)/(PSNR_heavy−PSNR_classical). Deterministic per seed.")
    p.add_argument("--task", required=True, choices=TASK_CHOICES)
    p.add_argument("--images", required=True, action="append",
                   help="image folder(s), comma-separated or repeated; each is reported separately")
    p.add_argument("--models", help="comma-separated: classical, heavy, searched, zoo names (default: all)")
    p.add_argument("--iso", type=iso_list, default=None,
                   help="ISOs for denoise_raw, each 50–12800 (default 800,3200); other tasks take none")
    p.add_argument("--limit", type=positive_int,
                   help="at most this many images per folder (default: all); a quick look: the heavies' floors, G "
                        "and the peer rule are then not judged, as they hold for whole sets")
    p.add_argument("--y-8bit", action="store_true",
                   help="sr_x2: round Y to 8-bit codes before PSNR/SSIM, as MATLAB's rgb2ycbcr on uint8 images "
                        "(the papers' tables; default: float Y, as BasicSR and EDSR-PyTorch); recorded in the JSON")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the simulated sensor noise (default 0)")
    p.add_argument("--json", help="write the report as JSON here")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: all cores)")
    p.add_argument("--zoo", help="zoo folder (default: the package's zoo)")
    p.set_defaults(func=run_eval)


def run_eval(args) -> int:
    from pathlib import Path

    import torch

    from searched_models.evaluate import evaluate, expand_folders, format_report

    if args.json:
        output_file(args.json, "JSON file")
    if args.threads:
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)        # the classical stages' OpenCV calls, timed on the same threads
    if args.iso and args.task != "denoise_raw":
        print(f"note: --iso applies to denoise_raw only; {args.task} is scored without sensor noise", file=sys.stderr)
    models = [m for m in args.models.split(",") if m] if args.models else None
    if args.y_8bit and args.task != "sr_x2":
        from isp.errors import SettingError

        raise SettingError("--y-8bit is part of the sr_x2 protocol (Y-channel PSNR); other tasks score RGB.")
    report = evaluate(args.task, expand_folders(args.images), models, args.iso, args.seed, args.limit,
                      Path(args.zoo) if args.zoo else None, progress=lambda m: print(m, file=sys.stderr, flush=True),
                      y_8bit=args.y_8bit)
    print(format_report(report))
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def add_set_role(sub) -> None:
    p = sub.add_parser("set-role", help="change a trained zoo model's role (e.g. make a candidate the searched model)",
                       description="Give a finished zoo model a new role. heavy and searched are held by one model "
                                   "per task: its previous holder becomes a candidate. The change is kept in each "
                                   "card's role_history.")
    p.add_argument("--task", required=True, choices=TASK_CHOICES)
    p.add_argument("--name", required=True, help="the model to change")
    p.add_argument("--role", required=True, choices=ROLE_CHOICES)
    p.add_argument("--zoo", help="zoo folder (default: searched_models/zoo)")
    p.set_defaults(func=run_set_role)


def run_set_role(args) -> int:
    from pathlib import Path

    from searched_models import zoo

    command = f"pixelnas set-role --task {args.task} --name {args.name} --role {args.role}"
    changes = zoo.set_role(args.task, args.name, args.role, command, Path(args.zoo) if args.zoo else zoo.ZOO_DIR)
    for name, old, new in changes:
        print(f"{args.task}/{name}: {old} → {new}")
    if not changes:
        print(f"{args.task}/{args.name} already has role {args.role}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelnas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    from isp import cli as isp_cli

    isp_cli.add_commands(sub)
    add_train(sub)
    add_eval(sub)
    add_set_role(sub)
    from searched_models import bench_train, results_table, search, zoo_status

    search.add_command(sub)
    results_table.add_command(sub)
    bench_train.add_command(sub)
    zoo_status.add_command(sub)
    from isp import request_timing

    request_timing.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()              # inside the try: a closed pipe surfaces here, not at interpreter exit
        return code
    except InputError as error:
        print(f"pixelnas: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`pixelnas … | head`): stop quietly, as the Python docs recommend for pipes.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:        # the last net under the early checks: a file that could not be read or written
        where = f" '{error.filename}'" if error.filename else ""
        print(f"pixelnas: cannot access{where}: {error.strerror or error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
