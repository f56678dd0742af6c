"""The three learned pixel tasks: how training pairs are made from photos and how a prediction is scored.

| task        | network input → output                                    | pairs made by                          |
|-------------|------------------------------------------------------------|----------------------------------------|
| denoise_raw | noisy packed RGGB (4 ch) + per-pixel noise σ (4 ch) → clean packed RGGB | isp.simulate.unprocess + ISO noise |
| sr_x2       | sRGB LR → sRGB ×2                                          | bicubic ↓2 (isp.simulate.downscale_x2) |
| enhance     | sRGB → sRGB                                                | isp local Laplacian reference operator |
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from isp import metrics
from isp.color import srgb_oetf
from isp.layout import to_chw, to_hwc
from isp.rawimage import pack
from isp.simulate import add_noise, crop_even, downscale_x2, iso_to_noise, quantise_8bit, random_params, unprocess
from isp.stages.learned import denoise_network_input

TRAIN_ISO_RANGE = (100, 6400)
VAL_ISO = 3200


def center_crop(image: np.ndarray, size: int | None, multiple: int = 2) -> np.ndarray:
    h, w = image.shape[:2]
    th, tw = (h, w) if size is None else (min(h, size), min(w, size))
    th, tw = th // multiple * multiple, tw // multiple * multiple
    y, x = (h - th) // 2 // multiple * multiple, (w - tw) // 2 // multiple * multiple
    return image[y:y + th, x:x + tw]


def noisy_raw_pair(photo: np.ndarray, rng: np.random.Generator, iso: float, random_camera: bool = True):
    """Simulate one capture of `photo`: returns (network input 8×H/2×W/2, clean packed 4×H/2×W/2, raw).

    The noise σ map is computed from the noisy observation (the clean signal is unknown at run time).
    """
    params = random_params(rng) if random_camera else None
    clean_raw, _ = unprocess(photo, params=params, rng=rng)
    shot, read = iso_to_noise(iso)
    clean = clean_raw.normalised()
    noisy = add_noise(clean, shot, read, rng)
    x = denoise_network_input(noisy, clean_raw.pattern, shot, read)
    clean_packed = pack(clean, clean_raw.pattern)
    raw = clean_raw.with_(mosaic=noisy, noise=(shot, read), iso=int(iso))
    return x, to_chw(clean_packed), raw


@dataclass(frozen=True)
class Task:
    """Base class: subclasses define how to prepare images, sample a batch and score a prediction."""

    name: str
    in_channels: int
    out_channels: int
    scale: int
    patch: int                  # default training crop, in network-input pixels
    val_crop: int | None        # validation crop of the photo (None = full image)
    # How the network inputs of training and validation are made, recorded on cards as training.inputs (one
    # entry per change, like precision); INPUTS_BEFORE_RECORD is what runs from before the record had.
    INPUTS = "as simulated (float32)"
    INPUTS_BEFORE_RECORD = INPUTS

    def prepare(self, images: list[np.ndarray]) -> list:
        return images

    def photo_side(self, patch: int) -> int:
        """Photo pixels (each side) one training crop of `patch` network-input pixels needs."""
        return patch * self.scale

    def sample(self, rng: np.random.Generator, prepared: list, batch: int, patch: int):
        raise NotImplementedError

    def val_pairs(self, images: list[np.ndarray], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def score(self, prediction: np.ndarray, target: np.ndarray) -> float:
        """Validation PSNR (dB) of a CHW prediction against its CHW target."""
        return metrics.psnr(np.clip(prediction, 0, 1), target)

    def classical(self, x: np.ndarray) -> np.ndarray:
        """The task's classical stage on one CHW network input (what a network must beat), CHW out."""
        raise NotImplementedError

    def loss_space(self, tensor: torch.Tensor) -> torch.Tensor:
        """Where the L1 loss is measured: the network's output space itself, unless a task says otherwise."""
        return tensor


class SuperResolution(Task):
    """LR inputs are rounded to 8 bits, as the benchmark LR files are (searched_models.evaluate): until
    edsr_baseline's step 18 435 they were not, which cost it 0.025 dB on Set5 in the benchmark protocol."""

    INPUTS = "8-bit LR (bicubic ↓2, rounded to 8 bits as the benchmark files)"
    INPUTS_BEFORE_RECORD = "float LR (bicubic ↓2, not rounded)"

    def prepare(self, images):
        pairs = []
        for image in images:
            hr = crop_even(image, 2)
            pairs.append((quantise_8bit(downscale_x2(hr)), hr))
        return pairs

    def sample(self, rng, prepared, batch, patch):
        from searched_models.data import augment, random_crop

        xs, ys = [], []
        for _ in range(batch):
            lr, hr = prepared[int(rng.integers(len(prepared)))]
            lr, hr = augment(rng, random_crop(rng, [lr, hr], patch, [1, 2]))
            xs.append(to_chw(lr))
            ys.append(to_chw(hr))
        return np.stack(xs), np.stack(ys)

    def val_pairs(self, images, seed=0):
        return [(to_chw(lr), to_chw(hr)) for lr, hr in self.prepare([center_crop(i, self.val_crop) for i in images])]

    def classical(self, x):
        from isp.stages.resize import classical_sr

        return to_chw(classical_sr(to_hwc(x)))

    def score(self, prediction, target):
        """Super-resolution protocol: PSNR on Y (BT.601) with `scale` pixels shaved at each border."""
        return metrics.psnr_y(np.clip(to_hwc(prediction), 0, 1), to_hwc(target), shave=self.scale)


def srgb_curve_torch(linear: torch.Tensor) -> torch.Tensor:
    """The sRGB OETF (IEC 61966-2-1) on a tensor, negatives clamped: isp.color.srgb_oetf for autograd."""
    x = linear.clamp(min=0.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


class RawDenoise(Task):
    """Loss and validation in sRGB-encoded raw values: the final image is judged after the ISP's gamma, which
    magnifies errors in the darks ~13× (OETF slope); a linear-domain L1 would under-weight exactly those."""

    def loss_space(self, tensor):
        return srgb_curve_torch(tensor)

    def score(self, prediction, target):
        return metrics.psnr(srgb_oetf(prediction), srgb_oetf(target))

    def classical(self, x):
        """Anscombe + NLM on the noisy planes; validation inputs are made at VAL_ISO, whose noise model it gets."""
        from isp.rawimage import unpack
        from isp.stages.denoise import denoise_bayer

        noisy = unpack(to_hwc(x[:4]), "RGGB")
        return to_chw(pack(denoise_bayer(noisy, "RGGB", *iso_to_noise(VAL_ISO)), "RGGB"))

    def photo_side(self, patch: int) -> int:
        return patch * 2                      # the network sees packed RGGB: half the photo's side

    def sample(self, rng, prepared, batch, patch):
        from searched_models.data import augment, random_crop

        xs, ys = [], []
        lo, hi = math.log(TRAIN_ISO_RANGE[0]), math.log(TRAIN_ISO_RANGE[1])
        for _ in range(batch):
            photo = prepared[int(rng.integers(len(prepared)))]
            (crop,) = augment(rng, random_crop(rng, [photo], patch * 2, [1]))
            x, y, _ = noisy_raw_pair(crop, rng, float(math.exp(rng.uniform(lo, hi))))
            xs.append(x)
            ys.append(y)
        return np.stack(xs), np.stack(ys)

    def val_pairs(self, images, seed=0):
        rng = np.random.default_rng(seed)
        pairs = []
        for image in images:
            x, y, _ = noisy_raw_pair(center_crop(image, self.val_crop), rng, VAL_ISO, random_camera=False)
            pairs.append((x, y))
        return pairs


class Enhance(Task):
    def prepare(self, images):
        from isp.stages.enhance import local_laplacian

        return [(image, local_laplacian(image)) for image in images]

    def sample(self, rng, prepared, batch, patch):
        from searched_models.data import augment, random_crop

        xs, ys = [], []
        for _ in range(batch):
            image, target = prepared[int(rng.integers(len(prepared)))]
            image, target = augment(rng, random_crop(rng, [image, target], patch, [1, 1]))
            xs.append(to_chw(image))
            ys.append(to_chw(target))
        return np.stack(xs), np.stack(ys)

    def val_pairs(self, images, seed=0):
        return [(to_chw(a), to_chw(b)) for a, b in self.prepare([center_crop(i, self.val_crop) for i in images])]

    def classical(self, x):
        from isp.stages.enhance import enhance_classical

        return to_chw(enhance_classical(to_hwc(x)))


TASKS: dict[str, Task] = {
    "denoise_raw": RawDenoise("denoise_raw", in_channels=8, out_channels=4, scale=1, patch=64, val_crop=256),
    "sr_x2": SuperResolution("sr_x2", in_channels=3, out_channels=3, scale=2, patch=48, val_crop=None),
    "enhance": Enhance("enhance", in_channels=3, out_channels=3, scale=1, patch=96, val_crop=256),
}


def check_spec_fits(spec: dict, task: Task) -> None:
    """A SettingError when a spec was written for another task or its input/output shape is not the task's."""
    from isp.errors import SettingError

    if spec.get("task") not in (None, task.name):
        raise SettingError(f"The spec is for task {spec['task']!r}, not {task.name!r}.")
    given = {"scale": 1, **spec}                       # scale defaults to 1, as in normalise_spec
    wanted = {"in_channels": task.in_channels, "out_channels": task.out_channels, "scale": task.scale}
    wrong = [f"{key} {given.get(key)} (the task needs {value})" for key, value in wanted.items()
             if given.get(key) != value]
    if wrong:
        raise SettingError(f"The spec does not fit task {task.name!r}: " + ", ".join(wrong) + ".")


def get_task(name: str) -> Task:
    from isp.errors import SettingError

    if name not in TASKS:
        raise SettingError(f"Unknown task {name!r}; choose one of {', '.join(TASKS)}.")
    return TASKS[name]
