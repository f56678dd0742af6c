"""PixelNAS ISP: a simulated phone camera pipeline with swappable classical and learned stages."""
from isp.errors import InputError
from isp.rawimage import RawImage

__all__ = ["InputError", "RawImage"]
