"""The PixelNAS search space: a fixed-length genome of Optuna parameters that decodes into one spec.

Every searched network is a spec of `searched_models.spec` (the one spec language), so the space is simply
the set of specs `spec_from_params` can emit:

    [pixel-unshuffle 1|2|4] → stem conv → body of 1…MAX_BLOCKS blocks → tail conv + pixel shuffle
        → + global residual        (the body optionally wrapped in 1 or 2 U-Net levels: down … up with skip adds)

or, for enhance, a Laplacian-pyramid network (`spec` docstring): the same stem → body → tail, with one set of
weights, run on every band of a 4- or 6-level pyramid of the image (pixel-unshuffled inside each level).

Genome (every parameter is suggested in every trial, so NSGA-II's crossover and mutation see one
fixed-length chromosome — Deb et al., IEEE TEVC 2002; inactive genes are carried but ignored):

| parameter | choices | meaning |
|---|---|---|
| unshuffle | 1, 2, 4 | work at full, ½ or ¼ resolution |
| luma (sr_x2, enhance) | False, True | the body sees and corrects luma only (`spec` docstring: luma networks) |
| pyramid (enhance) | 0, 4, 6 | Laplacian-pyramid levels (0: off); when on, the U-Net genes are inactive and unshuffle is halved until the stride is ≤ 32 |
| stem_channels/_kernel/_act | CHANNELS, 3 5, ACTIVATIONS | the first conv |
| blocks | 1 … MAX_BLOCKS | how many body-block slots are active |
| b{i}_type | conv rep dwsep residual inverted dynamic | slot i (residual keeps the current channels; rep: a conv trained as ECBSR's edge-oriented block, `spec.RepConv`) |
| b{i}_channels/_kernel/_act | CHANNELS, 1 3 5 7, ACTIVATIONS |  |
| b{i}_expand, b{i}_experts | 2 4 6, 2 4 | inverted bottleneck expansion, dynamic experts |
| unet_levels | 0, 1, 2 | U-Net levels around the body |
| unet_pos{j} (j < 4) | 0 … MAX_BLOCKS | U-Net cut points (see below) |
| down{l}_channels | CHANNELS | width after the l-th stride-2 down |
| body_skip | False, True | EDSR long skip (only where the channels match) |
| tail_kernel | 1, 3, 5 | the sub-pixel tail conv |

U-Net cut points: the 2·L used positions are clipped to `blocks` and sorted; the first L say before which body
block a stride-2 `down` goes, the last L where an `up` (pixel shuffle + skip add) goes — nested by construction.

The task fixes the rest (channels, scale, the tail's pixel-shuffle factor and the global residual: bicubic for
sr_x2, the input for denoise_raw — its first 4 channels — and enhance). The hand-designed peers of
`searched_models/specs/<task>/` are points of this space: `params_for_spec` gives the genome of a spec.

Budget: `repair` shrinks an over-budget genome deterministically (uniform width scaling, then kernels, then
trailing blocks, U-Net levels, block types to conv (rep stays), luma only, pyramid off, resolution) until `budget_macs` fits; `floor_spec` is the cheapest
spec of the space, so every budget ≥ its cost is always met.
"""
from __future__ import annotations

import copy
import re

from searched_models.cost import spec_cost
from searched_models.infer import stride_multiple
from searched_models.spec import ACTIVATIONS, SpecError, expand_blocks, normalise_spec

CHANNELS = (8, 12, 16, 24, 32, 48, 56, 64)
STEM_KERNELS = (3, 5)
KERNELS = (1, 3, 5, 7)
TAIL_KERNELS = (1, 3, 5)
BODY_TYPES = ("conv", "rep", "dwsep", "residual", "inverted", "dynamic")
EXPANDS = (2, 4, 6)
EXPERTS = (2, 4)
UNSHUFFLES = (1, 2, 4)
MAX_BLOCKS = 8
MAX_LEVELS = 2
UNET_KERNEL, UNET_ACT = 3, "relu"      # down/up blocks use the spec defaults
SLOT_DEFAULT = {"type": "conv", "channels": 16, "kernel": 3, "act": "relu", "expand": 4, "experts": 4}
WIDTH_FACTORS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.0)

# What each task fixes (in/out channels and scale come from searched_models.tasks.TASKS).
TASK_IO = {
    "sr_x2": {"in_channels": 3, "out_channels": 3, "scale": 2, "global_residual": "bicubic", "residual_channels": 3},
    "denoise_raw": {"in_channels": 8, "out_channels": 4, "scale": 1, "global_residual": "input",
                    "residual_channels": 4},
    "enhance": {"in_channels": 3, "out_channels": 3, "scale": 1, "global_residual": "input", "residual_channels": 3},
}
LUMA_TASKS = ("sr_x2", "enhance")      # RGB → RGB tasks, where a luma-only network is a point of the space
PYRAMIDS = (0, 4, 6)
MAX_PYRAMID_STRIDE = 32                # unshuffle · 2^(levels − 1) divides the enhance patch (96) and val crop (192)
PYRAMID_SPACE = "levels (0, 4, 6); unshuffle halved until the stride is <= 32"   # a study's settings record it
PYRAMID_TASKS = ("enhance",)           # the task whose reference is itself a Laplacian-pyramid operator


def pyramid_choices(task: str) -> tuple[int, ...]:
    """The pyramid depths the task's space holds ((0,): none)."""
    return PYRAMIDS if task in PYRAMID_TASKS else (0,)


def task_io(task: str) -> dict:
    if task not in TASK_IO:
        from isp.errors import SettingError

        raise SettingError(f"Unknown task {task!r}; choose one of {', '.join(TASK_IO)}.")
    return TASK_IO[task]


def sample_params(trial, task: str) -> dict:
    """Suggest the whole genome from an Optuna trial (Trial, FixedTrial or an enqueued trial); returns the dict."""
    task_io(task)
    p = {
        "unshuffle": trial.suggest_categorical("unshuffle", UNSHUFFLES),
        **({"luma": trial.suggest_categorical("luma", (False, True))} if task in LUMA_TASKS else {}),
        **({"pyramid": trial.suggest_categorical("pyramid", PYRAMIDS)} if task in PYRAMID_TASKS else {}),
        "stem_channels": trial.suggest_categorical("stem_channels", CHANNELS),
        "stem_kernel": trial.suggest_categorical("stem_kernel", STEM_KERNELS),
        "stem_act": trial.suggest_categorical("stem_act", ACTIVATIONS),
        "blocks": trial.suggest_int("blocks", 1, MAX_BLOCKS),
    }
    for i in range(MAX_BLOCKS):
        p[f"b{i}_type"] = trial.suggest_categorical(f"b{i}_type", BODY_TYPES)
        p[f"b{i}_channels"] = trial.suggest_categorical(f"b{i}_channels", CHANNELS)
        p[f"b{i}_kernel"] = trial.suggest_categorical(f"b{i}_kernel", KERNELS)
        p[f"b{i}_act"] = trial.suggest_categorical(f"b{i}_act", ACTIVATIONS)
        p[f"b{i}_expand"] = trial.suggest_categorical(f"b{i}_expand", EXPANDS)
        p[f"b{i}_experts"] = trial.suggest_categorical(f"b{i}_experts", EXPERTS)
    p["unet_levels"] = trial.suggest_int("unet_levels", 0, MAX_LEVELS)
    for j in range(2 * MAX_LEVELS):
        p[f"unet_pos{j}"] = trial.suggest_int(f"unet_pos{j}", 0, MAX_BLOCKS)
    for level in range(MAX_LEVELS):
        p[f"down{level}_channels"] = trial.suggest_categorical(f"down{level}_channels", CHANNELS)
    p["body_skip"] = trial.suggest_categorical("body_skip", (False, True))
    p["tail_kernel"] = trial.suggest_categorical("tail_kernel", TAIL_KERNELS)
    return p


def pyramid_unshuffle(p: dict) -> int:
    """The unshuffle gene as it decodes: under a pyramid, halved until unshuffle · 2^(levels − 1) ≤ 32."""
    u = p["unshuffle"]
    while p.get("pyramid") and u > 1 and u * 2 ** (p["pyramid"] - 1) > MAX_PYRAMID_STRIDE:
        u //= 2
    return u


def with_rep_blocks(params: dict) -> dict:
    """The genome with every active plain conv body block turned into a re-parameterised `rep` block."""
    return {**params, **{f"b{i}_type": "rep" for i in range(params["blocks"]) if params[f"b{i}_type"] == "conv"}}


def _cuts(p: dict) -> tuple[list[int], list[int]]:
    """Positions (before body block i) of the downs and the ups, nested by construction."""
    n, levels = p["blocks"], 0 if p.get("pyramid") else p["unet_levels"]
    cuts = sorted(min(p[f"unet_pos{j}"], n) for j in range(2 * levels))
    return cuts[:levels], cuts[levels:]


def spec_from_params(params: dict, task: str, name: str = "searched") -> dict:
    """Decode a genome into a normalised spec (consecutive identical blocks folded into "repeat")."""
    io = task_io(task)
    p = params
    downs, ups = _cuts(p)
    c = p["stem_channels"]
    blocks, skips, down_level = [], [], 0
    for i in range(p["blocks"] + 1):
        for _ in range(downs.count(i)):
            skips.append(c)
            c = p[f"down{down_level}_channels"]
            down_level += 1
            blocks.append({"type": "down", "channels": c, "kernel": UNET_KERNEL, "act": UNET_ACT})
        for _ in range(ups.count(i)):
            c = skips.pop()
            blocks.append({"type": "up", "channels": c, "kernel": UNET_KERNEL, "act": UNET_ACT})
        if i == p["blocks"]:
            break
        kind = p[f"b{i}_type"]
        cout = c if kind == "residual" else p[f"b{i}_channels"]
        block = {"type": kind, "channels": cout, "kernel": p[f"b{i}_kernel"], "act": p[f"b{i}_act"]}
        if kind == "inverted":
            block["expand"] = p[f"b{i}_expand"]
        if kind == "dynamic":
            block["experts"] = p[f"b{i}_experts"]
        blocks.append(block)
        c = cout
    spec = {"name": name, "task": task, **{k: io[k] for k in ("in_channels", "out_channels", "scale")},
            "unshuffle": pyramid_unshuffle(p), "luma": bool(p.get("luma", False)),
            "pyramid": int(p.get("pyramid", 0)),
            "stem": {"channels": p["stem_channels"], "kernel": p["stem_kernel"], "act": p["stem_act"]},
            "blocks": fold_repeats(blocks),
            "body_skip": bool(p["body_skip"]) and c == p["stem_channels"],
            "tail": {"kernel": p["tail_kernel"]},
            "global_residual": io["global_residual"], "residual_channels": io["residual_channels"]}
    return normalise_spec(spec)


def fold_repeats(blocks: list[dict]) -> list[dict]:
    """Fold runs of identical blocks into one entry with "repeat" (the inverse of spec.expand_blocks)."""
    out: list[dict] = []
    for block in blocks:
        if out and {k: v for k, v in out[-1].items() if k != "repeat"} == block:
            out[-1]["repeat"] = out[-1].get("repeat", 1) + 1
        else:
            out.append(dict(block))
    return out


def canonical(spec: dict) -> dict:
    """A spec with every default made explicit, explicit channels on every block, runs folded, and the
    descriptive keys (name, note, search) dropped: two specs build the same network iff these are equal."""
    s = normalise_spec(spec)
    c = s["stem"]["channels"]
    blocks, skips = [], []
    for block in expand_blocks(s["blocks"]):
        kind = block["type"]
        if kind == "residual":
            cout = c
        elif kind == "up":
            cout = skips.pop()
        else:
            cout = block.get("channels", c)
        if kind == "down":
            skips.append(c)
        out = {"type": kind, "channels": cout, "kernel": block["kernel"], "act": block["act"]}
        if kind == "inverted":
            out["expand"] = block.get("expand", 4)
        if kind == "dynamic":
            out["experts"] = block.get("experts", 4)
        if kind == "residual" and block.get("res_scale", 1.0) != 1.0:
            out["res_scale"] = block["res_scale"]
        blocks.append(out)
        c = cout
    keys = ("task", "in_channels", "out_channels", "scale", "unshuffle", "luma", "pyramid", "stem", "tail",
            "global_residual", "residual_channels")
    result = {k: copy.deepcopy(s[k]) for k in keys}
    result["blocks"] = fold_repeats(blocks)
    result["body_skip"] = bool(s["body_skip"]) and c == s["stem"]["channels"]
    return result


def params_for_spec(spec: dict, task: str) -> dict:
    """The genome that reproduces `spec` (e.g. a hand-designed peer); SpecError says why a spec is outside the space."""
    io = task_io(task)
    s = canonical(spec)

    def need(ok: bool, why: str):
        if not ok:
            raise SpecError(f"spec {spec.get('name', '?')!r} is outside the {task} search space: {why}")

    for key in ("in_channels", "out_channels", "scale", "global_residual", "residual_channels"):
        need(s[key] == io[key], f"{key} is {s[key]!r}, the task fixes {io[key]!r}")
    need(s["unshuffle"] in UNSHUFFLES, f"unshuffle {s['unshuffle']} not in {UNSHUFFLES}")
    need(not s["luma"] or task in LUMA_TASKS, f"luma networks are searched for {', '.join(LUMA_TASKS)} only")
    need(s["pyramid"] in pyramid_choices(task), f"pyramid {s['pyramid']} not in {pyramid_choices(task)}")
    need(not s["pyramid"] or stride_multiple(s) <= MAX_PYRAMID_STRIDE,
         f"a pyramid's stride is at most {MAX_PYRAMID_STRIDE}")
    need(s["stem"]["channels"] in CHANNELS, f"stem channels {s['stem']['channels']} not in {CHANNELS}")
    need(s["stem"]["kernel"] in STEM_KERNELS, f"stem kernel {s['stem']['kernel']} not in {STEM_KERNELS}")
    need(s["tail"]["kernel"] in TAIL_KERNELS, f"tail kernel {s['tail']['kernel']} not in {TAIL_KERNELS}")
    p = {"unshuffle": s["unshuffle"], **({"luma": s["luma"]} if task in LUMA_TASKS else {}),
         **({"pyramid": s["pyramid"]} if task in PYRAMID_TASKS else {}),
         "stem_channels": s["stem"]["channels"], "stem_kernel": s["stem"]["kernel"], "stem_act": s["stem"]["act"]}
    body, downs, ups, down_channels = [], [], [], []
    for block in expand_blocks(s["blocks"]):
        if block["type"] in ("down", "up"):
            need(block["kernel"] == UNET_KERNEL and block["act"] == UNET_ACT,
                 f"down/up blocks use kernel {UNET_KERNEL} and {UNET_ACT}")
            if block["type"] == "down":
                downs.append(len(body))
                down_channels.append(block["channels"])
            else:
                ups.append(len(body))
            continue
        need(block["type"] in BODY_TYPES, f"block type {block['type']!r} not in {BODY_TYPES}")
        need(block["channels"] in CHANNELS, f"block channels {block['channels']} not in {CHANNELS}")
        need(block["kernel"] in KERNELS, f"block kernel {block['kernel']} not in {KERNELS}")
        need("res_scale" not in block, "residual scaling is not searched")
        need(block.get("expand", 4) in EXPANDS, f"expand {block.get('expand')} not in {EXPANDS}")
        need(block.get("experts", 4) in EXPERTS, f"experts {block.get('experts')} not in {EXPERTS}")
        body.append(block)
    need(1 <= len(body) <= MAX_BLOCKS, f"{len(body)} body blocks, the space has 1…{MAX_BLOCKS}")
    need(len(downs) <= MAX_LEVELS, f"{len(downs)} U-Net levels, the space has at most {MAX_LEVELS}")
    need(all(c in CHANNELS for c in down_channels), f"down channels {down_channels} not all in {CHANNELS}")
    need(not downs or max(downs) <= min(ups), "downs must all come before the ups")
    p["blocks"] = len(body)
    for i in range(MAX_BLOCKS):
        b = {**SLOT_DEFAULT, **body[i]} if i < len(body) else SLOT_DEFAULT
        for key in ("type", "channels", "kernel", "act", "expand", "experts"):
            p[f"b{i}_{key}"] = b[key]
    p["unet_levels"] = len(downs)
    cuts = downs + ups
    for j in range(2 * MAX_LEVELS):
        p[f"unet_pos{j}"] = cuts[j] if j < len(cuts) else 0
    for level in range(MAX_LEVELS):
        p[f"down{level}_channels"] = down_channels[level] if level < len(down_channels) else SLOT_DEFAULT["channels"]
    p["body_skip"] = s["body_skip"]
    p["tail_kernel"] = s["tail"]["kernel"]
    need(canonical(spec_from_params(p, task)) == s, "it does not decode back to itself")   # e.g. an odd nesting
    return p


def budget_macs(spec: dict) -> float:
    """The budgeted quantity: MACs per input pixel at 1 MP (per-pixel MACs + the per-image part / 10⁶)."""
    return spec_cost(spec).macs_per_mp() / 1e6


def _snap_down(value: float) -> int:
    return max([c for c in CHANNELS if c <= value] or [CHANNELS[0]])


def _width_keys(p: dict) -> list[str]:
    keys = ["stem_channels"] + [f"b{i}_channels" for i in range(p["blocks"]) if p[f"b{i}_type"] != "residual"]
    return keys + [f"down{level}_channels" for level in range(p["unet_levels"])]


def _shrink_steps(p: dict):
    """The repair moves, in order: (description, params) — each one a cheaper version of the previous."""
    for f in WIDTH_FACTORS:                                  # 1. all widths × f (snapped down to CHANNELS)
        q = dict(p)
        for key in _width_keys(p):
            q[key] = _snap_down(p[key] * f)
        yield f"width×{f:g}", q
    p = q
    for cap in (5, 3, 1):                                    # 2. kernels capped
        q = dict(p)
        for i in range(MAX_BLOCKS):
            q[f"b{i}_kernel"] = min(p[f"b{i}_kernel"], cap)
        q["stem_kernel"] = min(p["stem_kernel"], max(cap, STEM_KERNELS[0]))
        q["tail_kernel"] = min(p["tail_kernel"], cap)
        yield f"kernels≤{cap}", q
    p = q
    for n in range(p["blocks"] - 1, 0, -1):                  # 3. trailing blocks dropped
        q = {**p, "blocks": n}
        yield f"blocks={n}", q
    p = {**p, "blocks": 1}
    for levels in range(p["unet_levels"] - 1, -1, -1):       # 4. U-Net levels dropped
        q = {**p, "unet_levels": levels}
        yield f"unet_levels={levels}", q
    p = {**p, "unet_levels": 0}
    q = dict(p)                                              # 5. the cheapest block type
    c = p["stem_channels"]                                   # (no U-Net left: the body's widths are the slots')
    for i in range(MAX_BLOCKS):
        if p[f"b{i}_type"] == "residual":                    # a residual block turned conv keeps its width
            q[f"b{i}_channels"] = c
        else:
            c = p[f"b{i}_channels"]
        q[f"b{i}_type"] = "rep" if p[f"b{i}_type"] == "rep" else "conv"      # rep runs as a conv already
    yield "types=conv", q
    p = q
    if "luma" in p and not p["luma"]:                        # 6. luma only (where the task allows it)
        p = {**p, "luma": True}
        yield "luma", p
    if p.get("pyramid"):                                     # 7. no pyramid (its unshuffle gene comes back)
        p = {**p, "pyramid": 0}
        yield "pyramid=0", p
    for u in UNSHUFFLES:                                     # 8. lower resolution
        if u > p["unshuffle"]:
            p = {**p, "unshuffle": u}
            yield f"unshuffle={u}", p


def repair(params: dict, task: str, max_macs: float | None) -> tuple[dict, list[str]]:
    """Shrink a genome until its spec's budget_macs ≤ max_macs; returns (params, moves applied).

    Deterministic: the same genome and budget always give the same network. Within each phase the mildest
    move that fits is taken (e.g. the largest width factor); a phase that cannot fit is applied fully and the
    next one starts from its cheapest state. Ends at `floor_spec` at worst.
    """
    if max_macs is None or budget_macs(spec_from_params(params, task)) <= max_macs:
        return dict(params), []
    applied: dict[str, str] = {}                             # phase → its last (fully applied) move
    for move, q in _shrink_steps(params):
        phase = re.split("[=×≤]", move)[0]
        if budget_macs(spec_from_params(q, task)) <= max_macs:
            return q, [m for key, m in applied.items() if key != phase] + [move]
        applied[phase] = move
    raise SpecError(f"no network of the {task} space fits {max_macs:.0f} MACs per pixel "
                    f"(the cheapest needs {budget_macs(floor_spec(task)):.0f})")


def floor_spec(task: str) -> dict:
    """The cheapest spec of the space: ¼ resolution, 8-channel 3×3 stem, one 8-channel 1×1 conv, 1×1 tail (luma
    only where the task allows it)."""
    p = params_for_spec({**task_io(task), "task": task, "unshuffle": max(UNSHUFFLES), "luma": task in LUMA_TASKS,
                         "stem": {"channels": CHANNELS[0], "kernel": STEM_KERNELS[0], "act": "relu"},
                         "blocks": [{"type": "conv", "channels": CHANNELS[0], "kernel": KERNELS[0]}],
                         "tail": {"kernel": TAIL_KERNELS[0]}}, task)
    return spec_from_params(p, task, name="floor")
