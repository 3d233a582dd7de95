#!/usr/bin/env bash
# The GPU check of neural@1's CUDA forward pass, for a machine with an
# NVIDIA GPU and nvcc (docs/models/neural-1.md, "CUDA"):
#
#   1. builds with CUDA (nvcc from the PATH, or NVCC=/path/to/nvcc);
#   2. runs build/unit/test_neural_cuda: the GPU's logits against the CPU's
#      and PyTorch's (fixture and committed weights, a prefill, a batch of
#      32 slots at different positions) and the GPU's batch invariance; it
#      prints the largest |GPU - CPU| logit difference;
#   3. prints tokens per second at batch 1 and 32 on the GPU beside the CPU
#      (build/bench/neural_speed with CADENZA_NEURAL_DEVICE=cpu and cuda,
#      one OpenBLAS thread as the workers run).
#
#   tools/cuda_check.sh [steps] [rounds]      (default 256 steps, 3 rounds)
#
# Exits non-zero when nvcc or the GPU is missing or a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-256}"
ROUNDS="${2:-3}"
WEIGHTS=workers/models/neural/weights/neural-1.cztf

NVCC="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$NVCC" ]]; then
    echo "cuda_check: nvcc was not found: put the CUDA toolkit's bin/ on the PATH or set NVCC" >&2
    exit 2
fi
export NVCC
echo "== toolkit: $("$NVCC" --version | tail -n 1)"
if command -v nvidia-smi >/dev/null; then
    echo "== GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
fi

make -s -j"$(nproc)" build/unit/test_neural_cuda build/bench/neural_speed

echo "== test_neural_cuda"
log="$(mktemp)"
trap 'rm -f "$log" "$log".*' EXIT
set +e
build/unit/test_neural_cuda 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if ((rc != 0)); then
    echo "cuda_check: test_neural_cuda failed" >&2
    exit 1
fi

echo "== decoding speed, tokens per second ($STEPS steps, best of $ROUNDS rounds)"
export OPENBLAS_NUM_THREADS=1
for dev in cpu cuda; do
    CADENZA_NEURAL_DEVICE=$dev build/bench/neural_speed "$WEIGHTS" "$STEPS" "$ROUNDS" >"$log.$dev"
done
awk '
    FNR == 1 { dev = (FILENAME ~ /cuda$/) ? "cuda" : "cpu" }
    { v[dev, $1] = $2 }
    END {
        printf "  %-6s %12s %12s %10s %8s\n", "device", "batch 1", "batch 32", "32 / 1", "chunk"
        for (i = 1; i <= 2; i++) {
            d = i == 1 ? "cpu" : "cuda"
            b1 = v[d, "neural_tokens_per_s_batch1"]; b32 = v[d, "neural_tokens_per_s_batch32"]
            printf "  %-6s %12.0f %12.0f %9.2fx %8d\n", d, b1, b32, b32 / b1,
                   v[d, "neural_batch_chunk"]
        }
        printf "  GPU / CPU: %.2fx at batch 1, %.2fx at batch 32\n",
               v["cuda", "neural_tokens_per_s_batch1"] / v["cpu", "neural_tokens_per_s_batch1"],
               v["cuda", "neural_tokens_per_s_batch32"] / v["cpu", "neural_tokens_per_s_batch32"]
        printf "  same tokens at batch 1 and 32: cpu %s, cuda %s\n",
               v["cpu", "neural_batch_same_tokens"] ? "yes" : "NO",
               v["cuda", "neural_batch_same_tokens"] ? "yes" : "NO"
    }' "$log.cpu" "$log.cuda"
grep -h "max |GPU - CPU|" "$log" | sed 's/^/  /'
