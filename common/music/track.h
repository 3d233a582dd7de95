/* Tracks as playlists see them: the features of one piece of audio.
 *
 * The same record describes a catalogue track (imported or synthetic) and a
 * succeeded job's master; it is a row of the `tracks` table. The embedding
 * is a unit vector: tracks that sound alike have a large dot product.
 * Keys are pitch classes (0 = C .. 11 = B) with a mode (1 major, 0 minor);
 * the Camelot wheel numbers them so that harmonically compatible keys are
 * neighbours: same number, one step round the wheel, or the relative
 * major/minor (same number, other letter). */
#ifndef CZ_TRACK_H
#define CZ_TRACK_H

#define CZ_EMBED_DIM 32
#define CZ_TAGS_MAX 4
#define CZ_TAG_LEN 24

typedef struct cz_track_features {
    float duration_s;
    float tempo_bpm;
    int key;      /* 0..11, 0 = C */
    int mode;     /* 1 major, 0 minor */
    float energy; /* 0..1 */
    float loudness_lufs;
    int n_moods, n_genres;
    char moods[CZ_TAGS_MAX][CZ_TAG_LEN];
    char genres[CZ_TAGS_MAX][CZ_TAG_LEN];
    float embedding[CZ_EMBED_DIM]; /* unit length */
} cz_track_features;

/** @brief The Camelot number (1..12) of @p key in @p mode. */
int cz_camelot_number(int key, int mode);

/** @brief Writes the Camelot code ("8A", "11B") of @p key in @p mode into @p out. */
void cz_camelot_code(int key, int mode, char out[4]);

/**
 * @brief Steps round the Camelot wheel from one key to another: 0 for the
 * same key, 1 for a neighbour (one number either way, or the relative
 * major/minor), more for moves a DJ would not make without a transition.
 */
int cz_camelot_distance(int key_a, int mode_a, int key_b, int mode_b);

/**
 * @brief The embedding as stored: 32 float32 little-endian, 128 bytes.
 */
void cz_track_embedding_bytes(const cz_track_features *f, unsigned char out[4 * CZ_EMBED_DIM]);

#endif
