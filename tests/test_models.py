"""Generator and discriminator: shapes for every scale and crop, parameter counts by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srgan_lib import config, models
from srgan_lib.errors import ConfigError

SCALES = (2, 4, 8)
CROPS = (88, 128, 168)


def _conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out  # weights + bias


def _generator_params_by_hand(scale, f, b):
    head = _conv(3, f, 9) + 1  # 9x9 conv + PReLU (one slope)
    block = 2 * _conv(f, f, 3) + 2 * 2 * f + 1  # two convs, two BNs (gamma, beta), one PReLU
    body_tail = _conv(f, f, 3) + 2 * f
    up = {2: 1, 4: 2, 8: 3}[scale] * (_conv(f, 4 * f, 3) + 1)
    tail = _conv(f, 3, 9)
    return head + b * block + body_tail + up + tail


def _discriminator_params_by_hand(f, fc, pool=6):
    convs = _conv(3, f, 3)
    for c_in, c_out in [(f, f), (f, 2 * f), (2 * f, 2 * f), (2 * f, 4 * f), (4 * f, 4 * f), (4 * f, 8 * f),
                        (8 * f, 8 * f)]:
        convs += _conv(c_in, c_out, 3) + 2 * c_out  # conv + BN
    dense = (8 * f * pool * pool) * fc + fc + fc * 1 + 1
    return convs + dense


def test_generator_paper_size_parameter_count():
    # SRResNet x4, 64 features, 16 blocks, written out:
    #   head 9x9 conv 3->64: 3*64*81 + 64 = 15,616; PReLU 1                     ->    15,617
    #   residual block: 2 x (64*64*9 + 64) = 73,856; 2 BN x 128 = 256; PReLU 1 ->    74,113
    #   16 blocks: 16 x 74,113                                                   -> 1,185,808
    #   conv3x3 + BN after the blocks: 36,928 + 128                              ->    37,056
    #   2 upsample blocks: 2 x (64*256*9 + 256 + 1) = 2 x 147,713               ->   295,426
    #   tail 9x9 conv 64->3: 64*3*81 + 3                                         ->    15,555
    #   total: 15,617 + 1,185,808 + 37,056 + 295,426 + 15,555                    = 1,549,462
    net = models.Generator(scale=4, num_feat=64, num_block=16)
    assert models.count_parameters(net) == 1_549_462


def test_discriminator_paper_size_parameter_count():
    # conv 3->64: 1,728 + 64 = 1,792
    # 7 blocks conv + BN: 64->64: 36,864+64+128 = 37,056;  64->128: 73,728+128+256 = 74,112;
    #   128->128: 147,456+128+256 = 147,840; 128->256: 294,912+256+512 = 295,680;
    #   256->256: 589,824+256+512 = 590,592; 256->512: 1,179,648+512+1,024 = 1,181,184;
    #   512->512: 2,359,296+512+1,024 = 2,360,832                         -> convs 4,689,088
    # dense 512*6*6 = 18,432 -> 1024: 18,874,368 + 1,024 = 18,875,392; dense 1024 -> 1: 1,025
    # total: 4,689,088 + 18,875,392 + 1,025 = 23,565,505 (Ledig's D at crops 88/96)
    net = models.Discriminator(num_feat=64, fc_feat=1024)
    assert models.count_parameters(net) == 23_565_505
    assert models.count_parameters(models.Discriminator(pool_size=1)) == 4_689_088 + 512 * 1024 + 1024 + 1025


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("f,b", [(8, 1), (12, 2)])
def test_generator_tiny_parameter_counts(scale, f, b):
    assert models.count_parameters(models.Generator(scale, f, b)) == _generator_params_by_hand(scale, f, b)


@pytest.mark.parametrize("f,fc", [(4, 16), (8, 32)])
def test_discriminator_tiny_parameter_counts(f, fc):
    assert models.count_parameters(models.Discriminator(f, fc)) == _discriminator_params_by_hand(f, fc)


@pytest.mark.parametrize("skip", config.UPSAMPLE_SKIPS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("crop", CROPS)
def test_generator_shapes_and_range(scale, crop, skip):
    if crop % scale:
        pytest.skip("crop not divisible by scale")
    torch.manual_seed(0)
    net = models.Generator(scale=scale, num_feat=4, num_block=1, upsample_skip=skip)
    lr = torch.rand(2, 3, crop // scale, crop // scale)
    sr = net(lr)
    assert sr.shape == (2, 3, crop, crop)
    assert sr.min() >= 0 and sr.max() <= 1
    net.eval()
    with torch.no_grad():
        assert net(lr).shape == (2, 3, crop, crop)


@pytest.mark.parametrize("crop", CROPS + (96, 40))
def test_discriminator_returns_logits_of_shape_n(crop):
    torch.manual_seed(0)
    net = models.Discriminator(num_feat=4, fc_feat=8)
    logits = net(torch.rand(3, 3, crop, crop))
    assert logits.shape == (3,)
    # logits are unbounded: not squashed by a sigmoid inside
    assert logits.dtype == torch.float32


def test_discriminator_feature_map_side_is_ceil_crop_over_16():
    # why pool to 6: crops 88 and 96 give 6 x 6 (Ledig's flatten), 128 -> 8, 168 -> 11
    net = models.Discriminator(num_feat=4, fc_feat=8)
    for crop, side in [(88, 6), (96, 6), (128, 8), (168, 11)]:
        assert net.features(torch.rand(1, 3, crop, crop)).shape[-1] == side


def test_discriminator_at_88_equals_a_fixed_flatten():
    # At a 6 x 6 map the adaptive pool is the identity: the network is Ledig's flatten + dense.
    torch.manual_seed(0)
    net = models.Discriminator(num_feat=4, fc_feat=8).eval()
    x = torch.rand(2, 3, 88, 88)
    with torch.no_grad():
        direct = net.classifier(net.features(x)).squeeze(1)
        torch.testing.assert_close(net(x), direct)


def test_bicubic_skip_starts_as_torch_bicubic():
    torch.manual_seed(0)
    net = models.Generator(scale=4, num_feat=8, num_block=1, upsample_skip="bicubic")
    lr = torch.rand(1, 3, 10, 12)
    expected = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(net(lr), expected)


def test_clamp_passes_gradient_to_pixels_outside_range():
    x = torch.tensor([-0.5, 0.3, 1.7], requires_grad=True)
    y = models._clamp_straight_through(x)
    assert y.tolist() == [0.0, pytest.approx(0.3), 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_generator_learns_every_layer_from_the_first_step():
    torch.manual_seed(0)
    net = models.Generator(scale=2, num_feat=4, num_block=1)
    F.mse_loss(net(torch.rand(2, 3, 8, 8)), torch.rand(2, 3, 16, 16)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_pixel_shuffle_block_places_channels_in_2x2_blocks():
    block = models.UpsampleBlock(num_feat=1)
    x = torch.arange(4.0).view(1, 4, 1, 1)  # four channels of one pixel
    # PixelShuffle puts channel 2*i + j at offset (i, j) of the 2 x 2 block
    assert block.shuffle(x).view(2, 2).tolist() == [[0.0, 1.0], [2.0, 3.0]]


def test_frozen_restores_requires_grad():
    net = models.Discriminator(num_feat=2, fc_feat=4)
    next(net.parameters()).requires_grad_(False)
    before = [p.requires_grad for p in net.parameters()]
    with models.frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == before


@pytest.mark.parametrize("kwargs", [dict(scale=3), dict(upsample_skip="nearest"), dict(num_feat=0)])
def test_generator_rejects_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        models.Generator(**kwargs)


def _phases(out, r):
    """The r x r sub-pixel phases of ``out`` (N x C x rH x rW), each N x C x H x W."""
    return [out[..., i::r, j::r] for i in range(r) for j in range(r)]


@pytest.mark.parametrize("factor", [2, 3])
def test_icnr_sub_pixel_conv_has_no_checkerboard_on_a_constant_input(factor):
    # Aitken et al. 2017: with one kernel and bias per feature shared by all factor**2 phases, a constant
    # input gives identical phases (conv + nearest-neighbour upsampling). Default init must NOT (the bug
    # ICNR removes), or the check proves nothing. Tolerance: the phases are computed by the same kernel on
    # the same input, in float64, so they agree to rounding of a 4*9-term sum (~1e-15), far below 1e-12.
    torch.manual_seed(0)
    with torch.no_grad():
        x = torch.full((1, 4, 6, 7), 0.7, dtype=torch.float64)
        shuffle = torch.nn.PixelShuffle(factor)
        conv = torch.nn.Conv2d(4, 4 * factor**2, 3, padding=1).double()
        plain = _phases(shuffle(conv(x)), factor)
        assert max((p - plain[0]).abs().max().item() for p in plain) > 1e-3  # default init: a checkerboard
        models.icnr_(conv, factor)
        out = shuffle(conv(x))
        for p in _phases(out, factor):
            torch.testing.assert_close(p, _phases(out, factor)[0], rtol=0, atol=1e-12)
        # and the same holds for a random input: the block is conv + nearest-neighbour upsampling
        y = torch.rand(1, 4, 6, 7, dtype=torch.float64)
        out = shuffle(conv(y))
        torch.testing.assert_close(out, F.interpolate(out[..., ::factor, ::factor], scale_factor=factor,
                                                      mode="nearest"), rtol=0, atol=1e-12)


def test_generator_icnr_flag_initialises_every_upsample_block():
    torch.manual_seed(0)
    g = models.Generator(4, num_feat=8, num_block=1, icnr=True)
    x = torch.full((1, 8, 5, 5), 0.3)
    for block in g.upsample:
        out = block(x)
        for p in _phases(out, 2):
            torch.testing.assert_close(p, out[..., ::2, ::2], rtol=0, atol=1e-6)  # float32 rounding of 72 terms
        x = out
    default = models.Generator(4, num_feat=8, num_block=1).upsample[0].conv.weight
    assert not default[0].equal(default[1])  # without the flag, torch's default init as before
    with pytest.raises(ConfigError, match="divisible"):
        models.icnr_(torch.nn.Conv2d(4, 6, 3), 2)
