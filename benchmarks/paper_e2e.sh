#!/usr/bin/env bash
# The paper profile end to end on one GPU (issue 15): one prepared command, <= 5 minutes on one H100/H200.
#
#   bash benchmarks/paper_e2e.sh                    # on a CUDA machine, from anywhere
#   bash benchmarks/paper_e2e.sh --cpu-smoke        # the same pipeline with the smoke profile on the CPU (~1-2 min)
#   bash benchmarks/paper_e2e.sh --check-deps       # print the Python packages it needs that are missing here
#   bash benchmarks/paper_e2e.sh --fetch-wheels [PKG ...]   # where pip reaches a registry: wheels for a machine
#                                                   # that has none (default PKG: nbclient nbformat ipykernel ipywidgets)
#
# What it does, each stage under a timeout and the whole under BUDGET_S:
#  1. dependencies: checks that torch, torchvision, scikit-image, matplotlib, tensorboard, nbclient, nbformat,
#     ipykernel, ipywidgets ... import; installs missing ones from the wheel folder $WHEELS (default .whl/,
#     git-ignored) without any registry. Make that folder beforehand with --fetch-wheels (it downloads for
#     CPython 3.12 on manylinux x86-64, the GPU machine's Python; PIP_DOWNLOAD_ARGS= for this interpreter) and
#     bring it along (the device tool: carry [".whl"]). PyAV is not needed: the `srgan` command imports it only
#     for videos, and a stub stands in when it is missing.
#  2. an explicit DIV2K STAND-IN, in folders named so that every table footnote says it: div2k_standin_train
#     (the tracked DIV2K image data/DIV2K_samples/DIV2K_train_HR/0004.png + scikit-image's 8 training
#     photographs) and div2k_standin_val (Set5).
#  3. `srgan reproduce` of notebooks 01-06 headless under the paper profile, shortened and substituted
#     explicitly through SRGAN_OVERRIDES (gan_iters=E2E_ITERS, E2E_EXTRA=seeds=0, vgg_weights=random,
#     train_data/val_data = the stand-in), then checks that training ran on CUDA (each run's meta.json
#     "device"), that both tables and every figure the notebooks save were written, and that every cell ran
#     without an error.
#  4. at the same time (the small-crop step is bound by the host launching kernels, so the GPU has room), one
#     full-length cell, x4 crop 88, FULL_ITERS=1300 iterations of the paper schedule (no warm-up; validation
#     PSNR every 100 steps on 5 images), and beside it the same cell after an MSE warm-up of WARMUP_ITERS=300
#     (Ledig's remedy, also set through SRGAN_OVERRIDES); then their PSNR curves against bicubic on the same
#     images and protocol.
#  The last line is
#     RESULT gan_psnr=<dB> warmup_gan_psnr=<dB> bicubic_psnr=<dB> notebooks=<ok|failed> ... device=<name>
#
# Outputs: $OUT (else a new temporary folder) receives paper_e2e.log, result.json, the two tables and
# artefacts.tar.gz (tables, figures, executed notebooks, each run's config/meta/metrics/val, the stage logs).
# The bulk (runs with checkpoints, data, caches) stays in $WORK: $OUT/work when OUT is not set, else a folder
# under /tmp (the device tool returns at most 8 files from $OUT).
# Environment: PYTHON (default .venv/bin/python if present, else python3), OUT, WORK, WHEELS, BUDGET_S (300),
# E2E_ITERS (20), E2E_EXTRA (seeds=0), FULL_ITERS (1300), WARMUP_ITERS (300), NB_TIMEOUT (270),
# FULL_TIMEOUT (270). The --cpu-smoke defaults: E2E_ITERS 2, FULL_ITERS 4, WARMUP_ITERS 2.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
mode=gpu
case "${1:-}" in
    --cpu-smoke) mode=cpu ;;
    --check-deps) mode=check ;;
    --fetch-wheels) mode=fetch; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "paper_e2e.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
py=$PYTHON
WHEELS=${WHEELS:-$ROOT/.whl}
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
# module:pip name of everything the notebooks and the training need
DEPS="torch torchvision numpy PIL:pillow skimage:scikit-image matplotlib tqdm filelock psutil tensorboard
      nbclient nbformat ipykernel ipywidgets"

missing_deps() {  # the pip names of DEPS that do not import here, on one line
    "$py" - $DEPS <<'EOF'
import importlib.util, sys
names = [arg.partition(":") for arg in sys.argv[1:]]
print(" ".join(pip or mod for mod, _, pip in names if importlib.util.find_spec(mod) is None))
EOF
}

if [ "$mode" = fetch ]; then
    pkgs=("$@")
    [ ${#pkgs[@]} -gt 0 ] || pkgs=(nbclient nbformat ipykernel ipywidgets)
    mkdir -p "$WHEELS"
    git check-ignore -q "$WHEELS" 2>/dev/null || echo "warning: $WHEELS is not git-ignored: do not commit it" >&2
    # shellcheck disable=SC2086  # PIP_DOWNLOAD_ARGS is a list of options
    "$py" -m pip download -d "$WHEELS" ${PIP_DOWNLOAD_ARGS---only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64} "${pkgs[@]}" || exit 1
    echo "$(find "$WHEELS" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1) in $WHEELS"
    exit 0
fi
if [ "$mode" = check ]; then
    missing=$(missing_deps)
    echo "missing: ${missing:-nothing}"
    [ -z "$missing" ]
    exit
fi

# --- the run: folders, log, budget
if [ -n "${OUT:-}" ]; then
    WORK=${WORK:-$(mktemp -d /tmp/paper_e2e_work.XXXXXX)}
else
    OUT=$(mktemp -d /tmp/paper_e2e.XXXXXX)
    WORK=${WORK:-$OUT/work}
fi
mkdir -p "$OUT" "$WORK/logs"
exec > >(tee -a "$OUT/paper_e2e.log") 2>&1
START=$(date +%s)
BUDGET_S=${BUDGET_S:-300}
if [ "$mode" = gpu ]; then
    profile=paper; E2E_ITERS=${E2E_ITERS:-20}; FULL_ITERS=${FULL_ITERS:-1300}; WARMUP_ITERS=${WARMUP_ITERS:-300}
else  # the smoke profile's own sizes: 2 GAN iterations in the notebooks, validation every 2 steps
    profile=smoke; E2E_ITERS=${E2E_ITERS:-2}; FULL_ITERS=${FULL_ITERS:-4}; WARMUP_ITERS=${WARMUP_ITERS:-2}
fi
E2E_EXTRA=${E2E_EXTRA-seeds=0}  # one seed: the notebooks' grid, control and TV study once, not three times
NB_TIMEOUT=${NB_TIMEOUT:-270}
FULL_TIMEOUT=${FULL_TIMEOUT:-270}
log() { echo "[paper_e2e $(($(date +%s) - START)) s] $*"; }
left() {  # seconds for a stage: its own limit, or what is left of the budget if that is less
    local rest=$((BUDGET_S - ($(date +%s) - START)))
    [ "$rest" -lt "$1" ] && echo $((rest > 5 ? rest : 5)) || echo "$1"
}
# the `srgan` command (srgan_lib.cli); PyAV, which it imports for videos only, replaced by a stub when missing
SRGAN='import importlib.util, sys, types
if importlib.util.find_spec("av") is None:
    sys.modules["av"] = types.ModuleType("av")  # videos only: not used here
from srgan_lib.cli import main
sys.argv[0] = "srgan"
sys.exit(main(sys.argv[1:]))'
srgan() {  # srgan TIMEOUT ARGS...
    local t=$1
    shift
    timeout --kill-after=10 "$t" "$py" -c "$SRGAN" "$@"
}

log "mode $mode, profile $profile, python $py, out $OUT, work $WORK, budget ${BUDGET_S} s"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap \
    --format=csv,noheader

# 1. dependencies
missing=$(missing_deps)
if [ -n "$missing" ]; then
    log "missing Python packages: $missing"
    case " $missing " in *" torch "* | *" torchvision "*)
        log "torch/torchvision are missing: this script needs a Python that has them (PYTHON=...)"; exit 2 ;;
    esac
    if [ ! -d "$WHEELS" ]; then
        log "no wheel folder $WHEELS: run 'bash benchmarks/paper_e2e.sh --fetch-wheels $missing' where pip" \
            "reaches a registry and bring $WHEELS along"
        exit 2
    fi
    # shellcheck disable=SC2086
    if ! timeout "$(left 120)" "$py" -m pip install -q --no-index --find-links "$WHEELS" $missing; then
        log "installing into $py's environment failed; into $WORK/site instead"
        # shellcheck disable=SC2086
        timeout "$(left 120)" "$py" -m pip install -q --no-index --find-links "$WHEELS" --target "$WORK/site" \
            $missing && export PYTHONPATH=$PYTHONPATH:$WORK/site
    fi
    missing=$(missing_deps)
    [ -z "$missing" ] || { log "still missing: $missing (bring their wheels in $WHEELS)"; exit 2; }
fi
if [ "$mode" = gpu ] && ! "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    log "CUDA is not available: run this on a GPU machine, or --cpu-smoke for the same pipeline on the CPU"
    exit 2
fi
log "dependencies: present"

# 2. the DIV2K stand-in, named as such
STANDIN=$WORK/standin
timeout "$(left 60)" "$py" - "$STANDIN" <<'EOF' || { log "the stand-in data could not be built"; exit 1; }
import shutil, sys
from pathlib import Path

from srgan_lib import images, samples
from srgan_lib.config import PROJECT_ROOT

train, val = Path(sys.argv[1]) / "div2k_standin_train", Path(sys.argv[1]) / "div2k_standin_val"
samples.write_samples(train, "train")
shutil.copy(PROJECT_ROOT / "data/DIV2K_samples/DIV2K_train_HR/0004.png", train / "div2k_0004.png")
shutil.copytree(PROJECT_ROOT / "data/Set5/HR", val, dirs_exist_ok=True)
for folder in (train, val):
    print(f"{folder}: {', '.join(p.name for p in images.list_images(folder))}")
EOF
TRAIN=$STANDIN/div2k_standin_train
VAL=$STANDIN/div2k_standin_val
export SRGAN_RUNS=$WORK/runs SRGAN_RESULTS=$WORK/results SRGAN_DATA=$WORK/data
STANDIN_OVERRIDES="vgg_weights=random,train_data=$TRAIN,val_data=$VAL"

# 4 (started first, in the background). The full-length cell and its MSE-warm-up twin.
full_cell() {  # full_cell NAME OVERRIDES [ARGS]
    SRGAN_OVERRIDES=$2 srgan "$(left "$FULL_TIMEOUT")" train --profile "$profile" --scale 4 --crop 88 \
        --data "$TRAIN" --val-data "$VAL" --iters "$FULL_ITERS" --runs "$WORK/full/$1" --quiet "${@:3}" \
        >"$WORK/logs/full_$1.log" 2>&1
}
log "full-length cells: x4 crop 88, $FULL_ITERS GAN iterations; alone and after $WARMUP_ITERS MSE iterations"
full_cell gan "vgg_weights=random" --warmup 0 &  # the paper's schedule: no warm-up (the profile's own, stated)
pid_gan=$!
full_cell warmup_gan "vgg_weights=random,warmup_iters=$WARMUP_ITERS" &
pid_warm=$!

# 3. the notebooks
NB_OVERRIDES="gan_iters=$E2E_ITERS,$E2E_EXTRA${E2E_EXTRA:+,}$STANDIN_OVERRIDES"
log "notebooks 01-06: srgan reproduce --profile $profile, SRGAN_OVERRIDES=$NB_OVERRIDES"
SRGAN_OVERRIDES=$NB_OVERRIDES srgan "$(left "$NB_TIMEOUT")" reproduce --profile "$profile"
nb_rc=$?
log "srgan reproduce: exit $nb_rc"
wait $pid_gan
gan_rc=$?
wait $pid_warm
warm_rc=$?
log "full-length cells: exit $gan_rc (GAN only), $warm_rc (warm-up + GAN)"
for name in gan warmup_gan; do
    echo "--- the last lines of $WORK/logs/full_$name.log"
    tail -n 5 "$WORK/logs/full_$name.log"
done

# 5. checks and the report
timeout "$(left 120)" "$py" - "$mode" "$profile" "$WORK" "$OUT" "$nb_rc" "$gan_rc" "$warm_rc" "$START" <<'EOF'
import csv, json, re, shutil, sys, time
from pathlib import Path

from srgan_lib import config, evaluate

mode, profile, work, out = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
nb_rc, gan_rc, warm_rc, start = (int(a) for a in sys.argv[5:9])
want_device = "cuda" if mode == "gpu" else "cpu"
problems, summary = [], {"mode": mode, "profile": profile}

# the notebooks: training on the device, no failed cell, both tables, every figure they save
results = config.results_dir(profile)  # SRGAN_RESULTS (/smoke for the smoke profile)
metas = {str(p.parent.relative_to(work)): json.loads(p.read_text()) for p in (work / "runs").rglob("meta.json")}
devices = sorted({m.get("device", "?") for m in metas.values()})
print(f"notebook runs: {len(metas)}, devices {devices}, precision "
      f"{sorted({m.get('precision', 'unrecorded') for m in metas.values()})}")
if not metas or any(not d.startswith(want_device) for d in devices):
    problems.append(f"training ran on {devices or 'nothing'}, not {want_device}")
if not all(m.get("finished") for m in metas.values()):
    problems.append("a notebook run did not finish: " + ", ".join(k for k, m in metas.items() if not m.get("finished")))
failed = []
for nb_path in sorted((config.PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
    done = results / "notebooks" / nb_path.name
    if not done.is_file():
        failed.append(f"{nb_path.name} (not executed)")
        continue
    cells = [c for c in json.loads(done.read_text())["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    errors = [o.get("ename", "?") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors or any(c.get("execution_count") is None for c in cells):
        failed.append(f"{nb_path.name} ({', '.join(errors) or 'cells not run'})")
if failed or nb_rc:
    problems.append(f"notebooks failed (exit {nb_rc}): {', '.join(failed) or 'see the log'}")
for name in ("table1_x2.md", "table2_x4.md"):
    table = results / "tables" / name
    text = table.read_text() if table.is_file() else ""
    marks = [m for m in ("DATA SUBSTITUTE", "div2k_standin", "RANDOM VGG WEIGHTS", "[overrides:") if m not in text]
    if not text or marks:
        problems.append(f"{table}: {'missing' if not text else 'lacks ' + ', '.join(marks)}")
    if text:
        shutil.copy(table, out / name)
saved = set()
for nb_path in (config.PROJECT_ROOT / "notebooks").glob("*.ipynb"):  # figures / 'name.png', f'..{x}..' -> glob
    for name in re.findall(r"figures\s*/\s*f?['\"]([^'\"]+\.png)['\"]", nb_path.read_text()):
        saved.add(re.sub(r"\{[^}]*\}", "*", name.replace("\\", "")))
missing = sorted(p for p in saved if not list((results / "figures").glob(p)))
print(f"figures: {len(saved)} saved by the notebooks, missing {missing or 'none'}")
if not saved or missing:
    problems.append(f"figures missing: {missing or 'none found in the notebooks'}")
summary.update(notebook_runs=len(metas), devices=devices, notebooks_failed=failed, figures_missing=missing)

# the full-length cells: validation PSNR against bicubic on the same images, protocol and resize
curves, finals, precision, names, bicubic = {}, {}, set(), set(), float("nan")
for name, rc in (("gan", gan_rc), ("warmup_gan", warm_rc)):
    found = sorted((work / "full" / name).glob("*/config.json"))  # the one run of that folder
    run = found[0].parent if found else work / "full" / name / "(no run)"
    meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").is_file() else {}
    if rc or not meta.get("finished") or not str(meta.get("device", "")).startswith(want_device):
        problems.append(f"full-length cell {name}: exit {rc}, finished {meta.get('finished')}, device {meta.get('device')}")
    precision.add(meta.get("precision", "unrecorded"))
    names.add(meta.get("device_name") or "none")
    rows = list(csv.DictReader((run / "val.csv").open(newline=""))) if (run / "val.csv").is_file() else []
    curves[name] = {int(r["step"]): float(r["psnr"]) for r in rows}
    finals[name] = curves[name][max(curves[name])] if curves[name] else float("nan")
    if (run / "config.json").is_file():
        cfg = config.TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
        summary[f"{name}_schedule"] = {"warmup_iters": cfg.warmup_iters, "gan_iters": cfg.gan_iters,
                                       "val_every": cfg.val_every, "val_images": cfg.val_images}
if (run / "config.json").is_file():  # training's validation: evaluate_images on these settings (srgan_lib.train)
    bicubic = evaluate.evaluate_images(Path(cfg.val_data), cfg.scale, protocol="standard",
                                       resize_method=cfg.resize_method, limit=cfg.val_images,
                                       max_side=cfg.val_max_side).values["psnr"]
steps = sorted(set(curves["gan"]) | set(curves["warmup_gan"]))
print("validation PSNR (dB, standard protocol, x4) by step; the warm-up run's first steps are its MSE phase")
print(f"{'step':>6} {'GAN only':>9} {'warm-up+GAN':>12} {'bicubic':>8}")
for s in steps:
    cells = [f"{curves[n][s]:.2f}" if s in curves[n] else "-" for n in ("gan", "warmup_gan")]
    print(f"{s:>6} {cells[0]:>9} {cells[1]:>12} {bicubic:>8.2f}")
summary.update(curves=curves, final_psnr=finals, bicubic_psnr=bicubic, precision=sorted(precision),
               device_name=sorted(names), problems=problems, minutes=round((time.time() - start) / 60, 2))
(out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
for p in problems:
    print(f"PROBLEM: {p}")
print(f"RESULT gan_psnr={finals['gan']:.2f} warmup_gan_psnr={finals['warmup_gan']:.2f} bicubic_psnr={bicubic:.2f} "
      f"notebooks={'failed' if failed or nb_rc else 'ok'} checks={'ok' if not problems else 'failed'} "
      f"precision={'/'.join(sorted(precision))} minutes={summary['minutes']} "
      f"device={'/'.join(sorted(names)).replace(' ', '_')}")
sys.exit(1 if problems else 0)
EOF
report_rc=$?

# the light artefacts in one archive (the device tool returns at most 8 files)
(cd "$WORK" && find results runs full logs -type f \( -name '*.md' -o -name '*.csv' -o -name '*.json' -o -name '*.png' \
    -o -name '*.ipynb' -o -name '*.log' \) 2>/dev/null | tar czf "$OUT/artefacts.tar.gz" -T -)
log "done in $(($(date +%s) - START)) s: $OUT (paper_e2e.log, result.json, tables, artefacts.tar.gz)"
exit $report_rc
