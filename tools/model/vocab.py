"""The neural@1 vocabulary: 174 token names whose ids are their positions.

The order is the contract with the C engine (docs/models/format.md); never
reorder or insert. Helpers here convert between names, ids and the musical
values a token carries, and shift a sequence by a number of semitones (the
transposition used for augmentation works on tokens, not on scores).
"""

SPECIALS = ["PAD", "BOS", "EOS", "BAR"]
KEYS = [f"KEY_{i}" for i in range(12)]
MODES = ["MODE_MAJ", "MODE_MIN"]
METERS = ["METER_2_4", "METER_3_4", "METER_4_4", "METER_6_8"]
TEMPOS = ["TEMPO_SLOW", "TEMPO_MID", "TEMPO_FAST"]
DENSITIES = ["DENSITY_LOW", "DENSITY_MID", "DENSITY_HIGH"]
SECTIONS = ["SECTION_A", "SECTION_B", "SECTION_C", "SECTION_INTRO", "SECTION_OUTRO"]
POSITIONS = [f"POS_{i}" for i in range(16)]
QUALITIES = ["MAJ", "MIN", "DIM", "DOM7"]
CHORDS = [f"CHORD_{r}_{q}" for r in range(12) for q in QUALITIES]
PITCH_LO, PITCH_HI = 36, 96
PITCHES = [f"PITCH_{p}" for p in range(PITCH_LO, PITCH_HI + 1)]
DURATIONS = [f"DUR_{d}" for d in range(1, 17)]

VOCAB = (SPECIALS + KEYS + MODES + METERS + TEMPOS + DENSITIES + SECTIONS
         + POSITIONS + CHORDS + PITCHES + DURATIONS)
assert len(VOCAB) == 174, len(VOCAB)
ID = {name: i for i, name in enumerate(VOCAB)}

PAD, BOS, EOS, BAR = 0, 1, 2, 3
KEY0 = ID["KEY_0"]
CHORD0 = ID["CHORD_0_MAJ"]
PITCH0 = ID[f"PITCH_{PITCH_LO}"]
POS0 = ID["POS_0"]
DUR1 = ID["DUR_1"]

# Sixteenths in a bar for each meter token.
METER_SIXTEENTHS = {"METER_2_4": 8, "METER_3_4": 12, "METER_4_4": 16, "METER_6_8": 12}


def chord_id(root, quality):
    """Id of CHORD_<root>_<quality>; root is a pitch class 0..11."""
    return CHORD0 + 4 * (root % 12) + QUALITIES.index(quality)


def pitch_id(midi):
    return PITCH0 + midi - PITCH_LO


def is_pitch(t):
    return PITCH0 <= t < PITCH0 + len(PITCHES)


def transpose(ids, semitones):
    """The sequence shifted by `semitones`, or None if a pitch leaves 36..96.

    KEY and CHORD roots move modulo 12; PITCH moves and must stay in range.
    """
    out = []
    for t in ids:
        if KEY0 <= t < KEY0 + 12:
            t = KEY0 + (t - KEY0 + semitones) % 12
        elif CHORD0 <= t < CHORD0 + 48:
            r, q = divmod(t - CHORD0, 4)
            t = CHORD0 + 4 * ((r + semitones) % 12) + q
        elif is_pitch(t):
            p = t - PITCH0 + PITCH_LO + semitones
            if p < PITCH_LO or p > PITCH_HI:
                return None
            t = pitch_id(p)
        out.append(t)
    return out


def names(ids):
    return [VOCAB[t] for t in ids]


def ids(token_names):
    return [ID[n] for n in token_names]
