"""Tables 1 (x2) and 2 (x4) in the paper's layout, with the paper's numbers beside ours.

The one table builder of the project: the bicubic columns written by
``notebooks/01_bicubic_baseline.ipynb`` and the full tables written by the
ablation (:mod:`srgan_lib.ablation`, ``notebooks/05_ablation_evaluation.ipynb``)
both come from :func:`build_table`.

Layout (paper sec. 4.4): one row per crop size (88, 128, 168) with the TV term,
then the same crops "without tv loss"; columns bicubic PSNR/SSIM and SRGAN
PSNR/SSIM, one pair of columns per metric of :data:`srgan_lib.metrics.METRICS`.
For each number we show ours, the paper's (where it printed one) and the
difference (ours - paper). Where several seeds ran, ours is ``mean +- std``
(sample standard deviation over seeds) and a note says, per crop size, whether
the TV on/off difference exceeds the seed-to-seed spread.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from .config import results_dir
from .evaluate import Stat, seeds, stat
from .fileio import atomic_write_text
from .metrics import METRICS
from .protocols import PROTOCOL_TEXT

#: The paper's Tables 1-2 (DIV2K validation, as printed): bicubic (PSNR, SSIM) and
#: SRGAN (PSNR, SSIM) per (crop_size, use_tv). Source: the paper
#: ("Upscaling using SRGAN", sec. 4.4; see docs/references.md).
PAPER_TABLES: dict[int, dict] = {
    2: {
        "bicubic": (28.3654, 0.8877),
        "srgan": {
            (88, True): (29.0084, 0.8938), (128, True): (29.0127, 0.8949), (168, True): (29.0124, 0.8951),
            (88, False): (28.9112, 0.8895), (128, False): (28.9228, 0.8906), (168, False): (28.9172, 0.8901),
        },
    },
    4: {
        "bicubic": (24.5025, 0.7408),
        "srgan": {
            (88, True): (25.0117, 0.7541), (128, True): (25.0189, 0.7558), (168, True): (25.0168, 0.7554),
            (88, False): (24.8942, 0.7482), (128, False): (24.8347, 0.7494), (168, False): (24.8742, 0.7491),
        },
    },
}
#: Table number and file stem per scale, as in the paper.
TABLE_FILES = {2: ("Table 1", "table1_x2"), 4: ("Table 2", "table2_x4")}
#: The metrics of each pair in PAPER_TABLES, in order (the paper printed no others).
PAPER_METRICS = ("psnr", "ssim")


def paper_value(pair: tuple[float, ...] | None, metric: str) -> float | None:
    """The paper's value of ``metric`` in a pair of ``PAPER_TABLES``; None where it printed none."""
    return pair[PAPER_METRICS.index(metric)] if pair is not None and metric in PAPER_METRICS else None


def row_label(crop_size: int, use_tv: bool) -> str:
    """The paper's row label, e.g. ``Crop size(88)`` or ``Crop size(88) without tv loss``."""
    return f"Crop size({crop_size})" + ("" if use_tv else " without tv loss")


@dataclass
class Table:
    """One protocol's Table 1 or 2: rows in the paper's order, notes and a footnote.

    Attributes:
        scale: 2 (Table 1) or 4 (Table 2).
        protocol: ``"standard"`` or ``"paper"`` (see :mod:`srgan_lib.protocols`).
        rows: dicts with ``label, crop_size, use_tv, seeds`` (SRGAN runs, 0 for none) and, per metric ``m`` of
            ``METRICS``, ``bicubic_m`` / ``srgan_m`` (:class:`Stat` or None) and
            ``paper_bicubic_m`` / ``paper_srgan_m`` (float or None).
        notes: sentences about TV on/off vs the seed spread.
        footnote: sentences on profile, data, protocol and VGG weights.
    """

    scale: int
    protocol: str
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    footnote: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{TABLE_FILES.get(self.scale, ('Table',))[0]}: x{self.scale} upsampling, protocol `{self.protocol}`"


def _tv_notes(scale: int, runs: dict) -> list[str]:
    """Per crop: TV on - off against the pooled seed std, when some cell has more than one seed."""
    notes = []
    crops = sorted({c for c, _ in runs})
    for crop in crops:
        on, off = stat(runs.get((crop, True))), stat(runs.get((crop, False)))
        if on is None or off is None or max(seeds(on), seeds(off)) < 2:
            continue
        parts = []
        for m, metric in METRICS.items():
            d = on[m].mean - off[m].mean
            spread = math.sqrt((on[m].std ** 2 + off[m].std ** 2) / 2)
            verdict = "exceeds" if abs(d) > spread else "does not exceed"
            digits, unit = metric.digits + 1, metric.suffix
            parts.append(f"{metric.label} {d:+.{digits}f}{unit} {verdict} the seed-to-seed std "
                         f"{spread:.{digits}f}{unit}")
        n_on, n_off = seeds(on), seeds(off)
        notes.append(f"x{scale}, crop {crop}: TV on - off ({n_on} vs {n_off} seeds): " + "; ".join(parts) + ".")
    return notes


def build_table(scale: int, protocol: str, bicubic=None, runs: dict | None = None,
                footnote: list[str] | tuple[str, ...] = (), crop_sizes=(88, 128, 168)) -> Table:
    """Table 1 (x2) or 2 (x4) for one protocol.

    Args:
        scale: 2 or 4 (the paper has no table for other scales; the paper columns stay empty).
        protocol: the protocol ours were scored with (named in the title).
        bicubic: the bicubic result (an object whose ``values`` hold every metric, e.g.
            :class:`srgan_lib.evaluate.EvalResult`), or None to leave the column empty.
        runs: ``{(crop_size, use_tv): [result per seed]}`` (or one result); None
            or missing cells leave the SRGAN columns empty (bicubic-only table).
        footnote: sentences printed under the table (see :func:`footnote`).
        crop_sizes: the rows' crop sizes (the paper's three by default; others are appended).

    Returns:
        Table: rows in the paper's order (TV on for every crop, then TV off).
    """
    runs = dict(runs or {})
    paper = PAPER_TABLES.get(scale)
    crops = list(crop_sizes) + sorted({c for c, _ in runs} - set(crop_sizes))
    bic = stat(bicubic)
    rows = []
    for use_tv in (True, False):
        for crop in crops:
            ours = stat(runs.get((crop, use_tv)))
            row = {"label": row_label(crop, use_tv), "crop_size": crop, "use_tv": use_tv, "seeds": seeds(ours)}
            paper_srgan = paper["srgan"].get((crop, use_tv)) if paper else None
            for m in METRICS:
                # as in the paper, the bicubic numbers appear once, on the rows with TV
                row[f"bicubic_{m}"] = bic[m] if (bic and use_tv) else None
                row[f"paper_bicubic_{m}"] = paper_value(paper["bicubic"], m) if (paper and use_tv) else None
                row[f"srgan_{m}"] = ours[m] if ours else None
                row[f"paper_srgan_{m}"] = paper_value(paper_srgan, m)
            rows.append(row)
    return Table(scale, protocol, rows, _tv_notes(scale, runs), list(footnote))


def _cell(value, digits: int) -> str:
    if value is None:
        return ""
    return value.format(digits) if isinstance(value, Stat) else f"{value:.{digits}f}"


def _diff(ours, paper, digits: int) -> str:
    if ours is None or paper is None:
        return ""
    return f"{ours.mean - paper:+.{digits}f}"


def _groups() -> list[tuple[str, str, str]]:
    """``(kind, metric, column label)`` per number of a row: every metric for bicubic, then for SRGAN."""
    return [(kind, m, f"{name} {metric.label}") for kind, name in (("bicubic", "Bicubic"), ("srgan", "SRGAN"))
            for m, metric in METRICS.items()]


def to_markdown(table: Table) -> str:
    """The table as Markdown: for each number, ours | paper | ours - paper; then notes and footnote."""
    header = [""]
    for _, _, name in _groups():
        header += [f"{name} (ours)", "(paper)", "Δ"]
    lines = [f"### {table.title}", "", "| " + " | ".join(header) + " |",
             "| --- " + "| ---: " * (len(header) - 1) + "|"]
    for row in table.rows:
        cells = [row["label"]]
        for kind, m, _ in _groups():
            ours, paper, digits = row[f"{kind}_{m}"], row[f"paper_{kind}_{m}"], METRICS[m].digits
            cells += [_cell(ours, digits), _cell(paper, 4), _diff(ours, paper, digits)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for note in table.notes:
        lines.append(f"- {note}")
    if table.notes:
        lines.append("")
    for i, text in enumerate(table.footnote, 1):
        lines.append(f"<sup>{i}</sup> {text}  ")
    return "\n".join(lines).rstrip() + "\n"


def csv_columns() -> tuple[str, ...]:
    """The CSV header: the row's keys, then mean, std, paper and difference of each number."""
    return ("table", "scale", "protocol", "row", "crop_size", "use_tv", "seeds",
            *(f"{k}_{m}{s}" for k, m, _ in _groups() for s in ("", "_std", "_paper", "_diff")))


def csv_rows(table: Table) -> list[dict]:
    """One dict per row with plain numbers (means, stds, paper values, differences); empty = absent."""
    out = []
    for row in table.rows:
        rec = {"table": TABLE_FILES[table.scale][0] if table.scale in TABLE_FILES else "",
               "scale": table.scale, "protocol": table.protocol, "row": row["label"],
               "crop_size": row["crop_size"], "use_tv": int(row["use_tv"]),
               "seeds": row["seeds"] or ""}
        for kind, m, _ in _groups():
            ours, paper = row[f"{kind}_{m}"], row[f"paper_{kind}_{m}"]
            rec[f"{kind}_{m}"] = f"{ours.mean:.6f}" if ours else ""
            rec[f"{kind}_{m}_std"] = f"{ours.std:.6f}" if ours else ""
            rec[f"{kind}_{m}_paper"] = f"{paper}" if paper is not None else ""
            rec[f"{kind}_{m}_diff"] = f"{ours.mean - paper:.6f}" if (ours and paper is not None) else ""
        out.append(rec)
    return out


def write_tables(tables: list[Table], folder, heading: str | None = None, suffix: str = "",
                 ) -> dict[int, tuple[Path, Path]]:
    """Write ``table1_x2.md/.csv`` and ``table2_x4.md/.csv`` (one section per protocol) atomically.

    Args:
        tables: tables of any scales and protocols; grouped by scale into one file each.
        folder: output folder (e.g. ``config.results_dir(profile) / "tables"``).
        heading: an optional first line under each file's title.
        suffix: appended to the file stems (``"_bicubic"`` -> ``table1_x2_bicubic.md``).

    Returns:
        dict: ``{scale: (markdown path, csv path)}``.
    """
    folder = Path(folder)
    written = {}
    for scale in sorted({t.scale for t in tables}):
        group = [t for t in tables if t.scale == scale]
        name, stem = TABLE_FILES.get(scale, (f"Table x{scale}", f"table_x{scale}"))
        parts = [f"# {name} (x{scale})", ""]
        if heading:
            parts += [heading, ""]
        parts += [to_markdown(t) for t in group]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=csv_columns(), lineterminator="\n")
        writer.writeheader()
        for t in group:
            writer.writerows(csv_rows(t))
        md = atomic_write_text(folder / f"{stem}{suffix}.md", "\n".join(parts))
        written[scale] = (md, atomic_write_text(folder / f"{stem}{suffix}.csv", buf.getvalue()))
    return written


def footnote(profile: str, protocol: str, val_data: str, val_count: int, train_data: str | None = None,
             vgg_weights_used: dict[str, str] | None = None, schedule: str | None = None) -> list[str]:
    """The sentences under a table: profile, data, protocol, and (never silently) substitutes.

    Args:
        profile: the profile name.
        protocol: ``"standard"`` or ``"paper"``.
        val_data: the validation data spec (``"div2k"``, ``"samples"``, a folder).
        val_count: number of validation images scored.
        train_data: the training data spec (None for a bicubic-only table).
        vgg_weights_used: ``{run_name: "imagenet"|"random"}`` read from each run's ``meta.json``.
        schedule: one sentence on network size and iterations (None to omit).
    """
    notes = [f"Profile `{profile}`; validation on `{val_data}` ({val_count} images); protocol `{protocol}`: "
             f"{PROTOCOL_TEXT.get(protocol, protocol)}. Paper columns: the paper's Tables 1-2 (DIV2K validation)."]
    substitutes = [f"{what} on `{spec}`" for what, spec in (("trained", train_data), ("validated", val_data))
                   if spec is not None and spec != "div2k"]
    if substitutes:
        notes.append("DATA SUBSTITUTE: the paper trained and validated on DIV2K; these numbers were "
                     + " and ".join(substitutes) + ", so only differences within a column (crop, TV, "
                     "scale), not absolute values, compare with the paper's.")
    if vgg_weights_used:
        random_runs = sorted(k for k, v in vgg_weights_used.items() if v == "random")
        unknown = sorted(k for k, v in vgg_weights_used.items() if v not in ("random", "imagenet"))
        if random_runs:
            which = "every run" if len(random_runs) == len(vgg_weights_used) else ", ".join(random_runs)
            notes.append(f"RANDOM VGG WEIGHTS in {which}: the ImageNet VGG19 weights were not available, so the "
                         "content loss compared features of a randomly initialised VGG19, not the paper's "
                         "perceptual loss.")
        if unknown:
            notes.append(f"VGG weights UNKNOWN (no meta.json) for {', '.join(unknown)}.")
    if schedule:
        notes.append(schedule)
    return notes


def write_bicubic_tables(results: dict, profile_name: str, dataset: str, out_dir=None) -> dict[int, tuple[Path, Path]]:
    """Write the bicubic columns of Tables 1 (x2) and 2 (x4), ours beside the paper's, one section per protocol.

    Args:
        results: ``{(scale, protocol): EvalResult}`` from :func:`srgan_lib.evaluate.score_bicubic`.
        profile_name: selects the folder (``<results_dir(profile)>/tables``) and is named in the footnote.
        dataset: the data's name for the footnote (``"div2k"``, ``"samples"``, a folder).
        out_dir: overrides the folder.

    Returns:
        dict: ``{scale: (markdown path, csv path)}``: ``table1_x2_bicubic.{md,csv}`` and
        ``table2_x4_bicubic.{md,csv}``, never the full tables of notebook 05.
    """
    out = Path(out_dir) if out_dir is not None else results_dir(profile_name) / "tables"
    built = [build_table(scale, protocol, res, footnote=footnote(profile_name, protocol, str(dataset), res.count))
             for (scale, protocol), res in results.items()]
    return write_tables(built, out, heading="Bicubic columns only; notebook 05 adds the SRGAN columns "
                                            "(`table1_x2.md`, `table2_x4.md`).", suffix="_bicubic")
