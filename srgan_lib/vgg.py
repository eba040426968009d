"""VGG19 features phi_i,j for the content loss, eq. (5): torchvision's network, ImageNet weights.

``notebooks/03_losses.ipynb`` shows the feature maps. The network is
``torchvision.models.vgg19(weights=None).features`` cut after the chosen layer.
The ImageNet weights are torchvision's own file (``VGG19_Weights.IMAGENET1K_V1``),
looked for where torch keeps downloaded weights,
``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``, and fetched into that place
when absent (:mod:`srgan_lib.fetch`, checked against the SHA-256 prefix in the
file's name, renamed into place only when whole). ``vgg_weights`` says what
happens when they cannot be had:

* ``"imagenet"``: stop with one line naming the file to place (the paper profile);
* ``"auto"``: log a warning and use seeded random weights (the quick profile);
* ``"random"``: seeded random weights, on purpose (the smoke profile, tests).

:attr:`VGGFeatureExtractor.weights_used` says which were loaded; a run records it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch
import torchvision
from filelock import FileLock
from torch import nn

from .config import VGG_WEIGHTS
from .errors import ConfigError, DownloadError
from .fetch import fetch, sha256sum

logger = logging.getLogger(__name__)

#: What ``vgg_weights`` may say (see the module docstring).
VGG19_URL = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url  # .../vgg19-dcbb9e9d.pth
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Convs per VGG19 block (torchvision's configuration "E").
_VGG19_BLOCKS = (2, 2, 4, 4, 4)


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


def imagenet_state_dict() -> tuple[dict | None, str]:
    """torchvision's ImageNet VGG19 state dict, fetched into :func:`vgg19_weights_path` when absent.

    Returns:
        ``(state_dict, "")`` with torchvision's keys (``features.0.weight``, ...,
        ``classifier.6.bias``) on success; ``(None, reason)`` when it cannot be had.
    """
    path = vgg19_weights_path()
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{path}.lock"):  # the processes of a distributed run fetch it once
                if not path.is_file():
                    _download(VGG19_URL, path)
        except (DownloadError, OSError) as exc:
            return None, f"download failed ({exc})"
    try:
        return torch.load(path, map_location="cpu", weights_only=True), ""
    except Exception as exc:  # a truncated or foreign file: say which
        return None, f"{path} could not be read as a state dict ({exc})"


def _download(url: str, path: Path) -> None:
    """``url`` into ``path`` via ``path.part``; the SHA-256 must start with the hex digits in the file name."""
    part = path.with_name(path.name + ".part")
    logger.info("downloading %s to %s", url, path)
    fetch(url, part, hint="place the file by hand")
    match = re.search(r"-([0-9a-f]{8,})\.", os.path.basename(url))  # torchvision's naming: vgg19-<sha256[:8]>.pth
    digest = sha256sum(part)
    if match and not digest.startswith(match.group(1)):
        part.unlink()
        raise DownloadError(f"{url}: SHA-256 {digest[:16]}... does not start with {match.group(1)}, "
                            "as the file name says; the download was deleted")
    os.replace(part, path)  # atomic: the real name never holds a partial file


#: Why the ImageNet weights could not be had, once a download failed in this process (see VGGFeatureExtractor).
_UNAVAILABLE: dict[str, str] = {}


class VGGFeatureExtractor(nn.Module):
    """phi_i,j of a frozen VGG19 (eq. (5)): torchvision's ``vgg19().features`` up to the chosen layer.

    ImageNet normalisation is applied inside, so callers pass images in [0, 1].
    The layers keep torchvision's numbering, so its state dict loads directly
    (``features.N.weight``).

    Args:
        layer: ``"conv2_2"``, ``"conv5_4"`` (Ledig's phi_5,4), ... (see
            :func:`vgg19_layer_names`).
        weights: ``"imagenet"`` -- load torchvision's ImageNet weights (hub
            cache, else download); raise :class:`DownloadError` naming the
            file to place when they cannot be had (the paper profile).
            ``"auto"`` -- the same, but fall back to random weights with a
            logged warning (the quick profile). ``"random"`` -- seeded random
            weights, explicitly (the smoke profile, CI).
        seed: seed of the random weights (does not touch the global RNG).

    Attributes:
        weights_used: ``"imagenet"`` or ``"random"``: record it with the run.

    Shapes:
        N x 3 x H x W in [0, 1] -> N x C_i x H / 2^(i-1) x W / 2^(i-1), C_i = 64, 128, 256, 512, 512.
    """

    def __init__(self, layer: str = "conv5_4", weights: str = "imagenet", seed: int = 0) -> None:
        super().__init__()
        if weights not in VGG_WEIGHTS:
            raise ConfigError(f"vgg_weights={weights!r}: use one of {', '.join(VGG_WEIGHTS)}")
        self.layer = layer
        last = vgg19_layer_index(layer)
        # built on the meta device: initialising all 144M parameters (the classifier's too) only to
        # overwrite them takes ~2 s per network on a CPU; every parameter kept is set below
        with torch.device("meta"):
            full = torchvision.models.vgg19(weights=None, init_weights=False)
        self.features = full.features[: last + 1].to_empty(device="cpu")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        state = None
        if weights in ("imagenet", "auto"):
            # a download that failed in this process is not tried again for every network (an experiment
            # builds dozens), unless the file has appeared since; the fallback is still recorded per run
            failed = _UNAVAILABLE.get("reason") if not vgg19_weights_path().is_file() else None
            state, reason = (None, failed) if failed else imagenet_state_dict()
            if state is None:
                msg = (f"VGG19 ImageNet weights unavailable: {reason}. Place torchvision's file {VGG19_URL} at "
                       f"{vgg19_weights_path()} (or set TORCH_HOME), or use vgg_weights='random'")
                if weights == "imagenet":
                    raise DownloadError(msg)
                (logger.debug if failed else logger.warning)(
                    "%s. Falling back to RANDOM VGG19 weights (recorded as vgg_weights_used: random): the content "
                    "loss is then not a perceptual loss.", msg if not failed else "VGG19 ImageNet weights unavailable "
                    "(as before)")
                _UNAVAILABLE["reason"] = reason
        if state is not None:
            own = {k: v for k, v in state.items() if k.startswith("features.")
                   and int(k.split(".")[1]) < len(self.features)}
            self.load_state_dict(own, strict=True)
            self.weights_used = "imagenet"
        else:
            self._init_random(seed)
            self.weights_used = "random"
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
        """phi_i,j of ``img`` (N x 3 x H x W in [0, 1]), normalised with the ImageNet mean and std first."""
        return self.features((img - self.mean) / self.std)
