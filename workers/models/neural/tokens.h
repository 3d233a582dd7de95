/* neural@1's vocabulary and grammar: the 174 event tokens the model reads
 * and writes (ids fixed by the contract between the training tool and this
 * engine, docs/models/format.md), the grammar every piece follows, the
 * conditioning prefix made from a job's controls, and the decoder from
 * tokens to a piece of bars, chords and melody notes (and back).
 *
 * The grammar (docs/models/format.md, with the training tool's choices):
 *
 *   BOS KEY MODE METER TEMPO DENSITY SECTION  { BAR { event } }  [EOS]
 *   event := POS_p CHORD_r_q  |  POS_p PITCH_n DUR_d
 *
 * Within a bar events come in onset order (a POS never goes back, p below
 * the meter's bar length); at one onset at most one chord and one note, the
 * chord first; a note starts no earlier than the previous note ends and
 * ends within its bar (p + d <= bar length: a held note is written again at
 * POS_0 of the next bar), so the melody is monophonic. A sequence holds at
 * most max_seq tokens; a section longer than that is cut between events and
 * goes on in a new sequence after the same prefix, so only the last one of
 * a section ends with EOS.
 *
 * The grammar is one state machine used twice: the sampler asks it which
 * tokens may come next (so a generated sequence always parses) and the
 * decoder feeds a finished sequence through it (so what parses is exactly
 * what the sampler can produce). */
#ifndef CZ_NEURAL_TOKENS_H
#define CZ_NEURAL_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/music/prompt.h"

/* Token ids: a group's first id; a member is first + index. */
enum {
    CZ_TOK_PAD = 0,
    CZ_TOK_BOS = 1,
    CZ_TOK_EOS = 2,
    CZ_TOK_BAR = 3,
    CZ_TOK_KEY = 4,      /* + tonic pitch class 0..11 (C = 0) */
    CZ_TOK_MODE = 16,    /* + cz_neural_mode */
    CZ_TOK_METER = 18,   /* + cz_neural_meter */
    CZ_TOK_TEMPO = 22,   /* + cz_neural_tempo */
    CZ_TOK_DENSITY = 25, /* + cz_neural_density */
    CZ_TOK_SECTION = 28, /* + cz_neural_section */
    CZ_TOK_POS = 33,     /* + onset in sixteenths 0..15 */
    CZ_TOK_CHORD = 49,   /* + root * 4 + cz_neural_quality */
    CZ_TOK_PITCH = 97,   /* + MIDI pitch - CZ_NEURAL_PITCH_LO */
    CZ_TOK_DUR = 158,    /* + sixteenths - 1 */
    CZ_TOK_VOCAB = 174,  /* the vocabulary's size */
};

#define CZ_NEURAL_PITCH_LO 36
#define CZ_NEURAL_PITCH_HI 96
#define CZ_NEURAL_MAX_POS 16 /* sixteenths in the longest bar (4/4) */
#define CZ_NEURAL_MAX_DUR 16
#define CZ_NEURAL_PREFIX 7 /* BOS and the six conditioning tokens */

typedef enum cz_neural_mode { CZ_MODE_MAJ, CZ_MODE_MIN } cz_neural_mode;
typedef enum cz_neural_meter {
    CZ_METER_2_4,
    CZ_METER_3_4,
    CZ_METER_4_4,
    CZ_METER_6_8
} cz_neural_meter;
typedef enum cz_neural_tempo { CZ_TEMPO_SLOW, CZ_TEMPO_MID, CZ_TEMPO_FAST } cz_neural_tempo;
typedef enum cz_neural_density {
    CZ_DENSITY_LOW,
    CZ_DENSITY_MID,
    CZ_DENSITY_HIGH
} cz_neural_density;
typedef enum cz_neural_section {
    CZ_SECTION_A,
    CZ_SECTION_B,
    CZ_SECTION_C,
    CZ_SECTION_INTRO,
    CZ_SECTION_OUTRO
} cz_neural_section;
typedef enum cz_neural_quality {
    CZ_QUALITY_MAJ,
    CZ_QUALITY_MIN,
    CZ_QUALITY_DIM,
    CZ_QUALITY_DOM7
} cz_neural_quality;

/** The conditioning of one sequence: the six tokens after BOS. */
typedef struct cz_neural_cond {
    int key;                   /* tonic pitch class 0..11 */
    cz_neural_mode mode;       /* major or minor */
    cz_neural_meter meter;     /* 2/4, 3/4, 4/4, 6/8 */
    cz_neural_tempo tempo;     /* band: < 90, 90..130, > 130 BPM */
    cz_neural_density density; /* melody notes per bar: < 4, 4..7, >= 8 */
    cz_neural_section section; /* which part of the piece */
} cz_neural_cond;

/* ================================================================ tokens */

/** @brief The name of token @p id ("CHORD_7_DOM7"). @returns a static string, or NULL out of range.
 */
const char *cz_neural_token_name(int id);

/** @brief The id of the token named @p name. @returns the id, or -1 when there is none. */
int cz_neural_token_id(const char *name);

/** @brief Sixteenths in a bar of @p meter: 8, 12, 16 or 12. */
int cz_neural_bar_sixteenths(cz_neural_meter meter);

/* ================================================================ conditioning */

/** @brief The tempo band of @p bpm: slow below 90, fast above 130, else mid. */
cz_neural_tempo cz_neural_tempo_band(double bpm);

/**
 * @brief The conditioning for a job's controls. Key and mode are the
 * controls' when given, else drawn from @p seed; the tempo band comes from
 * the BPM, else the tempo word (slow, moderate, upbeat/fast), else mid; the
 * density from the first mood (calm, chill, dreamy, sad, melancholic,
 * romantic, warm, nostalgic: low; energetic, aggressive, playful, groovy,
 * epic, happy, uplifting: high; else mid). The controls carry no meter or
 * section: 4/4 and A, which the caller may change in @p out.
 */
void cz_neural_cond_from_controls(const cz_controls *c, uint64_t seed, cz_neural_cond *out);

/**
 * @brief Writes the prefix of a sequence, BOS and the six conditioning
 * tokens, into @p out. @returns CZ_NEURAL_PREFIX.
 */
int cz_neural_cond_tokens(const cz_neural_cond *cond, int out[CZ_NEURAL_PREFIX]);

/** @brief The MIDI pitch of token @p t. @returns it, or -1 when @p t is not a PITCH token. */
int cz_neural_token_pitch(int t);

/* ================================================================ grammar */

/** Where a sequence is in the grammar; {0} is not valid: use cz_neural_grammar_init(). */
typedef struct cz_neural_grammar {
    int len;                 /* tokens accepted so far */
    int max_len;             /* the sequence may not grow past this (EOS included) */
    int min_bars;            /* EOS only after this many bars (at least 1) */
    int max_bars;            /* no BAR after this many; 0 for no limit */
    int state;               /* what may come next (tokens.c) */
    int bar_len;             /* sixteenths per bar, once the meter is read */
    int bars;                /* BAR tokens read */
    int last_pos;            /* position of the bar's last event, -1 at its start */
    int chord_pos, note_pos; /* position of the bar's last chord / note onset, -1 if none */
    int note_end;            /* where the bar's last note ends (0 if none) */
    int cur_pos;             /* the POS just read, awaiting CHORD or PITCH */
    cz_neural_cond cond;     /* read from the prefix */
} cz_neural_grammar;

/**
 * @brief Starts a sequence that may hold at most @p max_len tokens (the
 * model's max_seq, EOS included) that ends with EOS only after @p min_bars
 * bars (at least 1) and has at most @p max_bars (0: no limit; a min_bars
 * above it is lowered to it). A sequence that reaches max_len first is cut
 * between events, and a new sequence with the same prefix goes on.
 */
void cz_neural_grammar_init(cz_neural_grammar *g, int max_len, int min_bars, int max_bars);

/**
 * @brief Marks in @p allowed (CZ_TOK_VOCAB entries, true or false) the
 * tokens that may come next: those the grammar accepts after what was read
 * and after which the sequence can still reach a place to stop (EOS, or
 * between events) within max_len. Nothing is allowed after EOS, nor once a
 * sequence is full.
 * @returns how many tokens are allowed.
 */
int cz_neural_grammar_allowed(const cz_neural_grammar *g, bool allowed[CZ_TOK_VOCAB]);

/** @brief Whether @p tok may come next (the test of cz_neural_grammar_allowed()). */
bool cz_neural_grammar_accepts(const cz_neural_grammar *g, int tok);

/**
 * @brief Reads @p tok. @returns 0; or -1 with @p err saying what was
 * expected when the grammar does not accept it (nothing changes then).
 */
int cz_neural_grammar_push(cz_neural_grammar *g, int tok, cz_err *err);

/**
 * @brief Whether the sequence is over: EOS read, or full (between events,
 * and no token fits in max_len any more: the section goes on in a new
 * sequence).
 */
bool cz_neural_grammar_done(const cz_neural_grammar *g);

/** @brief Whether the sequence ended with EOS (the end of its section). */
bool cz_neural_grammar_ended(const cz_neural_grammar *g);

/** @brief Whether the sequence may stop here: after EOS, or between events. */
bool cz_neural_grammar_complete(const cz_neural_grammar *g);

/* ================================================================ pieces */

/** A chord change within a bar. */
typedef struct cz_neural_chord {
    int pos;                   /* onset in sixteenths within the bar */
    int root;                  /* pitch class 0..11 */
    cz_neural_quality quality; /* maj, min, dim, dom7 */
} cz_neural_chord;

/** A melody note; notes never overlap, and a note ends within its bar. */
typedef struct cz_neural_note {
    int pos;   /* onset in sixteenths within the bar */
    int pitch; /* MIDI 36..96 */
    int dur;   /* sixteenths 1..16 */
} cz_neural_note;

/** One bar: its chord changes and melody notes, each in onset order. */
typedef struct cz_neural_bar {
    cz_neural_chord chords[CZ_NEURAL_MAX_POS];
    int n_chords;
    cz_neural_note notes[CZ_NEURAL_MAX_POS];
    int n_notes;
} cz_neural_bar;

/** A decoded sequence. */
typedef struct cz_neural_piece {
    cz_neural_cond cond;
    int bar_len; /* sixteenths per bar */
    cz_neural_bar *bars;
    int n_bars;
    bool eos; /* it ended with EOS; false: cut, its section goes on */
} cz_neural_piece;

/**
 * @brief Decodes a whole sequence (BOS, conditioning, bars, then EOS, or
 * the end between events of a sequence that was cut) into @p out.
 * @returns 0 with @p out filled (the caller frees it with
 * cz_neural_piece_free()); or -1 with @p err naming the first token that
 * does not parse and what was expected there, or saying that the sequence
 * stops inside the prefix or an event; @p out is left empty then.
 */
int cz_neural_decode(const int *tokens, int n, cz_neural_piece *out, cz_err *err);

/**
 * @brief Encodes @p p as a sequence (the inverse of cz_neural_decode()):
 * events in onset order, a chord before the note at its position, EOS at
 * the end when p->eos.
 * @returns the number of tokens written to @p out, or -1 with @p err when
 * the piece breaks the grammar or needs more than @p cap tokens.
 */
int cz_neural_encode(const cz_neural_piece *p, int *out, int cap, cz_err *err);

/** @brief Frees what cz_neural_decode() allocated in @p p and empties it; NULL-safe. */
void cz_neural_piece_free(cz_neural_piece *p);

#endif
