#!/bin/sh
# Retrains neural@1 from scratch and writes its weights (make model).
#
# 1. a virtual environment in build/model-venv with tools/model/requirements.txt
#    (created once; pip's own cache makes a re-creation quick);
# 2. corpus.py: the licence-checked training material from music21's corpus
#    into build/model/data and the manifest docs/models/neural-1-data.tsv;
#    melodies.py: the training split's melodies, which the worker's guard
#    against copying reads, into workers/models/neural/weights/neural-1.melodies;
# 3. train.py: at most STEPS steps, as many as fit MAX_MINUTES (train.py
#    times its first 30 steps and sizes the cosine schedule to the budget;
#    the step count it chose is in the weights' header, and STEPS=<that>
#    repeats the run exactly) into build/model/neural-1.pt and the loss log
#    docs/models/neural-1-loss.csv (+ .png);
# 4. export.py: workers/models/neural/weights/neural-1.cztf, its .sha256 and
#    neural-1.logits.json, then reads the file back and checks the logits;
# 5. markov.py: held-out bits per token, transformer beside the n-gram
#    baseline, into docs/models/neural-1-eval.txt.
#
# "make_model.sh eval" does 1, 2 and 5 only: the held-out figures of the
# committed weights beside the baseline, as "name value" lines (make bench).
#
# Environment: STEPS, MAX_MINUTES, SEED, NOTE (free text for the weights'
# "trained" header), PYTHON (the interpreter that makes the venv).
set -eu
cd "$(dirname "$0")/../.."
VENV=build/model-venv
PY=$VENV/bin/python
STEPS=${STEPS:-6000}
MAX_MINUTES=${MAX_MINUTES:-70}
SEED=${SEED:-16}
NOTE=${NOTE:-"full run of tools/model/make_model.sh"}
OUT=workers/models/neural/weights/neural-1.cztf

if [ ! -x "$PY" ] || ! cmp -s tools/model/requirements.txt "$VENV/requirements.txt"; then
    echo "make_model: creating $VENV" >&2
    ${PYTHON:-python3} -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip >&2
    "$PY" -m pip install --quiet -r tools/model/requirements.txt >&2
    cp tools/model/requirements.txt "$VENV/requirements.txt"
fi

start=$(date +%s)
echo "make_model: extracting the corpus" >&2
if [ "${1:-}" = eval ]; then
    "$PY" tools/model/corpus.py --seed "$SEED" --manifest build/model/data/manifest.tsv >/dev/null
    exec "$PY" tools/model/markov.py eval --weights "$OUT"
fi
"$PY" tools/model/corpus.py --seed "$SEED"
"$PY" tools/model/melodies.py
echo "make_model: training ($STEPS steps, at most $MAX_MINUTES minutes)"
"$PY" tools/model/train.py --steps "$STEPS" --max-minutes "$MAX_MINUTES" --seed "$SEED" --note "$NOTE"
echo "make_model: exporting $OUT"
"$PY" tools/model/export.py weights build/model/neural-1.pt --out "$OUT"
"$PY" tools/model/export.py check "$OUT" workers/models/neural/weights/neural-1.logits.json
echo "make_model: held-out evaluation"
"$PY" tools/model/markov.py eval --weights "$OUT" | tee docs/models/neural-1-eval.txt
echo "make_model: done in $(( ($(date +%s) - start) / 60 )) minutes"
