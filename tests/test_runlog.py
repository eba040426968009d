"""runlog: metrics.csv written and read back, resume cutting the files back, TensorBoard event files.

Expected file contents are written out by hand: the column order of the module
docstring, numbers with 8 significant digits, empty cells for terms a phase does
not compute.
"""

from __future__ import annotations

import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from srgan_lib import runlog

HEADER = "step,phase,g_pixel,g_content,g_adv,g_tv,g_total,d_real,d_fake,d_total,d_x,d_g_z,lr,time"
GAN_TERMS = {"g_pixel": 1 / 3, "g_content": 2.5, "g_adv": 0.75, "g_tv": 1e-9, "g_total": 4.0,
             "d_real": 0.5, "d_fake": 0.25, "d_total": 0.75, "d_x": 0.625, "d_g_z": 0.375}


def _lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _log_steps(run_dir, steps, resume_step=None, scale=1.0, tensorboard=False):
    log = runlog.RunLog(run_dir, resume_step=resume_step, tensorboard=tensorboard)
    for step in steps:
        log.log_losses(step, "gan", {"g_pixel": scale * step, "g_total": 2 * scale * step}, 1e-3, float(step))
    log.close()


def test_metrics_columns_and_values(tmp_path):
    log = runlog.RunLog(tmp_path, tensorboard=False)
    log.log_losses(2, "mse", {"g_pixel": 0.125, "g_total": 0.125}, 1e-4, 1.23456)
    log.log_losses(4, "gan", GAN_TERMS, 1e-3, 7.0)
    log.close()
    assert _lines(tmp_path / "metrics.csv") == [
        HEADER,
        "2,mse,0.125,,,,0.125,,,,,,0.0001,1.235",  # time rounded to ms
        "4,gan,0.33333333,2.5,0.75,1e-09,4,0.5,0.25,0.75,0.625,0.375,0.001,7",
    ]
    mse, gan = runlog.read_metrics(tmp_path)
    assert mse["step"] == 2 and mse["phase"] == "mse" and mse["g_pixel"] == 0.125 and mse["lr"] == 1e-4
    assert all(math.isnan(mse[k]) for k in ("g_content", "g_adv", "g_tv", "d_real", "d_x", "d_g_z"))
    for key, value in GAN_TERMS.items():
        assert gan[key] == pytest.approx(value, rel=1e-8), key
    assert gan["time"] == 7.0


def test_val_file_is_started_with_its_columns(tmp_path):
    runlog.RunLog(tmp_path, tensorboard=False).close()
    assert _lines(tmp_path / "val.csv") == [",".join(runlog.VAL_COLUMNS)]
    assert runlog.VAL_COLUMNS[0] == "step"


def test_fresh_run_starts_the_files_anew(tmp_path):
    _log_steps(tmp_path, [1, 2, 3])
    _log_steps(tmp_path, [1])
    assert _lines(tmp_path / "metrics.csv") == [HEADER, "1,gan,1,,,,2,,,,,,0.001,1"]


def test_resume_cuts_back_to_the_checkpoint_and_appends(tmp_path):
    _log_steps(tmp_path, [1, 2, 3, 4, 5])
    with open(tmp_path / "metrics.csv", "a", encoding="utf-8") as f:
        f.write("6,ga")  # a row torn by a kill
    val = tmp_path / "val.csv"
    blank = "," * (len(runlog.VAL_COLUMNS) - 1)
    val.write_text(",".join(runlog.VAL_COLUMNS) + "\n" + "".join(f"{s}{blank}\n" for s in (2, 4)), encoding="utf-8")

    _log_steps(tmp_path, [4, 5], resume_step=3, scale=10.0)
    assert _lines(tmp_path / "metrics.csv") == [
        HEADER,
        "1,gan,1,,,,2,,,,,,0.001,1",
        "2,gan,2,,,,4,,,,,,0.001,2",
        "3,gan,3,,,,6,,,,,,0.001,3",  # the checkpoint's own step stays
        "4,gan,40,,,,80,,,,,,0.001,4",
        "5,gan,50,,,,100,,,,,,0.001,5",
    ]
    assert _lines(val) == [",".join(runlog.VAL_COLUMNS), f"2{blank}"]


def test_resume_without_a_file_starts_one(tmp_path):
    _log_steps(tmp_path, [4], resume_step=3)
    assert _lines(tmp_path / "metrics.csv") == [HEADER, "4,gan,4,,,,8,,,,,,0.001,4"]


def _scalars(log_dir, tag) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_events_are_written(tmp_path):
    log = runlog.RunLog(tmp_path)
    log.log_losses(4, "gan", GAN_TERMS, 1e-3, 7.0)
    log.log_losses(8, "gan", {**GAN_TERMS, "g_adv": 0.5}, 1e-3, 9.0)
    log.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert _scalars(tmp_path / "tb", "loss/g_adv") == [(4, 0.75), (8, 0.5)]
    assert _scalars(tmp_path / "tb", "D/d_x") == [(4, 0.625), (8, 0.625)]
    assert _scalars(tmp_path / "tb", "lr") == [(4, pytest.approx(1e-3)), (8, pytest.approx(1e-3))]


def test_tensorboard_off_writes_no_events(tmp_path):
    _log_steps(tmp_path, [1])
    assert not (tmp_path / "tb").exists()


def test_tensorboard_after_resume_keeps_the_checkpoint_step(tmp_path):
    _log_steps(tmp_path, [1, 2, 3, 4, 5], tensorboard=True)
    _log_steps(tmp_path, [4, 5], resume_step=3, scale=10.0, tensorboard=True)
    # what the stopped run logged after step 3 is hidden; step 3 itself is kept, as in metrics.csv
    assert _scalars(tmp_path / "tb", "loss/g_pixel") == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0)]
