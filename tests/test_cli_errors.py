"""Wrong invocations of `pixelnas` fail fast with one readable line (exit status 2) and lose nothing."""
import pytest

from searched_models import cli, evaluate


def pixelnas(capsys, *args) -> tuple[int, str]:
    """Run the CLI in-process; returns (exit status, stderr). argparse errors exit via SystemExit."""
    try:
        code = cli.main(list(args))
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory):
    """A 4100×4100 (16.8 MP) PNG, just over the app's full-size limit; flat, so it is small on disk."""
    from PIL import Image

    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.new("RGB", (4100, 4100), (120, 120, 120)).save(path)
    return path


@pytest.fixture()
def junk_folder(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "text.jpg").write_text("not an image")
    return folder


@pytest.mark.parametrize("args, message", [
    (["process", "{chart}", "-o", "{tmp}/o.png", "--seed", "-1"], "--seed: must be at least 0"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--json", "{tmp}"], "is a folder"),
    (["process", "{chart}", "-o", "{chart}/o.png"], "is a file, not a folder"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--long-side", "3"], "--long-side: must be at least 64"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--iso", "nan"], "--iso: expected a finite number"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--denoise", "nope"], "--denoise off skips the stage"),
    (["process", "{chart}", "-o", "{chart}"], "The input and the output image are the same file"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--json", "{tmp}/./o.png"], "output image and the JSON file are the"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--json", "/proc/pixelnas.json"], "does not take new files|no write permission"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--iso", "10"], "--iso: ISO must be 50–12800, got 10"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--iso", "-5"], "--iso: ISO must be 50–12800, got -5"),
    (["eval", "--task", "denoise_raw", "--images", "{tmp}", "--iso", "800,100000"], "ISO must be 50–12800"),
    (["eval", "--task", "sr_x2", "--images", "{tmp}", "--json", "/proc/pixelnas.json"], "does not take new files|no write permission"),
    (["process", "{chart}", "-o", "{tmp}/o.png", "--iso", "1600", "--noise-free"], "not allowed with argument --iso"),
    (["eval", "--task", "denoise_raw", "--images", "{tmp}", "--iso", "abc"], "--iso: expected an integer"),
    (["eval", "--task", "sr_x2", "--images", ","], "at least one image folder"),
    (["eval", "--task", "sr_x2", "--images", "{junk}", "--models", "reference"], "of the enhance task only"),
    (["bench-train", "--task", "sr_x2", "--name", "fsrcnn", "--steps", "0"], "--steps: must be at least 1"),
    (["bench-train", "--task", "sr_x2", "--name", "fsrcnn", "--ab-steps", "5"], "needs --name (a trained zoo"),
    (["bench-train", "--task", "sr_x2", "--name", "fsrcnn", "--images", "{tmp}"], "add --ab-steps K"),
    (["bench-train", "--task", "sr_x2", "--name", "nope", "--ab-steps", "5", "--images", "{tmp}",
      "--val-images", "{tmp}"], "No zoo model sr_x2/nope"),
    (["results-table", "--readme", "{tmp}/missing.md"], "Cannot read the README"),
    (["results-table", "--readme", "{chart}"], "not UTF-8 text"),
    (["results-table", "--readme", "{junk}/text.jpg"], "no <!--"),
    (["search", "--task", "sr_x2", "--max-macs", "abc", "--trials", "2"], "Cannot read the MAC count"),
    (["search", "--task", "sr_x2", "--as", "foo"], "--register TRIAL and --as NAME go together"),
    (["search", "--task", "sr_x2", "--population", "1"], "--population: must be at least 2"),
    (["search", "--task", "sr_x2", "--val-crop", "16"], "--val-crop: must be at least 32"),
    (["zoo-status", "--task", "foo"], "invalid choice"),
    (["zoo-status", "--zoo", "{tmp}/nowhere"], "does not exist"),
    (["demosaic-bench", "{tmp}/nowhere"], "does not exist"),
    (["demosaic-bench", "{junk}"], "'text.jpg' is not an image"),
    (["train", "--task", "sr_x2", "--name", "fsrcnn", "--images", "{tmp}", "--steps", "-5"], "must be at least 1"),
    (["train", "--task", "sr_x2", "--name", "fsrcnn", "--images", "{tmp}", "--steps", "2", "--lr", "inf"],
     "--lr: expected a finite number"),
    (["train", "--task", "sr_x2", "--spec", "searched_models/specs/denoise_raw/dncnn_small.json",
      "--images", "{tmp}", "--steps", "2"], "is for task 'denoise_raw', not 'sr_x2'"),
    (["train", "--task", "sr_x2", "--name", "fsrcnn", "--role", "heavy", "--images", "{tmp}", "--steps", "2"],
     "already has role heavy"),
    (["process", "{chart}", "-o", "{tmp}/o.webp"], "use a .png, .tif or .jpg file name"),
    (["train", "--task", "sr_x2", "--name", "fsrcnn", "--images", "{tmp}", "--steps", "2", "--resume",
      "--zoo", "{tmp}/zoo"], "Nothing to resume"),
    (["train", "--task", "sr_x2", "--name", "fsrcnn", "--images", "{tmp}", "--steps", "2", "--resume",
      "--role", "candidate"], "a resumed run keeps its role"),
    (["train", "--task", "sr_x2", "--name", "fsrcnn", "--images", "{tmp}", "--steps", "2",
      "--distill-weight", "1.5"], "--distill-weight: must be at most 1"),
    (["bench-app", "{chart}", "--iso", "20000"], "--iso: ISO must be 50–12800"),
    (["bench-app", "{chart}", "--mp", "20"], "--mp must be 0 (the photo as is) or 0.01–16 megapixels"),
    (["bench-app", "{big}", "--mp", "0"], "time it with --mp 16 or less"),
    (["eval", "--task", "enhance", "--images", "{tmp}", "--y-8bit"], "--y-8bit is part of the sr_x2 protocol"),
])
def test_a_wrong_invocation_fails_fast_with_one_line(capsys, tmp_path, assets_dir, junk_folder, big_photo, args,
                                                     message):
    values = {"chart": str(assets_dir / "text_chart.png"), "tmp": str(tmp_path), "junk": str(junk_folder),
              "big": str(big_photo)}
    before = sorted(tmp_path.rglob("*"))
    code, err = pixelnas(capsys, *(a.format(**values) for a in args))
    assert code == 2, err
    assert any(m in err for m in message.split("|")) and "Traceback" not in err     # "a|b": either message
    assert sorted(tmp_path.rglob("*")) == before          # nothing written, nothing half-done


def test_only_a_bad_denoise_variant_gets_the_denoise_off_hint(capsys, tmp_path, assets_dir):
    chart, out = str(assets_dir / "text_chart.png"), str(tmp_path / "o.png")
    code, err = pixelnas(capsys, "process", chart, "-o", out, "--enhance", "nope")
    assert code == 2 and "'enhance'" in err and "--denoise off" not in err
    code, err = pixelnas(capsys, "process", chart, "-o", out, "--denoise", "nope")
    assert code == 2 and "--denoise off skips the stage" in err


def test_eval_reads_every_image_before_it_times_a_model(capsys, junk_folder, monkeypatch):
    def timed(*_):
        raise AssertionError("a model was timed before the images were checked")

    monkeypatch.setattr(evaluate, "measure_ms_per_mp", timed)
    code, err = pixelnas(capsys, "eval", "--task", "sr_x2", "--images", str(junk_folder), "--models", "classical")
    assert code == 2 and "text.jpg" in err


def test_number_types_refuse_nan_and_inf_but_take_any_integer():
    import argparse

    from isp.cli_types import positive_float, positive_int

    assert positive_int("9" * 400) == int("9" * 400)          # too big for a float, still an integer
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="finite"):
            positive_float(text)


@pytest.mark.parametrize("has_bf16, warned", [(False, True), (True, False), (None, False)])
def test_train_with_bf16_warns_on_a_cpu_without_bf16_units(capsys, tmp_path, junk_folder, monkeypatch,
                                                            has_bf16, warned):
    from searched_models import bench_train

    monkeypatch.setattr(bench_train, "cpu_has_bf16", lambda *_: has_bf16)
    code, err = pixelnas(capsys, "train", "--task", "sr_x2", "--name", "fsrcnn", "--images", str(junk_folder),
                         "--steps", "2", "--bf16", "--zoo", str(tmp_path / "zoo"))
    assert code == 2 and "text.jpg" in err                    # the warning does not stop the run; the junk does
    assert ("no AVX512-BF16/AMX-BF16" in err) is warned


def test_distinct_files_sees_one_file_under_two_names(tmp_path, monkeypatch):
    import os

    from isp.cli_types import distinct_files
    from isp.errors import SettingError

    (tmp_path / "a.png").write_bytes(b"x")
    os.link(tmp_path / "a.png", tmp_path / "hard.png")
    monkeypatch.chdir(tmp_path)
    for other in ("./a.png", str(tmp_path / "sub" / ".." / "a.png"), "hard.png"):
        with pytest.raises(SettingError, match="input and the output image are the same file"):
            distinct_files(**{"input": "a.png", "output image": other})
    distinct_files(**{"input": "a.png", "output image": "b.png", "JSON file": None})
    distinct_files(**{"input": "a.png", "output image": "~/a.png"})      # a literal '~' folder here, not $HOME


def test_the_patch_defaults_in_the_help_are_the_tasks_own():
    from searched_models.tasks import TASKS

    assert cli.TASK_PATCH == {task: TASKS[task].patch for task in cli.TASK_CHOICES}
