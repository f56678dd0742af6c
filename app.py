"""PixelNAS demo app (Gradio). Thin: widgets → isp calls → images and tables.

The full comparison UI (heavy vs searched, search and benchmark tabs) is tracked in the app issue; this first
version develops an uploaded photo or RAW through the classical ISP and reports per-stage timing and quality.
"""
from __future__ import annotations

import argparse

import gradio as gr

from isp.capture import load_capture
from isp.errors import InputError
from isp.pipeline import Pipeline, score_against

ISO_CHOICES = [100, 400, 800, 1600, 3200, 6400]


def develop(path: str | None, iso: int, zoom: bool, enhance: bool, demosaic: str):
    if not path:
        raise gr.Error("Upload a photo or a camera RAW file first.")
    try:
        capture = load_capture(path, iso=iso, zoom=zoom, long_side=1024)
        config = {"demosaic": demosaic, "sr_x2": "classical" if zoom else None,
                  "enhance": "classical" if enhance else None}
        result = Pipeline(config).run(capture.raw)
    except InputError as error:
        raise gr.Error(str(error)) from None
    rows = [[r.stage, r.variant, round(r.ms, 1), round(r.macs / 1e6, 2)] for r in result.reports]
    scores = score_against(result, capture.truth) if capture.truth is not None else None
    summary = ("RAW file: no ground truth. " + " ".join(capture.notes)) if scores is None else \
        "vs the photo: " + ", ".join(f"{k} {v}" for k, v in scores.items())
    return result.image, rows, summary


def build_app() -> gr.Blocks:
    with gr.Blocks(title="PixelNAS") as demo:
        gr.Markdown("# PixelNAS — a simulated phone ISP\nUpload a photo (simulated sensor capture) or a camera RAW.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Photo or RAW", type="filepath")
                iso = gr.Dropdown(ISO_CHOICES, value=800, label="ISO")
                zoom = gr.Checkbox(label="×2 zoom")
                enhance = gr.Checkbox(label="Enhance")
                demosaic = gr.Dropdown(["bilinear", "malvar", "menon"], value="malvar", label="Demosaic")
                run = gr.Button("Develop", variant="primary")
            with gr.Column():
                image = gr.Image(label="Result", type="numpy")
                table = gr.Dataframe(headers=["stage", "variant", "ms", "MMACs"], label="Stages")
                summary = gr.Markdown()
        run.click(develop, [upload, iso, zoom, enhance, demosaic], [image, table, summary], api_name="process")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="PixelNAS demo app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    build_app().queue(default_concurrency_limit=2, max_size=32).launch(
        server_name=args.host, server_port=args.port, max_file_size="200mb", share=False)


if __name__ == "__main__":
    main()
