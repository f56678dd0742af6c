"""The ISP: ordered stages, a variant per stage, per-stage timing, MACs and intermediates.

    BLC → [denoise_raw] → WB → demosaic → CCM → tone → [sr_x2] → [enhance]

A config maps each stage name to a variant, or to None to skip an optional stage. Learned slots
(denoise_raw, sr_x2, enhance) accept "classical" variants and any zoo model name or role ("heavy",
"searched").
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from isp import metrics
from isp.errors import SettingError
from isp.io import apply_orientation
from isp.models import ModelCache
from isp.rawimage import RawImage
from isp.simulate import unprocess
from isp.stages.base import Frame, Stage
from isp.stages.black_level import BlackLevel
from isp.stages.color_matrix import ColorMatrix
from isp.stages.demosaic import Demosaic
from isp.stages.denoise import RawDenoise
from isp.stages.enhance import Enhance
from isp.stages.learned import LearnedSlot
from isp.stages.resize import SuperResolution
from isp.stages.tone import Tone
from isp.stages.white_balance import WhiteBalance

LEARNED_STAGES = ("denoise_raw", "sr_x2", "enhance")
OPTIONAL_STAGES = LEARNED_STAGES       # the stages a config may switch off (None) are exactly the learned ones

DEFAULT_CONFIG: dict[str, str | None] = {
    "black_level": "standard",
    "denoise_raw": "classical",
    "white_balance": "as_shot",
    "demosaic": "malvar",
    "ccm": "standard",
    "tone": "srgb_tone",
    "sr_x2": None,
    "enhance": None,
}


def default_stages(models: ModelCache) -> list[Stage]:
    """The stage objects in pipeline order. Adding a stage = one module + one line here."""
    return [
        BlackLevel(),
        LearnedSlot(RawDenoise(), "denoise_raw", models),
        WhiteBalance(),
        Demosaic(),
        ColorMatrix(),
        Tone(),
        LearnedSlot(SuperResolution(), "sr_x2", models),
        LearnedSlot(Enhance(), "enhance", models),
    ]


@dataclass(frozen=True)
class StageReport:
    stage: str
    variant: str
    ms: float
    macs: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


@dataclass
class Result:
    """The developed image (display sRGB, H×W×3 float32) plus what every stage did."""

    image: np.ndarray
    reports: list[StageReport]
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)
    raw: RawImage | None = None
    config: dict = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return float(sum(r.ms for r in self.reports))

    @property
    def total_macs(self) -> int:
        return int(sum(r.macs for r in self.reports))

    def report(self, stage: str) -> StageReport | None:
        return next((r for r in self.reports if r.stage == stage), None)

    def table(self) -> str:
        """The per-stage table the CLI prints."""
        lines = [f"{'stage':<14}{'variant':<18}{'ms':>10}{'MMACs':>12}"]
        for r in self.reports:
            lines.append(f"{r.stage:<14}{r.variant:<18}{r.ms:>10.1f}{r.macs / 1e6:>12.1f}")
        lines.append(f"{'total':<32}{self.total_ms:>10.1f}{self.total_macs / 1e6:>12.1f}")
        return "\n".join(lines)


class Pipeline:
    """Run a RawImage through the configured stages."""

    def __init__(self, config: dict | None = None, models: ModelCache | None = None):
        self.models = models or ModelCache()
        self.stages = default_stages(self.models)
        names = {s.name for s in self.stages}
        unknown = set(config or {}) - names
        if unknown:
            raise SettingError(f"Unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(names)}.")
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        for stage in self.stages:
            variant = self.config[stage.name]
            if variant is None:
                if stage.name not in OPTIONAL_STAGES:
                    raise SettingError(f"Stage '{stage.name}' cannot be skipped.")
                continue
            try:
                stage.check_variant(variant)
            except SettingError as error:
                error.stage = stage.name          # which setting was wrong, for callers that add a hint
                raise

    def run(self, raw: RawImage, keep_intermediates: bool = True, progress=None) -> Result:
        """Develop `raw`. `progress(fraction, text)` is called before each stage when given."""
        frame = Frame(raw.mosaic.astype(np.float32), "raw_dn", raw)
        reports, intermediates = [], {}
        active = [(s, self.config[s.name]) for s in self.stages if self.config[s.name] is not None]
        for index, (stage, variant) in enumerate(active):
            if progress is not None:
                progress(index / len(active), f"{stage.name}: {variant}")
            concrete = stage.resolve(variant)   # a zoo role → its model (reads the cards): not part of the timing
            macs = stage.macs(frame, concrete)
            start = time.perf_counter()
            out = stage(frame, concrete)
            ms = (time.perf_counter() - start) * 1000.0
            reports.append(StageReport(stage.name, variant, ms, macs, tuple(frame.data.shape), tuple(out.data.shape)))
            frame = out
            if keep_intermediates:
                intermediates[stage.name] = frame.data
        if progress is not None:
            progress(1.0, "done")
        image = apply_orientation(np.clip(frame.data, 0.0, 1.0), raw.orientation)
        return Result(np.ascontiguousarray(image), reports, intermediates, raw, dict(self.config))


def develop_photo(photo: np.ndarray, *, iso: float | None = 800, zoom: bool = False, enhance: str | None = None,
                  config: dict | None = None, seed: int = 0, models: ModelCache | None = None,
                  source: str = "photo") -> tuple[Result, np.ndarray]:
    """Simulate a capture of an sRGB photo and develop it. Returns (result, ground truth).

    zoom: the sensor sees the photo at ½ size and the sr_x2 stage must restore it ("classical" unless the
    config says otherwise). enhance: a variant for the enhance stage, or None to skip it.
    """
    raw, truth = unprocess(photo, iso=iso, zoom=zoom, seed=seed, source=source)
    cfg = dict(config or {})
    cfg.setdefault("sr_x2", "classical" if zoom else None)
    if not zoom:
        cfg["sr_x2"] = None
    cfg.setdefault("enhance", enhance)
    if iso is None:
        cfg.setdefault("denoise_raw", None)
    return Pipeline(cfg, models).run(raw), truth


def score_against(result: Result, truth: np.ndarray) -> dict[str, float]:
    """PSNR / SSIM / ΔE2000 / MS-SSIM of the developed image against the ground-truth photo."""
    if result.image.shape != truth.shape:
        raise SettingError(f"result {result.image.shape} and ground truth {truth.shape} differ in size")
    return metrics.score(result.image, truth)
