/* composer@1's planner: see compose.h for what it decides, style.h for the
 * tables it decides from, and parts.c for how the plan becomes notes.
 *
 * Fitting the form to the duration. A piece is a whole number of 4/4 bars
 * followed by a tail: the final tonic chord, held until the last sample
 * while the renderer fades it out. The tail lasts at least CZ_TAIL_MIN_S
 * (less for pieces under four seconds) and less than one more bar, so
 * bars * bar_length + tail == duration exactly for any tempo. When the
 * tempo is the composer's choice it is nudged (by at most 6%) so the tail
 * comes out near one bar. The bars are then shared out: an intro and an
 * outro that grow with the piece, and sections of the style's length
 * (eight bars, twelve for the blues) in the order verse, chorus, verse,
 * chorus, bridge, chorus, breakdown, chorus, repeating from the second
 * verse; what is left joins a four-bar breakdown or the outro.
 *
 * Given material (material.h, cz_compose_material) takes the place of the
 * progressions, the motifs and the sections: the same intro and outro
 * frame the given sections, played in order and again from the first as
 * long as the next one fits; then the next one's first whole four-bar
 * phrases, and the last few bars join the outro. Style, tempo,
 * instruments and mix are planned with the same draws in the same order
 * as for cz_compose, so one seed gives one band whether the composer
 * writes the tune or is given it. */
#include "workers/composer/compose.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "workers/composer/song.h"

#define CZ_TAIL_MIN_S 2.0   /* the final chord rings at least this long */
#define CZ_TEMPO_NUDGE 0.06 /* a chosen tempo moves at most this much to fit */

/* ================================================================ chords */

/* Reads one Roman-numeral chord ("bVII7", "ii7b5", "Imaj9", "iv"); see
 * style.h. @p extensions adds sevenths (1) and ninths (2) to plain chords. */
static int cz_chord_parse(const char *tok, int extensions, cz_chord *ch) {
    static const int degree_semitones[7] = {0, 2, 4, 5, 7, 9, 11};
    static const char *const numerals[7] = {"vii", "iii", "vi", "iv", "ii", "v", "i"};
    static const int numeral_degree[7] = {6, 2, 5, 3, 1, 4, 0};
    int shift = 0;
    if (*tok == 'b' || *tok == '#') {
        shift = *tok == 'b' ? -1 : 1;
        tok++;
    }
    int deg = -1, upper = 0;
    size_t used = 0;
    for (int i = 0; i < 7 && deg < 0; i++) {
        size_t n = strlen(numerals[i]);
        if (!strncasecmp(tok, numerals[i], n)) {
            deg = numeral_degree[i];
            upper = isupper((unsigned char)*tok);
            used = n;
        }
    }
    if (deg < 0)
        return -1;
    const char *q = tok + used;
    int third = upper ? 4 : 3, fifth = 7, seventh = -1, ninth = -1, sixth = -1;
    if (!strcmp(q, "")) {
        if (extensions >= 1) // diatonic colour: maj7 on I, IV, bIII, bVI; 7 on V, bVII
            seventh = !upper ? 10 : (deg == 4 || (deg == 6 && shift < 0)) ? 10 : 11;
        if (extensions >= 2 && !(upper && deg == 4))
            ninth = 14;
    } else if (!strcmp(q, "7")) {
        seventh = 10;
        if (extensions >= 2 && !upper)
            ninth = 14;
    } else if (!strcmp(q, "maj7")) {
        seventh = 11;
        if (extensions >= 2)
            ninth = 14;
    } else if (!strcmp(q, "9")) {
        seventh = 10;
        ninth = 14;
    } else if (!strcmp(q, "maj9")) {
        seventh = 11;
        ninth = 14;
    } else if (!strcmp(q, "6")) {
        sixth = 9;
    } else if (!strcmp(q, "add9")) {
        ninth = 14;
    } else if (!strcmp(q, "sus2")) {
        third = 2;
    } else if (!strcmp(q, "sus4")) {
        third = 5;
    } else if (!strcmp(q, "7b5")) {
        third = 3;
        fifth = 6;
        seventh = 10;
    } else if (!strcmp(q, "dim")) {
        third = 3;
        fifth = 6;
    } else {
        return -1;
    }
    ch->root = (degree_semitones[deg] + shift + 12) % 12;
    ch->n = 0;
    ch->iv[ch->n++] = 0;
    ch->iv[ch->n++] = third;
    ch->iv[ch->n++] = fifth;
    if (sixth > 0)
        ch->iv[ch->n++] = sixth;
    if (seventh > 0)
        ch->iv[ch->n++] = seventh;
    if (ninth > 0)
        ch->iv[ch->n++] = ninth;
    return 0;
}

static int cz_prog_parse(const char *text, int extensions, cz_prog *p, cz_err *err) {
    memset(p, 0, sizeof *p);
    snprintf(p->text, sizeof p->text, "%s", text);
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (p->n == CZ_MAX_CHORDS || cz_chord_parse(tok, extensions, &p->ch[p->n]) != 0)
            return cz_err_set(err, "composer: progression \"%s\" has a chord \"%s\" it cannot read",
                              text, tok);
        p->n++;
    }
    return p->n > 0 ? 0 : cz_err_set(err, "composer: empty progression");
}

/* ================================================================ plan */

static void cz_plan_moods(cz_song *s, const cz_controls *c, int *minor_vote) {
    double v = 0, e = 0;
    int n = 0, reverb = 0;
    *minor_vote = 0;
    for (int i = 0; i < c->n_moods; i++) {
        const cz_mood *m = cz_mood_find(c->moods[i]);
        if (!m)
            continue;
        v += m->valence;
        e += m->energy;
        reverb += m->reverb;
        *minor_vote += m->minor;
        n++;
    }
    s->valence = n ? v / n : 0;
    s->energy = n ? e / n : 0;
    s->reverb = s->style->reverb + (n ? reverb / n : 0);
    if (s->vinyl)
        s->reverb += 10;
    s->reverb = s->reverb < 0 ? 0 : s->reverb > 110 ? 110 : s->reverb;
}

static void cz_plan_key(cz_song *s, const cz_controls *c, int minor_vote) {
    unsigned root = cz_rng_below(&s->rng, 12), coin = cz_rng_below(&s->rng, 2);
    s->tonic = c->key_root >= 0 ? c->key_root : (int)root;
    int vote = minor_vote * 2 + s->style->minor_bias;
    s->minor = c->mode >= 0 ? c->mode : vote > 0 ? 1 : vote < 0 ? 0 : (int)coin;
}

/* The tail: the final chord rings from the end of the last bar to the end. */
static double cz_tail_min(double duration_s) {
    return duration_s < 2 * CZ_TAIL_MIN_S ? duration_s * 0.5 : CZ_TAIL_MIN_S;
}

static void cz_plan_tempo(cz_song *s, const cz_controls *c) {
    const cz_style *st = s->style;
    double lo = st->bpm_lo, hi = st->bpm_hi, u = cz_rng_unit(&s->rng);
    double pos = 0.5 + 0.35 * s->energy + 0.3 * (u - 0.5); // place in the range
    if (!strcmp(c->tempo, "slow"))
        lo *= 0.85, hi = st->bpm_lo, pos = u;
    else if (!strcmp(c->tempo, "moderate"))
        pos = 0.4 + 0.2 * u;
    else if (!strcmp(c->tempo, "upbeat"))
        lo = st->bpm_hi * 0.95, hi = st->bpm_hi * 1.08, pos = u;
    else if (!strcmp(c->tempo, "fast"))
        lo = st->bpm_hi * 1.05, hi = st->bpm_hi * 1.25, pos = u;
    pos = pos < 0 ? 0 : pos > 1 ? 1 : pos;
    double bpm = lo + (hi - lo) * pos;
    bpm = bpm < 40 ? 40 : bpm > 200 ? 200 : bpm;
    if (c->tempo_bpm > 0) {
        s->bpm = c->tempo_bpm;
        return;
    }
    // Nudge so that whole bars and a tail of about one bar fill the piece.
    double bar = 240.0 / bpm, tail = fmax(cz_tail_min(s->duration_s), bar);
    double span = s->duration_s - tail;
    s->bpm = round(bpm * 10) / 10;
    if (span < bar)
        return;
    double bars = round(span / bar), fit = 240.0 * bars / span;
    if (fabs(fit - bpm) <= bpm * CZ_TEMPO_NUDGE)
        s->bpm = fit;
}

/* ---------------------------------------------------------------- instruments */

static const int cz_slot_channel[CZ_ROLE_COUNT][2] = {{0, 5}, {1, 6}, {2, 7}, {3, 8}, {9, 4}};

static bool cz_excluded(const cz_controls *c, const char *token) {
    for (int i = 0; i < c->n_exclude; i++)
        if (!strcmp(c->exclude[i], token))
            return true;
    return false;
}

/* A whole group is left out by "no drums", "no bass", "no pads"... */
static bool cz_role_excluded(const cz_controls *c, cz_role r) {
    static const char *const generic[CZ_ROLE_COUNT][4] = {
        {"synth", NULL},
        {"bass", "808", NULL},
        {"pad", NULL},
        {"synth-lead", NULL},
        {"drums", "percussion", "drum-machine", NULL}};
    for (int i = 0; generic[r][i]; i++)
        if (cz_excluded(c, generic[r][i]))
            return true;
    return false;
}

static void cz_slot_set(cz_song *s, cz_role r, int k, const char *token, int program,
                        unsigned flags) {
    cz_slot *sl = &s->slot[r][k];
    const cz_instrument *ins = cz_instrument_for_program(program);
    sl->on = true;
    sl->chan = cz_slot_channel[r][k];
    sl->bank = flags & CZ_INS_KIT ? 128 : 0;
    sl->program = program;
    sl->flags = flags | (ins ? ins->flags & CZ_INS_SUSTAIN : 0);
    sl->lo = ins && ins->hi > 0 ? ins->lo : 62;
    sl->hi = ins && ins->hi > 0 ? ins->hi : 84;
    snprintf(sl->token, sizeof sl->token, "%s", token);
}

static bool cz_place_instrument(cz_song *s, const cz_instrument *ins) {
    int program = cz_instrument_program(ins, s->style);
    if (ins->role == CZ_ROLE_DRUMS) {
        int k = ins->flags & CZ_INS_TUNED ? 1 : 0;
        if (ins->flags & CZ_INS_PERC)
            s->percussion = true;
        if (!s->slot[CZ_ROLE_DRUMS][k].on || (ins->flags & CZ_INS_PERC) == 0) {
            if (k == 0 && s->vinyl && (ins->flags & CZ_INS_STYLE) && program == 0)
                program = 8; // a dusty room kit
            cz_slot_set(s, CZ_ROLE_DRUMS, k, ins->token, program, ins->flags);
            if (k == 1) {
                s->slot[CZ_ROLE_DRUMS][1].lo = ins->lo;
                s->slot[CZ_ROLE_DRUMS][1].hi = ins->hi;
            }
        }
        return true;
    }
    cz_role roles[2] = {ins->role, ins->alt};
    for (int j = 0; j < 2; j++) {
        cz_role r = roles[j];
        if (r == CZ_ROLE_NONE)
            continue;
        // The second bass slot never plays; arpeggios go to the second
        // harmony slot first.
        int first = !strcmp(ins->token, "arp") ? 1 : 0;
        for (int k = first; k < (r == CZ_ROLE_BASS ? 1 : 2); k++)
            if (!s->slot[r][k].on) {
                cz_slot_set(s, r, k, ins->token, program, ins->flags & ~CZ_INS_STYLE);
                if (ins->hi > 0) {
                    s->slot[r][k].lo = ins->lo;
                    s->slot[r][k].hi = ins->hi;
                }
                return true;
            }
    }
    return false;
}

/* String sections are one family, and so are choirs: a second one only
 * doubles the first (and the voices to render). */
static int cz_program_family(int program) {
    return program >= 48 && program <= 51 ? 48 : program >= 52 && program <= 54 ? 52 : program;
}

static bool cz_program_taken(const cz_song *s, int program) {
    for (int r = 0; r < CZ_ROLE_DRUMS; r++)
        for (int k = 0; k < 2; k++)
            if (s->slot[r][k].on &&
                cz_program_family(s->slot[r][k].program) == cz_program_family(program))
                return true;
    return false;
}

/* Picks one of a style's two programs, avoiding instruments the prompt
 * refused ("no piano") and ones already playing (two string sections would
 * only double the cost). @returns -1 when both are out. */
static int cz_pick_program(cz_song *s, const cz_controls *c, const int options[2]) {
    int k = (int)cz_rng_below(&s->rng, 2);
    for (int t = 0; t < 2; t++) {
        int p = options[(k + t) % 2];
        const cz_instrument *ins = cz_instrument_for_program(p);
        if ((!ins || !cz_excluded(c, ins->token)) && !cz_program_taken(s, p))
            return p;
    }
    return -1;
}

static void cz_plan_instruments(cz_song *s, const cz_controls *c) {
    const cz_style *st = s->style;
    for (int i = 0; i < c->n_instruments; i++) {
        const cz_instrument *ins = cz_instrument_find(c->instruments[i]);
        if (ins)
            cz_place_instrument(s, ins);
    }
    // The style fills the groups nobody asked for, unless "solo".
    const int *options[CZ_ROLE_COUNT] = {st->harmony, st->bass, st->pad, st->melody, NULL};
    for (int r = 0; r < CZ_ROLE_COUNT; r++) {
        int program = r == CZ_ROLE_DRUMS ? st->kit : cz_pick_program(s, c, options[r]);
        if (c->solo || s->slot[r][0].on || !(st->roles & CZ_ROLE_BIT(r)) ||
            cz_role_excluded(c, (cz_role)r) || program < 0)
            continue;
        if (r == CZ_ROLE_DRUMS) {
            if (s->vinyl && program == 0)
                program = 8;
            cz_slot_set(s, CZ_ROLE_DRUMS, 0, "drums", program, CZ_INS_KIT);
        } else {
            cz_slot_set(s, (cz_role)r, 0, cz_program_name(program), program, 0);
        }
    }
    if (st->arps && !c->solo && !s->slot[CZ_ROLE_HARMONY][1].on && !cz_excluded(c, "arp") &&
        !cz_role_excluded(c, CZ_ROLE_HARMONY))
        cz_slot_set(s, CZ_ROLE_HARMONY, 1, cz_program_name(st->arp), st->arp, 0);
    // Percussion asked for with no kit: the style's kit carries it.
    if (s->percussion && !s->slot[CZ_ROLE_DRUMS][0].on)
        cz_slot_set(s, CZ_ROLE_DRUMS, 0, "percussion", st->kit, CZ_INS_KIT);
    // A solo chordal instrument also plays the tune.
    if (!s->slot[CZ_ROLE_MELODY][0].on && s->slot[CZ_ROLE_HARMONY][0].on && c->solo &&
        !(s->slot[CZ_ROLE_HARMONY][0].flags & CZ_INS_SUSTAIN)) {
        cz_slot tune = s->slot[CZ_ROLE_HARMONY][0];
        tune.chan = cz_slot_channel[CZ_ROLE_MELODY][0];
        const cz_instrument *ins = cz_instrument_find(tune.token);
        tune.lo = ins && ins->hi > 0 ? ins->lo : 67;
        tune.hi = ins && ins->hi > 0 ? ins->hi : 86;
        s->slot[CZ_ROLE_MELODY][0] = tune;
    }
    // Nothing at all (a solo drum kit is fine; an empty piece is not).
    bool any = false;
    for (int r = 0; r < CZ_ROLE_COUNT; r++)
        any |= s->slot[r][0].on || s->slot[r][1].on;
    if (!any)
        cz_slot_set(s, CZ_ROLE_HARMONY, 0, "piano", 0, 0);
}

/* ---------------------------------------------------------------- form */

static unsigned cz_section_roles(const cz_song *s, cz_section_kind kind) {
    unsigned all = 0;
    for (int r = 0; r < CZ_ROLE_COUNT; r++)
        if (s->slot[r][0].on || s->slot[r][1].on)
            all |= CZ_ROLE_BIT(r);
    unsigned want;
    switch (kind) {
    case CZ_SEC_INTRO: // harmony and a light groove set the key and the pulse
        want = CZ_ROLE_BIT(CZ_ROLE_HARMONY) | CZ_ROLE_BIT(CZ_ROLE_PAD) | CZ_ROLE_BIT(CZ_ROLE_DRUMS);
        break;
    case CZ_SEC_BREAK:
        want = CZ_ROLE_BIT(CZ_ROLE_HARMONY) | CZ_ROLE_BIT(CZ_ROLE_PAD) |
               CZ_ROLE_BIT(CZ_ROLE_MELODY) | CZ_ROLE_BIT(CZ_ROLE_DRUMS);
        break;
    default:
        want = ~0u;
    }
    // A piece of only bass and drums still needs its intro to sound.
    return (all & want) ? all & want : all;
}

/* Which groove a section plays: intros, outros and breakdowns the light
 * one (kick, backbeat and hats: the pulse, plainly), verses and bridges
 * the main one, choruses the full one; a calm piece stays a level lower
 * except in its intro. Every groove of a style keeps the same pulse, so a
 * listener (or a beat tracker) never loses the tempo. */
static int cz_section_groove(const cz_song *s, cz_section_kind kind) {
    int calm = s->energy < -0.3;
    switch (kind) {
    case CZ_SEC_CHORUS:
        return 2 - calm;
    case CZ_SEC_VERSE:
    case CZ_SEC_BRIDGE:
        return 1 - calm;
    default:
        return 0;
    }
}

static void cz_section_add(cz_song *s, cz_section_kind kind, int bars, int *counts) {
    if (bars <= 0 || s->n_sec == CZ_MAX_SECTIONS)
        return;
    static const double energy[] = {0.7, 0.82, 1.0, 0.8, 0.7, 0.72};
    static const int prog[] = {0, 0, 1, 2, 0, 0};
    cz_section *sec = &s->sec[s->n_sec];
    int start = s->n_sec ? sec[-1].start_bar + sec[-1].bars : 0;
    *sec = (cz_section){.kind = kind,
                        .start_bar = start,
                        .bars = bars,
                        .prog = prog[kind],
                        .groove = cz_section_groove(s, kind),
                        .occurrence = counts[kind]++,
                        .roles = cz_section_roles(s, kind),
                        .energy = energy[kind]};
    s->n_sec++;
}

/* The intro and outro of a piece of @p t bars: they grow with it. */
static void cz_form_frame(int t, int *intro, int *outro) {
    *intro = t >= 24 ? 4 : t >= 10 ? 2 : t >= 6 ? 1 : 0;
    *outro = t >= 32 ? 4 : t >= 14 ? 2 : 0;
}

static void cz_plan_form(cz_song *s) {
    static const cz_section_kind cycle[] = {CZ_SEC_VERSE,  CZ_SEC_CHORUS, CZ_SEC_VERSE,
                                            CZ_SEC_CHORUS, CZ_SEC_BRIDGE, CZ_SEC_CHORUS,
                                            CZ_SEC_BREAK,  CZ_SEC_CHORUS};
    int counts[6] = {0};
    int t = s->bars, sb = s->style->section_bars;
    if (t <= 0)
        return;
    int intro, outro;
    cz_form_frame(t, &intro, &outro);
    int mid = t - intro - outro;
    // Short pieces use four-bar sections so that they still have a verse
    // and a chorus; a piece too short for two is one chorus.
    int len = sb == 8 && mid < 24 ? 4 : sb;
    if (mid < 2 * len && !(sb == 12 && mid >= 12)) {
        cz_section_add(s, CZ_SEC_INTRO, intro, counts);
        cz_section_add(s, CZ_SEC_CHORUS, mid, counts);
        cz_section_add(s, CZ_SEC_OUTRO, outro, counts);
        return;
    }
    int full = mid / len, rest = mid % len;
    int breaks = full >= 2 ? rest / 4 : 0;
    outro += rest - 4 * breaks;
    cz_section_add(s, CZ_SEC_INTRO, intro, counts);
    for (int i = 0; i < full; i++) {
        int k = i < 8 ? i : 2 + (i - 2) % 6;
        // Leftover four-bar breakdowns go in before the last section.
        for (; i == full - 1 && breaks > 0; breaks--)
            cz_section_add(s, CZ_SEC_BREAK, 4, counts);
        cz_section_add(s, cycle[k], len, counts);
    }
    cz_section_add(s, CZ_SEC_OUTRO, outro, counts);
}

/* A section that plays (or borrows the chords of) given section @p g. */
static void cz_section_add_given(cz_song *s, cz_section_kind kind, int bars, int *counts,
                                 const cz_given_section *g) {
    int n = s->n_sec;
    cz_section_add(s, kind, bars, counts);
    if (s->n_sec > n)
        s->sec[n].given = g;
}

/* The form of given material. The given sections play in order, then
 * again from the first, while the next one fits; when four bars or more
 * are left, the next one plays its first whole four-bar phrases too, and
 * the last few bars join the outro. The intro and outro borrow the first
 * section's chords, as a planned piece's borrow the verse's. A piece too
 * short for the first section gives up its outro, then its intro, and
 * plays as much of that section as fits. */
static void cz_plan_form_given(cz_song *s) {
    const cz_given *g = s->given;
    const cz_given_section *first = &g->sec[0];
    int counts[6] = {0};
    int t = s->bars;
    if (t <= 0)
        return;
    int intro, outro;
    cz_form_frame(t, &intro, &outro);
    int spare = t - first->bars;
    if (spare < intro + outro) {
        outro = spare > intro ? spare - intro : 0;
        intro = spare < intro ? (spare > 0 ? spare : 0) : intro;
    }
    int mid = t - intro - outro;
    cz_section_add_given(s, CZ_SEC_INTRO, intro, counts, first);
    if (mid < first->bars) {
        cz_section_add_given(s, first->kind, mid, counts, first);
        cz_section_add_given(s, CZ_SEC_OUTRO, outro, counts, first);
        return;
    }
    int n = 0, used = 0;
    for (; n < CZ_MAX_SECTIONS - 3 && used + g->sec[n % g->n_sec].bars <= mid; n++) {
        const cz_given_section *sec = &g->sec[n % g->n_sec];
        cz_section_add_given(s, sec->kind, sec->bars, counts, sec);
        used += sec->bars;
    }
    const cz_given_section *next = &g->sec[n % g->n_sec];
    int phrases = (mid - used) / 4 * 4;
    cz_section_add_given(s, next->kind, phrases, counts, next);
    cz_section_add_given(s, CZ_SEC_OUTRO, outro + mid - used - phrases, counts, first);
}

/* A given tune needs a voice: when the plan has no melody instrument (a
 * style without a lead, such as techno), the style's lead joins, unless the
 * prompt said solo or left the melody group out. */
static void cz_plan_given_voice(cz_song *s, const cz_controls *c) {
    if (s->slot[CZ_ROLE_MELODY][0].on || c->solo || cz_role_excluded(c, CZ_ROLE_MELODY))
        return;
    int program = cz_pick_program(s, c, s->style->melody);
    if (program >= 0)
        cz_slot_set(s, CZ_ROLE_MELODY, 0, cz_program_name(program), program, 0);
}

/* ---------------------------------------------------------------- harmony */

static int cz_plan_progressions(cz_song *s, cz_err *err) {
    const cz_style *h = s->flavor;
    const char *const *set = s->minor ? h->minor : h->major;
    unsigned n = 0;
    while (set[n])
        n++;
    unsigned a = cz_rng_below(&s->rng, n);
    unsigned b = n > 1 ? (a + 1 + cz_rng_below(&s->rng, n - 1)) % n : a;
    unsigned c = n > 2 ? (b + 1 + cz_rng_below(&s->rng, n - 1)) % n : a;
    if (c == a && n > 2)
        c = (c + 1) % n == b ? (c + 2) % n : (c + 1) % n;
    int ext = h->extensions; // the flavour brings its harmony, colours included
    const unsigned pick[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (cz_prog_parse(set[pick[i]], ext, &s->prog[i], err) != 0)
            return -1;
    return 0;
}

/* ---------------------------------------------------------------- motifs */

static void cz_motif_make(cz_song *s, cz_motif *m, int density) {
    // One-bar rhythm cells: 'x' a note starts, '-' it holds, '.' silence.
    static const char *const cells[3][7] = {
        {"x-------x-------", "x-----------x---", "x---x-----------", "x-------x---x---",
         "x-----x-x-------", "..x-----x-------", "x---x---x-------"},
        {"x-x-x---x-------", "x--x--x-x-------", "x---x-x-x---x---", "..x-x-x-x-------",
         "x-x---x-x-x-----", "x--x--x---x-x---", "x-------x-x-x-x-"},
        {"x-xxx-x-x-xxx---", "x-x-x-x-x-x-x---", "xxx-x-x-xxx-x---", "x-x-xxx-x--x----",
         ".xx-x-x-x-x-x---", "x-x-x-x-xxx-x---", "x-xx-xx-x-x-----"},
    };
    density = density < 0 ? 0 : density > 2 ? 2 : density;
    const char *cell = cells[density][cz_rng_below(&s->rng, 7)];
    memset(m, 0, sizeof *m);
    for (int i = 0; i < 16 && m->n < CZ_MAX_MOTIF; i++) {
        if (cell[i] != 'x')
            continue;
        int len = 1;
        while (i + len < 16 && cell[i + len] == '-')
            len++;
        m->start[m->n] = i;
        m->len[m->n] = len;
        m->n++;
    }
    // Contour: mostly steps, some thirds, a rare leap that turns back.
    static const int steps[] = {-1, -1, -1, 1, 1, 1, 1, -2, 2, 2, 0, 3, -3};
    int prev = 0;
    for (int i = 0; i < m->n; i++) {
        int d = i == 0 ? 0 : steps[cz_rng_below(&s->rng, sizeof steps / sizeof steps[0])];
        if (abs(prev) >= 2 && d * prev > 0)
            d = -d / abs(d); // after a leap, step back
        m->step[i] = d;
        prev = d;
    }
}

static void cz_plan_motifs(cz_song *s) {
    int d = s->style->melody_density + (s->energy > 0.6) - (s->energy < -0.5);
    double notes_per_s = s->bpm / 60.0;
    if (notes_per_s > 2.6)
        d--; // fast tempos need fewer notes per bar
    if (notes_per_s < 1.2)
        d++;
    cz_motif_make(s, &s->motif[0], d);
    cz_motif_make(s, &s->motif[1], d);
    cz_motif_make(s, &s->motif[2], d - 1);
}

/* ---------------------------------------------------------------- mix */

/* General MIDI instruments that ring for two seconds or more after a note
 * ends in FluidR3_GM: pads, strings, choirs, harp, mallets, plucked guitars. */
static bool cz_long_release(int program) {
    return (program >= 8 && program <= 14) || program == 19 || program == 24 || program == 25 ||
           (program >= 44 && program <= 54) || (program >= 88 && program <= 101) ||
           program == 105 || program == 108;
}

/* Channel set-up: program, volume, pan, reverb send; long releases halved
 * (-1200 timecents) so chord changes do not pile up voices. */
static void cz_plan_mix(cz_song *s) {
    /* {volume, pan} per slot; reverb sends come from the style and moods */
    static const int mix[CZ_ROLE_COUNT][2][2] = {{{92, 52}, {74, 82}},
                                                 {{104, 64}, {0, 64}},
                                                 {{78, 60}, {62, 70}},
                                                 {{100, 72}, {82, 46}},
                                                 {{100, 64}, {92, 64}}};
    // Bass and drums send little: their samples carry their own room.
    static const double send[CZ_ROLE_COUNT] = {0.8, 0.1, 1.1, 0.9, 0.25};
    cz_score *sc = s->score;
    for (int r = 0; r < CZ_ROLE_COUNT; r++)
        for (int k = 0; k < 2; k++) {
            const cz_slot *sl = &s->slot[r][k];
            if (!sl->on)
                continue;
            cz_score_part *p = &sc->parts[sl->chan];
            p->used = true;
            p->bank = sl->bank;
            p->program = sl->program;
            p->volume = mix[r][k][0];
            p->pan = mix[r][k][1];
            int rv = (int)lround(s->reverb * send[r]);
            p->reverb = rv > 127 ? 127 : rv;
            snprintf(p->instrument, sizeof p->instrument, "%s", sl->token);
            p->release_tc = sl->bank == 0 && cz_long_release(sl->program) ? -1200 : 0;
        }
    sc->gain = 0.45 * pow(10.0, s->style->trim_db / 20.0);
}

/* ---------------------------------------------------------------- JSON */

static cJSON *cz_plan_json(const cz_song *s, double tail_s) {
    static const char *const kinds[] = {"intro", "verse", "chorus", "bridge", "breakdown", "outro"};
    cJSON *o = cJSON_CreateObject();
    char key[16];
    cJSON_AddStringToObject(o, "style", s->style->genre[0] ? s->style->genre : "default");
    if (s->flavor != s->style)
        cJSON_AddStringToObject(o, "flavor", s->flavor->genre);
    cJSON_AddNumberToObject(o, "tempo_bpm", round(s->bpm * 1000) / 1000);
    cJSON_AddStringToObject(o, "key", cz_prompt_key_name(s->tonic, s->minor, key, sizeof key));
    cJSON_AddNumberToObject(o, "bars", s->bars);
    cJSON_AddNumberToObject(o, "tail_s", round(tail_s * 1000) / 1000);
    cJSON *form = cJSON_AddArrayToObject(o, "form");
    for (int i = 0; i < s->n_sec; i++) {
        cJSON *sec = cJSON_CreateObject();
        cJSON_AddStringToObject(sec, "section", kinds[s->sec[i].kind]);
        cJSON_AddNumberToObject(sec, "bars", s->sec[i].bars);
        if (s->sec[i].given) // the given section it plays, or borrows the chords of
            cJSON_AddNumberToObject(sec, "material", s->sec[i].given->index);
        cJSON_AddItemToArray(form, sec);
    }
    if (s->given) {
        cJSON *m = cJSON_AddObjectToObject(o, "material");
        cJSON_AddStringToObject(m, "source", "given");
        cJSON_AddNumberToObject(m, "sections", s->given->n_sec);
        cJSON_AddNumberToObject(m, "bars", s->given->bars);
        cJSON_AddStringToObject(m, "meter", s->given->meter);
        cJSON_AddNumberToObject(m, "transpose", s->given_shift);
    } else {
        cJSON *prog = cJSON_AddObjectToObject(o, "progressions");
        cJSON_AddStringToObject(prog, "verse", s->prog[0].text);
        cJSON_AddStringToObject(prog, "chorus", s->prog[1].text);
        cJSON_AddStringToObject(prog, "bridge", s->prog[2].text);
    }
    cJSON *ins = cJSON_AddArrayToObject(o, "instruments");
    cJSON *groups = cJSON_AddArrayToObject(o, "groups");
    for (int r = 0; r < CZ_ROLE_COUNT; r++) {
        bool sounds = false;
        for (int k = 0; k < 2; k++) {
            const cz_slot *sl = &s->slot[r][k];
            if (!sl->on || !cz_score_channel_sounds(s->score, sl->chan))
                continue;
            sounds = true;
            cJSON *i = cJSON_CreateObject();
            cJSON_AddStringToObject(i, "group", cz_role_name((cz_role)r));
            cJSON_AddStringToObject(i, "instrument", sl->token);
            cJSON_AddNumberToObject(i, "program", sl->program);
            if (sl->bank)
                cJSON_AddNumberToObject(i, "bank", sl->bank);
            cJSON_AddNumberToObject(i, "channel", sl->chan + 1);
            cJSON_AddItemToArray(ins, i);
        }
        if (sounds)
            cJSON_AddItemToArray(groups, cJSON_CreateString(cz_role_name((cz_role)r)));
    }
    return o;
}

/* ================================================================ API */

static int cz_compose_check(const cz_controls *c, double duration_s, cz_err *err) {
    if (!c || !(duration_s >= CZ_COMPOSE_MIN_S && duration_s <= CZ_COMPOSE_MAX_S))
        return cz_err_set(err, "composer: duration %.3f s is outside %g..%g s", duration_s,
                          CZ_COMPOSE_MIN_S, CZ_COMPOSE_MAX_S);
    if (c->tempo_bpm != 0 && !(c->tempo_bpm >= 20 && c->tempo_bpm <= 300))
        return cz_err_set(err, "composer: tempo %.1f BPM is outside 20..300", c->tempo_bpm);
    return 0;
}

/* The plan both entries share, in this order (the choices stream is drawn
 * the same way for both): style, moods, key, tempo, instruments, and the
 * whole bars that fit before the final chord. */
static cz_song *cz_plan_begin(const cz_controls *c, double duration_s, uint64_t seed,
                              cz_score *out) {
    cz_song *s = cz_calloc(1, sizeof *s);
    s->rng.s = seed ^ 0x5EEDC0DEC0FFEEull;
    s->human.s = seed ^ 0x4A11ADB07ull;
    s->score = out;
    s->duration_s = duration_s;
    s->style = cz_style_find(c->genre);
    s->flavor = c->flavor[0] ? cz_style_find(c->flavor) : s->style;
    s->vinyl = !strcmp(c->texture, "vinyl");

    int minor_vote;
    cz_plan_moods(s, c, &minor_vote);
    cz_plan_key(s, c, minor_vote);
    cz_plan_tempo(s, c);
    cz_plan_instruments(s, c);
    double fit = floor((duration_s - cz_tail_min(duration_s)) / (240.0 / s->bpm) + 1e-9);
    s->bars = fit > 0 ? (int)fit : 0;
    return s;
}

/* Sets up the score, writes the parts (when @p rc says the plan is whole)
 * and the plan's JSON, and frees @p s. @returns @p rc; on failure the score
 * is freed. */
static int cz_plan_finish(cz_song *s, cJSON **plan, int rc) {
    cz_score *out = s->score;
    out->bpm = s->bpm;
    out->duration_s = s->duration_s;
    out->end_tick = (uint32_t)ceil(s->duration_s * s->bpm / 60.0 * CZ_SCORE_PPQ);
    out->key_root = s->tonic;
    out->minor = s->minor;
    s->ticks_per_ms = s->bpm * CZ_SCORE_PPQ / 60000.0;
    cz_plan_mix(s);
    if (rc == 0)
        cz_parts_write(s);
    if (rc == 0) {
        cz_score_sort(out);
        if (plan)
            *plan = cz_plan_json(s, s->duration_s - s->bars * (240.0 / s->bpm));
    }
    free(s);
    if (rc != 0)
        cz_score_free(out);
    return rc;
}

int cz_compose(const cz_controls *c, double duration_s, uint64_t seed, cz_score *out, cJSON **plan,
               cz_err *err) {
    memset(out, 0, sizeof *out);
    if (plan)
        *plan = NULL;
    if (cz_compose_check(c, duration_s, err) != 0)
        return -1;
    cz_song *s = cz_plan_begin(c, duration_s, seed, out);
    cz_plan_form(s);
    int rc = cz_plan_progressions(s, err);
    cz_plan_motifs(s);
    return cz_plan_finish(s, plan, rc);
}

int cz_compose_material(const cz_controls *c, const cz_material *m, double duration_s,
                        uint64_t seed, cz_score *out, cJSON **plan, cz_err *err) {
    memset(out, 0, sizeof *out);
    if (plan)
        *plan = NULL;
    cz_given *g;
    if (cz_compose_check(c, duration_s, err) != 0 || cz_given_read(m, &g, err) != 0)
        return -1;
    // The material's key, and its tempo when it has one, as if asked for.
    cz_controls asked = *c;
    asked.key_root = g->tonic;
    asked.mode = g->minor;
    if (g->bpm > 0)
        asked.tempo_bpm = g->bpm;
    cz_song *s = cz_plan_begin(&asked, duration_s, seed, out);
    s->given = g;
    cz_plan_given_voice(s, &asked);
    cz_plan_form_given(s);
    int rc = cz_plan_finish(s, plan, 0);
    cz_given_free(g);
    return rc;
}
