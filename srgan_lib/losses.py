"""The SRGAN losses, eqs. (1)-(8) of the paper (section 3.2).

``notebooks/03_losses.ipynb`` derives each term from its equation and computes
it on real image pairs. Every function takes float tensors N x 3 x H x W in
[0, 1] (``sr`` = G(I^LR), ``hr`` = I^HR) and returns a scalar tensor; the
discriminator's outputs are LOGITS (see :mod:`srgan_lib.models`).

Generator loss, eqs. (1)-(3) and (7)::

    g_total = pixel_weight * g_pixel      # eq. (4), MSE
            + content_weight * g_content  # eq. (5), VGG19 phi_i,j MSE
            + adv_weight * g_adv          # eq. (6), -log D(G(x)), 1e-3 in eq. (1)
            + tv_weight * g_tv            # eq. (7), total variation

Defaults of the weights live in :class:`srgan_lib.config.TrainConfig` (each
with its source). The VGG feature distance is weighted 0.006 (the reference
code's constant): Ledig et al. divide the VGG19 features by 12.75 so that the
feature loss is of the order of the pixel loss, and the squared distance of
features scaled by 1/12.75 is (1/12.75)^2 = 0.00615 times the plain one.

:data:`TERMS` lists the generator's terms once: each key (``g_pixel``, ...) with
its function and the name of its weight field in ``TrainConfig``. The trainer
builds :class:`GeneratorLoss` from a config by keyword and the run log takes its
columns from it. The VGG19 network and its weights are :mod:`srgan_lib.vgg`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .errors import ConfigError
from .vgg import VGGFeatureExtractor

#: The discriminator loss's keys, eq. (8) (what :func:`discriminator_loss` returns).
D_KEYS = ("d_real", "d_fake", "d_total")

# --- eq. (4), (6), (7), (8) -------------------------------------------------


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Pixel-wise MSE, eq. (4): the mean of (I^HR - G(I^LR))^2 over N, C, H, W.

    Eq. (4) divides by the r^2 W H pixels of one channel; the mean here also
    runs over the 3 channels and the batch, so the value does not grow with either.

    Args:
        sr (Tensor): G(I^LR), N x 3 x H x W in [0, 1].
        hr (Tensor): I^HR, same shape, in [0, 1].

    Returns:
        Tensor: scalar >= 0.
    """
    return F.mse_loss(sr, hr)


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss, eq. (6): mean over the batch of -log D(G(x)).

    -log(sigmoid(z)) = softplus(-z) never takes the log of an underflowed 0
    (the plain form returns inf once D is confident, z < -104 in float32).
    Eq. (6) sums over the batch; the mean keeps the 1e-3 weight of eq. (1)
    independent of the batch size.

    Args:
        fake_logits (Tensor): D's logits for G's images, shape (N,).
    """
    return F.softplus(-fake_logits).mean()


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Total variation, eq. (7): mean squared vertical + mean squared horizontal difference.

    Eq. (7) squares the difference of two sums; read literally that telescopes to
    (last row - first row)^2, which no implementation means: the square belongs
    to each neighbour difference, as in the reference code. Each sum is divided
    by its number of differences (eq. (7)'s r^2 W (H-1) and r^2 (W-1) H, here
    counted on the image itself: C (H-1) W and C H (W-1)), and averaged over the
    batch. The reference code multiplies the same quantity by 2, so its weight
    2e-8 equals 4e-8 here.

    Args:
        img (Tensor): N x C x H x W (H, W >= 2).

    Returns:
        Tensor: scalar >= 0; 0 for a constant image.
    """
    if img.shape[-1] < 2 or img.shape[-2] < 2:
        raise ConfigError(f"tv_loss needs an image of at least 2 x 2 pixels, got {tuple(img.shape)}")
    dv = (img[..., 1:, :] - img[..., :-1, :]).pow(2).mean()
    dh = (img[..., :, 1:] - img[..., :, :-1]).pow(2).mean()
    return dv + dh


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """The discriminator's loss, eq. (8), as binary cross-entropy with logits.

    D maximises log D(I^HR) + log(1 - D(G(I^LR))); it minimises
    ``d_real`` = -log D(I^HR) = softplus(-real) and
    ``d_fake`` = -log(1 - D(G)) = softplus(fake), each a batch mean.
    Pass ``fake_logits`` computed from a *detached* G output so that G gets no
    gradient from this step.

    Args:
        real_logits (Tensor): D's logits for HR images, shape (N,).
        fake_logits (Tensor): D's logits for G's images, shape (N,).

    Returns:
        dict: ``d_real``, ``d_fake``, ``d_total`` (= d_real + d_fake), scalar tensors.
    """
    d_real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    d_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return dict(zip(D_KEYS, (d_real, d_fake, d_real + d_fake)))


# --- eq. (5): the VGG content loss --------------------------------------------


def content_loss(sr: torch.Tensor, hr: torch.Tensor, vgg: VGGFeatureExtractor) -> torch.Tensor:
    """The VGG content loss, eq. (5): mean over N, C, H_ij, W_ij of (phi(hr) - phi(sr))^2 (unweighted).

    Args:
        sr (Tensor): G(I^LR), N x 3 x H x W in [0, 1].
        hr (Tensor): I^HR, same shape, in [0, 1] (no gradient is taken through it).
        vgg: phi_i,j, a frozen :class:`srgan_lib.vgg.VGGFeatureExtractor`.

    Returns:
        Tensor: scalar >= 0.
    """
    with torch.no_grad():
        target = vgg(hr)
    return F.mse_loss(vgg(sr), target)


# --- eqs. (1)-(3): the registry and the composite generator loss --------------


class Term(NamedTuple):
    """One term of the generator loss.

    Attributes:
        loss: the function, called with the inputs named in ``inputs``, in that order.
        weight_field: the :class:`srgan_lib.config.TrainConfig` field that holds its weight.
        inputs: what it reads: ``sr``, ``hr``, ``fake_logits`` (D's logits of ``sr``) or ``vgg``.
            When one of them is None (no D in the MSE warm-up, no VGG when no term with a
            weight needs one) the term is 0.
    """

    loss: Callable[..., torch.Tensor]
    weight_field: str
    inputs: tuple[str, ...]


#: The generator's loss terms, in the order they are summed and logged.
TERMS: dict[str, Term] = {
    "g_pixel": Term(pixel_loss, "pixel_weight", ("sr", "hr")),  # eq. (4)
    "g_content": Term(content_loss, "content_weight", ("sr", "hr", "vgg")),  # eq. (5)
    "g_adv": Term(adversarial_loss, "adv_weight", ("fake_logits",)),  # eq. (6)
    "g_tv": Term(tv_loss, "tv_weight", ("sr",)),  # eq. (7)
}
#: What :class:`GeneratorLoss` returns: every term, then the weighted sum.
G_KEYS = (*TERMS, "g_total")


def config_weights(cfg: TrainConfig) -> dict[str, float]:
    """Each term's weight in ``cfg``: the field :data:`TERMS` names.

    The TV weight is ``cfg.effective_tv_weight``: 0 when ``use_tv`` is off (the
    "without TV" rows of Tables 1-2), whatever ``tv_weight`` says.
    """
    weights = {key: getattr(cfg, term.weight_field) for key, term in TERMS.items()}
    weights["g_tv"] = cfg.effective_tv_weight
    return weights


class GeneratorLoss(nn.Module):
    """The generator's loss, eqs. (1)-(3) and (7), with every term returned separately.

    Build it from a run's config with :meth:`from_config`.

    Args:
        weights: one weight per key of :data:`TERMS` (``{"g_pixel": 1.0,
            "g_content": 0.006, "g_adv": 1e-3, "g_tv": 4e-8}`` in the paper
            profile; see :func:`config_weights`). A content weight of 0 builds no VGG.
        vgg_layer: phi_i,j, e.g. ``"conv5_4"``.
        vgg_weights: ``"imagenet"``, ``"auto"`` or ``"random"`` (see
            :class:`srgan_lib.vgg.VGGFeatureExtractor`).

    Attributes:
        weights: the weights, in the order of :data:`TERMS`.
        vgg: the feature extractor, or None when no weighted term needs one.
        vgg_weights_used: ``"imagenet"``, ``"random"``, or ``None`` without a VGG.
    """

    def __init__(self, weights: Mapping[str, float], vgg_layer: str = "conv5_4",
                 vgg_weights: str = "imagenet") -> None:
        super().__init__()
        missing, unknown = sorted(TERMS.keys() - weights.keys()), sorted(weights.keys() - TERMS.keys())
        if missing or unknown:
            raise ConfigError(f"GeneratorLoss weights: missing {missing}, unknown {unknown}; "
                              f"give one for each of {', '.join(TERMS)}")
        self.weights = {key: weights[key] for key in TERMS}
        needs_vgg = any("vgg" in term.inputs and self.weights[key] for key, term in TERMS.items())
        self.vgg = VGGFeatureExtractor(vgg_layer, vgg_weights) if needs_vgg else None
        self.vgg_weights_used = self.vgg.weights_used if self.vgg is not None else None

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> "GeneratorLoss":
        """The loss of a run: :func:`config_weights` of ``cfg``, its ``vgg_layer`` and ``vgg_weights``."""
        return cls(config_weights(cfg), vgg_layer=cfg.vgg_layer, vgg_weights=cfg.vgg_weights)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor,
                fake_logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """All terms for one batch.

        Args:
            sr (Tensor): G(I^LR), N x 3 x H x W in [0, 1] (with its graph).
            hr (Tensor): I^HR, N x 3 x H x W in [0, 1].
            fake_logits (Tensor | None): D's logits for ``sr``, shape (N,); None
                (the MSE warm-up) leaves out the adversarial term.

        Returns:
            dict: the keys of :data:`TERMS` (``g_pixel``, ``g_content``, ``g_adv``,
            ``g_tv``; each UNweighted, for logging) and ``g_total`` (the weighted
            sum to backpropagate, added in the order of :data:`TERMS`); scalar tensors.
        """
        inputs = {"sr": sr, "hr": hr, "fake_logits": fake_logits, "vgg": self.vgg}
        zero = sr.new_zeros(())
        terms = {}
        for key, term in TERMS.items():
            args = [inputs[name] for name in term.inputs]
            terms[key] = term.loss(*args) if all(a is not None for a in args) else zero
        total = None
        for key, value in terms.items():
            weighted = self.weights[key] * value
            total = weighted if total is None else total + weighted
        terms["g_total"] = total
        return terms
