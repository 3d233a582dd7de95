/* Prompt to controls: the vocabulary that turns a creator's words ("warm
 * lo-fi hip hop with rhodes and vinyl drums, 82 bpm, A minor, 45 seconds")
 * into normalised control tokens a model can follow.
 *
 * The API runs it when a job is submitted, so the job shows its controls
 * (and the words it did not understand) at once; the inference worker reads
 * the same controls back from the canonical request. Explicit request fields
 * (genre, mood, key, tempo_bpm, duration_s, instruments) override what the
 * prompt says. Everything here is pure: no I/O, no global state. The
 * vocabulary itself is documented in docs/composer.md, and a unit test checks
 * that every phrase in the table appears there. */
#ifndef CZ_PROMPT_H
#define CZ_PROMPT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define CZ_CONTROLS_TOKEN 24       /* longest token, with its terminator */
#define CZ_CONTROLS_MAX_MOODS 4    /* moods kept, in the order given */
#define CZ_CONTROLS_MAX_INSTR 8    /* instruments kept, in the order given */
#define CZ_CONTROLS_MAX_IGNORED 32 /* ignored words listed */

/** The kinds of vocabulary entry. */
typedef enum cz_vocab_kind {
    CZ_VOCAB_GENRE,      /* token: a genre (lofi, jazz, house...) */
    CZ_VOCAB_MOOD,       /* token: a mood (calm, dark, happy...) */
    CZ_VOCAB_INSTRUMENT, /* token: an instrument (piano, rhodes, drums...) */
    CZ_VOCAB_TEXTURE,    /* token: a production texture (vinyl) */
    CZ_VOCAB_TEMPO,      /* token: a tempo feel (slow, moderate, upbeat, fast) */
    CZ_VOCAB_MODE,       /* token: major or minor */
    CZ_VOCAB_SOLO,       /* "solo", "only": just the named instruments */
    CZ_VOCAB_NEGATE,     /* "no", "without": leave the next instrument out */
    CZ_VOCAB_FILLER,     /* understood, carries no control ("with", "and", "track") */
} cz_vocab_kind;

/** One phrase of the vocabulary and the token it stands for. */
typedef struct cz_vocab_entry {
    const char *phrase; /* lower case, words separated by one space */
    cz_vocab_kind kind;
    const char *token; /* normalised control token; NULL for solo/negate/filler */
} cz_vocab_entry;

/** The controls of one request, every one optional. */
typedef struct cz_controls {
    char genre[CZ_CONTROLS_TOKEN];  /* primary genre, "" when none */
    char flavor[CZ_CONTROLS_TOKEN]; /* a second genre that colours the harmony, or "" */
    char moods[CZ_CONTROLS_MAX_MOODS][CZ_CONTROLS_TOKEN];
    int n_moods;
    double tempo_bpm;              /* 0 when not given */
    char tempo[CZ_CONTROLS_TOKEN]; /* tempo feel when no number was given, or "" */
    int key_root;                  /* pitch class 0..11 (C = 0), -1 when not given */
    int mode;                      /* 0 major, 1 minor, -1 not given */
    double duration_s;             /* 0 when not given */
    char instruments[CZ_CONTROLS_MAX_INSTR][CZ_CONTROLS_TOKEN];
    int n_instruments;
    char exclude[CZ_CONTROLS_MAX_INSTR][CZ_CONTROLS_TOKEN]; /* "no drums" */
    int n_exclude;
    char texture[CZ_CONTROLS_TOKEN];                          /* "" or "vinyl" */
    bool solo;                                                /* only the named instruments play */
    char ignored[CZ_CONTROLS_MAX_IGNORED][CZ_CONTROLS_TOKEN]; /* words not understood */
    int n_ignored;
} cz_controls;

/** Explicit request fields that override the prompt; NULL or 0 when absent. */
typedef struct cz_prompt_fields {
    const char *prompt;
    const char *genre; /* free text, read with the vocabulary */
    const char *mood;  /* free text, read with the vocabulary */
    const char *key;   /* "A minor", "F#m", "Eb major"... */
    double tempo_bpm;
    double duration_s;
    const char *const *instruments; /* names, each read with the vocabulary */
    int n_instruments;              /* -1 when the field is absent */
} cz_prompt_fields;

/**
 * @brief Reads the prompt and the explicit fields into @p out. Words of the
 * prompt, genre and mood that the vocabulary does not know are listed in
 * out->ignored; they never make the request fail.
 * @returns 0; or -1 with @p err filled and @p bad_instrument set to the index
 * of an explicit instrument name that is not in the vocabulary.
 */
int cz_prompt_controls(const cz_prompt_fields *in, cz_controls *out, int *bad_instrument,
                       cz_err *err);

/**
 * @brief cz_prompt_controls() over the fields of a job request object
 * (prompt, genre, mood, key, tempo_bpm, duration_s, instruments): the one
 * reading the API, the inference stage and `cadenza-worker render` share.
 * @returns as cz_prompt_controls().
 */
int cz_prompt_controls_of(const cJSON *request, cz_controls *out, int *bad_instrument, cz_err *err);

/**
 * @brief Parses a key such as "A minor", "F#m", "Bb", "eb major".
 * @returns 0 with @p root (0..11) and @p mode (0 major, 1 minor, -1 unsaid),
 * or -1 when it is not a key.
 */
int cz_prompt_parse_key(const char *s, int *root, int *mode);

/**
 * @brief The key as text, e.g. "F# minor" (sharps for F#, C#, G#; flats for
 * Eb, Bb, Ab; C D E F G A B as themselves). @p mode -1 reads as major.
 */
const char *cz_prompt_key_name(int root, int mode, char *buf, size_t n);

/**
 * @brief The controls as a JSON object: only the controls that are set.
 * @returns a new object the caller frees with cJSON_Delete(), or NULL on OOM.
 */
cJSON *cz_controls_json(const cz_controls *c);

/**
 * @brief The ignored words as a JSON array of strings.
 * @returns a new array the caller frees with cJSON_Delete(), or NULL on OOM.
 */
cJSON *cz_controls_ignored_json(const cz_controls *c);

/**
 * @brief Reads controls back from the object cz_controls_json() wrote (the
 * worker's side). Unknown members are skipped; wrong types are errors.
 * @returns 0, or -1 with @p err filled.
 */
int cz_controls_from_json(const cJSON *o, cz_controls *out, cz_err *err);

/**
 * @brief The vocabulary, for documentation checks and the composer's own
 * tables. @returns the entries and stores their number in @p n.
 */
const cz_vocab_entry *cz_prompt_vocabulary(size_t *n);

#endif
