/* composer@1's part writers: the plan of compose.c becomes notes.
 *
 * Time is counted in sixteenth notes ("steps") from the start of the piece;
 * a bar is sixteen steps. Every note goes through cz_part_note(), which adds
 * the style's swing (off-beat eighths or sixteenths played late), a laid-back
 * delay for backbeats where the style has one, a small random timing error
 * (a few milliseconds, less for machine styles) and a velocity spread, all
 * from the song's humanisation stream, so the choices stream is unaffected
 * by how loose a part is played.
 *
 * The parts:
 *   drums    the style's groove for the section's energy (light, main,
 *            full), a crash on section starts, a fill in the last beat
 *            before a new section; hand percussion when asked for; tuned
 *            percussion (timpani, taiko) on the accents, on the chord root
 *   bass     the style's line ('R' root, '5' fifth... see style.h), or a
 *            walking line for jazz: root, chord tones, a chromatic approach
 *   harmony  comping in the style's rhythm, each chord voiced close to the
 *            one before (voice leading), rootless when it has a ninth,
 *            power chords on a distorted guitar; guitars strum
 *   arpeggio the second harmony slot breaks the chords into a pattern
 *   pad      sustained voicings, one per chord
 *   melody   four-bar phrases from the section's motif: the motif, a
 *            sequence of it on the next chord, the motif again (raised in
 *            the first phrase), then a cadence that ends on a chord tone
 *            (the third or fifth, a question) or the root (an answer);
 *            notes on strong beats land on chord tones, the others move by
 *            steps of a scale that bends to the chord; repeats ornament.
 *            A section of given material plays its own notes instead,
 *            moved by octaves into the instrument's range, humanised the
 *            same way
 *   tail     the tonic chord on every part, held to the end of the piece
 *
 * Every chord comes from cz_song_chord(), which reads the planned
 * progressions or the given material's chords, so every accompanying part
 * follows given harmony without knowing where it came from. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "workers/composer/song.h"

#define CZ_STEP_TICKS (CZ_SCORE_PPQ / 4)

/* ================================================================ notes */

static double cz_part_loose(const cz_song *s) {
    static const char *const machines[] = {"electronic", "house", "techno", "trap",
                                           "synthwave",  "dnb",   NULL};
    for (int i = 0; machines[i]; i++)
        if (!strcmp(s->style->genre, machines[i]))
            return 0.3;
    return 1.0;
}

/* The step as played: off-beat eighths and sixteenths swing late. */
static double cz_part_swing(const cz_song *s, double step) {
    double whole = floor(step), frac = step - whole;
    int k = ((int)whole) % 16;
    if (frac != 0)
        return step;
    if (k % 4 == 2)
        return step + s->style->swing8;
    if (k % 2 == 1)
        return step + s->style->swing16;
    return step;
}

/* Adds a note at @p step for @p len steps. @p jitter_ms is the timing
 * error's spread, @p late_ms a deliberate delay. */
static void cz_part_note(cz_song *s, int chan, int key, int vel, double step, double len,
                         double jitter_ms, double late_ms) {
    double t = cz_part_swing(s, step) * CZ_STEP_TICKS +
               (late_ms + jitter_ms * cz_part_loose(s) * cz_rng_gauss(&s->human)) * s->ticks_per_ms;
    double l = len * CZ_STEP_TICKS;
    int v = vel + (int)lround(cz_rng_gauss(&s->human) * (chan == CZ_SCORE_DRUM_CHANNEL ? 5 : 3));
    v = v < 1 ? 1 : v > 127 ? 127 : v;
    if (t < 0)
        t = 0;
    if (l < 1)
        l = 1;
    cz_score_add(s->score, (uint32_t)lround(t), (uint32_t)lround(l), chan, key, v);
}

/* Places pitch class @p pc in [lo, lo + 12). */
static int cz_place(int pc, int lo) {
    return lo + (((pc - lo) % 12) + 12) % 12;
}

static int cz_vel(const cz_section *sec, int base) {
    return (int)lround(base * (0.75 + 0.25 * sec->energy));
}

/* ================================================================ drums */

static const char *cz_lane_pattern(const cz_song *s, const cz_groove *g, cz_lane lane) {
    if (g->lane[lane])
        return g->lane[lane];
    if (s->percussion && lane == CZ_LANE_SHAKER)
        return "x.o.x.o.x.o.x.o.";
    if (s->percussion && lane == CZ_LANE_CONGA)
        return "..x..x....x..x..";
    return NULL;
}

static void cz_part_fill(cz_song *s, const cz_section *sec, double bar_step) {
    const char *g = s->style->genre;
    bool toms = !strcmp(g, "rock") || !strcmp(g, "pop") || !strcmp(g, "") ||
                !strcmp(g, "synthwave") || !strcmp(g, "cinematic") || !strcmp(g, "folk");
    static const int tom_keys[4] = {50, 48, 47, 45};
    for (int k = 0; k < 4; k++) {
        int key = toms ? tom_keys[k] : cz_lane_key(CZ_LANE_SNARE);
        cz_part_note(s, CZ_SCORE_DRUM_CHANNEL, key, cz_vel(sec, 64 + 10 * k), bar_step + 12 + k, 1,
                     3, 0);
    }
    cz_part_note(s, CZ_SCORE_DRUM_CHANNEL, cz_lane_key(CZ_LANE_KICK), cz_vel(sec, 90),
                 bar_step + 12, 1, 1.5, 0);
}

static void cz_part_drums(cz_song *s, int si, int bar) {
    const cz_section *sec = &s->sec[si];
    if (!(sec->roles & CZ_ROLE_BIT(CZ_ROLE_DRUMS)) || sec->groove < 0)
        return;
    const cz_slot *kit = &s->slot[CZ_ROLE_DRUMS][0], *tuned = &s->slot[CZ_ROLE_DRUMS][1];
    const cz_groove *g = s->style->groove[sec->groove];
    // A slow piece's chorus lifts with its kick and snare, not with more
    // hats: busier hats at 80 BPM read as a pulse twice as fast.
    const cz_groove *hats = sec->groove == 2 && s->bpm < 95 ? s->style->groove[1] : g;
    double at = (sec->start_bar + bar) * 16.0;
    bool last = bar == sec->bars - 1;
    bool next_drums = si + 1 < s->n_sec ? s->sec[si + 1].groove >= 0 : true;
    bool fill = last && sec->bars >= 2 && next_drums && sec->groove >= 1;
    if (kit->on) {
        if (bar == 0 && sec->groove >= 1 && sec->start_bar > 0)
            cz_part_note(s, kit->chan, 49, cz_vel(sec, 96), at, 4, 2, 0);
        for (int lane = 0; lane < CZ_LANE_COUNT; lane++) {
            bool back = lane == CZ_LANE_SNARE || lane == CZ_LANE_RIM || lane == CZ_LANE_CLAP;
            bool hat = lane == CZ_LANE_HAT || lane == CZ_LANE_OPEN_HAT || lane == CZ_LANE_RIDE ||
                       lane == CZ_LANE_SHAKER;
            const char *p = cz_lane_pattern(s, hat ? hats : g, (cz_lane)lane);
            if (!p)
                continue;
            // A slow piece's light groove keeps its hats on the beat: eighths
            // at 80 BPM sound like a pulse twice as fast.
            bool on_beat = hat && sec->groove == 0 && s->bpm < 95;
            for (int k = 0; k < 16; k++) {
                char c = p[k];
                if (c == '.' ||
                    (fill && k >= 12 && (lane == CZ_LANE_SNARE || lane == CZ_LANE_KICK)) ||
                    (on_beat && k % 4 != 0))
                    continue;
                int v = c == 'X' ? 108 : c == 'x' ? 88 : 56;
                if (hat)
                    v = (int)(v * (s->vinyl ? 0.72 : 0.85));
                double jitter = lane == CZ_LANE_KICK ? 1.5 : back ? 3 : 4;
                cz_part_note(s, kit->chan, cz_lane_key((cz_lane)lane), cz_vel(sec, v), at + k, 1,
                             jitter, back ? s->style->laid_back_ms : 0);
            }
        }
        if (fill)
            cz_part_fill(s, sec, at);
    }
    if (tuned->on && sec->groove >= 1) {
        // Tuned drums double the accents, on the chord's root.
        const char *kick = g->lane[CZ_LANE_KICK] ? g->lane[CZ_LANE_KICK] : "X.......X.......";
        for (int k = 0; k < 16; k++) {
            if (kick[k] != 'X' && !(sec->groove == 2 && kick[k] == 'x'))
                continue;
            const cz_chord *ch = cz_song_chord(s, sec, bar * 16 + k);
            int key = cz_place(cz_chord_tone(s, ch, 0, NULL), tuned->lo);
            cz_part_note(s, tuned->chan, key, cz_vel(sec, kick[k] == 'X' ? 104 : 84), at + k, 4, 3,
                         0);
        }
    }
}

/* ================================================================ bass */

static int cz_bass_low(const cz_song *s) {
    return !strcmp(s->slot[CZ_ROLE_BASS][0].token, "808") ? 26 : 33;
}

/* The bass pitch for pattern character @p c over @p ch. */
static int cz_bass_pitch(const cz_song *s, const cz_chord *ch, char c, int next_root) {
    int root = cz_place((s->tonic + ch->root) % 12, cz_bass_low(s));
    int third = root + ch->iv[1], fifth = root + ch->iv[2];
    int seventh = root + 12;
    for (int i = 3; i < ch->n; i++)
        if (ch->iv[i] == 10 || ch->iv[i] == 11)
            seventh = root + ch->iv[i];
    switch (c) {
    case '3':
        return third;
    case '5':
        return fifth;
    case '6':
        return root + 9;
    case '7':
        return seventh;
    case '8':
        return root + 12;
    case 'a': // a semitone under the next root, or above when that is closer
        return next_root > root ? next_root - 1 : next_root + 1;
    default:
        return root;
    }
}

/* A walking line: the root on the beat where a chord arrives, chord tones
 * in between, and a chromatic approach into the next chord. */
static void cz_part_walk(cz_song *s, const cz_section *sec, int bar) {
    double at = (sec->start_bar + bar) * 16.0;
    for (int beat = 0; beat < 4; beat++) {
        int step = bar * 16 + beat * 4;
        const cz_chord *ch = cz_song_chord(s, sec, step);
        const cz_chord *next = cz_song_chord(s, sec, step + 4);
        bool arrives = beat == 0 || ch != cz_song_chord(s, sec, step - 1);
        int key;
        if (arrives)
            key = cz_bass_pitch(s, ch, 'R', 0);
        else if (next != ch || (beat == 3 && bar + 1 < sec->bars))
            key = cz_bass_pitch(s, ch, 'a', cz_bass_pitch(s, next, 'R', 0));
        else
            key = cz_bass_pitch(s, ch, cz_rng_below(&s->rng, 2) ? '3' : '5', 0);
        cz_part_note(s, s->slot[CZ_ROLE_BASS][0].chan, key, cz_vel(sec, arrives ? 96 : 84),
                     at + beat * 4, 3.7, 4, 0);
    }
}

static void cz_part_bass(cz_song *s, const cz_section *sec, int bar) {
    const cz_slot *sl = &s->slot[CZ_ROLE_BASS][0];
    if (!sl->on || !(sec->roles & CZ_ROLE_BIT(CZ_ROLE_BASS)))
        return;
    const char *line = s->style->bass_line[sec->kind == CZ_SEC_CHORUS ? 1 : 0];
    bool plain = sec->groove <= 0 || !s->slot[CZ_ROLE_DRUMS][0].on;
    if (!strcmp(line, "walk") && !plain) {
        cz_part_walk(s, sec, bar);
        return;
    }
    if (plain || !strcmp(line, "walk"))
        line = "R-------R-------";
    double at = (sec->start_bar + bar) * 16.0;
    for (int k = 0; k < 16; k++) {
        char c = line[k];
        const cz_chord *ch = cz_song_chord(s, sec, bar * 16 + k);
        bool change = k > 0 && ch != cz_song_chord(s, sec, bar * 16 + k - 1);
        if (c == '.' || (c == '-' && !change))
            continue;
        if (c == '-')
            c = 'R'; // a held note re-strikes on the new chord's root
        int len = 1;
        while (k + len < 16 && line[k + len] == '-' &&
               cz_song_chord(s, sec, bar * 16 + k + len) == ch)
            len++;
        const cz_chord *next = cz_song_chord(s, sec, bar * 16 + k + len);
        int key = cz_bass_pitch(s, ch, c, cz_bass_pitch(s, next, 'R', 0));
        int v = c == 'R' ? 100 : 86;
        cz_part_note(s, sl->chan, key, cz_vel(sec, v), at + k, len * 0.92, 4, 0);
    }
}

/* ================================================================ voicings */

/* Voices @p ch within [lo, hi] close to the previous voicing @p prev (n
 * notes), writing at most six notes to @p out. @returns the note count. */
static int cz_voice(const cz_song *s, const cz_chord *ch, int lo, int hi, const int *prev,
                    int n_prev, bool power, int max, int *out) {
    int pcs[6] = {0}, n = 0;
    if (power) {
        int root = cz_place((s->tonic + ch->root) % 12, lo);
        out[0] = root;
        out[1] = root + 7;
        out[2] = root + 12;
        return 3;
    }
    // Rootless when the chord has a ninth: the bass has the root. Three-note
    // voicings (pads) keep the third and seventh, the colour of a chord.
    int first = ch->n >= 5 ? 1 : 0;
    for (int i = first; i < ch->n && n < max; i++) {
        if (max == 3 && ch->n - first > 3 && ch->iv[i] == 7)
            continue; // the fifth goes first
        pcs[n++] = (s->tonic + ch->root + ch->iv[i]) % 12;
    }
    int best[6], best_n = 0;
    double best_cost = 1e9;
    for (int inv = 0; inv < n; inv++) {
        for (int base = lo; base < lo + 12; base += 12) {
            int v[6], m = 0;
            int p = cz_place(pcs[inv], base);
            v[m++] = p;
            for (int j = 1; j < n; j++) {
                int q = cz_place(pcs[(inv + j) % n], v[m - 1] + 1);
                v[m++] = q;
            }
            if (v[m - 1] > hi)
                continue;
            double cost;
            if (n_prev > 0) { // move the middle and the top voice as little as possible
                double centre = 0, prev_centre = 0;
                for (int j = 0; j < m; j++)
                    centre += v[j] / (double)m;
                for (int j = 0; j < n_prev; j++)
                    prev_centre += prev[j] / (double)n_prev;
                cost = 2 * fabs(centre - prev_centre) + abs(v[m - 1] - prev[n_prev - 1]);
            } else {
                cost = abs(v[0] - (lo + 5));
            }
            if (cost < best_cost) {
                best_cost = cost;
                best_n = m;
                memcpy(best, v, sizeof v);
            }
        }
    }
    if (best_n == 0) { // the register is too narrow: stack from the bottom
        best[0] = cz_place(pcs[0], lo);
        best_n = 1;
        for (int j = 1; j < n; j++, best_n++)
            best[best_n] = cz_place(pcs[j], best[best_n - 1] + 1);
    }
    memcpy(out, best, (size_t)best_n * sizeof *out);
    return best_n;
}

static bool cz_is_guitar(int program) {
    return (program >= 24 && program <= 31) || program == 104 || program == 105 || program == 107;
}

/* Sounds the chord @p v (n notes) at @p step for @p len steps; guitars
 * strum (down on the beat, up off it), keyboards roll a little. */
static void cz_part_chord(cz_song *s, const cz_slot *sl, const int *v, int n, int vel, double step,
                          double len, double late_ms) {
    bool guitar = cz_is_guitar(sl->program);
    bool up = guitar && ((int)step % 4) != 0;
    for (int i = 0; i < n; i++) {
        int order = up ? n - 1 - i : i;
        double strum = guitar ? 9.0 * order : 1.5 * order;
        int top = i == n - 1 ? 6 : 0; // the top voice sings a little
        cz_part_note(s, sl->chan, v[i], vel + top, step, len, 3, late_ms + strum);
    }
}

/* ================================================================ harmony */

static void cz_part_comp(cz_song *s, const cz_section *sec, int bar) {
    const cz_slot *sl = &s->slot[CZ_ROLE_HARMONY][0];
    if (!sl->on || !(sec->roles & CZ_ROLE_BIT(CZ_ROLE_HARMONY)))
        return;
    const char *p = s->style->comp[sec->kind == CZ_SEC_CHORUS ? 1 : 0];
    if ((sl->flags & CZ_INS_SUSTAIN) || sec->kind == CZ_SEC_OUTRO)
        p = s->style->beats_per_chord == 2 ? "X-------X-------" : "X---------------";
    bool power = sl->program == 29 || sl->program == 30;
    int lo = power ? 40 : cz_is_guitar(sl->program) ? 52 : 53, hi = power ? 64 : 77;
    double at = (sec->start_bar + bar) * 16.0;
    for (int k = 0; k < 16; k++) {
        const cz_chord *ch = cz_song_chord(s, sec, bar * 16 + k);
        bool change = k > 0 && ch != cz_song_chord(s, sec, bar * 16 + k - 1);
        char c = p[k];
        if (c == '.' || (c == '-' && !change))
            continue;
        int len = 1;
        while (k + len < 16 && p[k + len] == '-' && cz_song_chord(s, sec, bar * 16 + k + len) == ch)
            len++;
        int v[6];
        int max = sl->flags & CZ_INS_SUSTAIN ? 3 : 4;
        int n = cz_voice(s, ch, lo, hi, s->voicing[0], s->n_voicing[0], power, max, v);
        memcpy(s->voicing[0], v, sizeof v);
        s->n_voicing[0] = n;
        int vel = cz_vel(sec, c == 'X' || c == '-' ? 80 : 68);
        double hold = (sl->flags & CZ_INS_SUSTAIN) ? len : len * 0.9;
        cz_part_chord(s, sl, v, n, vel, at + k, hold, k % 4 == 0 ? 0 : s->style->laid_back_ms);
    }
}

static void cz_part_arp(cz_song *s, const cz_section *sec, int bar) {
    const cz_slot *sl = &s->slot[CZ_ROLE_HARMONY][1];
    if (!sl->on || !(sec->roles & CZ_ROLE_BIT(CZ_ROLE_HARMONY)) || sec->kind == CZ_SEC_INTRO ||
        sec->kind == CZ_SEC_OUTRO)
        return;
    const char *line = s->style->arp_line;
    int step = s->style->arp_step, len = (int)strlen(line);
    double at = (sec->start_bar + bar) * 16.0;
    for (int k = 0, i = 0; k < 16; k += step, i++) {
        char c = line[i % len];
        if (c < '0' || c > '5')
            continue;
        const cz_chord *ch = cz_song_chord(s, sec, bar * 16 + k);
        int tones[8], n = 0;
        int base = cz_place((s->tonic + ch->root) % 12, 60);
        for (int j = 0; j < ch->n && j < 4; j++)
            tones[n++] = base + ch->iv[j] % 24;
        tones[n] = base + 12;
        int key = tones[(c - '0') % (n + 1)];
        int vel = cz_vel(sec, k % 4 == 0 ? 70 : 58);
        double hold = (sl->flags & CZ_INS_SUSTAIN) ? step * 1.5 : step * 0.9;
        cz_part_note(s, sl->chan, key, vel, at + k, hold, 3, 0);
    }
}

/* Pads hold each chord of the section for as long as it lasts. */
static void cz_part_pad(cz_song *s, const cz_section *sec) {
    if (!(sec->roles & CZ_ROLE_BIT(CZ_ROLE_PAD)))
        return;
    int total = sec->bars * 16;
    for (int k = 0; k < total;) {
        const cz_chord *ch = cz_song_chord(s, sec, k);
        int len = 1;
        while (k + len < total && cz_song_chord(s, sec, k + len) == ch)
            len++;
        int v[6];
        int n = cz_voice(s, ch, 50, 74, s->voicing[1], s->n_voicing[1], false, 3, v);
        memcpy(s->voicing[1], v, sizeof v);
        s->n_voicing[1] = n;
        for (int j = 0; j < 2; j++) {
            const cz_slot *sl = &s->slot[CZ_ROLE_PAD][j];
            if (!sl->on)
                continue;
            for (int i = 0; i < n; i++)
                cz_part_note(s, sl->chan, v[i] + 12 * j, cz_vel(sec, j ? 52 : 62),
                             sec->start_bar * 16.0 + k, len, 2, 0);
        }
        k += len;
    }
}

/* ================================================================ melody */

/* The scale under chord @p ch: the key's scale, with any chord tone that is
 * a semitone off a scale tone replacing it (V in minor brings its leading
 * tone). Sorted pitch classes in @p pcs. */
static void cz_chord_scale(const cz_song *s, const cz_chord *ch, int pcs[7]) {
    static const int major[7] = {0, 2, 4, 5, 7, 9, 11}, minor[7] = {0, 2, 3, 5, 7, 8, 10};
    for (int i = 0; i < 7; i++)
        pcs[i] = (s->tonic + (s->minor ? minor : major)[i]) % 12;
    for (int j = 0; j < ch->n; j++) {
        int t = (s->tonic + ch->root + ch->iv[j]) % 12, found = 0;
        for (int i = 0; i < 7; i++)
            found |= pcs[i] == t;
        for (int i = 0; i < 7 && !found; i++)
            if ((pcs[i] + 1) % 12 == t || (pcs[i] + 11) % 12 == t) {
                pcs[i] = t;
                found = 1;
            }
    }
    for (int i = 1; i < 7; i++) // insertion sort
        for (int j = i; j > 0 && pcs[j - 1] > pcs[j]; j--) {
            int t = pcs[j];
            pcs[j] = pcs[j - 1];
            pcs[j - 1] = t;
        }
}

/* Moves @p pitch by @p steps along the scale @p pcs. */
static int cz_scale_move(const int pcs[7], int pitch, int steps) {
    int octave = pitch / 12, pc = pitch % 12, idx = 0, best = 99;
    for (int i = 0; i < 7; i++) { // the scale tone nearest to the pitch
        int d = abs(pcs[i] - pc);
        if (d < best) {
            best = d;
            idx = i;
        }
    }
    int pos = octave * 7 + idx + steps;
    int o = pos >= 0 ? pos / 7 : (pos - 6) / 7;
    return o * 12 + pcs[pos - o * 7];
}

static bool cz_is_chord_tone(const cz_song *s, const cz_chord *ch, int pitch) {
    for (int j = 0; j < ch->n && j < 4; j++)
        if ((s->tonic + ch->root + ch->iv[j]) % 12 == pitch % 12)
            return true;
    return false;
}

/* The chord tone nearest @p pitch; @p which: -1 any, 0 root, 1 third or fifth. */
static int cz_nearest_chord_tone(const cz_song *s, const cz_chord *ch, int pitch, int which) {
    int best = pitch, dist = 99;
    for (int j = 0; j < ch->n && j < 4; j++) {
        if ((which == 0 && j != 0) || (which == 1 && j != 1 && j != 2))
            continue;
        int pc = (s->tonic + ch->root + ch->iv[j]) % 12;
        for (int o = -1; o <= 1; o++) {
            int p = cz_place(pc, pitch - 6) + 12 * o;
            if (abs(p - pitch) < dist) {
                dist = abs(p - pitch);
                best = p;
            }
        }
    }
    return best;
}

static int cz_fit_range(int pitch, int lo, int hi) {
    while (pitch > hi)
        pitch -= 12;
    while (pitch < lo)
        pitch += 12;
    return pitch;
}

/* One bar of melody from motif @p m. Its first note is the chord tone
 * nearest @p anchor; the others follow the motif's contour. @p kind: 0 the
 * motif, 1 a sequence of it (a step higher), 2 raised (a third higher), 3 a
 * cadence; @p answer: the cadence ends on the root. */
static void cz_melody_bar(cz_song *s, const cz_section *sec, int bar, const cz_motif *m, int kind,
                          bool answer, bool ornament, int anchor, int lo, int hi) {
    const cz_slot *sl = &s->slot[CZ_ROLE_MELODY][0];
    double at = (sec->start_bar + bar) * 16.0;
    int starts[CZ_MAX_MOTIF + 2], lens[CZ_MAX_MOTIF + 2], steps[CZ_MAX_MOTIF + 2], n = 0;
    if (kind == 3) { // cadence: the motif's first notes, then a long one
        int keep = m->n < 2 ? m->n : 2;
        for (int i = 0; i < keep && m->start[i] < 8; i++, n++) {
            starts[n] = m->start[i];
            lens[n] = m->len[i];
            steps[n] = m->step[i];
        }
        int end = n ? starts[n - 1] + lens[n - 1] : 0;
        starts[n] = end < 8 ? 8 : end > 12 ? 12 : end;
        if (n && starts[n] <= starts[n - 1])
            starts[n] = starts[n - 1] + 2;
        lens[n] = 16 - starts[n];
        steps[n] = 0;
        if (n)
            lens[n - 1] = starts[n] - starts[n - 1];
        n++;
    } else {
        for (int i = 0; i < m->n; i++, n++) {
            starts[n] = m->start[i];
            lens[n] = m->len[i];
            steps[n] = m->step[i];
            if (ornament && lens[n] >= 4 && n + 1 < CZ_MAX_MOTIF + 1) { // split with a neighbour
                int half = lens[n] / 2;
                lens[n] = half;
                n++;
                starts[n] = starts[n - 1] + half;
                lens[n] = m->len[i] - half;
                steps[n] = cz_rng_below(&s->rng, 2) ? 1 : -1;
            }
        }
    }
    anchor += kind == 1 ? 2 : kind == 2 ? 4 : 0;
    int prev = anchor;
    for (int i = 0; i < n; i++) {
        int k = starts[i];
        const cz_chord *ch = cz_song_chord(s, sec, bar * 16 + k);
        int pcs[7];
        cz_chord_scale(s, ch, pcs);
        int p =
            i == 0 ? cz_nearest_chord_tone(s, ch, anchor, -1) : cz_scale_move(pcs, prev, steps[i]);
        bool strong = k % 8 == 0 || lens[i] >= 4;
        if (kind == 3 && i == n - 1)
            p = cz_nearest_chord_tone(s, ch, p, answer ? 0 : 1);
        else if (strong && !cz_is_chord_tone(s, ch, p))
            p = cz_nearest_chord_tone(s, ch, p, -1);
        if (p == prev && steps[i] != 0 && i > 0)
            p = cz_scale_move(pcs, p, steps[i] > 0 ? 1 : -1);
        if (p > hi || p < lo) // out of range: turn the line around instead of jumping far
            p = cz_fit_range(cz_scale_move(pcs, prev, -steps[i]), lo, hi);
        prev = p;
        int vel = cz_vel(sec, 86 + (strong ? 8 : 0) + (kind == 2 ? 4 : 0));
        double legato = (sl->flags & CZ_INS_SUSTAIN) || sl->program >= 56 ? 0.97 : 0.9;
        cz_part_note(s, sl->chan, p, vel, at + k, lens[i] * legato, 6, 0);
    }
    s->melody_prev = prev;
}

/* The melody's register: phrases need at least fourteen semitones. */
static void cz_melody_range(const cz_slot *sl, int *lo, int *hi) {
    *lo = sl->lo;
    *hi = sl->hi;
    if (*hi - *lo < 14)
        *lo = *hi - 14;
}

/* A section of given material: its notes as written, in the melody's
 * register, up to the section's end (a section cut short stops early). An
 * outro recalls the first bar only, as a planned one recalls its motif
 * once; not when that bar is already the outro's dominant. */
static void cz_part_melody_given(cz_song *s, const cz_section *sec) {
    const cz_slot *sl = &s->slot[CZ_ROLE_MELODY][0];
    const cz_given_section *g = sec->given;
    int lo, hi, until = sec->bars * 16;
    if (sec->kind == CZ_SEC_OUTRO)
        until = sec->bars >= 2 ? 16 : 0;
    cz_melody_range(sl, &lo, &hi);
    double legato = (sl->flags & CZ_INS_SUSTAIN) || sl->program >= 56 ? 0.97 : 0.9;
    for (int i = 0; i < g->n_notes && g->notes[i].step < until; i++) {
        const cz_given_note *n = &g->notes[i];
        int len = n->len < until - n->step ? n->len : until - n->step;
        int p = cz_fit_range(n->pitch + s->given_shift, lo, hi);
        bool strong = n->step % 8 == 0 || len >= 4;
        cz_part_note(s, sl->chan, p, cz_vel(sec, 86 + (strong ? 8 : 0)),
                     sec->start_bar * 16.0 + n->step, len * legato, 6, 0);
        s->melody_prev = p;
    }
}

static void cz_part_melody(cz_song *s, const cz_section *sec) {
    const cz_slot *sl = &s->slot[CZ_ROLE_MELODY][0];
    if (!sl->on || !(sec->roles & CZ_ROLE_BIT(CZ_ROLE_MELODY)) || sec->kind == CZ_SEC_INTRO)
        return;
    if (sec->given) {
        cz_part_melody_given(s, sec);
        return;
    }
    int which = sec->kind == CZ_SEC_CHORUS ? 1 : sec->kind == CZ_SEC_BRIDGE ? 2 : 0;
    const cz_motif *m = &s->motif[which];
    int lo, hi;
    cz_melody_range(sl, &lo, &hi);
    // Phrases start in the lower middle of the instrument's range (the
    // chorus a little higher, so it lifts); answers start a step lower.
    int anchor = lo + (hi - lo) * (which == 1 ? 5 : 3) / 10;
    for (int bar = 0; bar < sec->bars; bar++) {
        int pos = bar % 4, phrase = bar / 4;
        bool last = bar == sec->bars - 1;
        if (sec->kind == CZ_SEC_OUTRO && bar > 0)
            return; // the outro only recalls the motif once
        if (sec->kind == CZ_SEC_BREAK && pos >= 2)
            continue; // breakdowns leave room
        int kind = pos == 3 || last ? 3 : pos == 2 && phrase % 2 == 0 ? 2 : pos;
        bool ornament = sec->occurrence > 0 && cz_rng_below(&s->rng, 2);
        cz_melody_bar(s, sec, bar, m, kind, phrase % 2 == 1 || last, ornament,
                      anchor - (phrase % 2 ? 2 : 0), lo, hi);
    }
}

/* The second melody slot: long guide tones (thirds and sevenths) under the
 * tune in choruses and bridges. */
static void cz_part_counter(cz_song *s, const cz_section *sec) {
    const cz_slot *sl = &s->slot[CZ_ROLE_MELODY][1];
    if (!sl->on || !(sec->roles & CZ_ROLE_BIT(CZ_ROLE_MELODY)) ||
        (sec->kind != CZ_SEC_CHORUS && sec->kind != CZ_SEC_BRIDGE && sec->kind != CZ_SEC_VERSE))
        return;
    for (int k = 0; k < sec->bars * 16; k += 8) {
        const cz_chord *ch = cz_song_chord(s, sec, k);
        int tone = ch->n > 3 && (k / 8) % 2 ? 3 : 1;
        int key = cz_place(cz_chord_tone(s, ch, tone, NULL), sl->lo + 2);
        cz_part_note(s, sl->chan, key, cz_vel(sec, 70), sec->start_bar * 16.0 + k, 7.8, 5, 0);
    }
}

/* ================================================================ tail */

static void cz_part_tail(cz_song *s) {
    double at = s->bars * 16.0, hold = 1e6; // held past the end; the fade closes it
    const cz_section *last = s->n_sec ? &s->sec[s->n_sec - 1] : NULL;
    cz_chord tonic = {0, 3, {0, s->minor ? 3 : 4, 7}};
    if (s->flavor->extensions >= 1) {
        tonic.iv[3] = s->minor ? 10 : 11;
        tonic.n = 4;
    }
    cz_section end = {.kind = CZ_SEC_OUTRO, .energy = 0.75};
    int v[6];
    const cz_slot *h = &s->slot[CZ_ROLE_HARMONY][0];
    if (h->on) {
        bool power = h->program == 29 || h->program == 30;
        int n = cz_voice(s, &tonic, 53, 77, s->voicing[0], s->n_voicing[0], power,
                         h->flags & CZ_INS_SUSTAIN ? 3 : 4, v);
        cz_part_chord(s, h, v, n, cz_vel(&end, 74), at, hold, 0);
    }
    const cz_slot *arp = &s->slot[CZ_ROLE_HARMONY][1];
    if (arp->on) { // one last roll up the chord
        int base = cz_place(s->tonic, 60);
        for (int i = 0; i < tonic.n; i++)
            cz_part_note(s, arp->chan, base + tonic.iv[i], cz_vel(&end, 60 - 4 * i), at + i, hold,
                         2, 0);
    }
    for (int j = 0; j < 2; j++) {
        const cz_slot *pad = &s->slot[CZ_ROLE_PAD][j];
        if (!pad->on)
            continue;
        int n = cz_voice(s, &tonic, 50, 74, s->voicing[1], s->n_voicing[1], false, 3, v);
        for (int i = 0; i < n; i++)
            cz_part_note(s, pad->chan, v[i] + 12 * j, cz_vel(&end, 58), at, hold, 2, 0);
    }
    const cz_slot *bass = &s->slot[CZ_ROLE_BASS][0];
    if (bass->on)
        cz_part_note(s, bass->chan, cz_place(s->tonic, cz_bass_low(s)), cz_vel(&end, 92), at, hold,
                     2, 0);
    const cz_slot *mel = &s->slot[CZ_ROLE_MELODY][0];
    if (mel->on) {
        int p = s->melody_prev ? s->melody_prev : (mel->lo + mel->hi) / 2;
        p = cz_fit_range(cz_nearest_chord_tone(s, &tonic, p, 0), mel->lo, mel->hi);
        cz_part_note(s, mel->chan, p, cz_vel(&end, 80), at, hold, 3, 0);
    }
    const cz_slot *kit = &s->slot[CZ_ROLE_DRUMS][0];
    bool drums = kit->on && (!last || last->groove >= 0 || s->bars < 8);
    if (drums) {
        cz_part_note(s, kit->chan, 49, cz_vel(&end, 90), at, 4, 1, 0);
        cz_part_note(s, kit->chan, cz_lane_key(CZ_LANE_KICK), cz_vel(&end, 96), at, 1, 1, 0);
    }
    const cz_slot *tuned = &s->slot[CZ_ROLE_DRUMS][1];
    if (tuned->on)
        cz_part_note(s, tuned->chan, cz_place(s->tonic, tuned->lo), cz_vel(&end, 96), at, 8, 2, 0);
}

/* ================================================================ all */

void cz_parts_write(cz_song *s) {
    s->melody_prev = 0;
    const cz_slot *tune = &s->slot[CZ_ROLE_MELODY][0];
    if (s->given && tune->on) { // the given tune moves by octaves into the melody's register
        int lo, hi;
        cz_melody_range(tune, &lo, &hi);
        s->given_shift = cz_given_octaves(s->given, lo, hi);
    }
    for (int i = 0; i < s->n_sec; i++) {
        const cz_section *sec = &s->sec[i];
        for (int bar = 0; bar < sec->bars; bar++) {
            cz_part_drums(s, i, bar);
            cz_part_bass(s, sec, bar);
            cz_part_comp(s, sec, bar);
            cz_part_arp(s, sec, bar);
        }
        cz_part_pad(s, sec);
        cz_part_melody(s, sec);
        cz_part_counter(s, sec);
    }
    cz_part_tail(s);
}
