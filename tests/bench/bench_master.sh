#!/usr/bin/env bash
# Mastering benchmark (run by make bench via tests/bench/run.sh).
#
# Normalise + limit + verify a 180 s stereo 48 kHz track to -14 LUFS /
# -1 dBTP, two ways, in the same run on the same input:
#   cadenza:  cadenza-worker master IN OUT.wav (the post pool's chain: DC
#             filter, compressor, gain, 4x true-peak limiter, libebur128
#             verification), reading and writing the files;
#   ffmpeg:   two-pass loudnorm: a measuring pass, then a linear pass with
#             the measured values, resampled back to 48 kHz.
# Both write 24-bit WAV. Each is run CADENZA_BENCH_RUNS times (default 3)
# and its fastest wall time kept (CPU time beside it); both results are
# then measured by ffmpeg's ebur128 filter (peak=true), a meter neither
# side owns. The input is synthetic music made by ffmpeg: plucked chords,
# a kick on every beat, noise hats, two channels that differ.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x bin/cadenza-worker ]] || make -s bin/cadenza-worker
RUNS="${CADENZA_BENCH_RUNS:-3}"
TARGET=-14
CEILING=-1
work="$(mktemp -d /tmp/cadenza-bench-master.XXXXXX)"
trap 'rm -rf "$work"' EXIT

chord='220*pow(2\,floor(mod(t\,8)/2)/12)'
left="0.25*sin(2*PI*${chord}*t)*exp(-3*mod(t\,0.5))+0.15*sin(2*PI*330*t)*(0.5+0.5*sin(2*PI*0.1*t))"
left+="+0.4*sin(2*PI*55*t)*exp(-12*mod(t\,0.5))+0.05*(random(0)-0.5)*exp(-30*mod(t+0.25\,0.5))"
right="0.25*sin(2*PI*${chord}*t+0.3)*exp(-3*mod(t\,0.5))+0.15*sin(2*PI*440*t)*(0.5+0.5*cos(2*PI*0.13*t))"
right+="+0.4*sin(2*PI*55*t)*exp(-12*mod(t\,0.5))+0.05*(random(1)-0.5)*exp(-30*mod(t+0.25\,0.5))"
ffmpeg -loglevel error -y -f lavfi -i "aevalsrc=exprs='${left}|${right}':s=48000:d=180" \
    -c:a pcm_f32le "$work/in.wav"

# Integrated loudness and true peak by ffmpeg's ebur128 filter.
measure() {
    ffmpeg -hide_banner -nostats -i "$1" -af ebur128=peak=true -f null - 2>&1 |
        awk '/Summary:/ {s = 1} s && $1 == "I:" {i = $2} s && $1 == "Peak:" {p = $2}
             END {print i, p}'
}
now() { date +%s.%N; }
cpu() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }

best_cz=999 best_ff=999 cpu_cz=0 cpu_ff=0
for _ in $(seq "$RUNS"); do
    t0="$(now)"
    /usr/bin/time -f '%U %S' -o "$work/cz.time" \
        bin/cadenza-worker master "$work/in.wav" "$work/cz.wav" --target "$TARGET" \
        --ceiling "$CEILING" >"$work/cz.json"
    t1="$(now)"
    /usr/bin/time -f '%U %S' -o "$work/ff1.time" \
        ffmpeg -hide_banner -nostats -i "$work/in.wav" \
        -af "loudnorm=I=$TARGET:TP=$CEILING:LRA=20:print_format=json" -f null - 2>"$work/ff1.log"
    json="$(sed -n '/^{/,/^}/p' "$work/ff1.log")"
    val() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$json" "$1"; }
    /usr/bin/time -f '%U %S' -o "$work/ff2.time" \
        ffmpeg -hide_banner -loglevel error -y -i "$work/in.wav" \
        -af "loudnorm=I=$TARGET:TP=$CEILING:LRA=20:measured_I=$(val input_i):measured_TP=$(val input_tp):measured_LRA=$(val input_lra):measured_thresh=$(val input_thresh):offset=$(val target_offset):linear=true" \
        -ar 48000 -c:a pcm_s24le "$work/ff.wav"
    t2="$(now)"
    cz="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
    ff="$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}')"
    if awk -v a="$cz" -v b="$best_cz" 'BEGIN {exit !(a < b)}'; then
        best_cz="$cz"
        cpu_cz="$(awk '{print $1 + $2}' "$work/cz.time")"
    fi
    if awk -v a="$ff" -v b="$best_ff" 'BEGIN {exit !(a < b)}'; then
        best_ff="$ff"
        cpu_ff="$(cat "$work/ff1.time" "$work/ff2.time" | awk '{s += $1 + $2} END {print s}')"
    fi
done

read -r cz_i cz_tp <<<"$(measure "$work/cz.wav")"
read -r ff_i ff_tp <<<"$(measure "$work/ff.wav")"
read -r in_i in_tp <<<"$(measure "$work/in.wav")"
echo "== mastering 180 s stereo 48 kHz (input ${in_i} LUFS, ${in_tp} dBTP) to ${TARGET} LUFS / ${CEILING} dBTP, best of ${RUNS}"
printf '  %-34s %7.2f s wall %7.2f s cpu   %6s LUFS (miss %5s LU)   %5s dBTP\n' \
    "cadenza-worker master" "$best_cz" "$cpu_cz" "$cz_i" \
    "$(awk -v i="$cz_i" -v t="$TARGET" 'BEGIN {d = i - t; printf "%.2f", d < 0 ? -d : d}')" "$cz_tp"
printf '  %-34s %7.2f s wall %7.2f s cpu   %6s LUFS (miss %5s LU)   %5s dBTP\n' \
    "ffmpeg loudnorm, two passes" "$best_ff" "$cpu_ff" "$ff_i" \
    "$(awk -v i="$ff_i" -v t="$TARGET" 'BEGIN {d = i - t; printf "%.2f", d < 0 ? -d : d}')" "$ff_tp"
printf '  %-34s %7.1fx wall %6.1fx cpu\n' "speed-up (ffmpeg / cadenza)" \
    "$(awk -v a="$best_ff" -v b="$best_cz" 'BEGIN {print a / b}')" \
    "$(awk -v a="$cpu_ff" -v b="$cpu_cz" 'BEGIN {print a / b}')"
