"""The training dataset: random HR crops with their LR made on the fly.

Training (paper sec. 4.1): a random ``crop_size`` HR crop of a training image
(88, 128 or 168 pixels), randomly flipped and rotated by multiples of 90 degrees,
and its LR input made by bicubic downscaling by ``scale`` with
:func:`srgan_lib.resize.imresize` (MATLAB-compatible by default; ``"pil"``
reproduces the code the paper was built on). Images are decoded once
(:mod:`srgan_lib.cache`), a crop is a view of the decoded image, and the LR
images of a batch are made together, as uint8, by one matrix product per pass
(:func:`srgan_lib.resize.matlab_downscale_batch`; MATLAB bicubic is linear).
:mod:`srgan_lib.batches` turns these host batches into tensors on a device.

Reproducibility: the batch of step ``k`` depends only on ``(seed, k)``, so a run
resumed at step ``k`` sees exactly the batches it would have seen, and DDP
ranks take disjoint slices of the same global batch. ``sampling="epoch"`` is the
paper's epoch (each epoch a seeded permutation of the images, one crop each;
:meth:`TrainDataset.iters_per_epoch` iterations); ``sampling="random"`` draws
images independently, for runs counted in iterations.

Folders: any folder of images, or a name of :data:`srgan_lib.datasets.DATASETS`
(``"div2k"``, ``"samples"``, ...) resolved by :func:`srgan_lib.datasets.data_folder`.
``notebooks/04_training.ipynb`` shows a batch.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from PIL import Image

from . import cache as _cache
from .config import RESIZE_METHODS
from .datasets import data_folder
from .errors import ConfigError, DataError
from .resize import imresize, matlab_downscale_batch

logger = logging.getLogger(__name__)

SAMPLING_MODES = ("epoch", "random")
#: Augmentation code (bit 0: flip left-right, then bit 1: flip top-bottom, then bit 2:
#: transpose) -> the one PIL transpose doing all three (``tests/test_data.py`` checks each).
_PIL_AUGMENT = {1: Image.Transpose.FLIP_LEFT_RIGHT, 2: Image.Transpose.FLIP_TOP_BOTTOM, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.TRANSPOSE, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270,
                7: Image.Transpose.TRANSVERSE}


def _check_scale_crop(scale: int, crop_size: int) -> None:
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ConfigError(f"scale={scale!r}: use a positive integer such as 2 or 4")
    if not isinstance(crop_size, (int, np.integer)) or crop_size < scale or crop_size % scale:
        raise ConfigError(
            f"crop_size={crop_size} is not divisible by scale={scale}: "
            f"choose a crop that is a multiple of {scale} (e.g. 88, 128, 168 for x2 and x4)"
        )


def _list_names(items, limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


class TrainDataset:
    """Random HR crops of a folder of images, with their LR (batched on a device by :mod:`srgan_lib.batches`).

    Files without an image extension (a README, the download marker) are ignored.
    Files with an image extension that cannot be decoded (not an image, truncated)
    are skipped with ONE warning listing them. Grayscale, palette, RGBA (on white)
    and 16-bit images are converted to 8-bit RGB by :func:`images.load_image`.

    Args:
        folder: a folder of HR images, or a dataset name (its training split; see :mod:`srgan_lib.datasets`).
        scale: downscaling factor of the LR input (2 or 4).
        crop_size: side of the square HR crop; must be divisible by ``scale``.
        augment: random horizontal/vertical flips and 90-degree rotations.
        resize_method: LR bicubic: ``"matlab"``, ``"pil"``, ``"torch"``, ``"torch_aa"``.
        small: images smaller than ``crop_size`` on a side are ``"skip"``-ped (one
            warning lists them) or ``"pad"``-ded by reflection to the crop size.
        cache: ``"auto"``, ``"ram"`` or ``"mmap"`` (see :mod:`srgan_lib.cache`).
        cache_dir: folder of ``mmap`` cache files (default ``<data>/cache``).
        progress: progress bar while decoding.

    Raises:
        ConfigError: ``crop_size`` not divisible by ``scale``, or a bad option.
        DataError: the folder does not exist (for a dataset: naming the command that fetches it)
            or holds no usable image.
    """

    def __init__(self, folder, scale: int, crop_size: int, augment: bool = True,
                 resize_method: str = "matlab", small: str = "skip", cache: str = "auto",
                 cache_dir=None, progress: bool = True):
        _check_scale_crop(scale, crop_size)
        if resize_method not in RESIZE_METHODS:
            raise ConfigError(f"resize_method={resize_method!r}: use one of {RESIZE_METHODS}")
        if small not in ("skip", "pad"):
            raise ConfigError(f"small={small!r}: use 'skip' or 'pad'")
        self.folder = data_folder(folder, "train")
        self.scale, self.crop_size = int(scale), int(crop_size)
        self.augment, self.resize_method, self.small = bool(augment), resize_method, small

        store = _cache.load_store(self.folder, cache=cache, cache_dir=cache_dir, progress=progress)
        self.store = store
        if store.unreadable:
            logger.warning(f"{self.folder}: skipped {len(store.unreadable)} unreadable file(s): "
                           + _list_names([f"{n} ({why})" for n, why in store.unreadable]))
        names, images, tiny = [], [], []
        c = self.crop_size
        for name, img in zip(store.names, store.images):
            h, w = img.shape[:2]
            if h >= c and w >= c:
                names.append(name)
                images.append(img)
            elif small == "pad":
                # numpy reflects repeatedly when the pad exceeds the image, so any size works.
                pad = ((0, max(0, c - h)), (0, max(0, c - w)), (0, 0))
                names.append(name)
                images.append(np.pad(np.asarray(img), pad, mode="reflect") if min(h, w) > 1
                              else np.pad(np.asarray(img), pad, mode="edge"))
                tiny.append(f"{name} ({h}x{w})")
            else:
                tiny.append(f"{name} ({h}x{w})")
        if tiny:
            what = "padded by reflection" if small == "pad" else "skipped (pass small='pad' to pad them)"
            logger.warning(f"{self.folder}: {len(tiny)} image(s) smaller than crop_size={c} {what}: "
                           + _list_names(tiny))
        if not images:
            reasons = [f"{n} ({why})" for n, why in store.unreadable] + (tiny if small == "skip" else [])
            raise DataError(f"{self.folder} holds no usable training image for crop_size={c}: "
                            f"{_list_names(reasons)}; add images of at least {c}x{c} pixels")
        self.names, self.images = names, images
        self._hw = np.array([im.shape[:2] for im in images], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return (f"TrainDataset({str(self.folder)!r}, {len(self)} images, scale={self.scale}, "
                f"crop_size={self.crop_size}, cache={self.store.mode})")

    def iters_per_epoch(self, batch_size: int) -> int:
        """Iterations of the paper's epoch: one random crop per image (``ceil(len / batch_size)``)."""
        return math.ceil(len(self) / batch_size)

    def plan(self, step: int, batch_size: int, seed: int, sampling: str = "epoch") -> np.ndarray:
        """The global batch of ``step`` as an int64 array ``batch_size x 4``: image, top, left, augmentation.

        Depends only on ``(seed, step)`` (and the dataset). The augmentation code's
        bits are: 1 horizontal flip, 2 vertical flip, 4 transpose (8 = the
        dihedral group: every flip and 90-degree rotation).
        """
        n, c = len(self), self.crop_size
        seed = int(seed) % 2**63
        # Distinct first words keep the step stream and the epoch stream apart.
        rng = np.random.default_rng([seed, 1, int(step)])
        if sampling == "epoch":
            ids = int(step) * batch_size + np.arange(batch_size)
            idx = np.empty(batch_size, np.int64)
            for epoch in np.unique(ids // n):
                perm = np.random.default_rng([seed, 2, int(epoch)]).permutation(n)
                sel = ids // n == epoch
                idx[sel] = perm[ids[sel] % n]
        elif sampling == "random":
            idx = rng.integers(0, n, batch_size)
        else:
            raise ConfigError(f"sampling={sampling!r}: use one of {SAMPLING_MODES}")
        h, w = self._hw[idx, 0], self._hw[idx, 1]
        top = (rng.random(batch_size) * (h - c + 1)).astype(np.int64)
        left = (rng.random(batch_size) * (w - c + 1)).astype(np.int64)
        aug = rng.integers(0, 8, batch_size) if self.augment else np.zeros(batch_size, np.int64)
        return np.stack([idx, top, left, aug], axis=1)

    def crops(self, plan: np.ndarray) -> np.ndarray:
        """HR crops for the rows of :meth:`plan`: ``N x crop x crop x 3`` uint8."""
        c = self.crop_size
        out = np.empty((len(plan), c, c, 3), np.uint8)
        for k, (i, top, left, aug) in enumerate(plan):
            view = self.images[i][top : top + c, left : left + c]
            if aug:  # PIL's blocked copies: ~3x faster than NumPy's strided copies of 3-byte pixels
                view = np.asarray(Image.fromarray(np.ascontiguousarray(view)).transpose(_PIL_AUGMENT[aug]))
            out[k] = view
        return out

    def host_batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                   sampling: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """The uint8 ``(lr, hr)`` of ``step`` for ``rank``, made on the CPU.

        Returns:
            ``N x (crop/scale) x (crop/scale) x 3`` and ``N x crop x crop x 3`` uint8
            NumPy arrays in ``[0, 255]`` (``N = batch_size // world_size``), LR made by ``resize_method``.
        """
        per_rank = batch_size // world_size
        rows = self.plan(step, batch_size, seed, sampling)[rank * per_rank : (rank + 1) * per_rank]
        crops = self.crops(rows)
        out = self.crop_size // self.scale
        if self.resize_method == "matlab":
            lr_u8 = matlab_downscale_batch(crops, out)
        else:
            lr_u8 = np.stack([imresize(c, size=(out, out), method=self.resize_method) for c in crops])
        return lr_u8, crops


__all__ = ["TrainDataset", "SAMPLING_MODES"]
