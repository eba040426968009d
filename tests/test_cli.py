"""The ``srgan`` command: ``train`` and ``upscale`` end to end, and every user error as one line + exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan_lib import cli, images


def _one_line_error(capsys, argv, *needles):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors exit from inside parse_args
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def hr_folder(tmp_path, data_root):
    rng = np.random.default_rng(0)
    folder = tmp_path / "hr"
    for i in range(2):
        images.save_image(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), folder / f"{i}.png")
    return folder


@pytest.fixture
def trained(tmp_path, hr_folder, capsys):
    """A finished tiny run made by ``srgan train`` (smoke profile, x4, crop 24)."""
    argv = ["train", "--profile", "smoke", "--scale", "4", "--crop", "24", "--data", str(hr_folder),
            "--val-data", str(hr_folder), "--iters", "1", "--warmup", "1", "--runs", str(tmp_path / "runs"),
            "--device", "cpu", "--quiet"]
    assert cli.main(argv) == 0
    run_dir = tmp_path / "runs" / "srgan_x4_c24_tv1_s0"
    assert (run_dir / "generator.pt").is_file()
    capsys.readouterr()
    return run_dir, argv


def test_train_then_upscale(tmp_path, trained, hr_folder, capsys):
    run_dir, argv = trained
    # a finished run is reported, not trained again
    assert cli.main(argv) == 0
    assert "finished already" in capsys.readouterr().out
    assert cli.main(["upscale", str(hr_folder / "0.png"), "--checkpoint", str(run_dir), "--out",
                     str(tmp_path / "out"), "--tile", "4", "--device", "cpu"]) == 0
    assert images.load_image(tmp_path / "out" / "0_srgan_x4.png").shape == (160, 160, 3)
    assert cli.main(["upscale", str(hr_folder), "--bicubic", "--scale", "2", "--out", str(tmp_path / "bic")]) == 0
    assert sorted(p.name for p in (tmp_path / "bic").iterdir()) == ["0_bicubic_x2.png", "1_bicubic_x2.png"]


def test_train_user_errors(tmp_path, hr_folder, capsys):
    base = ["train", "--profile", "smoke", "--runs", str(tmp_path / "runs"), "--quiet"]
    _one_line_error(capsys, base + ["--scale", "4", "--crop", "90"], "crop_size=90", "divisible")
    _one_line_error(capsys, base + ["--data", str(tmp_path / "missing")], "missing", "does not exist")
    if not torch.cuda.is_available():
        _one_line_error(capsys, base + ["--data", str(hr_folder), "--device", "cuda"], "CUDA is not available")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _one_line_error(capsys, ["train", "--profile", "smoke", "--runs", str(blocker), "--data", str(hr_folder),
                             "--val-data", str(hr_folder), "--quiet", "--crop", "24"], "cannot write", "a_file")
    _one_line_error(capsys, base + ["--profile", "huge"], "invalid choice")


def test_train_existing_checkpoint_needs_resume(tmp_path, trained, capsys):
    run_dir, argv = trained
    (run_dir / "generator.pt").unlink()  # as if it had stopped after its last checkpoint
    _one_line_error(capsys, argv, "--resume")
    assert cli.main(argv + ["--resume"]) == 0
    assert (run_dir / "generator.pt").is_file()


def test_upscale_user_errors(tmp_path, trained, hr_folder, capsys):
    run_dir, _ = trained
    img = str(hr_folder / "0.png")
    out = ["--out", str(tmp_path / "out"), "--device", "cpu"]
    _one_line_error(capsys, ["upscale", str(tmp_path / "nope.png"), "--checkpoint", str(run_dir)] + out, "nope.png")
    _one_line_error(capsys, ["upscale", img, "--checkpoint", str(tmp_path / "none.pt")] + out, "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    _one_line_error(capsys, ["upscale", img, "--checkpoint", str(bad)] + out, "bad.pt", "cannot read")
    _one_line_error(capsys, ["upscale", img, "--checkpoint", str(run_dir), "--scale", "2"] + out,
                    "x4 model, not x2")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _one_line_error(capsys, ["upscale", img, "--checkpoint", str(run_dir), "--out", str(blocker / "sub")],
                    "cannot write")
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    _one_line_error(capsys, ["upscale", str(not_image), "--bicubic", "--scale", "2"] + out, "notes.png")
    _one_line_error(capsys, ["upscale", img, "--bicubic"] + out, "--scale")
    if not torch.cuda.is_available():
        _one_line_error(capsys, ["upscale", img, "--checkpoint", str(run_dir), "--device", "cuda"],
                        "CUDA is not available")
