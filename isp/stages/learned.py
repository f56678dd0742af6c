"""Learned pixel stages: a slot that runs a classical stage's variants or any zoo network for its task."""
from __future__ import annotations

import numpy as np

from isp.errors import SettingError
from isp.layout import to_chw, to_hwc
from isp.models import ModelCache
from isp.rawimage import pack, unpack
from isp.stages.base import Frame, Stage
from isp.stages.denoise import estimate_noise


def denoise_network_input(mosaic: np.ndarray, pattern: str, shot: float, read: float) -> np.ndarray:
    """Packed noisy planes (R, G1, G2, B) + their per-pixel noise σ = sqrt(shot·max(x,0) + read): 8×H/2×W/2.

    `searched_models.tasks.noisy_raw_pair` builds the training inputs with this same function.
    """
    packed = pack(mosaic, pattern)
    sigma = np.sqrt(shot * np.clip(packed, 0.0, None) + read).astype(np.float32)
    return np.concatenate([to_chw(packed), to_chw(sigma)], axis=0)


def luma_only_zoom(low_res: np.ndarray, network_out: np.ndarray) -> np.ndarray:
    """The ISP's ×2 zoom with a network: the network's luma Y' on the bicubic upscale's chroma (sRGB-encoded).

    SR networks are judged on Y' (BT.601), and luma-only SR with bicubic Cb/Cr is the field's practice since
    SRCNN (Dong et al., ECCV 2014); in the ISP the low-resolution input carries the demosaicker's colour errors,
    which an RGB network trained on clean bicubic inputs sharpens. A luma network already adds one correction to
    all three channels of its own bicubic upscale (torch's), so it changes only by the two bicubics' difference
    and clipping. The stage's MACs stay the network's: the bicubic is not counted, as a network's bicubic skip
    is not (`searched_models.cost`)."""
    from isp.stages.enhance import luma, transfer_luma
    from isp.stages.resize import classical_sr

    base = classical_sr(low_res)
    return transfer_luma(base, luma(np.clip(network_out, 0.0, 1.0)), luma(base))


class LearnedSlot(Stage):
    """Wraps a classical stage; variants are its own plus every zoo model of `task` (names or roles)."""

    def __init__(self, classical: Stage, task: str, models: ModelCache):
        self.classical = classical
        self.task = task
        self.models = models
        self.name, self.takes, self.gives = classical.name, classical.takes, classical.gives

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self.classical.variants) + tuple(self.models.names(self.task))

    def check_variant(self, variant: str) -> None:
        if variant in self.classical.variants:
            return
        try:
            self.models.get(self.task, variant)
        except SettingError as error:
            raise SettingError(f"Stage '{self.name}': {error} Classical variants: "
                               f"{', '.join(self.classical.variants)}.") from None

    def resolve(self, variant: str) -> str:
        return variant if variant in self.classical.variants else self.models.resolve(self.task, variant)

    def network_input(self, frame: Frame) -> np.ndarray:
        if self.task == "denoise_raw":
            shot, read = frame.raw.noise or estimate_noise(frame.data, frame.raw.pattern)
            return denoise_network_input(frame.data, frame.raw.pattern, shot, read)
        return to_chw(frame.data)

    def run(self, frame: Frame, variant: str) -> Frame:
        if variant in self.classical.variants:
            return self.classical.run(frame, variant)
        out = self.models.run(self.task, variant, self.network_input(frame))
        if self.task == "denoise_raw":
            return frame.with_data(unpack(to_hwc(out), frame.raw.pattern), "raw")
        if self.task == "sr_x2":
            return frame.with_data(luma_only_zoom(frame.data, to_hwc(out)), self.gives)
        return frame.with_data(np.clip(to_hwc(out), 0.0, 1.0), self.gives)

    def macs(self, frame: Frame, variant: str) -> int:
        if variant in self.classical.variants:
            return self.classical.macs(frame, variant)
        h, w = frame.data.shape[:2]
        if self.task == "denoise_raw":
            h, w = h // 2, w // 2
        return self.models.macs(self.task, variant, h, w)
