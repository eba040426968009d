"""What the paper printed: Tables 1-2 (DIV2K validation), and the names of its tables and rows.

The numbers are as printed in "Upscaling using SRGAN", sec. 4.4 (see ``docs/references.md``);
:mod:`srgan_lib.tables` puts ours beside them and :mod:`srgan_lib.paper_check` tests our reading of
the paper's protocol against its bicubic numbers.
"""

from __future__ import annotations

#: The paper's Tables 1-2 (DIV2K validation, as printed): bicubic (PSNR, SSIM) and SRGAN (PSNR, SSIM)
#: per (crop_size, use_tv). Source: the paper ("Upscaling using SRGAN", sec. 4.4; docs/references.md).
PAPER_TABLES: dict[int, dict] = {
    2: {"bicubic": (28.3654, 0.8877),
        "srgan": {(88, True): (29.0084, 0.8938), (128, True): (29.0127, 0.8949), (168, True): (29.0124, 0.8951),
                  (88, False): (28.9112, 0.8895), (128, False): (28.9228, 0.8906), (168, False): (28.9172, 0.8901)}},
    4: {"bicubic": (24.5025, 0.7408),
        "srgan": {(88, True): (25.0117, 0.7541), (128, True): (25.0189, 0.7558), (168, True): (25.0168, 0.7554),
                  (88, False): (24.8942, 0.7482), (128, False): (24.8347, 0.7494), (168, False): (24.8742, 0.7491)}},
}
TABLE_FILES = {2: ("Table 1", "table1_x2"), 4: ("Table 2", "table2_x4")}  #: title and file stem per scale
PAPER_METRICS = ("psnr", "ssim")  #: the metrics of each pair in PAPER_TABLES, in order


def paper_value(pair: tuple[float, ...] | None, metric: str) -> float | None:
    """The paper's value of ``metric`` in a pair of ``PAPER_TABLES``; None where it printed none."""
    return pair[PAPER_METRICS.index(metric)] if pair is not None and metric in PAPER_METRICS else None


def row_label(crop_size: int, use_tv: bool) -> str:
    """The paper's row label, e.g. ``Crop size(88)`` or ``Crop size(88) without tv loss``."""
    return f"Crop size({crop_size})" + ("" if use_tv else " without tv loss")
