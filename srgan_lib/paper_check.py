"""Does the ``paper`` protocol give the paper's bicubic numbers? The one test of our reading of its protocol.

The paper's Tables 1-2 print bicubic on DIV2K's 100 validation images: 28.3654 dB / 0.8877 at x2 and
24.5025 dB / 0.7408 at x4 (:data:`srgan_lib.paper.PAPER_TABLES`). Bicubic has no training and no seed:
if the ``paper`` protocol of :mod:`srgan_lib.protocols` is what the paper did, bicubic scored under it
on the same images must give the same numbers, up to the printed digits and small differences between
libraries, i.e. within :data:`TOLERANCE`. :func:`check_bicubic` makes that comparison and gives a verdict.
It refuses (``made=False``, with the reason) on any other images, where agreement or disagreement would
say nothing. :func:`score_bicubic` is :func:`srgan_lib.evaluate.score_bicubic` image by image with a
progress bar (100 2K images take minutes on a CPU). ``notebooks/01_bicubic_baseline.ipynb`` runs both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .datasets import DATASETS
from .errors import ConfigError
from .evaluate import EvalResult
from .evaluate import score_bicubic as _score_bicubic
from .images import list_images
from .paper import PAPER_METRICS, PAPER_TABLES, paper_value
from .protocols import PROTOCOL_RESIZE, PROTOCOLS, aggregate

#: File names of DIV2K's validation images (DIV2K_valid_HR), the set of the paper's tables.
DIV2K_VALID_NAMES = tuple(f"{i:04d}.png" for i in range(801, 901))
#: How far ours may be from the paper's number (ours - paper, either sign) to count as the same:
#: the paper prints 4 decimals, and two correct bicubic implementations differ by a few 0.01 dB.
TOLERANCE = {"psnr": 0.05, "ssim": 0.002}
#: The scales of the paper's two tables.
SCALES = tuple(sorted(PAPER_TABLES))


@dataclass(frozen=True)
class ScaleCheck:
    """One scale: our bicubic under the ``paper`` protocol against the paper's printed bicubic.

    Attributes:
        scale: 2 (Table 1) or 4 (Table 2).
        ours: ``{"psnr": dB, "ssim": ...}`` under the ``paper`` protocol.
        paper: the paper's values of the same metrics.
    """

    scale: int
    ours: dict
    paper: dict

    @property
    def diff(self) -> dict:
        """``{metric: ours - paper}``."""
        return {m: self.ours[m] - self.paper[m] for m in self.paper}

    @property
    def reproduced(self) -> bool:
        """Every difference within :data:`TOLERANCE`."""
        return all(abs(d) <= TOLERANCE[m] for m, d in self.diff.items())

    def describe(self) -> str:
        parts = [f"{m.upper()} {self.ours[m]:.4f} vs {self.paper[m]:.4f} ({d:+.4f})" for m, d in self.diff.items()]
        return f"x{self.scale}: " + ", ".join(parts) + (" - within tolerance" if self.reproduced else " - outside")


@dataclass(frozen=True)
class PaperCheck:
    """The outcome of :func:`check_bicubic`.

    Attributes:
        made: whether the comparison could be made at all (DIV2K validation, whole images, both scales).
        reason: why not, when ``made`` is False; ``""`` otherwise.
        scales: one :class:`ScaleCheck` per scale (empty when not made).
    """

    made: bool
    reason: str = ""
    scales: tuple[ScaleCheck, ...] = ()

    @property
    def reproduced(self) -> bool | None:
        """True if every scale is within tolerance, False if one is not, None if the check was not made."""
        return all(s.reproduced for s in self.scales) if self.made else None

    @property
    def verdict(self) -> str:
        """One or two sentences for a notebook or a log."""
        tol = f"{TOLERANCE['psnr']} dB / {TOLERANCE['ssim']}"
        if not self.made:
            return f"The check could not be made: {self.reason}."
        if self.reproduced:
            return (f"Reproduced: bicubic under the `paper` protocol gives the paper's numbers within {tol} at "
                    + " and ".join(f"x{s.scale}" for s in self.scales)
                    + ", which supports our reading of the paper's protocol.")
        bad = [s for s in self.scales if not s.reproduced]
        return ("Not reproduced: " + "; ".join(s.describe() for s in bad)
                + f" (tolerance {tol}). The paper's protocol differs from our reading of it in some detail.")

    def to_markdown(self) -> str:
        lines = [f"**{self.verdict}**"]
        if self.made:
            lines += [""] + [f"- {s.describe()}" for s in self.scales]
        return "\n".join(lines)


def is_div2k_valid(val_data) -> bool:
    """Whether ``val_data`` (a dataset name or a folder) is DIV2K's validation set: ``"div2k"`` or its folder."""
    if val_data == "div2k":
        return True
    return Path(val_data).expanduser().resolve() == DATASETS["div2k"].path("val").resolve()


def check_bicubic(results: dict[tuple[int, str], EvalResult], val_data="div2k",
                  max_side: int | None = None) -> PaperCheck:
    """Compare bicubic scored under the ``paper`` protocol with the paper's Tables 1-2.

    Args:
        results: ``{(scale, protocol): EvalResult}``, as :func:`score_bicubic` or
            :func:`srgan_lib.evaluate.score_bicubic` return them; the ``paper`` entries are used.
        val_data: what was scored: a dataset name of :data:`srgan_lib.datasets.DATASETS` or a folder
            (a config's ``val_data``); anything but DIV2K's validation folder (a stand-in) makes the check impossible.
        max_side: the ``max_side`` the images were scored with (a crop makes the check impossible).

    Returns:
        PaperCheck: made only for DIV2K's 100 validation images (the dataset, and its file names), whole,
        at x2 and x4.
    """
    if not is_div2k_valid(val_data):
        return PaperCheck(False, f"the images scored are {str(val_data)!r}, not DIV2K's validation set (`div2k`); "
                                 "the paper's bicubic numbers are for that set only")
    checks = []
    for scale in SCALES:
        result = results.get((scale, "paper"))
        if result is None:
            return PaperCheck(False, f"the `paper` protocol was not scored at x{scale}")
        names = sorted(row["name"] for row in result.per_image)
        if names != list(DIV2K_VALID_NAMES):
            found = set(names) & set(DIV2K_VALID_NAMES)
            what = (f"only {len(found)} of DIV2K's 100 validation images were scored" if found and found == set(names)
                    else f"the {len(names)} image(s) scored (e.g. {names[0] if names else 'none'}) are not "
                         f"DIV2K's 100 validation images 0801.png-0900.png")
            return PaperCheck(False, f"{what}; the paper's bicubic numbers are for that set only")
        if max_side:
            return PaperCheck(False, f"the images were centre-cropped to {max_side} pixels; the paper scored them whole")
        paper = PAPER_TABLES[scale]["bicubic"]
        checks.append(ScaleCheck(scale, {m: float(result.values[m]) for m in PAPER_METRICS},
                                 {m: paper_value(paper, m) for m in PAPER_METRICS}))
    return PaperCheck(True, "", tuple(checks))


def score_bicubic(folder, scales: Iterable[int] = (2, 4), limit: int | None = None, max_side: int | None = None,
                  progress: bool = True) -> dict[tuple[int, str], EvalResult]:
    """:func:`srgan_lib.evaluate.score_bicubic` under both protocols, one image at a time, with a progress bar.

    The same numbers (each image scored alone, then aggregated by :func:`srgan_lib.protocols.aggregate`,
    the PSNR of the ``paper`` protocol from the pooled MSE of all images).

    Args:
        folder: a folder of HR images. scales, limit, max_side: as in :func:`srgan_lib.evaluate.score_bicubic`.
        progress: show a ``tqdm.auto`` bar (one step per image).

    Returns:
        ``{(scale, protocol): EvalResult}``.
    """
    if limit is not None and limit < 1:  # as evaluate does: 0 must not mean "no image"
        raise ConfigError(f"limit={limit}: use limit >= 1, or None for every image")
    scales = tuple(scales)
    rows: dict[tuple[int, str], list] = {(s, p): [] for s in scales for p in PROTOCOLS}
    for path in tqdm(list_images(folder)[:limit], desc="bicubic", unit="img", disable=not progress):
        for key, one in _score_bicubic([path], scales, PROTOCOLS, max_side=max_side).items():
            rows[key] += one.per_image
    return {(s, p): EvalResult(aggregate(r, p, s), p, s, len(r), r, PROTOCOL_RESIZE[p]) for (s, p), r in rows.items()}
