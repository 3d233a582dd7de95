"""neural@1's token grammar as the C engine enforces it, for offline tools.

A line-for-line port of the state machine in workers/models/neural/tokens.c
(cz_neural_grammar_*), so that a sequence made or checked here parses there:

    BOS KEY MODE METER TEMPO DENSITY SECTION  { BAR { event } }  [EOS]
    event := POS_p CHORD_r_q  |  POS_p PITCH_n DUR_d

Within a bar events come in onset order (a POS never goes back, p below the
meter's bar length); at one onset at most one chord and one note, the chord
first; a note starts no earlier than the bar's previous note ends and ends
within its bar (p + d <= bar length). A sequence holds at most max_len
tokens; EOS only after min_bars bars; no BAR after max_bars (0: no limit).
allowed() also refuses a token after which the sequence could not reach a
place to stop (EOS, or between events) within max_len, as the C side does,
so a sampler that keeps to it always ends cleanly.

tokenise.check_grammar() is the training tool's looser check of the corpus
(order and shape only); this is the generator's grammar, with the
monophony, note-length and bar-count rules too.

Running this file checks allowed() against step() on random walks.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vocab as V  # noqa: E402

# States, in the order of tokens.c: the prefix states are in token order.
G_BOS, G_KEY, G_MODE, G_METER, G_TEMPO, G_DENSITY, G_SECTION = range(7)
G_FIRST_BAR, G_EVENT, G_AFTER_POS, G_AFTER_PITCH, G_END = range(7, 12)

# Each prefix state's token group: first id and size.
PREFIX_GROUPS = [(V.BOS, 1), (V.KEY0, 12), (V.ID["MODE_MAJ"], 2), (V.ID["METER_2_4"], 4),
                 (V.ID["TEMPO_SLOW"], 3), (V.ID["DENSITY_LOW"], 3), (V.ID["SECTION_A"], 5)]
BAR_LEN = [8, 12, 16, 12]  # sixteenths per bar of METER_2_4, 3_4, 4_4, 6_8
EXPECTED = ["BOS", "KEY_", "MODE_", "METER_", "TEMPO_", "DENSITY_", "SECTION_",
            "BAR after the conditioning", "BAR, EOS (after the last bar) or a POS_ in order",
            "CHORD_ or PITCH_ that the bar has room for", "DUR_ ending within the bar",
            "nothing after EOS"]
N_PITCH = V.PITCH_HI - V.PITCH_LO + 1
MAX_POS = 16
MAX_DUR = 16


def _in(tok, first, n):
    return first <= tok < first + n


class Grammar:
    """Where a sequence is in the grammar (cz_neural_grammar)."""

    def __init__(self, max_len=512, min_bars=1, max_bars=0):
        self.max_len = max_len
        self.max_bars = max(max_bars, 0)
        if self.max_bars and min_bars > self.max_bars:
            min_bars = self.max_bars
        self.min_bars = max(min_bars, 1)
        self.len = 0
        self.state = G_BOS
        self.bar_len = 16
        self.bars = 0
        self.last_pos = self.chord_pos = self.note_pos = self.cur_pos = -1
        self.note_end = 0
        self.cond = [0] * 6  # key, mode, meter, tempo, density, section (values)

    def copy(self):
        g = Grammar.__new__(Grammar)
        g.__dict__ = dict(self.__dict__)
        g.cond = list(self.cond)
        return g

    def _chord_ok(self, pos):
        return pos > self.chord_pos and pos > self.note_pos

    def _note_ok(self, pos):
        return pos > self.note_pos and pos >= self.note_end

    def _cost(self):
        """The fewest tokens from here to a place where the sequence may stop."""
        s = self.state
        if s in (G_END, G_EVENT):
            return 0
        if s == G_AFTER_POS:
            return 1 if self._chord_ok(self.cur_pos) else 2
        if s == G_AFTER_PITCH:
            return 1
        return G_EVENT - s

    def step(self, tok):
        """Applies tok; False (nothing changed) when the grammar refuses it."""
        s = self.state
        if s < G_FIRST_BAR:
            first, n = PREFIX_GROUPS[s]
            if not _in(tok, first, n):
                return False
            if s > G_BOS:
                self.cond[s - 1] = tok - first
            if s == G_METER:
                self.bar_len = BAR_LEN[tok - first]
            self.state = s + 1
        elif s in (G_FIRST_BAR, G_EVENT) and tok == V.BAR:
            if self.max_bars and self.bars >= self.max_bars:
                return False
            self.bars += 1
            self.last_pos = self.chord_pos = self.note_pos = -1
            self.note_end = 0
            self.state = G_EVENT
        elif s == G_EVENT and tok == V.EOS:
            if self.bars < self.min_bars:
                return False
            self.state = G_END
        elif s == G_EVENT and _in(tok, V.POS0, MAX_POS):
            p = tok - V.POS0
            if p >= self.bar_len or p < self.last_pos or not (self._chord_ok(p) or self._note_ok(p)):
                return False
            self.cur_pos = p
            self.state = G_AFTER_POS
        elif s == G_AFTER_POS and _in(tok, V.CHORD0, 48):
            if not self._chord_ok(self.cur_pos):
                return False
            self.chord_pos = self.last_pos = self.cur_pos
            self.state = G_EVENT
        elif s == G_AFTER_POS and _in(tok, V.PITCH0, N_PITCH):
            if not self._note_ok(self.cur_pos):
                return False
            self.note_pos = self.last_pos = self.cur_pos
            self.state = G_AFTER_PITCH
        elif s == G_AFTER_PITCH and _in(tok, V.DUR1, MAX_DUR):
            end = self.note_pos + tok - V.DUR1 + 1
            if end > self.bar_len:
                return False
            self.note_end = end
            self.state = G_EVENT
        else:
            return False
        self.len += 1
        return True

    def push(self, tok):
        """step() that raises ValueError naming the token when it is refused."""
        if not self.step(tok):
            name = V.VOCAB[tok] if 0 <= tok < len(V.VOCAB) else f"id {tok}"
            raise ValueError(f"token {name} is not allowed after {self.len} tokens "
                             f"(in bar {self.bars}, expected {EXPECTED[self.state]})")

    def accepts(self, tok):
        """Whether tok may come next (cz_neural_grammar_accepts): the grammar
        takes it and the sequence can still stop within max_len."""
        g = self.copy()
        return g.step(tok) and g.len + g._cost() <= g.max_len

    def allowed(self):
        """The token ids that may come next: accepts() for every token, worked
        out per state instead of by trying each of the 174."""
        s, room = self.state, self.max_len - self.len  # tokens that still fit
        if s == G_END or room < 1:
            return []
        if s < G_FIRST_BAR:
            first, n = PREFIX_GROUPS[s]
            return list(range(first, first + n)) if 1 + (G_EVENT - s - 1) <= room else []
        if s == G_FIRST_BAR:
            return [V.BAR] if not self.max_bars or self.bars < self.max_bars else []
        if s == G_EVENT:
            out = []
            if not self.max_bars or self.bars < self.max_bars:
                out.append(V.BAR)
            if self.bars >= self.min_bars:
                out.append(V.EOS)
            for p in range(max(self.last_pos, 0), self.bar_len):
                chord, note = self._chord_ok(p), self._note_ok(p)
                if (chord or note) and 1 + (1 if chord else 2) <= room:
                    out.append(V.POS0 + p)
            return out
        if s == G_AFTER_POS:
            out = []
            if self._chord_ok(self.cur_pos):
                out += range(V.CHORD0, V.CHORD0 + 48)
            if self._note_ok(self.cur_pos) and room >= 2:
                out += range(V.PITCH0, V.PITCH0 + N_PITCH)
            return out
        # G_AFTER_PITCH
        return [V.DUR1 + d - 1 for d in range(1, MAX_DUR + 1) if self.note_pos + d <= self.bar_len]

    def complete(self):
        """The sequence may stop here: after EOS, or between events."""
        return self.state in (G_EVENT, G_END)

    def ended(self):
        return self.state == G_END

    def done(self):
        """Over: EOS read, or full between events (cz_neural_grammar_done)."""
        if self.state == G_END:
            return True
        return self.state == G_EVENT and not self.allowed()


def parse(seq, max_len=10 ** 9, min_bars=1, max_bars=0):
    """The Grammar after reading all of seq; ValueError if it does not parse
    or stops inside its prefix or an event (cz_neural_decode's rule)."""
    g = Grammar(max_len, min_bars, max_bars)
    for t in seq:
        g.push(t)
    if not g.complete():
        raise ValueError(f"the sequence stops inside {'its prefix' if g.state < G_EVENT else 'an event'}")
    return g


def _selftest(walks=300, seed=1):
    """allowed() == the tokens accepts() takes, along random walks of allowed tokens."""
    import random
    rng = random.Random(seed)
    states = 0
    for w in range(walks):
        g = Grammar(max_len=rng.choice([40, 80, 512]), min_bars=rng.choice([1, 2, 8]),
                    max_bars=rng.choice([0, 2, 8]))
        while True:
            fast = g.allowed()
            slow = [t for t in range(len(V.VOCAB)) if g.accepts(t)]
            assert sorted(fast) == slow, (g.__dict__, sorted(fast), slow)
            states += 1
            if not fast:
                break
            g.push(rng.choice(fast))
        assert g.complete()
    print(f"grammar: allowed() agrees with accepts() in {states} states of {walks} random walks")


if __name__ == "__main__":
    _selftest()
