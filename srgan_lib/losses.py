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
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from urllib.error import URLError

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, DownloadError

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
    return {"d_real": d_real, "d_fake": d_fake, "d_total": d_real + d_fake}


# --- eq. (5): VGG19 features ------------------------------------------------

#: Convs per VGG19 block (torchvision's configuration "E").
_VGG19_BLOCKS = (2, 2, 4, 4, 4)
_VGG19_CHANNELS = (64, 128, 256, 512, 512)
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"  # VGG19_Weights.IMAGENET1K_V1
_VGG19_HASH_PREFIX = "dcbb9e9d"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """``conv1_1`` ... ``conv5_4``: the 16 layers phi_i,j can be taken at."""
    return [f"conv{i + 1}_{j + 1}" for i, n in enumerate(_VGG19_BLOCKS) for j in range(n)]


def vgg19_layer_index(layer: str) -> int:
    """Index in torchvision's ``vgg19().features`` of the ReLU after conv ``layer``.

    phi_i,j is the feature map after the activation of the j-th conv before the
    i-th max-pooling (Ledig et al.), so ``features[:index + 1]`` computes it
    (``conv2_2`` -> 8, ``conv5_4`` -> 35).
    """
    index = 0
    for i, n in enumerate(_VGG19_BLOCKS):
        for j in range(n):
            if layer == f"conv{i + 1}_{j + 1}":
                return index + 1
            index += 2  # conv, ReLU
        index += 1  # max-pool
    raise ConfigError(f"vgg_layer={layer!r}: use one of {', '.join(vgg19_layer_names())}")


def vgg19_weights_path() -> Path:
    """Where torch looks for the ImageNet VGG19 weights: ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``.

    The hub dir is ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(VGG19_URL)


def _load_imagenet_state_dict() -> tuple[dict | None, str]:
    """The ImageNet VGG19 state dict from the hub cache, downloading it if absent.

    Returns:
        (state_dict, "") on success, (None, reason) when it cannot be had.
    """
    path = vgg19_weights_path()
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Writes to a temporary file beside ``path`` and renames it into place;
            # checks the hash prefix torchvision records in the file name.
            torch.hub.download_url_to_file(VGG19_URL, str(path), hash_prefix=_VGG19_HASH_PREFIX, progress=True)
        except (URLError, OSError, RuntimeError) as exc:
            return None, f"download of {VGG19_URL} failed ({exc})"
    try:
        return torch.load(path, map_location="cpu", weights_only=True), ""
    except Exception as exc:  # a truncated or foreign file: say which
        return None, f"{path} could not be read as a state dict ({exc})"


class VGGFeatureExtractor(nn.Module):
    """phi_i,j of a frozen VGG19 (eq. (5)), built only up to the chosen layer.

    ImageNet normalisation is applied inside, so callers pass images in [0, 1].
    Its layers are numbered as in torchvision's ``vgg19().features``, so that
    torchvision's state dict loads into it directly.

    Args:
        layer: ``"conv2_2"``, ``"conv5_4"`` (Ledig's phi_5,4), ... (see
            :func:`vgg19_layer_names`).
        weights: ``"imagenet"`` -- load torchvision's ImageNet weights (hub
            cache, else download); raise :class:`DownloadError` naming the
            file to place when they cannot be had (the paper profile).
            ``"auto"`` -- the same, but fall back to random weights with a loud
            warning (the quick profile). ``"random"`` -- seeded random weights,
            explicitly (the smoke profile, CI).
        seed: seed of the random weights (does not touch the global RNG).

    Attributes:
        weights_used: ``"imagenet"`` or ``"random"``: record it with the run.

    Shapes:
        N x 3 x H x W in [0, 1] -> N x C_i x H / 2^(i-1) x W / 2^(i-1).
    """

    def __init__(self, layer: str = "conv5_4", weights: str = "imagenet", seed: int = 0) -> None:
        super().__init__()
        if weights not in ("imagenet", "auto", "random"):
            raise ConfigError(f"vgg_weights={weights!r}: use 'imagenet', 'auto' or 'random'")
        self.layer = layer
        last = vgg19_layer_index(layer)
        layers: list[nn.Module] = []
        c_in = 3
        for n, c_out in zip(_VGG19_BLOCKS, _VGG19_CHANNELS):
            for _ in range(n):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers[: last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.weights_used = "random"
        state = None
        if weights in ("imagenet", "auto"):
            state, reason = _load_imagenet_state_dict()
            if state is None:
                msg = (f"VGG19 ImageNet weights unavailable: {reason}. Place torchvision's file "
                       f"{VGG19_URL} at {vgg19_weights_path()} (or set TORCH_HOME), or use vgg_weights='random'")
                if weights == "imagenet":
                    raise DownloadError(msg)
                warnings.warn(msg + ". Falling back to RANDOM VGG19 weights: the content loss is then not "
                              "a perceptual loss.", RuntimeWarning, stacklevel=2)
                print(f"WARNING: {msg}; using RANDOM VGG19 weights (recorded as vgg_weights: random)",
                      file=sys.stderr)
        if state is not None:
            own = {k: v for k, v in state.items() if k.startswith("features.")
                   and int(k.split(".")[1]) < len(self.features)}
            self.load_state_dict(own, strict=True)
            self.weights_used = "imagenet"
        else:
            self._init_random(seed)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def _init_random(self, seed: int) -> None:
        # torchvision's VGG init (Kaiming normal, fan_out), from a private generator.
        gen = torch.Generator().manual_seed(seed)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                std = (2.0 / (m.out_channels * m.kernel_size[0] * m.kernel_size[1])) ** 0.5
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                    m.bias.zero_()

    def train(self, mode: bool = True) -> "VGGFeatureExtractor":
        # Frozen: stays in eval mode when a parent module is put in training mode.
        return super().train(False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.features((img - self.mean) / self.std)


# --- eqs. (1)-(3): the composite generator loss ------------------------------


class GeneratorLoss(nn.Module):
    """The generator's loss, eqs. (1)-(3) and (7), with every term returned separately.

    Args:
        pixel_weight: weight of the pixel MSE, eq. (4) (1.0).
        content_weight: weight of the VGG feature MSE, eq. (5) (0.006; see the
            module docstring). 0 skips building the VGG.
        adv_weight: weight of -log D(G(x)), eq. (6) (1e-3, eq. (1)).
        tv_weight: weight of the TV term, eq. (7) (2e-8; 0 = "without tv loss").
        vgg_layer: phi_i,j, e.g. ``"conv5_4"``.
        vgg_weights: ``"imagenet"``, ``"auto"`` or ``"random"`` (see
            :class:`VGGFeatureExtractor`).

    Attributes:
        vgg_weights_used: ``"imagenet"``, ``"random"``, or ``None`` without a VGG.
    """

    def __init__(self, pixel_weight: float = 1.0, content_weight: float = 0.006, adv_weight: float = 1e-3,
                 tv_weight: float = 2e-8, vgg_layer: str = "conv5_4", vgg_weights: str = "imagenet") -> None:
        super().__init__()
        self.pixel_weight = pixel_weight
        self.content_weight = content_weight
        self.adv_weight = adv_weight
        self.tv_weight = tv_weight
        self.vgg = VGGFeatureExtractor(vgg_layer, vgg_weights) if content_weight else None
        self.vgg_weights_used = self.vgg.weights_used if self.vgg is not None else None

    def content_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """Eq. (5): mean over N, C, H_ij, W_ij of (phi(hr) - phi(sr))^2 (unweighted)."""
        with torch.no_grad():
            target = self.vgg(hr)
        return F.mse_loss(self.vgg(sr), target)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor,
                fake_logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """All terms for one batch.

        Args:
            sr (Tensor): G(I^LR), N x 3 x H x W in [0, 1] (with its graph).
            hr (Tensor): I^HR, N x 3 x H x W in [0, 1].
            fake_logits (Tensor | None): D's logits for ``sr``, shape (N,); None
                (the MSE warm-up) leaves out the adversarial term.

        Returns:
            dict: ``g_pixel``, ``g_content``, ``g_adv``, ``g_tv`` (each UNweighted,
            for logging) and ``g_total`` (the weighted sum to backpropagate).
        """
        zero = sr.new_zeros(())
        terms = {
            "g_pixel": pixel_loss(sr, hr),
            "g_content": self.content_loss(sr, hr) if self.vgg is not None else zero,
            "g_adv": adversarial_loss(fake_logits) if fake_logits is not None else zero,
            "g_tv": tv_loss(sr),
        }
        terms["g_total"] = (self.pixel_weight * terms["g_pixel"] + self.content_weight * terms["g_content"]
                            + self.adv_weight * terms["g_adv"] + self.tv_weight * terms["g_tv"])
        return terms
