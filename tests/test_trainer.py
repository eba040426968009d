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
