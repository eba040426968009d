"""The runs an experiment consists of: the ablation grid, the MSE-only control, the TV study, shared warm-ups.

Every run is one :class:`~srgan_lib.config.TrainConfig` and one folder named by
:func:`run_name`. :func:`plan` lists, for a profile and its seeds:

* ``grid`` -- the paper's Tables 1-2: scale x crop x TV on/off x seed;
* ``control`` -- per scale and seed, an SRResNet trained on the pixel MSE alone for
  as many iterations as an SRGAN cell (crop :attr:`Profile.study_crop`): what the
  GAN terms cost in PSNR/SSIM;
* ``tv_study`` -- per scale and seed, the TV weight swept over ``profile.tv_weights``
  at crop ``study_crop`` (weight 0 and the default weight are grid cells already);
* ``warmup`` -- when the profile has an MSE warm-up, one per (scale, crop, seed): the
  warm-up does not depend on the TV term, so every run of that (scale, crop, seed)
  continues from its checkpoint instead of repeating it (``start_from``). The
  continued run is the run trained from scratch: same initialisation, same batches,
  same optimiser state (``tests/test_train.py`` checks it).

Cells that differ only in TV share everything else for the same seed, so their
comparison is paired (:mod:`srgan_lib.stats`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .config import PROFILES, Profile, TrainConfig

KINDS = ("warmup", "grid", "control", "tv_study")  #: the kinds of run, in training order
DEFAULT_TV_WEIGHT = TrainConfig.tv_weight  #: runs at another TV weight carry it in their name


def run_name(cfg: TrainConfig) -> str:
    """The run's folder name, BasicSR style.

    ``srgan_x4_c88_tv1_s0`` (a grid cell), ``srgan_x4_c88_tv1_w0.01_s0`` (a TV weight other
    than the default), ``srresnet_x4_c88_it210_s0`` (pixel MSE only, ``gan_iters == 0``),
    ``srgan_x4_c88_tv1_s0_bsds200`` (trained on a dataset other than its profile's, by name).
    """
    default = PROFILES[cfg.profile].base.train_data if cfg.profile in PROFILES else cfg.train_data
    data = f"_{cfg.train_data}" if cfg.train_data != default and re.fullmatch(r"[\w+-]+", cfg.train_data) else ""
    if cfg.gan_iters == 0:
        return f"srresnet_x{cfg.scale}_c{cfg.crop_size}_it{cfg.warmup_iters}_s{cfg.seed}{data}"
    weight = f"_w{cfg.tv_weight:g}" if cfg.use_tv and cfg.tv_weight != DEFAULT_TV_WEIGHT else ""
    return f"srgan_x{cfg.scale}_c{cfg.crop_size}_tv{int(cfg.use_tv)}{weight}_s{cfg.seed}{data}"


def ablation_grid(profile: Profile, seeds: tuple[int, ...] | None = None) -> list[TrainConfig]:
    """Every cell of scale x crop x TV x seed for ``profile``, in a fixed order."""
    seeds = profile.seeds if seeds is None else tuple(seeds)
    return [profile.config(scale=s, crop_size=c, use_tv=tv, seed=seed)
            for s in profile.scales for c in profile.crop_sizes for tv in (True, False) for seed in seeds]


def mse_only(cfg: TrainConfig, iters: int) -> TrainConfig:
    """``cfg`` as an SRResNet run: ``iters`` iterations of the pixel MSE alone (the GAN fields set to
    their defaults, which an MSE-only run never reads, so that one such run has one config)."""
    return dataclasses.replace(cfg, use_tv=False, tv_weight=DEFAULT_TV_WEIGHT, warmup_iters=iters, gan_iters=0)


def control_config(cfg: TrainConfig) -> TrainConfig:
    """The MSE-only control of ``cfg``: pixel loss alone for ``cfg.total_iters`` iterations, same seed."""
    return mse_only(cfg, cfg.total_iters)


def warmup_config(cfg: TrainConfig) -> TrainConfig | None:
    """The MSE warm-up ``cfg`` starts with, as a run of its own (None without a warm-up)."""
    return mse_only(cfg, cfg.warmup_iters) if cfg.warmup_iters > 0 and cfg.gan_iters > 0 else None


def tv_config(profile: Profile, scale: int, seed: int, weight: float) -> TrainConfig:
    """The TV study's run at ``weight``: weight 0 is the grid's "without TV" cell, the default its TV cell."""
    if weight == 0:
        return profile.config(scale=scale, crop_size=profile.study_crop, use_tv=False, seed=seed)
    return profile.config(scale=scale, crop_size=profile.study_crop, use_tv=True, seed=seed, tv_weight=weight)


def demo_config(profile: Profile) -> TrainConfig:
    """Notebook 04's demonstration of the adversary: x4, crop ``study_crop``, the first seed, ICNR, and a GAN
    phase of ``profile.demo_gan_iters`` (the grid keeps its short one, which cannot change the texture)."""
    return profile.config(scale=4, crop_size=profile.study_crop, seed=profile.seeds[0], icnr=True,
                          gan_iters=profile.demo_gan_iters or profile.base.gan_iters,
                          warmup_iters=profile.demo_warmup_iters or profile.base.warmup_iters)


@dataclass(frozen=True)
class Run:
    """One run of an experiment.

    Attributes:
        kind: one of :data:`KINDS`.
        cfg: its config.
        start_from: the name of the warm-up run whose checkpoint it continues (None: from scratch).
        start_step: the iterations that warm-up already did (0 from scratch).
    """

    kind: str
    cfg: TrainConfig
    start_from: str | None = None
    start_step: int = 0

    @property
    def name(self) -> str:
        return run_name(self.cfg)


def plan(profile: Profile, seeds: tuple[int, ...] | None = None, kinds=KINDS) -> list[Run]:
    """Every run of ``profile``'s experiments, each once, warm-ups before the runs continuing them.

    Args:
        profile: the profile.
        seeds: default ``profile.seeds``.
        kinds: which experiments (``warmup`` runs come with any run that needs one).
    """
    seeds = profile.seeds if seeds is None else tuple(seeds)
    wanted: list[tuple[str, TrainConfig]] = []
    if "grid" in kinds:
        wanted += [("grid", cfg) for cfg in ablation_grid(profile, seeds)]
    for scale in profile.scales:
        for seed in seeds:
            cell = profile.config(scale=scale, crop_size=profile.study_crop, seed=seed)
            if "control" in kinds:
                wanted.append(("control", control_config(cell)))
            if "tv_study" in kinds:
                wanted += [("tv_study", tv_config(profile, scale, seed, w)) for w in profile.tv_weights]
    runs: dict[str, Run] = {}
    for kind, cfg in wanted:
        # the control continues the warm-up of the SRGAN cell it controls (it has none of its own)
        warm = warmup_config(profile.config(scale=cfg.scale, crop_size=cfg.crop_size, seed=cfg.seed))
        if warm is not None and run_name(warm) not in runs:
            runs[run_name(warm)] = Run("warmup", warm)
        if run_name(cfg) not in runs:
            runs[run_name(cfg)] = (Run(kind, cfg, run_name(warm), warm.warmup_iters) if warm is not None
                                   else Run(kind, cfg))
    return sorted(runs.values(), key=lambda r: KINDS.index(r.kind) if r.kind == "warmup" else 1)
