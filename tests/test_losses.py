"""Losses, eqs. (4)-(8), each against an independent computation."""

from __future__ import annotations

import math
from urllib.error import URLError

import pytest
import torch
import torchvision

from srgan_lib import losses, models
from srgan_lib.errors import ConfigError, DownloadError, UserError

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def tv_vgg19():
    """torchvision's VGG19 with seeded random weights (built once: its 120M-parameter init is slow)."""
    torch.manual_seed(0)
    return torchvision.models.vgg19(weights=None).eval()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch hub cache and no network: the download raises URLError."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls = []

    def fail(url, dst, *args, **kwargs):
        calls.append(url)
        raise URLError("[Errno -2] Name or service not known (simulated)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    return calls


# --- eq. (4) -----------------------------------------------------------------

def test_pixel_loss_hand_computed():
    sr = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
    hr = torch.zeros_like(sr)
    # (0 + 0.25 + 1 + 0.0625) / 4 = 0.328125
    assert losses.pixel_loss(sr, hr).item() == pytest.approx(0.328125)


# --- eq. (6) -----------------------------------------------------------------

def test_adversarial_loss_is_minus_log_d():
    logits = torch.tensor([-3.0, 0.0, 2.5])
    expected = -torch.log(torch.sigmoid(logits)).mean()
    torch.testing.assert_close(losses.adversarial_loss(logits), expected)
    assert losses.adversarial_loss(torch.tensor([0.0])).item() == pytest.approx(math.log(2))


def test_adversarial_loss_is_finite_where_the_log_form_overflows():
    logits = torch.tensor([-200.0])
    assert torch.isinf(-torch.log(torch.sigmoid(logits))).item()  # the naive form
    assert losses.adversarial_loss(logits).item() == pytest.approx(200.0)


# --- eq. (7) -----------------------------------------------------------------

def test_tv_hand_computed():
    img = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])
    # vertical differences 2, 1, -1 -> squares 4, 1, 1 -> mean 2
    # horizontal differences 1, 2 | 0, 0 -> squares 1, 4, 0, 0 -> mean 1.25
    assert losses.tv_loss(img).item() == pytest.approx(3.25)


def test_tv_of_constant_image_is_zero():
    assert losses.tv_loss(torch.full((2, 3, 7, 5), 0.3)).item() == 0.0


def test_tv_gradient_matches_finite_differences():
    img = torch.rand(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(losses.tv_loss, (img,))


def test_tv_rejects_single_row():
    with pytest.raises(ConfigError):
        losses.tv_loss(torch.rand(1, 3, 1, 5))


# --- eq. (8) -----------------------------------------------------------------

def test_discriminator_loss_equals_log_form():
    real = torch.tensor([1.5, -0.5, 3.0])
    fake = torch.tensor([-2.0, 0.7, 0.0])
    out = losses.discriminator_loss(real, fake)
    torch.testing.assert_close(out["d_real"], -torch.log(torch.sigmoid(real)).mean())
    torch.testing.assert_close(out["d_fake"], -torch.log(1 - torch.sigmoid(fake)).mean())
    torch.testing.assert_close(out["d_total"], out["d_real"] + out["d_fake"])
    # an undecided D (logit 0, D = 0.5) pays log 2 on each side
    zero = losses.discriminator_loss(torch.zeros(4), torch.zeros(4))
    assert zero["d_total"].item() == pytest.approx(2 * math.log(2))


# --- eq. (5): VGG19 ------------------------------------------------------------

def test_layer_indices_follow_torchvision(tv_vgg19):
    assert losses.vgg19_layer_index("conv2_2") == 8
    assert losses.vgg19_layer_index("conv5_4") == 35
    assert len(losses.vgg19_layer_names()) == 16
    for name in losses.vgg19_layer_names():
        i, j = (int(c) for c in name[4:].split("_"))
        idx = losses.vgg19_layer_index(name)
        head = tv_vgg19.features[: idx + 1]
        assert isinstance(head[-1], torch.nn.ReLU) and isinstance(head[-2], torch.nn.Conv2d)
        assert sum(isinstance(m, torch.nn.MaxPool2d) for m in head) == i - 1
        convs_in_block = sum(isinstance(m, torch.nn.Conv2d) for m in tv_vgg19.features[: idx + 1]) - \
            sum((2, 2, 4, 4, 4)[: i - 1])
        assert convs_in_block == j


def test_url_is_torchvisions():
    assert losses.VGG19_URL == torchvision.models.VGG19_Weights.IMAGENET1K_V1.url


@pytest.mark.equality
@pytest.mark.parametrize("layer", ["conv2_2", "conv5_4"])
def test_extractor_matches_torchvision_features(tv_vgg19, layer):
    ours = losses.VGGFeatureExtractor(layer, weights="random")
    idx = losses.vgg19_layer_index(layer)
    state = {k: v for k, v in tv_vgg19.state_dict().items()
             if k.startswith("features.") and int(k.split(".")[1]) <= idx}
    ours.load_state_dict(state)
    assert len(ours.features) == idx + 1  # built only up to the chosen layer
    img = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = tv_vgg19.features[: idx + 1]((img - MEAN) / STD)
        torch.testing.assert_close(ours(img), expected)


def test_random_weights_are_seeded_and_frozen():
    a = losses.VGGFeatureExtractor("conv2_2", weights="random")
    b = losses.VGGFeatureExtractor("conv2_2", weights="random")
    assert a.weights_used == "random"
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb) and not pa.requires_grad
    a.train()
    assert not a.training


def test_unknown_layer_is_a_user_error():
    with pytest.raises(ConfigError, match="conv5_4"):
        losses.VGGFeatureExtractor("conv6_1", weights="random")


def test_weights_placed_in_the_hub_cache_are_loaded(tv_vgg19, offline, tmp_path):
    path = losses.vgg19_weights_path()
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    path.parent.mkdir(parents=True)
    torch.save(tv_vgg19.state_dict(), path)
    ext = losses.VGGFeatureExtractor("conv2_2", weights="imagenet")
    assert ext.weights_used == "imagenet"
    assert offline == []  # found in the cache: no download tried
    torch.testing.assert_close(ext.features[7].weight, tv_vgg19.features[7].weight)


def test_failed_download_stops_the_paper_profile(offline):
    with pytest.raises(DownloadError) as info:
        losses.VGGFeatureExtractor("conv2_2", weights="imagenet")
    msg = str(info.value)
    assert str(losses.vgg19_weights_path()) in msg and losses.VGG19_URL in msg
    assert isinstance(info.value, UserError)
    assert offline == [losses.VGG19_URL]


def test_failed_download_warns_and_falls_back_in_auto(offline, capsys):
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        loss = losses.GeneratorLoss(vgg_layer="conv1_2", vgg_weights="auto")
    assert loss.vgg.weights_used == "random" and loss.vgg_weights_used == "random"
    assert "RANDOM VGG19 weights" in capsys.readouterr().err


# --- eqs. (1)-(3): the composite loss -----------------------------------------

@pytest.fixture(scope="module")
def small_loss():
    return losses.GeneratorLoss(pixel_weight=1.0, content_weight=0.006, adv_weight=1e-3, tv_weight=0.5,
                                vgg_layer="conv1_2", vgg_weights="random")


@pytest.mark.equality
def test_generator_loss_terms_and_total(small_loss, tv_vgg19):
    torch.manual_seed(1)
    sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    logits = torch.tensor([0.3, -1.2])
    out = small_loss(sr, hr, logits)
    assert set(out) == {"g_pixel", "g_content", "g_adv", "g_tv", "g_total"}
    # independent reference: torchvision's layers with the same weights
    ref = tv_vgg19.features[:4]
    ref.load_state_dict(small_loss.vgg.features.state_dict())
    with torch.no_grad():
        content = ((ref((sr - MEAN) / STD) - ref((hr - MEAN) / STD)) ** 2).mean()
    pixel = ((sr - hr) ** 2).mean()
    adv = -torch.log(torch.sigmoid(logits)).mean()
    tv = ((sr[:, :, 1:] - sr[:, :, :-1]) ** 2).mean() + ((sr[..., 1:] - sr[..., :-1]) ** 2).mean()
    for key, value in [("g_pixel", pixel), ("g_content", content), ("g_adv", adv), ("g_tv", tv)]:
        torch.testing.assert_close(out[key], value)
    torch.testing.assert_close(out["g_total"], pixel + 0.006 * content + 1e-3 * adv + 0.5 * tv)


def test_no_logits_means_no_adversarial_term(small_loss):
    sr = torch.rand(1, 3, 8, 8)
    assert small_loss(sr, sr)["g_adv"].item() == 0.0
    assert small_loss(sr, sr)["g_pixel"].item() == 0.0


def test_content_weight_zero_builds_no_vgg():
    loss = losses.GeneratorLoss(content_weight=0.0, vgg_weights="imagenet")  # no VGG built, so no file or download needed
    assert loss.vgg is None and loss.vgg_weights_used is None
    assert loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))["g_content"].item() == 0.0


def test_discriminator_gets_no_gradient_in_the_generator_step(small_loss):
    torch.manual_seed(0)
    gen = models.Generator(scale=2, num_feat=4, num_block=1)
    disc = models.Discriminator(num_feat=2, fc_feat=4)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    with models.frozen(disc):
        sr = gen(lr)
        out = small_loss(sr, hr, disc(sr))
        out["g_total"].backward()
    assert all(p.grad is None for p in disc.parameters())
    assert all(p.requires_grad for p in disc.parameters())  # restored
    g_with_adv = [p.grad.clone() for p in gen.parameters()]
    assert all(g.abs().sum() > 0 for g in g_with_adv)
    # the adversarial term does reach G through D
    gen.zero_grad()
    sr = gen(lr)
    small_loss(sr, hr)["g_total"].backward()
    assert any(not torch.allclose(a, p.grad) for a, p in zip(g_with_adv, gen.parameters()))


def test_discriminator_step_gives_generator_no_gradient():
    torch.manual_seed(0)
    gen = models.Generator(scale=2, num_feat=4, num_block=1)
    disc = models.Discriminator(num_feat=2, fc_feat=4)
    sr = gen(torch.rand(2, 3, 8, 8))
    out = losses.discriminator_loss(disc(torch.rand(2, 3, 16, 16)), disc(sr.detach()))
    out["d_total"].backward()
    assert all(p.grad is None for p in gen.parameters())
    assert all(p.grad is not None for p in disc.parameters())
