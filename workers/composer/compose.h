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
 * duration and seed always give the same score. */
#ifndef CZ_COMPOSE_H
#define CZ_COMPOSE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "common/music/prompt.h"
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

#endif
