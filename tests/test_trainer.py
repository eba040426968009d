"""``trainer.Trainer.step`` against the paper's equations written out by hand.

Both sides run in float64 (:func:`srgan_lib.trainer.default_dtype`). In float32
the two are equal only up to rounding, and rounding is not small here: a weight
gradient of G's output convolution is a sum of ~10^5 products that cancel to
~1e-3 of their magnitude, so reducing them in another order (another CPU's
kernels, ``F.mse_loss`` vs ``((a - b) ** 2).mean()``) moved it by up to 1.2e-3 of
the network's largest gradient on one AMD EPYC machine, and after a step Adam,
which moves every weight by ~lr whatever the gradient's size, carries that into
every layer. In float64 the same cancellation leaves ~1e-13 (measured: at most
7.7e-14 of the largest gradient over 3 steps of the smoke and quick
configurations), so a bound of 1e-10 is 1,000x above rounding on any CPU and
still far below the smallest real term: the TV term at weight 2e-8 moves the
gradients by ~1e-8 of their size, and leaving it out fails the check
(:func:`test_the_check_sees_the_smallest_term`).

Several steps are compared, not one: G's output convolution starts at zero, so
at step 0 every earlier layer of G gets no gradient and only the last layer
would be checked.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from srgan_lib import batches, config, data, trainer

#: Bound on |hand - library| relative to the largest gradient (see the module docstring).
REL_TOL = 1e-10


def _cfg(profile: str) -> config.TrainConfig:
    # one MSE warm-up step then GAN steps, so that the phase switch (a fresh Adam) is covered too;
    # random VGG weights: nothing is downloaded, and the comparison does not depend on the weights
    return config.get_profile(profile).config(scale=4, crop_size=48, seed=0, device="cpu", warmup_iters=1,
                                              gan_iters=3, vgg_weights="random", tv_weight=2e-8)


def _hand_written_step(nets, opts, lr_img, hr_img, step, cfg, with_tv=True):
    """One iteration from the equations; returns (G's, D's) gradients as stepped with."""
    G, D, vgg = nets
    if step < cfg.warmup_iters:  # SRResNet warm-up: eq. (4) alone
        if "g" not in opts:
            opts["g"] = torch.optim.Adam(G.parameters(), lr=cfg.warmup_lr, betas=cfg.betas)
        loss = ((G(lr_img) - hr_img) ** 2).mean()
        opts["g"].zero_grad()
        loss.backward()
        opts["g"].step()
        return [p.grad.clone() for p in G.parameters()], None
    if opts.get("phase") != "gan":  # the GAN phase starts with a fresh Adam for G
        opts.update(phase="gan", g=torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas),
                    d=torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas))
    sr = G(lr_img)
    # D step, eq. (8) as binary cross-entropy on logits; sr.detach(): no gradient for G
    d_loss = F.softplus(-D(hr_img)).mean() + F.softplus(D(sr.detach())).mean()
    opts["d"].zero_grad()
    d_loss.backward()
    opts["d"].step()
    d_grads = [p.grad.clone() for p in D.parameters()]
    # G step through a frozen D: eqs. (1), (4)-(7)
    for p in D.parameters():
        p.requires_grad_(False)
    pixel = ((sr - hr_img) ** 2).mean()
    content = ((vgg(sr) - vgg(hr_img)) ** 2).mean()
    adv = F.softplus(-D(sr)).mean()
    tv = ((sr[..., 1:, :] - sr[..., :-1, :]) ** 2).mean() + ((sr[..., :, 1:] - sr[..., :, :-1]) ** 2).mean()
    g_loss = (cfg.pixel_weight * pixel + cfg.content_weight * content + cfg.adv_weight * adv
              + (cfg.effective_tv_weight * tv if with_tv else 0.0))
    opts["g"].zero_grad()
    g_loss.backward()
    opts["g"].step()
    for p in D.parameters():
        p.requires_grad_(True)
    return [p.grad.clone() for p in G.parameters()], d_grads


def _worst_difference(mine: list[torch.Tensor], net: torch.nn.Module) -> float:
    """max |mine - library| over all of ``net``'s gradients, relative to its largest gradient."""
    scale = max(p.grad.abs().max().item() for p in net.parameters())
    return max((a - p.grad).abs().max().item() for a, p in zip(mine, net.parameters())) / scale


def compare_with_hand_written(cfg: config.TrainConfig, with_tv: bool = True) -> list[tuple[float, float]]:
    """Run ``cfg.total_iters`` steps of both in float64; (G, D) worst relative gradient difference per step."""
    dataset = data.TrainDataset(cfg.train_data, cfg.scale, cfg.crop_size, cache="ram", progress=False)
    with trainer.default_dtype(torch.float64):
        config.seed_everything(cfg.seed)
        lib = trainer.Trainer(cfg, "cpu")
        nets = (copy.deepcopy(lib.generator), copy.deepcopy(lib.discriminator), lib.loss.vgg)
    opts: dict = {}
    worst = []
    for step in range(cfg.total_iters):
        lr_img, hr_img = (t.double() for t in batches.make_batch(dataset, step, cfg.batch_size, cfg.seed))
        g_grads, d_grads = _hand_written_step(nets, opts, lr_img, hr_img, step, cfg, with_tv)
        lib.step(lr_img, hr_img, step)
        worst.append((_worst_difference(g_grads, lib.generator),
                      _worst_difference(d_grads, lib.discriminator) if d_grads else 0.0))
    return worst


@pytest.mark.equality
@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_step_is_the_equations(profile):
    worst = compare_with_hand_written(_cfg(profile))
    assert all(g < REL_TOL and d < REL_TOL for g, d in worst), worst


@pytest.mark.equality
def test_the_check_sees_the_smallest_term():
    """Without the TV term (weight 2e-8) the hand-written update no longer matches: ~1e-8 > REL_TOL."""
    worst = compare_with_hand_written(_cfg("smoke"), with_tv=False)
    assert max(g for g, _ in worst) > 10 * REL_TOL, worst  # measured 9e-9: 90x the bound


def test_default_dtype_is_restored_and_batches_follow_the_networks():
    cfg = _cfg("smoke")
    with trainer.default_dtype(torch.float64):
        lib = trainer.Trainer(cfg, "cpu")
    assert torch.get_default_dtype() == torch.float32
    assert lib.generator.tail.weight.dtype == torch.float64
    lr_img, hr_img = lib.prepare(torch.rand(2, 3, 12, 12), torch.rand(2, 3, 48, 48))
    assert lr_img.dtype == hr_img.dtype == torch.float64
    terms = lib.step(torch.rand(2, 3, 12, 12), torch.rand(2, 3, 48, 48), step=cfg.warmup_iters)
    assert {"d_total", "g_total", "g_tv"} <= terms.keys()


def test_warm_up_then_gan_phase_with_a_fresh_adam():
    cfg = _cfg("smoke")
    lib = trainer.Trainer(cfg, "cpu")
    lr_img, hr_img = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 48, 48)
    assert set(lib.step(lr_img, hr_img, 0)) == {"g_pixel", "g_total"} and lib.opt_phase == "mse"
    warm_opt = lib.opt_g
    assert "d_total" in lib.step(lr_img, hr_img, 1) and lib.opt_phase == "gan"
    assert lib.opt_g is not warm_opt and lib.opt_g.param_groups[0]["lr"] == cfg.lr
    # a checkpoint taken in the GAN phase restores the GAN-phase optimiser
    fresh = trainer.Trainer(cfg, "cpu")
    fresh.load_state_dict(lib.state_dict())
    assert fresh.opt_phase == "gan" and fresh.opt_g.param_groups[0]["lr"] == cfg.lr


# --- precision: the autocast dtype by the card's capability, and fp16's gradient scaling


def _fake_card(monkeypatch, capability):
    """Make torch report a CUDA card of ``capability``; its is_bf16_supported behaves like torch's:
    True at >= 8.0, and by default also on older cards, which emulate bf16 (a T4 says True)."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: capability >= (8, 0) or including_emulation)


@pytest.mark.parametrize("capability, expected", [((9, 0), torch.bfloat16), ((8, 0), torch.bfloat16),
                                                  ((7, 5), torch.float16), ((7, 0), torch.float16)])
def test_amp_dtype_follows_the_cards_capability(monkeypatch, capability, expected):
    # H100 9.0 and A100 8.0 have bf16 natively; T4 7.5 and V100 7.0 do not (a T4 only emulates it)
    _fake_card(monkeypatch, capability)
    assert trainer.amp_dtype("cuda") is expected
    assert trainer.amp_dtype(torch.device("cuda", 0)) is expected
    assert trainer.amp_dtype("cuda", enabled=False) is None  # cfg.amp off


def test_no_autocast_on_the_cpu(monkeypatch):
    _fake_card(monkeypatch, (9, 0))
    assert trainer.amp_dtype("cpu") is None and trainer.amp_dtype("cpu", enabled=False) is None
    lib = trainer.Trainer(_cfg("smoke"), "cpu")
    assert lib.amp_dtype is None and lib.precision == "fp32"
    assert not lib.scaler_g.is_enabled() and not lib.scaler_d.is_enabled()
    assert lib.state_dict()["scaler_g"] == {} == lib.state_dict()["scaler_d"]
    with trainer.default_dtype(torch.float64):
        assert trainer.Trainer(_cfg("smoke"), "cpu").precision == "fp64"


def _autocast_on_cpu(monkeypatch, dtype):
    """Let the Trainer pick ``dtype`` on the CPU: the same code path a card of that kind takes on CUDA
    (CPU autocast and ``GradScaler("cpu")`` exist in torch >= 2.3)."""
    monkeypatch.setattr(trainer, "amp_dtype", lambda device, enabled=True: dtype if enabled else None)


def _batch(step: int):
    gen = torch.Generator().manual_seed(step)
    return torch.rand(2, 3, 12, 12, generator=gen), torch.rand(2, 3, 48, 48, generator=gen)


def _weights(lib) -> list[torch.Tensor]:
    return [p.detach().clone() for net in (lib.generator, lib.discriminator) for p in net.parameters()]


def test_bf16_needs_no_gradient_scaling(monkeypatch):
    _autocast_on_cpu(monkeypatch, torch.bfloat16)
    lib = trainer.Trainer(_cfg("smoke"), "cpu")
    assert lib.precision == "bf16" and not lib.scaler_g.is_enabled() and not lib.scaler_d.is_enabled()
    terms = lib.step(*_batch(1), step=1)
    assert terms["g_total"].dtype == torch.float32 and all(bool(torch.isfinite(v)) for v in terms.values())
    assert trainer.Trainer(dataclasses.replace(_cfg("smoke"), amp=False), "cpu").precision == "fp32"


def test_fp16_scales_the_gradients_and_skips_an_overflowing_step(monkeypatch):
    _autocast_on_cpu(monkeypatch, torch.float16)
    lib = trainer.Trainer(_cfg("smoke"), "cpu")
    assert lib.precision == "fp16" and lib.scaler_g.is_enabled() and lib.scaler_d.is_enabled()
    for step in range(2):  # the MSE warm-up step, then a GAN step: both go through the scalers
        terms = lib.step(*_batch(step), step=step)
        assert all(bool(torch.isfinite(v)) for v in terms.values()), terms
    # each scaler counts its steps without overflow (GradScaler's growth tracker): G 2, D 1
    assert lib.scaler_g.state_dict()["_growth_tracker"] == 2 and lib.scaler_d.state_dict()["_growth_tracker"] == 1
    # a scale of 2^40 makes every fp16 gradient inf (|grad| >~ 1e-7 suffices): both updates are skipped,
    # the weights stay as they were and each scale is halved, as GradScaler promises for an overflow
    for scaler in (lib.scaler_g, lib.scaler_d):
        scaler.update(new_scale=2.0**40)
    before = _weights(lib)
    lib.step(*_batch(2), step=2)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(lib)))
    assert lib.scaler_g.get_scale() == lib.scaler_d.get_scale() == 2.0**39


@pytest.mark.parametrize("restore_scalers", [True, False])
def test_fp16_resume_restores_the_scalers(monkeypatch, restore_scalers):
    """A run resumed from a checkpoint continues as the uninterrupted one, bit for bit (same CPU).

    The checkpoint is taken with both scales at 2^40, so that the next step overflows and is
    skipped; a resume that forgot the scalers (``restore_scalers=False``, the bug this guards
    against) would step at the default 2^16 instead, and its weights differ.
    """
    _autocast_on_cpu(monkeypatch, torch.float16)
    cfg = _cfg("smoke")
    config.seed_everything(0)
    lib = trainer.Trainer(cfg, "cpu")
    for step in range(2):
        lib.step(*_batch(step), step=step)
    for scaler in (lib.scaler_g, lib.scaler_d):
        scaler.update(new_scale=2.0**40)
    state = copy.deepcopy(lib.state_dict())
    for step in range(2, 4):
        lib.step(*_batch(step), step=step)
    resumed = trainer.Trainer(cfg, "cpu")
    if not restore_scalers:
        del state["scaler_g"], state["scaler_d"]  # also what a checkpoint written before scalers holds
    resumed.load_state_dict(state)
    for step in range(2, 4):
        resumed.step(*_batch(step), step=step)
    same = all(torch.equal(a, b) for a, b in zip(_weights(lib), _weights(resumed)))
    assert same == restore_scalers
    if restore_scalers:
        assert resumed.scaler_g.state_dict() == lib.scaler_g.state_dict()
        assert resumed.scaler_d.state_dict() == lib.scaler_d.state_dict()
