"""The main job: notebooks run headless in order, executed copies kept, and the grid's job lines."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex

import nbformat
import pytest

from srgan_lib import cli, config, datasets, grid, reproduce
from srgan_lib.errors import ConfigError


def _notebook(path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_first.ipynb", "import os\nprint(os.environ['SRGAN_PROFILE'])")
    _notebook(folder / "02_second.ipynb", "x = 6 * 7\nx")
    (folder / "notes.ipynb").write_text("{}")  # not numbered: not part of the job
    monkeypatch.setattr(reproduce, "NOTEBOOK_DIR", folder)
    monkeypatch.setattr(config, "results_dir", lambda profile: tmp_path / "results" / profile)
    return folder


def test_the_numbered_notebooks_in_order(notebooks):
    assert [p.name for p in reproduce.notebook_paths()] == ["01_first.ipynb", "02_second.ipynb"]
    assert [p.name for p in reproduce.notebook_paths(["02"])] == ["02_second.ipynb"]
    with pytest.raises(ConfigError, match="--only"):
        reproduce.notebook_paths(["09"])


def test_each_notebook_runs_in_a_kernel_with_the_profile_and_its_outputs_are_kept(notebooks, tmp_path, caplog):
    with caplog.at_level("INFO", logger="srgan_lib.reproduce"):
        timings = reproduce.reproduce("smoke")
    assert list(timings) == ["01_first.ipynb", "02_second.ipynb"] and all(t > 0 for t in timings.values())
    executed = tmp_path / "results" / "smoke" / "notebooks"
    first = nbformat.read(executed / "01_first.ipynb", as_version=4)
    assert first.cells[0].outputs[0]["text"].strip() == "smoke"  # the kernel saw SRGAN_PROFILE
    second = nbformat.read(executed / "02_second.ipynb", as_version=4)
    assert second.cells[0].outputs[0]["data"]["text/plain"] == "42"
    assert not nbformat.read(notebooks / "02_second.ipynb", as_version=4).cells[0].outputs  # source untouched
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "done in" in said and str(executed) in said


def test_progress_is_logged_cell_by_cell_with_the_kernels_stderr_and_its_bars(notebooks, caplog, capfd):
    _notebook(notebooks / "01_first.ipynb", "import sys\nprint('a line on stderr', file=sys.stderr)",
              "from tqdm.auto import tqdm  # a widget in a kernel\nfor _ in tqdm(range(3), desc='steps'):\n    pass")
    with caplog.at_level("INFO", logger="srgan_lib.reproduce"):
        reproduce.reproduce("smoke", ["01"])
    said = [r.getMessage() for r in caplog.records]
    assert "    cell 1/2: import sys" in said and "    cell 2/2: from tqdm.auto import tqdm  # a widget in a kernel" in said
    assert "      a line on stderr" in said
    assert any(re.fullmatch(r" +steps: +100%\|.* 3/3 .*", line) for line in said), said  # the bar's last state
    # the kernel talked over a Unix socket: no warning that it runs over TCP without encryption
    assert "without encryption" not in capfd.readouterr().err


def test_the_experiments_train_before_the_notebooks_that_use_them(notebooks, monkeypatch):
    # notebooks 05 and 06 only score and draw what exists: the runs are trained first, in this process
    _notebook(notebooks / "05_ablation.ipynb", "print('scoring')")
    trained = []
    monkeypatch.setattr(reproduce.ablation, "train_runs", lambda profile, progress: trained.append(profile.name))
    timings = reproduce.reproduce("smoke", ["01"])
    assert trained == [] and "training" not in timings  # notebook 01 needs no run
    timings = reproduce.reproduce("smoke", ["05"])
    assert trained == ["smoke"] and list(timings) == ["training", "05_ablation.ipynb"]


def test_a_failing_notebook_stops_the_job_and_keeps_its_executed_copy(notebooks, tmp_path):
    _notebook(notebooks / "01_first.ipynb", "print('before')", "raise ValueError('broken cell')")
    with pytest.raises(Exception, match="broken cell"):
        reproduce.reproduce("smoke")
    kept = nbformat.read(tmp_path / "results" / "smoke" / "notebooks" / "01_first.ipynb", as_version=4)
    assert kept.cells[0].outputs[0]["text"].strip() == "before"
    assert not (tmp_path / "results" / "smoke" / "notebooks" / "02_second.ipynb").exists()


def test_job_lines_are_srgan_train_commands_for_every_grid_cell():
    profile = config.get_profile("quick")
    lines = reproduce.job_commands("quick", seeds=(0, 1))
    cells = grid.ablation_grid(profile, (0, 1))
    assert len(lines) == len(cells) == 2 * 12
    parser = cli.build_parser()
    for line, cfg in zip(lines, cells):
        argv = shlex.split(line)
        assert argv[:2] == ["srgan", "train"]
        args = parser.parse_args(argv[1:])  # what the job array will run parses as a valid command
        assert (args.profile, args.scale, args.crop, args.seed, not args.no_tv) == (
            "quick", cfg.scale, cfg.crop_size, cfg.seed, cfg.use_tv)


@pytest.fixture
def bsds200_at(monkeypatch, tmp_path):
    """Point ``bsds200``'s archives at ``url`` (a look-alike tgz, checksum ``sha256``) and the data root at tmp."""
    monkeypatch.setenv("SRGAN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SRGAN_OVERRIDES", "")

    def point(url, sha256):
        entries = tuple(dataclasses.replace(a, url=url, sha256=sha256, count={"BSDS100": 3, "BSDS200": 2}[a.target])
                        for a in datasets.DATASETS["bsds200"].archives)
        monkeypatch.setitem(datasets.DATASETS, "bsds200", dataclasses.replace(datasets.DATASETS["bsds200"],
                                                                               archives=entries))
    return point


def test_quick_trains_on_bsds200_when_it_can_download_it(bsds200_at, serve, bsds_tgz, tmp_path):
    data, _ = bsds_tgz
    server = serve({"BSDS300-images.tgz": data})
    bsds200_at(server.url("BSDS300-images.tgz"), hashlib.sha256(data).hexdigest())
    profile = reproduce.choose_train_data(config.get_profile("quick"))
    assert profile.base.train_data == "bsds200" and os.environ["SRGAN_OVERRIDES"] == ""
    assert datasets.data_folder("bsds200") == tmp_path / "data" / "BSDS200"
    assert grid.run_name(profile.config()) == "srgan_x4_c88_tv1_s0_bsds200"
    # installed, it is every process's choice (a notebook's kernel calls get_profile), with no second fetch
    assert config.get_profile("quick").base.train_data == "bsds200"
    assert reproduce.choose_train_data(config.get_profile("quick")) == config.get_profile("quick")
    assert reproduce.choose_train_data(config.get_profile("smoke")).base.train_data == "samples"  # smoke: none
    assert len(server.requests) == 1
    # an explicit choice still wins
    os.environ["SRGAN_OVERRIDES"] = "train_data=samples"  # (restored by the fixture's monkeypatch)
    assert config.get_profile("quick").base.train_data == "samples"


def test_offline_quick_says_it_keeps_the_samples(bsds200_at, serve, caplog):
    server = serve({})  # every request: 404, as an unreachable host fails at once
    bsds200_at(server.url("BSDS300-images.tgz"), "0" * 64)
    with caplog.at_level("WARNING"):
        profile = reproduce.choose_train_data(config.get_profile("quick"))
    assert profile.base.train_data == "samples" and config.get_profile("quick").base.train_data == "samples"
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert line.startswith("training on `samples`, not `bsds200` (`srgan download bsds200` installs it for later runs): ") and "404" in line and "\n" not in line
    assert len(server.requests) == 1  # no retries


def test_an_explicit_train_data_wins_without_a_download(bsds200_at, serve, monkeypatch):
    server = serve({})
    bsds200_at(server.url("BSDS300-images.tgz"), "0" * 64)
    monkeypatch.setenv("SRGAN_OVERRIDES", "seeds=0,train_data=samples")
    assert reproduce.choose_train_data(config.get_profile("quick")).base.train_data == "samples"
    assert server.requests == []
