"""The embedded sample set: colour photographs shipped inside scikit-image's wheel.

They need no download, so the ``quick`` and ``smoke`` profiles (and CI) train and
validate on them. The split is fixed by name so that every machine sees the same
images; :func:`write_samples` writes them once as PNG into the folder it is given
(``srgan_lib.datasets`` gives ``<data>/samples/{train,val}``) so that every
folder-based tool (datasets, the ``srgan`` command) can use them like any other dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage

from .errors import DataError
from .images import load_image, save_image

#: Validation images (two distinct natural scenes: a cat and a cup of coffee).
VAL_NAMES = ("chelsea", "coffee")
#: Training images: every other colour photograph the wheel is known to carry.
TRAIN_NAMES = (
    "astronaut",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "ihc",
    "retina",
    "color",
)


def _data_dir() -> Path:
    return Path(skimage.__file__).resolve().parent / "data"


def _find(name: str) -> Path | None:
    """The file of sample ``name`` inside the installed scikit-image, if present."""
    for ext in (".png", ".jpg", ".jpeg"):
        path = _data_dir() / f"{name}{ext}"
        if path.is_file():
            return path
    return None


def available(split: str = "all") -> list[str]:
    """Names of the sample images really present for ``split`` ('train', 'val', 'all')."""
    names = {"train": TRAIN_NAMES, "val": VAL_NAMES, "all": TRAIN_NAMES + VAL_NAMES}.get(split)
    if names is None:
        raise DataError(f"split={split!r}: use 'train', 'val' or 'all'")
    return [n for n in names if _find(n) is not None]


def load_sample(name: str) -> np.ndarray:
    """One sample photograph as ``H x W x 3`` uint8 RGB."""
    path = _find(name)
    if path is None:
        raise DataError(f"sample image {name!r} is not in this scikit-image ({_data_dir()}); use one of {available()}")
    return load_image(path)


def write_samples(folder: str | Path, split: str = "train") -> Path:
    """Write the sample photographs of ``split`` into ``folder`` as PNG, once.

    Args:
        folder: the folder to fill (created if needed).
        split: ``"train"`` or ``"val"``.

    Returns:
        Path: ``folder``, holding one ``<name>.png`` (``H x W x 3`` uint8 RGB) per available
        image; files already there are not rewritten.
    """
    if split not in ("train", "val"):
        raise DataError(f"split={split!r}: use 'train' or 'val'")
    names = available(split)
    if not names:
        raise DataError(f"no {split} sample image found in {_data_dir()}: reinstall scikit-image")
    folder = Path(folder)
    for name in names:
        target = folder / f"{name}.png"
        if not target.is_file():
            save_image(load_sample(name), target)  # atomic: never a half-written PNG
    return folder
