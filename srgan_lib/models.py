"""The SRGAN networks: residual block, sub-pixel upsampler, generator, discriminator.

Both networks follow Ledig et al. 2017, Figure 2, which the paper reproduces
(section 3.1); ``notebooks/02_model_definition.ipynb`` builds them up step by
step, traces the shapes and counts the parameters.

Contracts (see ``docs/conventions.md``):

* :class:`Generator` maps ``lr_img`` N x 3 x h x w in [0, 1] to ``sr_img``
  N x 3 x (scale*h) x (scale*w) in [0, 1].
* :class:`Discriminator` maps N x 3 x H x W in [0, 1] to LOGITS of shape (N,).
  The paper's final sigmoid is folded into the losses
  (``torch.nn.functional.binary_cross_entropy_with_logits``), which is
  numerically safe where ``log(sigmoid(x))`` underflows; ``torch.sigmoid(logits)``
  is the paper's D(x).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .config import SUPPORTED_SCALES, UPSAMPLE_SKIPS
from .errors import ConfigError


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the identity (Ledig Fig. 2).

    Args:
        num_feat: channels in and out (64 in the paper).

    Shapes:
        N x num_feat x h x w -> N x num_feat x h x w.
    """

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(num_feat)
        self.act = nn.PReLU()  # one slope per layer: torch's default and the reference code's
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class UpsampleBlock(nn.Module):
    """Sub-pixel convolution x2 (Shi et al. 2016): conv3x3 to 4C, PixelShuffle(2), PReLU.

    The convolution runs at the low resolution and produces 4 values per pixel;
    PixelShuffle rearranges each group of 4 channels into a 2 x 2 block, so
    the upsampling is learned without the checkerboard of a strided transposed
    convolution's uneven overlap.

    Shapes:
        N x num_feat x h x w -> N x num_feat x 2h x 2w.
    """

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


def icnr_(conv: nn.Conv2d, factor: int = 2) -> nn.Conv2d:
    """ICNR initialisation (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution"), in place.

    A sub-pixel convolution feeding ``PixelShuffle(factor)`` produces ``factor**2`` output channels per
    feature; the shuffle puts them at the ``factor x factor`` positions (phases) of each output block.
    Drawn independently (torch's default), the phases get different kernels and biases, and the
    upsampled map starts as a checkerboard at the block's period that training must then undo. ICNR
    draws one kernel per feature (Kaiming-uniform, as torch's default) and gives it, and its bias, to
    every phase: at initialisation the block equals a convolution followed by nearest-neighbour
    upsampling, so a constant input gives a constant output.

    Args:
        conv: a convolution with ``out_channels`` divisible by ``factor**2`` (channel ``c * factor**2 + p``
            goes to feature ``c``, phase ``p`` of ``PixelShuffle``).
        factor: the shuffle's upscaling factor.

    Returns:
        ``conv``, its weight and bias re-initialised.
    """
    phases = factor * factor
    if conv.out_channels % phases:
        raise ConfigError(f"icnr_: out_channels={conv.out_channels} is not divisible by factor**2={phases}")
    sub = nn.Conv2d(conv.in_channels, conv.out_channels // phases, conv.kernel_size,
                    bias=conv.bias is not None).to(conv.weight.device, conv.weight.dtype)  # torch's default init
    with torch.no_grad():
        conv.weight.copy_(sub.weight.repeat_interleave(phases, dim=0))
        if conv.bias is not None:
            conv.bias.copy_(sub.bias.repeat_interleave(phases, dim=0))
    return conv


def _clamp_straight_through(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] in the forward pass; pass the gradient through unchanged.

    A plain clamp zeroes the gradient of every pixel outside [0, 1]; an
    untrained generator puts 20-45 % of its pixels below 0 (measured on a photo
    for the three profiles' sizes), and they would never be pulled back. ``(tanh + 1) / 2`` (the reference code's
    choice) never reaches 0 or 1 exactly, saturates, and would break the
    identity "zero residual = bicubic" of ``upsample_skip="bicubic"``.
    """
    return x + (x.clamp(0.0, 1.0) - x).detach()


class Generator(nn.Module):
    """SRResNet (Ledig et al. Fig. 2), the SRGAN generator.

    9x9 conv + PReLU -> ``num_block`` :class:`ResidualBlock` -> conv3x3 + BN,
    plus the skip from the first conv -> log2(scale) :class:`UpsampleBlock` ->
    9x9 conv to 3 channels.

    Output range: the last conv is linear and its output is clamped to [0, 1]
    with a straight-through gradient (:func:`_clamp_straight_through`), in
    training and in inference alike, so that the discriminator and the VGG
    loss see the same valid images the user gets.

    ``upsample_skip="bicubic"`` adds the network's output to a bicubic
    upsampling of its input, so that the network learns only the residual
    (global residual learning as in VDSR, the paper's ref. [7]; see issue 8 and
    notebook 02). That skip uses ``F.interpolate(mode="bicubic",
    align_corners=False)`` (Keys a = -0.75), not the MATLAB-compatible
    :func:`srgan_lib.resize.imresize` (a = -0.5): it only has to be a good
    starting point for a learned correction, and the torch kernel is fast,
    differentiable and runs on the GPU inside the graph. With the skip, the
    last conv starts at zero, so an untrained generator *is* bicubic
    upsampling and training can only improve on it.

    Args:
        scale: 2, 4 or 8 (a power of 2: one sub-pixel block per factor 2).
        num_feat: feature channels (64 in the paper).
        num_block: residual blocks B (16 in the paper).
        upsample_skip: ``"none"`` (the paper's network) or ``"bicubic"``.
        icnr: initialise the sub-pixel convolutions with :func:`icnr_` (no checkerboard at
            initialisation); False keeps torch's default initialisation (the paper's network).

    Shapes:
        ``lr_img`` N x 3 x h x w in [0, 1] -> N x 3 x (scale*h) x (scale*w) in [0, 1].
    """

    def __init__(self, scale: int = 4, num_feat: int = 64, num_block: int = 16,
                 upsample_skip: str = "none", icnr: bool = False) -> None:
        super().__init__()
        if scale not in SUPPORTED_SCALES:
            raise ConfigError(f"Generator(scale={scale}): use one of {SUPPORTED_SCALES}")
        if upsample_skip not in UPSAMPLE_SKIPS:
            raise ConfigError(f"Generator(upsample_skip={upsample_skip!r}): use one of {UPSAMPLE_SKIPS}")
        if num_feat < 1 or num_block < 0:
            raise ConfigError(f"Generator(num_feat={num_feat}, num_block={num_block}): need num_feat >= 1, "
                              "num_block >= 0")
        self.scale = scale
        self.upsample_skip = upsample_skip
        self.head = nn.Sequential(nn.Conv2d(3, num_feat, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*[ResidualBlock(num_feat) for _ in range(num_block)])
        self.body_tail = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.BatchNorm2d(num_feat))
        self.upsample = nn.Sequential(*[UpsampleBlock(num_feat) for _ in range(int(math.log2(scale)))])
        if icnr:
            for block in self.upsample:
                icnr_(block.conv, 2)
        self.tail = nn.Conv2d(num_feat, 3, 9, padding=4)
        if upsample_skip == "bicubic":
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, lr_img: torch.Tensor) -> torch.Tensor:
        feat = self.head(lr_img)
        feat = feat + self.body_tail(self.body(feat))
        out = self.tail(self.upsample(feat))
        if self.upsample_skip == "bicubic":
            out = out + F.interpolate(lr_img, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return _clamp_straight_through(out)


def _d_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    # The conv keeps its bias although BN removes it again (as the reference
    # code does): a few redundant parameters, counted in the tests.
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2))


class Discriminator(nn.Module):
    """The SRGAN discriminator (Ledig et al. Fig. 2, after Radford et al.).

    conv3x3(64) + LeakyReLU(0.2); seven conv-BN-LeakyReLU blocks with
    64 (stride 2), 128, 128 (s2), 256, 256 (s2), 512, 512 (s2) channels;
    adaptive average pooling to ``pool_size`` x ``pool_size``; dense
    ``fc_feat`` + LeakyReLU; dense 1. The sigmoid is left to the losses.

    Why adaptive pooling: the four stride-2 convs shrink a crop of side s to
    ceil(s / 16): 6 for crops 88 and 96, 8 for 128, 11 for 168. A fixed flatten
    (Ledig) would need a different dense layer, and so a discriminator of a
    different size, for every crop of the ablation, mixing "bigger crops" with
    "a bigger D". Pooling to 6 x 6 gives one network for every crop and is
    *exactly* Ledig's at crops 88 and 96 (pooling a 6 x 6 map to 6 x 6 is the
    identity). ``pool_size=1`` gives the reference code's global average pool
    (fewer parameters, no spatial layout).

    Args:
        num_feat: channels of the first conv (64); doubles up to 8 x num_feat.
        fc_feat: width of the first dense layer (1024).
        pool_size: side of the pooled map fed to the dense layers (6).

    Shapes:
        N x 3 x H x W in [0, 1] (H, W >= 1) -> logits (N,).
    """

    def __init__(self, num_feat: int = 64, fc_feat: int = 1024, pool_size: int = 6) -> None:
        super().__init__()
        if num_feat < 1 or fc_feat < 1 or pool_size < 1:
            raise ConfigError(f"Discriminator(num_feat={num_feat}, fc_feat={fc_feat}, pool_size={pool_size}): "
                              "all must be >= 1")
        f = num_feat
        self.features = nn.Sequential(
            nn.Conv2d(3, f, 3, padding=1), nn.LeakyReLU(0.2),
            _d_block(f, f, 2),
            _d_block(f, 2 * f, 1), _d_block(2 * f, 2 * f, 2),
            _d_block(2 * f, 4 * f, 1), _d_block(4 * f, 4 * f, 2),
            _d_block(4 * f, 8 * f, 1), _d_block(8 * f, 8 * f, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * f * pool_size * pool_size, fc_feat), nn.LeakyReLU(0.2),
            nn.Linear(fc_feat, 1),
        )

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(img))).squeeze(1)


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[nn.Module]:
    """Switch off ``requires_grad`` of ``net`` for the block (restored after).

    Used for the discriminator during the generator step: the adversarial loss
    is backpropagated *through* D into G, but D's parameters must get no
    gradient from it (their update belongs to the discriminator step).
    """
    saved = [(p, p.requires_grad) for p in net.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield net
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
