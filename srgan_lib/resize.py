"""Bicubic resizing: MATLAB-compatible ``imresize`` and the PIL / torch variants.

The paper makes its LR images "by BICUBIC interpolation" (section 4.1) without
saying whose. Three bicubics are in common use and they do not give the same
pixels (``notebooks/01_bicubic_baseline.ipynb`` measures the difference):

* ``"matlab"`` -- MATLAB's ``imresize(img, scale, 'bicubic')``, the one the
  published benchmarks (DIV2K's official LR images, Set5 numbers) were made
  with: Keys' cubic kernel with ``a = -0.5``; when downscaling the kernel is
  widened by ``1 / scale`` (antialiasing); symmetric (mirror) boundary; output
  size ``ceil(size * scale)``. Implemented here from MATLAB's documented
  algorithm, vectorised and batched in torch so that it runs on a GPU.
* ``"pil"`` -- Pillow's ``Image.resize(..., BICUBIC)`` (``a = -0.5``, antialiased),
  what the code the paper was built on used.
* ``"torch"`` -- ``torch.nn.functional.interpolate(mode="bicubic")`` (``a = -0.75``,
  no antialiasing: downscaling aliases).
* ``"torch_aa"`` -- the same with ``antialias=True`` (PyTorch then follows PIL: ``a = -0.5``).

Interpolation weights and source indices depend only on ``(in_size, out_size,
scale)``: they are computed once and cached, because the data pipeline resizes
every training batch. For that, :func:`matlab_downscale_batch` is the CPU fast
path: MATLAB bicubic of a batch of uint8 crops as two matrix products.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .config import RESIZE_METHODS


def cubic_kernel(x, a: float = -0.5):
    """Keys' cubic convolution kernel (Keys 1981), MATLAB's with ``a = -0.5``.

    ``W(x) = (a+2)|x|^3 - (a+3)|x|^2 + 1`` for ``|x| <= 1``,
    ``a|x|^3 - 5a|x|^2 + 8a|x| - 4a`` for ``1 < |x| < 2`` and 0 beyond.

    Args:
        x: array (NumPy or torch) of distances in pixels.
        a: the free parameter; -0.5 (MATLAB, PIL) or -0.75 (OpenCV, PyTorch).

    Returns:
        the kernel's values, same type and shape as ``x``.
    """
    absx = abs(x)
    absx2, absx3 = absx * absx, absx * absx * absx
    near = ((a + 2) * absx3 - (a + 3) * absx2 + 1) * (absx <= 1)
    far = (a * absx3 - 5 * a * absx2 + 8 * a * absx - 4 * a) * ((absx > 1) & (absx < 2))
    return near + far


@lru_cache(maxsize=256)
def _matlab_contributions(in_len: int, out_len: int, scale: float, antialias: bool = True):
    """MATLAB's ``contributions``: for each output pixel, its source indices and weights.

    Args:
        in_len, out_len: sizes along one dimension.
        scale: ``out / in`` as MATLAB uses it (the requested scale, not the size ratio).

    Returns:
        (indices, weights): int64 and float64 arrays ``out_len x P`` (0-based indices,
        already mirrored into ``[0, in_len)``; rows of weights sum to 1).
    """
    kernel_width = 4.0
    if scale < 1 and antialias:
        # Widening the kernel by 1/scale low-pass filters before subsampling.
        kernel = lambda x: scale * cubic_kernel(scale * x)  # noqa: E731
        kernel_width /= scale
    else:
        kernel = cubic_kernel
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric boundary: ... 2 1 | 1 2 ... n | n n-1 ... (edge pixel repeated).
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)  # drop taps that are zero for every pixel
    indices, weights = indices[:, keep], weights[:, keep]
    indices.setflags(write=False)
    weights.setflags(write=False)
    return indices, weights


_TORCH_CACHE: dict = {}


def _torch_contributions(in_len, out_len, scale, device, dtype):
    """The cached contributions as tensors on ``device`` (one transfer per shape)."""
    key = (in_len, out_len, scale, str(device), dtype)
    hit = _TORCH_CACHE.get(key)
    if hit is None:
        idx, w = _matlab_contributions(in_len, out_len, scale)
        # copies: the cached arrays are read-only, which torch.from_numpy warns about
        hit = (torch.from_numpy(idx.copy()).to(device), torch.from_numpy(w.copy()).to(device=device, dtype=dtype))
        if len(_TORCH_CACHE) > 512:
            _TORCH_CACHE.clear()
        _TORCH_CACHE[key] = hit
    return hit


def output_size(in_hw: tuple[int, int], scale: float | None = None,
                size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Output ``(height, width)``: ``size`` if given, else ``ceil(in * scale)`` as MATLAB does."""
    if size is not None:
        out = (int(size[0]), int(size[1]))
    elif scale is not None:
        # round() first: 0.5 * 3 must not become 1.5000000001 -> 2 by float error.
        out = tuple(int(math.ceil(round(s * float(scale), 8))) for s in in_hw)
    else:
        raise ValueError("imresize needs scale= or size=")
    if min(out) < 1:
        raise ValueError(f"imresize: output size {out} from input {tuple(in_hw)} is empty; use a larger scale")
    return out


def _resize_dim(x, dim: int, indices, weights):
    """Weighted sum of ``P`` gathered taps along ``dim`` (2 = rows, 3 = columns)."""
    out = None
    shape = (-1, 1) if dim == 2 else (1, -1)
    for k in range(indices.shape[1]):
        term = x.index_select(dim, indices[:, k]) * weights[:, k].view(shape)
        out = term if out is None else out.add_(term)
    return out


def _matlab_torch(x, out_hw, scale, quantize: bool = False):
    """MATLAB bicubic on a float tensor ``N x C x H x W``.

    With ``quantize`` (uint8 input) the intermediate image is rounded to uint8
    between the two passes, as MATLAB's ``imresizemex`` returns the input's
    class: on DIV2K 0004 this lifts exact agreement with the official LR image
    from 85 % to 99 % of values (``tests/test_resize.py``).
    """
    in_hw = tuple(x.shape[-2:])
    scales = [out_hw[d] / in_hw[d] if scale is None else float(scale) for d in (0, 1)]
    # MATLAB resizes the dimension with the smaller scale first (height on a tie).
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for d in order:
        if in_hw[d] == out_hw[d] and scales[d] == 1.0:
            continue
        idx, w = _torch_contributions(in_hw[d], out_hw[d], scales[d], x.device, x.dtype)
        x = _resize_dim(x, 2 + d, idx, w)
        if quantize:
            x = x.round_().clamp_(0, 255)
    return x


def _pil_resize(arr: np.ndarray, out_hw) -> np.ndarray:
    """Pillow bicubic on an ``H x W x C`` array (uint8 as 'L' planes, float as 'F')."""
    from PIL import Image

    planes = []
    for c in range(arr.shape[2]):
        plane = arr[:, :, c]
        if plane.dtype != np.uint8:
            plane = plane.astype(np.float32)
        img = Image.fromarray(np.ascontiguousarray(plane))
        planes.append(np.asarray(img.resize((out_hw[1], out_hw[0]), Image.BICUBIC)))
    return np.stack(planes, axis=2)


def imresize(img, scale: float | None = None, size: tuple[int, int] | None = None, method: str = "matlab",
             device=None):
    """Bicubic resize of an image or a batch, by scale factor or to a size.

    Args:
        img: ``H x W x C`` / ``H x W`` ndarray, or ``N x C x H x W`` / ``C x H x W``
            tensor; uint8 in ``[0, 255]`` or float (any range, typically ``[0, 1]``).
        scale: factor, e.g. ``1/4`` to make an LR image, ``4`` to upscale it back.
            The output is ``ceil(size * scale)`` pixels per side.
        size: ``(out_h, out_w)``; overrides ``scale``.
        method: ``"matlab"`` (default), ``"pil"``, ``"torch"`` or ``"torch_aa"``
            (see the module docstring).
        device: for an ndarray, where the arithmetic runs (e.g. ``"cuda"``: the
            same float64 operations, so the same result, faster on large
            images); the result is an ndarray still. Ignored for ``"pil"`` and tensors.

    Returns:
        the resized image, of the same type, layout, device and dtype; uint8 in
        gives uint8 out (rounded, clamped to ``[0, 255]``); float out is not clamped
        (bicubic overshoots at edges).

    Notes:
        uint8 input is computed in float64 for ndarrays (as MATLAB does) and in
        float32 for tensors (so that it is fast on a GPU); the two can differ by one
        grey level where a value lies within ~1e-4 of a rounding boundary.
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"method={method!r}: use one of {RESIZE_METHODS}")
    is_numpy = isinstance(img, np.ndarray)
    if not is_numpy and not torch.is_tensor(img):
        raise TypeError(f"imresize takes an ndarray or a tensor, got {type(img).__name__}")

    # Normalise to a 4-d tensor N x C x H x W, remembering how to undo it.
    if is_numpy:
        if img.ndim not in (2, 3):
            raise ValueError(f"imresize: ndarray must be H x W or H x W x C, got shape {img.shape}")
        arr = img[:, :, None] if img.ndim == 2 else img
        in_dtype = arr.dtype
        in_hw = arr.shape[:2]
    else:
        if img.ndim not in (3, 4):
            raise ValueError(f"imresize: tensor must be C x H x W or N x C x H x W, got {tuple(img.shape)}")
        in_dtype = img.dtype
        in_hw = tuple(img.shape[-2:])
    out_hw = output_size(in_hw, scale, size)
    is_uint8 = in_dtype == np.uint8 if is_numpy else in_dtype == torch.uint8

    if method == "pil":
        if is_numpy:
            out = _pil_resize(arr, out_hw)
            return out[:, :, 0] if img.ndim == 2 else out
        batch = img if img.ndim == 4 else img[None]
        host = batch.detach().cpu().permute(0, 2, 3, 1).numpy()
        out = np.stack([_pil_resize(im, out_hw) for im in host])
        out = torch.from_numpy(out).permute(0, 3, 1, 2).to(device=img.device, dtype=in_dtype)
        return out if img.ndim == 4 else out[0]

    if is_numpy:
        work_dtype = np.float64 if is_uint8 or arr.dtype == np.float64 else np.float32
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=work_dtype))[None]
        if device is not None:
            x = x.to(device)
    else:
        x = img if img.ndim == 4 else img[None]
        if is_uint8 or not x.is_floating_point():
            x = x.float()

    if method == "matlab":
        y = _matlab_torch(x, out_hw, None if size is not None else scale, quantize=is_uint8)
    else:
        y = F.interpolate(x, size=out_hw, mode="bicubic", align_corners=False,
                          antialias=(method == "torch_aa"))

    if y is x:
        y = y.clone()  # a no-op resize must still return a new image, never alias the input
    if is_uint8:
        y = y.round().clamp_(0, 255).to(torch.uint8)
    if is_numpy:
        out = y[0].permute(1, 2, 0).cpu().numpy()
        out = out.astype(in_dtype, copy=False)
        return out[:, :, 0] if img.ndim == 2 else out
    y = y.to(in_dtype)
    return y if img.ndim == 4 else y[0]


# MATLAB bicubic is separable and linear, so for a fixed crop size each pass is one ``out x crop`` matrix.
# It is taken from ``imresize`` itself (the resize of an identity), so the two cannot disagree; on the
# CPU, applying it as a NumPy matrix product is ~20x faster than gathering kernel taps in torch, which is
# what lets a CPU keep a GPU fed.
@lru_cache(maxsize=16)
def matlab_matrix(in_len: int, out_len: int) -> np.ndarray:
    """MATLAB bicubic resizing of one axis from ``in_len`` to ``out_len`` pixels, as a matrix.

    Returns:
        read-only float32 ``out_len x in_len`` array ``M``: ``M @ column`` is ``imresize`` of
        the column (antialiased when shrinking, mirrored borders).
    """
    eye = torch.eye(in_len, dtype=torch.float64)[None, None]
    # size=(out, in) leaves the width alone: only the height pass runs.
    mat = imresize(eye, size=(out_len, in_len), method="matlab")[0, 0].numpy().astype(np.float32)
    mat.setflags(write=False)
    return mat


def matlab_downscale_batch(crops: np.ndarray, out: int) -> np.ndarray:
    """``imresize(crop, size=(out, out))`` (MATLAB bicubic) of each crop of a batch, on the CPU.

    uint8 results are rounded between the two passes (height first on a square crop), as
    ``imresize`` does for uint8 input; computed in float32, a pixel within float32's error of
    a .5 tie may round the other way than float64 ``imresize`` (``tests/test_resize.py``).

    Args:
        crops: ``N x crop x crop x 3`` uint8 HR crops in ``[0, 255]``.
        out: the LR side, e.g. ``crop // scale``.

    Returns:
        ``N x out x out x 3`` uint8 LR images; each depends only on its own crop, bit for bit.
    """
    n, crop = crops.shape[0], crops.shape[1]
    mat = matlab_matrix(crop, out)
    y = np.matmul(mat, crops.astype(np.float32).reshape(n, crop, crop * 3))  # rows: N x out x (crop*3)
    np.clip(np.rint(y, out=y), 0, 255, out=y)
    # columns: one GEMM per image, (out*3) x crop @ crop x out, as the rows: each image's LR comes from the
    # same BLAS calls whatever else is in the batch, so a rank's slice of a batch equals that part of the
    # whole batch bit for bit on every CPU (with one GEMM over the batch, the kernel's blocking, and so how
    # .5 ties round, could depend on the batch's size)
    y = np.ascontiguousarray(y.reshape(n, out, crop, 3).transpose(0, 1, 3, 2)).reshape(n, out * 3, crop) @ mat.T
    np.clip(np.rint(y, out=y), 0, 255, out=y)
    return y.reshape(n, out, 3, out).transpose(0, 1, 3, 2).astype(np.uint8)
