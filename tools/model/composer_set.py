"""composer@1's melodies as neural@1 token sequences, for distances.py.

Renders pieces with the real worker, `cadenza-worker render --model
composer@1` (30 s each by default), one prompt and seed per piece, and turns
each piece's melody into sequences of the .tok format, so that distances.py
can hold composer@1 beside neural@1 and the n-gram baseline.

What a render leaves: score.mid (a Standard MIDI File, 480 ticks a quarter,
one track per channel, 4/4 at one tempo; the worker writes it before the
audio) and, on stdout, a JSON summary whose "chosen" object says the key,
the tempo, the form (sections and their bars, from bar 0) and which MIDI
channel each instrument group plays on. The audio is deleted at once.

From that, per piece:

  melody   the notes of the melody group's first channel only (harmony,
           bass, pads and drums are left out); of notes starting together
           the highest; onsets and ends rounded to sixteenths from the start
           of the piece, bars of sixteen; a note is cut where the next one
           starts or its bar ends; pitches moved by octaves into 36..96
           (tokenise.py's rules for the corpus). Notes after the form's last
           bar (the closing chord's tail) are dropped.
  sections one sequence per form section in which the melody plays (the
           intro, where it rests, is left out), labelled SECTION_A, _B, _C...
  prefix   KEY and MODE from the key composer@1 played ("chosen": the
           request's, or its own pick); METER_4_4; TEMPO from the chosen
           tempo (tokenise.tempo_band); DENSITY as neural@1 would be
           conditioned for the same request (the first mood of the prompt,
           as cz_neural_cond_from_controls() maps it: calm, chill, dreamy,
           sad, melancholic, romantic, warm, nostalgic LOW; energetic,
           aggressive, playful, groovy, epic, happy, uplifting HIGH; else
           MID), so distances.py matches composer@1's pieces with real
           music of the density the request asks for, as it does for
           neural@1's.
  chords   estimated from the melody (tokenise.melody_chords), as for the
           corpus's folk tunes, only so that the lines look like the rest;
           distances.py reads no chord.

Prompts: piece i gets a genre, a mood and a key drawn with --seed (20
genres that have a melody instrument, 16 moods, all 24 keys), as
"<mood> <genre> in <key>", and seed --seed + i.

Usage:
  composer_set.py --out FILE [--n 100] [--seed 1000] [--duration 30]
                  [--worker bin/cadenza-worker] [--jobs 2]
Writes FILE and says on stderr what it made; pieces without a melody are
skipped and counted.
"""
import argparse
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenise as T  # noqa: E402
import vocab as V  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GENRES = ["folk", "celtic", "country", "pop", "jazz", "classical", "cinematic", "blues",
          "bossa nova", "soul", "rock", "synthwave", "lofi", "reggae", "funk", "ambient",
          "hip hop", "house", "electronic", "indie pop"]
MOODS = ["calm", "happy", "melancholic", "energetic", "romantic", "dark", "playful", "dreamy",
         "uplifting", "sad", "chill", "epic", "warm", "nostalgic", "mysterious", "groovy"]
NOTES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
# workers/models/neural/tokens.c, density_of_mood()
LOW_MOODS = {"calm", "chill", "dreamy", "sad", "melancholic", "romantic", "warm", "nostalgic"}
HIGH_MOODS = {"energetic", "aggressive", "playful", "groovy", "epic", "happy", "uplifting"}


def prompts(n, seed):
    """[(prompt, seed)] for n pieces."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        key = f"{rng.choice(NOTES)} {rng.choice(['major', 'minor'])}"
        out.append((f"{rng.choice(MOODS)} {rng.choice(GENRES)} in {key}", seed + i))
    return out


def parse_key(name):
    """(tonic pitch class, "major" | "minor") of a key name such as "F# minor"."""
    note, mode = name.split()
    pc = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[note[0].upper()]
    pc += {"#": 1, "b": -1}.get(note[1:], 0)
    return pc % 12, "minor" if mode.lower().startswith("min") else "major"


def midi_notes(path, channel):
    """[(on tick, off tick, pitch)] of one channel (1-based), and ticks a quarter."""
    from music21 import midi
    mf = midi.MidiFile()
    mf.open(path)
    mf.read()
    mf.close()
    notes, sounding = [], {}
    for track in mf.tracks:
        t = 0
        for e in track.events:
            if isinstance(e, midi.DeltaTime):
                t += e.time
                continue
            if e.channel != channel or e.type not in (midi.ChannelVoiceMessages.NOTE_ON,
                                                      midi.ChannelVoiceMessages.NOTE_OFF):
                continue
            if e.type == midi.ChannelVoiceMessages.NOTE_ON and e.velocity > 0:
                sounding.setdefault(e.pitch, []).append(t)
            elif sounding.get(e.pitch):
                notes.append((sounding[e.pitch].pop(0), t, e.pitch))
    return sorted(notes), mf.ticksPerQuarterNote


def melody_bars(notes, tpq, n_bars):
    """[tokenise.Bar] of the melody: the corpus's rules (see the module's doc)."""
    six = tpq / 4
    top = {}  # onset in sixteenths -> (pitch, duration)
    for on, off, pitch in notes:
        q = int(round(on / six))
        dur = max(1, int(round(off / six)) - q)
        if q // 16 < n_bars and (q not in top or pitch > top[q][0]):
            top[q] = (pitch, dur)
    bars = [T.Bar() for _ in range(n_bars)]
    onsets = sorted(top)
    for i, q in enumerate(onsets):
        pitch, dur = top[q]
        bar, pos = divmod(q, 16)
        nxt = onsets[i + 1] - bar * 16 if i + 1 < len(onsets) else 16
        d = max(1, min(dur, nxt - pos, 16 - pos, 16))
        bars[bar].notes.append((pos, T._fit_range(pitch), d))
    return bars


def piece_sequences(summary, midi_path):
    """The token sequences of one render, or None when its melody is silent."""
    chosen = summary["chosen"]
    melody = [i for i in chosen["instruments"] if i["group"] == "melody"]
    if not melody:
        return None
    tonic, mode = parse_key(chosen["key"])
    n_bars = sum(s["bars"] for s in chosen["form"])
    notes, tpq = midi_notes(midi_path, melody[0]["channel"])
    bars = melody_bars(notes, tpq, n_bars)
    sections, start = [], 0
    labels = ["SECTION_A", "SECTION_B"] + ["SECTION_C"] * len(chosen["form"])
    for s in chosen["form"]:
        part = bars[start:start + s["bars"]]
        start += s["bars"]
        if any(b.notes for b in part):
            T.melody_chords(part, "METER_4_4", tonic, mode)
            sections.append((labels[len(sections)], part))
    if not sections:
        return None
    piece = T.Piece(key=tonic, mode="MODE_MIN" if mode == "minor" else "MODE_MAJ", meter="METER_4_4",
                    tempo=T.tempo_band("METER_4_4", chosen["tempo_bpm"]), sections=sections)
    moods = summary.get("controls", {}).get("moods") or []
    density = ("DENSITY_LOW" if moods and moods[0] in LOW_MOODS else
               "DENSITY_HIGH" if moods and moods[0] in HIGH_MOODS else "DENSITY_MID")
    seqs = T.encode(piece)
    for s in seqs:
        s[5] = V.ID[density]
    return seqs


def render(worker, prompt, seed, duration, tmp):
    """Renders one piece; (summary, path of score.mid) or raises RuntimeError."""
    out = os.path.join(tmp, f"piece-{seed}")
    r = subprocess.run([worker, "render", "--prompt", prompt, "--out", out, "--duration", str(duration),
                        "--seed", str(seed), "--model", "composer@1"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{worker} render --prompt {prompt!r} --seed {seed}: {r.stderr.strip()[-400:]}")
    for name in os.listdir(out):
        if name.endswith(".wav"):
            os.remove(os.path.join(out, name))  # 11 MB a piece; only the score is read
    return json.loads(r.stdout), os.path.join(out, "score.mid")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--worker", default=os.path.join(ROOT, "bin/cadenza-worker"))
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    if not os.access(a.worker, os.X_OK):
        sys.exit(f"composer_set: {a.worker} is not there: build it with make bin/cadenza-worker")
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="composer-set-")
    lines, skipped = [], 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as pool:
            jobs = [pool.submit(render, a.worker, p, s, a.duration, tmp) for p, s in prompts(a.n, a.seed)]
            for job in jobs:  # in prompt order, whatever finished first
                try:
                    summary, mid = job.result()
                except RuntimeError as e:
                    for j in jobs:
                        j.cancel()
                    sys.exit(f"composer_set: {e}")
                seqs = piece_sequences(summary, mid)
                shutil.rmtree(os.path.dirname(mid))
                if seqs is None:
                    skipped += 1
                    continue
                lines += seqs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for s in lines:
        T.check_grammar(s)
    with open(a.out, "w") as f:
        for s in lines:
            f.write(" ".join(map(str, s)) + "\n")
    print(f"composer_set: {a.n - skipped} pieces ({skipped} without a melody skipped), {len(lines)} "
          f"sequences in {time.time() - t0:.0f} s -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
