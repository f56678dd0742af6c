"""The records a comparison is made of: the user's Settings, the Plan of each variant, its finished VariantRun
and the growing Comparison — plain data plus the checks a user's choice must pass (no running, no scoring).

Memory: full resolution ("long_side=None") is refused above `FULL_RES_MAX_PIXELS` (`Settings.check_size`), which
`isp.compare` checks from the file's header before anything is decoded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from isp.capture import Capture
from isp.cpu_load import LoadMeter
from isp.errors import SettingError
from isp.pipeline import LEARNED_STAGES, Result
from isp.power import DEFAULT_PROFILE, profile
from isp.stages.demosaic import DEMOSAICERS

LONG_SIDE_RANGE = (64, 20000)       # processing sizes (long side, px) that `process` and the app accept
FULL_RES_MAX_PIXELS = 16_000_000     # "full" processing size above this would need several GB per request
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Settings:
    """Everything the Camera tab (and the `/process` API) lets a user choose.

    long_side: shrink the input so its long side is at most this many pixels (None = full resolution).
    apply_to: the learned stages the variants are applied to (None = every active one); the others run
    their classical algorithm. The benchmark uses it to isolate one task.
    """

    iso: int = 800
    zoom: bool = False
    enhance: bool = False
    demosaic: str = "malvar"
    long_side: int | None = 1024
    variants: tuple[str, ...] = ("heavy", "searched")
    device: str = DEFAULT_PROFILE
    seed: int = 0
    apply_to: tuple[str, ...] | None = None

    def active_tasks(self) -> tuple[str, ...]:
        """Learned stages that run: denoise always, SR with zoom, enhance when on."""
        return tuple(t for t in LEARNED_STAGES if t == "denoise_raw" or (t == "sr_x2" and self.zoom)
                     or (t == "enhance" and self.enhance))

    def check(self) -> None:
        """Raise SettingError for an unknown demosaic or device, a size out of range, or no variant chosen."""
        if self.demosaic not in DEMOSAICERS:
            raise SettingError(f"Unknown demosaic {self.demosaic!r}; choose one of {', '.join(DEMOSAICERS)}.")
        low, high = LONG_SIDE_RANGE
        if self.long_side is not None and not low <= self.long_side <= high:
            raise SettingError(f"The processing size must be {low}–{high} pixels (long side), not {self.long_side}.")
        profile(self.device)
        if not self.variants:
            raise SettingError("Choose at least one variant to compare.")

    def check_size(self, height: int, width: int, raw_file: bool = False) -> None:
        """Refuse full resolution (long_side None) when the developed picture would exceed FULL_RES_MAX_PIXELS:
        every variant's pipeline holds several float32 copies of the frame, which at 50–100 MP runs a server out
        of memory. (height, width): the photo, or with `raw_file` the RAW mosaic — which the ×2 zoom enlarges to
        four times its pixels (a photo is not: its simulated sensor sees half of it)."""
        scale = 2 if raw_file and self.zoom else 1
        pixels = height * width * scale * scale
        if self.long_side is None and pixels > FULL_RES_MAX_PIXELS:
            zoomed = f", {pixels / 1e6:.1f} megapixels after the ×2 zoom" if scale > 1 else ""
            raise SettingError(
                f"This file is {width}×{height} = {height * width / 1e6:.1f} megapixels{zoomed}; processing at full "
                f"size is limited to {FULL_RES_MAX_PIXELS / 1e6:.0f} megapixels of output. Choose a processing size "
                "of 1024 px (or 512/256) instead — or use `pixelnas process` on the command line for the full size.")


@dataclass(frozen=True)
class Plan:
    """One variant to run: its label and the variant of every active learned stage."""

    label: str
    learned: dict[str, str]
    cost_rank: float = 0.0


@dataclass
class VariantRun:
    """One finished variant: its pipeline result, networks' parameters, estimated energy/power and scores."""

    label: str
    learned: dict[str, str]
    result: Result
    params: int
    energy_mj: float
    power_mw: float
    scores: dict[str, float] | None = None        # vs ground truth (photos)
    agreement: dict[str, float] | None = None     # vs the reference variant (RAW files)
    score_ms: float = 0.0                         # time spent scoring (not part of the pipeline's time)
    strip: list[tuple[np.ndarray, str]] | None = None   # display thumbnails of the stages (see stage_strip)
    models_used: dict[str, str] = field(default_factory=dict)   # task → what ran ('heavy = edsr_baseline', …)


@dataclass
class Comparison:
    """The runs finished so far (cheapest first), what they are scored against, and every note to show."""

    capture: Capture
    settings: Settings
    plans: list[Plan]
    runs: list[VariantRun] = field(default_factory=list)
    target: np.ndarray | None = None        # what scores are against (None for RAW files)
    target_label: str = ""
    notes: list[str] = field(default_factory=list)
    load_ms: float = 0.0
    target_lab: np.ndarray | None = None    # CIELAB of `target`, computed once for every variant's ΔE2000
    load_meter: LoadMeter = field(default_factory=LoadMeter)   # other processes' load while the variants ran

    @property
    def other_load(self) -> float | None:
        """Cores other processes kept busy on average while the variants ran (None: too short or unmeasurable)."""
        return self.load_meter.cores

    @property
    def done(self) -> bool:
        return len(self.runs) == len(self.plans)

    def run(self, label: str) -> VariantRun | None:
        return next((r for r in self.runs if r.label == label), None)

    @property
    def reference_label(self) -> str:
        """The variant the others are measured against: heavy if run, else the costliest one."""
        labels = [p.label for p in self.plans]
        return "heavy" if "heavy" in labels else labels[-1]

    @property
    def candidate_label(self) -> str | None:
        """The variant the headline is about: searched if run, else the cheapest other one."""
        labels = [p.label for p in self.plans if p.label != self.reference_label]
        if not labels:
            return None
        return "searched" if "searched" in labels else labels[0]
