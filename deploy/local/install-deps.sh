#!/usr/bin/env bash
# deploy/local/install-deps.sh: installs what building, testing and running
# Cadenza locally needs on Debian 12: the build and library packages,
# Postgres 15, Redis, Java 17 and Maven (for Kafka), audio tools, then the
# Kafka jars. Idempotent: when everything is present it does nothing and
# returns at once.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PACKAGES=(
    # build and test toolchain
    build-essential pkg-config clang clang-format libcmocka-dev libclang-rt-14-dev
    # client libraries the C code links against
    libpq-dev librdkafka-dev libhiredis-dev libcjson-dev libmicrohttpd-dev
    libcurl4-openssl-dev libssl-dev
    # audio: decoding/encoding, loudness, fingerprints, resampling, synthesis,
    # and track features (tempo with aubio, spectra with FFTW single precision)
    libsndfile1-dev libebur128-dev libchromaprint-dev libsoxr-dev libaubio-dev libfftw3-dev
    libfluidsynth-dev fluid-soundfont-gm ffmpeg
    # the neural model's matrix products (the worker only)
    libopenblas-dev
    # the services of the local stack
    postgresql-15 postgresql-contrib redis-server openjdk-17-jre-headless maven
    # tools used by the scripts and the tests (pip: schemathesis, see below)
    curl python3 python3-yaml python3-pip
    # make bench baselines and independent meters for tests
    wrk fluidsynth aubio-tools
    # browser tests of the curators' page (tests/ui): headless Chromium
    # driven by playwright-core on Node.js
    chromium nodejs
)

# npm ships inside some Node.js packages and apart in Debian's.
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(npm)
fi

# pytest may already come from pip; only ask Debian for it when missing.
if ! python3 -m pytest --version >/dev/null 2>&1; then
    PACKAGES+=(python3-pytest)
fi

# One dpkg-query for all; packages it does not know are simply not listed.
declare -A installed=()
while read -r pkg status; do
    if [[ "$status" == installed ]]; then installed[$pkg]=1; fi
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)

missing=()
for pkg in "${PACKAGES[@]}"; do
    [[ -n "${installed[$pkg]:-}" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    if [[ $EUID -eq 0 ]]; then
        run_apt() { DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
    else
        command -v sudo >/dev/null || die "missing packages (${missing[*]}) and no sudo"
        run_apt() { sudo DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
    fi
    log "installing: ${missing[*]}"
    run_apt update -q
    run_apt install -y -q --no-install-recommends "${missing[@]}"
fi

# Python test tools that Debian does not package (tests/requirements.txt),
# installed with the same python3 that runs pytest. Debian's own Python
# refuses pip outside a virtualenv (PEP 668) unless told otherwise.
if ! python3 -c 'import schemathesis, prometheus_client' >/dev/null 2>&1; then
    log "installing Python test tools: $(tr '\n' ' ' <"$CADENZA_REPO_ROOT/tests/requirements.txt")"
    python3 -m pip install -q -r "$CADENZA_REPO_ROOT/tests/requirements.txt" 2>/dev/null ||
        python3 -m pip install -q --break-system-packages -r "$CADENZA_REPO_ROOT/tests/requirements.txt"
fi

# The browser tests' driver: playwright-core, pinned by tests/ui's
# package-lock.json; it drives the Chromium above and downloads nothing.
ui="$CADENZA_REPO_ROOT/tests/ui"
if [[ ! -f "$ui/node_modules/.package-lock.json" ||
    "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]]; then
    log "installing the browser tests' packages (npm ci in tests/ui)"
    (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error)
fi

"$CADENZA_LOCAL_DIR/kafka.sh" fetch
