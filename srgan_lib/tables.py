"""Tables 1 (x2) and 2 (x4): ours over seeds, gains compared with the paper's gains, paired differences.

The one table builder of the project: the bicubic rows written by
``notebooks/01_bicubic_baseline.ipynb`` and the full tables of the ablation
(:mod:`srgan_lib.ablation`, notebook 05) both come from :func:`build_table`.

**Rows**: bicubic, the MSE-only control (SRResNet), then the paper's rows: one per
crop size with the TV term, then the same crops "without tv loss". **Columns**, per
metric of :data:`srgan_lib.metrics.METRICS`: ours as ``mean ± std`` over seeds, our
gain over bicubic, and where the paper printed the metric its value and its gain.
Our absolute values compare with the paper's only when the data and protocol are
the paper's (DIV2K validation, protocol ``paper``): only then is ``ours - paper``
shown. Otherwise gains are compared with gains.

**Differences** (a second table): SRGAN - bicubic, SRGAN - SRResNet, TV on - off per
crop and each pair of crops, as paired differences (same seed, same image) with a
95 % interval and a verdict (:mod:`srgan_lib.stats`), the paper's difference beside.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import results_dir
from .evaluate import Stat
from .fileio import atomic_write_text
from .metrics import METRICS
from .paper import PAPER_METRICS, PAPER_TABLES, TABLE_FILES, paper_value, row_label
from .protocols import PROTOCOL_TEXT
from .stats import Difference, method_text, paired_difference, seeds_by_images


@dataclass
class Table:
    """One protocol's Table 1 or 2.

    Attributes:
        scale, protocol: x2/x4 and ``"standard"``/``"paper"``.
        rows: dicts with ``label, kind`` (``bicubic``/``control``/``srgan``), ``crop_size, use_tv, seeds`` and per
            metric ``m``: ``ours_m``, ``gain_m`` (:class:`Stat` over seeds, or None), ``paper_m``, ``paper_gain_m``.
        differences: dicts with ``label`` and per metric ``diff_m`` (:class:`~srgan_lib.stats.Difference`)
            and ``paper_m`` (the paper's difference or None).
        comparable: the data and protocol are the paper's, so absolute values compare.
        footnote: sentences on profile, data, protocol, substitutes and statistics.
    """

    scale: int
    protocol: str
    rows: list[dict]
    differences: list[dict] = field(default_factory=list)
    comparable: bool = False
    footnote: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{TABLE_FILES.get(self.scale, ('Table',))[0]}: x{self.scale} upsampling, protocol `{self.protocol}`"


def _by_seed(results) -> dict:
    """``{seed: result}`` from a dict, a list (seeds 0, 1, ...) or one result; ``{}`` for None."""
    if results is None or isinstance(results, dict):
        return dict(results or {})
    return dict(enumerate(results if isinstance(results, (list, tuple)) else [results]))


def _row(label, kind, crop, use_tv, by_seed: dict, bicubic, paper_pair, paper_bicubic) -> dict:
    row = {"label": label, "kind": kind, "crop_size": crop, "use_tv": use_tv, "seeds": len(by_seed)}
    for m in METRICS:
        vals = [float(by_seed[s].values[m]) for s in sorted(by_seed)]
        row[f"ours_{m}"] = Stat(tuple(vals)) if vals else None
        gains = [v - float(bicubic.values[m]) for v in vals] if bicubic is not None and kind != "bicubic" else []
        row[f"gain_{m}"] = Stat(tuple(gains)) if gains else None
        p, pb = paper_value(paper_pair, m), paper_value(paper_bicubic, m)
        row[f"paper_{m}"] = p
        row[f"paper_gain_{m}"] = p - pb if (p is not None and pb is not None and kind != "bicubic") else None
    return row


def _difference(label: str, a: dict, b: dict, paper_a=None, paper_b=None) -> dict | None:
    """The paired difference of two ``{seed: result}`` (``b`` may be one result: bicubic), or None."""
    if not a or not b:
        return None
    seeds = sorted(a) if len(b) == 1 and None in b else sorted(set(a) & set(b))
    if not seeds:
        return None
    row = {"label": label}
    for m in METRICS:
        mat_a = seeds_by_images({s: a[s] for s in seeds}, m)
        mat_b = np.broadcast_to(seeds_by_images({0: b[None]}, m), mat_a.shape) if None in b else \
            seeds_by_images({s: b[s] for s in seeds}, m)
        row[f"diff_{m}"] = paired_difference(mat_a, mat_b)
        pa, pb = paper_value(paper_a, m), paper_value(paper_b, m)
        row[f"paper_{m}"] = pa - pb if (pa is not None and pb is not None) else None
    return row


def build_table(scale: int, protocol: str, bicubic=None, runs: dict | None = None,
                footnote: list[str] | tuple[str, ...] = (), crop_sizes=(88, 128, 168), control=None,
                control_crop: int = 88, comparable: bool = False) -> Table:
    """Table 1 (x2) or 2 (x4) for one protocol.

    Args:
        scale: 2 or 4 (other scales have no paper columns).
        protocol: the protocol ours were scored with (named in the title).
        bicubic: the bicubic result (with ``values`` and ``per_image``, e.g. an
            :class:`srgan_lib.evaluate.EvalResult`), or None.
        runs: ``{(crop_size, use_tv): {seed: result}}`` (a list is seeds 0, 1, ...; one result is seed 0);
            None gives a bicubic-only table.
        footnote: sentences printed under the table (see :func:`footnote`).
        crop_sizes: the rows' crop sizes (others in ``runs`` are appended).
        control: the MSE-only control's ``{seed: result}`` (crop ``control_crop``), or None.
        comparable: data and protocol are the paper's: absolute values compare (``ours - paper`` shown).
    """
    runs = {k: _by_seed(v) for k, v in (runs or {}).items()}
    control = _by_seed(control)
    paper = PAPER_TABLES.get(scale, {})
    srgan = paper.get("srgan", {})
    crops = list(crop_sizes) + sorted({c for c, _ in runs} - set(crop_sizes))
    bic = {None: bicubic} if bicubic is not None else {}
    rows = []
    if bicubic is not None:
        rows.append(_row("Bicubic", "bicubic", None, None, {0: bicubic}, bicubic, paper.get("bicubic"), None))
    if control:
        rows.append(_row(f"SRResNet, MSE only, crop {control_crop}", "control", control_crop, None, control, bicubic,
                         None, None))
    for use_tv in (True, False):
        rows += [_row(row_label(c, use_tv), "srgan", c, use_tv, runs.get((c, use_tv), {}), bicubic,
                      srgan.get((c, use_tv)), paper.get("bicubic")) for c in crops if runs or bicubic is None]
    diffs = []
    first = runs.get((control_crop, True))
    diffs.append(_difference(f"SRGAN (crop {control_crop}) - bicubic", first or {}, bic,
                             srgan.get((control_crop, True)), paper.get("bicubic")))
    diffs.append(_difference(f"SRGAN - SRResNet (crop {control_crop})", first or {}, control))
    for c in crops:
        diffs.append(_difference(f"TV on - off, crop {c}", runs.get((c, True), {}), runs.get((c, False), {}),
                                 srgan.get((c, True)), srgan.get((c, False))))
    for use_tv, (a, b) in itertools.product((True, False), itertools.combinations(crops, 2)):
        diffs.append(_difference(f"crop {b} - {a}" + ("" if use_tv else ", without TV"), runs.get((b, use_tv), {}),
                                 runs.get((a, use_tv), {}), srgan.get((b, use_tv)), srgan.get((a, use_tv))))
    return Table(scale, protocol, rows, [d for d in diffs if d is not None], comparable, list(footnote))


def _stat(value: Stat | None, digits: int, sign: bool = False) -> str:
    fmt = f"{'+' if sign else ''}.{digits}f"
    return "" if value is None else f"{value.mean:{fmt}}" + (f" ± {value.std:.{digits}f}" if value.n > 1 else "")


def _num(value: float | None, digits: int, sign: bool = False) -> str:
    return "" if value is None else f"{value:{'+' if sign else ''}.{digits}f}"


def _value_columns(table: Table) -> list[tuple[str, str, callable]]:  # (header, metric, cell(row))
    cols = []
    for m, metric in METRICS.items():
        d = metric.digits
        cols += [(f"{metric.label} (ours)", m, lambda r, m=m, d=d: _stat(r[f"ours_{m}"], d)),
                 (f"{metric.label} − bicubic (ours)", m, lambda r, m=m, d=d: _stat(r[f"gain_{m}"], d, True))]
        if m in PAPER_METRICS:
            cols += [(f"{metric.label} (paper)", m, lambda r, m=m: _num(r[f"paper_{m}"], 4)),
                     (f"{metric.label} − bicubic (paper)", m, lambda r, m=m, d=d: _num(r[f"paper_gain_{m}"], d, True))]
            if table.comparable:
                cols.append((f"{metric.label}: ours − paper", m, lambda r, m=m, d=d: "" if r[f"ours_{m}"] is None
                             or r[f"paper_{m}"] is None else f"{r[f'ours_{m}'].mean - r[f'paper_{m}']:+.{d}f}"))
    return cols


def _diff_cell(diff: Difference, digits: int) -> str:
    return f"{diff.format(digits)} | {'**yes**' if diff.distinguishable else 'no'}"


def to_markdown(table: Table) -> str:
    """The table as Markdown: the values, then the differences, then the footnote."""
    cols = _value_columns(table)
    lines = [f"### {table.title}", "", "| | seeds | " + " | ".join(h for h, _, _ in cols) + " |",
             "| --- | ---: " + "| ---: " * len(cols) + "|"]
    for row in table.rows:
        seeds = str(row["seeds"]) if row["kind"] != "bicubic" else "–"
        lines.append(f"| {row['label']} | {seeds} | " + " | ".join(cell(row) for _, _, cell in cols) + " |")
    if table.differences:
        header = ["Paired difference"]
        for m, metric in METRICS.items():
            header += [f"{metric.label} [95 % CI]", "distinguishable?"] + ([f"{metric.label} (paper)"]
                                                                           if m in PAPER_METRICS else [])
        lines += ["", "| " + " | ".join(header) + " |", "| --- " + "| ---: " * (len(header) - 1) + "|"]
        for d in table.differences:
            cells = [d["label"]]
            for m, metric in METRICS.items():
                cells.append(_diff_cell(d[f"diff_{m}"], metric.digits + 1))
                if m in PAPER_METRICS:
                    cells.append(_num(d[f"paper_{m}"], metric.digits + 1, True))
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", method_text()]
    lines.append("")
    lines += [f"<sup>{i}</sup> {text}  " for i, text in enumerate(table.footnote, 1)]
    return "\n".join(lines).rstrip() + "\n"


def csv_rows(table: Table) -> list[dict]:
    """Plain numbers, one dict per row and per difference (``part`` says which); empty = absent."""
    out = []
    base = {"table": TABLE_FILES.get(table.scale, ("",))[0], "scale": table.scale, "protocol": table.protocol}
    for row in table.rows:
        rec = {**base, "part": "value", "row": row["label"], "crop_size": row["crop_size"] or "",
               "use_tv": "" if row["use_tv"] is None else int(row["use_tv"]), "seeds": row["seeds"]}
        for m in METRICS:
            for key in ("ours", "gain"):
                s = row[f"{key}_{m}"]
                rec[f"{key}_{m}"], rec[f"{key}_{m}_std"] = (f"{s.mean:.6f}", f"{s.std:.6f}") if s else ("", "")
            rec[f"paper_{m}"], rec[f"paper_gain_{m}"] = _num(row[f"paper_{m}"], 6), _num(row[f"paper_gain_{m}"], 6)
        out.append(rec)
    for d in table.differences:
        rec = {**base, "part": "difference", "row": d["label"], "seeds": d[f"diff_{next(iter(METRICS))}"].seeds}
        for m in METRICS:
            diff = d[f"diff_{m}"]
            rec.update({f"ours_{m}": f"{diff.mean:.6f}", f"low_{m}": f"{diff.low:.6f}", f"high_{m}": f"{diff.high:.6f}",
                        f"distinguishable_{m}": int(diff.distinguishable), f"paper_{m}": _num(d[f"paper_{m}"], 6)})
        out.append(rec)
    return out


def csv_columns() -> tuple[str, ...]:
    """The CSV header: the row's keys, then per metric its value, gain, paper values and interval."""
    per_metric = ("ours_{}", "ours_{}_std", "gain_{}", "gain_{}_std", "paper_{}", "paper_gain_{}", "low_{}",
                  "high_{}", "distinguishable_{}")
    return ("table", "scale", "protocol", "part", "row", "crop_size", "use_tv", "seeds",
            *(k.format(m) for m in METRICS for k in per_metric))


def write_tables(tables: list[Table], folder, heading: str | None = None, suffix: str = "",
                 ) -> dict[int, tuple[Path, Path]]:
    """Write ``table1_x2.md/.csv`` and ``table2_x4.md/.csv`` (one section per protocol) atomically; return
    ``{scale: (markdown path, csv path)}``. ``suffix`` is appended to the file stems."""
    folder = Path(folder)
    written = {}
    for scale in sorted({t.scale for t in tables}):
        group = [t for t in tables if t.scale == scale]
        name, stem = TABLE_FILES.get(scale, (f"Table x{scale}", f"table_x{scale}"))
        parts = [f"# {name} (x{scale})", ""] + ([heading, ""] if heading else []) + [to_markdown(t) for t in group]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=csv_columns(), lineterminator="\n", extrasaction="raise")
        writer.writeheader()
        for t in group:
            writer.writerows(csv_rows(t))
        md = atomic_write_text(folder / f"{stem}{suffix}.md", "\n".join(parts))
        written[scale] = (md, atomic_write_text(folder / f"{stem}{suffix}.csv", buf.getvalue()))
    return written


def footnote(profile: str, protocol: str, val_data: str, val_count: int, train_data: str | None = None,
             vgg_weights_used: dict[str, str] | None = None, schedule: str | None = None) -> list[str]:
    """The sentences under a table: profile, data (``val_count`` images of ``val_data``), protocol, and, never
    silently, substitutes: data other than DIV2K, random VGG weights (``{run: "imagenet"|"random"}`` from each
    run's ``meta.json``); then ``schedule`` (one sentence on network and iterations) if given."""
    notes = [f"Profile `{profile}`; validation on `{val_data}` ({val_count} images); protocol `{protocol}`: "
             f"{PROTOCOL_TEXT.get(protocol, protocol)}. Paper columns: the paper's Tables 1-2 (DIV2K validation)."]
    substitutes = [f"{what} on `{spec}`" for what, spec in (("trained", train_data), ("validated", val_data))
                   if spec is not None and spec != "div2k"]
    if substitutes:
        notes.append("DATA SUBSTITUTE: the paper trained and validated on DIV2K; these numbers were "
                     + " and ".join(substitutes) + ", so compare gains with the paper's gains, not absolute values.")
    random_runs = sorted(k for k, v in (vgg_weights_used or {}).items() if v == "random")
    unknown = sorted(k for k, v in (vgg_weights_used or {}).items() if v not in ("random", "imagenet"))
    if random_runs:
        which = "every run" if len(random_runs) == len(vgg_weights_used) else ", ".join(random_runs)
        notes.append(f"RANDOM VGG WEIGHTS in {which}: the ImageNet VGG19 weights were not available, so the "
                     "content loss compared features of a randomly initialised VGG19, not the paper's perceptual loss.")
    if unknown:
        notes.append(f"VGG weights UNKNOWN (no meta.json) for {', '.join(unknown)}.")
    return notes + ([schedule] if schedule else [])


def write_bicubic_tables(results: dict, profile_name: str, dataset: str, out_dir=None) -> dict[int, tuple[Path, Path]]:
    """Write the bicubic rows of Tables 1 (x2) and 2 (x4) beside the paper's, one section per protocol.

    Args:
        results: ``{(scale, protocol): EvalResult}`` from :func:`srgan_lib.evaluate.score_bicubic`.
        profile_name: selects the folder (``<results_dir(profile)>/tables``), named in the footnote.
        dataset: the data's name for the footnote (``"div2k"``, ``"samples"``, a folder).
        out_dir: overrides the folder.

    Returns:
        ``{scale: (markdown path, csv path)}``: ``table1_x2_bicubic.*`` and ``table2_x4_bicubic.*``.
    """
    out = Path(out_dir) if out_dir is not None else results_dir(profile_name) / "tables"
    built = [build_table(scale, protocol, res, footnote=footnote(profile_name, protocol, str(dataset), res.count),
                         comparable=str(dataset) == "div2k" and protocol == "paper")
             for (scale, protocol), res in results.items()]
    return write_tables(built, out, heading="Bicubic rows only; notebook 05 adds the SRGAN rows "
                                            "(`table1_x2.md`, `table2_x4.md`).", suffix="_bicubic")
