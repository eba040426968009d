"""Tiled inference equals untiled inference; the receptive-field radius; ``upscale_files``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan_lib import models, upscale
from srgan_lib.errors import CheckpointError, ConfigError, DataError


def _generator(scale=4, num_block=2, skip="none", seed=0):
    torch.manual_seed(seed)
    g = models.Generator(scale=scale, num_feat=8, num_block=num_block, upsample_skip=skip)
    # Non-trivial BN statistics and a non-zero tail, so that every layer matters.
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    torch.nn.init.normal_(g.tail.weight, std=0.05)
    return g.eval()


def _image(h, w, seed=1):
    gen = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=gen), size=(h, w),
                                             mode="bilinear", align_corners=False)
    return (0.8 * smooth + 0.2 * torch.rand(1, 3, h, w, generator=gen)).clamp(0, 1)


@pytest.mark.equality
@pytest.mark.parametrize("scale,skip,side", [(4, "none", 128), (2, "bicubic", 256)])
def test_tiled_equals_untiled(scale, skip, side):
    # float64: a tile and the whole image run convolutions of different sizes, whose float32 kernels
    # sum in different orders (~1e-6 on outputs in [0, 1], CPU-dependent); in float64 that is ~1e-15,
    # so 1e-10 is far above rounding on any CPU and far below a seam (> 1e-3, checked below)
    g = _generator(scale=scale, skip=skip).double()
    lr = _image(side, side).double()
    full = upscale.upscale(g, lr, tile=None)
    tiled = upscale.upscale(g, lr, tile=48)  # 48 divides neither 128 nor 256: ragged last tiles too
    assert tiled.shape == full.shape == (1, 3, side * scale, side * scale) and tiled.dtype == torch.float64
    assert (tiled - full).abs().max().item() <= 1e-10
    # the check can fail: without the margin the seams differ
    seams = upscale.upscale(g, lr, tile=48, tile_overlap=0)
    assert (seams - full).abs().max().item() > 1e-3


def test_receptive_radius_by_hand():
    # 4 (9x9 head) + 2*16 (blocks) + 1 (body tail) + 1 + 1/2 (sub-pixel convs) + 4/4 (9x9 tail at x4) = 39.5
    assert upscale.receptive_radius(models.Generator(scale=4)) == 40
    # x2: 4 + 32 + 1 + 1 + 4/2 = 40
    assert upscale.receptive_radius(models.Generator(scale=2)) == 40
    # one block, x4: 4 + 2 + 1 + 1 + 0.5 + 1 = 9.5
    assert upscale.receptive_radius(models.Generator(scale=4, num_feat=8, num_block=1)) == 10


def test_receptive_radius_bounds_the_measured_influence():
    """Perturb one LR pixel: the output changes only within the computed radius."""
    g = _generator(scale=4, num_block=1)
    lr = _image(48, 48)
    poked = lr.clone()
    poked[0, :, 24, 24] = 1.0 - poked[0, :, 24, 24]
    with torch.no_grad():
        diff = (g(poked) - g(lr)).abs().sum(dim=(0, 1))
    rows = torch.nonzero(diff.sum(dim=1) > 0).flatten()
    # LR pixel 24 covers HR rows 96..99; the influence reaches this far in LR pixels:
    reach = max(96 - rows.min().item(), rows.max().item() - 99) / 4
    radius = upscale.receptive_radius(g)
    assert radius - 1 < reach <= radius


def test_upscale_restores_training_mode():
    g = _generator().train()
    upscale.upscale(g, _image(16, 16), tile=8)
    assert g.training


def test_bad_tile_is_config_error():
    with pytest.raises(ConfigError, match="tile"):
        upscale.upscale(_generator(), _image(16, 16), tile=0)


@pytest.fixture
def generator_file(tmp_path):
    from srgan_lib import config
    from srgan_lib.checkpoint import save_generator

    cfg = config.TrainConfig(profile="smoke", scale=4, crop_size=24, num_feat=8, num_block=2)
    g = _generator(scale=4, num_block=2)
    return save_generator(tmp_path / "generator.pt", g, cfg, step=0), g


def test_upscale_files_matches_library_calls(tmp_path, generator_file):
    from srgan_lib import images, resize

    path, g = generator_file
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    src = images.save_image(img, tmp_path / "in" / "a.png")
    out = upscale.upscale_files([src.parent], path, tmp_path / "out", tile=8)
    assert [p.name for p in out] == ["a_srgan_x4.png"]
    expected = images.to_uint8(g(images.to_tensor(img)).detach())[0]
    got = images.load_image(out[0])
    assert got.shape == (80, 112, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # rounding of float noise only
    bic = upscale.upscale_files([src], None, tmp_path / "out", bicubic=True, scale=2)
    np.testing.assert_array_equal(images.load_image(bic[0]), resize.imresize(img, scale=2, method="matlab"))


def test_upscale_files_user_errors(tmp_path, generator_file):
    path, _ = generator_file
    with pytest.raises(DataError, match="nope.png"):
        upscale.upscale_files([tmp_path / "nope.png"], path, tmp_path / "out")
    from srgan_lib import images

    src = images.save_image(np.zeros((8, 8, 3), np.uint8), tmp_path / "a.png")
    with pytest.raises(CheckpointError, match="x4 model, not x2"):
        upscale.upscale_files([src], path, tmp_path / "out", scale=2)
    with pytest.raises(CheckpointError, match="missing.pt"):
        upscale.upscale_files([src], tmp_path / "missing.pt", tmp_path / "out")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write"):
        upscale.upscale_files([src], path, blocker / "sub")
