"""Inference: upscale images with a trained generator, tile by tile.

A fully convolutional generator needs memory in proportion to the image: at x4
the last sub-pixel block of the paper's network holds 256 channels at half the
output resolution, about 4 GB for a 1024 x 1024 input. :func:`upscale` cuts the
low-resolution input into tiles, runs each with a margin of ``tile_overlap``
extra LR pixels on every side, and keeps only the tile's own part of the output.

Why the result equals the untiled one: in eval mode every layer of the
generator is either a convolution or pointwise (BatchNorm with its running
statistics, PReLU, the clamp), and PixelShuffle only rearranges. An output
pixel therefore depends only on the input pixels within the network's
receptive-field radius (:func:`receptive_radius`). When the margin is at least
that radius, every kept output pixel sees exactly the inputs it sees in the
whole image -- including the zero padding at the image's true borders, which
the tiles there share. What remains is float rounding (different conv
algorithms for different sizes), ~1e-6.

For the paper's generator (16 residual blocks) the radius is 40 LR pixels at x2
and x4 (see :func:`receptive_radius`); the default margin is that radius.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_generator
from .config import TILE
from .errors import CheckpointError, ConfigError, DataError
from .fileio import check_writable
from .images import list_images, load_image, save_image, to_tensor
from .resize import imresize

#: Support radius (LR pixels) of the bicubic kernel of ``upsample_skip="bicubic"``.
_BICUBIC_RADIUS = 2


def receptive_radius(generator: nn.Module) -> int:
    """Receptive-field radius of ``generator`` in LR pixels (rounded up).

    Walks the layers in the order they are registered (the order of the
    forward pass in :class:`srgan_lib.models.Generator`): a k x k conv with
    dilation d adds ``d * (k - 1) / 2`` pixels at the current resolution, i.e.
    that divided by the upsampling done so far in LR pixels; ``PixelShuffle(r)``
    multiplies the resolution by r. The bicubic skip (support 2) runs in
    parallel and never exceeds the conv chain of a real generator.

    For the paper's network: 4 (9x9 head) + 2 x 16 (blocks) + 1 (body tail)
    + 1 + 1/2 (two sub-pixel convs) + 4/4 (9x9 tail at x4) = 39.5 -> 40.
    """
    radius, resolution = 0.0, 1
    for module in generator.modules():
        if isinstance(module, nn.Conv2d):
            k_h, k_w = module.kernel_size
            d_h, d_w = module.dilation
            radius += max(d_h * (k_h - 1), d_w * (k_w - 1)) / 2 / resolution
        elif isinstance(module, nn.PixelShuffle):
            resolution *= module.upscale_factor
        elif isinstance(module, nn.Upsample):
            resolution *= int(module.scale_factor)
    if getattr(generator, "upsample_skip", "none") == "bicubic":
        radius = max(radius, _BICUBIC_RADIUS)
    return int(math.ceil(radius))


def _starts(length: int, tile: int) -> list[int]:
    return list(range(0, length, tile))


@torch.no_grad()
def upscale(generator: nn.Module, lr, tile: int | None = None, tile_overlap: int | None = None) -> torch.Tensor:
    """Super-resolve ``lr`` with ``generator``, optionally in tiles.

    Args:
        generator: a :class:`srgan_lib.models.Generator` (run in eval mode here;
            its previous mode is restored).
        lr: N x 3 x h x w float in [0, 1] (any device; moved to the generator's).
        tile: side of a tile in LR pixels (``None`` = the whole image at once).
            Memory grows with ``(tile + 2 * tile_overlap)^2``.
        tile_overlap: margin in LR pixels run around each tile and discarded.
            ``None`` = :func:`receptive_radius` of the generator, which makes the
            tiled result equal to the untiled one up to float rounding. A
            smaller margin saves time but shows seams.

    Returns:
        Tensor: N x 3 x (scale*h) x (scale*w) float in [0, 1], on ``lr``'s device.
    """
    scale = int(generator.scale)
    param = next(generator.parameters(), None)
    device = param.device if param is not None else lr.device
    dtype = param.dtype if param is not None else torch.float32
    overlap = receptive_radius(generator) if tile_overlap is None else int(tile_overlap)
    if tile is not None and tile < 1:
        raise ConfigError(f"tile={tile}: use a positive tile size in LR pixels (or None for no tiling)")
    if overlap < 0:
        raise ConfigError(f"tile_overlap={overlap}: must be >= 0")
    was_training = generator.training
    generator.eval()
    try:
        n, c, h, w = lr.shape
        if tile is None or (h <= tile and w <= tile):
            return generator(lr.to(device, dtype)).to(lr.device)
        out = lr.new_empty((n, c, h * scale, w * scale))
        for y0 in _starts(h, tile):
            y1 = min(y0 + tile, h)
            for x0 in _starts(w, tile):
                x1 = min(x0 + tile, w)
                # the tile plus its margin, clipped to the image
                iy0, iy1 = max(0, y0 - overlap), min(h, y1 + overlap)
                ix0, ix1 = max(0, x0 - overlap), min(w, x1 + overlap)
                sr = generator(lr[:, :, iy0:iy1, ix0:ix1].to(device, dtype))
                oy, ox = (y0 - iy0) * scale, (x0 - ix0) * scale
                out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                    sr[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale].to(out.device)
        return out
    finally:
        generator.train(was_training)


def _expand_inputs(inputs: Iterable) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path))
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder; pass image files or folders of images")
    if not files:
        raise DataError("no input image given: pass image files or folders")
    return files


def load_for_upscale(checkpoint=None, bicubic: bool = False, scale: int | None = None, device: str = "cpu"):
    """The generator and the factor for :func:`upscale_files` (and videos), from the user's arguments.

    Returns:
        tuple: ``(Generator in eval mode on device, or None with bicubic, scale)``.

    Raises:
        ConfigError, CheckpointError: no checkpoint without ``bicubic``, a scale the
            checkpoint does not have, or an unreadable checkpoint.
    """
    if not bicubic:
        if checkpoint is None:
            raise ConfigError("--checkpoint is required unless --bicubic is given")
        generator, cfg = load_generator(checkpoint, device=device)
        if scale is not None and scale != cfg.scale:
            raise CheckpointError(f"{checkpoint}: the checkpoint is a x{cfg.scale} model, not x{scale}; "
                                  f"drop --scale or pass --scale {cfg.scale}")
        return generator, cfg.scale
    if scale is None:
        if checkpoint is None:
            raise ConfigError("--bicubic needs --scale (or a --checkpoint to take the scale from)")
        scale = load_generator(checkpoint)[1].scale
    return None, scale


def upscale_files(inputs, checkpoint=None, out_dir="upscaled", tile: int | None = TILE, bicubic: bool = False,
                  scale: int | None = None, device: str = "cpu", resize_method: str = "matlab",
                  progress: Callable[[Path, Path], None] | None = None) -> list[Path]:
    """Upscale image files (or folders of them) and write PNGs.

    Args:
        inputs: image files and/or folders.
        checkpoint: a ``generator.pt``, run folder or training checkpoint
            (see :func:`srgan_lib.checkpoint.load_generator`); unused with ``bicubic``.
        out_dir: output folder (created); files are ``<stem>_srgan_x<s>.png``
            or ``<stem>_bicubic_x<s>.png``.
        tile: tile side in LR pixels for the generator (``None`` = whole image).
        bicubic: the baseline instead of the network: bicubic ``imresize``
            with ``resize_method`` (needs ``scale`` unless a checkpoint gives it).
        scale: the factor; with a checkpoint it must match the checkpoint's.
        device: ``"cpu"`` or ``"cuda"`` for the generator.
        progress: optional ``callback(input_path, output_path)`` after each image.

    Returns:
        list[Path]: the written files, in input order.

    Raises:
        DataError, ImageReadError, CheckpointError, ConfigError: user errors, each
            naming the file or argument.
    """
    files = _expand_inputs(inputs)
    generator, scale = load_for_upscale(checkpoint, bicubic, scale, device)
    out_dir = check_writable(Path(out_dir))
    written = []
    for path in files:
        img = load_image(path)
        if bicubic:
            out = imresize(img, scale=scale, method=resize_method)
            target = out_dir / f"{path.stem}_bicubic_x{scale}.png"
        else:
            out = upscale(generator, to_tensor(img), tile=tile)
            target = out_dir / f"{path.stem}_srgan_x{scale}.png"
        save_image(out, target)
        written.append(target)
        if progress is not None:
            progress(path, target)
    return written
