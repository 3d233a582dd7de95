/* The composer's style, mood and instrument tables: see style.h.
 *
 * Every genre token of common/music/prompt.c has a style here (a unit test checks
 * it), and so has every mood and instrument token. The grooves are written
 * as they would be counted: sixteen steps, beats on steps 0, 4, 8 and 12.
 * Programs are General MIDI numbers from 0 (FluidR3_GM names them). */
#include "workers/composer/style.h"

#include <string.h>

/* ================================================================ grooves */

enum { K, S, RIM, CL, H, PH, OH, RD, SH, CG };

#define GROOVE(name, ...) static const cz_groove name = {{__VA_ARGS__}}

// clang-format off
/* lo-fi: a lazy boom bap, swung sixteenths, the snare laid back */
GROOVE(lofi_light, [K] = "X.......X.......", [H] = "x.o.x.o.x.o.x.o.", [RIM] = "....x.......x...");
GROOVE(lofi_main, [K] = "X.......x.x.....", [S] = "....X.......X...", [H] = "x.o.x.o.x.o.x.o.");
GROOVE(lofi_full, [K] = "X.......x.x...x.", [S] = "....X..o....X...", [H] = "x.o.x.oox.o.x.oo");
/* hip hop: boom bap */
GROOVE(hiphop_light, [K] = "X.........X.....", [RIM] = "....x.......x...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(hiphop_main, [K] = "X..x....X.x.....", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(hiphop_full, [K] = "X..x....X.x....x", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X...",
       [OH] = "..............x.");
/* trap: half time, sixteenth hats, the snare on three */
GROOVE(trap_light, [K] = "X...............", [RIM] = "........x.......", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(trap_main, [K] = "X......X..X.....", [S] = "........X.......", [H] = "XxxxXxxxXxxxXxxx");
GROOVE(trap_full, [K] = "X......X..X...x.", [S] = "........X.......", [CL] = "........X.......",
       [H] = "XxxxXxxxXxxXxxxx");
/* jazz: ride "spang-a-lang", hi-hat foot on two and four, feathered kick */
GROOVE(jazz_light, [RD] = "x...x.x.x...x.x.", [PH] = "....x.......x...");
GROOVE(jazz_main, [RD] = "X...x.x.X...x.x.", [PH] = "....x.......x...", [K] = "o...o...o...o...",
       [S] = "......o.......o.");
GROOVE(jazz_full, [RD] = "X...x.x.X...x.x.", [PH] = "....x.......x...", [K] = "o...o...o..xo...",
       [S] = "..o...o...o..x..");
/* blues: shuffle */
GROOVE(blues_light, [K] = "X.......X.......", [RIM] = "....x.......x...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(blues_main, [K] = "X.......X.......", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(blues_full, [K] = "X.....x.X.......", [S] = "....X.......X...", [RD] = "x.x.x.x.x.x.x.x.");
/* bossa nova: clave on the rim, surdo-like kick */
GROOVE(bossa_light, [RIM] = "x..x..x...x..x..", [SH] = "xoxoxoxoxoxoxoxo");
GROOVE(bossa_main, [K] = "X..x....X..x....", [RIM] = "x..x..x...x..x..", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(bossa_full, [K] = "X..x....X..x....", [RIM] = "x..x..x...x..x..", [H] = "X.x.X.x.X.x.X.x.",
       [SH] = "oxoxoxoxoxoxoxox");
/* soft: for styles without drums of their own when drums are asked for */
GROOVE(soft_light, [RD] = "x...x...x...x...", [RIM] = "....o.......o...", [SH] = "..o...o...o...o.");
GROOVE(soft_main, [K] = "X.......x.......", [RIM] = "....o.......o...", [H] = "..o...o...o...o.");
GROOVE(soft_full, [K] = "X.......x.....x.", [S] = "....x.......x...", [H] = "x.o.x.o.x.o.x.o.");
/* cinematic: orchestral bass drum and snare */
GROOVE(cine_light, [K] = "X.......X.......");
GROOVE(cine_main, [K] = "X.......X.......", [S] = "....x.......x...");
GROOVE(cine_full, [K] = "X...X...X...X...", [S] = "....X.......X...");
/* electronic: four on the floor */
GROOVE(edm_light, [K] = "X...X...X...X...", [H] = "..x...x...x...x.");
GROOVE(edm_main, [K] = "X...X...X...X...", [CL] = "....X.......X...", [OH] = "..x...x...x...x.");
GROOVE(edm_full, [K] = "X...X...X...X...", [CL] = "....X.......X...", [OH] = "..x...x...x...x.",
       [H] = ".o.o.o.o.o.o.o.o");
GROOVE(house_main, [K] = "X...X...X...X...", [CL] = "....X.......X...", [OH] = "..x...x...x...x.",
       [SH] = "o.o.o.o.o.o.o.o.");
GROOVE(house_full, [K] = "X...X...X...X...", [CL] = "....X.......X...", [OH] = "..x...x...x...x.",
       [SH] = "o.o.o.o.o.o.o.o.", [CG] = "...x..x....x.x..");
GROOVE(techno_light, [K] = "X...X...X...X...", [H] = ".o.o.o.o.o.o.o.o");
GROOVE(techno_main, [K] = "X...X...X...X...", [H] = "..x...x...x...x.", [CL] = "....x.......x...",
       [SH] = "oooooooooooooooo");
GROOVE(techno_full, [K] = "X...X...X...X...", [OH] = "..x...x...x...x.", [CL] = "....x.......x...",
       [SH] = "oooooooooooooooo");
/* drum and bass: the two-step */
GROOVE(dnb_light, [K] = "X.........X.....", [RIM] = "....x.......x...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(dnb_main, [K] = "X.........X.....", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(dnb_full, [K] = "X.........X..x..", [S] = "....X..o.o..X..o", [H] = "X.x.X.x.X.x.X.x.",
       [SH] = "oooooooooooooooo");
/* synthwave: big snare on two and four */
GROOVE(wave_light, [K] = "X...X...X...X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(wave_main, [K] = "X.......X.......", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(wave_full, [K] = "X.......X.x.....", [S] = "....X.......X...", [CL] = "....x.......x...",
       [H] = "xoxoxoxoxoxoxoxo");
/* rock and pop */
GROOVE(rock_light, [K] = "X.......X.......", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(rock_main, [K] = "X.......X.x.....", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(rock_full, [K] = "X.x.....X.x.....", [S] = "....X.......X...", [RD] = "X.x.X.x.X.x.X.x.");
GROOVE(pop_main, [K] = "X.....x.X.......", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(pop_full, [K] = "X.....x.X.x.....", [S] = "....X.......X...", [CL] = "....x.......x...",
       [H] = "X.x.X.x.X.x.X.xo");
/* folk: brushes of rim and shaker */
GROOVE(folk_light, [K] = "X.......X.......", [RIM] = "....o.......o...", [SH] = "x.o.x.o.x.o.x.o.");
GROOVE(folk_main, [K] = "X.......X.......", [RIM] = "....x.......x...", [SH] = "x.o.x.o.x.o.x.o.");
GROOVE(folk_full, [K] = "X.....x.X.......", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
/* funk: syncopated kick, ghost notes, sixteenth hats */
GROOVE(funk_light, [K] = "X.......X.......", [RIM] = "....x.......x...", [H] = "XoxoXoxoXoxoXoxo");
GROOVE(funk_main, [K] = "X..x..x...X..x..", [S] = "....X..o.o..X..o", [H] = "XoxoXoxoXoxoXoxo");
GROOVE(funk_full, [K] = "X..x..x...X..x.x", [S] = "....X..o.o..X.oo", [H] = "XoxoXoxoXoxoXo.o",
       [OH] = "..............x.");
/* reggae: one drop */
GROOVE(reggae_light, [H] = "X.x.X.x.X.x.X.x.", [RIM] = "........x.......");
GROOVE(reggae_main, [K] = "........X.......", [RIM] = "........X.......", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(reggae_full, [K] = "........X.......", [S] = "........X.......", [H] = "X.x.X.x.X.x.X.x.",
       [OH] = "......x.......x.");
/* r&b: slow, swung sixteenths */
GROOVE(rnb_light, [K] = "X.......X.......", [H] = "X.x.X.x.X.x.X.x.", [RIM] = "....x.......x...");
GROOVE(rnb_main, [K] = "X......x..X.....", [S] = "....X.......X...", [H] = "X.x.X.x.X.x.X.x.");
GROOVE(rnb_full, [K] = "X......x..X...x.", [S] = "....X.......X...", [CL] = "....x.......x...",
       [H] = "x.xox.x.x.xox.x.");

/* ================================================================ progressions */

#define PROGS(name, ...) static const char *const name[] = {__VA_ARGS__, NULL}

PROGS(lofi_maj, "ii7 V7 Imaj7 vi7", "Imaj7 vi7 ii7 V7", "IVmaj7 V7 iii7 vi7", "Imaj7 IVmaj7 iii7 vi7");
PROGS(lofi_min, "i7 iv7 bVII7 bIIImaj7", "i7 bVImaj7 iv7 v7", "i9 iv9 i9 v7", "bVImaj7 v7 i7 i7");
PROGS(hiphop_maj, "Imaj7 vi7 ii7 V7", "IVmaj7 iii7 ii7 Imaj7");
PROGS(hiphop_min, "i bVI iv v", "i7 iv7 i7 v7", "i bVII bVI bVII");
PROGS(trap_maj, "vi IV I V", "I V vi IV");
PROGS(trap_min, "i bVI", "i bVI iv V", "i iv bVI bVII", "i i bVI V");
PROGS(jazz_maj, "Imaj7 vi7 ii7 V7", "iii7 vi7 ii7 V7", "ii7 V7 Imaj7 Imaj7", "Imaj7 I7 IVmaj7 iv7");
PROGS(jazz_min, "i7 iv7 ii7b5 V7", "i7 bVImaj7 ii7b5 V7", "i7 i7 iv7 V7");
PROGS(blues_maj, "I7 I7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7", "I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7");
PROGS(blues_min, "i7 i7 i7 i7 iv7 iv7 i7 i7 bVI7 V7 i7 V7");
PROGS(bossa_maj, "Imaj7 II7 ii7 V7", "Imaj7 vi7 ii7 V7", "ii7 V7 Imaj7 IVmaj7");
PROGS(bossa_min, "i7 iv7 bVII7 bIIImaj7", "i7 ii7b5 V7 i7");
PROGS(ambient_maj, "Imaj7 IVmaj7", "Iadd9 vi7 IVmaj7 Iadd9", "I iii IV IV");
PROGS(ambient_min, "i9 bVImaj7", "i bVI bIII bVII", "i7 iv7");
PROGS(cine_maj, "I V vi IV", "I iii IV V", "IV I V vi", "I bVI bVII I");
PROGS(cine_min, "i bVI bIII bVII", "i iv bVI V", "i bVI iv V", "i bVII bVI V");
PROGS(classical_maj, "I IV V I", "I vi ii V", "I V vi iii IV I IV V");
PROGS(classical_min, "i iv V i", "i bVI iv V", "i iv bVII bIII bVI iidim V i");
PROGS(edm_maj, "vi IV I V", "I V vi IV", "IV V vi vi");
PROGS(edm_min, "i bVI bIII bVII", "i bVII bVI bVII", "i bIII bVII iv");
PROGS(house_maj, "IVmaj7 V7 iii7 vi7", "ii7 iii7 IVmaj7 V7", "Imaj7 vi7 ii7 V7");
PROGS(house_min, "i7 iv7", "i7 bVII7 bVImaj7 v7", "i9 iv9");
PROGS(techno_maj, "I bVII", "I IV");
PROGS(techno_min, "i", "i bVII", "i i bVI bVII");
PROGS(dnb_maj, "IVmaj7 iii7 vi7 Imaj7", "Imaj7 vi7 IVmaj7 V7");
PROGS(dnb_min, "i bVI bIII bVII", "i7 bVImaj7", "i7 iv7 bVImaj7 v7");
PROGS(wave_maj, "vi IV I V", "I V vi IV");
PROGS(wave_min, "i bVI bIII bVII", "i bVII bVI bVII", "i bVI bVII i");
PROGS(rock_maj, "I bVII IV I", "I IV V IV", "I V vi IV", "vi IV I V");
PROGS(rock_min, "i bVI bVII i", "i bVII bVI bVII", "i iv bVII i");
PROGS(pop_maj, "I V vi IV", "vi IV I V", "I vi IV V", "IV I V vi", "I IV vi V");
PROGS(pop_min, "i bVI bIII bVII", "i bVII bVI bVII", "i iv bVI bVII");
PROGS(folk_maj, "I IV I V", "I V vi IV", "I IV vi V", "I I IV I");
PROGS(folk_min, "i bVII bVI bVII", "i bIII bVII i", "i iv i V");
PROGS(funk_maj, "I7 IV7", "I9 I9 IV9 IV9", "ii7 V7");
PROGS(funk_min, "i7 IV7", "i7 iv7", "i9 i9 IV9 IV9");
PROGS(reggae_maj, "I IV V IV", "I V vi IV", "I IV I V");
PROGS(reggae_min, "i bVII", "i iv", "i bVII bVI bVII");
PROGS(rnb_maj, "IVmaj7 iii7 ii7 Imaj7", "Imaj7 vi7 ii7 V7", "ii7 iii7 IVmaj7 V7");
PROGS(rnb_min, "i7 iv7 bVIImaj7 bIIImaj7", "i9 iv9", "i7 bVImaj7 v7 i7");

/* ================================================================ styles */

#define HBPMD (CZ_ROLE_BIT(CZ_ROLE_HARMONY) | CZ_ROLE_BIT(CZ_ROLE_BASS) | \
               CZ_ROLE_BIT(CZ_ROLE_PAD) | CZ_ROLE_BIT(CZ_ROLE_MELODY) | CZ_ROLE_BIT(CZ_ROLE_DRUMS))
#define NO(r) (HBPMD & ~CZ_ROLE_BIT(r))

static const cz_style cz_style_table[] = {
    {.genre = "lofi", .bpm_lo = 70, .bpm_hi = 90, .swing16 = 0.28, .laid_back_ms = 14, .kit = 8,
     .roles = HBPMD, .harmony = {4, 0}, .bass = {33, 32}, .pad = {89, 52}, .melody = {11, 73},
     .guitar = 26, .synth = 89, .lead = 80, .arp = 11,
     .groove = {&lofi_light, &lofi_main, &lofi_full},
     .bass_line = {"R-----.r--5---a-", "R-------r-5-.-a-"}, .comp = {"X--------x------", "X-----x---------"},
     .arp_line = "0123", .arp_step = 2, .extensions = 2, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 0, .reverb = 50, .trim_db = 0,
     .major = lofi_maj, .minor = lofi_min},
    {.genre = "hiphop", .bpm_lo = 84, .bpm_hi = 96, .swing16 = 0.2, .laid_back_ms = 8, .kit = 0,
     .roles = NO(CZ_ROLE_PAD), .harmony = {0, 4}, .bass = {33, 38}, .pad = {48, 89}, .melody = {73, 11},
     .guitar = 26, .synth = 90, .lead = 80, .arp = 10,
     .groove = {&hiphop_light, &hiphop_main, &hiphop_full},
     .bass_line = {"R-.....rR-....5.", "R-------R-.r....", }, .comp = {"X-------........", "X-------x-------"},
     .arp_line = "0213", .arp_step = 2, .extensions = 1, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 1, .reverb = 40, .trim_db = 0,
     .major = hiphop_maj, .minor = hiphop_min},
    {.genre = "trap", .bpm_lo = 130, .bpm_hi = 150, .kit = 25, .roles = HBPMD,
     .harmony = {0, 88}, .bass = {38, 39}, .pad = {89, 52}, .melody = {10, 81},
     .guitar = 24, .synth = 88, .lead = 81, .arp = 10,
     .groove = {&trap_light, &trap_main, &trap_full},
     .bass_line = {"R------R--R-----", "R-------..R-----"}, .comp = {"X---------------", "X-------X-------"},
     .arp_line = "0121", .arp_step = 2, .extensions = 0, .beats_per_chord = 8, .section_bars = 8,
     .arps = 1, .melody_density = 1, .minor_bias = 1, .reverb = 40, .trim_db = -1,
     .major = trap_maj, .minor = trap_min},
    {.genre = "jazz", .bpm_lo = 100, .bpm_hi = 150, .swing8 = 0.67, .kit = 32,
     .roles = NO(CZ_ROLE_PAD), .harmony = {0, 26}, .bass = {32, 32}, .pad = {48, 52}, .melody = {65, 11},
     .guitar = 26, .synth = 4, .lead = 65, .arp = 0,
     .groove = {&jazz_light, &jazz_main, &jazz_full},
     .bass_line = {"walk", "walk"}, .comp = {"x-....x-........", "..x-.....x-....."},
     .arp_line = "0123", .arp_step = 2, .extensions = 2, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 2, .minor_bias = 0, .reverb = 45, .trim_db = 1,
     .major = jazz_maj, .minor = jazz_min},
    {.genre = "blues", .bpm_lo = 72, .bpm_hi = 100, .swing8 = 0.67, .kit = 0,
     .roles = NO(CZ_ROLE_PAD), .harmony = {0, 16}, .bass = {32, 33}, .pad = {16, 48}, .melody = {65, 26},
     .guitar = 26, .synth = 16, .lead = 65, .arp = 0,
     .groove = {&blues_light, &blues_main, &blues_full},
     .bass_line = {"R.3.5.6.8.6.5.3.", "R.3.5.6.8.6.5.3."}, .comp = {"..x-..x-..x-..x-", "x-..x-..x-..x-.."},
     .arp_line = "0123", .arp_step = 2, .extensions = 1, .beats_per_chord = 4, .section_bars = 12,
     .melody_density = 1, .minor_bias = -1, .reverb = 40, .trim_db = 1,
     .major = blues_maj, .minor = blues_min},
    {.genre = "bossa", .bpm_lo = 120, .bpm_hi = 140, .kit = 0, .roles = NO(CZ_ROLE_PAD),
     .harmony = {24, 0}, .bass = {32, 33}, .pad = {48, 52}, .melody = {73, 65},
     .guitar = 24, .synth = 4, .lead = 73, .arp = 24,
     .groove = {&bossa_light, &bossa_main, &bossa_full},
     .bass_line = {"R-----5-R-----5-", "R-----5-R-----5-"}, .comp = {"x..x..x...x..x..", "x.x..x.x..x..x.."},
     .arp_line = "0213", .arp_step = 2, .extensions = 1, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 0, .reverb = 45, .trim_db = 1,
     .major = bossa_maj, .minor = bossa_min},
    {.genre = "ambient", .bpm_lo = 60, .bpm_hi = 80, .kit = 0,
     .roles = CZ_ROLE_BIT(CZ_ROLE_HARMONY) | CZ_ROLE_BIT(CZ_ROLE_PAD) | CZ_ROLE_BIT(CZ_ROLE_MELODY),
     .harmony = {0, 46}, .bass = {32, 89}, .pad = {94, 89}, .melody = {98, 0},
     .guitar = 24, .synth = 89, .lead = 98, .arp = 98,
     .groove = {&soft_light, &soft_main, &soft_full},
     .bass_line = {"R---------------", "R---------------"}, .comp = {"X---------------", "X-------x-------"},
     .arp_line = "0123", .arp_step = 4, .extensions = 2, .beats_per_chord = 8, .section_bars = 8,
     .arps = 1, .melody_density = 0, .minor_bias = 0, .reverb = 90, .trim_db = 6,
     .major = ambient_maj, .minor = ambient_min},
    {.genre = "cinematic", .bpm_lo = 70, .bpm_hi = 100, .kit = 48,
     .roles = NO(CZ_ROLE_DRUMS), .harmony = {48, 49}, .bass = {43, 42}, .pad = {52, 60}, .melody = {60, 40},
     .guitar = 24, .synth = 50, .lead = 40, .arp = 46,
     .groove = {&cine_light, &cine_main, &cine_full},
     .bass_line = {"R-------R-------", "R---------------"}, .comp = {"X---------------", "X-------X-------"},
     .arp_line = "0123", .arp_step = 2, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .arps = 1, .melody_density = 0, .minor_bias = 1, .reverb = 80, .trim_db = 0,
     .major = cine_maj, .minor = cine_min},
    {.genre = "classical", .bpm_lo = 70, .bpm_hi = 110, .kit = 48,
     .roles = CZ_ROLE_BIT(CZ_ROLE_HARMONY) | CZ_ROLE_BIT(CZ_ROLE_BASS) | CZ_ROLE_BIT(CZ_ROLE_MELODY),
     .harmony = {0, 48}, .bass = {42, 43}, .pad = {48, 49}, .melody = {40, 73},
     .guitar = 24, .synth = 48, .lead = 40, .arp = 0,
     .groove = {&soft_light, &soft_main, &soft_full},
     .bass_line = {"R-------5-------", "R-------R-------"}, .comp = {"X-------x-------", "X---x---x---x---"},
     .arp_line = "0212", .arp_step = 2, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .arps = 1, .melody_density = 1, .minor_bias = 0, .reverb = 70, .trim_db = 1,
     .major = classical_maj, .minor = classical_min},
    {.genre = "electronic", .bpm_lo = 120, .bpm_hi = 128, .kit = 24, .roles = HBPMD,
     .harmony = {62, 81}, .bass = {38, 39}, .pad = {89, 95}, .melody = {81, 80},
     .guitar = 27, .synth = 90, .lead = 81, .arp = 81,
     .groove = {&edm_light, &edm_main, &edm_full},
     .bass_line = {"..R-..R-..R-..8-", "R.r.r.r.R.r.r.r."}, .comp = {"X---------------", ".x.x.x.x.x.x.x.x"},
     .arp_line = "0123", .arp_step = 1, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .arps = 1, .melody_density = 1, .minor_bias = 1, .reverb = 50, .trim_db = -3,
     .major = edm_maj, .minor = edm_min},
    {.genre = "house", .bpm_lo = 118, .bpm_hi = 126, .swing16 = 0.1, .kit = 24, .roles = HBPMD,
     .harmony = {0, 16}, .bass = {38, 33}, .pad = {89, 50}, .melody = {80, 11},
     .guitar = 27, .synth = 90, .lead = 80, .arp = 81,
     .groove = {&edm_light, &house_main, &house_full},
     .bass_line = {"..R-..R-..R-..8-", "R..R..R.R..R..5."}, .comp = {"..x...x..x...x..", "..x-..x-..x-..x-"},
     .arp_line = "0123", .arp_step = 2, .extensions = 1, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 1, .reverb = 45, .trim_db = -2,
     .major = house_maj, .minor = house_min},
    {.genre = "techno", .bpm_lo = 124, .bpm_hi = 132, .kit = 24,
     .roles = NO(CZ_ROLE_MELODY), .harmony = {62, 88}, .bass = {38, 39}, .pad = {95, 89}, .melody = {81, 80},
     .guitar = 27, .synth = 90, .lead = 81, .arp = 81,
     .groove = {&techno_light, &techno_main, &techno_full},
     .bass_line = {"..R...R...R...R.", "..r.r.r...r.r.r."}, .comp = {"..x.......x.....", "......x.......x."},
     .arp_line = "0102", .arp_step = 1, .extensions = 0, .beats_per_chord = 8, .section_bars = 8,
     .arps = 1, .melody_density = 0, .minor_bias = 1, .reverb = 45, .trim_db = -3,
     .major = techno_maj, .minor = techno_min},
    {.genre = "dnb", .bpm_lo = 168, .bpm_hi = 176, .kit = 0, .roles = HBPMD,
     .harmony = {4, 89}, .bass = {38, 39}, .pad = {89, 50}, .melody = {81, 73},
     .guitar = 27, .synth = 89, .lead = 81, .arp = 81,
     .groove = {&dnb_light, &dnb_main, &dnb_full},
     .bass_line = {"R-------..r-5-..", "R---------R-----"}, .comp = {"X---------------", "X-------X-------"},
     .arp_line = "0123", .arp_step = 2, .extensions = 1, .beats_per_chord = 8, .section_bars = 8,
     .melody_density = 0, .minor_bias = 1, .reverb = 50, .trim_db = -2,
     .major = dnb_maj, .minor = dnb_min},
    {.genre = "synthwave", .bpm_lo = 100, .bpm_hi = 118, .kit = 16, .roles = HBPMD,
     .harmony = {62, 81}, .bass = {38, 39}, .pad = {89, 50}, .melody = {81, 80},
     .guitar = 29, .synth = 90, .lead = 81, .arp = 81,
     .groove = {&wave_light, &wave_main, &wave_full},
     .bass_line = {"R.8.R.8.R.8.R.8.", "R.r.r.r.r.r.r.r."}, .comp = {"X-------X-------", "X---------------"},
     .arp_line = "0123", .arp_step = 1, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .arps = 1, .melody_density = 1, .minor_bias = 1, .reverb = 55, .trim_db = -3,
     .major = wave_maj, .minor = wave_min},
    {.genre = "rock", .bpm_lo = 105, .bpm_hi = 135, .kit = 16, .roles = NO(CZ_ROLE_PAD),
     .harmony = {29, 27}, .bass = {34, 33}, .pad = {18, 48}, .melody = {30, 81},
     .guitar = 29, .synth = 90, .lead = 30, .arp = 27,
     .groove = {&rock_light, &rock_main, &rock_full},
     .bass_line = {"R.r.r.r.r.r.r.r.", "R---..r.R---..5."}, .comp = {"X.x.X.x.X.x.X.x.", "X---x-x-X---x-x-"},
     .arp_line = "0121", .arp_step = 2, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 0, .reverb = 35, .trim_db = -4,
     .major = rock_maj, .minor = rock_min},
    {.genre = "pop", .bpm_lo = 96, .bpm_hi = 124, .kit = 0, .roles = HBPMD,
     .harmony = {0, 25}, .bass = {33, 34}, .pad = {48, 89}, .melody = {80, 0},
     .guitar = 25, .synth = 90, .lead = 80, .arp = 0,
     .groove = {&rock_light, &pop_main, &pop_full},
     .bass_line = {"R---..r.R---..5.", "R.r.r.r.R.r.r.r."}, .comp = {"X---x---X---x---", "X-----x-X-------"},
     .arp_line = "0123", .arp_step = 2, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = -1, .reverb = 45, .trim_db = -2,
     .major = pop_maj, .minor = pop_min},
    {.genre = "folk", .bpm_lo = 84, .bpm_hi = 116, .kit = 8, .roles = NO(CZ_ROLE_PAD),
     .harmony = {25, 24}, .bass = {32, 33}, .pad = {48, 21}, .melody = {73, 110},
     .guitar = 25, .synth = 21, .lead = 73, .arp = 25,
     .groove = {&folk_light, &folk_main, &folk_full},
     .bass_line = {"R-------5-------", "R---....5---...."}, .comp = {"X...x.x...x.x.x.", "X.x.X.x.X.x.X.x."},
     .arp_line = "0213", .arp_step = 2, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = -1, .reverb = 50, .trim_db = 1,
     .major = folk_maj, .minor = folk_min},
    {.genre = "funk", .bpm_lo = 96, .bpm_hi = 112, .swing16 = 0.08, .kit = 0, .roles = NO(CZ_ROLE_PAD),
     .harmony = {28, 7}, .bass = {36, 33}, .pad = {16, 61}, .melody = {65, 56},
     .guitar = 28, .synth = 7, .lead = 65, .arp = 7,
     .groove = {&funk_light, &funk_main, &funk_full},
     .bass_line = {"R..r..8..r.5r.7.", "R..8..r.r..5.7r."}, .comp = {"..x..x.x..x..x.x", ".x.x.x..x.x.x..."},
     .arp_line = "0121", .arp_step = 1, .extensions = 2, .beats_per_chord = 8, .section_bars = 8,
     .melody_density = 1, .minor_bias = 0, .reverb = 30, .trim_db = -1,
     .major = funk_maj, .minor = funk_min},
    {.genre = "reggae", .bpm_lo = 68, .bpm_hi = 84, .swing8 = 0.3, .kit = 0, .roles = NO(CZ_ROLE_PAD),
     .harmony = {27, 16}, .bass = {33, 32}, .pad = {16, 18}, .melody = {65, 22},
     .guitar = 27, .synth = 16, .lead = 65, .arp = 27,
     .groove = {&reggae_light, &reggae_main, &reggae_full},
     .bass_line = {"..R-.r5-8--.5-r.", "R--.r.5.8--.5.r."}, .comp = {"..x...x...x...x.", "....x.......x..."},
     .arp_line = "0123", .arp_step = 2, .extensions = 0, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 0, .reverb = 40, .trim_db = 0,
     .major = reggae_maj, .minor = reggae_min},
    {.genre = "rnb", .bpm_lo = 70, .bpm_hi = 92, .swing16 = 0.22, .laid_back_ms = 10, .kit = 0,
     .roles = HBPMD, .harmony = {4, 0}, .bass = {33, 38}, .pad = {48, 89}, .melody = {11, 65},
     .guitar = 26, .synth = 4, .lead = 65, .arp = 4,
     .groove = {&rnb_light, &rnb_main, &rnb_full},
     .bass_line = {"R-----r-..5-.-a-", "R-------r---5-a-"}, .comp = {"X-----x---------", "X-------.x------"},
     .arp_line = "0123", .arp_step = 2, .extensions = 2, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 0, .reverb = 50, .trim_db = 0,
     .major = rnb_maj, .minor = rnb_min},
    /* the default, for prompts that name no genre: gentle pop */
    {.genre = "", .bpm_lo = 84, .bpm_hi = 112, .kit = 0, .roles = HBPMD,
     .harmony = {0, 4}, .bass = {33, 32}, .pad = {89, 48}, .melody = {73, 11},
     .guitar = 25, .synth = 90, .lead = 80, .arp = 0,
     .groove = {&soft_light, &pop_main, &pop_full},
     .bass_line = {"R---..r.R---..5.", "R-------5-------"}, .comp = {"X---x---X---x---", "X-------X-------"},
     .arp_line = "0123", .arp_step = 2, .extensions = 1, .beats_per_chord = 4, .section_bars = 8,
     .melody_density = 1, .minor_bias = 0, .reverb = 50, .trim_db = -1,
     .major = pop_maj, .minor = pop_min},
};

/* ================================================================ moods */

static const cz_mood cz_mood_table[] = {
    {"happy", 1.0, 0.5, -1, 0},       {"sad", -1.0, -0.5, 1, 10},
    {"melancholic", -0.6, -0.3, 1, 10}, {"calm", 0.2, -0.8, 0, 15},
    {"chill", 0.2, -0.5, 0, 5},       {"energetic", 0.3, 1.0, 0, -10},
    {"dark", -0.8, 0.2, 1, 10},       {"dreamy", 0.3, -0.5, 0, 30},
    {"romantic", 0.4, -0.3, -1, 10},  {"epic", 0.1, 0.8, 1, 20},
    {"tense", -0.6, 0.6, 1, 0},       {"uplifting", 0.9, 0.6, -1, 10},
    {"warm", 0.5, -0.2, -1, 5},       {"nostalgic", 0.0, -0.1, 0, 10},
    {"playful", 0.8, 0.4, -1, -5},    {"mysterious", -0.5, -0.2, 1, 20},
    {"aggressive", -0.4, 1.0, 1, -15}, {"groovy", 0.4, 0.4, 0, -5},
};

/* ================================================================ instruments */

#define H CZ_ROLE_HARMONY
#define B CZ_ROLE_BASS
#define P CZ_ROLE_PAD
#define M CZ_ROLE_MELODY
#define D CZ_ROLE_DRUMS
#define NONE CZ_ROLE_NONE

static const cz_instrument cz_instrument_table[] = {
    {"piano", 0, H, M, 67, 86, 0},          {"rhodes", 4, H, M, 65, 84, 0},
    {"wurlitzer", 5, H, M, 65, 84, 0},      {"organ", 16, H, P, 62, 82, CZ_INS_SUSTAIN},
    {"church-organ", 19, P, H, 62, 82, CZ_INS_SUSTAIN}, {"harpsichord", 6, H, M, 67, 86, 0},
    {"clavinet", 7, H, M, 62, 82, 0},       {"celesta", 8, M, H, 72, 91, 0},
    {"glockenspiel", 9, M, H, 76, 96, 0},   {"music-box", 10, M, H, 72, 91, 0},
    {"vibraphone", 11, M, H, 65, 86, 0},    {"marimba", 12, M, H, 62, 84, 0},
    {"xylophone", 13, M, H, 72, 91, 0},     {"tubular-bells", 14, M, H, 62, 79, 0},
    {"guitar", -1, H, M, 60, 79, CZ_INS_STYLE},
    {"acoustic-guitar", 25, H, M, 60, 79, 0}, {"nylon-guitar", 24, H, M, 60, 79, 0},
    {"jazz-guitar", 26, H, M, 58, 77, 0},   {"electric-guitar", 27, H, M, 60, 82, 0},
    {"distorted-guitar", 30, H, M, 60, 82, 0}, {"muted-guitar", 28, H, M, 58, 77, 0},
    {"ukulele", 24, H, M, 62, 79, 0},       {"banjo", 105, H, M, 62, 81, 0},
    {"mandolin", 25, M, H, 67, 86, 0},      {"sitar", 104, M, H, 60, 79, 0},
    {"koto", 107, M, H, 62, 81, 0},         {"kalimba", 108, M, H, 67, 84, 0},
    {"harp", 46, H, M, 60, 84, 0},
    {"bass", -1, B, NONE, 28, 52, CZ_INS_STYLE}, {"upright-bass", 32, B, NONE, 28, 52, 0},
    {"fretless-bass", 35, B, NONE, 28, 52, 0}, {"slap-bass", 36, B, NONE, 28, 52, 0},
    {"synth-bass", 38, B, NONE, 28, 52, 0}, {"808", 38, B, NONE, 24, 48, 0},
    {"strings", 48, P, H, 62, 84, CZ_INS_SUSTAIN}, {"synth-strings", 50, P, H, 62, 84, CZ_INS_SUSTAIN},
    {"violin", 40, M, P, 67, 88, 0},        {"viola", 41, M, P, 60, 79, 0},
    {"cello", 42, M, B, 48, 69, 0},         {"pizzicato", 45, H, M, 60, 81, 0},
    {"choir", 52, P, M, 60, 79, CZ_INS_SUSTAIN},
    {"trumpet", 56, M, P, 62, 82, 0},       {"muted-trumpet", 59, M, P, 62, 82, 0},
    {"trombone", 57, M, P, 50, 70, 0},      {"tuba", 58, B, M, 28, 52, 0},
    {"french-horn", 60, P, M, 55, 74, CZ_INS_SUSTAIN}, {"brass", 61, H, P, 58, 79, 0},
    {"sax", 65, M, P, 61, 80, 0},           {"tenor-sax", 66, M, P, 56, 75, 0},
    {"soprano-sax", 64, M, P, 64, 84, 0},   {"baritone-sax", 67, M, B, 48, 67, 0},
    {"oboe", 68, M, P, 62, 84, 0},          {"bassoon", 70, M, B, 46, 67, 0},
    {"clarinet", 71, M, P, 60, 82, 0},      {"piccolo", 72, M, P, 76, 96, 0},
    {"flute", 73, M, P, 67, 91, 0},         {"recorder", 74, M, P, 72, 91, 0},
    {"pan-flute", 75, M, P, 67, 86, 0},     {"whistle", 78, M, P, 74, 93, 0},
    {"ocarina", 79, M, P, 72, 91, 0},       {"harmonica", 22, M, H, 62, 81, 0},
    {"accordion", 21, H, M, 62, 81, 0},     {"bagpipes", 109, M, P, 67, 81, 0},
    {"fiddle", 110, M, P, 67, 88, 0},       {"steel-drums", 114, M, H, 62, 84, 0},
    {"synth-lead", -1, M, H, 65, 86, CZ_INS_STYLE}, {"pad", -1, P, H, 55, 79, CZ_INS_SUSTAIN | CZ_INS_STYLE},
    {"synth", -1, H, P, 60, 82, CZ_INS_STYLE}, {"arp", -1, H, M, 60, 84, CZ_INS_STYLE},
    {"drums", -1, D, NONE, 0, 0, CZ_INS_KIT | CZ_INS_STYLE}, {"drum-machine", 25, D, NONE, 0, 0, CZ_INS_KIT},
    {"brushes", 40, D, NONE, 0, 0, CZ_INS_KIT}, {"percussion", -1, D, NONE, 0, 0, CZ_INS_KIT | CZ_INS_STYLE | CZ_INS_PERC},
    {"timpani", 47, D, NONE, 36, 55, CZ_INS_TUNED}, {"taiko", 116, D, NONE, 36, 55, CZ_INS_TUNED},
};
// clang-format on

#undef H
#undef B
#undef P
#undef M
#undef D
#undef NONE

/* ================================================================ lookups */

const cz_style *cz_styles(size_t *n) {
    *n = sizeof cz_style_table / sizeof cz_style_table[0];
    return cz_style_table;
}

const cz_style *cz_style_find(const char *genre) {
    size_t n = sizeof cz_style_table / sizeof cz_style_table[0];
    for (size_t i = 0; genre && *genre && i + 1 < n; i++)
        if (!strcmp(cz_style_table[i].genre, genre))
            return &cz_style_table[i];
    return &cz_style_table[n - 1];
}

const cz_mood *cz_mood_find(const char *token) {
    for (size_t i = 0; token && i < sizeof cz_mood_table / sizeof cz_mood_table[0]; i++)
        if (!strcmp(cz_mood_table[i].token, token))
            return &cz_mood_table[i];
    return NULL;
}

const cz_instrument *cz_instrument_find(const char *token) {
    for (size_t i = 0; token && i < sizeof cz_instrument_table / sizeof cz_instrument_table[0]; i++)
        if (!strcmp(cz_instrument_table[i].token, token))
            return &cz_instrument_table[i];
    return NULL;
}

const cz_instrument *cz_instrument_for_program(int program) {
    for (size_t i = 0; i < sizeof cz_instrument_table / sizeof cz_instrument_table[0]; i++)
        if (cz_instrument_table[i].program == program &&
            !(cz_instrument_table[i].flags & (CZ_INS_KIT | CZ_INS_TUNED)))
            return &cz_instrument_table[i];
    return NULL;
}

int cz_instrument_program(const cz_instrument *ins, const cz_style *style) {
    if (!(ins->flags & CZ_INS_STYLE))
        return ins->program;
    const char *t = ins->token;
    return !strcmp(t, "guitar")       ? style->guitar
           : !strcmp(t, "synth")      ? style->synth
           : !strcmp(t, "synth-lead") ? style->lead
           : !strcmp(t, "arp")        ? style->arp
           : !strcmp(t, "pad")        ? style->pad[0]
           : !strcmp(t, "bass")       ? style->bass[0]
                                      : style->kit; // drums, percussion
}

const char *cz_program_name(int program) {
    static const char *const names[128] = {
        "acoustic-grand-piano",
        "bright-piano",
        "electric-grand-piano",
        "honky-tonk-piano",
        "rhodes",
        "electric-piano-2",
        "harpsichord",
        "clavinet",
        "celesta",
        "glockenspiel",
        "music-box",
        "vibraphone",
        "marimba",
        "xylophone",
        "tubular-bells",
        "dulcimer",
        "drawbar-organ",
        "percussive-organ",
        "rock-organ",
        "church-organ",
        "reed-organ",
        "accordion",
        "harmonica",
        "bandoneon",
        "nylon-guitar",
        "steel-guitar",
        "jazz-guitar",
        "clean-guitar",
        "muted-guitar",
        "overdriven-guitar",
        "distortion-guitar",
        "guitar-harmonics",
        "acoustic-bass",
        "fingered-bass",
        "picked-bass",
        "fretless-bass",
        "slap-bass",
        "pop-bass",
        "synth-bass",
        "synth-bass-2",
        "violin",
        "viola",
        "cello",
        "contrabass",
        "tremolo-strings",
        "pizzicato-strings",
        "harp",
        "timpani",
        "strings",
        "slow-strings",
        "synth-strings",
        "synth-strings-2",
        "choir",
        "voice-oohs",
        "synth-voice",
        "orchestra-hit",
        "trumpet",
        "trombone",
        "tuba",
        "muted-trumpet",
        "french-horn",
        "brass-section",
        "synth-brass",
        "synth-brass-2",
        "soprano-sax",
        "alto-sax",
        "tenor-sax",
        "baritone-sax",
        "oboe",
        "english-horn",
        "bassoon",
        "clarinet",
        "piccolo",
        "flute",
        "recorder",
        "pan-flute",
        "bottle",
        "shakuhachi",
        "whistle",
        "ocarina",
        "square-lead",
        "saw-lead",
        "calliope-lead",
        "chiff-lead",
        "charang",
        "solo-vox",
        "fifths-lead",
        "bass-and-lead",
        "fantasia-pad",
        "warm-pad",
        "polysynth",
        "space-voice",
        "bowed-glass",
        "metal-pad",
        "halo-pad",
        "sweep-pad",
        "ice-rain",
        "soundtrack",
        "crystal",
        "atmosphere",
        "brightness",
        "goblin",
        "echo-drops",
        "star-theme",
        "sitar",
        "banjo",
        "shamisen",
        "koto",
        "kalimba",
        "bagpipes",
        "fiddle",
        "shanai",
        "tinkle-bell",
        "agogo",
        "steel-drums",
        "woodblock",
        "taiko",
        "melodic-tom",
        "synth-drum",
        "reverse-cymbal",
        "fret-noise",
        "breath-noise",
        "seashore",
        "bird-tweet",
        "telephone",
        "helicopter",
        "applause",
        "gunshot",
    };
    return program >= 0 && program < 128 ? names[program] : "unknown";
}

const char *cz_role_name(cz_role r) {
    static const char *const names[CZ_ROLE_COUNT] = {"harmony", "bass", "pad", "melody", "drums"};
    return r >= 0 && r < CZ_ROLE_COUNT ? names[r] : "none";
}

int cz_lane_key(cz_lane lane) {
    static const int keys[CZ_LANE_COUNT] = {36, 38, 37, 39, 42, 44, 46, 51, 70, 63};
    return keys[lane];
}
