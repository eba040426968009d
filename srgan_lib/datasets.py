"""The dataset registry: every dataset the package knows, its folders and how its images get there.

:data:`DATASETS` is the one list: ``config``'s ``train_data``/``val_data``, ``srgan download``,
``srgan evaluate --data``, :class:`srgan_lib.data.TrainDataset` and the notebooks all take a name
from it, and :func:`data_folder` is the one place a name (or a path) becomes a folder. Three kinds:

* ``"download"`` -- fetched by ``srgan download <name>`` (:mod:`srgan_lib.download`) from the
  archives recorded here, each checked against its size and SHA-256 (``docs/references.md``,
  "Dataset archives"), into the data root: ``$SRGAN_DATA`` or ``<repo>/data`` (:func:`data_root`).
* ``"samples"`` -- the colour photographs shipped inside scikit-image's wheel
  (:mod:`srgan_lib.samples`), written as PNG into ``<data root>/samples/{train,val}`` on first use.
* ``"tracked"`` -- small benchmark sets tracked in the repository (``data/README.md``); they stay
  under ``<repo>/data`` whatever ``$SRGAN_DATA`` says.
* ``"union"`` -- several of the above in one folder (``"set5+set14"``, the quick profile's 19
  validation images), made on first use in the data root from links to (or copies of) the parts'
  images, each named ``<part>_<file>`` so that per-image results say where an image comes from.

To add a dataset, add one :class:`Dataset` entry below (see ``docs/architecture.md``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import samples
from .config import PROJECT_ROOT, data_root
from .errors import ConfigError, DataError, DownloadError

SPLITS = ("train", "val")
SOURCES = ("download", "samples", "tracked", "union")
#: The image files an installer moves and ``srgan download`` counts.
ARCHIVE_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def install_folder(raw: Path, staging: Path, name: str) -> None:
    """Move the images of the extracted folder called ``name`` (e.g. ``DIV2K_train_HR``) into ``staging``."""
    found = [p for p in [raw, *raw.rglob("*")] if p.is_dir() and p.name == name]
    src = found[0] if found else raw
    staging.mkdir()
    for p in sorted(src.iterdir()):
        if p.is_file() and p.suffix.lower() in ARCHIVE_IMAGE_SUFFIXES:
            os.replace(p, staging / p.name)


#: BSDS300's splits as installed: folder -> (the archive's id list, its image subfolder). The literature's
#: "BSD100" is the test split; the 200 training images are the quick profile's larger training set.
BSDS300_SPLITS = {"BSDS100": ("iids_test.txt", "test"), "BSDS200": ("iids_train.txt", "train")}


def install_bsds300(raw: Path, staging: Path, name: str) -> None:
    """Move the images of one BSDS300 split (``name`` a key of :data:`BSDS300_SPLITS`) into ``staging``."""
    listing, sub = BSDS300_SPLITS[name]
    lists = sorted(raw.rglob(listing))
    if not lists:
        raise DownloadError(f"the BSDS300 archive holds no {listing}: is it the right archive?")
    base = lists[0].parent
    ids = lists[0].read_text().split()
    staging.mkdir()
    for iid in ids:
        src = base / "images" / sub / f"{iid}.jpg"
        if not src.is_file():
            raise DownloadError(f"the BSDS300 archive lacks {src.relative_to(raw)} listed in {listing}")
        os.replace(src, staging / src.name)


@dataclass(frozen=True)
class Archive:
    """One archive and the folder it installs.

    Attributes:
        filename: the archive's file name.
        url: its official address.
        sha256: the recorded checksum (hex).
        size: bytes, or None if unknown.
        target: the installed folder, relative to the data root (a split folder of its :class:`Dataset`).
        count: how many images the installed folder must hold.
        install: ``(extracted_dir, staging_dir, target_name)`` moving the images into ``staging_dir``.
        checksum_source: where the checksum was recorded.
    """

    filename: str
    url: str
    sha256: str
    size: int | None
    target: str
    count: int
    install: Callable[[Path, Path, str], None] = install_folder
    checksum_source: str = ""


@dataclass(frozen=True)
class Dataset:
    """One dataset: where its HR images live and how they get there.

    Attributes:
        folder: its folder under the data root (``"tracked"``: under ``<repo>/data``).
        source: ``"download"``, ``"samples"`` or ``"tracked"`` (see the module docstring).
        train, val: the subfolder of ``folder`` holding each split ("": ``folder`` itself; a set
            with one split serves both).
        archives: what ``srgan download`` fetches (``"download"`` only).
        description: one line for help texts.
        parts: the datasets a ``"union"`` joins (names in :data:`DATASETS`).
    """

    folder: str
    source: str
    train: str = ""
    val: str = ""
    archives: tuple[Archive, ...] = ()
    description: str = ""
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"Dataset source={self.source!r}: use one of {SOURCES}")
        if bool(self.archives) != (self.source == "download"):
            raise ConfigError(f"Dataset {self.folder!r}: archives are given exactly when source='download'")

    def path(self, split: str = "train") -> Path:
        """The folder of ``split`` (``"train"``/``"val"``), whether or not it exists yet."""
        if split not in SPLITS:
            raise ConfigError(f"split={split!r}: use one of {SPLITS}")
        base = PROJECT_ROOT / "data" if self.source == "tracked" else data_root()
        return base / self.folder / (self.train if split == "train" else self.val)


_DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
# One archive, both splits: `srgan download bsds100` or `bsds200` fetches it once and installs both folders.
# Its checksum comes from one public project only: a mismatch is reported clearly.
_BSDS300 = tuple(Archive("BSDS300-images.tgz",
                         "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz",
                         "a5f7d0e49fe135c75518a3543ced24470156fd69305ae77845dff2a5138652b4", None,
                         folder, count, install_bsds300, "one public project's recorded checksum")
                 for folder, count in (("BSDS100", 100), ("BSDS200", 200)))
_TFDS = "TensorFlow Datasets' recorded checksums"

#: Every dataset the package knows, by name (see ``docs/references.md`` for the archives).
DATASETS: dict[str, Dataset] = {
    "div2k": Dataset(
        "DIV2K", "download", train="DIV2K_train_HR", val="DIV2K_valid_HR",
        description="DIV2K: 800 training and 100 validation 2K images (paper profile, ~4 GB)",
        archives=(
            Archive("DIV2K_train_HR.zip", _DIV2K + "DIV2K_train_HR.zip",
                    "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335", 3_530_603_713,
                    "DIV2K/DIV2K_train_HR", 800, install_folder, _TFDS),
            Archive("DIV2K_valid_HR.zip", _DIV2K + "DIV2K_valid_HR.zip",
                    "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc", 448_993_893,
                    "DIV2K/DIV2K_valid_HR", 100, install_folder, _TFDS),
        )),
    "bsds100": Dataset("BSDS100", "download", archives=_BSDS300,
                       description="BSDS100: the 100 test images of BSDS300 (the paper's figure; with bsds200, ~22 MB)"),
    "bsds200": Dataset("BSDS200", "download", archives=_BSDS300[::-1],
                       description="BSDS200: the 200 training images of BSDS300 (the quick profile trains on them "
                                   "when `make reproduce` can download them; with bsds100)"),
    "samples": Dataset("samples", "samples", train="train", val="val",
                       description="scikit-image's sample photographs, no download (quick and smoke profiles)"),
    "set5": Dataset("Set5", "tracked", train="HR", val="HR", description="Set5: 5 benchmark images, in the repository"),
    "set14": Dataset("Set14", "tracked", train="HR", val="HR",
                     description="Set14: 14 benchmark images, in the repository"),
    "set5+set14": Dataset("Set5+Set14", "union", parts=("set5", "set14"),
                          description="Set5 and Set14 together: 19 images (the quick profile's validation)"),
}


def downloadable() -> tuple[str, ...]:
    """Names of the datasets ``srgan download`` fetches."""
    return tuple(name for name, d in DATASETS.items() if d.source == "download")


def _missing_hint(name: str, dataset: Dataset) -> str:
    if dataset.source == "download":
        return f"run `srgan download {name}`"
    return f"it is tracked in the repository: restore it with `git checkout -- data/{dataset.folder}`"


def data_folder(spec: str | os.PathLike, split: str = "train") -> Path:
    """A dataset name resolved to the folder of its split, or a folder path passed through.

    A name wins over a folder of the same name in the working directory (pass ``./samples``
    for the folder).

    Args:
        spec: a key of :data:`DATASETS` (``"div2k"``, ``"bsds100"``, ``"samples"``, ``"set5"``,
            ``"set14"``) or a folder of HR images.
        split: ``"train"`` or ``"val"`` (a one-split set and a path serve both).

    Returns:
        Path: an existing folder of HR images (the samples are written into theirs on first use).

    Raises:
        ConfigError: a bad ``split``.
        DataError: the folder does not exist (naming the command that fetches a dataset), or
            ``spec`` is neither a dataset name nor a folder.
    """
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}: use one of {SPLITS}")
    if isinstance(spec, str) and spec in DATASETS:
        dataset = DATASETS[spec]
        folder = dataset.path(split)
        if dataset.source == "samples":
            return samples.write_samples(folder, split)
        if dataset.source == "union":
            return _write_union(folder, {part: data_folder(part, split) for part in dataset.parts})
        if not folder.is_dir():
            raise DataError(f"dataset folder {folder} does not exist: {_missing_hint(spec, dataset)}")
        return folder
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise DataError(f"dataset folder {folder} does not exist: pass a folder of images "
                        f"or a dataset name ({', '.join(DATASETS)})")
    return folder


def _write_union(folder: Path, parts: dict[str, Path]) -> Path:
    """``folder`` holding every image of ``parts`` as ``<part>_<file>`` (hard links, else copies); made once.

    Built in a temporary sibling and renamed into place, so that an interrupted first use
    never leaves half a set; rebuilt when the parts' file names changed.
    """
    wanted = {f"{part}_{p.name}": p for part, src in parts.items() for p in sorted(src.iterdir())
              if p.is_file() and p.suffix.lower() in ARCHIVE_IMAGE_SUFFIXES}
    if folder.is_dir() and sorted(p.name for p in folder.iterdir()) == sorted(wanted):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    for name, src in wanted.items():
        try:
            os.link(src, staging / name)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(src, staging / name)
    if folder.is_dir():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return folder

