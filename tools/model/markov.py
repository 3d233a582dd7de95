"""The n-gram baseline for neural@1 and the held-out comparison.

An interpolated Kneser-Ney n-gram model (orders up to 7) over the same tokens, trained on
the same train split with the same augmentation (12 transpositions) as the
transformer. Counts are numpy arrays of n-gram codes (a token fits in 8
bits, so an n-gram of up to 7 tokens is one int64), looked up with
searchsorted, so a few million n-grams train in seconds.

  P(w | h) = max(c(hw) - D, 0) / c(h) + D * N1+(h .) / c(h) * P(w | h')

with raw counts at the highest order and continuation counts N1+(. h'w)
below it (raw counts for n-grams that begin with BOS, which have nothing
before them), one discount per order D = n1 / (n1 + 2 n2), and a uniform
distribution under the unigrams. An unseen context backs off entirely.

Both models score every token after BOS of every test-split sequence
(untransposed); the figure is the mean of -log2 P, bits per token.

Sampling (the baseline's pieces for tools/model/distances.py): the same
model, order chosen on val as above unless --order names one, writes whole
pieces as neural@1's benchmark does: two sections, A and B, of exactly
--bars bars each, one sequence a line in the .tok format (conditioning
prefix included). Each token is drawn from the n-gram's distribution over
the tokens the grammar allows next (grammar.py, a port of the C engine's,
with the same limit of 512 tokens), with the C sampler's defaults:
temperature 1, top-p 0.95. The conditioning of piece i is what
build/bench/memorisation gives its piece i for seed S + i: key and mode from
splitmix64 of the seed as cz_neural_cond_from_controls() draws them, 4/4,
tempo band i % 3, density band (i / 3) % 3, so the baseline answers the same
requests as neural@1; --prefixes FILE takes instead each line's prefix of
a .tok file (the test split, say), one sequence per line.

Usage:
  markov.py eval [--weights workers/models/neural/weights/neural-1.cztf]
                 [--data build/model/data] [--orders 3,5,7] [--split test]
  markov.py sample --out FILE [--n 200] [--seed 7000] [--prefixes FILE]
                 [--order N | --orders 3,5,7] [--bars 8] [--temperature 1]
                 [--top-p 0.95] [--data build/model/data]
eval prints "name value" lines (bits per token on the test split unless named val):
  test_sequences N
  test_tokens N
  transformer_bits_per_token X
  markov3_val_bits_per_token V       (one pair per order)
  markov3_bits_per_token Y
  ...
  markov_best_order 7                (the order best on val)
  markov_best_bits_per_token Z       (its test figure: the baseline to beat)
sample writes FILE and says on stderr what it made.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar as G  # noqa: E402
import vocab as V  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
B = 256


def ngram_codes(seqs, n):
    """int64 codes of every n-gram that lies inside one sequence."""
    parts = []
    for s in seqs:
        a = np.asarray(s, dtype=np.int64)
        if len(a) < n:
            continue
        code = np.zeros(len(a) - n + 1, np.int64)
        for j in range(n):
            code = code * B + a[j:len(a) - n + 1 + j]
        parts.append(code)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


class Table:
    """Sorted n-gram codes with counts, and per-context totals and type counts."""

    def __init__(self, codes, counts):
        self.codes, self.counts = codes, counts.astype(np.float64)
        ctx = codes // B
        self.ctx, idx = np.unique(ctx, return_index=True)
        self.ctx_total = np.add.reduceat(self.counts, idx) if len(idx) else np.zeros(0)
        self.ctx_types = np.diff(np.append(idx, len(codes))).astype(np.float64)
        n1 = float((self.counts == 1).sum())
        n2 = float((self.counts == 2).sum())
        self.d = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5

    def lookup(self, sorted_keys, values, q):
        if len(sorted_keys) == 0:
            return np.zeros(len(q))
        i = np.searchsorted(sorted_keys, q)
        i = np.minimum(i, len(sorted_keys) - 1)
        return np.where(sorted_keys[i] == q, values[i], 0.0)

    def count(self, q):
        return self.lookup(self.codes, self.counts, q)

    def context(self, h):
        return self.lookup(self.ctx, self.ctx_total, h), self.lookup(self.ctx, self.ctx_types, h)


class KneserNey:
    def __init__(self, seqs, order):
        if not 1 <= order <= 7:
            raise ValueError("orders 1..7 only: an n-gram code is 8 bits a token in an int64")
        self.order = order
        self.raw, self.cont = {}, {}
        uniq = {}
        for n in range(1, order + 1):
            c, k = np.unique(ngram_codes(seqs, n), return_counts=True)
            uniq[n] = (c, k)
            self.raw[n] = Table(c, k)
        for n in range(1, order):
            up = uniq[n + 1][0]
            suffix = up % (B ** n)
            sc, sk = np.unique(suffix, return_counts=True)
            c, k = uniq[n]
            cont = self.raw[n].lookup(sc, sk.astype(np.float64), c)
            first = c // (B ** (n - 1))
            cont = np.where(first == V.BOS, k, cont)
            keep = cont > 0
            self.cont[n] = Table(c[keep], cont[keep])

    def _prob(self, hist, w, n, top):
        """P(w | last n-1 tokens of hist) for arrays of positions."""
        if n == 0:
            return np.full(len(w), 1.0 / len(V.VOCAB))
        table = self.raw[n] if top else self.cont[n]
        lower = self._prob(hist, w, n - 1, False)
        h = np.zeros(len(w), np.int64)
        for j in range(n - 1):
            h = h * B + hist[:, hist.shape[1] - (n - 1) + j]
        c = table.count(h * B + w)
        tot, types = table.context(h)
        safe = np.maximum(tot, 1)
        p = np.maximum(c - table.d, 0) / safe + table.d * types / safe * lower
        return np.where(tot > 0, p, lower)

    def bits(self, seqs):
        """(sum of -log2 P over every token after BOS, number of tokens)."""
        total, count = 0.0, 0
        by_avail = {}
        for s in seqs:
            for i in range(1, len(s)):
                k = min(self.order - 1, i)
                hist = s[i - k:i]
                by_avail.setdefault(k, ([], []))
                by_avail[k][0].append(hist)
                by_avail[k][1].append(s[i])
        for k, (hists, ws) in by_avail.items():
            hist = np.asarray(hists, np.int64).reshape(len(ws), k)
            w = np.asarray(ws, np.int64)
            p = self._prob(hist, w, k + 1, True)
            total += float(-np.log2(p).sum())
            count += len(ws)
        return total, count


def transformer_bits(weights, seqs):
    import torch
    import export
    torch.set_num_threads(2)
    _, model = export.read_cztf(weights)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s in seqs:
            x = torch.tensor([s], dtype=torch.long)
            logp = torch.log_softmax(model(x)[0].double(), dim=-1)
            tgt = torch.tensor(s[1:], dtype=torch.long)
            total += float(-logp[:-1].gather(1, tgt.view(-1, 1)).sum()) / math.log(2)
            count += len(s) - 1
    return total, count


# ---------------------------------------------------------------------------
# Sampling

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def splitmix64_mix(x):
    """common/rand.h's cz_splitmix64_mix()."""
    x = (x + GAMMA) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def bench_prefixes(n, seed0):
    """The prefixes of build/bench/memorisation's pieces seed0 .. seed0 + n - 1:
    per piece, section A's then section B's."""
    out = []
    for i in range(n):
        state = seed0 + i  # cz_neural_cond_from_controls(): two draws, key then mode
        key = splitmix64_mix(state) % 12
        minor = splitmix64_mix((state + GAMMA) & MASK64) & 1
        for section in ("SECTION_A", "SECTION_B"):
            out.append([V.BOS, V.KEY0 + key, V.ID["MODE_MIN" if minor else "MODE_MAJ"], V.ID["METER_4_4"],
                        V.ID[V.TEMPOS[i % 3]], V.ID[V.DENSITIES[i // 3 % 3]], V.ID[section]])
    return out


def file_prefixes(path, n):
    """The first seven tokens of each line of a .tok file (at most n lines if n)."""
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                out.append([int(x) for x in line.split()[:7]])
            if n and len(out) == n:
                break
    return out


def draw(p, allowed, temperature, top_p, rng):
    """One token from the probabilities p (all tokens) among allowed, as
    cz_neural_sample(): tempered, the smallest most probable set whose mass
    reaches top_p (ties by id), one uniform."""
    ids = np.asarray(allowed)
    q = p[ids] ** (1.0 / temperature)
    order = np.lexsort((ids, -q))  # most probable first, ties by id
    q, ids = q[order], ids[order]
    cum = np.cumsum(q)
    keep = int(np.searchsorted(cum, top_p * cum[-1])) + 1
    keep = min(keep, len(q))
    at = rng.random() * cum[keep - 1]
    return int(ids[min(int(np.searchsorted(cum[:keep], at, side="right")), keep - 1)])


def sample(lm, prefixes, bars, temperature, top_p, seed, max_len=512):
    """One sequence per prefix, all stepped together (same length at every step)."""
    rng = np.random.default_rng(seed)
    seqs = [list(p) for p in prefixes]
    gs = []
    for s in seqs:
        g = G.Grammar(max_len, bars, bars)
        for t in s:
            g.push(t)
        gs.append(g)
    allowed = [g.allowed() for g in gs]
    vocab = np.arange(len(V.VOCAB), dtype=np.int64)
    k = lm.order - 1
    while True:
        live = [i for i in range(len(seqs)) if allowed[i]]
        if not live:
            break
        hist = np.asarray([seqs[i][-k:] for i in live], np.int64)
        hist = np.repeat(hist, len(vocab), axis=0)
        w = np.tile(vocab, len(live))
        p = lm._prob(hist, w, k + 1, True).reshape(len(live), len(vocab))
        for r, i in enumerate(live):
            t = draw(p[r], allowed[i], temperature, top_p, rng)
            gs[i].push(t)
            seqs[i].append(t)
            allowed[i] = gs[i].allowed()
    return seqs, gs


def train_model(a, log):
    """The Kneser-Ney model of --order, or of the order best on val among --orders."""
    import train
    train_seqs = train.augment(train.load_split(a.data, "train"))
    if a.order:
        return KneserNey(train_seqs, a.order)
    val = train.load_split(a.data, "val")
    best = None
    for order in [int(x) for x in a.orders.split(",")]:
        lm = KneserNey(train_seqs, order)
        vt, vn = lm.bits(val)
        log(f"order {order}: {vt / vn:.4f} bits per token on val")
        if best is None or vt / vn < best[0]:
            best = (vt / vn, lm)
    return best[1]


def sample_main(a):
    def log(msg):
        print(f"markov sample: {msg}", file=sys.stderr, flush=True)
    prefixes = file_prefixes(a.prefixes, a.n) if a.prefixes else bench_prefixes(a.n, a.seed)
    for i, p in enumerate(prefixes):
        try:
            G.parse(p + [V.BAR])  # a whole prefix the grammar takes
        except ValueError as e:
            sys.exit(f"markov sample: prefix {i + 1} ({p}): {e}")
    t0 = time.time()
    lm = train_model(a, log)
    t1 = time.time()
    seqs, gs = sample(lm, prefixes, a.bars, a.temperature, a.top_p, a.seed)
    t2 = time.time()
    with open(a.out, "w") as f:
        for s in seqs:
            f.write(" ".join(map(str, s)) + "\n")
    ended = sum(g.ended() and g.bars == a.bars for g in gs)
    log(f"order {lm.order}, {len(seqs)} sequences ({ended} with {a.bars} bars and EOS), "
        f"{sum(len(s) for s in seqs) / len(seqs):.0f} tokens on average; "
        f"trained in {t1 - t0:.0f} s, sampled in {t2 - t1:.0f} s -> {a.out}")
    if ended < len(seqs):
        log(f"{len(seqs) - ended} sequences filled 512 tokens before their last bar ended")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--weights", default=os.path.join(ROOT, "workers/models/neural/weights/neural-1.cztf"))
    e.add_argument("--data", default=os.path.join(ROOT, "build/model/data"))
    e.add_argument("--orders", default="3,5,7")
    e.add_argument("--split", default="test")
    e.add_argument("--no-transformer", action="store_true")
    s = sub.add_parser("sample")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=200, help="pieces (two sequences each); with --prefixes, lines")
    s.add_argument("--seed", type=int, default=7000)
    s.add_argument("--prefixes")
    s.add_argument("--data", default=os.path.join(ROOT, "build/model/data"))
    s.add_argument("--orders", default="3,5,7")
    s.add_argument("--order", type=int, default=0)
    s.add_argument("--bars", type=int, default=8)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-p", type=float, default=0.95)
    a = ap.parse_args()
    if a.cmd == "sample":
        return sample_main(a)
    import train
    held = train.load_split(a.data, a.split)
    val = train.load_split(a.data, "val")
    print(f"{a.split}_sequences {len(held)}")
    print(f"{a.split}_tokens {sum(len(s) - 1 for s in held)}")
    if not a.no_transformer:
        t, n = transformer_bits(a.weights, held)
        print(f"transformer_bits_per_token {t / n:.4f}", flush=True)
    train_seqs = train.augment(train.load_split(a.data, "train"))
    best = None
    for order in [int(x) for x in a.orders.split(",")]:
        lm = KneserNey(train_seqs, order)
        vt, vn = lm.bits(val)
        t, n = lm.bits(held)
        print(f"markov{order}_val_bits_per_token {vt / vn:.4f}")
        print(f"markov{order}_bits_per_token {t / n:.4f}", flush=True)
        if best is None or vt / vn < best[1]:
            best = (order, vt / vn, t / n)
    print(f"markov_best_order {best[0]}")
    print(f"markov_best_bits_per_token {best[2]:.4f}")


if __name__ == "__main__":
    main()
