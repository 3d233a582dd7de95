"""music21 score -> neural@1 token sequences (docs/models/format.md).

(Named tokenise.py, not tokenize.py: a module called "tokenize" beside the
scripts would shadow Python's own tokenize module, which linecache and
inspect import, and break torch's import.)

A piece becomes one or more sections (A, B, C: the parts of a tune that
repeat signs or double bars separate), each section one or more sequences of
at most 512 tokens:

    BOS KEY MODE METER TEMPO DENSITY SECTION  (BAR event*)*  EOS

An event is "POS_p CHORD_r_q" (a chord starting at sixteenth p of the bar)
or "POS_p PITCH_n DUR_d" (a melody note). Events are in position order; at
one position the chord comes before the note. A section longer than 512
tokens is cut at bar lines into chunks that each repeat the prefix; only the
last chunk ends with EOS.

What is taken from the score:
  melody   the top voice: the part named Soprano (chorales) or the first
           part; of simultaneous notes the highest; grace notes dropped.
           Onsets and durations are rounded to sixteenths; a note is cut
           where the next one starts or the bar ends (no overlaps); notes
           outside MIDI 36..96 move by octaves into the range.
  chords   chorales: chordify all voices, then per beat the duration-weighted
           pitch classes (bass doubled) are matched against the 48
           MAJ/MIN/DIM/DOM7 templates. Folk tunes: their chord symbols when
           they have enough of them, else an estimate per bar (per half bar
           in 4/4) from the melody against the diatonic triads of the key's
           mode (in minor also V and V7), with a small prior for I, V and IV.
           The chord is written at the first beat of every bar that has one
           and within a bar only where it changes.
  key/mode ABC: the K: field (dorian, phrygian, aeolian, locrian -> MIN;
           mixolydian, lydian, ionian -> MAJ). MusicXML: the key signature,
           major or relative minor chosen by the final bass note, else
           music21's key analysis.
  meter    2/4, 3/4, 6/8; 4/4 and 2/2 (C, C|) as METER_4_4; other meters and
           pieces that change meter are skipped.
  tempo    see tempo_band().
  density  melody notes per bar of the section: <4 LOW, 4..7 MID, >=8 HIGH.
"""
import math
import re
from dataclasses import dataclass, field

import vocab as V

BAR16 = {"METER_2_4": 8, "METER_3_4": 12, "METER_4_4": 16, "METER_6_8": 12}
BEAT16 = {"METER_2_4": 4, "METER_3_4": 4, "METER_4_4": 4, "METER_6_8": 6}
TEMPLATES = {"MAJ": (0, 4, 7), "MIN": (0, 3, 7), "DIM": (0, 3, 6), "DOM7": (0, 4, 7, 10)}
MODE_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11), "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10), "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11), "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "minor": (0, 2, 3, 5, 7, 8, 10), "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
MINOR_MODES = {"minor", "aeolian", "dorian", "phrygian", "locrian"}
MAX_SEQ = 512


class Skip(Exception):
    """The piece cannot be represented (meter, no notes); the message says why."""


@dataclass
class Bar:
    notes: list = field(default_factory=list)   # (pos, midi, dur) sorted by pos
    chords: list = field(default_factory=list)  # (pos, root, quality)


@dataclass
class Piece:
    key: int
    mode: str            # "MAJ" or "MIN"
    meter: str           # "METER_4_4", ...
    tempo: str           # "TEMPO_MID", ...
    sections: list       # [(label, [Bar])]


# ---------------------------------------------------------------------------
# Header fields

ABC_MODES = [("maj", "major"), ("ion", "ionian"), ("mix", "mixolydian"), ("dor", "dorian"),
             ("phr", "phrygian"), ("lyd", "lydian"), ("aeo", "aeolian"), ("loc", "locrian"),
             ("min", "minor"), ("m", "minor")]


def parse_abc_key(text):
    """(tonic pitch class, mode name) from an ABC K: value, or None."""
    m = re.match(r"\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)", text)
    if not m:
        return None
    pc = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}[m.group(1).lower()]
    pc = (pc + {"#": 1, "b": -1, "": 0}[m.group(2)]) % 12
    word = m.group(3).lower()
    if word in ("", "exp"):
        return pc, "major"
    for prefix, mode in ABC_MODES:
        if word.startswith(prefix):
            return pc, mode
    return None


def meter_token(ratio):
    """METER_* for a time signature string like '6/8', or None if unsupported."""
    return {"2/4": "METER_2_4", "3/4": "METER_3_4", "4/4": "METER_4_4",
            "2/2": "METER_4_4", "6/8": "METER_6_8"}.get(ratio)


FAST_TYPES = ("reel", "hornpipe", "clog", "polka", "slide", "single jig")
MID_TYPES = ("jig", "strathspey", "fling", "march", "waltz", "walkaround", "set dance",
             "schottische", "country dance", "quickstep", "quick step")
SLOW_TYPES = ("air", "lament", "slow", "song", "lullaby", "planxty", "chorale")


def tempo_band(meter, bpm=None, words=""):
    """TEMPO_* from a tempo in beats per minute or, without one, from words.

    bpm counts quarter notes in 2/4, 3/4, 4/4 and dotted quarters in 6/8 (the
    beat a musician counts). Without a tempo, the dance type or tempo word
    (ABC R:, N:, the title) decides: reels, hornpipes, clogs FAST; jigs,
    strathspeys, flings, marches, waltzes MID; airs, laments, "slow" SLOW.
    Otherwise MID.
    """
    if bpm:
        return "TEMPO_SLOW" if bpm < 90 else ("TEMPO_MID" if bpm <= 130 else "TEMPO_FAST")
    w = words.lower()
    if re.search(r"very slow|\bslow\b|\bslowly\b|lento|adagio|largo", w):
        return "TEMPO_SLOW"
    if re.search(r"\bquick\b|\blively\b|\bfast\b|allegro|presto", w):
        return "TEMPO_FAST"
    for t in FAST_TYPES:
        if t in w:
            return "TEMPO_FAST"
    for t in MID_TYPES:
        if t in w:
            return "TEMPO_MID"
    for t in SLOW_TYPES:
        if t in w:
            return "TEMPO_SLOW"
    return "TEMPO_MID"


def abc_bpm(q, meter):
    """Beat tempo from an ABC Q: value ('1/4=89', '3/8=100', '80'), or None.

    A bare number is read as quarter notes per minute (older ABC meant unit
    notes, but the files here use it for the quarter). Converted to the beat
    of tempo_band().
    """
    q = q.strip().strip('"')
    m = re.search(r"(\d+)\s*/\s*(\d+)\s*=\s*(\d+)", q)
    if m:
        quarters = int(m.group(3)) * (int(m.group(1)) / int(m.group(2))) / 0.25
    else:
        m = re.fullmatch(r"(\d+)", q)
        if not m:
            return None
        quarters = int(m.group(1))
    return quarters / 1.5 if meter == "METER_6_8" else quarters


# ---------------------------------------------------------------------------
# Chords

def match_chord(weights, bass=None, candidates=None, prior=None, root_bonus=0.25):
    """(root, quality) whose template best explains a 12-bin weight vector.

    Score: weight of the chord's tones minus weight of the others, plus half
    the bass note's weight when the bass is the root, plus root_bonus times
    the root's own weight; DOM7 only when its seventh is present. candidates limits the choice ((root, quality) list);
    prior adds a small bonus per candidate. None if the vector is empty.
    """
    total = sum(weights)
    if total <= 0:
        return None
    if candidates is None:
        candidates = [(r, q) for r in range(12) for q in TEMPLATES]
    best, best_score = None, -math.inf
    for r, q in candidates:
        tones = {(r + i) % 12 for i in TEMPLATES[q]}
        if q == "DOM7" and weights[(r + 10) % 12] <= 0:
            continue
        inside = sum(weights[pc] for pc in tones)
        score = inside - (total - inside)
        if bass is not None and bass % 12 == r:
            score += 0.5 * total / max(1, len(tones))
        score += weights[r] * root_bonus
        if prior:
            score += prior.get((r, q), 0.0) * total
        if score > best_score + 1e-9:
            best, best_score = (r, q), score
    return best


def diatonic_candidates(tonic, mode):
    """Diatonic triads of the mode (plus V and V7 in minor) and their priors."""
    scale = [(tonic + s) % 12 for s in MODE_SCALES[mode]]
    cands = []
    for i in range(7):
        r, third, fifth = scale[i], scale[(i + 2) % 7], scale[(i + 4) % 7]
        t, f = (third - r) % 12, (fifth - r) % 12
        q = {(4, 7): "MAJ", (3, 7): "MIN", (3, 6): "DIM", (4, 8): "MAJ"}.get((t, f))
        if q:
            cands.append((r, q))
    dom = (tonic + 7) % 12
    cands += [(dom, "MAJ"), (dom, "DOM7")]
    cands = list(dict.fromkeys(cands))
    tonic_q = "MIN" if mode in MINOR_MODES else "MAJ"
    sub = (tonic + 5) % 12
    prior = {(tonic, tonic_q): 0.2, (dom, "MAJ"): 0.12, (dom, "DOM7"): 0.06,
             (sub, "MAJ"): 0.08, (sub, "MIN"): 0.08}
    return cands, prior


def chords_from_windows(bars, windows_for, estimate):
    """Fills bar.chords: estimate(bar_index, start, end) per window, written at
    the first window of a bar that has a chord and where it changes."""
    prev = None
    for bi, bar in enumerate(bars):
        first = True
        for start, end in windows_for(bi):
            ch = estimate(bi, start, end)
            if ch is None:
                continue
            if first or ch != prev:
                bar.chords.append((start, ch[0], ch[1]))
            prev, first = ch, False


# ---------------------------------------------------------------------------
# Extraction from music21

def _q16(x):
    return int(round(float(x) * 4))


def _measures(part):
    return list(part.getElementsByClass("Measure"))


def _top_notes(measure):
    """(onset16 within the bar incl. pickup padding, dur16, midi) of the top voice."""
    pad = float(measure.paddingLeft or 0)
    out = {}
    for n in measure.recurse().notes:
        if n.duration.isGrace or n.quarterLength <= 0:
            continue
        # Offset within the measure, also for notes inside Voice streams.
        off = n.getOffsetInHierarchy(measure)
        midi = max(p.midi for p in n.pitches) if n.isChord else n.pitch.midi
        on = _q16(off + pad)
        dur = max(1, _q16(n.quarterLength))
        if on not in out or midi > out[on][1]:
            out[on] = (on, midi, dur)
    return [out[k] for k in sorted(out)]


def _fit_range(midi):
    while midi < V.PITCH_LO:
        midi += 12
    while midi > V.PITCH_HI:
        midi -= 12
    return midi


def melody_bars(part, bar16, stats):
    """[Bar] with the part's melody, notes clipped to the bar and to the next onset."""
    bars = []
    for m in _measures(part):
        raw = [x for x in _top_notes(m) if x[0] < bar16]
        stats["dropped_overfull"] += len(_top_notes(m)) - len(raw)
        b = Bar()
        for i, (on, midi, dur) in enumerate(raw):
            nxt = raw[i + 1][0] if i + 1 < len(raw) else bar16
            d = max(1, min(dur, nxt - on, bar16 - on, 16))
            b.notes.append((on, _fit_range(midi), d))
        bars.append(b)
    return bars


def section_bounds(part, n_bars):
    """Indices where a new section starts: after a repeat end or double bar, or
    at a repeat start, except inside first/second-ending brackets; sections
    shorter than 2 bars join the one before."""
    from music21 import spanner
    measures = _measures(part)
    in_bracket = set()
    for rb in part.recurse().getElementsByClass(spanner.RepeatBracket):
        for m in rb.getSpannedElements():
            in_bracket.add(id(m))
    starts = [0]
    for i, m in enumerate(measures[:-1]):
        nxt = measures[i + 1]
        rb, lb = m.rightBarline, nxt.leftBarline
        cut = False
        if rb is not None and (getattr(rb, "direction", None) == "end" or rb.type in ("double", "light-light")):
            cut = True
        if lb is not None and getattr(lb, "direction", None) == "start":
            cut = True
        if cut and id(nxt) not in in_bracket and i + 1 - starts[-1] >= 2:
            starts.append(i + 1)
    if len(starts) > 1 and n_bars - starts[-1] < 2:
        starts.pop()
    return starts


def single_meter(score, header=None):
    """METER_* of the score, from the ABC M: field when given.

    music21's ABC reader sometimes invents a tiny time signature (1/16,
    1/8) for a bar around first and second endings; signatures shorter than
    a dotted quarter are ignored. Any other change of meter skips the piece.
    """
    from music21 import meter
    sigs = {ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)
            if ts.barDuration.quarterLength >= 1.5}
    if header is not None:
        h = header.split("%")[0].replace(" ", "")
        h = {"C": "4/4", "C|": "2/2"}.get(h, h)
        sigs.add(h)
    sigs = {s if s != "2/2" else "4/4" for s in sigs}
    if len(sigs) != 1:
        raise Skip(f"meter changes or is missing ({sorted(sigs)})")
    ratio = sigs.pop()
    tok = meter_token(ratio)
    if tok is None:
        raise Skip(f"unsupported meter {ratio}")
    return tok


def chorale_chords(score, bars, meter):
    """Per-beat chords of the chordified score (all voices)."""
    chordified = score.chordify()
    cms = _measures(chordified)
    if len(cms) != len(bars):
        raise Skip("chordified score has a different number of bars")
    bar16, beat = BAR16[meter], BEAT16[meter]
    spans = []
    for m in cms:
        pad = float(m.paddingLeft or 0)
        items = []
        for c in m.recurse().getElementsByClass("Chord"):
            on = _q16(c.getOffsetInHierarchy(m) + pad)
            items.append((on, on + max(1, _q16(c.quarterLength)), [p.midi for p in c.pitches]))
        spans.append(items)

    def windows(bi):
        return [(s, min(s + beat, bar16)) for s in range(0, bar16, beat)]

    def estimate(bi, start, end):
        w = [0.0] * 12
        bass = None
        for on, off, midis in spans[bi]:
            ov = min(off, end) - max(on, start)
            if ov <= 0:
                continue
            if on <= start < off or bass is None:
                bass = min(midis)
            low = min(midis)
            for p in midis:
                w[p % 12] += ov * (2.0 if p == low else 1.0)
        return match_chord(w, bass=bass)

    chords_from_windows(bars, windows, estimate)


def symbol_chords(score, bars, part, bar16):
    """Fills bars' chords from the tune's chord symbols; False when it has too few."""
    from music21 import harmony
    found = []
    for bi, m in enumerate(_measures(part)):
        pad = float(m.paddingLeft or 0)
        for cs in m.recurse().getElementsByClass(harmony.ChordSymbol):
            try:
                root = cs.root().pitchClass
            except Exception:
                continue
            kind = cs.chordKind or "major"
            if "dominant" in kind:
                q = "DOM7"
            elif "diminished" in kind:
                q = "DIM"
            elif "minor" in kind:
                q = "MIN"
            else:
                q = "MAJ"
            pos = _q16(cs.getOffsetInHierarchy(m) + pad)
            if pos < bar16:
                found.append((bi, pos, root, q))
    if not found or len(found) * 4 < len(bars):
        return False
    cur = None
    by_bar = {}
    for bi, pos, root, q in found:
        by_bar.setdefault(bi, []).append((pos, root, q))
    for bi, bar in enumerate(bars):
        changes = sorted(by_bar.get(bi, []))
        if cur is not None and (not changes or changes[0][0] > 0):
            bar.chords.append((0, cur[0], cur[1]))
        for pos, root, q in changes:
            if bar.chords and bar.chords[-1][0] == pos:
                bar.chords.pop()
            if not bar.chords or (bar.chords[-1][1], bar.chords[-1][2]) != (root, q) or pos == 0:
                bar.chords.append((pos, root, q))
            cur = (root, q)
    return True


def melody_chords(bars, meter, tonic, mode):
    """Chord estimate per bar (half bar in 4/4) from the melody alone."""
    cands, prior = diatonic_candidates(tonic, mode)
    bar16, beat = BAR16[meter], BEAT16[meter]
    step = 8 if meter == "METER_4_4" else bar16

    def windows(bi):
        return [(s, min(s + step, bar16)) for s in range(0, bar16, step)]

    def estimate(bi, start, end):
        w = [0.0] * 12
        for on, midi, dur in bars[bi].notes:
            ov = min(on + dur, end) - max(on, start)
            if ov <= 0:
                continue
            w[midi % 12] += ov * (1.5 if on % beat == 0 else 1.0)
        return match_chord(w, candidates=cands, prior=prior, root_bonus=0.05)

    chords_from_windows(bars, windows, estimate)


def melody_part(score):
    parts = list(score.parts) if hasattr(score, "parts") else []
    if not parts:
        return score
    for p in parts:
        if (p.partName or "").strip().lower().startswith("soprano"):
            return p
    return parts[0]


def chorale_key(score):
    """(tonic, mode) for a MusicXML chorale: signature + final bass, else analysis."""
    from music21 import key
    ks = score.recurse().getElementsByClass(key.KeySignature).first()
    parts = list(score.parts)
    last_bass = None
    if parts:
        notes = list(parts[-1].recurse().notes)
        if notes:
            n = notes[-1]
            last_bass = (min(p.midi for p in n.pitches) if n.isChord else n.pitch.midi) % 12
    if ks is not None and last_bass is not None:
        major, minor = ks.asKey("major"), ks.asKey("minor")
        if major.tonic.pitchClass == last_bass:
            return last_bass, "major"
        if minor.tonic.pitchClass == last_bass:
            return last_bass, "minor"
    k = score.analyze("key")
    return k.tonic.pitchClass, k.mode if k.mode in MODE_SCALES else "major"


def piece_from_score(score, kind, key_hint=None, tempo_words="", bpm_text=None, stats=None,
                     meter_text=None):
    """A Piece from a parsed music21 score.

    kind: "chorale" (four voices, chords by chordify) or "tune" (a melody,
    chords from symbols or estimated). key_hint: (tonic pc, mode name) from
    the ABC header; meter_text: its M: field. Raises Skip.
    """
    stats = stats if stats is not None else {"dropped_overfull": 0}
    stats.setdefault("dropped_overfull", 0)
    meter = single_meter(score, meter_text)
    part = melody_part(score)
    bars = melody_bars(part, BAR16[meter], stats)
    if sum(len(b.notes) for b in bars) < 8:
        raise Skip("fewer than 8 melody notes")
    if kind == "chorale":
        tonic, mode = chorale_key(score)
        chorale_chords(score, bars, meter)
    else:
        if key_hint is None:
            k = score.analyze("key")
            key_hint = (k.tonic.pitchClass, k.mode if k.mode in MODE_SCALES else "major")
        tonic, mode = key_hint
        if not symbol_chords(score, bars, part, BAR16[meter]):
            melody_chords(bars, meter, tonic, mode)
    bpm = abc_bpm(bpm_text, meter) if bpm_text else None
    tempo = tempo_band(meter, bpm, tempo_words)
    starts = section_bounds(part, len(bars)) + [len(bars)]
    labels = ["SECTION_A", "SECTION_B"] + ["SECTION_C"] * 100
    sections = [(labels[i], bars[starts[i]:starts[i + 1]]) for i in range(len(starts) - 1)]
    return Piece(key=tonic, mode="MODE_MIN" if mode in MINOR_MODES else "MODE_MAJ",
                 meter=meter, tempo=tempo, sections=sections)


# ---------------------------------------------------------------------------
# Tokens

def density_token(bars):
    n = sum(len(b.notes) for b in bars) / max(1, len(bars))
    return "DENSITY_LOW" if n < 4 else ("DENSITY_MID" if n < 8 else "DENSITY_HIGH")


def bar_tokens(bar):
    events = [(pos, 0, ("CHORD", r, q)) for pos, r, q in bar.chords]
    events += [(pos, 1, ("NOTE", midi, dur)) for pos, midi, dur in bar.notes]
    out = [V.BAR]
    for pos, _, ev in sorted(events):
        out.append(V.POS0 + pos)
        if ev[0] == "CHORD":
            out.append(V.chord_id(ev[1], ev[2]))
        else:
            out += [V.pitch_id(ev[1]), V.DUR1 + ev[2] - 1]
    return out


def encode(piece, max_seq=MAX_SEQ):
    """[[token id]]: the piece's sequences (a section, or chunks of one)."""
    seqs = []
    for label, bars in piece.sections:
        if not bars:
            continue
        prefix = [V.BOS, V.KEY0 + piece.key, V.ID[piece.mode], V.ID[piece.meter],
                  V.ID[piece.tempo], V.ID[density_token(bars)], V.ID[label]]
        cur = list(prefix)
        for bar in bars:
            toks = bar_tokens(bar)
            if len(prefix) + len(toks) + 1 > max_seq:
                continue  # a single bar that cannot fit (never happens at 512)
            if len(cur) + len(toks) + 1 > max_seq:
                seqs.append(cur)
                cur = list(prefix)
            cur += toks
        cur.append(V.EOS)
        seqs.append(cur)
    return seqs


def check_grammar(seq):
    """Raises ValueError if seq breaks the grammar of format.md."""
    names = V.names(seq)
    if names[0] != "BOS":
        raise ValueError("does not start with BOS")
    groups = [V.KEYS, V.MODES, V.METERS, V.TEMPOS, V.DENSITIES, V.SECTIONS]
    for i, g in enumerate(groups):
        if names[1 + i] not in g:
            raise ValueError(f"prefix token {1 + i} is {names[1 + i]}")
    meter = names[3]
    bar16 = BAR16[meter]
    i = 7
    last = -1
    in_bar = False
    while i < len(names):
        n = names[i]
        if n == "EOS":
            if i != len(names) - 1:
                raise ValueError("EOS before the end")
            return
        if n == "BAR":
            in_bar, last = True, -1
            i += 1
            continue
        if not in_bar or not n.startswith("POS_"):
            raise ValueError(f"unexpected {n} at {i}")
        pos = int(n[4:])
        if pos >= bar16 or pos < last:
            raise ValueError(f"position {pos} out of order at {i}")
        last = pos
        nx = names[i + 1]
        if nx.startswith("CHORD_"):
            i += 2
        elif nx.startswith("PITCH_") and names[i + 2].startswith("DUR_"):
            i += 3
        else:
            raise ValueError(f"{nx} after POS at {i}")
