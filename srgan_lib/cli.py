"""The ``srgan`` command: download, train, upscale, evaluate, reproduce, book.

Every subcommand is a thin wrapper over a library function, so that the
notebooks and the command line do the same thing. A :class:`UserError` (bad
input the user can fix) is printed as one line on stderr with exit code 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import (
    book,
    config,
    datasets,
    distributed,
    download,
    grid,
    log,
    protocols,
    reproduce,
    runlog,
    train,
    upscale,
    video,
)
from .checkpoint import load_generator
from .errors import ConfigError, UserError
from .evaluate import evaluate_images
from .metrics import METRICS

# Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments
# and sets ``func`` to ``_run_<name>(args) -> int``.


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="srgan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``srgan`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    log.setup()  # progress and warnings as plain lines on stderr; results on stdout
    try:
        return int(args.func(args) or 0)
    except UserError as exc:  # one line, whatever a library put into the message
        print(f"srgan {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"srgan {args.command}: interrupted", file=sys.stderr)
        return 130


def _add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="train the experiments and run the numbered notebooks headless (the main "
                                         "job), or print the grid's jobs")
    p.add_argument("--profile", choices=config.PROFILE_NAMES,
                   help="default: $SRGAN_PROFILE, else paper on CUDA, quick otherwise")
    p.add_argument("--only", nargs="+", metavar="NN", help="run only notebooks whose name starts with these (e.g. 01 04)")
    p.add_argument("--jobs", action="store_true", help="print one `srgan train` command per grid cell (for a job array) and exit")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds of the grid (default: the profile's)")
    p.set_defaults(func=_run_reproduce)


def _run_reproduce(args) -> int:
    if args.jobs:
        for cmd in reproduce.job_commands(args.profile, tuple(args.seeds) if args.seeds else None):
            print(cmd)
        return 0
    reproduce.reproduce(args.profile, args.only)
    return 0


def _add_book(sub) -> None:
    p = sub.add_parser("book", help="execute the notebooks and render them with their outputs as HTML (docs/book)")
    p.add_argument("--profile", choices=config.PROFILE_NAMES,
                   help=f"default: $SRGAN_PROFILE, else {book.DEFAULT_PROFILE} (also on a CUDA machine)")
    p.add_argument("--out", metavar="DIR", help="the site's folder (default: docs/book)")
    p.add_argument("--reuse", action="store_true",
                   help="render the executed notebooks `srgan reproduce` left for the profile instead of running them")
    p.set_defaults(func=_run_book)


def _run_book(args) -> int:
    print(book.build(args.profile, Path(args.out) if args.out else None, reuse=args.reuse))
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one SRGAN run (one cell of the ablation grid); resumable")
    p.add_argument("--scale", type=int, default=4, choices=config.SUPPORTED_SCALES, help="upscaling factor (default 4)")
    p.add_argument("--crop", type=int, default=88, help="HR crop size; a multiple of --scale (default 88)")
    p.add_argument("--no-tv", action="store_true", help="leave out the total-variation term (the ablation)")
    p.add_argument("--profile", choices=config.PROFILE_NAMES,
                   help="defaults for network size, data and length (default: $SRGAN_PROFILE, else paper on CUDA, "
                        "quick otherwise)")
    p.add_argument("--data", metavar="DIR", help=f"training images: a folder, or {'|'.join(datasets.DATASETS)} "
                                                  "(default: the profile's)")
    p.add_argument("--val-data", metavar="DIR", help=f"validation images: a folder, or {'|'.join(datasets.DATASETS)}")
    p.add_argument("--iters", type=int, metavar="N", help="iterations of the GAN phase (default: the profile's)")
    p.add_argument("--warmup", type=int, metavar="N", help="iterations of the MSE warm-up (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=int, metavar="N", help="GLOBAL batch size (default: the profile's)")
    batch.add_argument("--batch-per-gpu", type=int, metavar="N",
                       help="batch per process under torchrun: global batch = N x WORLD_SIZE")
    p.add_argument("--runs", metavar="DIR", help="parent folder of runs (default: runs/<profile>); the run lands in "
                                                  "DIR/<run_name>")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.add_argument("--device", choices=config.DEVICES, help="default: the profile's (auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def train_config(args, world_size: int) -> config.TrainConfig:
    """The run's config from ``srgan train``'s arguments (``--batch-per-gpu`` times ``world_size``)."""
    profile = config.get_profile(args.profile)
    overrides = {}
    for key, value in (("train_data", args.data), ("val_data", args.val_data), ("gan_iters", args.iters),
                       ("warmup_iters", args.warmup), ("device", args.device), ("batch_size", args.batch_size)):
        if value is not None:
            overrides[key] = value
    if args.batch_per_gpu is not None:
        overrides["batch_size"] = args.batch_per_gpu * world_size
    return profile.config(scale=args.scale, crop_size=args.crop, use_tv=not args.no_tv, seed=args.seed, **overrides)


def _run_train(args) -> int:
    cfg = train_config(args, distributed.env_world_size())
    profile = config.get_profile(cfg.profile)
    runs = Path(args.runs) if args.runs else config.runs_dir(profile.name)
    run_dir = runs / grid.run_name(cfg)
    finished = runlog.check_run_dir(run_dir, cfg) and (run_dir / "generator.pt").is_file()
    train.train(cfg, run_dir, resume=args.resume, progress=not args.quiet and not finished)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    print(f"run {'finished already, not trained again' if finished else 'done'}: {run_dir}  "
          f"generator: {run_dir / 'generator.pt'}")
    return 0


def _add_upscale(sub) -> None:
    p = sub.add_parser("upscale", help="upscale images or videos with a trained generator (tiled), or bicubic")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders of images, or video files (mp4, mkv, mov, webm, ...: told by content); "
                        "a video becomes <name>_x<scale>.mp4, its sound kept")
    p.add_argument("--checkpoint", metavar="PATH", help="generator.pt, a run folder or a training checkpoint")
    p.add_argument("--out", metavar="DIR", help="output folder (default: results/upscaled)")
    p.add_argument("--tile", type=int, default=config.TILE,
                   help=f"tile side in LR pixels, bounds memory; 0 = whole image at once (default {config.TILE})")
    p.add_argument("--bicubic", action="store_true", help="the bicubic baseline instead of the network")
    p.add_argument("--scale", type=int, choices=config.SUPPORTED_SCALES,
                   help="factor for --bicubic; with a checkpoint it must match the checkpoint's")
    p.add_argument("--device", choices=config.DEVICES, default="auto")
    p.add_argument("--side-by-side", action="store_true",
                   help="videos: bicubic | SR side by side in one frame twice as wide (for teaching)")
    p.set_defaults(func=_run_upscale)


def _run_upscale(args) -> int:
    device = distributed.resolve_device(args.device)
    out = Path(args.out) if args.out else config.results_dir(config.get_profile().name) / "upscaled"
    # files are told apart by content; folders (and missing paths, which upscale_files reports) are images
    videos = [p for p in args.inputs if Path(p).is_file() and video.input_kind(p) == "video"]
    images = [p for p in args.inputs if p not in videos]
    if args.side_by_side and (args.bicubic or not videos):
        raise ConfigError("--side-by-side shows bicubic | SR for videos: pass a video and --checkpoint, "
                          "not --bicubic")
    written = [] if not images else upscale.upscale_files(images, args.checkpoint, out, tile=args.tile or None,
                                                   bicubic=args.bicubic, scale=args.scale, device=device,
                                                   progress=lambda src, dst: print(f"{src} -> {dst}"))
    if images:
        print(f"{len(written)} image(s) written to {out}")
    if videos:
        video.upscale_videos(videos, args.checkpoint, out, tile=args.tile or None, bicubic=args.bicubic,
                             scale=args.scale, device=device, side_by_side=args.side_by_side, progress=True,
                             report=lambda src, r: print(f"{src} -> {r.path} ({r.frames} frames at "
                                                         f"{float(r.fps):.4g} fps, {r.size[0]}x{r.size[1]}; "
                                                         f"audio {r.audio})"))
    return 0


def _add_download(sub) -> None:
    p = sub.add_parser("download", help="download, verify and extract a dataset (resumable)",
                       description="Download a dataset archive (resuming an interrupted download), check its "
                       "SHA-256 and extract it atomically; a dataset already present is left alone.")
    p.add_argument("dataset", choices=datasets.downloadable(),
                   help="; ".join(f"{name}: {datasets.DATASETS[name].description}" for name in datasets.downloadable()))
    p.add_argument("--root", help="data folder (default: $SRGAN_DATA or <repo>/data)")
    p.add_argument("--archive", action="append", default=[], metavar="PATH_OR_URL",
                   help="an archive fetched by other means, or another address for it (repeatable); "
                   "verified by the same checksum")
    p.add_argument("--url", metavar="URL", help="a mirror: the archive file names are appended to this address")
    p.add_argument("--retries", type=int, default=5, help="reconnections after a dropped connection (default 5)")
    p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after extraction")
    p.set_defaults(func=_run_download)


def _run_download(args) -> int:
    download.download(args.dataset, root=args.root, archives=args.archive, mirror=args.url,
                      retries=args.retries, keep_archive=args.keep_archive)
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="PSNR and SSIM of bicubic or a trained generator on a folder of HR images",
                       description="Make LR images from HR images, restore them (bicubic or a generator) and score "
                       "them under a protocol: 'standard' (Y channel, border removed, MATLAB bicubic) or 'paper' "
                       "(the paper's reference code: RGB, PIL bicubic, PSNR of the mean MSE).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--bicubic", action="store_true", help="score the bicubic baseline")
    what.add_argument("--checkpoint", metavar="PATH", help="score a generator: generator.pt, a run folder or a checkpoint")
    p.add_argument("--data", required=True, metavar="DIR",
                   help=f"a folder of HR images, or {'|'.join(datasets.DATASETS)} (their validation images)")
    p.add_argument("--scale", type=int, choices=config.SUPPORTED_SCALES,
                   help="upscaling factor (default: the checkpoint's, 4 for --bicubic)")
    p.add_argument("--protocol", choices=protocols.PROTOCOLS, default="standard", help="default: standard")
    p.add_argument("--resize", choices=config.RESIZE_METHODS,
                   help="how LR (and bicubic) images are made (default: the protocol's: matlab / pil)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N images (sorted by name)")
    p.add_argument("--max-side", type=int, metavar="PX", help="centre-crop each HR image to at most PX a side")
    p.add_argument("--tile", type=int, default=config.TILE,
                   help=f"with --checkpoint: tile side in LR pixels, 0 = none (default {config.TILE})")
    p.add_argument("--device", choices=config.DEVICES, default="auto", help="with --checkpoint")
    p.add_argument("--json", action="store_true", help="print one JSON object (psnr, ssim, protocol, scale, count, "
                                                       "per_image)")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    folder = datasets.data_folder(args.data, "val")
    scale, upscale_fn, method = args.scale or 4, None, "bicubic"
    if args.checkpoint:
        device = distributed.resolve_device(args.device)
        generator, cfg = load_generator(args.checkpoint, device=device)
        if args.scale and args.scale != cfg.scale:
            raise ConfigError(f"--scale {args.scale} does not match the checkpoint {args.checkpoint} "
                              f"(trained for x{cfg.scale}): drop --scale or pass --scale {cfg.scale}")
        scale, method = cfg.scale, grid.run_name(cfg)
        upscale_fn = lambda lr: upscale.upscale(generator, lr, tile=args.tile or None).cpu()  # noqa: E731
    result = evaluate_images(folder, scale, protocol=args.protocol, upscale_fn=upscale_fn,
                             resize_method=args.resize, limit=args.limit, max_side=args.max_side)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"{method} x{scale} on {folder} ({result.count} images, protocol {result.protocol}, "
              f"LR by {result.resize_method}): "
              + "  ".join(f"{m.label} {result.values[name]:.4f}{m.suffix}" for name, m in METRICS.items()))
    return 0


_COMMANDS: list = [_add_train, _add_upscale, _add_reproduce, _add_book, _add_download, _add_evaluate]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
