"""Distances from sets of generated pieces to the held-out corpus (issue 16).

Every set is a .tok file: one sequence a line, token ids of the neural@1
vocabulary (vocab.py) separated by spaces, each starting with its
conditioning prefix (BOS KEY MODE METER TEMPO DENSITY SECTION) and parsing
under the grammar (grammar.py). The held-out corpus is the test split that
corpus.py writes (build/model/data/test.tok); generated sets come from
build/bench/memorisation --dump (neural@1), markov.py sample (the n-gram
baseline) and composer_set.py (composer@1's melodies).

Four features of a set, pooled over all its sequences:

  pitch classes  histogram of the melody notes' pitch classes relative to
                 the tonic of the sequence's KEY token (0 = tonic, 7 = the
                 fifth), so that pieces in different keys are comparable;
                 each note counts once, whatever its length. Both modes
                 share the histogram: the minor third is bin 3.
  intervals      histogram of the melodic intervals between consecutive
                 PITCH tokens of a sequence (across rests and bar lines, not
                 across sequences), -12..+12 semitones, and one bin for
                 anything wider: 26 bins.
  density        melody notes per bar: the count of notes starting in each
                 bar (BAR token) of each sequence, empty bars included.
  in-key ratio   the share of notes whose pitch class is in the scale of the
                 sequence's KEY and MODE: MODE_MAJ the major scale
                 (0 2 4 5 7 9 11 above the tonic), MODE_MIN natural minor
                 plus the harmonic minor's raised seventh (0 2 3 5 7 8 10 11).
                 The corpus's dorian tunes count as minor, so their major
                 sixths are out of key: the figure to compare is the
                 difference to the corpus, not the ratio itself.

Distance of a set to the reference (the test split):

  pitch_class_jsd  Jensen-Shannon divergence of the two pitch-class
                   histograms, in bits (0 identical .. 1 disjoint)
  interval_jsd     the same for the interval histograms
  density_diff     |mean notes per bar of the set - of the reference|
  density_w1       Wasserstein-1 (earth mover's) distance between the two
                   distributions of notes per bar, in notes
  in_key_diff      |in-key ratio of the set - of the reference|

Matching the conditioning. A generator is asked for particular conditions
(neural@1's benchmark cycles through the three density bands and makes
half of its pieces minor, all in 4/4), while the corpus is mostly major, of
middling density and in four meters; the features depend on these more
than on a model's skill: a minor melody has another pitch-class histogram,
a 2/4 bar holds fewer notes than a 4/4 one. So, by default, the reference
is reweighted to each set's conditioning (post-stratification), on the
prefix fields that drive each feature:

  pitch classes, in-key ratio   MODE
  intervals, density            METER and DENSITY (joint cells)

Each cell of the set's sequences gets in the reference the share it has in
the set, spread evenly over the reference sequences of that cell. A cell
the reference lacks falls back to the cell without its last field
(*_match_fallback says the share that did). The test split is small (385
sequences, 39 of them minor), so a matched reference is a noisier sample:
*_reference_effective_sequences says how many unweighted sequences it is
worth (Kish's effective sample size of the density weights, the smaller).
--match none compares with the reference as it is.

A floor: the val split against the test split (--floor), two samples of the
real corpus, says how far apart two sets of real music already are; JSDs in
particular are biased upwards on small samples. It is printed as its own
row (val's conditioning) and, for each set, as floor_* figures: val against
test, both matched to that set's conditioning, what the set's figures
should be compared with.

Usage:
  distances.py [--ref build/model/data/test.tok] [--floor build/model/data/val.tok | none]
               [--match none] [--table]  --set NAME=FILE [--set NAME=FILE ...]

Prints "name value" lines (NAME lower-cased, characters other than letters
and digits as "_"; the floor row is "floor"), or with --table a table for
people. Exits with a message when a file is missing or a line does not
parse.
"""
import argparse
import collections
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar as G  # noqa: E402
import vocab as V  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "build/model/data")

SCALES = {0: {0, 2, 4, 5, 7, 9, 11},      # MODE_MAJ: major
          1: {0, 2, 3, 5, 7, 8, 10, 11}}  # MODE_MIN: natural minor + raised seventh
INTERVAL_MAX = 12                         # bins -12..+12, then "other"
# Positions in Seq.cond of the prefix fields.
KEY, MODE, METER, TEMPO, DENSITY, SECTION = range(6)
TONAL_FIELDS = (MODE,)              # what pitch classes and the in-key ratio are matched on
RHYTHM_FIELDS = (METER, DENSITY)    # what intervals and density are matched on


class Seq:
    """The features of one sequence."""

    def __init__(self, toks):
        self.cond = [toks[1 + i] - G.PREFIX_GROUPS[1 + i][0] for i in range(6)]
        key, mode = self.cond[KEY], self.cond[MODE]
        self.pc = [0] * 12
        self.iv = [0] * (2 * INTERVAL_MAX + 2)
        self.bars = []  # notes starting in each bar
        self.in_key = 0
        prev = None
        for t in toks[7:]:
            if t == V.BAR:
                self.bars.append(0)
            elif V.is_pitch(t):
                p = t - V.PITCH0 + V.PITCH_LO
                rel = (p - key) % 12
                self.pc[rel] += 1
                self.in_key += rel in SCALES[mode]
                self.bars[-1] += 1
                if prev is not None:
                    d = p - prev
                    self.iv[d + INTERVAL_MAX if abs(d) <= INTERVAL_MAX else -1] += 1
                prev = p
        self.notes = sum(self.pc)


def read_set(path):
    """[Seq] of a .tok file; exits with the file and line when one does not parse."""
    if not os.path.exists(path):
        hint = (" (the held-out splits come from tools/model/corpus.py: "
                "tools/model/make_model.sh eval writes them)" if path.startswith(DATA) else "")
        sys.exit(f"distances: {path} does not exist{hint}")
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                toks = [int(x) for x in line.split()]
                G.parse(toks)
            except (ValueError, IndexError) as e:
                sys.exit(f"distances: {path}:{n}: {e or 'the sequence is shorter than its prefix'}")
            out.append(Seq(toks))
    if not out:
        sys.exit(f"distances: {path} holds no sequences")
    return out


def match_weights(ref, target, fields):
    """(weight per reference sequence, share of the target that fell back).

    Post-stratification: each cell (values of fields) gets the share of the
    target's sequences it has, spread evenly over the reference sequences
    of the cell, or, when there are none, of the cell without its last
    field(s). Weights sum to 1; no fields: uniform."""
    if not fields:
        return [1.0 / len(ref)] * len(ref), 0.0

    def cell(s):
        return tuple(s.cond[f] for f in fields)
    share = collections.Counter(cell(s) for s in target)
    members = [collections.defaultdict(list) for _ in range(len(fields) + 1)]
    for i, s in enumerate(ref):
        c = cell(s)
        for k in range(len(fields) + 1):
            members[k][c[:k]].append(i)
    w = [0.0] * len(ref)
    fell_back = 0
    for c, n in share.items():
        k = next(k for k in range(len(fields), -1, -1) if members[k].get(c[:k]))
        fell_back += n if k < len(fields) else 0
        for i in members[k][c[:k]]:
            w[i] += n / len(target) / len(members[k][c[:k]])
    return w, fell_back / len(target)


def effective(w):
    """Kish's effective sample size of weights."""
    return sum(w) ** 2 / sum(x * x for x in w)


class Summary:
    """A set's features pooled with a weight per sequence."""

    def __init__(self, seqs, weights=None):
        weights = weights or [1.0] * len(seqs)
        self.pc = [0.0] * 12
        self.iv = [0.0] * (2 * INTERVAL_MAX + 2)
        self.per_bar = collections.Counter()  # notes in a bar -> weight
        notes = in_key = 0.0
        for s, w in zip(seqs, weights):
            if w == 0:
                continue
            for i, c in enumerate(s.pc):
                self.pc[i] += w * c
            for i, c in enumerate(s.iv):
                self.iv[i] += w * c
            for b in s.bars:
                self.per_bar[b] += w
            notes += w * s.notes
            in_key += w * s.in_key
        self.in_key = in_key / notes if notes else 0.0
        bars = sum(self.per_bar.values())
        self.notes_per_bar = sum(k * v for k, v in self.per_bar.items()) / bars if bars else 0.0


def jsd(p, q):
    """Jensen-Shannon divergence of two histograms (any scale), in bits."""
    tp, tq = sum(p), sum(q)
    d = 0.0
    for a, b in zip(p, q):
        a, b = a / tp, b / tq
        m = (a + b) / 2
        if a > 0:
            d += 0.5 * a * math.log2(a / m)
        if b > 0:
            d += 0.5 * b * math.log2(b / m)
    return max(d, 0.0)


def w1(p, q):
    """Wasserstein-1 distance of two distributions over 0, 1, 2, ... (Counters of weights)."""
    tp, tq = sum(p.values()), sum(q.values())
    cp = cq = d = 0.0
    for k in range(max(list(p) + list(q)) + 1):
        cp += p.get(k, 0) / tp
        cq += q.get(k, 0) / tq
        d += abs(cp - cq)
    return d


def distances(a, tonal, rhythm):
    """The five distances of Summary a to the reference's Summaries matched
    for the tonal features (tonal) and for the rhythmic ones (rhythm)."""
    return {
        "pitch_class_jsd": jsd(a.pc, tonal.pc),
        "interval_jsd": jsd(a.iv, rhythm.iv),
        "density_diff": abs(a.notes_per_bar - rhythm.notes_per_bar),
        "density_w1": w1(a.per_bar, rhythm.per_bar),
        "in_key_diff": abs(a.in_key - tonal.in_key),
    }


def matched(seqs, target, match):
    """Summaries of seqs reweighted to target's conditioning: (tonal, rhythm,
    fallback share, effective sequences)."""
    wt, ft = match_weights(seqs, target, TONAL_FIELDS if match else ())
    wr, fr = match_weights(seqs, target, RHYTHM_FIELDS if match else ())
    return Summary(seqs, wt), Summary(seqs, wr), max(ft, fr), min(effective(wt), effective(wr))


def compare(seqs, ref, match, floor=None):
    """The distances of seqs to ref matched to seqs' conditioning; with floor
    (a second real sample), also floor_*: floor against ref, both matched to
    seqs' conditioning."""
    a = Summary(seqs)
    tonal, rhythm, fallback, eff = matched(ref, seqs, match)
    r = {
        "sequences": len(seqs),
        "notes": sum(s.notes for s in seqs),
        "bars_per_sequence": sum(len(s.bars) for s in seqs) / len(seqs),
        "notes_per_bar": a.notes_per_bar,
        "reference_notes_per_bar": rhythm.notes_per_bar,
        "in_key": a.in_key,
        "reference_in_key": tonal.in_key,
        "match_fallback": fallback,
        "reference_effective_sequences": eff,
    }
    r.update(distances(a, tonal, rhythm))
    if floor is not None:
        f_tonal, f_rhythm, _, _ = matched(floor, seqs, match)
        # Both sides matched: the two Summaries of the floor stand for a.
        r.update({"floor_" + k: v for k, v in {
            "pitch_class_jsd": jsd(f_tonal.pc, tonal.pc),
            "interval_jsd": jsd(f_rhythm.iv, rhythm.iv),
            "density_diff": abs(f_rhythm.notes_per_bar - rhythm.notes_per_bar),
            "density_w1": w1(f_rhythm.per_bar, rhythm.per_bar),
            "in_key_diff": abs(f_tonal.in_key - tonal.in_key),
        }.items()})
    return r


def slug(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def table(rows, ref_name, ref_n, match):
    """The rows as a table for people."""
    cols = [("pitch_class_jsd", "{:.4f}", 18), ("interval_jsd", "{:.4f}", 18),
            ("density_diff", "{:.2f}", 14), ("in_key_diff", "{:.3f}", 14)]
    how = ("matched to each set's mode (pitch classes, in key) and meter x density (intervals, "
           "density)" if match else "as it is")
    out = [f"  reference: {ref_name} ({ref_n} sequences), {how};",
           "  in parentheses the row's floor: val against test, matched the same way",
           f"  {'set':<13} {'sequences':>9}  {'pitch-class JSD':<18}{'interval JSD':<18}"
           f"{'density diff':<14}in-key diff"]
    for name, _, r in rows:
        cells = []
        for k, fmt, width in cols:
            c = fmt.format(r[k])
            if "floor_" + k in r:
                c += " (" + fmt.format(r["floor_" + k]) + ")"
            cells.append(f"{c:<{width}}")
        out.append(f"  {name:<13} {r['sequences']:>9}  " + "".join(cells).rstrip())
    out.append("  JSD in bits (0..1), density in notes per bar, in-key as a share of notes")
    for name, _, r in rows:
        out.append(f"  {name:<13} notes per bar {r['notes_per_bar']:.2f} (reference "
                   f"{r['reference_notes_per_bar']:.2f}), in key {r['in_key']:.3f} (reference "
                   f"{r['reference_in_key']:.3f}), density W1 {r['density_w1']:.2f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default=os.path.join(DATA, "test.tok"))
    ap.add_argument("--floor", default=os.path.join(DATA, "val.tok"),
                    help="a second real sample to compare with the reference, or none")
    ap.add_argument("--match", choices=("conditioning", "none"), default="conditioning")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--table", action="store_true", help="a table instead of name value lines")
    a = ap.parse_args()
    match = a.match != "none"
    sets = []
    for spec in a.set:
        if "=" not in spec:
            ap.error(f"--set {spec}: expected NAME=FILE")
        name, path = spec.split("=", 1)
        sets.append((name, slug(name), path))
    if a.floor != "none":
        sets.append(("val (floor)", "floor", a.floor))
    if not sets:
        ap.error("nothing to compare: give --set NAME=FILE or a --floor")

    ref = read_set(a.ref)
    floor = read_set(a.floor) if a.floor != "none" else None
    rows = [(name, key, compare(read_set(path), ref, match, floor if key != "floor" else None))
            for name, key, path in sets]
    if a.table:
        print(table(rows, os.path.basename(a.ref), len(ref), match))
        return
    print(f"reference_sequences {len(ref)}")
    print(f"reference_notes {sum(s.notes for s in ref)}")
    print(f"match {a.match}")
    for _, key, r in rows:
        for k, v in r.items():
            print(f"{key}_{k} {v:.4f}" if isinstance(v, float) else f"{key}_{k} {v}")


if __name__ == "__main__":
    main()
