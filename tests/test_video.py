"""Video upscaling (issue 19): frames, timing, sound, side by side, content detection, user errors, no partial file.

Every clip is made here by PyAV (FFmpeg's encoders): 12 frames of 64 x 48 with a
440 Hz tone, in mp4 / mkv / webm / mov with the audio codecs those carry.
"""

from __future__ import annotations

import shutil
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from srgan_lib import cli, images, models, resize, upscale, video
from srgan_lib.errors import ConfigError

W, H, FRAMES, SCALE, TILE = 64, 48, 12, 4, 32  # TILE < the frame: every frame is run in 2 x 2 tiles


def make_clip(path, fps=24, audio="aac", rate=48000, fmt=None, video_stream=True, vcodec="libx264",
              pix_fmt="yuv444p", options=None, frames=FRAMES):
    """A clip of moving gradients with per-frame noise (so that consecutive frames differ) and a sine tone.

    By default lossless H.264 (x264 crf 0 on 4:4:4); the tests compare against the *decoded* input anyway.
    """
    fps = Fraction(fps)
    with av.open(str(path), "w", format=fmt) as out:
        if video_stream:
            vs = out.add_stream(vcodec, rate=fps, options={"crf": "0"} if options is None else options)
            vs.width, vs.height, vs.pix_fmt = W, H, pix_fmt
        if audio:
            a = out.add_stream(audio, rate=rate)
            a.layout = "mono"
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:H, 0:W]
        for k in range(frames if video_stream else 0):
            grad = np.stack([(xx * 4 + k * 9) % 256, (yy * 5 + k * 13) % 256, ((xx + yy) * 3 + k * 30) % 256], -1)
            img = np.clip(0.6 * grad + rng.integers(0, 100, grad.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = k, 1 / fps
            out.mux(vs.encode(frame))
        if video_stream:
            out.mux(vs.encode(None))
        if audio:
            n = int(rate * frames / fps)
            tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
            sample_fmt = a.codec_context.format.name  # fltp (aac), flt (opus), s16 (flac, pcm_mulaw)
            data = tone.astype(np.float32) if sample_fmt.startswith("flt") else (tone * 32767).astype(np.int16)
            for i in range(0, n, 1024):  # mono: (1, samples) for the planar and the packed layouts alike
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[None, i:i + 1024]), format=sample_fmt,
                                                layout="mono")
                af.sample_rate, af.pts, af.time_base = rate, i, Fraction(1, rate)
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def probe(path) -> dict:
    """Frames (RGB uint8), frame rate, duration; audio codec, packets, decoded seconds and one frame's length."""
    info = {}
    with av.open(str(path)) as c:
        info["fps"], info["duration"] = c.streams.video[0].average_rate, c.duration / av.time_base
        info["frames"] = [video.frame_to_rgb(f) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        if c.streams.audio:
            info["audio_codec"] = c.streams.audio[0].codec_context.name
            info["audio_packets"] = [bytes(p) for p in c.demux(audio=0) if p.size]
    with av.open(str(path)) as c:
        if c.streams.audio:
            frames = list(c.decode(audio=0))
            info["audio_seconds"] = sum(f.samples for f in frames) / frames[0].sample_rate
            info["audio_frame"] = max(f.samples for f in frames) / frames[0].sample_rate
    return info


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _generator(seed=0, cls=models.Generator):
    torch.manual_seed(seed)
    g = cls(scale=SCALE, num_feat=8, num_block=1, upsample_skip="bicubic")
    for m in g.modules():  # non-trivial BN statistics and tail, so that every layer matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    torch.nn.init.normal_(g.tail.weight, std=0.05)
    return g.eval()


@pytest.fixture(scope="module")
def gen():
    return _generator()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, gen):
    from srgan_lib import config
    from srgan_lib.checkpoint import save_generator

    cfg = config.TrainConfig(profile="smoke", scale=SCALE, crop_size=24, num_feat=8, num_block=1,
                             upsample_skip="bicubic")
    return save_generator(tmp_path_factory.mktemp("ckpt") / "generator.pt", gen, cfg, step=0)


def _sr(gen, frame):
    return images.to_uint8(upscale.upscale(gen, images.to_tensor(frame), tile=TILE))[0]


# x264 with crf 0 is lossless on YUV: with 4:4:4 the only loss is rounding 8-bit RGB to limited-range
# YCbCr and back (<= 2 levels: 52.1 dB measured here); 4:2:0 (the default, for players) halves the chroma
# resolution, which on this clip's per-pixel noise gives 19.7 dB and is not what this test is about.
# libx264rgb codes RGB itself, losslessly: there the frames must be identical. A frame off by one: 14.9 dB.
@pytest.mark.parametrize("codec,pix_fmt,floor_db", [("libx264", "yuv444p", 40.0), ("libx264rgb", "rgb24", np.inf)])
def test_frames_timing_and_sound_preserved(tmp_path, clip, gen, codec, pix_fmt, floor_db):
    result = video.upscale_video(clip, tmp_path, gen, tile=TILE, crf=0, pix_fmt=pix_fmt, codec=codec)
    assert result.path == tmp_path / f"clip_x{SCALE}.mp4"
    assert (result.frames, result.fps, result.size, result.audio) == (FRAMES, 24, (SCALE * W, SCALE * H),
                                                                      "copied (aac)")
    src, out = probe(clip), probe(result.path)
    assert len(out["frames"]) == FRAMES and out["frames"][0].shape == (SCALE * H, SCALE * W, 3)
    assert out["fps"] == src["fps"] == 24
    assert abs(out["duration"] - src["duration"]) < 1 / 24
    # the sound is copied unchanged: the same packets, the same decoded length
    assert out["audio_codec"] == "aac" and out["audio_packets"] == src["audio_packets"]
    assert abs(out["audio_seconds"] - FRAMES / 24) <= src["audio_frame"]
    expected = [_sr(gen, frame) for frame in src["frames"]]
    scores = [psnr(o, e) for o, e in zip(out["frames"], expected)]
    assert min(scores) >= floor_db, scores
    # the check can fail: a frame shifted by one (or the bicubic baseline) is far below the floor
    assert max(psnr(o, e) for o, e in zip(out["frames"][1:], expected)) < 35
    assert psnr(out["frames"][3], resize.imresize(src["frames"][3], scale=SCALE)) < 35


@pytest.mark.parametrize("name,fmt,vcodec,pix_fmt,options,audio,rate,fps,copied", [
    # Matroska stores milliseconds: 30000/1001 fps comes back exact only if the rounding is undone
    ("clip.mkv", None, "libx264", "yuv444p", {"crf": "0"}, "flac", 44100, Fraction(30000, 1001), True),
    ("clip.webm", None, "libvpx-vp9", "yuv420p", {"lossless": "1"}, "libopus", 48000, 25, True),
    ("clip.mov", None, "libx264", "yuv444p", {"crf": "0"}, "pcm_mulaw", 8000, 24, False),  # MP4 cannot hold mu-law
])
def test_containers_and_audio_codecs(tmp_path, gen, name, fmt, vcodec, pix_fmt, options, audio, rate, fps, copied):
    src_path = make_clip(tmp_path / name, fps=fps, audio=audio, rate=rate, fmt=fmt, vcodec=vcodec, pix_fmt=pix_fmt,
                         options=options)
    result = video.upscale_video(src_path, tmp_path / "out", gen, tile=TILE)
    src, out = probe(src_path), probe(result.path)
    assert result.frames == len(out["frames"]) == FRAMES
    assert out["frames"][0].shape == (SCALE * H, SCALE * W, 3)
    assert out["fps"] == fps and result.fps == fps
    if copied:
        assert result.audio.startswith("copied") and out["audio_packets"] == src["audio_packets"]
    else:
        assert result.audio == "re-encoded pcm_mulaw -> aac (MP4 cannot hold pcm_mulaw)"
        assert out["audio_codec"] == "aac"
    assert abs(out["audio_seconds"] - src["audio_seconds"]) <= max(out["audio_frame"], src["audio_frame"])


def test_side_by_side_is_bicubic_then_sr(tmp_path, clip, gen):
    result = video.upscale_video(clip, tmp_path, gen, tile=TILE, side_by_side=True, crf=0, pix_fmt="rgb24",
                                 codec="libx264rgb")
    assert result.path.name == f"clip_x{SCALE}_side_by_side.mp4"
    src, out = probe(clip), probe(result.path)
    assert out["frames"][5].shape == (SCALE * H, 2 * SCALE * W, 3)
    left, right = out["frames"][5][:, :SCALE * W], out["frames"][5][:, SCALE * W:]
    np.testing.assert_array_equal(left, resize.imresize(src["frames"][5], scale=SCALE, method="matlab"))
    np.testing.assert_array_equal(right, _sr(gen, src["frames"][5]))


def test_content_detection_not_extension(tmp_path, clip, checkpoint, capsys):
    """A video named .dat, without an extension or as .png is a video; a PNG named .mp4 is an image."""
    for name in ("movie.dat", "movie", "movie2.png"):
        shutil.copy(clip, tmp_path / name)
        assert video.input_kind(tmp_path / name) == "video"
    # an MPEG-1 video stream: Pillow names its format ("MPEG") but cannot decode it
    m1v = make_clip(tmp_path / "old.m1v", audio=None, vcodec="mpeg1video", pix_fmt="yuv420p", options={},
                    fmt="mpeg1video")
    assert video.input_kind(m1v) == "video"
    png = images.save_image(np.full((H, W, 3), 90, np.uint8), tmp_path / "photo.png")
    shutil.move(png, tmp_path / "photo.mp4")
    assert video.input_kind(tmp_path / "photo.mp4") == "image"
    out = tmp_path / "out"
    argv = ["upscale", str(tmp_path / "movie"), str(tmp_path / "movie2.png"), str(tmp_path / "photo.mp4"),
            "--checkpoint", str(checkpoint), "--out", str(out), "--tile", str(TILE), "--device", "cpu"]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["movie2_x4.mp4", "movie_x4.mp4", "photo_srgan_x4.png"]
    printed = capsys.readouterr().out
    assert "12 frames at 24 fps, 256x192; audio copied (aac)" in printed and "1 image(s) written" in printed
    assert len(probe(out / "movie_x4.mp4")["frames"]) == FRAMES
    # the side-by-side flag and the bicubic baseline through the command line
    assert cli.main(argv[:2] + argv[4:] + ["--side-by-side"]) == 0
    assert probe(out / "movie_x4_side_by_side.mp4")["frames"][0].shape == (SCALE * H, 2 * SCALE * W, 3)
    assert cli.main(["upscale", str(tmp_path / "movie.dat"), "--bicubic", "--scale", "2", "--out", str(out)]) == 0
    assert probe(out / "movie_bicubic_x2.mp4")["frames"][0].shape == (2 * H, 2 * W, 3)


def _one_line_error(capsys, argv, *needles):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_bad_inputs_are_one_line_errors(tmp_path, clip, checkpoint, capsys):
    args = ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--device", "cpu"]
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    _one_line_error(capsys, ["upscale", str(text)] + args, "notes.mp4", "neither an image nor a video")
    shutil.copy(text, tmp_path / "notes.png")  # FFmpeg's image2 reader takes any *.png for a still image
    _one_line_error(capsys, ["upscale", str(tmp_path / "notes.png")] + args, "notes.png", "neither an image")
    sound = make_clip(tmp_path / "sound.mp4", video_stream=False)  # audio only, named like a video
    _one_line_error(capsys, ["upscale", str(sound)] + args, "sound.mp4", "no video stream", "audio")
    # a Matroska file whose video codec id no decoder knows
    ffv1 = make_clip(tmp_path / "ffv1.mkv", audio=None, vcodec="ffv1", pix_fmt="yuv420p", options={})
    unknown = tmp_path / "unknown.mkv"
    unknown.write_bytes(ffv1.read_bytes().replace(b"V_FFV1", b"V_QQQQ"))
    _one_line_error(capsys, ["upscale", str(unknown)] + args, "unknown.mkv", "cannot be decoded")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _one_line_error(capsys, ["upscale", str(clip), "--checkpoint", str(checkpoint), "--out", str(blocker / "sub")],
                    "cannot write", "a_file")
    _one_line_error(capsys, ["upscale", str(clip), "--bicubic", "--scale", "2", "--side-by-side"], "--side-by-side")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(ConfigError, match="side-by-side"):
        video.frame_upscaler(None, scale=2, side_by_side=True)


class _Interrupted(models.Generator):
    """A real generator that is interrupted (Ctrl-C) on its 6th call, i.e. within frame 2 of 4 tiles each."""

    calls = 0

    def forward(self, lr_img):
        type(self).calls += 1
        if type(self).calls == 6:
            raise KeyboardInterrupt
        return super().forward(lr_img)


def test_interrupted_run_leaves_no_output(tmp_path, clip):
    g = _generator(cls=_Interrupted)
    with pytest.raises(KeyboardInterrupt):
        video.upscale_video(clip, tmp_path, g, tile=TILE)
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a temporary file
    # an earlier complete output stays as it was
    _Interrupted.calls = -100
    done = video.upscale_video(clip, tmp_path, g, tile=TILE).path
    before = done.read_bytes()
    _Interrupted.calls = 0
    with pytest.raises(KeyboardInterrupt):
        video.upscale_video(clip, tmp_path, g, tile=TILE)
    assert list(tmp_path.iterdir()) == [done] and done.read_bytes() == before
