"""Scoring bicubic and trained models on a folder of HR images.

:func:`evaluate_images` turns every HR image into an (HR, LR) pair under one of
the protocols of :mod:`srgan_lib.protocols`, restores it (bicubic, or a model's
``upscale_fn``) and scores it with every metric of :data:`srgan_lib.metrics.METRICS`.
:func:`score_bicubic` scores bicubic at both scales under both protocols, for
:func:`srgan_lib.tables.write_bicubic_tables` (the bicubic columns of the paper's
Tables 1-2). ``notebooks/01_bicubic_baseline.ipynb`` walks through both.
:func:`stat` summarises results over seeds (mean and std per metric) for the tables.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from PIL import Image
from tqdm.auto import tqdm

from .errors import ConfigError, DataError
from .images import center_crop, list_images, load_image, to_tensor
from .metrics import METRICS
from .protocols import (
    PROTOCOL_RESIZE,
    PROTOCOLS,
    aggregate,
    check_protocol,
    make_pair,
    reference,
    score_image,
)
from .resize import imresize


@dataclass
class EvalResult:
    """Scores of one method on one set of images.

    Attributes:
        values: the set's value of each metric of :data:`srgan_lib.metrics.METRICS`,
            ``{"psnr": dB, "ssim": ..., ...}``, aggregated as each metric says (PSNR:
            mean of per-image values for ``standard``, PSNR of the mean MSE for ``paper``).
            ``result.psnr`` is ``result.values["psnr"]``, and so on for every metric.
        protocol: ``"standard"`` or ``"paper"``.
        scale: upscaling factor.
        count: number of images.
        per_image: one dict per image with ``name``, ``mse`` and one value per metric.
        resize_method: how the LR images (and the bicubic restore) were made.
    """

    values: dict[str, float]
    protocol: str
    scale: int
    count: int
    per_image: list = field(default_factory=list)
    resize_method: str = "matlab"

    def __getattr__(self, name: str) -> float:
        values = self.__dict__.get("values")  # not self.values: no recursion before __init__ has run
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict:
        """A JSON-ready dict: the metrics first (``psnr``, ``ssim``, ...), then the other fields.

        Non-finite values (the ``inf`` PSNR of identical images) become ``null``.
        """
        d = asdict(self)
        d = {**d.pop("values"), **d}
        for row in [d] + d["per_image"]:
            for key, value in row.items():
                if isinstance(value, float) and not math.isfinite(value):
                    row[key] = None
        return d


@dataclass(frozen=True)
class Stat:
    """A metric over seeds (one :class:`EvalResult` each): mean, sample std (0 for one value) and count."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def std(self) -> float:
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    def format(self, digits: int) -> str:
        text = f"{self.mean:.{digits}f}"
        return f"{text} ± {self.std:.{digits}f}" if self.n > 1 else text


def stat(results) -> dict[str, Stat] | None:
    """A :class:`Stat` per metric of ``METRICS`` over one result or a list (one per seed); None for none.

    The results need only ``values`` (``{metric: value}``), as :class:`EvalResult` has.
    """
    if results is None:
        return None
    if not isinstance(results, (list, tuple)):
        results = [results]
    if not results:
        return None
    return {m: Stat(tuple(float(r.values[m]) for r in results)) for m in METRICS}


def seeds(stats: dict[str, Stat] | None) -> int:
    """How many results (seeds) a :func:`stat` dict is over; 0 for None."""
    return next(iter(stats.values())).n if stats else 0


def _image_paths(folder_or_paths) -> list[Path]:
    if isinstance(folder_or_paths, (str, os.PathLike)) and Path(folder_or_paths).is_dir():
        return list_images(folder_or_paths)
    if isinstance(folder_or_paths, (str, os.PathLike)):
        return [Path(folder_or_paths)]  # one file; load_image names it if unreadable
    return [Path(p) for p in folder_or_paths]


def _single_channel(path: Path) -> bool:
    """True if the file stores one channel (grayscale), which ``standard`` scores as is."""
    with Image.open(path) as img:
        return img.mode != "P" and len(img.getbands()) == 1


def evaluate_images(folder_or_paths, scale: int, protocol: str = "standard",
                    upscale_fn: Callable | None = None, resize_method: str | None = None,
                    limit: int | None = None, max_side: int | None = None, device=None) -> EvalResult:
    """Score bicubic (``upscale_fn=None``) or a model on HR images under ``protocol``.

    Args:
        folder_or_paths: a folder of HR images, one image file, or a list of files.
        scale: upscaling factor (the LR images are ``1/scale`` the size).
        protocol: ``"standard"`` or ``"paper"`` (see :mod:`srgan_lib.protocols`).
        upscale_fn: ``lr (1 x 3 x h x w float in [0, 1]) -> sr (1 x 3 x H x W in
            [0, 1])``; ``None`` scores the bicubic baseline.
        resize_method: how LR (and bicubic) images are made; ``None`` = the
            protocol's own (MATLAB for ``standard``, PIL for ``paper``).
        limit: score only the first ``limit`` images (sorted by name).
        max_side: centre-crop each HR image to at most ``max_side`` pixels a side
            first (keeps the smoke profile fast).
        device: where the metrics and resizes are computed (float64, the same
            numbers on any device); ``None`` = CUDA when available (SSIM of a 2K
            image takes seconds on a CPU), else the CPU.

    Returns:
        EvalResult

    Raises:
        DataError: the folder holds no image. ImageReadError: a file is unreadable.
        ConfigError: a bad protocol, ``limit`` < 1, ``max_side`` < ``scale``, or ``upscale_fn``
            returns the wrong size.
    """
    return evaluate_methods(folder_or_paths, scale, {"the model": upscale_fn}, (protocol,), resize_method,
                            limit, max_side, device)[("the model", protocol)]


def evaluate_methods(folder_or_paths, scale: int, methods: dict[str, Callable | None],
                     protocols: Iterable[str] = PROTOCOLS, resize_method: str | None = None,
                     limit: int | None = None, max_side: int | None = None,
                     device=None, progress: bool = False) -> dict[tuple[str, str], EvalResult]:
    """Score several methods under several protocols, decoding each image and making each pair once.

    What :func:`evaluate_images` does for one method and protocol, with the
    loop over images outermost: every image is decoded once, and its (HR, LR)
    pair and its reference (:func:`srgan_lib.protocols.reference`) made once per
    protocol, whatever the number of methods (the grid's evaluation scores 7
    methods a scale on 2K images).

    Args:
        methods: ``{name: upscale_fn}`` with ``upscale_fn`` as in
            :func:`evaluate_images` (``None``: bicubic).
        protocols: the protocols to score under.
        folder_or_paths, scale, resize_method, limit, max_side, device: as in
            :func:`evaluate_images` (``resize_method=None``: each protocol's own).
        progress: a ``tqdm.auto`` bar over the images.

    Returns:
        ``{(name, protocol): EvalResult}``.
    """
    protocols = tuple(protocols)
    for protocol in protocols:
        check_protocol(protocol)
    if limit is not None and limit < 1:  # 0 would otherwise mean "every image" and -1 "all but the last"
        raise ConfigError(f"limit={limit}: use limit >= 1, or None for every image")
    if max_side is not None and max_side < scale:
        raise ConfigError(f"max_side={max_side} is smaller than scale={scale}: use a larger max_side")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resize_device = None if torch.device(device).type == "cpu" else device
    resize = {p: resize_method or PROTOCOL_RESIZE[p] for p in protocols}
    paths = _image_paths(folder_or_paths)[:limit]
    rows = {(name, p): [] for name in methods for p in protocols}
    for path in tqdm(paths, desc=f"scoring x{scale}", unit="image", disable=not progress, dynamic_ncols=True):
        image = load_image(path)
        if max_side:
            image = center_crop(image, max_side)
        single = _single_channel(path)
        for protocol in protocols:
            method = resize[protocol]
            try:
                hr, lr = make_pair(image, scale, protocol, method, device=resize_device)
            except DataError as exc:
                raise DataError(f"{path}: {exc}") from None
            lr_t, ref = None, reference(hr, protocol, single, device)
            for name, upscale_fn in methods.items():
                if upscale_fn is None:
                    sr = imresize(lr, size=hr.shape[:2], method=method, device=resize_device)
                else:
                    lr_t = to_tensor(lr) if lr_t is None else lr_t
                    with torch.no_grad():
                        sr = upscale_fn(lr_t)
                    if tuple(sr.shape[-2:]) != hr.shape[:2]:
                        raise ConfigError(f"{path.name}: {name} returned {tuple(sr.shape[-2:])} pixels for an LR "
                                          f"image of {lr.shape[:2]}, expected {hr.shape[:2]}: does its scale "
                                          f"match scale={scale}?")
                try:
                    row = score_image(sr, hr, scale, protocol, single_channel=single, device=device, ref=ref)
                except DataError as exc:
                    raise DataError(f"{path}: {exc}") from None
                rows[(name, protocol)].append({"name": path.name, **row})
    out = {}
    for (name, protocol), per_image in rows.items():
        out[(name, protocol)] = EvalResult(aggregate(per_image, protocol, scale), protocol, scale,
                                           len(per_image), per_image, resize[protocol])
    return out


def score_bicubic(folder, scales: Iterable[int] = (2, 4), protocols: Iterable[str] = PROTOCOLS,
                  limit: int | None = None, max_side: int | None = None) -> dict[tuple[int, str], EvalResult]:
    """Bicubic on ``folder`` for every scale and protocol: ``{(scale, protocol): EvalResult}``.

    ``limit`` and ``max_side`` are as in :func:`evaluate_images`; each protocol
    makes its LR images with its own resize method.
    """
    protocols = tuple(protocols)
    out = {}
    for scale in scales:
        both = evaluate_methods(folder, scale, {"bicubic": None}, protocols, limit=limit, max_side=max_side)
        out.update({(scale, protocol): both[("bicubic", protocol)] for protocol in protocols})
    return out
