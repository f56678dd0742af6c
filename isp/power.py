"""Estimated energy and power of a stage on phone-class hardware: MACs × pJ/MAC + bytes moved × pJ/byte.

Everything here is an *estimate* from published per-operation energies, never a measurement:
- Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm:
  fp32 mult 3.7 pJ, fp32 add 0.9 pJ; int8 mult 0.2 pJ, int8 add 0.03 pJ; 64-bit cache read 8 KB / 32 KB / 1 MB:
  10 / 20 / 100 pJ; 64-bit DRAM read 1.3–2.6 nJ.
- Phone NPUs: 11.5 TOPS/W (Samsung 8 nm NPU, Song et al., ISSCC 2019); 13.6 TOPS/W (Samsung 5 nm NPU,
  Park et al., ISCA 2021). TOPS count 2 operations per MAC.
"""
from __future__ import annotations

from dataclasses import dataclass

from isp.errors import SettingError


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    label: str
    pj_per_mac: float        # energy of one multiply-accumulate
    pj_per_byte: float       # energy of moving one byte of weights/activations to and from local memory
    bytes_per_value: float   # 1 for int8, 4 for fp32
    source: str


PROFILES: dict[str, DeviceProfile] = {
    "npu_int8": DeviceProfile(
        "npu_int8", "Phone NPU, int8 (8 nm)",
        pj_per_mac=2.0 / 11.5,        # 11.5 TOPS/W → 0.087 pJ/op, 2 ops per MAC (Song et al., ISSCC 2019)
        pj_per_byte=100.0 / 8.0,      # 1 MB SRAM: 100 pJ per 64-bit read (Horowitz 2014) → 12.5 pJ/byte
        bytes_per_value=1.0,
        source="Song et al. ISSCC 2019 (11.5 TOPS/W); Horowitz ISSCC 2014 (1 MB SRAM 100 pJ/64 bit)"),
    "npu_int8_5nm": DeviceProfile(
        "npu_int8_5nm", "Phone NPU, int8 (5 nm)",
        pj_per_mac=2.0 / 13.6,        # 13.6 TOPS/W (Park et al., ISCA 2021)
        pj_per_byte=100.0 / 8.0,      # same on-chip SRAM figure as above (Horowitz 2014)
        bytes_per_value=1.0,
        source="Park et al. ISCA 2021 (13.6 TOPS/W); Horowitz ISSCC 2014"),
    "cpu_fp32": DeviceProfile(
        "cpu_fp32", "Phone CPU, fp32 SIMD (arithmetic + L1 only)",
        pj_per_mac=3.7 + 0.9,         # fp32 mult + add, 45 nm (Horowitz 2014)
        pj_per_byte=20.0 / 8.0,       # 32 KB cache: 20 pJ per 64-bit read (Horowitz 2014) → 2.5 pJ/byte
        bytes_per_value=4.0,
        source="Horowitz ISSCC 2014 (fp32 mult 3.7 pJ + add 0.9 pJ; 32 KB cache 20 pJ/64 bit)"),
}
DEFAULT_PROFILE = "npu_int8"


def profile(name: str) -> DeviceProfile:
    if name not in PROFILES:
        raise SettingError(f"Unknown device profile {name!r}; choose one of {', '.join(PROFILES)}.")
    return PROFILES[name]


def energy_mj(macs: float, values_moved: float, device: str | DeviceProfile = DEFAULT_PROFILE) -> float:
    """Estimated energy in millijoules: MACs × pJ/MAC + values moved × bytes/value × pJ/byte."""
    p = profile(device) if isinstance(device, str) else device
    return (macs * p.pj_per_mac + values_moved * p.bytes_per_value * p.pj_per_byte) * 1e-9


def power_mw(energy_per_frame_mj: float, fps: float = 30.0) -> float:
    """Average power in milliwatts of running a stage on every frame of a video."""
    return energy_per_frame_mj * fps


PHOTO_12MP = (3000, 4000)      # output size of a 12 MP photo (H, W)
VIDEO_1080P = (1080, 1920)
