"""Datasets: random HR training crops with LR made on the fly, and evaluation pairs.

Training (paper sec. 4.1): a random ``crop_size`` HR crop of a training image
(88, 128 or 168 pixels), randomly flipped and rotated by multiples of 90 degrees,
and its LR input made by bicubic downscaling by ``scale`` with
:func:`srgan_lib.resize.imresize` (MATLAB-compatible by default; ``"pil"``
reproduces the code the paper was built on). Images are decoded once
(:mod:`srgan_lib.cache`), a crop is a view of the decoded image, and the LR
images of a batch are made together, as uint8, by one matrix product per pass
(MATLAB bicubic is linear). For a GPU, batches are made ahead by background
threads and copied from page-locked memory while the GPU trains.

Reproducibility: the batch of step ``k`` depends only on ``(seed, k)``, so a run
resumed at step ``k`` sees exactly the batches it would have seen, and DDP
ranks take disjoint slices of the same global batch. ``sampling="epoch"`` is the
paper's epoch (each epoch a seeded permutation of the images, one crop each;
:meth:`TrainDataset.iters_per_epoch` iterations); ``sampling="random"`` draws
images independently, for runs counted in iterations.

Folder layouts: DIV2K as extracted (``<data>/DIV2K/DIV2K_train_HR``), BSDS100
(``<data>/BSDS100``), the embedded samples, or any folder of images; the names
``"div2k"``, ``"bsds100"`` and ``"samples"`` are resolved by
:func:`srgan_lib.config.data_folder`. ``notebooks/04_training.ipynb`` shows a batch.
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from . import cache as _cache
from .errors import ConfigError, DataError
from .images import center_crop, list_images, load_image

RESIZE_METHODS = ("matlab", "pil", "torch", "torch_aa")
SAMPLING_MODES = ("epoch", "random")
_NAMED = ("div2k", "bsds100", "samples")
#: Augmentation code (bit 0: flip left-right, then bit 1: flip top-bottom, then bit 2:
#: transpose) -> the one PIL transpose doing all three (``tests/test_data.py`` checks each).
_PIL_AUGMENT = {1: Image.Transpose.FLIP_LEFT_RIGHT, 2: Image.Transpose.FLIP_TOP_BOTTOM, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.TRANSPOSE, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270,
                7: Image.Transpose.TRANSVERSE}


def resolve_folder(folder, split: str = "train") -> Path:
    """A folder path, or a dataset name (``div2k``, ``bsds100``, ``samples``) resolved to its folder."""
    if isinstance(folder, str) and folder in _NAMED and not Path(folder).is_dir():
        from .config import data_folder

        return data_folder(folder, split)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"dataset folder {folder} does not exist: check the path")
    return folder


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
    """Random HR crops of a folder of images; LR made per batch by :func:`train_batches`.

    Files without an image extension (a README, the download marker) are ignored.
    Files with an image extension that cannot be decoded (not an image, truncated)
    are skipped with ONE warning listing them. Grayscale, palette, RGBA (on white)
    and 16-bit images are converted to 8-bit RGB by :func:`images.load_image`.

    Args:
        folder: a folder of HR images, or ``"div2k"``/``"bsds100"``/``"samples"``.
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
        DataError: the folder does not exist or holds no usable image.
    """

    def __init__(self, folder, scale: int, crop_size: int, augment: bool = True,
                 resize_method: str = "matlab", small: str = "skip", cache: str = "auto",
                 cache_dir=None, progress: bool = True):
        _check_scale_crop(scale, crop_size)
        if resize_method not in RESIZE_METHODS:
            raise ConfigError(f"resize_method={resize_method!r}: use one of {RESIZE_METHODS}")
        if small not in ("skip", "pad"):
            raise ConfigError(f"small={small!r}: use 'skip' or 'pad'")
        self.folder = resolve_folder(folder)
        self.scale, self.crop_size = int(scale), int(crop_size)
        self.augment, self.resize_method, self.small = bool(augment), resize_method, small

        store = _cache.load_store(self.folder, cache=cache, cache_dir=cache_dir, progress=progress)
        self.store = store
        if store.unreadable:
            warnings.warn(
                f"{self.folder}: skipped {len(store.unreadable)} unreadable file(s): "
                + _list_names([f"{n} ({why})" for n, why in store.unreadable]),
                UserWarning, stacklevel=2)
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
            warnings.warn(f"{self.folder}: {len(tiny)} image(s) smaller than crop_size={c} {what}: "
                          + _list_names(tiny), UserWarning, stacklevel=2)
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
            NumPy arrays (``N = batch_size // world_size``), LR made by ``resize_method``.
        """
        from .resize import imresize

        per_rank = batch_size // world_size
        rows = self.plan(step, batch_size, seed, sampling)[rank * per_rank : (rank + 1) * per_rank]
        crops = self.crops(rows)
        out = self.crop_size // self.scale
        if self.resize_method == "matlab":
            lr_u8 = _matlab_downscale_np(crops, out)
        else:
            lr_u8 = np.stack([imresize(c, size=(out, out), method=self.resize_method) for c in crops])
        return lr_u8, crops

    def batch(self, step: int, batch_size: int, seed: int, device="cpu", rank: int = 0,
              world_size: int = 1, sampling: str = "epoch"):
        """The ``(lr, hr)`` batch of ``step`` for ``rank`` as float tensors on ``device`` (see :func:`train_batches`)."""
        return to_device(self.host_batch(step, batch_size, seed, rank, world_size, sampling), device)


def to_device(host: tuple, device="cpu", pinned: bool = False):
    """uint8 NHWC ``(lr, hr)`` (arrays or tensors) -> float32 ``N x 3 x h x w`` tensors in ``[0, 1]`` on ``device``.

    On the CPU NumPy (one thread) converts: torch's intra-op threads cost more
    than they save on tensors this small, ~10x more on a busy machine. On an
    accelerator only the uint8 bytes travel (a quarter of float32's; from
    page-locked memory, asynchronously, when ``pinned``) and are converted
    there; the result has channels-last strides, which the trainer's
    ``channels_last`` networks take as they are.
    """
    import torch

    if torch.device(device).type == "cpu":
        return tuple(torch.from_numpy(np.divide(np.asarray(a).transpose(0, 3, 1, 2), 255, dtype=np.float32))
                     for a in host)
    out = []
    for a in host:
        # a tensor pinned by torch itself, so that its allocator keeps the buffer until the copy is done
        t = a if isinstance(a, torch.Tensor) else torch.from_numpy(a)
        if pinned and not t.is_pinned():
            t = t.pin_memory()
        out.append(t.to(device, non_blocking=pinned).permute(0, 3, 1, 2).float().div_(255.0))
    return tuple(out)


# MATLAB bicubic is separable and linear, so for a fixed crop size each pass is
# one ``out x crop`` matrix. It is taken from ``resize.imresize`` itself (the
# resize of an identity), so the two cannot disagree; on the CPU, applying it as
# a NumPy matrix product is ~20x faster than gathering kernel taps in torch,
# which is what lets a CPU keep a GPU fed. uint8 results are rounded between the two
# passes (height first on a square crop), as ``imresize`` does for uint8 input;
# ``tests/test_data.py`` checks that the LR equals ``imresize`` of the HR crop.
@functools.lru_cache(maxsize=16)
def _matlab_matrix(crop: int, out: int) -> np.ndarray:
    import torch

    from .resize import imresize

    eye = torch.eye(crop, dtype=torch.float64)[None, None]
    # size=(out, crop) leaves the width alone: only the height pass runs.
    mat = imresize(eye, size=(out, crop), method="matlab")[0, 0].numpy().astype(np.float32)
    mat.setflags(write=False)
    return mat


def _matlab_downscale_np(crops: np.ndarray, out: int) -> np.ndarray:
    """``imresize(crop, size=(out, out))`` of each ``N x crop x crop x 3`` uint8 crop -> ``N x out x out x 3`` uint8."""
    n, crop = crops.shape[0], crops.shape[1]
    mat = _matlab_matrix(crop, out)
    y = np.matmul(mat, crops.astype(np.float32).reshape(n, crop, crop * 3))  # rows: N x out x (crop*3)
    np.clip(np.rint(y, out=y), 0, 255, out=y)
    # columns: one GEMM per image, (out*3) x crop @ crop x out, as the rows: each image's LR comes from the
    # same BLAS calls whatever else is in the batch, so a rank's slice of a batch equals that part of the
    # whole batch bit for bit on every CPU (with one GEMM over the batch, the kernel's blocking, and so how
    # .5 ties round, could depend on the batch's size)
    y = np.ascontiguousarray(y.reshape(n, out, crop, 3).transpose(0, 1, 3, 2)).reshape(n, out * 3, crop) @ mat.T
    np.clip(np.rint(y, out=y), 0, 255, out=y)
    return y.reshape(n, out, 3, out).transpose(0, 1, 3, 2).astype(np.uint8)


def train_batches(dataset: TrainDataset, batch_size: int, seed: int, start_step: int = 0,
                  device="cpu", rank: int = 0, world_size: int = 1, sampling: str = "epoch",
                  prefetch: int = 1):
    """Infinite iterator of training batches, step ``start_step``, ``start_step + 1``, ...

    Args:
        dataset: a :class:`TrainDataset`.
        batch_size: the GLOBAL batch size; each of ``world_size`` ranks gets
            ``batch_size // world_size`` samples (must divide evenly).
        seed: with the step number, the only source of randomness.
        start_step: the first step (resume from a checkpoint's step).
        device: where the batch lives.
        rank, world_size: this process's slice of the global batch (DDP).
        sampling: ``"epoch"`` (paper: a seeded permutation of the images per epoch,
            wrapping into the next epoch so that every batch is full) or ``"random"``.
        prefetch: on an accelerator, batches made ahead by as many background
            threads (0: made in the caller's thread). One is the fastest: on a
            16-core H100 host, 2, 4 and 8 threads made 14 %, 31 % and 46 % fewer
            samples/s than one (``benchmarks/gpu_report.py``), and more threads
            also slow the main thread's kernel launches. The batches are the same
            either way; on the CPU they are always made in the caller's thread,
            which would otherwise compete with the training step for the cores.

    Yields:
        (lr, hr): ``N x 3 x (crop/scale) x (crop/scale)`` and ``N x 3 x crop x crop``
        float32 in ``[0, 1]`` on ``device`` (``N = batch_size // world_size``).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: use a positive integer")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank={rank}, world_size={world_size}: need 0 <= rank < world_size")
    if batch_size % world_size:
        raise ConfigError(f"batch_size={batch_size} is not divisible by world_size={world_size}: "
                          "every rank must get an equal slice of the global batch")
    if sampling not in SAMPLING_MODES:
        raise ConfigError(f"sampling={sampling!r}: use one of {SAMPLING_MODES}")
    if start_step < 0:
        raise ConfigError(f"start_step={start_step}: use a step >= 0")
    if prefetch < 0:
        raise ConfigError(f"prefetch={prefetch}: use 0 (no background threads) or more")

    import torch

    if torch.device(device).type == "cpu" or prefetch == 0:
        def generate():
            step = start_step
            while True:
                yield dataset.batch(step, batch_size, seed, device, rank, world_size, sampling)
                step += 1

        return generate()
    return _prefetched(dataset, batch_size, seed, start_step, device, rank, world_size, sampling, prefetch)


def _prefetched(dataset, batch_size, seed, start_step, device, rank, world_size, sampling, prefetch):
    """``train_batches`` for an accelerator: host batches made ahead by ``prefetch`` threads.

    Each batch depends only on its step, so the threads cannot change what is
    made or its order; they overlap the cropping and downscaling (NumPy, which
    releases the GIL) with the GPU's work, and keep the main thread free to
    launch kernels. The pool is shut down when the iterator is closed.
    """
    import collections
    from concurrent.futures import ThreadPoolExecutor

    import torch

    pin = torch.device(device).type == "cuda"  # page-locked memory is CUDA's (and copies from it asynchronous)

    def make(step):
        host = [torch.from_numpy(a) for a in dataset.host_batch(step, batch_size, seed, rank, world_size, sampling)]
        return tuple(t.pin_memory() for t in host) if pin else tuple(host)

    pool = ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="srgan-batches")
    try:
        queue = collections.deque(pool.submit(make, start_step + k) for k in range(prefetch))
        step = start_step + prefetch
        while True:
            host = queue.popleft().result()
            queue.append(pool.submit(make, step))
            step += 1
            yield to_device(host, device, pinned=pin)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class EvalDataset:
    """Evaluation pairs ``(name, hr_uint8, lr_uint8)`` from a folder of HR images.

    Protocols (:func:`srgan_lib.metrics.make_pair` makes each pair):

    * ``"standard"`` -- the HR image mod-cropped to ``scale``; LR by
      ``resize_method`` (MATLAB bicubic by default), as the published benchmarks.
    * ``"paper"`` -- the code the paper was built on: the largest centred square
      whose side is divisible by ``scale``; LR by PIL bicubic (``resize_method``
      is ignored).

    Evaluation is strict: an unreadable file raises :class:`ImageReadError` naming
    it, since silently scoring fewer images would change the result.

    Args:
        folder: a folder of HR images or a dataset name (``div2k`` = its validation split).
        scale: downscaling factor.
        protocol: ``"standard"`` or ``"paper"``.
        resize_method: LR bicubic for the standard protocol.
        limit: use only the first ``limit`` images (sorted by name).
        max_side: centre-crop each HR image to at most ``max_side`` pixels a side (smoke runs).

    Yields:
        (name, hr, lr): file stem, ``H x W x 3`` uint8, ``H/scale x W/scale x 3`` uint8.
    """

    def __init__(self, folder, scale: int, protocol: str = "standard", resize_method: str = "matlab",
                 limit: int | None = None, max_side: int | None = None):
        if not isinstance(scale, (int, np.integer)) or scale < 1:
            raise ConfigError(f"scale={scale!r}: use a positive integer such as 2 or 4")
        if protocol not in ("standard", "paper"):
            raise ConfigError(f"protocol={protocol!r}: use 'standard' or 'paper'")
        if resize_method not in RESIZE_METHODS:
            raise ConfigError(f"resize_method={resize_method!r}: use one of {RESIZE_METHODS}")
        if max_side is not None and max_side < scale:
            raise ConfigError(f"max_side={max_side} is smaller than scale={scale}")
        self.folder = resolve_folder(folder, split="val")
        self.scale, self.protocol, self.max_side = int(scale), protocol, max_side
        self.resize_method = "pil" if protocol == "paper" else resize_method
        paths = list_images(self.folder)
        self.paths = paths if limit is None else paths[: max(0, int(limit))]
        if not self.paths:
            raise DataError(f"limit={limit} leaves no image of {self.folder}: use limit >= 1")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from .metrics import make_pair

        path = self.paths[i]
        img = load_image(path)
        if self.max_side is not None:
            img = center_crop(img, self.max_side)
        try:
            hr, lr = make_pair(img, self.scale, self.protocol, self.resize_method)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        return path.stem, hr, lr

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


__all__ = ["TrainDataset", "EvalDataset", "train_batches", "resolve_folder", "RESIZE_METHODS"]
