"""One training step of SRGAN: the networks, their optimisers and the alternating updates.

:class:`Trainer` holds G, D, the generator loss and both Adam optimisers
(paper sec. 4: lr 1e-3, betas 0.9/0.999) and does one iteration:

* warm-up (``step < cfg.warmup_iters``): G minimises the pixel MSE, eq. (4), alone
  (Ledig et al.'s SRResNet pre-training) at ``cfg.warmup_lr``;
* GAN phase: ``sr = G(lr)``; the **D step** on ``sr.detach()`` (eq. (8)); the
  **G step** with D frozen (eq. (1) + TV), so that the adversarial gradient flows
  *through* D into G but D's parameters get none.

Precision (``Trainer.precision``, recorded in each run's ``meta.json``): on CUDA
with ``cfg.amp`` the forward passes run under autocast in the dtype
:func:`amp_dtype` picks by the card: **bf16** where it computes bf16 natively
(compute capability >= 8.0: A100, H100, L4, RTX 30xx and later), else **fp16**
(T4 7.5, V100 7.0), whose narrow exponent needs gradient scaling
(``torch.amp.GradScaler``, one for G and one for D, their state in the
checkpoints). bf16 keeps fp32's exponent and needs none. The networks are in
channels_last on CUDA (``cfg.channels_last``). On the CPU, or with ``cfg.amp``
off, everything runs in the networks' dtype, which is torch's default dtype
when the Trainer is built: float32 normally (``"fp32"``), float64 under
``torch.set_default_dtype(torch.float64)`` (``"fp64"``), which the tests use
to compare two computations (1 vs 2 processes, the library vs the equations
written by hand) with a tolerance far below any real difference.
:func:`srgan_lib.train.train` runs the loop; ``notebooks/04_training.ipynb``
rebuilds one step by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from . import config, distributed, losses, models


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Build networks (and a :class:`Trainer`) in ``dtype`` inside the block; restored after.

    ``with default_dtype(torch.float64): t = Trainer(cfg)`` gives a trainer whose
    networks, batches and losses are all float64: two computations that should
    agree then differ by ~1e-13 of their size, not by float32's rounding, which
    sums reduced in another order (another CPU's kernels, another process count)
    amplify to 1e-3 of the largest gradient where terms cancel.
    """
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def amp_dtype(device: torch.device | str, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype of mixed precision on ``device``; None for none (the CPU, or ``enabled`` off).

    ``torch.bfloat16`` where the card has bf16 natively (compute capability >= 8.0), else
    ``torch.float16`` (with a ``GradScaler``: see :class:`Trainer`). Native means
    ``is_bf16_supported(including_emulation=False)``: the default call also says True on a T4
    (7.5), which only emulates bf16, slower than fp32.
    """
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        return None
    native = (torch.cuda.get_device_capability(device) >= (8, 0)
              or torch.cuda.is_bf16_supported(including_emulation=False))
    return torch.bfloat16 if native else torch.float16


#: ``Trainer.precision`` by autocast dtype, or by the networks' dtype without autocast.
PRECISION_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.float64: "fp64"}


class Trainer:
    """The networks, optimisers and loss of one run, and one training step.

    Precision: on CUDA with ``cfg.amp`` (the default) bf16 autocast where the card has bf16
    natively (compute capability >= 8.0), else fp16 autocast with gradient scaling
    (T4, V100); on the CPU, or with ``cfg.amp`` off, the networks' dtype (float32, or
    float64 under :func:`default_dtype`) throughout. See the module docstring.

    Args:
        cfg: the run's config.
        device: where to train.
        dist_info: this process's rank and world size; with more than one process
            G and D train inside DistributedDataParallel with synchronised BN
            (see :mod:`srgan_lib.distributed`).

    Attributes:
        generator, discriminator: the networks (``models.Generator`` / ``Discriminator``),
            unwrapped: what checkpoints store and validation runs.
        g_net, d_net: the same networks as trained (DDP-wrapped when distributed).
        loss: ``losses.GeneratorLoss`` with the config's weights.
        opt_g, opt_d: Adam optimisers; ``opt_phase`` says which phase ``opt_g``'s state belongs to.
        amp_dtype: the autocast dtype (:func:`amp_dtype`), None without autocast.
        precision: ``"bf16"``, ``"fp16"``, or without autocast ``"fp32"`` / ``"fp64"`` (the networks' dtype).
        scaler_g, scaler_d: ``torch.amp.GradScaler`` of each network's updates, enabled only for fp16
            (disabled, each is a pass-through: ``scale(loss)`` is ``loss``, ``step(opt)`` is ``opt.step()``).
    """

    def __init__(self, cfg: config.TrainConfig, device: torch.device | str = "cpu",
                 dist_info: distributed.DistInfo = distributed.SINGLE):
        self.cfg, self.device, self.dist = cfg, torch.device(device), dist_info
        cuda = self.device.type == "cuda"
        self.amp_dtype = amp_dtype(self.device, cfg.amp)
        self.dtype = torch.get_default_dtype()  # of the networks and of every batch (float32 unless a test says)
        computed = self.amp_dtype if self.amp_dtype is not None else self.dtype
        self.precision = PRECISION_NAMES.get(computed, str(computed))
        # fp16's largest value is 65504 and its smallest normal 6e-5: small gradients underflow to 0 unless
        # the loss is scaled up first (and the scale lowered after an overflow); one scaler per network, so
        # that an overflow in D's update does not shrink G's scale
        fp16 = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.memory_format = torch.channels_last if cuda and cfg.channels_last else torch.contiguous_format
        self.generator = models.Generator(cfg.scale, cfg.num_feat, cfg.num_block, cfg.upsample_skip, icnr=cfg.icnr)
        self.discriminator = models.Discriminator(cfg.d_num_feat, cfg.d_fc)
        self.loss = losses.GeneratorLoss.from_config(cfg)
        for net in (self.generator, self.discriminator, self.loss):
            net.to(self.device, memory_format=self.memory_format)
        self.g_net = distributed.wrap(self.generator, dist_info, self.device)
        self.d_net = distributed.wrap(self.discriminator, dist_info, self.device)
        self.opt_phase = self.phase_at(0)
        self.opt_g = self._adam_g(self.opt_phase)
        self.opt_d = self._adam(self.discriminator, cfg.lr)

    def phase_at(self, step: int) -> str:
        """``"mse"`` during the warm-up (steps ``0 .. warmup_iters - 1``), else ``"gan"``."""
        return "mse" if step < self.cfg.warmup_iters else "gan"

    def _adam_g(self, phase: str) -> torch.optim.Adam:
        return self._adam(self.generator, self.cfg.warmup_lr if phase == "mse" else self.cfg.lr)

    def _adam(self, net: torch.nn.Module, lr: float) -> torch.optim.Adam:
        # on CUDA the fused kernel: a few launches a step instead of dozens (the small-crop steps are
        # limited by the host launching kernels); the same update up to float rounding
        return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(self.cfg.betas),
                                fused=self.device.type == "cuda")

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @staticmethod
    def _update(scaler: torch.amp.GradScaler, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Backward and step (the gradients unscaled first; a step with inf/NaN gradients skipped, fp16)."""
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def _full(self, x: torch.Tensor) -> torch.Tensor:
        """An autocast (bf16/fp16) output back in the networks' dtype; anything else unchanged."""
        return x.to(self.dtype)

    def prepare(self, lr_img: torch.Tensor, hr_img: torch.Tensor):
        """Move a batch to the device in the networks' dtype and memory format."""
        return (lr_img.to(self.device, self.dtype, memory_format=self.memory_format),
                hr_img.to(self.device, self.dtype, memory_format=self.memory_format))

    def step(self, lr_img: torch.Tensor, hr_img: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """One iteration at (0-based) ``step``; returns the detached terms of this phase."""
        phase = self.phase_at(step)
        if phase != self.opt_phase:  # warm-up over: the GAN phase starts with a fresh Adam
            self.opt_g, self.opt_phase = self._adam_g(phase), phase
        lr_img, hr_img = self.prepare(lr_img, hr_img)
        if phase == "mse":
            return self.mse_step(lr_img, hr_img)
        with self._autocast():
            sr = self.g_net(lr_img)
        terms = self.d_step(sr.detach(), hr_img)
        terms.update(self.g_step(sr, hr_img))
        return terms

    def mse_step(self, lr_img, hr_img) -> dict[str, torch.Tensor]:
        """Warm-up: G minimises the pixel MSE, eq. (4), alone."""
        with self._autocast():
            g_pixel = losses.pixel_loss(self._full(self.g_net(lr_img)), hr_img)
        self._update(self.scaler_g, self.opt_g, g_pixel)
        g_pixel = g_pixel.detach()
        return {"g_pixel": g_pixel, "g_total": g_pixel}

    def d_step(self, sr_detached: torch.Tensor, hr_img: torch.Tensor) -> dict[str, torch.Tensor]:
        """D minimises eq. (8) on HR crops vs detached SR images; returns d_* terms and D(x), D(G(z))."""
        with self._autocast():
            real = self._full(self.d_net(hr_img))
            fake = self._full(self.d_net(sr_detached))
        terms = losses.discriminator_loss(real, fake)
        self._update(self.scaler_d, self.opt_d, terms["d_total"])
        out = {k: v.detach() for k, v in terms.items()}
        out["d_x"] = torch.sigmoid(real.detach()).mean()
        out["d_g_z"] = torch.sigmoid(fake.detach()).mean()
        return out

    def g_step(self, sr: torch.Tensor, hr_img: torch.Tensor) -> dict[str, torch.Tensor]:
        """G minimises eq. (1) + TV; D is frozen so the adversarial gradient only flows *through* it.

        D runs unwrapped here: its parameters get no gradient, so there is nothing for DDP to reduce.
        """
        with models.frozen(self.discriminator), self._autocast():
            fake = self._full(self.discriminator(sr))
            terms = self.loss(self._full(sr), hr_img, fake)
        self._update(self.scaler_g, self.opt_g, terms["g_total"])
        return {k: self._full(v.detach()) for k, v in terms.items()}

    def state_dict(self) -> dict:
        """Networks, optimisers and gradient scalers (``{}`` for a disabled scaler: not fp16)."""
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "opt_phase": self.opt_phase,
                "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; a scaler keeps its fresh state when the checkpoint has none
        (written before scalers, or by a bf16/fp32 run now resumed in fp16)."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if state["opt_phase"] != self.opt_phase:
            self.opt_g, self.opt_phase = self._adam_g(state["opt_phase"]), state["opt_phase"]
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for key, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if state.get(key):  # an enabled scaler refuses an empty state; a disabled one ignores any
                scaler.load_state_dict(state[key])
