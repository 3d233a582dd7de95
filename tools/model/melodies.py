"""Writes neural@1's training melodies as a CZML file, for the melody guard.

The worker refuses any note that would make a generated melody share more
than 12 notes in a row, in any key, with a training piece (the sampler's
guard, workers/models/neural/sampler.h). To know them at run time it reads
this file, which goes beside the weights and is committed with them.

CZML version 1 (docs/models/format.md), all integers little-endian u32:
"CZML", version, the number of references R, the total number of notes N;
then R references, each its note count n and n bytes of MIDI pitches
(0..127) in order. A reference is one line of the training split
(build/model/data/train.tok, written by corpus.py): its PITCH tokens in
order. The split is stored untransposed: the guard compares intervals, so
one key covers all. The file's sha256 goes beside it in "<file>.sha256".

Usage: melodies.py [--tokens TRAIN.tok] [--out FILE]
"""
import argparse
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vocab as V  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENS = os.path.join(ROOT, "build/model/data/train.tok")
OUT = os.path.join(ROOT, "workers/models/neural/weights/neural-1.melodies")
VERSION = 1


def melodies(path):
    """Each line's pitches, in order."""
    with open(path) as f:
        for line in f:
            yield [t - V.PITCH0 + V.PITCH_LO for t in map(int, line.split()) if V.is_pitch(t)]


def write_czml(path, refs):
    body = b"".join(struct.pack("<I", len(r)) + bytes(r) for r in refs)
    data = b"CZML" + struct.pack("<III", VERSION, len(refs), sum(map(len, refs))) + body
    with open(path, "wb") as f:
        f.write(data)
    digest = hashlib.sha256(data).hexdigest()
    with open(path + ".sha256", "w") as f:
        f.write(f"{digest}  {os.path.basename(path)}\n")
    return digest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", default=TOKENS)
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    refs = list(melodies(a.tokens))
    digest = write_czml(a.out, refs)
    print(f"melodies: {len(refs)} training melodies, {sum(map(len, refs))} notes -> {a.out} "
          f"(sha256 {digest[:12]}...)")


if __name__ == "__main__":
    main()
