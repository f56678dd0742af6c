"""The README results table must be what `pixelnas results-table` generates from the committed eval JSON."""
import json

from searched_models import results_table


def test_readme_table_matches_committed_eval_json():
    readme = results_table.README.read_text()
    assert results_table.splice(readme, results_table.render()) == readme, \
        "README results table is out of date: run `pixelnas results-table`"


def test_table_reflects_the_json(tmp_path):
    report = {"task": "sr_x2", "seed": 0, "isos": None, "groups": [{"set": "Set5"}], "summary": [
        {"name": "edsr", "role": "heavy", "macs_per_input_mp": 1.2e12, "ms_per_mp": 900.0, "psnr": 37.6, "R": 1.0,
         "G": 1.0, "energy": {"npu_int8": {"mj_per_12mp_photo": 650.0}}}]}
    (tmp_path / "sr_x2").mkdir()
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    block = results_table.render(tmp_path)
    assert "| edsr | heavy | 1200.000 | 900 | 37.60 | 1.0 | 1.00 | 650 |" in block
    assert results_table.render(tmp_path / "none").count("No evaluation") == 1
