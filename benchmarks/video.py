"""Video upscaling on the CPU (issue 19): frames per second at 360p, and memory of a long clip against a short one.

1. **Speed at 360p.** A 640 x 360 clip at 24 fps (a pan across a sample
   photograph, with an AAC tone) is upscaled x4 (to 2560 x 1440) end to end by
   :func:`srgan_lib.video.upscale_video` -- decode, tiled generator (tile 256),
   x264 (CRF 18, preset medium), audio copy -- with the quick and the paper
   profile's generators (untrained weights: the same arithmetic as trained ones),
   and with bicubic (MATLAB's ``imresize``, the ``--bicubic`` path) as the baseline
   measured in the same process (it pays the same decoding and x264 encoding of
   1440p frames). Reported: frames per second and the ratio to bicubic.
2. **Memory is streamed.** Peak resident memory of upscaling a 60-second clip and a
   5-second one of the same size (64 x 36, 24 fps, AAC), each in a fresh child
   process, with the quick generator: small frames keep the 1,440-frame run short,
   and streaming is a property of the loop, not of the network. The two peaks
   should be nearly equal.
3. **A 1080p frame fits.** Peak resident memory of a 1-frame 1920 x 1080 clip
   upscaled x4 (to 7680 x 4320) with the quick generator, tiled (256), in a child.

The three children run side by side with one torch thread each. Peak memory is the
kernel's high-water mark of the child's own address space (``VmHWM`` in
``/proc/self/status``), not ``ru_maxrss``: on Linux that one carries the parent's
peak across ``fork`` + ``exec`` and would report the parent's size.

The last line is ``RESULT quick_fps=.. paper_fps=.. bicubic_fps=.. quick_vs_bicubic=.. paper_vs_bicubic=..
peak_5s_mb=.. peak_60s_mb=.. peak_ratio=.. peak_1080p_mb=.. minutes=..``.

Usage::

    .venv/bin/python benchmarks/video.py [--quick-frames 12] [--paper-frames 2]   # ~4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/quality.py: before torch is imported


def make_clip(path: Path, width: int, height: int, seconds: float, fps: int = 24) -> Path:
    """A pan across a sample photograph (reflected to any size) with a 440 Hz AAC tone; x264 CRF 18."""
    import av
    import numpy as np

    from srgan_lib.samples import load_sample

    frames = int(round(seconds * fps))
    photo = load_sample("coffee")
    row = np.concatenate([photo, photo[:, ::-1]], axis=1)  # mirrored: no seam where the pan wraps
    canvas = np.tile(row, (-(-height // row.shape[0]), -(-(width + 3 * frames) // row.shape[1]), 1))
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"crf": "18"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream("aac", rate=48000)
        aus.layout = "mono"
        for k in range(frames):
            x = 3 * k  # 3 pixels a frame to the right
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas[:height, x:x + width]), format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        n = int(48000 * frames / fps)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
        for i in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[None, i:i + 1024]), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, i, Fraction(1, 48000)
            out.mux(aus.encode(af))
        out.mux(aus.encode(None))
    return path


def generator(profile: str):
    """The profile's x4 generator (untrained: speed and memory do not depend on the weights)."""
    from srgan_lib import config, models

    cfg = config.get_profile(profile).config(scale=4)
    return models.Generator(scale=4, num_feat=cfg.num_feat, num_block=cfg.num_block,
                            upsample_skip=cfg.upsample_skip).eval()


def speed(clip: Path, out: Path, g, frames: int) -> float:
    """End-to-end frames/s of :func:`srgan_lib.video.upscale_video` on ``clip`` (``g`` None: bicubic)."""
    from srgan_lib import video

    start = time.perf_counter()
    result = video.upscale_video(clip, out, g, scale=4, tile=256)
    assert result.frames == frames, (result.frames, frames)
    return frames / (time.perf_counter() - start)


def peak_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def child_memory(clip: str, out: str) -> None:
    """In a fresh process: upscale ``clip`` with the quick generator, print peaks (MB) as JSON."""
    import torch

    from srgan_lib import video

    torch.set_num_threads(1)
    g = generator("quick")
    before = peak_mb()
    start = time.perf_counter()
    result = video.upscale_video(clip, out, g, tile=256)
    print(json.dumps({"frames": result.frames, "seconds": time.perf_counter() - start, "setup_mb": before,
                      "peak_mb": peak_mb()}))


def run_children(clips: list[Path], out: Path) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(c), str(out)], stdout=subprocess.PIPE,
                              text=True) for c in clips]
    results = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"child failed with code {proc.returncode}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick-frames", type=int, default=12, help="frames of the 360p clip for quick and bicubic")
    parser.add_argument("--paper-frames", type=int, default=2, help="frames of the 360p clip for the paper generator")
    parser.add_argument("--child", nargs=2, metavar=("CLIP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_memory(*args.child)
        return 0

    begin = time.perf_counter()
    import av
    import torch

    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), PyAV {av.__version__}, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        short = make_clip(tmp / "mem_5s.mp4", 64, 36, 5)
        long = make_clip(tmp / "mem_60s.mp4", 64, 36, 60)
        hd = make_clip(tmp / "hd_1080p.mp4", 1920, 1080, 1 / 24)
        quick_clip = make_clip(tmp / "p360.mp4", 640, 360, args.quick_frames / 24)
        paper_clip = make_clip(tmp / "p360_paper.mp4", 640, 360, args.paper_frames / 24)

        # Speed first, alone on the cores; a warm-up run so that no measurement pays first-call costs.
        speed(paper_clip, tmp / "out", generator("quick"), args.paper_frames)
        bic_fps = speed(quick_clip, tmp / "out", None, args.quick_frames)
        quick_fps = speed(quick_clip, tmp / "out", generator("quick"), args.quick_frames)
        paper_fps = speed(paper_clip, tmp / "out", generator("paper"), args.paper_frames)
        for name, fps in (("bicubic", bic_fps), ("quick", quick_fps), ("paper", paper_fps)):
            print(f"360p -> 1440p x4, {name:7s}: {fps:.3f} frames/s end to end ({1 / fps:.2f} s/frame), "
                  f"{fps / bic_fps:.3f}x bicubic")

        mem5, mem60, hd_mem = run_children([short, long, hd], tmp / "out")
        for name, m in (("64x36, 5 s", mem5), ("64x36, 60 s", mem60), ("1920x1080 -> 7680x4320", hd_mem)):
            print(f"clip {name} ({m['frames']} frames, {m['seconds']:.0f} s on one thread): peak RSS "
                  f"{m['peak_mb']:.0f} MB (after loading torch and the generator: {m['setup_mb']:.0f} MB)")
    minutes = (time.perf_counter() - begin) / 60
    print(f"took {minutes:.1f} min")
    print(f"RESULT quick_fps={quick_fps:.3f} paper_fps={paper_fps:.4f} bicubic_fps={bic_fps:.3f} "
          f"quick_vs_bicubic={quick_fps / bic_fps:.3f} paper_vs_bicubic={paper_fps / bic_fps:.4f} "
          f"peak_5s_mb={mem5['peak_mb']:.0f} peak_60s_mb={mem60['peak_mb']:.0f} "
          f"peak_ratio={mem60['peak_mb'] / mem5['peak_mb']:.3f} peak_1080p_mb={hd_mem['peak_mb']:.0f} "
          f"minutes={minutes:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
