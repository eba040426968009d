"""Reading and writing images robustly, tensor conversion, RGB -> Y (BT.601).

Conventions (see ``docs/conventions.md``): images on disk and in NumPy are
``H x W x 3`` ``uint8`` RGB; inside the package they are float32 tensors
``N x 3 x H x W`` in ``[0, 1]``. ``notebooks/01_bicubic_baseline.ipynb`` uses
these helpers throughout.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError, ImageReadError
from .fileio import atomic_write

#: File name endings treated as images when a folder is listed.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder`` (by extension), sorted by name.

    Raises:
        DataError: if ``folder`` is not a directory or holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder: pass a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{folder} holds no image file ({', '.join(IMAGE_EXTENSIONS)}): pass a folder of images")
    return files


def _to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to H x W x 3 uint8 RGB, explicitly per mode."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit (or 32-bit integer) grayscale: scale the full range to 8 bits.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        peak = 1.0 if arr.max() <= 1.0 else 255.0
        arr = np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite on white: transparent pixels have no defined colour otherwise.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    # L, 1, P, CMYK, YCbCr, LAB, HSV, RGB: PIL's own conversions are exact for these.
    return np.asarray(img.convert("RGB"))


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Grayscale, palette, RGBA (composited on white), 16-bit and CMYK images are
    converted explicitly.

    Args:
        path: an image file.

    Returns:
        ndarray: ``H x W x 3`` uint8 RGB.

    Raises:
        ImageReadError: if the file is missing, not an image, or truncated; the
            message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()  # decode now so that a truncated file fails here, not later
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            arr = _to_rgb_uint8(img)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file (PIL cannot identify it); remove it or convert it to PNG") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc}); the file may be truncated or corrupt") from None
    return np.ascontiguousarray(arr, dtype=np.uint8)


def save_image(img, path: str | os.PathLike) -> Path:
    """Write an image atomically (temporary file, then rename).

    Args:
        img: ``H x W x 3`` uint8 array, or a tensor ``3 x H x W`` / ``1 x 3 x H x W``
            float in ``[0, 1]`` (rounded and clamped).
        path: destination; the format follows the extension (PNG recommended).
    """
    path = Path(path)
    arr = img if isinstance(img, np.ndarray) else to_uint8(img)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"save_image takes one image, got a batch of {arr.shape[0]}")
        arr = arr[0]

    return atomic_write(path, lambda tmp: Image.fromarray(np.ascontiguousarray(arr)).save(tmp), suffix=path.suffix)


def to_tensor(img):
    """Convert uint8 RGB image(s) to a float tensor.

    Args:
        img: ``H x W x 3`` or ``N x H x W x 3`` uint8 array (or a list of equal-size
            ``H x W x 3`` arrays).

    Returns:
        Tensor: ``N x 3 x H x W`` float32 in ``[0, 1]``.
    """
    import torch  # deferred: reading and writing image files should not need torch

    if isinstance(img, (list, tuple)):
        img = np.stack(img)
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"to_tensor expects uint8 images, got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"to_tensor expects H x W x 3 or N x H x W x 3, got shape {arr.shape}")
    if not arr.flags.writeable:  # e.g. PIL-backed arrays; torch.from_numpy wants writable memory
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(tensor) -> np.ndarray:
    """Convert a float tensor in ``[0, 1]`` to uint8 image(s), rounding and clamping.

    Args:
        tensor: ``3 x H x W`` or ``N x 3 x H x W`` float (values outside ``[0, 1]``
            are clamped).

    Returns:
        ndarray: ``H x W x 3`` uint8 for a 3-d input, ``N x H x W x 3`` for 4-d.
    """
    import torch  # deferred: reading and writing image files should not need torch

    t = tensor.detach().float().cpu()
    t = t.mul(255.0).round_().clamp_(0, 255).to(dtype=torch.uint8)
    if t.ndim == 3:
        return t.permute(1, 2, 0).contiguous().numpy()
    if t.ndim == 4:
        return t.permute(0, 2, 3, 1).contiguous().numpy()
    raise ValueError(f"to_uint8 expects 3 x H x W or N x 3 x H x W, got shape {tuple(t.shape)}")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma exactly as MATLAB's ``rgb2ycbcr`` computes it for uint8 images (BT.601).

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in
    ``[0, 255]``, rounded to the nearest integer as MATLAB's uint8 output is.

    Args:
        img: ``H x W x 3`` (or ``N x H x W x 3``) uint8 RGB. A 2-d array is taken as
            an image already single-channel and returned as is.

    Returns:
        ndarray: ``H x W`` (or ``N x H x W``) uint8 in ``[16, 235]``.
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"rgb_to_y expects uint8 RGB, got {arr.dtype}")
    if arr.ndim == 2:
        return arr
    rgb = arr.astype(np.float64)
    return np.clip(np.rint(luma(rgb[..., 0], rgb[..., 1], rgb[..., 2])), 0, 255).astype(np.uint8)


def luma(r, g, b):
    """BT.601 luma, unrounded, of float64 R, G, B in ``[0, 255]`` (arrays or tensors, any shape).

    ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``, the one formula that
    :func:`rgb_to_y` and the metrics' tensor path (``protocols.score_image`` on a
    GPU) both round, so that they agree to the bit.
    """
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right so that height and width are divisible by ``scale``.

    Args:
        img: ``H x W x C`` or ``H x W`` array.
    """
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Centre crop of at most ``size x size`` (smaller sides are kept whole).

    Args:
        img: ``H x W x C`` or ``H x W`` array.
        size: the largest side kept, in pixels.

    Returns:
        ndarray: a view, ``min(H, size) x min(W, size) (x C)``.
    """
    h, w = img.shape[:2]
    th, tw = min(h, size), min(w, size)
    top, left = (h - th) // 2, (w - tw) // 2
    return img[top : top + th, left : left + tw]
