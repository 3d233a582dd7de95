/* composer@1's composition: controls, a duration and a seed become a score
 * (see score.h) and a plan that says what was chosen.
 *
 * The plan: a style for the genre (style.h), shaded by the moods; a tempo
 * (given, or from the style's range, moods and tempo word, nudged so whole
 * bars fill the piece); a key and mode (given, or from the moods and the
 * seed); instruments for each group (the ones asked for first, then the
 * style's); three chord progressions (verse, chorus, bridge); a form of
 * intro, sections and outro whose bars plus a final held chord fill the
 * duration exactly; and melodic motifs for the verse, chorus and bridge.
 * Then every part is written bar by bar with humanised timing and velocity.
 *
 * Everything random comes from two splitmix64 streams seeded from the job's
 * seed (one for choices, one for humanisation), so the same controls,
 * duration and seed always give the same score.
 *
 * cz_compose_material arranges given material (material.h: a melody and
 * its chords, in sections) instead of writing its own: the same style,
 * instruments, mix, grooves and humanisation; the material's key, tempo
 * (when it has one), sections, chords and tune. */
#ifndef CZ_COMPOSE_H
#define CZ_COMPOSE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "common/music/prompt.h"
#include "workers/composer/material.h"
#include "workers/composer/score.h"

#define CZ_COMPOSE_MIN_S 1.0
#define CZ_COMPOSE_MAX_S 600.0

/**
 * @brief Composes a piece of @p duration_s seconds for @p controls and @p seed.
 * @returns 0 with @p out filled (free with cz_score_free) and, when @p plan is
 * not NULL, *plan set to a JSON object of what was chosen (caller frees); or
 * -1 with @p err filled.
 */
int cz_compose(const cz_controls *controls, double duration_s, uint64_t seed, cz_score *out,
               cJSON **plan, cz_err *err);

/**
 * @brief Arranges material @p m for @p controls and @p seed into a piece of
 * @p duration_s seconds. The plan's style, instruments (plus the style's
 * lead when none would play the tune), mix, grooves and humanisation are
 * cz_compose's for the same controls and seed; the key is the material's,
 * the tempo too when m->bpm is not 0 (else the controls' or the plan's).
 * An intro and an outro frame the given sections, which play in order and
 * again from the first while the next one fits, so that whole 4/4 bars and
 * a final tonic chord fill the duration exactly. The melody part plays the
 * given notes, moved by octaves into its instrument's range; every other
 * part follows the given chords. The plan has "material":
 * {"source": "given", "sections", "bars", "meter", "transpose"} and no
 * "progressions"; each of its form's sections names the given section
 * ("material": index) it plays or borrows chords from.
 * @returns 0 with @p out filled (free with cz_score_free) and, when @p plan
 * is not NULL, *plan set (caller frees); or -1 with @p err filled, naming
 * the material's first problem (cz_material_check) when it has one.
 */
int cz_compose_material(const cz_controls *controls, const cz_material *m, double duration_s,
                        uint64_t seed, cz_score *out, cJSON **plan, cz_err *err);

#endif
