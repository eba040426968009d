"""Profiles, run configurations and seeding.

Three profiles (``SRGAN_PROFILE``, :func:`get_profile`) fit the same notebooks to three machines:
``smoke`` (CI: tiny networks, seconds), ``quick`` (a CPU laptop: small networks on real photographs,
minutes) and ``paper`` (a GPU with DIV2K, as the paper did). A run is one frozen :class:`TrainConfig`
(variants by :func:`dataclasses.replace`), saved as JSON beside its checkpoints. Each default names its
source: **paper** -- "Upscaling using SRGAN", sec. 4 (Adam lr 1e-3, betas 0.9/0.999; crops 88/128/168;
scales 2, 4; eqs. (1)-(7)); **ref** -- the code the paper was built on (leftthomas/SRGAN): where the paper
is silent, 100 epochs of one crop per DIV2K image at batch 64 (1,300 iterations), TV weight 2e-8 on a TV
twice ours, 0.006 on the feature distance, no MSE pre-training; **ledig** -- Ledig et al. 2017: 16
residual blocks, 64 features, VGG19 phi_5,4, adversarial weight 1e-3; **basicsr** -- MATLAB-compatible
bicubic LR images. ``notebooks/04_training.ipynb`` shows how the pieces fit; ``docs/references.md`` cites them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .overrides import apply_overrides

#: The repository root (the folder holding ``srgan_lib/``); outputs default to
#: folders under it so that notebooks (run from ``notebooks/``) and the CLI agree.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# --- the options a run can take: each list is named here once; checks, the CLI's choices and docs read it
SCALES = (2, 4)  #: the paper's grid
SUPPORTED_SCALES = (2, 4, 8)  #: what the generator can do (one sub-pixel block per factor 2)
CROP_SIZES = (88, 128, 168)  #: the paper's grid
RESIZE_METHODS = ("matlab", "pil", "torch", "torch_aa")  #: see srgan_lib.resize
UPSAMPLE_SKIPS = ("none", "bicubic")  #: the generator's global skip (see srgan_lib.models)
VGG_WEIGHTS = ("imagenet", "auto", "random")  #: see srgan_lib.vgg
DEVICES = ("auto", "cpu", "cuda")
TILE = 256  #: default tile side (LR pixels) for inference: bounds memory, same result (srgan_lib.upscale)
#: Fields of older versions' configs, ignored when one is read (``num_workers``: batches are made in-process).
REMOVED_KEYS = frozenset({"num_workers"})
RENAMED_KEYS = {"amp_bf16": "amp"}  #: old name -> new name, applied when a config is read


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (one cell of the ablation grid).

    Attributes are grouped as in the paper; the comment after each default names
    its source (see the module docstring). ``use_tv=False`` switches the TV term
    off whatever ``tv_weight`` says (the "without tv loss" rows of Tables 1-2).
    """

    # --- the ablation axes (paper, Tables 1 and 2)
    scale: int = 4  # paper: x2 and x4
    crop_size: int = 88  # paper: 88, 128, 168 (ref default 88)
    use_tv: bool = True  # paper: with and without the TV term
    seed: int = 0
    profile: str = "paper"

    # --- generator and discriminator (paper sec. 3.1 / ledig)
    num_feat: int = 64  # ledig
    num_block: int = 16  # ledig (ref uses 5)
    d_num_feat: int = 64  # ledig / Radford: 64 -> 512 channels
    d_fc: int = 1024  # ledig: dense 1024
    upsample_skip: str = "none"  # "none" = the paper's network; "bicubic" = VDSR-style global residual
    icnr: bool = False  # ICNR init of the sub-pixel convolutions (Aitken et al. 2017); the paper: default init

    # --- data (paper sec. 4, 4.1)
    train_data: str = "div2k"  # a name in srgan_lib.datasets.DATASETS or a folder of HR images
    val_data: str = "div2k"  # the same; a dataset's validation split
    val_limit: int | None = None  # None = every validation image
    val_max_side: int | None = None  # centre-crop validation images to at most this (smoke)
    resize_method: str = "matlab"  # basicsr (ref uses PIL: pass "pil" to mimic it)
    augment: bool = True  # flips and 90-degree rotations
    batch_size: int = 64  # ref

    # --- schedule (paper sec. 4 / ref)
    warmup_iters: int = 0  # MSE pre-training of G (SRResNet); ref and paper: none
    gan_iters: int = 1300  # ref: 100 epochs x ceil(800 / 64) iterations
    lr: float = 1e-3  # paper
    betas: tuple[float, float] = (0.9, 0.999)  # paper
    warmup_lr: float = 1e-3

    # --- loss weights (paper eqs. (1)-(7))
    pixel_weight: float = 1.0  # paper eq. (3): content = MSE + VGG
    content_weight: float = 0.006  # ref: ~(1/12.75)^2, ledig's feature rescaling
    adv_weight: float = 1e-3  # paper eq. (1)
    tv_weight: float = 4e-8  # ref: 2e-8 on a TV twice ours (its factor 2), i.e. ref's strength (docs/references.md)
    vgg_layer: str = "conv5_4"  # ledig phi_5,4
    vgg_weights: str = "imagenet"  # "imagenet" (stop if missing), "auto" (warn, fall back to random), "random"

    # --- logging, validation, checkpoints
    log_every: int = 10
    val_every: int = 100
    val_images: int = 5
    ckpt_every: int = 100

    # --- hardware
    device: str = "auto"  # "auto", "cpu" or "cuda"
    amp: bool = True  # CUDA only: mixed precision, bf16 or fp16 by the card (srgan_lib.trainer.amp_dtype)
    channels_last: bool = True  # CUDA only
    deterministic: bool = True

    def __post_init__(self) -> None:
        if self.scale not in SUPPORTED_SCALES:
            raise ConfigError(f"scale={self.scale}: use one of {SUPPORTED_SCALES}")
        if self.crop_size <= 0 or self.crop_size % self.scale:
            raise ConfigError(f"crop_size={self.crop_size} is not divisible by scale={self.scale}: "
                              f"choose a crop that is a multiple of {self.scale}")
        for name, allowed in (("upsample_skip", UPSAMPLE_SKIPS), ("vgg_weights", VGG_WEIGHTS),
                              ("resize_method", RESIZE_METHODS), ("device", DEVICES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r}: use one of {', '.join(allowed)}")
        if self.batch_size < 1 or self.gan_iters < 0 or self.warmup_iters < 0:
            raise ConfigError("batch_size must be >= 1 and iteration counts >= 0")

    @property
    def effective_tv_weight(self) -> float:
        """The TV weight actually applied (0 when ``use_tv`` is off)."""
        return self.tv_weight if self.use_tv else 0.0

    @property
    def total_iters(self) -> int:
        return self.warmup_iters + self.gan_iters

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {RENAMED_KEYS.get(k, k): v for k, v in d.items() if k not in REMOVED_KEYS}  # older config.json files
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}: the config was written by another version")
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass(frozen=True)
class Profile:
    """A named bundle of defaults: which data, how big the networks, how long.

    Attributes:
        name: ``smoke``, ``quick`` or ``paper``.
        description: one line for notebooks and logs.
        base: the :class:`TrainConfig` every run of this profile starts from.
        scales, crop_sizes: the ablation axes this profile runs.
        seeds: the seeds every cell runs with (3: seed-to-seed noise is measured; srgan_lib.stats).
        tv_weights: the TV study's weights (0, ref's strength, then decades up to the paper's literal 1).
        study_crop: the crop size of the TV study and of the MSE-only control.
        workers: runs trained at once on the CPU, each in one thread (0: one per core); on a GPU one.
        demo_gan_iters, demo_warmup_iters: iterations of notebook 04's demonstration of the adversary (0: the grid's).
        train_download: ``(dataset, its folder in the data root)``: once installed (``srgan reproduce`` tries),
            :func:`get_profile` trains on it, not on ``base.train_data`` (:func:`srgan_lib.reproduce.choose_train_data`).
    """

    name: str
    description: str
    base: TrainConfig
    scales: tuple[int, ...] = SCALES
    crop_sizes: tuple[int, ...] = CROP_SIZES
    seeds: tuple[int, ...] = (0, 1, 2)
    tv_weights: tuple[float, ...] = (0.0, 4e-8, 1e-6, 1e-4, 1e-2, 1.0)
    study_crop: int = 88
    workers: int = 1
    demo_gan_iters: int = 0
    demo_warmup_iters: int = 0
    train_download: tuple[str, ...] = ()

    def config(self, scale: int = 4, crop_size: int = 88, use_tv: bool = True, seed: int = 0,
               **overrides) -> TrainConfig:
        """A run's config: this profile's defaults with the given axes and overrides."""
        try:
            return dataclasses.replace(self.base, scale=scale, crop_size=crop_size, use_tv=use_tv,
                                       seed=seed, **overrides)
        except TypeError as exc:  # an unknown keyword
            raise ConfigError(f"{exc}: see srgan_lib.config.TrainConfig for the fields") from None


_PAPER = TrainConfig(profile="paper")

_QUICK = dataclasses.replace(
    _PAPER,
    profile="quick",
    # Sized by measurement (issue 8, docs/benchmarks.md "Quality (quick profile)"): with the bicubic skip,
    # 16 features learned faster than 32 (Set5 x4 after 100 MSE iterations at batch 4: +0.58 vs +0.20 dB)
    # at a third of the cost, and the 12-run grid must fit in `make reproduce` (<= 15 min on 2 cores).
    num_feat=16,
    num_block=4,
    d_num_feat=16,
    d_fc=128,
    upsample_skip="bicubic",  # see notebook 02: a small network beats bicubic within minutes only with it
    train_data="samples",
    val_data="set5+set14",  # 19 images: enough for paired comparisons (srgan_lib.stats)
    val_limit=None,
    batch_size=4,  # per unit of compute, batch 4 learned faster than 8 or 16 here (measured, issue 8)
    # MSE warm-up so that the GAN starts from a generator that beats bicubic; 80 iterations so that the whole
    # experiment (3 seeds x 12 cells, control, TV study: 18 shared warm-ups) fits `make reproduce` (docs/benchmarks.md)
    warmup_iters=80,
    gan_iters=10,  # a token GAN phase: its iterations cost ~4x a warm-up one (VGG + D); budget above
    lr=1e-4,  # ledig: the GAN phase after SRResNet at 1e-4; at 1e-3 ten fresh-Adam steps cost x2 0.6 dB (measured)
    vgg_layer="conv2_2",  # ledig's VGG22: far cheaper than conv5_4 on a CPU
    vgg_weights="auto",
    log_every=2,
    val_every=0,  # validated at the end of each run only: the experiments score every run afterwards anyway
    val_images=1,
    ckpt_every=40,
)

_SMOKE = dataclasses.replace(  # seconds per notebook: tiny networks, 3 iterations, 2 small validation crops
    _QUICK, profile="smoke", num_feat=8, num_block=1, d_num_feat=8, d_fc=16, val_limit=2, val_max_side=96,
    batch_size=2, warmup_iters=1, gan_iters=2, vgg_weights="random", log_every=1, val_every=2, val_images=1,
    ckpt_every=2,
)

PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "CI smoke test: tiny networks, 3 iterations, two small images", _SMOKE,
                     crop_sizes=(88, 128), seeds=(0, 1), tv_weights=(0.0, 4e-8, 1.0)),
    # two single-thread runs at once: 1.3x (MSE), 1.5x (GAN) the steps/s of one 2-thread run (benchmarks/workers.py)
    # a GAN phase long enough to change the texture, measured: docs/benchmarks.md, "Texture and the GAN phase"
    "quick": Profile("quick", "CPU laptop: small networks on real photographs (BSDS200 once downloaded, else the "
                              "embedded samples), minutes", _QUICK,
                     workers=0, demo_gan_iters=130, demo_warmup_iters=120,
                     train_download=("bsds200", "BSDS200")),  # BSDS300's 200 training images, when installed
    "paper": Profile("paper", "GPU + DIV2K, as the paper did", _PAPER),
}
PROFILE_NAMES = tuple(PROFILES)


def default_profile_name() -> str:
    """``$SRGAN_PROFILE`` if set, else ``paper`` when CUDA is available, else ``quick``."""
    name = os.environ.get("SRGAN_PROFILE", "").strip().lower()
    if name:
        return name
    import torch  # imported here: reading a profile name should not need torch

    return "paper" if torch.cuda.is_available() else "quick"


def data_root() -> Path:
    """Folder of downloaded and generated data (``$SRGAN_DATA`` or ``<repo>/data``)."""
    return Path(os.environ.get("SRGAN_DATA", PROJECT_ROOT / "data"))


#: The file :mod:`srgan_lib.download` writes into a folder once every image is in place.
INSTALLED_MARKER = ".complete"


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name`` (default: :func:`default_profile_name`), with ``$SRGAN_OVERRIDES`` applied.

    A profile with a larger training set (``Profile.train_download``) trains on it once it is installed.

    Raises:
        ConfigError: for an unknown name or a bad override (see :func:`srgan_lib.overrides.apply_overrides`).
    """
    name = (name or default_profile_name()).strip().lower()
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r} (from SRGAN_PROFILE or --profile): use one of {PROFILE_NAMES}")
    profile = PROFILES[name]
    if profile.train_download and (data_root() / profile.train_download[1] / INSTALLED_MARKER).is_file():
        profile = dataclasses.replace(profile, base=dataclasses.replace(profile.base, train_data=profile.train_download[0]))
    return apply_overrides(profile, os.environ.get("SRGAN_OVERRIDES", ""))


def runs_dir(profile: str) -> Path:
    """Default folder holding the runs of ``profile`` (``<repo>/runs/<profile>``)."""
    return Path(os.environ.get("SRGAN_RUNS", PROJECT_ROOT / "runs")) / profile


def results_dir(profile: str) -> Path:
    """Where tables and figures go: ``<repo>/results`` (``results/smoke`` for CI runs)."""
    root = Path(os.environ.get("SRGAN_RESULTS", PROJECT_ROOT / "results"))
    return root / "smoke" if profile == "smoke" else root


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA): the one place seeds are set.

    With ``deterministic`` cuDNN autotuning is off and deterministic kernels are
    preferred, so that the same seed gives the same numbers on the same machine.
    """
    import numpy as np
    import torch  # deferred: config is read without torch (see default_profile_name)

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
