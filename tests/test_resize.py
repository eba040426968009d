"""MATLAB-compatible bicubic: the official DIV2K LR image, hand-computed weights, PIL, layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srgan_lib import config, images, resize


def _rgb(h=12, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.equality
def test_div2k_official_lr_image(div2k_hr_0004, div2k_lr_0004_x2):
    """DIV2K's x2 LR images were made by MATLAB imresize(hr, 1/2, 'bicubic')."""
    ours = resize.imresize(images.load_image(div2k_hr_0004), 1 / 2)
    official = images.load_image(div2k_lr_0004_x2)
    assert ours.shape == official.shape == (672, 1020, 3)
    diff = np.abs(ours.astype(np.int64) - official.astype(np.int64))
    within_one = (diff <= 1).mean()
    psnr = 10 * np.log10(255.0**2 / (diff.astype(np.float64) ** 2).mean())
    assert within_one >= 0.9999, within_one
    assert psnr >= 56.0, psnr


def test_hand_computed_upscale_x2_of_an_impulse():
    """x = [1, 0, 0, 0] upscaled x2 with a = -0.5 and the mirror boundary.

    Output pixel 1 sits at u = 0.75 (1-based input coordinates): distances to
    input pixels -1, 0, 1, 2 are 1.75, 0.75, -0.25, -1.25 with weights
    -0.0234375, 0.2265625, 0.8671875, -0.0703125; the mirror maps pixel 0 to 1 and
    -1 to 2, so out1 = 0.2265625 + 0.8671875 = 1.09375. Likewise out2 (u = 1.25)
    = -0.0703125 + 0.8671875 = 0.796875 and out3 (u = 1.75) = -0.0234375 + 0.2265625
    = 0.203125, out4 (u = 2.25) = -0.0703125.
    """
    x = np.array([[1.0, 0.0, 0.0, 0.0]])
    out = resize.imresize(x, 2)
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out[0, :4], [1.09375, 0.796875, 0.203125, -0.0703125], atol=1e-12)
    np.testing.assert_allclose(out[1], out[0], atol=1e-12)  # the single row is mirrored: constant in height


def test_hand_computed_antialiased_downscale_of_an_impulse():
    """Downscaling by 2 widens the kernel to 8 taps: weights 0.5 * W(d / 2), normalised.

    Output pixel j (1-based) sits at u = 2j - 0.5. An impulse at input pixel 5 is
    at distance 0.5, 1.5, 2.5 from outputs 3, 2, 4: 0.5 W(0.25) = 0.43359375,
    0.5 W(0.75) = 0.11328125, 0.5 W(1.25) = -0.03515625 (the 8 weights already sum
    to 1 away from the borders, so normalising changes nothing).
    """
    x = np.zeros((1, 16))
    x[0, 4] = 1.0
    out = resize.imresize(x, size=(1, 8))
    np.testing.assert_allclose(out[0, 1:4], [0.11328125, 0.43359375, -0.03515625], atol=1e-12)
    np.testing.assert_allclose(out[0, 5:], 0.0, atol=1e-12)


@pytest.mark.parametrize("method", config.RESIZE_METHODS)
@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2, 3, 4])
def test_constant_image_stays_constant(method, scale):
    img = np.full((13, 17, 3), 137, dtype=np.uint8)
    out = resize.imresize(img, scale, method=method)
    assert out.dtype == np.uint8
    assert (out == 137).all()
    flt = resize.imresize(torch.full((2, 3, 13, 17), 0.3), scale, method=method)
    torch.testing.assert_close(flt, torch.full_like(flt, 0.3), atol=1e-6, rtol=0)


def test_output_size_is_ceil_of_size_times_scale():
    assert resize.imresize(_rgb(5, 7), 1 / 2).shape == (3, 4, 3)
    assert resize.imresize(_rgb(5, 7), 3).shape == (15, 21, 3)
    assert resize.imresize(_rgb(6, 9), 1 / 3).shape == (2, 3, 3)
    assert resize.imresize(_rgb(5, 7), size=(4, 2)).shape == (4, 2, 3)


def test_layouts_and_types_are_preserved():
    img = _rgb()
    same = torch.rand(1, 3, 8, 8)
    out = resize.imresize(same, 1)
    assert out is not same and torch.equal(out, same)
    assert resize.imresize(img[..., 0], 2).shape == (24, 20)
    chw = torch.rand(3, 12, 10, dtype=torch.float64)
    out = resize.imresize(chw, 1 / 2)
    assert out.shape == (3, 6, 5) and out.dtype == torch.float64
    u8 = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    out = resize.imresize(u8, 2)
    assert out.shape == (1, 3, 24, 20) and out.dtype == torch.uint8


@pytest.mark.equality
def test_tensor_and_numpy_paths_agree():
    img = _rgb(40, 36, seed=3)
    batch = torch.from_numpy(np.stack([img, img[::-1].copy()])).permute(0, 3, 1, 2).contiguous()
    for scale in (1 / 4, 1 / 2, 2, 4):
        # float64: the same arithmetic, to rounding error
        ref = resize.imresize(img.astype(np.float64), scale)
        got = resize.imresize(batch.double() / 1.0, scale)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-9)
        # uint8: ndarray computes in float64, tensor in float32; a value within ~1e-4
        # of a rounding boundary may differ by one grey level, never more
        ref_u8 = resize.imresize(img, scale)
        got_u8 = resize.imresize(batch, scale)
        diff = np.abs(got_u8[0].permute(1, 2, 0).numpy().astype(int) - ref_u8.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
        # every image of a batch is resized on its own
        np.testing.assert_array_equal(got_u8[1].permute(1, 2, 0).numpy(), resize.imresize(img[::-1].copy(), scale))


def test_pil_method_matches_pillow_rgb_resize():
    img = _rgb(31, 23, seed=5)
    for size in ((8, 6), (62, 46)):
        expected = np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BICUBIC))
        np.testing.assert_array_equal(resize.imresize(img, size=size, method="pil"), expected)


@pytest.mark.equality
def test_torch_methods_are_interpolate_and_torch_aa_follows_pil():
    x = torch.rand(1, 3, 32, 24, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    ref = torch.nn.functional.interpolate(x, size=(8, 6), mode="bicubic", align_corners=False)
    torch.testing.assert_close(resize.imresize(x, 1 / 4, method="torch"), ref)
    # PyTorch's antialiased bicubic is PIL's (a = -0.5), as the module docstring says
    np.testing.assert_allclose(resize.imresize(x, 1 / 4, method="torch_aa").numpy(),
                               resize.imresize(x, 1 / 4, method="pil").numpy(), atol=1e-5)


def test_cubic_kernel_values():
    # W(0) = 1, W(+-1) = W(+-2) = 0 for any a; W(0.5) = (a + 2)/8 - (a + 3)/4 + 1
    for a in (-0.5, -0.75):
        x = np.array([0.0, 1.0, -1.0, 2.0, 2.5, 0.5])
        expected = [1, 0, 0, 0, 0, (a + 2) / 8 - (a + 3) / 4 + 1]
        np.testing.assert_allclose(resize.cubic_kernel(x, a), expected, atol=1e-12)


def test_weights_are_cached():
    # per (in, out, scale): computed once, then the very same tensors are reused
    first = resize._torch_contributions(20, 10, 0.5, torch.device("cpu"), torch.float64)
    again = resize._torch_contributions(20, 10, 0.5, torch.device("cpu"), torch.float64)
    assert first[0] is again[0] and first[1] is again[1]
    hits = resize._matlab_contributions.cache_info().hits
    resize._matlab_contributions(20, 10, 0.5)
    assert resize._matlab_contributions.cache_info().hits == hits + 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        resize.imresize(_rgb(), 2, method="lanczos")
    with pytest.raises(ValueError, match="scale= or size="):
        resize.imresize(_rgb())
    with pytest.raises(TypeError):
        resize.imresize([[1, 2]], 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    x = torch.rand(2, 3, 48, 40)
    torch.testing.assert_close(resize.imresize(x.cuda(), 1 / 4).cpu(), resize.imresize(x, 1 / 4), atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("method", ["matlab", "torch"])
def test_ndarray_resized_on_cuda_is_identical(div2k_hr_0004, method):
    from srgan_lib.images import load_image

    hr = load_image(div2k_hr_0004)
    for size in ((hr.shape[0] // 4, hr.shape[1] // 4), (hr.shape[0] * 2, hr.shape[1] * 2)):
        np.testing.assert_array_equal(resize.imresize(hr, size=size, method=method, device="cuda"),
                                      resize.imresize(hr, size=size, method=method))


def _near_ties(crops: np.ndarray, out: int, band: float = 1e-3) -> np.ndarray:
    """N x out x out x 3 mask of the LR pixels whose rounding could go either way in float32.

    MATLAB bicubic of uint8 images rounds after each pass (rows, then columns), and the
    symmetric kernel makes exact .5 ties common (~1 % of the pixels at x2: the mean of two
    neighbours with an odd sum). Computed in float64 a tie is exact; the float32 fast path
    and the tensor path land within float32's error of it (<= 16 terms of <= 255 x |w| <= 1:
    < 2.5e-4, hence ``band``) on a side that depends on the CPU's summation order. A pixel
    is marked when its own column pass, or any row-pass value it reads, is within ``band`` of a tie.
    """
    n, crop = crops.shape[:2]
    mat = resize.matlab_matrix(crop, out).astype(np.float64)
    rows = np.matmul(mat, crops.astype(np.float64).reshape(n, crop, crop * 3)).reshape(n, out, crop, 3)
    cols = np.einsum("nikc,jk->nijc", np.clip(np.rint(rows), 0, 255), mat)
    tie = lambda v: np.abs(v - np.floor(v) - 0.5) < band  # noqa: E731
    return tie(cols) | (np.einsum("nikc,jk->nijc", tie(rows).astype(float), (mat != 0).astype(float)) > 0)


def _div2k_crops(path, crop: int, n: int = 8, seed: int = 1) -> np.ndarray:
    hr = images.load_image(path)
    rng = np.random.default_rng(seed)
    tops, lefts = rng.integers(0, hr.shape[0] - crop, n), rng.integers(0, hr.shape[1] - crop, n)
    return np.stack([hr[t : t + crop, lft : lft + crop] for t, lft in zip(tops, lefts)])


@pytest.mark.equality
@pytest.mark.parametrize("scale,crop", [(4, 88), (2, 88), (4, 128)])
def test_matlab_downscale_batch_equals_imresize(div2k_hr_0004, scale, crop):
    crops, out = _div2k_crops(div2k_hr_0004, crop), crop // scale
    ties = _near_ties(crops, out)
    assert ties.mean() < 0.1  # the exact comparison below still covers >= 90 % of the pixels
    ref = np.stack([resize.imresize(c, size=(out, out), method="matlab") for c in crops]).astype(int)
    fast = resize.matlab_downscale_batch(crops, out)
    assert fast.shape == (8, out, out, 3) and fast.dtype == np.uint8
    # the fast path (float32 matrix products) and, on the uint8 tensor batch, imresize's tensor path (what
    # an accelerator runs) give MATLAB's pixels: exactly, except at a float32 tie, by at most one grey level
    tensor = resize.imresize(torch.from_numpy(crops).permute(0, 3, 1, 2), size=(out, out), method="matlab")
    for got in (fast, tensor.permute(0, 2, 3, 1).numpy()):
        diff = np.abs(got.astype(int) - ref)
        assert diff[~ties].max() == 0 and diff.max() <= 1


@pytest.mark.equality
def test_matlab_downscale_batch_of_a_slice_is_that_slice_of_the_batch(div2k_hr_0004):
    # what makes DDP ranks' slices equal the whole batch: one GEMM per image in both passes, so even a
    # float32 .5 tie rounds alike whatever else is in the batch (and on every CPU)
    crops = _div2k_crops(div2k_hr_0004, 88, n=16, seed=2)
    whole = resize.matlab_downscale_batch(crops, 44)
    for lo, hi in ((0, 1), (3, 7), (8, 16)):
        np.testing.assert_array_equal(resize.matlab_downscale_batch(crops[lo:hi], 44), whole[lo:hi])


def test_matlab_matrix_is_imresize_of_one_axis():
    mat = resize.matlab_matrix(12, 3)
    assert mat.shape == (3, 12) and mat.dtype == np.float32 and not mat.flags.writeable
    np.testing.assert_allclose(mat.sum(axis=1), 1, atol=1e-6)  # a constant stays constant
    col = np.random.default_rng(0).random((12, 5))
    np.testing.assert_allclose(mat @ col, resize.imresize(col, size=(3, 5), method="matlab"), atol=1e-6)
    assert resize.matlab_matrix(12, 3) is mat  # cached: built once per crop size
