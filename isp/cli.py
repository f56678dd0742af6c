"""ISP subcommands of the `pixelnas` CLI (registered by `searched_models.cli`)."""
from __future__ import annotations

from isp.cli_types import (distinct_files, image_side, iso_value, json_report, non_negative_int, output_file,
                           positive_int, write_text)


def add_commands(sub) -> None:
    p = sub.add_parser("process", help="develop a photo (simulated sensor) or a camera RAW through the ISP",
                       description="Develop INPUT and write OUTPUT. A photo is first turned into a simulated sensor "
                                   "capture (unprocessing + ISO noise) and scored against itself; a RAW file "
                                   "(DNG, CR2, NEF, ARW, RAF, …) is developed as shot.")
    p.add_argument("input", metavar="INPUT", help="photo (PNG/JPEG/TIFF) or camera RAW file")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output image (.png, .jpg or .tif)")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--iso", type=iso_value, default=800,
                       help="simulated sensor ISO for photos, 50–12800 (default 800)")
    noise.add_argument("--noise-free", action="store_true",
                       help="simulate without sensor noise (photos only; the --denoise stage still runs unless "
                            "--denoise off)")
    p.add_argument("--zoom", action="store_true",
                   help="×2 zoom: the sensor sees the photo at half size; sr_x2 restores it")
    p.add_argument("--enhance", nargs="?", const="classical", default=None, metavar="VARIANT",
                   help="run the enhancement stage: classical, reference (the local Laplacian operator), heavy, "
                        "searched or a zoo name (default when given without a value: classical); put INPUT before "
                        "it or write --enhance=VARIANT, or the file name is taken as the variant")
    p.add_argument("--demosaic", default="malvar", help="bilinear | malvar | menon (default malvar)")
    p.add_argument("--denoise", default="classical",
                   help="raw denoiser variant: classical, heavy, searched, a zoo name or 'off' (default classical)")
    p.add_argument("--sr", default="classical",
                   help="×2 zoom variant, used with --zoom: classical (bicubic), lanczos, heavy, searched or a zoo "
                        "name (default classical)")
    p.add_argument("--wb", default="as_shot", help="white balance: as_shot | grey_world (default as_shot)")
    p.add_argument("--long-side", type=image_side, default=None,
                   help="processing size: the output's long side at most, 64–20000 px; a photo is shrunk to it, a "
                        "RAW binned by 2×2 tiles to fit it (to fit half of it with --zoom), but never to a short "
                        "side under 64 px, so a very small size is not reached exactly (default: full size)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed (default 0)")
    p.add_argument("--json", help="also write the stage table and scores as JSON here")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads for the learned stages (default: all cores)")
    p.set_defaults(func=run_process)

    b = sub.add_parser("demosaic-bench", help="PSNR of the demosaicers on noise-free mosaics of a folder",
                       description="Mosaic each image of FOLDER (RGGB, no noise), demosaic it with every method "
                                   "and print PSNR (RGB, 10-px border shaved) and ms per MP.")
    b.add_argument("folder", help="folder of colour images (PNG/JPEG/TIFF/BMP, searched recursively) taken as "
                   "ground truth")
    b.add_argument("--json", help="write the results as JSON here")
    b.set_defaults(func=run_demosaic_bench)


def run_process(args) -> int:
    from isp.capture import load_capture
    from isp.errors import SettingError
    from isp.io import check_save_name, save_image
    from isp import metrics
    from isp.pipeline import Pipeline

    distinct_files(**{"input": args.input, "output image": args.output, "JSON file": args.json})
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    output_file(args.output, "output image")
    check_save_name(args.output)
    if args.json:
        output_file(args.json, "JSON file")
    config = {"demosaic": args.demosaic, "white_balance": args.wb,
              "denoise_raw": None if args.denoise == "off" else args.denoise,
              "sr_x2": args.sr if args.zoom else None, "enhance": args.enhance}
    try:
        pipeline = Pipeline(config)                 # checks every variant name before the input is read
    except SettingError as error:
        if error.stage == "denoise_raw":
            raise SettingError(f"{error} --denoise off skips the stage.") from None
        raise
    capture = load_capture(args.input, iso=None if args.noise_free else args.iso, zoom=args.zoom,
                           long_side=args.long_side, seed=args.seed)
    result = pipeline.run(capture.raw, keep_intermediates=False)   # only the final image is used: bounded memory
    save_image(args.output, result.image)
    print(f"input: {capture.raw.source} ({capture.raw.width}×{capture.raw.height} mosaic, {capture.raw.pattern})")
    for note in capture.notes:
        print(f"assumed: {note}")
    if capture.is_raw_file and args.noise_free:
        print("note: --noise-free applies to photos only; a RAW file carries its own noise")
    elif capture.is_raw_file and args.iso != 800:
        print("note: --iso applies to photos only; a RAW file carries its own noise")
    if not args.zoom and args.sr != "classical":
        print(f"note: --sr {args.sr} has no effect without --zoom")
    print(result.table())
    scores = None
    if capture.truth is not None:
        target, label = capture.truth, "the photo"
        if args.enhance:   # an enhanced result is judged against the photo through the reference operator
            from isp.stages.enhance import local_laplacian

            target, label = local_laplacian(capture.truth), "the photo + reference enhancement (local Laplacian)"
        scores = metrics.score(result.image, target)
        print(f"vs {label}: " + "  ".join(f"{k} {v}" for k, v in scores.items()))
    else:
        print("RAW input: no ground truth to score against")
    print(f"wrote {args.output} ({result.image.shape[1]}×{result.image.shape[0]})")
    if args.json:
        settings = {"input": str(args.input), "output": str(args.output), "iso": None if args.noise_free else args.iso,
                    "seed": args.seed, "zoom": args.zoom, "long_side": args.long_side, **config}
        if capture.is_raw_file:
            settings.update(iso=None, seed=None)      # a RAW file carries its own noise: neither applies
        write_text(args.json, json_report({
            "settings": settings,
            "stages": [r.__dict__ | {"input_shape": list(r.input_shape), "output_shape": list(r.output_shape)}
                       for r in result.reports],
            "scores": scores, "assumptions": list(capture.notes)}))
    return 0


def run_demosaic_bench(args) -> int:
    from isp.demosaic_eval import evaluate_demosaic, format_table

    if args.json:
        output_file(args.json, "JSON file")
    results = evaluate_demosaic(args.folder)
    print(format_table(results))
    if args.json:
        write_text(args.json, json_report(results))
    return 0
