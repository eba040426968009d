"""srgan_lib.datasets: the registry, and names and paths resolved to folders."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from srgan_lib import datasets, images, samples
from srgan_lib.errors import ConfigError, DataError


def test_registry_entries_are_consistent():
    assert set(datasets.DATASETS) >= {"div2k", "bsds100", "samples", "set5", "set14"}
    assert {"div2k", "bsds100", "bsds200"} <= set(datasets.downloadable()) and not {"samples", "set5"} & set(datasets.downloadable())
    for name, d in datasets.DATASETS.items():
        assert d.description, name
        # every split is installed by an archive; an archive may install another dataset's folder too
        # (BSDS300's one archive: bsds100 and bsds200), but only a folder of the registry
        targets = {a.target for a in d.archives}
        splits = {str(d.path(s).relative_to(datasets.data_root())) for s in datasets.SPLITS} if d.archives else set()
        assert splits <= targets, name
        assert targets <= {str(e.path(s).relative_to(datasets.data_root())) for e in datasets.DATASETS.values()
                           if e.source == "download" for s in datasets.SPLITS}, name
        for a in d.archives:
            assert len(a.sha256) == 64 and a.url.endswith(a.filename) and a.count > 0, a
    with pytest.raises(ConfigError, match="archives are given exactly when source='download'"):
        datasets.Dataset("X", "download")
    with pytest.raises(ConfigError, match="source='web'"):
        datasets.Dataset("X", "web")


def test_tracked_sets_stay_in_the_repository(set5_dir, set14_dir, data_root):
    # data_root: SRGAN_DATA points elsewhere, and the tracked sets do not move with it
    for name, folder, count in (("set5", set5_dir, 5), ("set14", set14_dir, 14)):
        for split in datasets.SPLITS:
            got = datasets.data_folder(name, split)
            assert got == folder and len(images.list_images(got)) == count


def test_a_union_joins_its_parts_as_part_file_made_once(data_root, set5_dir, set14_dir):
    """set5+set14: every image of Set5 and Set14 in one folder of the data root, named after its part."""
    union = datasets.DATASETS["set5+set14"]
    assert union.source == "union" and union.parts == ("set5", "set14")
    folder = datasets.data_folder("set5+set14", "val")
    assert folder == data_root / "Set5+Set14" == datasets.data_folder("set5+set14", "train")
    sources = {f"{part}_{p.name}": p for part, src in (("set5", set5_dir), ("set14", set14_dir))
               for p in images.list_images(src)}
    made = images.list_images(folder)
    assert sorted(p.name for p in made) == sorted(sources) and len(made) == 5 + 14
    for p in made:  # the same bytes as the part's file (a link, or a copy across file systems)
        assert p.read_bytes() == sources[p.name].read_bytes()
    assert [p.name for p in data_root.iterdir()] == ["Set5+Set14"]  # no staging folder left behind
    # made once: a second use finds it complete and leaves it alone ...
    inode = folder.stat().st_ino
    assert datasets.data_folder("set5+set14", "val") == folder and folder.stat().st_ino == inode
    # ... and rebuilds it when it does not hold exactly the parts' images
    (folder / "stray.png").write_bytes(made[0].read_bytes())
    (folder / made[1].name).unlink()
    assert datasets.data_folder("set5+set14", "val") == folder
    assert sorted(p.name for p in images.list_images(folder)) == sorted(sources)


def test_samples_are_written_on_demand_into_the_data_root(data_root):
    assert not (data_root / "samples").exists()
    for split in datasets.SPLITS:
        folder = datasets.data_folder("samples", split)
        assert folder == data_root / "samples" / split
        files = images.list_images(folder)
        assert [f.stem for f in files] == sorted(samples.available(split))
        np.testing.assert_array_equal(images.load_image(files[0]), samples.load_sample(files[0].stem))


@pytest.mark.parametrize("name,folder", [("div2k", "DIV2K/DIV2K_valid_HR"), ("bsds100", "BSDS100")])
def test_absent_download_is_a_one_line_error_naming_the_command(data_root, name, folder):
    with pytest.raises(DataError) as info:
        datasets.data_folder(name, "val")
    msg = str(info.value)
    assert msg == f"dataset folder {data_root / folder} does not exist: run `srgan download {name}`"
    (data_root / folder).mkdir(parents=True)
    assert datasets.data_folder(name, "val") == data_root / folder


def test_absent_tracked_set_says_how_to_restore_it(monkeypatch, tmp_path):
    monkeypatch.setitem(datasets.DATASETS, "set5", dataclasses.replace(datasets.DATASETS["set5"], folder="NoSet5"))
    with pytest.raises(DataError, match=r"NoSet5/HR does not exist: it is tracked in the repository: "
                                        r"restore it with `git checkout -- data/NoSet5`"):
        datasets.data_folder("set5")


def test_a_folder_passes_through(tmp_path, monkeypatch):
    assert datasets.data_folder(str(tmp_path)) == tmp_path
    assert datasets.data_folder(tmp_path, "val") == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.data_folder("~") == tmp_path


def test_a_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch, data_root):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "set5").mkdir()
    assert datasets.data_folder("set5") != tmp_path / "set5"
    assert datasets.data_folder("./set5").resolve() == tmp_path / "set5"


def test_unknown_names_and_splits_are_clear_errors(data_root):
    with pytest.raises(DataError) as info:
        datasets.data_folder("Set15")
    assert str(info.value) == ("dataset folder Set15 does not exist: pass a folder of images or a dataset name "
                               "(div2k, bsds100, bsds200, samples, set5, set14, set5+set14)")
    with pytest.raises(ConfigError, match=r"split='test': use one of \('train', 'val'\)"):
        datasets.data_folder("set5", "test")
