"""Estimated energy of a developed frame, stage by stage (isp.power) — estimates, not measurements.

Each stage's MACs plus the values it moves — for a network every layer's activations read and written once and
its weights read once (`ModelCache.values_moved`, the same traffic `pixelnas eval` uses), for a classical stage
its input and output values moved once. Like `pixelnas eval` the app gives them for a 12 MP photo
(`isp.power.PHOTO_12MP`) and a 1080p video at 30 fps (`isp.power.VIDEO_1080P`): every stage's cost is scaled from
the processed frame to that output size.
"""
from __future__ import annotations

import math

import numpy as np

from isp.models import ModelCache
from isp.pipeline import LEARNED_STAGES, Result, StageReport
from isp.power import PHOTO_12MP, energy_mj

NON_NETWORK_VARIANTS = ("classical", "reference", "lanczos")    # the learned stages' own algorithms


def model_params(models: ModelCache, task: str, variant: str) -> int:
    """Parameters of the network a learned stage runs, rep blocks merged (0 for its own algorithms)."""
    if variant in NON_NETWORK_VARIANTS:
        return 0
    return models.params(task, variant)



def network_input_size(task: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of a learned stage's network input: a raw mosaic is packed to ½ × ½ (RGGB planes)."""
    h, w = input_shape[:2]
    return (h // 2, w // 2) if task == "denoise_raw" else (h, w)


def stage_values(report: StageReport, models: ModelCache) -> float:
    """Values one stage moves (estimate): a network's activations and weights (`ModelCache.values_moved`), or a
    classical stage's input plus its output (×4 the input for a ×2 zoom)."""
    if report.stage in LEARNED_STAGES and report.variant not in NON_NETWORK_VARIANTS:
        return models.values_moved(report.stage, report.variant, *network_input_size(report.stage, report.input_shape))
    return float(np.prod(report.input_shape)) + float(np.prod(report.output_shape))


def stage_energy_mj(report: StageReport, models: ModelCache, device: str, scale: float = 1.0) -> float:
    """Estimated mJ of one stage when the frame has `scale` × the pixels it was run at: a network's MACs and
    traffic are recomputed for the scaled input (its weights are read once per frame whatever the size), a
    classical stage's MACs and values moved scale with the pixels."""
    if report.stage in LEARNED_STAGES and report.variant not in NON_NETWORK_VARIANTS:
        h, w = network_input_size(report.stage, report.input_shape)
        k = math.sqrt(scale)
        h, w = max(1, round(h * k)), max(1, round(w * k))
        return energy_mj(models.macs(report.stage, report.variant, h, w),
                         models.values_moved(report.stage, report.variant, h, w), device)
    return energy_mj(report.macs * scale, stage_values(report, models) * scale, device)


def estimate_energy(result: Result, models: ModelCache, device: str,
                    output_hw: tuple[int, int] | None = PHOTO_12MP) -> tuple[float, int]:
    """(estimated mJ per frame, parameters of the networks used), see the module docstring. The frame is
    `output_hw` output pixels (default a 12 MP photo, as `pixelnas eval`; None = the size it was run at)."""
    h, w = result.image.shape[:2]
    scale = 1.0 if output_hw is None else output_hw[0] * output_hw[1] / float(h * w)
    total_mj, params = 0.0, 0
    for report in result.reports:
        params += model_params(models, report.stage, report.variant) if report.stage in LEARNED_STAGES else 0
        total_mj += stage_energy_mj(report, models, device, scale)
    return total_mj, params
