import json
import subprocess
import sys

from isp.io import load_image


def run(*args):
    return subprocess.run([sys.executable, "-m", "searched_models.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_process_photo_with_iso_and_zoom(tmp_path, assets_dir):
    out = tmp_path / "out.png"
    proc = run("process", str(assets_dir / "astronaut_nasa.png"), "-o", str(out), "--iso", "1600", "--zoom",
               "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert "sr_x2" in proc.stdout and "psnr" in proc.stdout
    assert load_image(out).shape == (512, 512, 3)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scores"]["psnr"] > 20 and len(report["stages"]) == 7
    # the JSON says how it was made, so the run can be repeated from it
    assert report["settings"] | {"input": None, "output": None} == {
        "input": None, "output": None, "iso": 1600.0, "seed": 0, "zoom": True, "long_side": None,
        "demosaic": "malvar", "white_balance": "as_shot", "denoise_raw": "classical", "sr_x2": "classical",
        "enhance": None}


def test_process_the_shipped_dng(tmp_path, assets_dir):
    out = tmp_path / "raw.png"
    proc = run("process", str(assets_dir / "openisp_rggb_10bit.dng"), "-o", str(out), "--long-side", "640")
    assert proc.returncode == 0, proc.stderr
    assert "demosaic" in proc.stdout and "no ground truth" in proc.stdout and "assumed:" in proc.stdout
    assert max(load_image(out).shape[:2]) <= 640


def test_bad_input_gives_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    proc = run("process", str(bad), "-o", str(tmp_path / "x.png"))
    assert proc.returncode == 2
    assert "notes.jpg" in proc.stderr and "Traceback" not in proc.stderr


def test_demosaic_bench_json_is_strict_json_when_a_method_is_exact(tmp_path):
    """A flat image is demosaicked exactly (PSNR inf); the JSON says null instead of Python's Infinity."""
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(folder / "flat.png")
    proc = run("demosaic-bench", str(folder), "--json", str(tmp_path / "d.json"))
    assert proc.returncode == 0, proc.stderr

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    report = json.loads((tmp_path / "d.json").read_text(), parse_constant=no_constants)
    scores = report["images"]["flat.png"]
    assert None in scores.values() and report["mean_psnr"]["bilinear"] is None
