#!/usr/bin/env bash
# neural@1's benchmarks (run by make bench via tests/bench/run.sh), each
# beside its baseline in the same run:
#
#   decoding   tokens per second at batch 1, 8 and 32 (build/bench/neural_speed:
#              the batched forward step and the sampler, as the worker decodes),
#              with one OpenBLAS thread as the workers run; batch 32 must give
#              at least 4 times batch 1
#   tracks     whole tracks per minute per worker, neural@1 beside composer@1
#              (cadenza-worker render of the same prompts, 30 s each: decode,
#              arrange, render, commit)
#   quality    held-out bits per token of the committed weights beside the
#              n-gram baseline trained on the same split (tools/model/make_model.sh
#              eval; it makes the Python environment of make model once).
#   memory     the longest run of notes, in any key, that one of 200 generated
#              pieces shares with a training piece (build/bench/memorisation
#              against the training melodies beside the weights), as served
#              (the worker's guard on) and with the guard off, beside it: what
#              the model alone would copy. None served may be over 12 notes.
#   (quality comes after memory; CADENZA_BENCH_SKIP_MODEL_EVAL=1 skips it.)
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x bin/cadenza-worker && -x build/bench/neural_speed && -x build/bench/memorisation ]] ||
    make -s all
export OPENBLAS_NUM_THREADS=1
WEIGHTS=workers/models/neural/weights/neural-1.cztf

echo "== neural@1: decoding, tokens per second ($(sha256sum "$WEIGHTS" | cut -c1-12), one OpenBLAS thread)"
build/bench/neural_speed "$WEIGHTS" 256 3 | awk '
    { v[$1] = $2 }
    END {
        printf "  batch 1    %8.0f tokens/s\n", v["neural_tokens_per_s_batch1"]
        printf "  batch 8    %8.0f tokens/s\n", v["neural_tokens_per_s_batch8"]
        printf "  batch 32   %8.0f tokens/s\n", v["neural_tokens_per_s_batch32"]
        r = v["neural_tokens_per_s_batch32"] / v["neural_tokens_per_s_batch1"]
        printf "  ratio (batch 32 / batch 1)   %.2fx   (target >= 4x)\n", r
        printf "  one piece at batch 1 (the symbolic part of any track, 3 minutes too): %.0f ms" \
            "   (target < 1000 ms)\n", v["neural_piece_ms_batch1"]
    }'

echo "== tracks per minute per worker: 30 s tracks, the same 4 prompts and seeds"
PROMPTS=("calm piano ballad in C major" "upbeat folk tune with fiddle, 120 bpm"
    "melancholic waltz with strings in A minor" "bright pop with acoustic guitar")
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for model in composer@1 neural@1; do
    start=$(date +%s.%N)
    for i in "${!PROMPTS[@]}"; do
        rm -rf "$out/t"
        bin/cadenza-worker render --prompt "${PROMPTS[$i]}" --out "$out/t" --duration 30 \
            --seed $((900 + i)) --model "$model" >/dev/null 2>&1
    done
    end=$(date +%s.%N)
    awk -v m="$model" -v s="$start" -v e="$end" -v n="${#PROMPTS[@]}" \
        'BEGIN { printf "  %-12s %6.1f tracks/min   (%.2f s a track, the process start included)\n",
                 m, 60 * n / (e - s), (e - s) / n }'
done

echo "== neural@1: memorisation: 200 generated pieces against the training melodies"
build/bench/memorisation --dump "$out/neural.tok" | awk '
    { v[$1] = $2 }
    END {
        printf "  references: %d training melodies (the worker guards against the same)\n", v["references"]
        for (i = 1; i <= 2; i++) {
            m = i == 1 ? "guarded" : "unguarded"
            printf "  %-9s  longest run shared: %2d notes (limit %d), pieces over it: %d of %d;" \
                " median %d, p95 %d; %.0f tokens/s\n",
                m, v[m "_max_shared_notes"], v["limit_notes"], v[m "_pieces_over_limit"],
                v[m "_pieces"], v[m "_p50_shared_notes"], v[m "_p95_shared_notes"],
                v[m "_tokens_per_s"]
        }
        printf "  the guard turned %d draws aside; served pieces are the guarded ones\n",
            v["guarded_guarded_draws"]
    }'

if [[ "${CADENZA_BENCH_SKIP_MODEL_EVAL:-}" == 1 ]]; then
    echo "== neural@1: held-out bits per token: skipped (CADENZA_BENCH_SKIP_MODEL_EVAL=1)"
    exit 0
fi
echo "== neural@1: held-out bits per token, beside the n-gram baseline on the same split"
tools/model/make_model.sh eval 2>/dev/null | awk '
    { v[$1] = $2 }
    END {
        printf "  transformer          %.3f bits/token\n", v["transformer_bits_per_token"]
        printf "  n-gram (order %d)     %.3f bits/token\n", v["markov_best_order"],
            v["markov_best_bits_per_token"]
        printf "  over %d held-out tokens\n", v["test_tokens"]
    }'

# ---- distances to the held-out corpus (issue 16) ---------------------------
# Pitch-class and interval histograms, notes per bar and in-key ratio of
# three sets of generated melodies against the test split, beside the val
# split as the floor (tools/model/distances.py; the definitions are in its
# header and in docs/models/neural-1.md):
#   neural@1    the 200 served (guarded) pieces of the memorisation run above
#               (--dump: every section as one line of tokens)
#   composer@1  100 pieces of 30 s rendered by the worker, their melody part
#               as tokens (tools/model/composer_set.py)
#   n-gram      200 pieces of the Kneser-Ney baseline under the same grammar
#               and the same conditioning as neural@1's (markov.py sample)
# About two minutes on 2 cores. Skipped with the held-out figures above.
echo "== neural@1: distances to the held-out corpus, beside composer@1, the n-gram and the floor"
PY=build/model-venv/bin/python
start=$(date +%s)
"$PY" tools/model/composer_set.py --n 100 --out "$out/composer.tok" 2>"$out/log" ||
    { cat "$out/log" >&2; exit 1; }
"$PY" tools/model/markov.py sample --n 200 --out "$out/ngram.tok" 2>"$out/log" ||
    { cat "$out/log" >&2; exit 1; }
"$PY" tools/model/distances.py --table --set "neural@1=$out/neural.tok" \
    --set "composer@1=$out/composer.tok" --set "n-gram=$out/ngram.tok"
echo "  ($(($(date +%s) - start)) s for the composer@1 and n-gram sets and the measures)"
