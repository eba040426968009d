"""The embedded sample set ships in scikit-image's wheel and needs no download."""

from __future__ import annotations

import numpy as np
import pytest

from srgan_lib import images, samples
from srgan_lib.errors import DataError


def test_train_and_val_are_disjoint_and_present():
    train, val = samples.available("train"), samples.available("val")
    assert len(train) >= 4 and len(val) >= 2
    assert not set(train) & set(val)


def test_write_samples_writes_identical_pngs_once_into_the_given_folder(tmp_path):
    folder = samples.write_samples(tmp_path / "any" / "where", "val")
    assert folder == tmp_path / "any" / "where"
    files = images.list_images(folder)
    assert [f.stem for f in files] == sorted(samples.available("val"))
    first = files[0].stat().st_mtime_ns
    samples.write_samples(folder, "val")
    assert files[0].stat().st_mtime_ns == first  # not rewritten
    np.testing.assert_array_equal(images.load_image(files[0]), samples.load_sample(files[0].stem))
    assert images.load_image(files[0]).shape[2] == 3
    with pytest.raises(DataError, match="split='all'"):
        samples.write_samples(tmp_path / "x", "all")
