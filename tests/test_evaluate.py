"""``evaluate_images``, the bicubic tables and ``srgan evaluate`` (in-process), on real images."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

from srgan_lib import cli, evaluate, images, metrics, protocols, resize, tables
from srgan_lib.errors import ConfigError, DataError, ImageReadError


def _bicubic_sr(hr, lr, method):
    return resize.imresize(lr, size=hr.shape[:2], method=method)


def test_standard_result_is_the_mean_of_per_image_scores(set5_dir):
    res = evaluate.evaluate_images(set5_dir, 4, "standard", limit=2, max_side=96)
    assert (res.count, res.scale, res.protocol, res.resize_method) == (2, 4, "standard", "matlab")
    assert [r["name"] for r in res.per_image] == ["baby.png", "bird.png"]
    # per image: skimage's PSNR of the uint8 Y channels with a 4-pixel border removed
    for row in res.per_image:
        hr = images.center_crop(images.load_image(set5_dir / row["name"]), 96)
        sr = resize.imresize(resize.imresize(hr, 1 / 4), 4)
        y_hr, y_sr = images.rgb_to_y(hr)[4:-4, 4:-4], images.rgb_to_y(sr)[4:-4, 4:-4]
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-9)
    assert res.psnr == pytest.approx(np.mean([r["psnr"] for r in res.per_image]))
    assert res.ssim == pytest.approx(np.mean([r["ssim"] for r in res.per_image]))


def test_result_holds_one_value_per_registry_metric(set5_dir):
    res = evaluate.evaluate_images(set5_dir, 2, "paper", limit=1, max_side=48)
    assert list(res.values) == list(metrics.METRICS) == ["psnr", "ssim", "texture", "artifact"]
    assert set(res.per_image[0]) == {"name", "mse", *metrics.METRICS}
    assert (res.psnr, res.ssim) == (res.values["psnr"], res.values["ssim"])  # attributes read the registry's values
    with pytest.raises(AttributeError, match="lpips"):
        res.lpips  # noqa: B018 (not a metric of the registry)
    d = res.to_dict()  # the JSON of `srgan evaluate --json`: the metrics at the top level, no "values"
    assert list(d)[:4] == list(metrics.METRICS) and "values" not in d


def test_paper_result_is_the_psnr_of_the_mean_mse(set5_dir):
    res = evaluate.evaluate_images(set5_dir, 2, "paper", limit=3, max_side=80)
    assert res.resize_method == "pil"
    mses = []
    for path in images.list_images(set5_dir)[:3]:
        hr = protocols.paper_crop(images.center_crop(images.load_image(path), 80), 2)
        pil = Image.fromarray(hr)
        lr = pil.resize((hr.shape[1] // 2, hr.shape[0] // 2), Image.BICUBIC)
        sr = np.asarray(lr.resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))
        mses.append(mean_squared_error(hr / 255.0, sr / 255.0))
    np.testing.assert_allclose([r["mse"] for r in res.per_image], mses, rtol=1e-10)
    assert res.psnr == pytest.approx(10 * math.log10(1.0 / np.mean(mses)), abs=1e-9)


def test_single_channel_file_is_scored_on_its_intensities(set14_dir):
    # bridge.png is stored single-channel (mode L); man.png is RGB with equal channels
    bridge = evaluate.evaluate_images(set14_dir / "bridge.png", 2).per_image[0]
    hr = images.mod_crop(images.load_image(set14_dir / "bridge.png"), 2)
    sr = resize.imresize(resize.imresize(hr, 1 / 2), 2)
    expected = peak_signal_noise_ratio(hr[2:-2, 2:-2, 0], sr[2:-2, 2:-2, 0], data_range=255)
    assert bridge["psnr"] == pytest.approx(expected, abs=1e-9)
    man = evaluate.evaluate_images([set14_dir / "man.png"], 2).per_image[0]
    hr = images.mod_crop(images.load_image(set14_dir / "man.png"), 2)
    sr = resize.imresize(resize.imresize(hr, 1 / 2), 2)
    y = peak_signal_noise_ratio(images.rgb_to_y(hr)[2:-2, 2:-2], images.rgb_to_y(sr)[2:-2, 2:-2], data_range=255)
    assert man["psnr"] == pytest.approx(y, abs=1e-9)


def test_upscale_fn_is_used_and_checked(set5_dir):
    bicubic = evaluate.evaluate_images(set5_dir, 2, limit=1, max_side=64)
    # a float bicubic "model": the same as the baseline up to rounding to uint8
    model = evaluate.evaluate_images(set5_dir, 2, upscale_fn=lambda lr: resize.imresize(lr, 2).clamp(0, 1),
                                     limit=1, max_side=64)
    assert abs(model.psnr - bicubic.psnr) < 0.05
    with pytest.raises(ConfigError, match="scale"):
        evaluate.evaluate_images(set5_dir, 2, upscale_fn=lambda lr: resize.imresize(lr, 4), limit=1, max_side=64)


@pytest.mark.equality
def test_methods_scored_together_equal_each_scored_alone(set5_dir, monkeypatch):
    def nearest(lr):  # a stand-in "model" with its own output
        up = torch.nn.functional.interpolate(lr, scale_factor=2, mode="nearest")
        return (up * 1.02).clamp(0, 1)

    methods = {"bicubic": None, "nearest": nearest}
    decoded = []
    real_load = evaluate.load_image
    monkeypatch.setattr(evaluate, "load_image", lambda p: decoded.append(p) or real_load(p))
    together = evaluate.evaluate_methods(set5_dir, 2, methods, limit=3, max_side=64)
    assert len(decoded) == 3  # each image decoded once for 2 methods x 2 protocols
    assert set(together) == {(m, p) for m in methods for p in protocols.PROTOCOLS}
    for (name, protocol), res in together.items():
        # each method and protocol scored alone from the building blocks, without the shared loop: a fresh
        # decode, pair and reference per image (the same float64 arithmetic, so equal to the last bit)
        rows = []
        for path in images.list_images(set5_dir)[:3]:
            hr, lr = protocols.make_pair(images.center_crop(images.load_image(path), 64), 2, protocol)
            method = protocols.PROTOCOL_RESIZE[protocol]
            sr = (resize.imresize(lr, size=hr.shape[:2], method=method) if methods[name] is None
                  else methods[name](images.to_tensor(lr)))
            rows.append({"name": path.name, **protocols.score_image(sr, hr, 2, protocol)})
        assert res.per_image == rows
        assert res.values == protocols.aggregate(rows, protocol, 2)
    assert together[("bicubic", "standard")].psnr != together[("nearest", "standard")].psnr


def test_identical_images_give_inf_psnr_and_valid_json(tmp_path):
    Image.fromarray(np.full((24, 20, 3), 90, np.uint8)).save(tmp_path / "flat.png")
    res = evaluate.evaluate_images(tmp_path, 2)
    assert res.psnr == math.inf and res.ssim == pytest.approx(1.0)
    d = res.to_dict()
    assert d["psnr"] is None and d["per_image"][0]["psnr"] is None
    json.dumps(d, allow_nan=False)


def test_bad_folders_raise_user_errors(tmp_path):
    with pytest.raises(DataError):
        evaluate.evaluate_images(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageReadError, match="broken.png"):
        evaluate.evaluate_images(tmp_path, 2)
    with pytest.raises(ConfigError):
        evaluate.evaluate_images(tmp_path, 2, protocol="matlab")


def test_bicubic_tables_show_ours_beside_the_paper(set5_dir, tmp_path):
    results = evaluate.score_bicubic(set5_dir, limit=2, max_side=64)
    assert sorted(results) == [(2, "paper"), (2, "standard"), (4, "paper"), (4, "standard")]
    written = tables.write_bicubic_tables(results, "smoke", "Set5", out_dir=tmp_path)
    assert sorted(p.name for pair in written.values() for p in pair) == [
        "table1_x2_bicubic.csv", "table1_x2_bicubic.md", "table2_x4_bicubic.csv", "table2_x4_bicubic.md"]
    md = written[2][0].read_text()
    assert "28.3654" in md and "0.8877" in md and "`standard`" in md and "`paper`" in md
    assert "24.5025" in written[4][0].read_text()
    with open(written[4][1], newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["row"] == "Bicubic"]
    assert {r["protocol"] for r in rows} == {"standard", "paper"}
    for r in rows:
        ours = evaluate.evaluate_images(set5_dir, 4, r["protocol"], limit=2, max_side=64)
        # the CSV keeps 6 decimals: equal to the rounding of the value it was written from
        assert float(r["ours_psnr"]) == pytest.approx(ours.psnr, abs=5e-7)
        assert float(r["paper_psnr"]) == 24.5025
    assert "ours − paper" not in md  # Set5 is not the paper's data: absolute values are not compared


# ----------------------------------------------------------------------------- CLI


def test_cli_prints_psnr_and_ssim(set5_dir, capsys):
    assert cli.main(["evaluate", "--bicubic", "--data", str(set5_dir), "--scale", "4", "--limit", "1",
                     "--max-side", "64"]) == 0
    out = capsys.readouterr().out
    ours = evaluate.evaluate_images(set5_dir, 4, limit=1, max_side=64)
    assert f"PSNR {ours.psnr:.4f} dB" in out and f"SSIM {ours.ssim:.4f}" in out


def test_cli_json(set5_dir, capsys):
    assert cli.main(["evaluate", "--bicubic", "--data", str(set5_dir), "--scale", "2", "--protocol", "paper",
                     "--limit", "2", "--max-side", "64", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"psnr", "ssim", "protocol", "scale", "count", "per_image"} <= set(d)
    assert (d["protocol"], d["scale"], d["count"]) == ("paper", 2, 2)
    ours = evaluate.evaluate_images(set5_dir, 2, "paper", limit=2, max_side=64)
    assert d["psnr"] == pytest.approx(ours.psnr) and d["per_image"][1]["name"] == "bird.png"


def test_cli_resize_option(set5_dir, capsys):
    assert cli.main(["evaluate", "--bicubic", "--data", str(set5_dir), "--scale", "2", "--resize", "torch",
                     "--limit", "1", "--max-side", "64", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["resize_method"] == "torch"
    assert d["psnr"] == pytest.approx(evaluate.evaluate_images(set5_dir, 2, resize_method="torch", limit=1,
                                                               max_side=64).psnr)


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["evaluate", "--bicubic", "--data", str(tmp_path), "--scale", "2"]) == 2
    assert cli.main(["evaluate", "--bicubic", "--data", str(tmp_path / "missing"), "--scale", "2"]) == 2
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert cli.main(["evaluate", "--bicubic", "--data", str(tmp_path), "--scale", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "broken.jpg" in err[2]
    with pytest.raises(SystemExit) as exc:  # argparse: --bicubic and --checkpoint exclude each other
        cli.main(["evaluate", "--bicubic", "--checkpoint", "x.pt", "--data", str(tmp_path)])
    assert exc.value.code == 2


def test_cli_checkpoint(set5_dir, tmp_path, capsys):
    from srgan_lib import checkpoint, config, models, upscale
    from srgan_lib.checkpoint import save_generator

    cfg = config.get_profile("smoke").config(scale=2, crop_size=88)
    torch.manual_seed(0)
    net = models.Generator(scale=2, num_feat=cfg.num_feat, num_block=cfg.num_block, upsample_skip=cfg.upsample_skip)
    path = save_generator(tmp_path / "generator.pt", net, cfg, step=3)
    assert cli.main(["evaluate", "--checkpoint", str(path), "--data", str(set5_dir), "--limit", "1",
                     "--max-side", "48", "--device", "cpu", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    generator, _ = checkpoint.load_generator(path)
    ours = evaluate.evaluate_images(set5_dir, 2, upscale_fn=lambda lr: upscale.upscale(generator, lr),
                                    limit=1, max_side=48)
    assert d["scale"] == 2 and d["psnr"] == pytest.approx(ours.psnr, abs=1e-6)
    assert cli.main(["evaluate", "--checkpoint", str(path), "--data", str(set5_dir), "--scale", "4"]) == 2
    assert "does not match" in capsys.readouterr().err
