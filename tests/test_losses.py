"""Losses, eqs. (4)-(8), each against an independent computation, and the registry of terms.

The VGG19 network and its weights are tested in ``test_vgg.py``.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torchvision

from srgan_lib import config, losses, models, runlog
from srgan_lib.errors import ConfigError

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


PAPER_WEIGHTS = {"g_pixel": 1.0, "g_content": 0.006, "g_adv": 1e-3, "g_tv": 4e-8}  # eqs. (1)-(3), (7) with the reference code's weights


@pytest.fixture(scope="module")
def tv_vgg19():
    """torchvision's VGG19 with seeded random weights (built once: its 144M-parameter init is slow)."""
    torch.manual_seed(0)
    return torchvision.models.vgg19(weights=None).eval()


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


# --- eqs. (1)-(3): the composite loss -----------------------------------------

@pytest.fixture(scope="module")
def small_loss():
    return losses.GeneratorLoss({"g_pixel": 1.0, "g_content": 0.006, "g_adv": 1e-3, "g_tv": 0.5},
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


def test_total_is_summed_in_the_order_of_the_terms(small_loss):
    """pixel + content + adv + tv, left to right, as before the registry: the same float32 bits.

    Weights make the pixel term 1 and the others 4e-8 each, under half of float32's
    spacing at 1 (1.19e-7): added one by one to 1 each rounds away, added together
    first they do not, so another order gives another total.
    """
    torch.manual_seed(2)
    sr, hr, logits = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.tensor([0.3, -1.2])
    terms = {k: v.item() for k, v in small_loss(sr, hr, logits).items()}
    weights = {"g_pixel": 1 / terms["g_pixel"], **{k: 4e-8 / terms[k] for k in ("g_content", "g_adv", "g_tv")}}
    loss = losses.GeneratorLoss(weights, vgg_layer="conv1_2", vgg_weights="random")
    out = loss(sr, hr, logits)
    w = {k: weights[k] * out[k] for k in weights}
    in_order = ((w["g_pixel"] + w["g_content"]) + w["g_adv"]) + w["g_tv"]
    assert not torch.equal(in_order, w["g_pixel"] + (w["g_content"] + (w["g_adv"] + w["g_tv"])))
    assert torch.equal(out["g_total"], in_order)


def test_no_logits_means_no_adversarial_term(small_loss):
    sr = torch.rand(1, 3, 8, 8)
    assert small_loss(sr, sr)["g_adv"].item() == 0.0
    assert small_loss(sr, sr)["g_pixel"].item() == 0.0


def test_content_weight_zero_builds_no_vgg():
    # no VGG built, so no file or download needed
    loss = losses.GeneratorLoss({**PAPER_WEIGHTS, "g_content": 0.0}, vgg_weights="imagenet")
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


# --- the registry: TERMS, the config's weights, the logged columns -------------

def test_terms_name_fields_of_the_config():
    fields = {f.name for f in dataclasses.fields(config.TrainConfig)}
    assert list(losses.TERMS) == ["g_pixel", "g_content", "g_adv", "g_tv"]
    for key, term in losses.TERMS.items():
        assert term.weight_field in fields, key
        assert set(term.inputs) <= {"sr", "hr", "fake_logits", "vgg"}, key


def test_weights_from_the_config_by_keyword():
    paper = config.get_profile("paper").base
    assert losses.config_weights(paper) == PAPER_WEIGHTS
    cfg = dataclasses.replace(paper, pixel_weight=0.5, content_weight=0.25, adv_weight=0.125, tv_weight=3.0)
    assert losses.config_weights(cfg) == {"g_pixel": 0.5, "g_content": 0.25, "g_adv": 0.125, "g_tv": 3.0}
    # the "without TV" ablation: use_tv off wins over tv_weight
    assert losses.config_weights(dataclasses.replace(cfg, use_tv=False))["g_tv"] == 0.0


def test_from_config_builds_the_configured_vgg():
    cfg = config.get_profile("smoke").config(scale=2, crop_size=88, use_tv=False, vgg_weights="random")
    loss = losses.GeneratorLoss.from_config(cfg)
    assert loss.weights == losses.config_weights(cfg) and loss.weights["g_tv"] == 0.0
    assert loss.vgg.layer == cfg.vgg_layer and loss.vgg_weights_used == "random"
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    out = loss(sr, hr)
    assert out["g_tv"] > 0  # logged even when its weight is 0
    assert torch.equal(out["g_total"], (cfg.pixel_weight * out["g_pixel"] + cfg.content_weight * out["g_content"]
                                        + cfg.adv_weight * out["g_adv"]) + 0.0 * out["g_tv"])


def test_weights_must_name_every_term_and_nothing_else():
    with pytest.raises(ConfigError, match="missing \\['g_tv'\\]"):
        losses.GeneratorLoss({k: v for k, v in PAPER_WEIGHTS.items() if k != "g_tv"}, vgg_weights="random")
    with pytest.raises(ConfigError, match="unknown \\['g_style'\\]"):
        losses.GeneratorLoss({**PAPER_WEIGHTS, "g_style": 1.0}, vgg_weights="random")


def test_a_new_term_needs_only_an_entry(monkeypatch):
    """The recipe of docs/architecture.md: a function and one TERMS entry (its weight field is borrowed here)."""
    def mean_brightness(sr):
        return sr.mean()

    monkeypatch.setitem(losses.TERMS, "g_bright", losses.Term(mean_brightness, "pixel_weight", ("sr",)))
    loss = losses.GeneratorLoss({**PAPER_WEIGHTS, "g_content": 0.0, "g_bright": 2.0})
    sr = torch.full((1, 3, 4, 4), 0.25)
    out = loss(sr, torch.zeros_like(sr))
    assert out["g_bright"].item() == 0.25
    assert out["g_total"].item() == pytest.approx(0.25 ** 2 + 2.0 * 0.25)


def test_logged_columns_come_from_the_registry():
    assert runlog.LOSS_KEYS == (*losses.TERMS, "g_total", "d_real", "d_fake", "d_total", "d_x", "d_g_z")
    assert set(losses.discriminator_loss(torch.zeros(2), torch.zeros(2))) == set(losses.D_KEYS)
