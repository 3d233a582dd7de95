"""Extracts neural@1's training material from music21's bundled corpus.

Only four collections are read, the ones whose terms allow commercial use
(docs/models/neural-1.md quotes what the installed package says about each):

    bach/*.mxl, bach/*.xml     Bach's chorales (the three CCARH .krn files in
                               bach/ are skipped: "Rights to all derivative
                               electronic formats reserved")
    ryansMammoth/*.abc         Ryan's Mammoth Collection (1883)
    oneills1850/*.abc          O'Neill's Music of Ireland, "1850" (1903)
    airdsAirs/*.abc            Aird's Selection of Airs (1778-1803)

Every other folder of the corpus is left out; EXCLUDED says why for those
with a stated restriction. Each source file is hashed and listed in the
manifest (docs/models/neural-1-data.tsv) with the pieces and tokens taken.

ABC files are split into tunes at their X: lines and each tune is parsed on
its own, so that its header (K:, R:, Q:, N:, T:) can be read directly.
O'Neill's files overlap (the same tune number in two files); a tune number
already taken is skipped. Pieces whose melody repeats another's exactly
(transposition-invariant) are dropped.

The split is by piece and grouped: pieces that share a normalised title or
the opening of their melody (harmonisations of the same chorale tune, two
transcriptions of one reel) fall in one group, and a group goes wholly to
train, val or test by a seeded hash (5% val, 5% test). Augmentation
(transposition) happens later, in train.py, on the train split only.

Output: build/model/data/pieces.jsonl (one piece per line with its
untransposed token sequences and split), {train,val,test}.tok (the same
sequences, one a line, token ids separated by spaces) and summary.json.

Usage: corpus.py [--out build/model/data] [--manifest docs/models/neural-1-data.tsv]
                 [--seed 16] [--limit N]   (N tunes per collection, for quick tests)
"""
import argparse
import collections
import hashlib
import json
import os
import re
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenise as T  # noqa: E402
import vocab as V  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))

# What each collection's terms are, as checked in music21 10.5.1 (see the
# model card for the full quotations). The manifest repeats this per file.
LICENCES = {
    "bach": "public domain (J.S. Bach, d. 1750); encoding: music21 corpus, 'distributed with the "
            "permission of the encoders'; credit 'PDF (c) 2004 Margaret Greentree'; no restriction stated",
    "ryansMammoth": "public domain (Ryan's Mammoth Collection, 1883); ABC transcription in music21's "
                    "corpus; no licence or restriction stated",
    "oneills1850": "public domain (O'Neill's Music of Ireland, 1903); ABC transcription in music21's "
                   "corpus; no licence or restriction stated",
    "airdsAirs": "public domain (Aird's Airs, 1778-1803); ABC transcription (Jack Campin 2009) in "
                 "music21's corpus; no licence or restriction stated",
}
COLLECTIONS = {
    "bach": "Bach chorales",
    "ryansMammoth": "Ryan's Mammoth Collection",
    "oneills1850": "O'Neill's 1850",
    "airdsAirs": "Aird's Airs",
}
EXCLUDED = {
    "essenFolksong": "corpus/essenFolksong/license.txt: permission 'for non-commercial distribution "
                     "and use of these files in music21'",
    "bach/*.krn": "CCARH Humdrum encodings: '!!!YEC: Copyright 1994, Center for Computer Assisted "
                  "Research in the Humanities' / '!!!YEM: Rights to all derivative electronic formats "
                  "reserved.'",
    "palestrina": "Humdrum encodings: '!!!YEC: Copyright 2000, John Miller' / 'Rights to all "
                  "derivative electronic formats reserved.' / 'This file must be accompanied by the "
                  "licensing agreement.'",
    "josquin": "ABC files under the GNU GPL v2 ('Copyright (C) 1999 Laura E. Conrad'): copyleft terms, "
               "not taken",
    "everything else": "not on the issue's allow-list; corpus/license.txt: 'Some encodings included in "
                       "the corpus may not be used for commercial uses or have other restrictions'",
}
SPLIT_VAL, SPLIT_TEST = 0.05, 0.05


def corpus_dir():
    import music21
    return os.path.join(os.path.dirname(music21.__file__), "corpus")


def source_files(cdir):
    out = []
    for coll in COLLECTIONS:
        d = os.path.join(cdir, coll)
        for name in sorted(os.listdir(d)):
            if coll == "bach" and not (name.endswith(".mxl") or name.endswith(".xml")):
                continue
            if coll != "bach" and not name.endswith(".abc"):
                continue
            out.append((coll, f"{coll}/{name}"))
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def split_abc(text):
    """[(X number, tune text)] of an ABC file."""
    tunes = []
    cur = None
    for line in text.splitlines():
        if re.match(r"^X:", line):
            if cur:
                tunes.append(cur)
            num = re.sub(r"\D", "", line[2:]) or "0"
            cur = (int(num), [line])
        elif cur:
            cur[1].append(line)
    if cur:
        tunes.append(cur)
    return [(n, "\n".join(lines) + "\n") for n, lines in tunes]


def abc_header(tune):
    """The header fields of one tune: first T:, K:, M:, Q:, and all R:/N: text."""
    fields = {"T": None, "K": None, "M": None, "Q": None, "words": []}
    for line in tune.splitlines():
        m = re.match(r"^([A-Za-z]):(.*)$", line)
        if not m:
            continue
        f, v = m.group(1), m.group(2).strip()
        if f in ("T", "K", "M", "Q") and fields[f] is None:
            fields[f] = v
        if f in ("R", "N", "T"):
            fields["words"].append(v)
        if f == "K":
            break
    return fields


def norm_title(t):
    t = (t or "").lower().split("--")[0]
    t = re.sub(r"\b(the|a|an|reel|jig|hornpipe|strathspey|clog|slip ?jig|double jig|air|no\.? ?\d+)\b", " ", t)
    t = re.sub(r"[^a-z]", "", t)
    return t


def melody_fingerprint(seqs, n=None):
    """Transposition-invariant (interval, onset) signature of the melody."""
    pitches = []
    for s in seqs:
        pitches += [t - V.PITCH0 for t in s if V.is_pitch(t)]
    steps = [b - a for a, b in zip(pitches, pitches[1:])]
    if n is not None:
        dedup = [x for x in steps if x != 0][:n]
        return ",".join(map(str, dedup))
    return hashlib.sha1(",".join(map(str, steps)).encode()).hexdigest()


def tokenise_file(coll, rel, path, limit):
    """[(piece dict)], {reason: count} for one source file."""
    from music21 import converter
    pieces, skipped = [], collections.Counter()
    stats = {"dropped_overfull": 0}
    if coll == "bach":
        try:
            score = converter.parse(path)
            piece = T.piece_from_score(score, "chorale", tempo_words="chorale", stats=stats)
            seqs = T.encode(piece)
            title = os.path.basename(rel)
            pieces.append({"tune": 0, "title": title, "title_key": "", "seqs": seqs})
        except T.Skip as e:
            skipped[str(e)] += 1
        except Exception as e:  # a file music21 cannot read is recorded, not fatal
            skipped[f"parse error: {type(e).__name__}"] += 1
        return pieces, skipped, stats
    text = open(path, encoding="utf-8", errors="replace").read()
    tunes = split_abc(text)
    if limit:
        tunes = tunes[:limit]
    for num, tune in tunes:
        h = abc_header(tune)
        key_hint = T.parse_abc_key(h["K"] or "") if h["K"] else None
        words = " ".join(h["words"]) + " " + os.path.basename(rel)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score = converter.parse(tune, format="abc")
            if hasattr(score, "scores"):
                score = score.scores[0]
            piece = T.piece_from_score(score, "tune", key_hint=key_hint, tempo_words=words,
                                       bpm_text=h["Q"], stats=stats, meter_text=h["M"])
            pieces.append({"tune": num, "title": h["T"] or "", "title_key": norm_title(h["T"]),
                           "seqs": T.encode(piece)})
        except T.Skip as e:
            skipped[str(e)] += 1
        except Exception as e:
            skipped[f"parse error: {type(e).__name__}"] += 1
    return pieces, skipped, stats


def code_version():
    h = hashlib.sha256()
    for name in ("tokenise.py", "vocab.py"):
        h.update(open(os.path.join(HERE, name), "rb").read())
    return h.hexdigest()[:16]


class Groups:
    """Union-find over piece indices."""

    def __init__(self, n):
        self.p = list(range(n))

    def find(self, i):
        while self.p[i] != i:
            self.p[i] = self.p[self.p[i]]
            i = self.p[i]
        return i

    def union(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self.p[max(a, b)] = min(a, b)


def split_of(group_name, seed):
    u = int(hashlib.sha256(f"{seed}:{group_name}".encode()).hexdigest()[:12], 16) / 16 ** 12
    return "test" if u < SPLIT_TEST else ("val" if u < SPLIT_TEST + SPLIT_VAL else "train")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "build/model/data"))
    ap.add_argument("--manifest", default=os.path.join(ROOT, "docs/models/neural-1-data.tsv"))
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cache = os.path.join(a.out, "..", "cache")
    os.makedirs(cache, exist_ok=True)
    cdir = corpus_dir()
    ver = code_version()
    t0 = time.time()

    files = source_files(cdir)
    rows, pieces = [], []
    seen_oneill = set()
    skipped_all = collections.Counter()
    for i, (coll, rel) in enumerate(files):
        path = os.path.join(cdir, rel)
        digest = sha256_file(path)
        cpath = os.path.join(cache, f"{digest[:24]}-{ver}-{a.limit}.json")
        if os.path.exists(cpath):
            got = json.load(open(cpath))
        else:
            ps, sk, st = tokenise_file(coll, rel, path, a.limit)
            got = {"pieces": ps, "skipped": dict(sk), "stats": st}
            with open(cpath, "w") as f:
                json.dump(got, f)
        row = {"collection": coll, "path": rel, "sha256": digest, "in_file": 0, "taken": 0,
               "tokens": 0, "skipped": collections.Counter(got["skipped"])}
        row["in_file"] = len(got["pieces"]) + sum(got["skipped"].values())
        for p in got["pieces"]:
            if coll == "oneills1850":
                if p["tune"] in seen_oneill:
                    row["skipped"]["O'Neill number already taken from another file"] += 1
                    continue
                seen_oneill.add(p["tune"])
            p.update({"collection": coll, "path": rel, "index": len(pieces)})
            pieces.append(p)
            row["_pieces"] = row.get("_pieces", []) + [p]
        rows.append(row)
        if (i + 1) % 100 == 0 or i + 1 == len(files):
            print(f"  {i + 1}/{len(files)} files, {len(pieces)} pieces, {time.time() - t0:.0f}s", flush=True)

    # Exact melodic duplicates (any key): keep the first.
    seen_fp, kept = {}, []
    dup_of = {}
    for p in pieces:
        fp = melody_fingerprint(p["seqs"])
        if fp in seen_fp:
            dup_of[p["index"]] = seen_fp[fp]
            continue
        seen_fp[fp] = p["index"]
        kept.append(p)
    for row in rows:
        for p in row.pop("_pieces", []):
            if p["index"] in dup_of:
                row["skipped"]["duplicate melody of an earlier piece"] += 1
            else:
                row["taken"] += 1
                row["tokens"] += sum(len(s) for s in p["seqs"])
    pieces = kept

    # Group by title and by melody opening; split groups by seeded hash.
    g = Groups(len(pieces))
    first = {}
    for i, p in enumerate(pieces):
        keys = ["open:" + melody_fingerprint(p["seqs"], 10)]
        if p["title_key"]:
            keys.append("title:" + p["title_key"])
        for k in keys:
            if k in first:
                g.union(first[k], i)
            else:
                first[k] = i
    for i, p in enumerate(pieces):
        root = pieces[g.find(i)]
        p["group"] = f"{root['path']}#{root['tune']}"
        p["split"] = split_of(p["group"], a.seed)

    with open(os.path.join(a.out, "pieces.jsonl"), "w") as f:
        for p in pieces:
            for s in p["seqs"]:
                T.check_grammar(s)
            f.write(json.dumps({k: p[k] for k in ("collection", "path", "tune", "title", "group", "split", "seqs")}) + "\n")

    # The same sequences as plain text for tools in other languages (the C
    # benchmarks): one sequence a line, token ids separated by spaces.
    for split in ("train", "val", "test"):
        with open(os.path.join(a.out, f"{split}.tok"), "w") as f:
            for p in pieces:
                if p["split"] == split:
                    for s in p["seqs"]:
                        f.write(" ".join(map(str, s)) + "\n")

    for row in rows:
        skipped_all.update(row["skipped"])
    os.makedirs(os.path.dirname(a.manifest), exist_ok=True)
    with open(a.manifest, "w") as f:
        f.write("collection\tpath\tlicence\tsha256\tpieces_in_file\tpieces_taken\ttokens\tskipped\n")
        for r in rows:
            sk = "; ".join(f"{k} x{v}" for k, v in sorted(r["skipped"].items()))
            f.write(f"{COLLECTIONS[r['collection']]}\tmusic21/corpus/{r['path']}\t{LICENCES[r['collection']]}\t"
                    f"{r['sha256']}\t{r['in_file']}\t{r['taken']}\t{r['tokens']}\t{sk}\n")

    by = collections.defaultdict(lambda: collections.Counter())
    for p in pieces:
        c = by[p["collection"]]
        c["pieces"] += 1
        c[p["split"] + "_pieces"] += 1
        c[p["split"] + "_tokens"] += sum(len(s) for s in p["seqs"])
        c["sequences"] += len(p["seqs"])
    import music21
    summary = {"music21": music21.__version__, "seed": a.seed, "files": len(files),
               "pieces": len(pieces), "groups": len({p["group"] for p in pieces}),
               "by_collection": {k: dict(v) for k, v in by.items()},
               "skipped": dict(skipped_all), "excluded": EXCLUDED,
               "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: summary[k] for k in ("files", "pieces", "groups", "by_collection", "seconds")}, indent=1))


if __name__ == "__main__":
    main()
