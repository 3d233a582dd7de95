/* neural@1's vocabulary, grammar and decoder: see tokens.h.
 *
 * The vocabulary is a table in id order, the contract with the training
 * tool (the weights file carries its own copy, which weights.c compares
 * with this one, so a model trained on another vocabulary is refused).
 *
 * The grammar is a small state machine: the conditioning prefix in its
 * fixed order, then bars. Within a bar events come in onset order (a POS
 * never goes back); a chord change is POS CHORD, at most one per onset and
 * before the note starting there; a note is POS PITCH DUR, at most one per
 * onset, starting no earlier than the bar's previous note ends and ending
 * within the bar (the training tool clips notes so, and writes a held note
 * again in the next bar). step() applies the rules alone; allowed() also
 * asks, for each candidate, whether the sequence could then still reach a
 * place to stop (EOS, or between events) within max_len. The cheapest way
 * there from every state is known (cost()), so a sampler that keeps to
 * allowed() never paints itself into a corner: every sequence it makes
 * ends with EOS or, full, between events, as a cut chunk of training data
 * does. min_bars only withholds EOS; it never forces empty bars. */
#include "workers/models/neural/tokens.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/rand.h"

/* ================================================================ tokens */

static const char *const token_names[CZ_TOK_VOCAB] = {
    "PAD",          "BOS",           "EOS",           "BAR",          "KEY_0",
    "KEY_1",        "KEY_2",         "KEY_3",         "KEY_4",        "KEY_5",
    "KEY_6",        "KEY_7",         "KEY_8",         "KEY_9",        "KEY_10",
    "KEY_11",       "MODE_MAJ",      "MODE_MIN",      "METER_2_4",    "METER_3_4",
    "METER_4_4",    "METER_6_8",     "TEMPO_SLOW",    "TEMPO_MID",    "TEMPO_FAST",
    "DENSITY_LOW",  "DENSITY_MID",   "DENSITY_HIGH",  "SECTION_A",    "SECTION_B",
    "SECTION_C",    "SECTION_INTRO", "SECTION_OUTRO", "POS_0",        "POS_1",
    "POS_2",        "POS_3",         "POS_4",         "POS_5",        "POS_6",
    "POS_7",        "POS_8",         "POS_9",         "POS_10",       "POS_11",
    "POS_12",       "POS_13",        "POS_14",        "POS_15",       "CHORD_0_MAJ",
    "CHORD_0_MIN",  "CHORD_0_DIM",   "CHORD_0_DOM7",  "CHORD_1_MAJ",  "CHORD_1_MIN",
    "CHORD_1_DIM",  "CHORD_1_DOM7",  "CHORD_2_MAJ",   "CHORD_2_MIN",  "CHORD_2_DIM",
    "CHORD_2_DOM7", "CHORD_3_MAJ",   "CHORD_3_MIN",   "CHORD_3_DIM",  "CHORD_3_DOM7",
    "CHORD_4_MAJ",  "CHORD_4_MIN",   "CHORD_4_DIM",   "CHORD_4_DOM7", "CHORD_5_MAJ",
    "CHORD_5_MIN",  "CHORD_5_DIM",   "CHORD_5_DOM7",  "CHORD_6_MAJ",  "CHORD_6_MIN",
    "CHORD_6_DIM",  "CHORD_6_DOM7",  "CHORD_7_MAJ",   "CHORD_7_MIN",  "CHORD_7_DIM",
    "CHORD_7_DOM7", "CHORD_8_MAJ",   "CHORD_8_MIN",   "CHORD_8_DIM",  "CHORD_8_DOM7",
    "CHORD_9_MAJ",  "CHORD_9_MIN",   "CHORD_9_DIM",   "CHORD_9_DOM7", "CHORD_10_MAJ",
    "CHORD_10_MIN", "CHORD_10_DIM",  "CHORD_10_DOM7", "CHORD_11_MAJ", "CHORD_11_MIN",
    "CHORD_11_DIM", "CHORD_11_DOM7", "PITCH_36",      "PITCH_37",     "PITCH_38",
    "PITCH_39",     "PITCH_40",      "PITCH_41",      "PITCH_42",     "PITCH_43",
    "PITCH_44",     "PITCH_45",      "PITCH_46",      "PITCH_47",     "PITCH_48",
    "PITCH_49",     "PITCH_50",      "PITCH_51",      "PITCH_52",     "PITCH_53",
    "PITCH_54",     "PITCH_55",      "PITCH_56",      "PITCH_57",     "PITCH_58",
    "PITCH_59",     "PITCH_60",      "PITCH_61",      "PITCH_62",     "PITCH_63",
    "PITCH_64",     "PITCH_65",      "PITCH_66",      "PITCH_67",     "PITCH_68",
    "PITCH_69",     "PITCH_70",      "PITCH_71",      "PITCH_72",     "PITCH_73",
    "PITCH_74",     "PITCH_75",      "PITCH_76",      "PITCH_77",     "PITCH_78",
    "PITCH_79",     "PITCH_80",      "PITCH_81",      "PITCH_82",     "PITCH_83",
    "PITCH_84",     "PITCH_85",      "PITCH_86",      "PITCH_87",     "PITCH_88",
    "PITCH_89",     "PITCH_90",      "PITCH_91",      "PITCH_92",     "PITCH_93",
    "PITCH_94",     "PITCH_95",      "PITCH_96",      "DUR_1",        "DUR_2",
    "DUR_3",        "DUR_4",         "DUR_5",         "DUR_6",        "DUR_7",
    "DUR_8",        "DUR_9",         "DUR_10",        "DUR_11",       "DUR_12",
    "DUR_13",       "DUR_14",        "DUR_15",        "DUR_16",
};

const char *cz_neural_token_name(int id) {
    return id >= 0 && id < CZ_TOK_VOCAB ? token_names[id] : NULL;
}

int cz_neural_token_id(const char *name) {
    for (int i = 0; i < CZ_TOK_VOCAB; i++)
        if (!strcmp(token_names[i], name))
            return i;
    return -1;
}

int cz_neural_bar_sixteenths(cz_neural_meter meter) {
    static const int len[] = {8, 12, 16, 12};
    return meter >= CZ_METER_2_4 && meter <= CZ_METER_6_8 ? len[meter] : 16;
}

/* ================================================================ conditioning */

cz_neural_tempo cz_neural_tempo_band(double bpm) {
    return bpm < 90 ? CZ_TEMPO_SLOW : bpm > 130 ? CZ_TEMPO_FAST : CZ_TEMPO_MID;
}

static cz_neural_density density_of_mood(const char *mood) {
    static const char *const low[] = {"calm",        "chill",    "dreamy", "sad",
                                      "melancholic", "romantic", "warm",   "nostalgic"};
    static const char *const high[] = {"energetic", "aggressive", "playful",  "groovy",
                                       "epic",      "happy",      "uplifting"};
    for (size_t i = 0; i < sizeof low / sizeof *low; i++)
        if (!strcmp(mood, low[i]))
            return CZ_DENSITY_LOW;
    for (size_t i = 0; i < sizeof high / sizeof *high; i++)
        if (!strcmp(mood, high[i]))
            return CZ_DENSITY_HIGH;
    return CZ_DENSITY_MID;
}

void cz_neural_cond_from_controls(const cz_controls *c, uint64_t seed, cz_neural_cond *out) {
    // Two draws from the job's own stream, always made, so a key given in
    // the request does not change which mode an unsaid one gets.
    uint64_t rng = seed;
    int key = (int)(cz_splitmix64_next(&rng) % 12);
    int minor = (int)(cz_splitmix64_next(&rng) & 1);
    out->key = c->key_root >= 0 && c->key_root < 12 ? c->key_root : key;
    out->mode = (c->mode == 0 || c->mode == 1 ? c->mode : minor) ? CZ_MODE_MIN : CZ_MODE_MAJ;
    out->meter = CZ_METER_4_4;
    if (c->tempo_bpm > 0)
        out->tempo = cz_neural_tempo_band(c->tempo_bpm);
    else if (!strcmp(c->tempo, "slow"))
        out->tempo = CZ_TEMPO_SLOW;
    else if (!strcmp(c->tempo, "upbeat") || !strcmp(c->tempo, "fast"))
        out->tempo = CZ_TEMPO_FAST;
    else
        out->tempo = CZ_TEMPO_MID;
    out->density = c->n_moods > 0 ? density_of_mood(c->moods[0]) : CZ_DENSITY_MID;
    out->section = CZ_SECTION_A;
}

int cz_neural_cond_tokens(const cz_neural_cond *cond, int out[CZ_NEURAL_PREFIX]) {
    out[0] = CZ_TOK_BOS;
    out[1] = CZ_TOK_KEY + cond->key;
    out[2] = CZ_TOK_MODE + (int)cond->mode;
    out[3] = CZ_TOK_METER + (int)cond->meter;
    out[4] = CZ_TOK_TEMPO + (int)cond->tempo;
    out[5] = CZ_TOK_DENSITY + (int)cond->density;
    out[6] = CZ_TOK_SECTION + (int)cond->section;
    return CZ_NEURAL_PREFIX;
}

int cz_neural_token_pitch(int t) {
    return t >= CZ_TOK_PITCH && t <= CZ_TOK_PITCH + CZ_NEURAL_PITCH_HI - CZ_NEURAL_PITCH_LO
               ? t - CZ_TOK_PITCH + CZ_NEURAL_PITCH_LO
               : -1;
}

/* ================================================================ grammar */

/* What may come next. The prefix states are in token order, so the number
 * of prefix tokens still due is G_FIRST_BAR - state. */
enum {
    G_BOS,
    G_KEY,
    G_MODE,
    G_METER,
    G_TEMPO,
    G_DENSITY,
    G_SECTION,
    G_FIRST_BAR,   /* BAR */
    G_EVENT,       /* BAR, EOS or POS */
    G_AFTER_POS,   /* CHORD or PITCH */
    G_AFTER_PITCH, /* DUR */
    G_END,
};

/* Each prefix state's token group: first id and size. */
static const struct {
    int first, n;
    const char *what;
} prefix_groups[] = {
    {CZ_TOK_BOS, 1, "BOS"},          {CZ_TOK_KEY, 12, "KEY_"},    {CZ_TOK_MODE, 2, "MODE_"},
    {CZ_TOK_METER, 4, "METER_"},     {CZ_TOK_TEMPO, 3, "TEMPO_"}, {CZ_TOK_DENSITY, 3, "DENSITY_"},
    {CZ_TOK_SECTION, 5, "SECTION_"},
};

static bool in(int tok, int first, int n) {
    return tok >= first && tok < first + n;
}

static bool chord_ok(const cz_neural_grammar *g, int pos) {
    return pos > g->chord_pos && pos > g->note_pos;
}

static bool note_ok(const cz_neural_grammar *g, int pos) {
    return pos > g->note_pos && pos >= g->note_end;
}

/* The fewest tokens that take the sequence from here to a place where it
 * may stop: EOS read, or between events (where a sequence cut at max_len
 * ends, and the next one goes on after the same prefix). */
static int cost(const cz_neural_grammar *g) {
    switch (g->state) {
    case G_END:
    case G_EVENT:
        return 0;
    case G_AFTER_POS:
        return chord_ok(g, g->cur_pos) ? 1 : 2;
    case G_AFTER_PITCH:
        return 1;
    default: /* the prefix and the first BAR */
        return G_EVENT - g->state;
    }
}

void cz_neural_grammar_init(cz_neural_grammar *g, int max_len, int min_bars, int max_bars) {
    memset(g, 0, sizeof *g);
    g->max_len = max_len;
    g->max_bars = max_bars > 0 ? max_bars : 0;
    if (g->max_bars && min_bars > g->max_bars)
        min_bars = g->max_bars;
    g->min_bars = min_bars < 1 ? 1 : min_bars;
    g->state = G_BOS;
    g->bar_len = 16;
    g->last_pos = g->chord_pos = g->note_pos = g->cur_pos = -1;
}

/* Applies @p tok to @p g. @returns false (with @p g unchanged) when the
 * grammar does not accept it. */
static bool step(cz_neural_grammar *g, int tok) {
    int s = g->state;
    if (s < G_FIRST_BAR) {
        int first = prefix_groups[s].first;
        if (!in(tok, first, prefix_groups[s].n))
            return false;
        int v = tok - first;
        switch (s) {
        case G_KEY:
            g->cond.key = v;
            break;
        case G_MODE:
            g->cond.mode = (cz_neural_mode)v;
            break;
        case G_METER:
            g->cond.meter = (cz_neural_meter)v;
            g->bar_len = cz_neural_bar_sixteenths(g->cond.meter);
            break;
        case G_TEMPO:
            g->cond.tempo = (cz_neural_tempo)v;
            break;
        case G_DENSITY:
            g->cond.density = (cz_neural_density)v;
            break;
        case G_SECTION:
            g->cond.section = (cz_neural_section)v;
            break;
        }
        g->state = s + 1;
    } else if ((s == G_FIRST_BAR || s == G_EVENT) && tok == CZ_TOK_BAR) {
        if (g->max_bars && g->bars >= g->max_bars)
            return false;
        g->bars++;
        g->last_pos = g->chord_pos = g->note_pos = -1;
        g->note_end = 0;
        g->state = G_EVENT;
    } else if (s == G_EVENT && tok == CZ_TOK_EOS) {
        if (g->bars < g->min_bars)
            return false;
        g->state = G_END;
    } else if (s == G_EVENT && in(tok, CZ_TOK_POS, CZ_NEURAL_MAX_POS)) {
        int p = tok - CZ_TOK_POS;
        if (p >= g->bar_len || p < g->last_pos || !(chord_ok(g, p) || note_ok(g, p)))
            return false;
        g->cur_pos = p;
        g->state = G_AFTER_POS;
    } else if (s == G_AFTER_POS && in(tok, CZ_TOK_CHORD, 48)) {
        if (!chord_ok(g, g->cur_pos))
            return false;
        g->chord_pos = g->last_pos = g->cur_pos;
        g->state = G_EVENT;
    } else if (s == G_AFTER_POS &&
               in(tok, CZ_TOK_PITCH, CZ_NEURAL_PITCH_HI - CZ_NEURAL_PITCH_LO + 1)) {
        if (!note_ok(g, g->cur_pos))
            return false;
        g->note_pos = g->last_pos = g->cur_pos;
        g->state = G_AFTER_PITCH;
    } else if (s == G_AFTER_PITCH && in(tok, CZ_TOK_DUR, CZ_NEURAL_MAX_DUR)) {
        int end = g->note_pos + (tok - CZ_TOK_DUR + 1);
        if (end > g->bar_len)
            return false;
        g->note_end = end;
        g->state = G_EVENT;
    } else {
        return false;
    }
    g->len++;
    return true;
}

bool cz_neural_grammar_accepts(const cz_neural_grammar *g, int tok) {
    cz_neural_grammar next = *g;
    return step(&next, tok) && next.len + cost(&next) <= next.max_len;
}

int cz_neural_grammar_allowed(const cz_neural_grammar *g, bool allowed[CZ_TOK_VOCAB]) {
    int n = 0;
    for (int t = 0; t < CZ_TOK_VOCAB; t++)
        n += allowed[t] = cz_neural_grammar_accepts(g, t);
    return n;
}

bool cz_neural_grammar_complete(const cz_neural_grammar *g) {
    return g->state == G_EVENT || g->state == G_END;
}

bool cz_neural_grammar_done(const cz_neural_grammar *g) {
    if (g->state == G_END)
        return true;
    if (g->state != G_EVENT)
        return false; // cost() leaves room to finish any event begun
    for (int t = 0; t < CZ_TOK_VOCAB; t++)
        if (cz_neural_grammar_accepts(g, t))
            return false;
    return true;
}

bool cz_neural_grammar_ended(const cz_neural_grammar *g) {
    return g->state == G_END;
}

/* What the grammar expected in @p g's state, for an error message. */
static void expected(const cz_neural_grammar *g, char *buf, size_t n) {
    int s = g->state;
    if (s < G_FIRST_BAR) {
        snprintf(buf, n, "expected %s%s", prefix_groups[s].what, s == G_BOS ? "" : "<value>");
    } else if (s == G_FIRST_BAR) {
        snprintf(buf, n, "expected BAR after the conditioning");
    } else if (s == G_EVENT) {
        int from = g->last_pos < 0 ? 0 : g->last_pos;
        char eos[48] = ", EOS";
        if (g->bars < g->min_bars)
            snprintf(eos, sizeof eos, " (EOS after bar %d)", g->min_bars);
        snprintf(buf, n, "expected BAR%s or POS_%d..POS_%d (a %d-sixteenth bar)", eos, from,
                 g->bar_len - 1, g->bar_len);
    } else if (s == G_AFTER_POS) {
        bool c = chord_ok(g, g->cur_pos), p = note_ok(g, g->cur_pos);
        snprintf(buf, n, "expected %s after POS_%d",
                 c && p ? "CHORD_ or PITCH_"
                 : c    ? "CHORD_ (the melody's last note is still sounding)"
                        : "PITCH_ (a chord is already there)",
                 g->cur_pos);
    } else if (s == G_AFTER_PITCH) {
        snprintf(buf, n, "expected DUR_1..DUR_%d after PITCH_ at POS_%d (a note ends in its bar)",
                 g->bar_len - g->note_pos, g->note_pos);
    } else {
        snprintf(buf, n, "expected nothing after EOS");
    }
}

int cz_neural_grammar_push(cz_neural_grammar *g, int tok, cz_err *err) {
    if (step(g, tok))
        return 0;
    char what[160];
    expected(g, what, sizeof what);
    const char *name = cz_neural_token_name(tok);
    return cz_err_set(err, "token %s is not allowed here: %s", name ? name : "(out of range)",
                      what);
}

/* ================================================================ pieces */

int cz_neural_decode(const int *tokens, int n, cz_neural_piece *out, cz_err *err) {
    memset(out, 0, sizeof *out);
    int bars = 0;
    for (int i = 0; i < n; i++)
        bars += tokens[i] == CZ_TOK_BAR;
    cz_neural_grammar g;
    cz_neural_grammar_init(&g, INT_MAX, 1, 0);
    out->bars = cz_calloc(bars > 0 ? (size_t)bars : 1, sizeof *out->bars);
    int pitch = 0;
    for (int i = 0; i < n; i++) {
        int tok = tokens[i];
        cz_err why;
        if (cz_neural_grammar_push(&g, tok, &why) < 0) {
            cz_neural_piece_free(out);
            return cz_err_set(err, "neural@1: the sequence does not parse at token %d of %d: %s", i,
                              n, why.msg);
        }
        cz_neural_bar *bar = g.bars > 0 ? &out->bars[g.bars - 1] : NULL;
        if (in(tok, CZ_TOK_CHORD, 48)) {
            int v = tok - CZ_TOK_CHORD;
            bar->chords[bar->n_chords++] =
                (cz_neural_chord){g.cur_pos, v / 4, (cz_neural_quality)(v % 4)};
        } else if (in(tok, CZ_TOK_PITCH, CZ_NEURAL_PITCH_HI - CZ_NEURAL_PITCH_LO + 1)) {
            pitch = tok - CZ_TOK_PITCH + CZ_NEURAL_PITCH_LO;
        } else if (in(tok, CZ_TOK_DUR, CZ_NEURAL_MAX_DUR)) {
            bar->notes[bar->n_notes++] = (cz_neural_note){g.note_pos, pitch, tok - CZ_TOK_DUR + 1};
        }
    }
    if (!cz_neural_grammar_complete(&g)) {
        char what[160];
        expected(&g, what, sizeof what);
        cz_neural_piece_free(out);
        return cz_err_set(err, "neural@1: the sequence stops after %d tokens, inside %s: %s", n,
                          g.state < G_EVENT ? "its prefix" : "an event", what);
    }
    out->eos = cz_neural_grammar_ended(&g);
    out->cond = g.cond;
    out->bar_len = g.bar_len;
    out->n_bars = g.bars;
    return 0;
}

static bool bar_invalid(const cz_neural_bar *bar) {
    if (bar->n_chords < 0 || bar->n_chords > CZ_NEURAL_MAX_POS || bar->n_notes < 0 ||
        bar->n_notes > CZ_NEURAL_MAX_POS)
        return true;
    for (int i = 0; i < bar->n_chords; i++) {
        const cz_neural_chord *c = &bar->chords[i];
        if (c->pos < 0 || c->pos >= CZ_NEURAL_MAX_POS || c->root < 0 || c->root > 11 ||
            (int)c->quality < 0 || c->quality > CZ_QUALITY_DOM7)
            return true;
    }
    for (int i = 0; i < bar->n_notes; i++) {
        const cz_neural_note *t = &bar->notes[i];
        if (t->pos < 0 || t->pos >= CZ_NEURAL_MAX_POS || t->pitch < CZ_NEURAL_PITCH_LO ||
            t->pitch > CZ_NEURAL_PITCH_HI || t->dur < 1 || t->dur > CZ_NEURAL_MAX_DUR)
            return true;
    }
    return false;
}

int cz_neural_encode(const cz_neural_piece *p, int *out, int cap, cz_err *err) {
    int n = 0, prefix[CZ_NEURAL_PREFIX];
    cz_neural_grammar g;
    cz_neural_grammar_init(&g, INT_MAX, 1, 0);
    cz_neural_cond_tokens(&p->cond, prefix);
#define EMIT(t)                                                                                    \
    do {                                                                                           \
        int t_ = (t);                                                                              \
        if (n == cap)                                                                              \
            return cz_err_set(err, "neural@1: the piece needs more than %d tokens", cap);          \
        if (cz_neural_grammar_push(&g, t_, &why) < 0)                                              \
            return cz_err_set(err, "neural@1: the piece breaks the grammar in bar %d: %s", b + 1,  \
                              why.msg);                                                            \
        out[n++] = t_;                                                                             \
    } while (0)
    cz_err why;
    int b = -1;
    for (int i = 0; i < CZ_NEURAL_PREFIX; i++)
        EMIT(prefix[i]);
    for (b = 0; b < p->n_bars; b++) {
        const cz_neural_bar *bar = &p->bars[b];
        if (bar_invalid(bar))
            return cz_err_set(err,
                              "neural@1: bar %d of the piece has a chord or note out of range "
                              "(position 0..15, root 0..11, pitch %d..%d, duration 1..%d)",
                              b + 1, CZ_NEURAL_PITCH_LO, CZ_NEURAL_PITCH_HI, CZ_NEURAL_MAX_DUR);
        EMIT(CZ_TOK_BAR);
        int c = 0, k = 0;
        while (c < bar->n_chords || k < bar->n_notes) {
            // At one onset the chord comes first.
            if (c < bar->n_chords &&
                (k == bar->n_notes || bar->chords[c].pos <= bar->notes[k].pos)) {
                const cz_neural_chord *ch = &bar->chords[c++];
                EMIT(CZ_TOK_POS + ch->pos);
                EMIT(CZ_TOK_CHORD + ch->root * 4 + (int)ch->quality);
            } else {
                const cz_neural_note *nt = &bar->notes[k++];
                EMIT(CZ_TOK_POS + nt->pos);
                EMIT(CZ_TOK_PITCH + nt->pitch - CZ_NEURAL_PITCH_LO);
                EMIT(CZ_TOK_DUR + nt->dur - 1);
            }
        }
    }
    if (p->eos)
        EMIT(CZ_TOK_EOS);
#undef EMIT
    return n;
}

void cz_neural_piece_free(cz_neural_piece *p) {
    if (!p)
        return;
    free(p->bars);
    memset(p, 0, sizeof *p);
}
