"""Screen GAN-phase variants of the quick profile's x4 cell for texture without stripes (issue 14).

One candidate = the quick x4 cell (crop 88, TV on, ICNR, 120 MSE warm-up iterations, validation off)
with ``--overrides`` (``TrainConfig`` fields, JSON) and ``--patches`` (changes that are NOT library
options; they are patched into ``srgan_lib`` classes in this process only, to learn whether they would
be worth making options):

* ``blur`` -- a 2 x 2 box filter after each ``PixelShuffle`` (replicate pad, ``avg_pool2d(2, stride=1)``;
  Sugawara et al. 2019, fastai's ``PixelShuffle_ICNR(blur=True)``): a zero response at the shuffle's period.
* ``shift`` -- D sees its inputs translated by a random -4..4 pixels (reflect padding; DiffAugment's
  translation, Zhao et al. 2020), so that the period of D's strides is not locked to G's sub-pixel grid.
* ``ema<beta>`` -- an exponential moving average of G's weights over the GAN phase (Yazici et al. 2019),
  scored beside the raw G (rows with a negative iteration count in the JSON lines, ``EMA`` in the table).
* ``r1<gamma>`` -- the R1 penalty ``gamma / 2 * |grad_x D(x)|^2`` on real crops (Mescheder et al. 2018).
* ``sn`` -- spectral normalisation of every conv and dense layer of D, its batch norms removed (Miyato et al. 2018).
* ``dlr<k>`` -- D's learning rate ``k`` times G's.

Per seed, the warm-up is trained once per architecture (``<out>/warm_s<seed>_...``) and continued by each
candidate (``srgan_lib.train.train(..., start_from=...)``); G is snapshotted at every checkpoint
(``--every`` iterations, counted from the start of the warm-up), and the warm-up's G and every snapshot are
scored on Set5 x4 under the standard protocol (``srgan_lib.evaluate.evaluate_images``: PSNR, ``texture``,
``artifact``). A snapshot after k GAN iterations is the run with ``gan_iters=k``: no schedule depends on
``gan_iters``. Each candidate appends one JSON line to ``<out>/results.jsonl``; ``--table`` prints them as
the Markdown table of ``docs/benchmarks.md`` ("Texture and the GAN phase", second screen).

Usage (one thread per process; two candidates at once on a 2-core machine)::

    .venv/bin/python benchmarks/gan_screen.py --name ema_bsd --patches blur shift ema0.98 \\
        --overrides '{"adv_weight": 0.003}' --iters 300 [--seeds 0 1 2] [--out /tmp/gan_screen]
    .venv/bin/python benchmarks/gan_screen.py --table [--out /tmp/gan_screen]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/quality.py

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from srgan_lib import config, grid, losses, models  # noqa: E402
from srgan_lib import trainer as trainer_mod  # noqa: E402
from srgan_lib.evaluate import evaluate_images  # noqa: E402
from srgan_lib.train import train  # noqa: E402
from srgan_lib.upscale import upscale  # noqa: E402

SET5 = ROOT / "data" / "Set5" / "HR"
ON: dict = {}  # the active patches' parameters, set by patch()

_up_forward = models.UpsampleBlock.forward
_d_forward = models.Discriminator.forward
_d_init = models.Discriminator.__init__
_t_init = trainer_mod.Trainer.__init__
_t_step = trainer_mod.Trainer.step
_t_d_step = trainer_mod.Trainer.d_step


def _blurred_upsample(self, x):
    y = self.shuffle(self.conv(x))
    return self.act(F.avg_pool2d(F.pad(y, (1, 0, 1, 0), mode="replicate"), 2, stride=1))


def _d_forward_shifted(self, img):
    if "shift" in ON and self.training:
        r, (h, w) = 4, img.shape[2:]
        dy, dx = (int(v) for v in torch.randint(-r, r + 1, (2,)))
        img = F.pad(img, (r, r, r, r), mode="reflect")[:, :, r + dy: r + dy + h, r + dx: r + dx + w]
    return _d_forward(self, img)


def _d_init_sn(self, *args, **kwargs):
    _d_init(self, *args, **kwargs)
    if "sn" not in ON:
        return

    def convert(module):
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, nn.Identity())
            elif isinstance(child, (nn.Conv2d, nn.Linear)):
                setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
            else:
                convert(child)
    convert(self)


def _t_init_dlr(self, cfg, *args, **kwargs):
    _t_init(self, cfg, *args, **kwargs)
    self._ema = None
    ON["trainer"] = self
    if "dlr" in ON:
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr * ON["dlr"], betas=tuple(cfg.betas))


def _t_step_ema(self, lr_img, hr_img, step):
    out = _t_step(self, lr_img, hr_img, step)
    if "ema" in ON and self.phase_at(step) == "gan":
        if self._ema is None:
            self._ema = copy.deepcopy(self.generator)
        with torch.no_grad():
            for e, p in zip(self._ema.state_dict().values(), self.generator.state_dict().values()):
                if e.dtype.is_floating_point:
                    e.mul_(ON["ema"]).add_(p, alpha=1 - ON["ema"])
                else:
                    e.copy_(p)
    return out


def _t_d_step_r1(self, sr_detached, hr_img):
    if "r1" not in ON:
        return _t_d_step(self, sr_detached, hr_img)
    hr = hr_img.detach().requires_grad_(True)
    real, fake = self.d_net(hr), self.d_net(sr_detached)
    terms = losses.discriminator_loss(real, fake)
    (grad,) = torch.autograd.grad(real.sum(), hr, create_graph=True)
    penalty = grad.pow(2).flatten(1).sum(1).mean() * ON["r1"] / 2
    self._update(self.scaler_d, self.opt_d, terms["d_total"] + penalty)
    out = {k: v.detach() for k, v in terms.items()}
    out["d_x"], out["d_g_z"] = torch.sigmoid(real.detach()).mean(), torch.sigmoid(fake.detach()).mean()
    return out


def patch(patches: list[str]) -> None:
    """Switch the named patches on (and every other off) for the runs that follow."""
    ON.clear()
    for p in patches:
        for key in ("ema", "r1", "dlr"):
            if p.startswith(key) and p != key:
                ON[key] = float(p[len(key):])
                break
        else:
            if p not in ("blur", "shift", "sn"):
                raise SystemExit(f"--patches: unknown {p!r} (blur, shift, sn, ema<beta>, r1<gamma>, dlr<k>)")
            ON[p] = True
    models.UpsampleBlock.forward = _blurred_upsample if "blur" in ON else _up_forward
    models.Discriminator.forward = _d_forward_shifted
    models.Discriminator.__init__ = _d_init_sn
    trainer_mod.Trainer.__init__ = _t_init_dlr
    trainer_mod.Trainer.step = _t_step_ema
    trainer_mod.Trainer.d_step = _t_d_step_r1


def score(generator) -> dict:
    generator.eval()
    with torch.no_grad():
        result = evaluate_images(SET5, 4, "standard", upscale_fn=lambda lr: upscale(generator, lr, tile=256))
    return {k: result.values[k] for k in ("psnr", "texture", "artifact")}


def run(name: str, seed: int, overrides: dict, patches: list[str], iters: int, every: int, out: Path) -> dict:
    cfg = config.get_profile("quick").config(scale=4, crop_size=88, seed=seed, icnr=True, warmup_iters=120,
                                             val_every=0, ckpt_every=every, gan_iters=iters, **overrides)
    patch(patches)
    warm_cfg = grid.warmup_config(cfg)
    arch = "_".join(p for p in ("blur", "sn") if p in ON) or "plain"
    warm = out / f"warm_s{seed}_{arch}_{hashlib.md5(warm_cfg.to_json().encode()).hexdigest()[:6]}"
    train(warm_cfg, warm, progress=False)
    net = models.Generator(4, cfg.num_feat, cfg.num_block, cfg.upsample_skip, icnr=True)
    net.load_state_dict(torch.load(warm / "generator.pt", map_location="cpu")["generator"])
    rows = [{"it": 0, **score(net)}]
    snaps: dict[int, dict] = {}

    def keep(step, generator):
        snaps[step] = {k: v.detach().clone() for k, v in generator.state_dict().items()}
        ema = getattr(ON.get("trainer"), "_ema", None)
        if ema is not None:
            snaps[-step] = {k: v.detach().clone() for k, v in ema.state_dict().items()}

    start = time.perf_counter()
    train(cfg, out / f"{name}_s{seed}", progress=False, on_checkpoint=keep, start_from=warm)
    seconds = time.perf_counter() - start
    for step in sorted(snaps, key=lambda k: (abs(k), k < 0)):
        net.load_state_dict(snaps[step])
        sign = 1 if step > 0 else -1
        rows.append({"it": sign * (abs(step) - cfg.warmup_iters), **score(net)})
    record = {"name": name, "seed": seed, "overrides": overrides, "patches": patches, "gan_s": round(seconds),
              "rows": rows}
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def _label(p: str) -> str:
    for key, text in (("ema", "EMA beta "), ("r1", "R1 gamma "), ("dlr", "D lr x")):
        if p.startswith(key) and p != key:
            return text + p[len(key):]
    return p


def table(out: Path) -> str:
    lines = ["| candidate | seed | GAN it | G | texture | Δ texture | artifact | GAN - MSE PSNR (dB) |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for line in open(out / "results.jsonl"):
        r = json.loads(line)
        what = " + ".join([_label(p) for p in r["patches"]] + [f"{k}={v}" for k, v in r["overrides"].items()])
        mse = r["rows"][0]
        lines.append(f"| {r['name']}: {what or 'as the quick x4 cell'} | {r['seed']} | 0 | MSE warm-up | {mse['texture']:.3f} | | "
                     f"{mse['artifact']:.2f} | |")
        for row in r["rows"][1:]:
            lines.append(f"| | | {abs(row['it'])} | {'EMA' if row['it'] < 0 else 'raw'} | {row['texture']:.3f} | "
                         f"{row['texture'] - mse['texture']:+.3f} | {row['artifact']:.2f} | "
                         f"{row['psnr'] - mse['psnr']:+.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name")
    parser.add_argument("--patches", nargs="*", default=[])
    parser.add_argument("--overrides", default="{}", help="TrainConfig fields as JSON")
    parser.add_argument("--iters", type=int, default=300, help="GAN iterations")
    parser.add_argument("--every", type=int, default=50, help="snapshot every N iterations (from the warm-up's start)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gan_screen"))
    parser.add_argument("--table", action="store_true", help="print the results as Markdown and stop")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.out))
        return 0
    if not args.name:
        parser.error("--name is required (or --table)")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        record = run(args.name, seed, json.loads(args.overrides), args.patches, args.iters, args.every, args.out)
        for row in record["rows"]:
            print(f"{args.name} seed {seed} it {row['it']}: psnr={row['psnr']:.2f} texture={row['texture']:.3f} "
                  f"artifact={row['artifact']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
