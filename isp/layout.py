"""Array layout helpers shared by the pipeline's learned stages and the training code."""
from __future__ import annotations

import numpy as np


def to_chw(image: np.ndarray) -> np.ndarray:
    """H×W×C → contiguous float32 C×H×W (the layout networks take)."""
    return np.ascontiguousarray(np.transpose(image, (2, 0, 1)), dtype=np.float32)


def to_hwc(tensor: np.ndarray) -> np.ndarray:
    """C×H×W → contiguous float32 H×W×C (the layout the pipeline uses)."""
    return np.ascontiguousarray(np.transpose(tensor, (1, 2, 0)), dtype=np.float32)
