"""The experiments on a tiny profile: the runs trained (in plan order, continuing the shared warm-ups), finished
runs reused, the time estimate, and the tables run_ablation writes (layout: test_tables.py; scores: test_scoring.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from conftest import noise_folder

from srgan_lib import ablation, config, grid, scoring

SCALES, CROP, SEEDS = (2, 4), 16, (0, 1)


def _snapshot(root) -> dict:
    """Every file under ``root`` with its modification time: any training writes some."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The smoke profile at x2 and x4, one crop (16), seeds 0 and 1, one warm-up + one GAN step, tiny images.

    Returns ``(profile, root, calls)``: the runs trained into ``root/runs`` and the ``train`` calls made.
    """
    root = tmp_path_factory.mktemp("ablation")
    smoke = config.get_profile("smoke")
    base = dataclasses.replace(smoke.base, train_data=str(noise_folder(root / "train", 3, 40, 48, 0)),
                               val_data=str(noise_folder(root / "val", 2, 32, 36, 1)), val_limit=None,
                               val_max_side=None, warmup_iters=1, gan_iters=1, val_images=0, log_every=1,
                               ckpt_every=1, vgg_layer="conv1_2", device="cpu")
    profile = dataclasses.replace(smoke, base=base, scales=SCALES, crop_sizes=(CROP,), seeds=SEEDS, study_crop=CROP,
                                  tv_weights=(0.0, grid.DEFAULT_TV_WEIGHT, 1.0))
    calls = []
    real_train = ablation.train

    def recording_train(cfg, run_dir, start_from=None, **kwargs):
        calls.append((run_dir.name, start_from and start_from.name,
                      start_from is not None and (start_from / "generator.pt").is_file()))
        return real_train(cfg, run_dir, start_from=start_from, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ablation, "train", recording_train)
        out = ablation.train_runs(profile, root=root / "runs", progress=False)
    return profile, root, out, calls


def test_train_runs_trains_every_run_of_the_plan_in_order(tiny):
    profile, root, out, calls = tiny
    runs = grid.plan(profile)
    # per scale: 2 warm-ups (one per seed), 4 grid cells, 2 controls, 2 TV-study runs (weight 1)
    assert len(runs) == 2 * (2 + 4 + 2 + 2)
    assert list(out) == [r.name for r in runs] and [c[0] for c in calls] == [r.name for r in runs]
    for r in runs:
        folder = out[r.name]
        assert folder == root / "runs" / r.name and (folder / "generator.pt").is_file()
        assert config.TrainConfig.from_dict(json.loads((folder / "config.json").read_text())) == r.cfg
    assert ablation.missing(runs, root / "runs") == []


def test_every_run_continues_its_finished_warmup(tiny):
    profile, _, out, calls = tiny
    started = {name: (start, ready) for name, start, ready in calls}
    for r in grid.plan(profile):
        start, ready = started[r.name]
        if r.kind == "warmup":
            assert start is None
            continue
        warm = grid.run_name(grid.warmup_config(profile.config(scale=r.cfg.scale, crop_size=CROP, seed=r.cfg.seed)))
        assert (start, ready) == (warm, True), r.name  # passed to train(), finished beforehand
        # it holds the warm-up's SRResNet as train() copies it when continuing (one of its own records its own config)
        assert (out[r.name] / "warmup_generator.pt").read_bytes() == (out[warm] / "generator.pt").read_bytes()
    control = json.loads((out["srresnet_x4_c16_it2_s1"] / "config.json").read_text())
    assert (control["warmup_iters"], control["gan_iters"]) == (2, 0)  # as many iterations as an SRGAN cell


def test_finished_runs_are_not_trained_again(tiny):
    profile, root, out, _ = tiny
    before = _snapshot(root / "runs")
    assert ablation.train_runs(profile, root=root / "runs", progress=False) == out
    assert _snapshot(root / "runs") == before
    # a missing run is trained, and only it (a TV-off cell: its warm-up is there to continue)
    lost = "srgan_x2_c16_tv0_s1"
    shutil.rmtree(root / "runs" / lost)
    assert [r.name for r in ablation.missing(grid.plan(profile), root / "runs")] == [lost]
    ablation.train_runs(profile, root=root / "runs", progress=False)
    after = _snapshot(root / "runs")
    assert {k: v for k, v in after.items() if not k.startswith(lost)} == {
        k: v for k, v in before.items() if not k.startswith(lost)}
    assert (root / "runs" / lost / "generator.pt").is_file()


def test_missing_means_no_finished_generator(tmp_path):
    cells = grid.plan(config.get_profile("smoke"), seeds=(0,), kinds=("grid",))[-3:]
    (tmp_path / cells[0].name).mkdir()  # an interrupted run: a folder, checkpoints, no generator.pt yet
    (tmp_path / cells[0].name / "last.pt").write_bytes(b"")
    (tmp_path / cells[1].name).mkdir()
    (tmp_path / cells[1].name / "generator.pt").write_bytes(b"")
    assert ablation.missing(cells, tmp_path) == [cells[0], cells[2]]


def test_estimate_counts_each_runs_own_steps(tiny, monkeypatch):
    profile, root, _, _ = tiny
    assert ablation.estimate_seconds([]) == 0.0
    assert ablation.estimate_seconds(ablation.missing(grid.plan(profile), root / "runs")) == 0.0  # all trained
    timed = []

    def fake_seconds(cfg, phase, device):
        timed.append((cfg.scale, cfg.crop_size, phase))
        return {"mse": 1.0, "gan": 10.0}[phase]

    monkeypatch.setattr(ablation, "_seconds_per_step", fake_seconds)
    # per scale: warm-ups 2 x 1 MSE step; grid 4 x 1 GAN step (their warm-up step is the warm-up run's);
    # controls 2 x (2 - 1) MSE steps; TV study 2 x 1 GAN step: 2 + 40 + 2 + 20 = 64 s
    assert ablation.estimate_seconds(grid.plan(profile), "cpu") == 2 * 64.0
    assert sorted(timed) == sorted((s, CROP, p) for s in SCALES for p in ("mse", "gan"))  # each timed once


def test_estimate_times_real_steps_when_runs_are_missing(tiny, tmp_path):
    profile = tiny[0]
    one_scale = dataclasses.replace(profile, scales=(4,), seeds=(0,))
    todo = ablation.missing(grid.plan(one_scale, kinds=("grid",)), tmp_path)
    assert len(todo) == 3 and ablation.estimate_seconds(todo, "cpu") > 0


def test_run_ablation_writes_both_tables_with_differences(tiny):
    profile, root, _, _ = tiny
    trained = {k: v for k, v in _snapshot(root / "runs").items() if not k.endswith(scoring.SCORES)}
    res = ablation.run_ablation(profile, root=root / "runs", results=root / "results", progress=False)
    assert {n for n in res.run_dirs} == {r.name for r in grid.plan(profile) if r.kind in ("grid", "control")}
    assert sorted(res.files) == ["table1_x2.csv", "table1_x2.md", "table2_x4.csv", "table2_x4.md"]
    assert all(p.parent == root / "results" / "tables" for p in res.files.values())
    assert (root / "results" / "eval" / "per_image_standard.csv").is_file()
    for name in ("table1_x2.md", "table2_x4.md"):
        md = res.files[name].read_text()
        for text in ("SRResNet, MSE only, crop 16", "Crop size(16) without tv loss", "Paired difference",
                     "SRGAN (crop 16) - bicubic", "SRGAN - SRResNet (crop 16)", "TV on - off, crop 16",
                     "RANDOM VGG WEIGHTS in every run", "seeds 0, 1"):
            assert text in md, (name, text)
    assert len(res.tables) == 2 * 2  # scales x protocols
    for table in res.tables:
        assert all(d["diff_psnr"].seeds == 2 for d in table.differences)
    # scored (each run's scores.json), not trained again
    assert {k: v for k, v in _snapshot(root / "runs").items() if not k.endswith(scoring.SCORES)} == trained


def test_build_tables_puts_each_run_in_its_row_and_leaves_the_study_out(tiny):
    profile, root, out, _ = tiny
    kinds = {r.name: r.kind for r in grid.plan(profile)}
    dirs = {n: d for n, d in out.items() if kinds[n] != "warmup"}
    scored = scoring.score_runs(profile, dirs, protocols=("standard",), out_dir=root / "eval_all", progress=False)
    (x2,) = [t for t in ablation.build_tables(profile, scored, dirs) if t.scale == 2]
    psnr = {s.method: s.result.values["psnr"] for s in scored if s.scale == 2}
    rows = {r["label"]: r for r in x2.rows}
    assert rows["Crop size(16)"]["ours_psnr"].values == tuple(psnr[f"srgan_x2_c16_tv1_s{s}"] for s in SEEDS)
    assert rows["Crop size(16) without tv loss"]["ours_psnr"].values == tuple(
        psnr[f"srgan_x2_c16_tv0_s{s}"] for s in SEEDS)
    assert rows["SRResNet, MSE only, crop 16"]["ours_psnr"].values == tuple(
        psnr[f"srresnet_x2_c16_it2_s{s}"] for s in SEEDS)
    assert rows["Bicubic"]["ours_psnr"].values == (psnr["bicubic"],)
    # the study's runs (weight 1) were scored, differ from the grid's, and make no row
    assert len(x2.rows) == 4 and {f"srgan_x2_c16_tv1_w1_s{s}" for s in SEEDS} <= set(psnr)
    assert all(psnr[f"srgan_x2_c16_tv1_w1_s{s}"] != psnr[f"srgan_x2_c16_tv1_s{s}"] for s in SEEDS)


def test_schedule_text_names_the_profiles_schedule(tiny):
    text = ablation.schedule_text(tiny[0])
    assert "1 MSE warm-up + 1 GAN iterations at batch 2" in text and "seeds 0, 1" in text
    assert "paper profile: 0 + 1300 at batch 64" in text


@pytest.mark.equality
def test_runs_trained_two_at_a_time_equal_runs_trained_one_by_one(tiny, tmp_path):
    # each run computes in one thread whatever the number of workers, with the same kernels in the same
    # order, so the two ways give the same bits (no rounding difference to allow for); two spawned
    # worker processes also check that runs wait for the warm-up they continue
    profile, root, _, _ = tiny
    one = dataclasses.replace(profile, scales=(4,), tv_weights=(0.0,))
    kinds = ("grid", "control")
    a = ablation.train_runs(one, kinds=kinds, root=tmp_path / "a", progress=False, workers=1)
    b = ablation.train_runs(one, kinds=kinds, root=tmp_path / "b", progress=False, workers=2)
    assert a.keys() == b.keys() and len(a) == 2 * len(SEEDS) + 2 * len(SEEDS)  # cells + warm-ups + controls
    for name in a:
        ga = torch.load(a[name] / "generator.pt", weights_only=True)["generator"]
        gb = torch.load(b[name] / "generator.pt", weights_only=True)["generator"]
        assert all(torch.equal(ga[k], gb[k]) for k in ga), name
