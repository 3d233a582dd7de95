/* Synthesis with FluidSynth: see render.h.
 *
 * Why a fresh synthesizer per render. FluidSynth voices keep a little state
 * from the note they last played (filter coefficient ramps among it) and
 * its reverb runs on from one render to the next, so a synth that has played
 * anything is not a clean slate; a fresh one costs under a millisecond. It
 * reaches the renderer's loaded SoundFont through a proxy whose free callback
 * frees only the proxy, so the synth never owns (or unloads) the samples.
 *
 * The render loop. The score's notes become note-on/off events at sample
 * frames (offs first at a frame, so a repeated note is struck again), and the
 * synthesizer runs from event to event with fluid_synth_process() straight
 * into planar block buffers: one left/right pair per group for its dry sound,
 * and one for the reverb return. A full block is faded where the piece ends,
 * the stems are interleaved and summed into the mix in a fixed order, and the
 * block goes to the sink. Chorus is off: it would cost as much as the reverb.
 *
 * A renderer is not thread-safe: use one per thread. */
#include "workers/composer/render.h"

#include <fluidsynth.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/music/prompt.h"
#include "workers/composer/compose.h"

#define CZ_RENDER_BLOCK 4096   /* frames handed to the sink at a time */
#define CZ_RENDER_FADE_S 1.5   /* fade-out at the end of every piece */
#define CZ_RENDER_POLYPHONY 96 /* voices; beyond this the quietest releases stop */
#define CZ_PI 3.14159265358979323846

struct cz_renderer {
    fluid_settings_t *settings; /* the holder's */
    fluid_synth_t *holder;      /* owns the loaded SoundFont; never plays */
    fluid_sfont_t *sfont;
    unsigned sample_rate;
};

bool cz_render_stem_sounds(const cz_score *score, int stem) {
    for (int c = 0; c < CZ_SCORE_CHANNELS; c++) {
        const cz_score_part *p = &score->parts[c];
        bool in = stem == CZ_RENDER_REVERB ? p->reverb > 0 : c % CZ_ROLE_COUNT == stem;
        if (in && p->used && cz_score_channel_sounds(score, c))
            return true;
    }
    return false;
}

const char *cz_render_stem_name(int stem) {
    return stem == CZ_RENDER_REVERB ? "reverb" : cz_role_name((cz_role)stem);
}

/* ================================================================ synth */

typedef struct cz_synth {
    fluid_settings_t *settings;
    fluid_synth_t *fs;
    int sfont_id;
} cz_synth;

static const char *cz_proxy_name(fluid_sfont_t *proxy) {
    return fluid_sfont_get_name(fluid_sfont_get_data(proxy));
}

static fluid_preset_t *cz_proxy_preset(fluid_sfont_t *proxy, int bank, int prog) {
    return fluid_sfont_get_preset(fluid_sfont_get_data(proxy), bank, prog);
}

static int cz_proxy_free(fluid_sfont_t *proxy) {
    return delete_fluid_sfont(proxy);
}

static int cz_synth_settings(fluid_settings_t *st, unsigned sample_rate, double gain) {
    return fluid_settings_setnum(st, "synth.sample-rate", sample_rate) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.gain", gain) == FLUID_OK &&
                   fluid_settings_setint(st, "synth.audio-channels", CZ_ROLE_COUNT) == FLUID_OK &&
                   fluid_settings_setint(st, "synth.audio-groups", CZ_ROLE_COUNT) == FLUID_OK &&
                   fluid_settings_setint(st, "synth.effects-groups", 1) == FLUID_OK &&
                   fluid_settings_setint(st, "synth.chorus.active", 0) == FLUID_OK &&
                   fluid_settings_setint(st, "synth.polyphony", CZ_RENDER_POLYPHONY) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.room-size", 0.6) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.damp", 0.4) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.width", 0.8) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.level", 0.7) == FLUID_OK &&
                   fluid_settings_setint(st, "synth.threadsafe-api", 0) == FLUID_OK
               ? 0
               : -1;
}

static void cz_synth_close(cz_synth *s) {
    if (s->fs)
        delete_fluid_synth(s->fs); // also frees the proxy, never the SoundFont
    if (s->settings)
        delete_fluid_settings(s->settings);
    memset(s, 0, sizeof *s);
}

static int cz_synth_open(cz_synth *s, const cz_renderer *r, double gain, cz_err *err) {
    memset(s, 0, sizeof *s);
    s->settings = new_fluid_settings();
    if (!s->settings || cz_synth_settings(s->settings, r->sample_rate, gain) != 0 ||
        !(s->fs = new_fluid_synth(s->settings))) {
        cz_synth_close(s);
        return cz_err_set(err, "cannot create a FluidSynth synthesizer at %u Hz", r->sample_rate);
    }
    fluid_sfont_t *proxy =
        new_fluid_sfont(cz_proxy_name, cz_proxy_preset, NULL, NULL, cz_proxy_free);
    if (!proxy || fluid_sfont_set_data(proxy, r->sfont) != FLUID_OK ||
        (s->sfont_id = fluid_synth_add_sfont(s->fs, proxy)) == FLUID_FAILED) {
        if (proxy)
            delete_fluid_sfont(proxy);
        cz_synth_close(s);
        return cz_err_set(err, "cannot attach the SoundFont to a new synthesizer");
    }
    return 0;
}

/* Selects each part's program and sets its mix. */
static int cz_synth_setup(cz_synth *s, const cz_score *score, cz_err *err) {
    for (int c = 0; c < CZ_SCORE_CHANNELS; c++) {
        const cz_score_part *p = &score->parts[c];
        if (!p->used)
            continue;
        if (fluid_synth_program_select(s->fs, c, s->sfont_id, p->bank, p->program) != FLUID_OK)
            return cz_err_set(err,
                              "the SoundFont has no instrument bank %d program %d (channel %d): "
                              "use a complete General MIDI SoundFont",
                              p->bank, p->program, c + 1);
        if (fluid_synth_cc(s->fs, c, 7, p->volume) != FLUID_OK ||
            fluid_synth_cc(s->fs, c, 10, p->pan) != FLUID_OK ||
            fluid_synth_cc(s->fs, c, 91, p->reverb) != FLUID_OK ||
            fluid_synth_cc(s->fs, c, 93, 0) != FLUID_OK)
            return cz_err_set(err, "FluidSynth refused the mix settings of channel %d", c + 1);
        if (p->release_tc != 0) {
            int cc[4][2];
            cz_score_release_nrpn(p->release_tc, cc);
            for (int i = 0; i < 4; i++)
                if (fluid_synth_cc(s->fs, c, cc[i][0], cc[i][1]) != FLUID_OK)
                    return cz_err_set(err, "FluidSynth refused the release of channel %d", c + 1);
        }
    }
    return 0;
}

/* The reverb runs only when a part that plays sends to it. */
static int cz_synth_reverb(cz_synth *s, const cz_score *score, cz_err *err) {
    if (fluid_synth_reverb_on(s->fs, -1, cz_render_stem_sounds(score, CZ_RENDER_REVERB)) !=
        FLUID_OK)
        return cz_err_set(err, "FluidSynth refused to switch its reverb");
    return 0;
}

/* ================================================================ events */

enum { CZ_EV_OFF = 0, CZ_EV_ON = 1 };

typedef struct cz_event {
    uint64_t frame;
    uint32_t seq;
    uint8_t kind, chan, key, vel;
} cz_event;

static int cz_event_cmp(const void *a, const void *b) {
    const cz_event *x = a, *y = b;
    if (x->frame != y->frame)
        return x->frame < y->frame ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static cz_event *cz_events_make(const cz_score *score, unsigned rate, uint64_t total, size_t *n) {
    cz_event *ev = cz_malloc((score->n * 2 + 1) * sizeof *ev);
    size_t k = 0;
    for (size_t i = 0; i < score->n; i++) {
        const cz_score_note *nt = &score->notes[i];
        uint64_t on = cz_score_frame(score, nt->tick, rate);
        uint64_t off = cz_score_frame(score, (uint64_t)nt->tick + nt->len, rate);
        if (on >= total)
            continue;
        ev[k] = (cz_event){on, (uint32_t)k, CZ_EV_ON, nt->chan, nt->key, nt->vel};
        k++;
        if (off < total) {
            ev[k] = (cz_event){off, (uint32_t)k, CZ_EV_OFF, nt->chan, nt->key, 0};
            k++;
        }
    }
    qsort(ev, k, sizeof *ev, cz_event_cmp);
    *n = k;
    return ev;
}

/* ================================================================ playback */

typedef struct cz_run {
    cz_synth syn;
    unsigned rate;
    uint64_t pos, total;  /* frames rendered, frames in the piece */
    uint64_t block_start; /* first frame of the current block */
    size_t fill;          /* frames in the current block */
    uint64_t fade_start;  /* first frame of the fade-out */
    uint64_t next_report; /* frame of the next progress call */
    bool sounds[CZ_RENDER_STEMS];
    float *planar;                 /* [stem][L|R][block] */
    float *stems[CZ_RENDER_STEMS]; /* interleaved blocks, NULL for silent stems */
    float *mix;
    float *dry[2 * CZ_ROLE_COUNT], *fx[4]; /* reverb L R, chorus L R (off) */
    cz_render_progress_fn progress;
    void *user;
    cz_render_sink_fn sink;
    void *sink_user;
} cz_run;

/* Fade gain of frame @p f: a raised cosine reaching zero on the last frame. */
static float cz_run_fade(const cz_run *run, uint64_t f) {
    if (f < run->fade_start)
        return 1.0f;
    double n = (double)(run->total - run->fade_start);
    return (float)(0.5 * (1.0 + cos(CZ_PI * (double)(f - run->fade_start + 1) / n)));
}

static int cz_run_flush(cz_run *run, cz_err *err) {
    size_t n = run->fill;
    if (n == 0)
        return 0;
    memset(run->mix, 0, 2 * n * sizeof(float));
    for (int g = 0; g < CZ_RENDER_STEMS; g++) {
        if (!run->sounds[g])
            continue;
        const float *l = run->planar + (size_t)(2 * g) * CZ_RENDER_BLOCK;
        const float *r = l + CZ_RENDER_BLOCK;
        float *st = run->stems[g];
        for (size_t i = 0; i < n; i++) {
            float gain = cz_run_fade(run, run->block_start + i);
            st[2 * i] = l[i] * gain;
            st[2 * i + 1] = r[i] * gain;
            run->mix[2 * i] += st[2 * i];
            run->mix[2 * i + 1] += st[2 * i + 1];
        }
    }
    if (run->sink(run->sink_user, (const float *const *)run->stems, run->mix, n, err) != 0)
        return -1;
    run->block_start += n;
    run->fill = 0;
    memset(run->planar, 0, (size_t)(2 * CZ_RENDER_STEMS) * CZ_RENDER_BLOCK * sizeof(float));
    return 0;
}

/* Renders up to frame @p until. @returns 0, 1 when canceled, -1 on error. */
static int cz_run_until(cz_run *run, uint64_t until, cz_err *err) {
    while (run->pos < until) {
        size_t n = CZ_RENDER_BLOCK - run->fill;
        if (n > until - run->pos)
            n = (size_t)(until - run->pos);
        float *dry[2 * CZ_ROLE_COUNT], *fx[4];
        for (int i = 0; i < 2 * CZ_ROLE_COUNT; i++)
            dry[i] = run->dry[i] + run->fill;
        for (int i = 0; i < 4; i++)
            fx[i] = run->fx[i] + run->fill;
        if (fluid_synth_process(run->syn.fs, (int)n, 4, fx, 2 * CZ_ROLE_COUNT, dry) != FLUID_OK)
            return cz_err_set(err, "FluidSynth failed to render at frame %llu",
                              (unsigned long long)run->pos);
        run->pos += n;
        run->fill += n;
        if (run->fill == CZ_RENDER_BLOCK && cz_run_flush(run, err) != 0)
            return -1;
        if (run->pos >= run->next_report) {
            run->next_report += run->rate;
            if (run->progress && run->progress(run->user, (double)run->pos / run->total) != 0)
                return 1;
        }
    }
    return 0;
}

static int cz_run_events(cz_run *run, const cz_event *ev, size_t n, cz_err *err) {
    for (size_t i = 0; i < n; i++) {
        int rc = cz_run_until(run, ev[i].frame, err);
        if (rc != 0)
            return rc;
        // A note-off for a voice already gone fails harmlessly; ignore it.
        if (ev[i].kind == CZ_EV_ON)
            fluid_synth_noteon(run->syn.fs, ev[i].chan, ev[i].key, ev[i].vel);
        else
            fluid_synth_noteoff(run->syn.fs, ev[i].chan, ev[i].key);
    }
    int rc = cz_run_until(run, run->total, err);
    return rc != 0 ? rc : cz_run_flush(run, err);
}

static void cz_run_free(cz_run *run) {
    cz_synth_close(&run->syn);
    free(run->planar);
    for (int g = 0; g < CZ_RENDER_STEMS; g++)
        free(run->stems[g]);
    free(run->mix);
}

static void cz_run_alloc(cz_run *run, const cz_score *score) {
    run->planar = cz_calloc((size_t)(2 * CZ_RENDER_STEMS) * CZ_RENDER_BLOCK, sizeof(float));
    run->mix = cz_malloc(2 * CZ_RENDER_BLOCK * sizeof(float));
    for (int g = 0; g < CZ_RENDER_STEMS; g++) {
        float *l = run->planar + (size_t)(2 * g) * CZ_RENDER_BLOCK, *r = l + CZ_RENDER_BLOCK;
        if (g < CZ_ROLE_COUNT) { // a group's dry sound
            run->dry[2 * g] = l;
            run->dry[2 * g + 1] = r;
        } else { // the reverb return; the chorus slot (off) points at it too
            run->fx[0] = run->fx[2] = l;
            run->fx[1] = run->fx[3] = r;
        }
        run->sounds[g] = cz_render_stem_sounds(score, g);
        if (run->sounds[g])
            run->stems[g] = cz_malloc(2 * CZ_RENDER_BLOCK * sizeof(float));
    }
}

/* ================================================================ API */

int cz_render_score(cz_renderer *r, const cz_score *score, cz_render_progress_fn progress,
                    void *user, cz_render_sink_fn sink, void *sink_user, cz_err *err) {
    if (!r || !score || !sink)
        return cz_err_set(err, "render: renderer, score and sink are all required");
    if (!(score->duration_s > 0 && score->duration_s <= 600.0) || !(score->bpm > 0))
        return cz_err_set(err, "render: the score's duration %.3f s or tempo %.1f is unusable",
                          score->duration_s, score->bpm);
    cz_run run = {.rate = r->sample_rate,
                  .total = (uint64_t)llround(score->duration_s * r->sample_rate),
                  .next_report = r->sample_rate,
                  .progress = progress,
                  .user = user,
                  .sink = sink,
                  .sink_user = sink_user};
    double fade = fmin(CZ_RENDER_FADE_S, score->duration_s * 0.3);
    uint64_t fade_frames = (uint64_t)(fade * r->sample_rate);
    run.fade_start = run.total > fade_frames ? run.total - fade_frames : 0;
    size_t n_ev = 0;
    cz_run_alloc(&run, score);
    cz_event *ev = cz_events_make(score, r->sample_rate, run.total, &n_ev);
    int rc = cz_synth_open(&run.syn, r, score->gain, err);
    if (rc == 0)
        rc = cz_synth_setup(&run.syn, score, err);
    if (rc == 0)
        rc = cz_synth_reverb(&run.syn, score, err);
    if (rc == 0)
        rc = cz_run_events(&run, ev, n_ev, err);
    free(ev);
    cz_run_free(&run);
    return rc;
}

/* ---------------------------------------------------------------- in memory */

typedef struct cz_memory_sink {
    float *samples;
    size_t frames, cap;
} cz_memory_sink;

static int cz_memory_block(void *user, const float *const stems[CZ_RENDER_STEMS], const float *mix,
                           size_t frames, cz_err *err) {
    (void)stems;
    cz_memory_sink *m = user;
    if (m->frames + frames > m->cap)
        return cz_err_set(err, "render produced more frames than the piece has");
    memcpy(m->samples + 2 * m->frames, mix, 2 * frames * sizeof(float));
    m->frames += frames;
    return 0;
}

int cz_render_generate(cz_renderer *r, const cz_render_params *p, cz_render_progress_fn progress,
                       void *user, cz_audio *out, cz_err *err) {
    if (!r || !p || !out)
        return cz_err_set(err, "render: renderer, parameters and output are all required");
    memset(out, 0, sizeof *out);
    cz_prompt_fields f = {.genre = p->genre,
                          .mood = p->mood,
                          .key = p->key,
                          .tempo_bpm = p->tempo_bpm,
                          .duration_s = p->duration_s,
                          .n_instruments = -1};
    cz_controls c;
    if (cz_prompt_controls(&f, &c, NULL, err) != 0)
        return -1;
    cz_score score;
    if (cz_compose(&c, p->duration_s, p->seed, &score, NULL, err) != 0)
        return -1;
    cz_memory_sink m = {.cap = (size_t)llround(p->duration_s * r->sample_rate)};
    m.samples = cz_malloc(m.cap * 2 * sizeof(float));
    int rc = cz_render_score(r, &score, progress, user, cz_memory_block, &m, err);
    if (rc == 0 && progress && progress(user, 1.0) != 0)
        rc = 1;
    cz_score_free(&score);
    if (rc != 0) {
        free(m.samples);
        return rc;
    }
    *out = (cz_audio){m.samples, m.frames, 2, r->sample_rate};
    return 0;
}

cz_renderer *cz_render_open(const char *soundfont, unsigned sample_rate, cz_err *err) {
    if (!soundfont || access(soundfont, R_OK) != 0) {
        cz_err_set(err,
                   "SoundFont %s is not readable: install fluid-soundfont-gm or set "
                   "CADENZA_SOUNDFONT to a General MIDI .sf2",
                   soundfont ? soundfont : "(none)");
        return NULL;
    }
    if (sample_rate < 22050 || sample_rate > 96000) {
        cz_err_set(err, "render sample rate %u Hz is outside 22050..96000", sample_rate);
        return NULL;
    }
    cz_renderer *r = cz_calloc(1, sizeof *r);
    r->sample_rate = sample_rate;
    // The holder synth only owns the SoundFont; renders use fresh synths. No
    // mlock: a worker should not pin 140 MB of samples in RAM.
    r->settings = new_fluid_settings();
    if (!r->settings || fluid_settings_setint(r->settings, "synth.lock-memory", 0) != FLUID_OK ||
        !(r->holder = new_fluid_synth(r->settings))) {
        cz_err_set(err, "cannot create the FluidSynth synthesizer");
        cz_render_close(r);
        return NULL;
    }
    int id = fluid_synth_sfload(r->holder, soundfont, 0);
    if (id == FLUID_FAILED || !(r->sfont = fluid_synth_get_sfont_by_id(r->holder, id))) {
        cz_err_set(err, "cannot load SoundFont %s: is it a valid .sf2 file?", soundfont);
        cz_render_close(r);
        return NULL;
    }
    return r;
}

void cz_render_close(cz_renderer *r) {
    if (!r)
        return;
    if (r->holder)
        delete_fluid_synth(r->holder); // frees the SoundFont
    if (r->settings)
        delete_fluid_settings(r->settings);
    free(r);
}
