"""Upscaling a video frame by frame, streamed, with its sound kept.

``srgan upscale clip.mp4 --checkpoint ...`` lands here. PyAV (its wheels carry FFmpeg's
libraries; no system ``ffmpeg`` needed) demuxes the input one packet at a time; every
decoded frame goes through :func:`srgan_lib.upscale.upscale` (tiled, so that a 1080p
frame fits in memory) and straight on into an H.264 encoder. Only the codecs' own
buffers (x264's lookahead) hold frames: memory does not grow with the clip's length.

* **Timing** -- each output frame keeps its input frame's time (see
  :func:`_timestamp`): frame rate, frame count and duration are the input's.
* **Sound** -- the first audio stream is copied packet by packet when MP4 can hold its
  codec (AAC, MP3, Opus, FLAC, AC-3, PCM, ...), else re-encoded to AAC, and
  :attr:`VideoResult.audio` says so. Other streams (subtitles, more audio) are dropped.
* **Colour** -- frames are decoded to RGB with the matrix their stream declares
  (:func:`frame_to_rgb`) and encoded as BT.709 limited range, tagged as such.
* **Which files are videos** is decided by content (:func:`input_kind`), not by extension.
* **No half-written output** -- the file is written under a hidden temporary name
  and renamed when complete (:func:`srgan_lib.fileio.atomic_write`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .config import TILE
from .errors import ConfigError, ImageReadError
from .fileio import atomic_write, check_writable
from .images import to_tensor, to_uint8
from .resize import imresize
from .upscale import load_for_upscale, upscale

#: Sample rates the AAC encoder takes; a re-encoded track at another rate is resampled to 48 kHz.
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_BT709, _BT601, _LIMITED_RANGE = 1, 5, 1  # AVCOL_{PRI,TRC,SPC}_BT709, AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG
#: FFmpeg's matrix codes (AVCOL_SPC_*) that swscale's SWS_CS_* share: BT.709, FCC, BT.601 (two), 240M, BT.2020.
_MATRICES = (1, 4, 5, 6, 7, 9, 10)


class VideoReadError(ImageReadError):
    """A file could not be read as a video: no video stream, a codec FFmpeg cannot decode, corrupt data."""


@dataclass(frozen=True)
class VideoResult:
    """What :func:`upscale_video` wrote: the file, the frames written (= decoded), the input's (= the
    output's) average frame rate, the output's ``(width, height)``, and the audio: ``"none"``,
    ``"copied (<codec>)"`` or ``"re-encoded <codec> -> aac (...)"``."""

    path: Path
    frames: int
    fps: Fraction
    size: tuple[int, int]
    audio: str


def input_kind(path) -> str:
    """``"image"`` or ``"video"`` by content, whatever the extension: Pillow first (FFmpeg
    reads PNGs too; they stay images), then FFmpeg, whose still-image readers do not count.

    Raises:
        ImageReadError: missing, or neither an image Pillow reads nor a video FFmpeg reads.
        VideoReadError: a media file without a video stream (e.g. audio only).
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.format != "MPEG":  # Pillow names MPEG-1/2 video streams but cannot decode them
                return "image"
    except UnidentifiedImageError:
        pass
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError):
        raise ImageReadError(f"{path}: neither an image nor a video file (Pillow and FFmpeg cannot identify it); "
                             "pass images, folders of images or videos") from None
    with container:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):  # FFmpeg's still-image readers (image2 goes by extension)
            raise ImageReadError(f"{path}: neither an image Pillow can read nor a video (FFmpeg takes it for a still "
                                 f"image, {fmt}); remove it or convert it to PNG")
        if not container.streams.video:
            held = ", ".join(sorted({s.type for s in container.streams})) or "no stream"
            raise VideoReadError(f"{path}: no video stream (the file holds {held}); pass a video or an image")
    return "video"


def frame_to_rgb(frame, width: int | None = None, height: int | None = None) -> np.ndarray:
    """A decoded PyAV video frame as RGB, with the YUV matrix and range its stream declares.

    An untagged frame is taken as players take it: BT.709 from 720 lines or 1280
    columns up, else BT.601. Said explicitly, not left to PyAV, whose default differs between versions.

    Returns:
        ndarray: ``height x width x 3`` uint8 RGB (the frame's own size by default).
    """
    if frame.format.is_rgb:
        return frame.to_ndarray(format="rgb24", width=width, height=height)
    matrix = frame.colorspace if frame.colorspace in _MATRICES else \
        (_BT709 if frame.height >= 720 or frame.width >= 1280 else _BT601)
    full = frame.color_range == 2 or frame.format.name.startswith("yuvj")  # AVCOL_RANGE_JPEG
    return frame.to_ndarray(format="rgb24", width=width, height=height, src_colorspace=matrix,
                            src_color_range="JPEG" if full else "MPEG")


def frame_upscaler(generator=None, scale: int | None = None, tile: int | None = TILE,
                   side_by_side: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The function applied to every frame.

    Args:
        generator: a :class:`srgan_lib.models.Generator`; ``None`` = bicubic
            (MATLAB's, :func:`srgan_lib.resize.imresize`) at ``scale``.
        tile: tile side in LR pixels for the generator (``None`` = whole frame).
        side_by_side: put the bicubic upscale left of the network's (for teaching).

    Returns:
        callable: ``H x W x 3`` uint8 RGB -> ``(s*H) x (s*W) x 3`` uint8 RGB, or
        ``(s*H) x (2*s*W) x 3`` side by side (bicubic | SR).
    """
    if generator is not None:
        scale = int(generator.scale)
    elif side_by_side:
        raise ConfigError("--side-by-side compares bicubic with the network: pass --checkpoint, not --bicubic")
    if scale is None:
        raise ConfigError("bicubic video upscaling needs a scale")

    def run(img: np.ndarray) -> np.ndarray:
        bicubic = imresize(img, scale=scale, method="matlab") if generator is None or side_by_side else None
        sr = bicubic if generator is None else to_uint8(upscale(generator, to_tensor(img), tile=tile))[0]
        return np.concatenate([bicubic, sr], axis=1) if side_by_side else sr

    return run


def upscale_video(src, out_dir, generator=None, scale: int | None = None, tile: int | None = TILE,
                  side_by_side: bool = False, crf: int = 18, pix_fmt: str = "yuv420p", codec: str = "libx264",
                  preset: str = "medium", progress: bool = False) -> VideoResult:
    """Upscale every frame of a video into ``out_dir/<stem>_x<s>.mp4``, streamed.

    Args:
        src: a video file in any container and codec FFmpeg decodes (mp4, mkv, mov, webm, ...).
        out_dir: output folder (created). The file is ``<stem>_x<s>.mp4``,
            ``<stem>_x<s>_side_by_side.mp4`` or, without a generator, ``<stem>_bicubic_x<s>.mp4``.
        generator: a generator (eval mode; any device); ``None`` = bicubic at ``scale``.
        tile: tile side in LR pixels (see :func:`srgan_lib.upscale.upscale`); bounds memory.
        side_by_side: bicubic | SR in one frame twice as wide.
        crf, pix_fmt, codec, preset: the video encoder's settings (x264's CRF 18 is
            visually near-lossless; ``crf=0`` with ``pix_fmt="yuv444p"`` is lossless
            but for the RGB -> YUV rounding).
        progress: show a progress bar over frames (tqdm).

    Returns:
        VideoResult: the file, frame count, frame rate, size and what became of the audio.

    Raises:
        VideoReadError: no video stream, an undecodable codec or corrupt data.
        ConfigError: the output folder cannot be written, or bad arguments.
    """
    src = Path(src)
    fn = frame_upscaler(generator, scale, tile, side_by_side)
    scale = int(generator.scale) if generator is not None else scale
    name = f"{src.stem}_x{scale}_side_by_side" if side_by_side else \
        f"{src.stem}_{'bicubic_' if generator is None else ''}x{scale}"
    target = check_writable(Path(out_dir)) / f"{name}.mp4"
    options = {"crf": str(crf), "preset": preset} if codec.startswith("libx26") else {}
    done: list[tuple] = []  # what _transcode returns, for VideoResult
    atomic_write(target, lambda tmp: done.append(_transcode(src, tmp, fn, scale, side_by_side, codec, pix_fmt,
                                                            options, progress)), suffix=".mp4")
    return VideoResult(target, *done[0])


def _decode(packet, src: Path, what: str) -> list:
    try:
        return packet.decode()
    except av.error.FFmpegError as exc:
        raise VideoReadError(f"{src}: cannot decode its {what} ({exc}); the file is corrupt or truncated") from None


def _audio_output(out, ain) -> tuple[object, bool, str]:
    """The output audio stream, whether packets are copied, and the report: copy if MP4 takes the codec."""
    if ain is None:
        return None, False, "none"
    name = ain.codec_context.name if ain.codec_context is not None else "unknown"
    try:
        return out.add_stream_from_template(ain), True, f"copied ({name})"
    except ValueError:  # avformat_query_codec: the container cannot hold this codec
        pass
    rate = ain.rate if ain.rate in _AAC_RATES else 48000
    aout = out.add_stream("aac", rate=rate)
    aout.layout = ain.layout
    return aout, False, f"re-encoded {name} -> aac (MP4 cannot hold {name})"


def _timestamp(pts, time_base: Fraction, fps: Fraction, last: Fraction | None) -> Fraction:
    """A frame's time in seconds: the input's, with the container's rounding to its time base undone.

    Matroska and WebM store milliseconds (frame 1 of a 24 fps clip at 0.042 s): a
    time within half a tick of the constant-rate grid ``k / fps`` is put back on
    it, so that the output's rate is exactly the input's. Other times (variable
    frame rate) are kept as they are; a frame without one follows the last by ``1 / fps``.
    """
    if pts is None:
        return Fraction(0) if last is None else last + 1 / fps
    t = pts * time_base
    on_grid = Fraction(round(t * fps)) / fps
    return on_grid if abs(t - on_grid) <= time_base / 2 else t


def _transcode(src: Path, dst: str, fn, scale: int, side_by_side: bool, codec: str, pix_fmt: str,
               options: dict, progress: bool) -> tuple:
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoReadError(f"{src}: cannot open as a video ({exc})") from None
    with inp:
        if not inp.streams.video:
            raise VideoReadError(f"{src}: no video stream; pass a video or an image")
        vin = inp.streams.video[0]
        if vin.codec_context is None:
            raise VideoReadError(f"{src}: its video codec cannot be decoded by this FFmpeg "
                                 f"(PyAV {av.__version__}); convert the file to H.264 first")
        vin.thread_type = "AUTO"
        w, h = vin.codec_context.width, vin.codec_context.height
        ain = inp.streams.audio[0] if inp.streams.audio else None
        fps = vin.average_rate or vin.guessed_rate or vin.base_rate or Fraction(25)
        seconds = float(vin.duration * vin.time_base) if vin.duration else (inp.duration or 0) / av.time_base
        total = vin.frames or round(seconds * fps) or None  # for the progress bar only
        with av.open(dst, "w", format="mp4") as out:
            vout = out.add_stream(codec, rate=fps, options=options)
            vout.width, vout.height, vout.pix_fmt = scale * w * (2 if side_by_side else 1), scale * h, pix_fmt
            ctx = vout.codec_context
            ctx.time_base = tb_out = 1 / (fps * 512)  # fine enough for variable frame rates too
            rgb_out = pix_fmt in ("rgb24", "bgr24", "bgr0", "gbrp")  # e.g. libx264rgb: no YUV matrix, no tags
            if not rgb_out:
                ctx.color_primaries = ctx.color_trc = ctx.colorspace = _BT709
                ctx.color_range = _LIMITED_RANGE
            aout, copy_audio, audio = _audio_output(out, ain)
            count, last = 0, None
            with tqdm(total=total, unit="frame", desc=src.name, disable=not progress, leave=False, delay=1) as bar:
                for packet in inp.demux([vin] + ([ain] if ain is not None else [])):
                    if packet.stream.index == vin.index:
                        for frame in _decode(packet, src, "video"):
                            img = frame_to_rgb(frame, w, h)
                            new = av.VideoFrame.from_ndarray(np.ascontiguousarray(fn(img)), format="rgb24")
                            if not rgb_out:
                                new = new.reformat(format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
                            last = _timestamp(frame.pts, vin.time_base, fps, last)
                            new.pts, new.time_base = round(last / tb_out), tb_out
                            out.mux(vout.encode(new))
                            count += 1
                            bar.update()
                    elif copy_audio:
                        if packet.dts is not None:  # the demuxer's final empty packet carries nothing
                            packet.stream = aout
                            out.mux(packet)
                    else:
                        for frame in _decode(packet, src, "audio"):
                            out.mux(aout.encode(frame))
                if count == 0:
                    raise VideoReadError(f"{src}: no video frame could be decoded; the file is corrupt or empty")
                out.mux(vout.encode(None))
                if aout is not None and not copy_audio:
                    out.mux(aout.encode(None))
    return count, fps, (vout.width, vout.height), audio


def upscale_videos(videos, checkpoint=None, out_dir="upscaled", tile: int | None = TILE, bicubic: bool = False,
                   scale: int | None = None, device: str = "cpu", side_by_side: bool = False, progress: bool = False,
                   report: Callable[[Path, VideoResult], None] | None = None) -> list[VideoResult]:
    """Upscale video files (see :func:`input_kind`) as :func:`srgan_lib.upscale.upscale_files` does images.

    ``checkpoint, tile, bicubic, scale, device`` are as there, ``side_by_side`` and
    ``progress`` as for :func:`upscale_video`; ``report(input_path, result)`` is
    called after each video. Returns one :class:`VideoResult` per video, in order.
    """
    generator, scale = load_for_upscale(checkpoint, bicubic, scale, device)
    check_writable(Path(out_dir))
    results = []
    for src in videos:
        results.append(upscale_video(src, out_dir, generator, scale=scale, tile=tile, side_by_side=side_by_side,
                                     progress=progress))
        if report is not None:
            report(Path(src), results[-1])
    return results
