#!/usr/bin/env bash
# MELD's full configuration on a CUDA GPU, as one prepared check for a short GPU lease:
#   1. the machine: GPU, torch, MuJoCo rendering one frame of the WidowX cable twin (EGL);
#   2. `bench.bench_meld` at the full and the reduced sizes on the GPU (model / actor-critic steps/s);
#   3. a time-boxed run of config/train_meld_full.yaml (`--device cuda`), its model pre-training cut to
#      about a minute of the measured model rate, ending with the held-out evaluation and the plot.
# Usage: bash bench/meld_cuda.sh OUT_DIR [TRAIN_MINUTES=5] [DEVICE=cuda]
# On a bare image, carried wheels (.whl/) and GL loaders (.gl/*.deb) are installed first when present.
# Every phase runs even if an earlier one failed; OUT_DIR gets checks.log, train.log and the run's
# train.csv, eval.csv, config.yaml, training.png and a rendered frame (twin_frame.png).
set -u
OUT_DIR=${1:?usage: bash bench/meld_cuda.sh OUT_DIR [TRAIN_MINUTES] [DEVICE]}
MINUTES=${2:-5}
DEVICE=${3:-cuda}
[[ $MINUTES =~ ^[1-9][0-9]*$ ]] || { echo "bench/meld_cuda.sh: TRAIN_MINUTES must be a whole number >= 1, got '$MINUTES'" >&2; exit 2; }
RUN=${MELD_CUDA_RUN_DIR:-/tmp/meld_cuda_run}
PY=${PYTHON:-python3}
CONFIG=${MELD_CUDA_CONFIG:-config/train_meld_full.yaml}  # the run's config (the reduced one for a dry run)
mkdir -p "$OUT_DIR"
CHECKS="$OUT_DIR/checks.log"
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST

{
  echo "== $(date -u +%FT%TZ) setup"
  if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  nvidia_egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$nvidia_egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$nvidia_egl
  if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
  fi
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  $PY -c "import sys, torch, mujoco, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.cuda.is_available(), 'mujoco', mujoco.__version__, 'numpy', numpy.__version__, 'cpus', __import__('os').cpu_count())"
  echo "== $(date -u +%FT%TZ) one rendered frame of the twin"
  $PY - "$OUT_DIR/twin_frame.png" <<'EOF'
import sys, time
import cv2
import numpy as np
from belief.meld.train import make_env
env = make_env("widowx_cable", 0)
obs, _ = env.reset(seed=0)
t = time.perf_counter()
for _ in range(20):
    obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
dt = (time.perf_counter() - t) / 20
img = obs["image"] if isinstance(obs, dict) else obs
print(f"frame {img.shape} {img.dtype} mean {img.mean():.1f}; env step with render {dt * 1e3:.1f} ms")
cv2.imwrite(sys.argv[1], cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
EOF
  echo "== $(date -u +%FT%TZ) bench, full sizes"
  timeout 150 $PY -m bench.bench_meld --config config/train_meld_full.yaml --device "$DEVICE" 2>&1 | grep -v Warning
  echo "== $(date -u +%FT%TZ) bench, reduced sizes"
  timeout 120 $PY -m bench.bench_meld --config config/train_meld.yaml --device "$DEVICE" 2>&1 | grep -v Warning
} >"$CHECKS" 2>&1
cat "$CHECKS"

# model pre-training: about a minute at the measured full-size rate (the config's 5000 steps at most)
rate=$(awk '/model ELBO steps/ {print $4; exit}' "$CHECKS")
pretrain=$($PY -c "import sys; r = float(sys.argv[1] or 0); print(max(20, min(5000, int(60 * r))))" "${rate:-0}")
echo "== $(date -u +%FT%TZ) $CONFIG run on $DEVICE: ${MINUTES} min budget, ${pretrain} pre-training steps" \
  | tee "$OUT_DIR/train.log"
rm -rf "$RUN"
# the budget ends the loop; the hard limit (budget + 2 min for the final evaluation and the plot)
# sends SIGTERM, which checkpoints
timeout $((MINUTES * 60 + 120)) $PY -m belief.meld.train --config "$CONFIG" --device "$DEVICE" \
  --out "$RUN" --set time_budget_min="$MINUTES" --set pretrain_steps="$pretrain" --set eval_every=25 \
  2>&1 | tr '\r' '\n' | grep -v -e Warning -e '%|' >>"$OUT_DIR/train.log"
echo "== $(date -u +%FT%TZ) done (exit ${PIPESTATUS[0]})" | tee -a "$OUT_DIR/train.log"
tail -5 "$OUT_DIR/train.log"
for f in train.csv eval.csv config.yaml training.png; do
  [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT_DIR/"
done
ls -la "$OUT_DIR"
