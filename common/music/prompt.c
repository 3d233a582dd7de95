/* Prompt to controls: see prompt.h.
 *
 * How a prompt is read. The text is cut into words: ASCII letters are lower-
 * cased, hyphens, slashes and most punctuation separate words ("lo-fi" reads
 * as "lo fi"), while '#', '&', ':' and a '.' inside a number stay in the word
 * ("F#m", "r&b", "1:30", "2.5"). Then, from left to right, the reader tries
 * in order:
 *
 *   1. a key: a note and a mode ("A minor", "f sharp minor", "F#m", "Bbmaj"),
 *      or "in"/"key of" and a capital note ("in C");
 *   2. a number with a unit: a tempo ("82 bpm", "82bpm", "tempo 82") or a
 *      duration ("45 seconds", "45s", "2 minutes", "2min", "1:30", "two
 *      minutes", "a minute and a half"); a decade ("80s", "nineties") reads
 *      as the mood "nostalgic", never as seconds;
 *   3. the longest phrase of the vocabulary table (up to four words) that
 *      starts here: genres, moods, instruments, textures, tempo feels,
 *      modes, "solo"/"only", "no"/"without" and filler words;
 *   4. otherwise the word is ignored and listed.
 *
 * The last genre named is the primary one (the head of "jazzy hip hop" is
 * hip hop) and an earlier one becomes the flavour. Values outside the
 * service's limits are clamped: "10 minutes" is 600 s, "400 bpm" is 300. */
#include "common/music/prompt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "common/mem.h"

#define CZ_PROMPT_MAX_WORDS 400 /* the API caps prompts at 2000 characters */
#define CZ_PROMPT_WORD 48       /* longest word kept; longer ones are cut */
#define CZ_PROMPT_MAX_PHRASE 4  /* words in the longest vocabulary phrase */

#define CZ_DURATION_MIN 1.0
#define CZ_DURATION_MAX 600.0
#define CZ_TEMPO_MIN 20.0
#define CZ_TEMPO_MAX 300.0

/* ================================================================ vocabulary */

#define G(p, t)                                                                                    \
    { p, CZ_VOCAB_GENRE, t }
#define M(p, t)                                                                                    \
    { p, CZ_VOCAB_MOOD, t }
#define I(p, t)                                                                                    \
    { p, CZ_VOCAB_INSTRUMENT, t }
#define X(p, t)                                                                                    \
    { p, CZ_VOCAB_TEXTURE, t }
#define T(p, t)                                                                                    \
    { p, CZ_VOCAB_TEMPO, t }
#define O(p, t)                                                                                    \
    { p, CZ_VOCAB_MODE, t }
#define S(p)                                                                                       \
    { p, CZ_VOCAB_SOLO, NULL }
#define N(p, t)                                                                                    \
    { p, CZ_VOCAB_NEGATE, t }
#define F(p)                                                                                       \
    { p, CZ_VOCAB_FILLER, NULL }

// clang-format off
static const cz_vocab_entry cz_vocab[] = {
    /* genres */
    G("lofi", "lofi"), G("lo fi", "lofi"), G("lo fi hip hop", "lofi"), G("lofi hip hop", "lofi"),
    G("chillhop", "lofi"), G("chill hop", "lofi"), G("study beats", "lofi"),
    G("hip hop", "hiphop"), G("hiphop", "hiphop"), G("boom bap", "hiphop"), G("rap", "hiphop"),
    G("trap", "trap"), G("drill", "trap"),
    G("jazz", "jazz"), G("jazzy", "jazz"), G("swing", "jazz"), G("bebop", "jazz"),
    G("smooth jazz", "jazz"), G("jazz trio", "jazz"),
    G("blues", "blues"), G("bluesy", "blues"), G("shuffle", "blues"),
    G("bossa nova", "bossa"), G("bossa", "bossa"), G("latin", "bossa"), G("samba", "bossa"),
    G("ambient", "ambient"), G("drone", "ambient"), G("atmospheric", "ambient"),
    G("soundscape", "ambient"), G("new age", "ambient"), G("meditation", "ambient"),
    G("meditative", "ambient"), G("sleep", "ambient"),
    G("cinematic", "cinematic"), G("film score", "cinematic"), G("score", "cinematic"),
    G("soundtrack", "cinematic"), G("orchestral", "cinematic"), G("trailer", "cinematic"),
    G("classical", "classical"), G("baroque", "classical"), G("chamber", "classical"),
    G("string quartet", "classical"),
    G("electronic", "electronic"), G("edm", "electronic"), G("electro", "electronic"),
    G("electronica", "electronic"), G("trance", "electronic"), G("dubstep", "electronic"),
    G("future bass", "electronic"), G("chiptune", "electronic"),
    G("house", "house"), G("deep house", "house"), G("dance", "house"), G("disco", "house"),
    G("techno", "techno"), G("minimal techno", "techno"),
    G("drum and bass", "dnb"), G("drum n bass", "dnb"), G("dnb", "dnb"), G("jungle", "dnb"),
    G("breakbeat", "dnb"), G("liquid", "dnb"),
    G("synthwave", "synthwave"), G("retrowave", "synthwave"), G("outrun", "synthwave"),
    G("vaporwave", "synthwave"), G("synthpop", "synthwave"), G("synth pop", "synthwave"),
    G("rock", "rock"), G("indie rock", "rock"), G("alternative", "rock"), G("grunge", "rock"),
    G("punk", "rock"), G("metal", "rock"), G("post rock", "rock"),
    G("pop", "pop"), G("indie pop", "pop"), G("indie", "pop"), G("k pop", "pop"),
    G("folk", "folk"), G("acoustic", "folk"), G("country", "folk"), G("americana", "folk"),
    G("singer songwriter", "folk"), G("bluegrass", "folk"), G("celtic", "folk"),
    G("funk", "funk"), G("funky", "funk"),
    G("reggae", "reggae"), G("dub", "reggae"), G("ska", "reggae"),
    G("r&b", "rnb"), G("rnb", "rnb"), G("r and b", "rnb"), G("soul", "rnb"),
    G("neo soul", "rnb"), G("gospel", "rnb"), G("motown", "rnb"),

    /* moods */
    M("happy", "happy"), M("joyful", "happy"), M("cheerful", "happy"), M("cheery", "happy"),
    M("bright", "happy"), M("sunny", "happy"), M("fun", "happy"), M("feel good", "happy"),
    M("positive", "happy"), M("summery", "happy"),
    M("sad", "sad"), M("sorrowful", "sad"), M("somber", "sad"), M("sombre", "sad"),
    M("gloomy", "sad"), M("tearful", "sad"), M("heartbroken", "sad"), M("grief", "sad"),
    M("lonely", "sad"), M("rainy", "sad"),
    M("melancholic", "melancholic"), M("melancholy", "melancholic"),
    M("wistful", "melancholic"), M("bittersweet", "melancholic"),
    M("longing", "melancholic"), M("reflective", "melancholic"),
    M("introspective", "melancholic"),
    M("calm", "calm"), M("peaceful", "calm"), M("relaxing", "calm"), M("relaxed", "calm"),
    M("serene", "calm"), M("tranquil", "calm"), M("gentle", "calm"), M("soothing", "calm"),
    M("soft", "calm"), M("mellow", "calm"), M("quiet", "calm"), M("light", "calm"),
    M("study", "calm"), M("studying", "calm"), M("focus", "calm"),
    M("chill", "chill"), M("chilled", "chill"), M("chillout", "chill"), M("chill out", "chill"),
    M("laid back", "chill"), M("laidback", "chill"), M("easy", "chill"),
    M("easygoing", "chill"), M("lazy", "chill"), M("smooth", "chill"),
    M("energetic", "energetic"), M("energy", "energetic"), M("driving", "energetic"),
    M("powerful", "energetic"), M("intense", "energetic"), M("exciting", "energetic"),
    M("lively", "energetic"), M("hype", "energetic"), M("pumping", "energetic"),
    M("vibrant", "energetic"), M("high energy", "energetic"), M("punchy", "energetic"),
    M("dark", "dark"), M("ominous", "dark"), M("brooding", "dark"), M("sinister", "dark"),
    M("menacing", "dark"), M("gritty", "dark"), M("moody", "dark"), M("night", "dark"),
    M("nocturnal", "dark"), M("late night", "dark"),
    M("dreamy", "dreamy"), M("dream", "dreamy"), M("dreaming", "dreamy"), M("ethereal", "dreamy"), M("floating", "dreamy"),
    M("hazy", "dreamy"), M("spacey", "dreamy"), M("spacious", "dreamy"), M("airy", "dreamy"),
    M("lush", "dreamy"), M("space", "dreamy"), M("cosmic", "dreamy"),
    M("romantic", "romantic"), M("love", "romantic"), M("tender", "romantic"),
    M("sensual", "romantic"), M("intimate", "romantic"),
    M("epic", "epic"), M("heroic", "epic"), M("triumphant", "epic"), M("majestic", "epic"),
    M("grand", "epic"), M("anthemic", "epic"), M("massive", "epic"),
    M("tense", "tense"), M("suspense", "tense"), M("suspenseful", "tense"),
    M("anxious", "tense"), M("nervous", "tense"), M("urgent", "tense"), M("thriller", "tense"),
    M("uplifting", "uplifting"), M("inspiring", "uplifting"),
    M("inspirational", "uplifting"), M("hopeful", "uplifting"), M("optimistic", "uplifting"),
    M("motivational", "uplifting"), M("euphoric", "uplifting"),
    M("warm", "warm"), M("cozy", "warm"), M("cosy", "warm"), M("soulful", "warm"),
    M("comforting", "warm"), M("sweet", "warm"),
    M("nostalgic", "nostalgic"), M("nostalgia", "nostalgic"), M("retro", "nostalgic"),
    M("vintage", "nostalgic"), M("old school", "nostalgic"), M("throwback", "nostalgic"),
    M("playful", "playful"), M("quirky", "playful"), M("whimsical", "playful"),
    M("bouncy", "playful"), M("silly", "playful"), M("cute", "playful"),
    M("mysterious", "mysterious"), M("mystical", "mysterious"), M("mystic", "mysterious"),
    M("eerie", "mysterious"), M("haunting", "mysterious"), M("enigmatic", "mysterious"),
    M("spooky", "mysterious"), M("magical", "mysterious"),
    M("aggressive", "aggressive"), M("angry", "aggressive"), M("fierce", "aggressive"),
    M("heavy", "aggressive"), M("hard", "aggressive"), M("raw", "aggressive"),
    M("groovy", "groovy"), M("groove", "groovy"), M("grooving", "groovy"),

    /* instruments */
    I("piano", "piano"), I("pianos", "piano"), I("grand piano", "piano"),
    I("acoustic piano", "piano"), I("upright piano", "piano"), I("keys", "piano"),
    I("keyboard", "piano"), I("rhodes", "rhodes"), I("fender rhodes", "rhodes"),
    I("electric piano", "rhodes"), I("e piano", "rhodes"), I("ep", "rhodes"),
    I("wurlitzer", "wurlitzer"), I("wurly", "wurlitzer"),
    I("organ", "organ"), I("hammond", "organ"), I("hammond organ", "organ"), I("b3", "organ"),
    I("church organ", "church-organ"), I("pipe organ", "church-organ"),
    I("harpsichord", "harpsichord"), I("clavinet", "clavinet"), I("clav", "clavinet"),
    I("celesta", "celesta"), I("celeste", "celesta"),
    I("glockenspiel", "glockenspiel"), I("glock", "glockenspiel"), I("bells", "glockenspiel"),
    I("music box", "music-box"), I("vibraphone", "vibraphone"), I("vibes", "vibraphone"),
    I("marimba", "marimba"), I("xylophone", "xylophone"),
    I("tubular bells", "tubular-bells"), I("chimes", "tubular-bells"),
    I("guitar", "guitar"), I("guitars", "guitar"), I("acoustic guitar", "acoustic-guitar"),
    I("steel guitar", "acoustic-guitar"), I("nylon guitar", "nylon-guitar"),
    I("classical guitar", "nylon-guitar"), I("spanish guitar", "nylon-guitar"),
    I("flamenco guitar", "nylon-guitar"), I("jazz guitar", "jazz-guitar"),
    I("electric guitar", "electric-guitar"), I("clean guitar", "electric-guitar"),
    I("distorted guitar", "distorted-guitar"), I("distortion guitar", "distorted-guitar"),
    I("overdriven guitar", "distorted-guitar"), I("heavy guitar", "distorted-guitar"),
    I("power chords", "distorted-guitar"), I("muted guitar", "muted-guitar"),
    I("palm muted guitar", "muted-guitar"), I("ukulele", "ukulele"), I("uke", "ukulele"),
    I("banjo", "banjo"), I("mandolin", "mandolin"), I("sitar", "sitar"), I("koto", "koto"),
    I("kalimba", "kalimba"), I("harp", "harp"),
    I("bass", "bass"), I("bass guitar", "bass"), I("electric bass", "bass"),
    I("bassline", "bass"), I("bass line", "bass"),
    I("upright bass", "upright-bass"), I("double bass", "upright-bass"),
    I("acoustic bass", "upright-bass"), I("contrabass", "upright-bass"),
    I("standup bass", "upright-bass"), I("fretless bass", "fretless-bass"),
    I("slap bass", "slap-bass"), I("synth bass", "synth-bass"), I("bass synth", "synth-bass"),
    I("moog bass", "synth-bass"), I("808", "808"), I("808s", "808"), I("808 bass", "808"),
    I("sub bass", "808"),
    I("strings", "strings"), I("string section", "strings"), I("string ensemble", "strings"),
    I("orchestra", "strings"), I("violins", "strings"), I("string orchestra", "strings"),
    I("synth strings", "synth-strings"), I("violin", "violin"), I("viola", "viola"),
    I("cello", "cello"), I("cellos", "cello"), I("pizzicato", "pizzicato"),
    I("pizzicato strings", "pizzicato"), I("choir", "choir"), I("voices", "choir"),
    I("vocals", "choir"), I("vocal", "choir"), I("voice", "choir"), I("vocal pad", "choir"),
    I("trumpet", "trumpet"), I("trumpets", "trumpet"), I("muted trumpet", "muted-trumpet"),
    I("trombone", "trombone"), I("tuba", "tuba"), I("french horn", "french-horn"),
    I("french horns", "french-horn"), I("horn", "french-horn"), I("horns", "french-horn"),
    I("brass", "brass"), I("brass section", "brass"),
    I("sax", "sax"), I("saxophone", "sax"), I("alto sax", "sax"), I("alto saxophone", "sax"),
    I("tenor sax", "tenor-sax"), I("tenor saxophone", "tenor-sax"),
    I("soprano sax", "soprano-sax"), I("baritone sax", "baritone-sax"),
    I("oboe", "oboe"), I("bassoon", "bassoon"), I("clarinet", "clarinet"),
    I("piccolo", "piccolo"), I("flute", "flute"), I("flutes", "flute"),
    I("recorder", "recorder"), I("pan flute", "pan-flute"), I("pan pipes", "pan-flute"),
    I("panpipes", "pan-flute"), I("whistle", "whistle"), I("ocarina", "ocarina"),
    I("harmonica", "harmonica"), I("accordion", "accordion"), I("accordian", "accordion"),
    I("bagpipes", "bagpipes"), I("bagpipe", "bagpipes"), I("fiddle", "fiddle"),
    I("synth lead", "synth-lead"), I("lead synth", "synth-lead"), I("lead", "synth-lead"),
    I("saw lead", "synth-lead"), I("square lead", "synth-lead"), I("lead guitar", "electric-guitar"),
    I("pad", "pad"), I("pads", "pad"), I("synth pad", "pad"), I("synth pads", "pad"),
    I("synth", "synth"), I("synths", "synth"), I("synthesizer", "synth"),
    I("synthesizers", "synth"), I("analog synth", "synth"), I("polysynth", "synth"),
    I("arp", "arp"), I("arps", "arp"), I("arpeggio", "arp"), I("arpeggios", "arp"),
    I("arpeggiator", "arp"), I("arpeggiated synth", "arp"),
    I("steel drums", "steel-drums"), I("steel drum", "steel-drums"),
    I("steelpan", "steel-drums"), I("steel pan", "steel-drums"),
    I("drums", "drums"), I("drum", "drums"), I("drum kit", "drums"), I("drumkit", "drums"),
    I("beat", "drums"), I("beats", "drums"), I("live drums", "drums"), I("hi hats", "drums"),
    I("hi hat", "drums"), I("hihats", "drums"), I("hats", "drums"), I("cymbals", "drums"),
    I("drum machine", "drum-machine"), I("808 drums", "drum-machine"),
    I("tr 808", "drum-machine"), I("909", "drum-machine"),
    I("electronic drums", "drum-machine"), I("brushes", "brushes"),
    I("brush drums", "brushes"), I("brushed drums", "brushes"),
    I("percussion", "percussion"), I("hand percussion", "percussion"),
    I("shaker", "percussion"), I("shakers", "percussion"), I("tambourine", "percussion"),
    I("congas", "percussion"), I("conga", "percussion"), I("bongos", "percussion"),
    I("claps", "percussion"), I("hand claps", "percussion"), I("handclaps", "percussion"),
    I("timpani", "timpani"), I("kettle drums", "timpani"), I("taiko", "taiko"),
    I("taiko drums", "taiko"), I("war drums", "taiko"),

    /* textures */
    X("vinyl", "vinyl"), X("vinyl crackle", "vinyl"), X("dusty", "vinyl"), X("tape", "vinyl"),
    X("cassette", "vinyl"), X("crackle", "vinyl"),

    /* tempo feels */
    T("slow", "slow"), T("slower", "slow"), T("slowly", "slow"), T("downtempo", "slow"),
    T("down tempo", "slow"), T("ballad", "slow"), T("adagio", "slow"), T("largo", "slow"),
    T("moderate", "moderate"), T("mid tempo", "moderate"), T("midtempo", "moderate"),
    T("medium tempo", "moderate"), T("andante", "moderate"), T("moderato", "moderate"),
    T("upbeat", "upbeat"), T("up tempo", "upbeat"), T("uptempo", "upbeat"),
    T("brisk", "upbeat"), T("allegro", "upbeat"),
    T("fast", "fast"), T("faster", "fast"), T("quick", "fast"), T("rapid", "fast"),
    T("speedy", "fast"), T("presto", "fast"), T("frantic", "fast"),

    /* modes */
    O("major", "major"), O("major key", "major"), O("minor", "minor"), O("minor key", "minor"),

    /* solo and negation */
    S("solo"), S("only"), S("just"), S("alone"), S("unaccompanied"),
    N("no", NULL), N("without", NULL), N("minus", NULL), N("drumless", "drums"),
    N("beatless", "drums"),

    /* filler: understood, carries no control */
    F("a"), F("an"), F("the"), F("and"), F("with"), F("in"), F("of"), F("on"), F("for"),
    F("to"), F("at"), F("by"), F("some"), F("into"), F("from"), F("featuring"), F("feat"),
    F("ft"), F("plus"), F("or"), F("that"), F("this"), F("it"), F("its"), F("is"),
    F("very"), F("really"), F("super"), F("quite"), F("slightly"), F("bit"), F("little"),
    F("lots"), F("lot"), F("like"), F("style"), F("styled"), F("vibe"), F("vibes"),
    F("feel"), F("feeling"), F("track"), F("song"), F("tune"), F("music"), F("piece"),
    F("instrumental"), F("sound"), F("sounds"), F("sounding"), F("type"), F("kind"),
    F("mood"), F("key"), F("tempo"), F("genre"), F("something"), F("about"), F("long"),
    F("length"), F("duration"), F("around"), F("approx"), F("approximately"), F("roughly"),
    F("background"), F("using"), F("played"), F("playing"), F("plays"), F("&"),
    F("make"), F("me"), F("please"), F("loop"), F("jam"), F("session"),
    F("version"), F("more"), F("less"), F("lots of"), F("full"), F("band"), F("trio"),
    F("ensemble"), F("section"), F("sections"), F("intro"), F("outro"), F("bpm"),
};
// clang-format on

#undef G
#undef M
#undef I
#undef X
#undef T
#undef O
#undef S
#undef N
#undef F

const cz_vocab_entry *cz_prompt_vocabulary(size_t *n) {
    *n = sizeof cz_vocab / sizeof cz_vocab[0];
    return cz_vocab;
}

/* ================================================================ words */

typedef struct cz_word {
    char low[CZ_PROMPT_WORD];  /* lower-cased */
    char orig[CZ_PROMPT_WORD]; /* as written, for capital note names */
} cz_word;

typedef struct cz_words {
    cz_word w[CZ_PROMPT_MAX_WORDS];
    int n;
} cz_words;

/* '#', '&', ':', '.' and apostrophes stay inside a word; every other ASCII
 * character that is not a letter or digit separates words. Bytes >= 0x80 are
 * parts of UTF-8 characters and stay in the word. */
static int cz_word_char(unsigned char c) {
    return c >= 0x80 || isalnum(c) || c == '#' || c == '&' || c == ':' || c == '.' || c == '\'';
}

/* Copies at most @p n - 1 bytes of @p src into @p dst, never cutting a UTF-8
 * character in half (the API only lets well-formed UTF-8 in). */
static void cz_copy_utf8(char *dst, size_t n, const char *src, size_t len) {
    if (len > n - 1) {
        len = n - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
            len--; // src[len] would start the next character: cut before it
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void cz_words_push(cz_words *ws, const char *s, size_t len) {
    // Trim what may end a sentence or open a quotation: "drums." "'80s".
    while (len > 0 && (s[len - 1] == '.' || s[len - 1] == ':' || s[len - 1] == '\''))
        len--;
    while (len > 0 && (*s == '\'' || *s == '.' || *s == ':')) {
        s++;
        len--;
    }
    if (len == 0 || ws->n >= CZ_PROMPT_MAX_WORDS)
        return;
    char buf[CZ_PROMPT_WORD];
    size_t k = 0;
    for (size_t i = 0; i < len && k < sizeof buf - 1; i++)
        if (s[i] != '\'') // "80's" reads as "80s"
            buf[k++] = s[i];
    cz_word *w = &ws->w[ws->n++];
    cz_copy_utf8(w->orig, sizeof w->orig, buf, k);
    for (k = 0; w->orig[k]; k++)
        w->low[k] = (char)tolower((unsigned char)w->orig[k]);
    w->low[k] = '\0';
    if (k == 0)
        ws->n--;
}

static void cz_words_split(const char *text, cz_words *ws) {
    ws->n = 0;
    if (!text)
        return;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        while (*p && !cz_word_char(*p))
            p++;
        const unsigned char *start = p;
        while (*p && cz_word_char(*p))
            p++;
        if (p > start)
            cz_words_push(ws, (const char *)start, (size_t)(p - start));
    }
}

/* ================================================================ numbers */

static const struct {
    const char *word;
    double value;
} cz_number_words[] = {
    {"one", 1},      {"two", 2},     {"three", 3},   {"four", 4},   {"five", 5},    {"six", 6},
    {"seven", 7},    {"eight", 8},   {"nine", 9},    {"ten", 10},   {"eleven", 11}, {"twelve", 12},
    {"fifteen", 15}, {"twenty", 20}, {"thirty", 30}, {"forty", 40}, {"fifty", 50},  {"sixty", 60},
    {"ninety", 90},  {"a", 1},       {"an", 1},      {"half", 0.5}, {"couple", 2},
};

/* A plain decimal number ("45", "2.5"). */
static int cz_parse_number(const char *s, double *v) {
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end;
    *v = strtod(s, &end);
    return *end == '\0' && isfinite(*v) ? 0 : -1;
}

static int cz_number_word(const char *s, double *v) {
    for (size_t i = 0; i < sizeof cz_number_words / sizeof cz_number_words[0]; i++)
        if (!strcmp(s, cz_number_words[i].word)) {
            *v = cz_number_words[i].value;
            return 0;
        }
    return -1;
}

static int cz_is_one_of(const char *s, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(s, list[i]))
            return 1;
    return 0;
}

static const char *const cz_unit_seconds[] = {"s", "sec", "secs", "second", "seconds", NULL};
static const char *const cz_unit_minutes[] = {"m", "min", "mins", "minute", "minutes", NULL};

/* "45s", "2min", "2.5m": a number glued to its unit ("80s", a decade, is
 * caught before this). */
static int cz_parse_glued_duration(const char *s, double *seconds) {
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v))
        return -1;
    if (cz_is_one_of(end, cz_unit_seconds)) {
        *seconds = v;
        return 0;
    }
    if (cz_is_one_of(end, cz_unit_minutes)) {
        *seconds = v * 60;
        return 0;
    }
    return -1;
}

/* "1:30" (minutes:seconds). */
static int cz_parse_clock(const char *s, double *seconds) {
    int m, sec, n = 0;
    if (sscanf(s, "%d:%2d%n", &m, &sec, &n) == 2 && s[n] == '\0' && m >= 0 && sec >= 0 &&
        sec < 60 && isdigit((unsigned char)s[strlen(s) - 1])) {
        *seconds = m * 60.0 + sec;
        return 0;
    }
    return -1;
}

/* "80s", "1980s", "'90s", "eighties": a decade, not a duration. */
static int cz_is_decade(const char *s) {
    static const char *const words[] = {"sixties", "seventies", "eighties", "nineties", NULL};
    if (cz_is_one_of(s, words))
        return 1;
    size_t n = strlen(s);
    if (n == 3 && isdigit((unsigned char)s[0]) && s[1] == '0' && s[2] == 's')
        return s[0] == '0' || s[0] >= '5';
    if (n == 5 && (s[0] == '1' || s[0] == '2') && isdigit((unsigned char)s[1]) &&
        isdigit((unsigned char)s[2]) && s[3] == '0' && s[4] == 's')
        return 1;
    return 0;
}

static double cz_clamp(double v, double lo, double hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* ================================================================ keys */

static const int cz_note_pc[7] = {9, 11, 0, 2, 4, 5, 7}; /* a..g */

int cz_prompt_parse_key(const char *s, int *root, int *mode) {
    if (!s)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    char c = (char)tolower((unsigned char)*s);
    if (c < 'a' || c > 'g')
        return -1;
    int pc = cz_note_pc[c - 'a'];
    s++;
    if (*s == '#') {
        pc++;
        s++;
    } else if (*s == 'b' && s[1] != 'a') { // "Bb", but not the "b" of "ba..."
        pc--;
        s++;
    }
    while (isspace((unsigned char)*s) || *s == '-')
        s++;
    int m = -1;
    if (!*s)
        m = -1;
    else if (!strcmp(s, "m") || !strcasecmp(s, "min") || !strcasecmp(s, "minor"))
        m = 1;
    else if (!strcmp(s, "M") || !strcasecmp(s, "maj") || !strcasecmp(s, "major"))
        m = 0;
    else
        return -1;
    *root = (pc + 12) % 12;
    *mode = m;
    return 0;
}

const char *cz_prompt_key_name(int root, int mode, char *buf, size_t n) {
    static const char *const names[12] = {"C",  "C#", "D",  "Eb", "E",  "F",
                                          "F#", "G",  "Ab", "A",  "Bb", "B"};
    snprintf(buf, n, "%s %s", names[((root % 12) + 12) % 12], mode == 1 ? "minor" : "major");
    return buf;
}

/* A note word: "a".."g", or one with '#' glued ("f#"), or with 'b' glued
 * and a capital ("Eb", "Bb"; "eb" and "db" are too often something else). */
static int cz_note_word(const cz_word *w, int *pc) {
    const char *low = w->low;
    if (low[0] < 'a' || low[0] > 'g')
        return -1;
    int p = cz_note_pc[low[0] - 'a'];
    if (low[1] == '\0') {
        *pc = p;
        return 0;
    }
    if (low[2] == '\0' &&
        (low[1] == '#' || (low[1] == 'b' && isupper((unsigned char)w->orig[0])))) {
        *pc = (p + (low[1] == '#' ? 1 : 11)) % 12;
        return 0;
    }
    return -1;
}

/* A mode word or suffix: 1 minor, 0 major, -1 neither. */
static int cz_mode_word(const char *low) {
    if (!strcmp(low, "minor") || !strcmp(low, "min") || !strcmp(low, "m"))
        return 1;
    if (!strcmp(low, "major") || !strcmp(low, "maj"))
        return 0;
    return -1;
}

/* Compact keys: "F#m", "Bbm", "Am", "C#min", "Ebmaj", "cminor". A bare
 * letter and "m" needs a capital ("Am"), so "am" stays a word. */
static int cz_compact_key(const cz_word *w, int *root, int *mode) {
    const char *low = w->low;
    if (low[0] < 'a' || low[0] > 'g' || low[1] == '\0')
        return -1;
    int pc = cz_note_pc[low[0] - 'a'];
    for (int acc = 1; acc >= 0; acc--) {
        if (acc && low[1] != '#' && low[1] != 'b')
            continue;
        const char *suffix = low + 1 + acc;
        int m = cz_mode_word(suffix);
        if (m < 0)
            continue;
        if (!acc && strlen(suffix) == 1 && !isupper((unsigned char)w->orig[0]))
            return -1;
        *root = (pc + (acc ? (low[1] == '#' ? 1 : 11) : 0)) % 12;
        *mode = m;
        return 0;
    }
    return -1;
}

/* Tries to read a key at word @p i. @returns the words used, or 0. */
static int cz_read_key(const cz_words *ws, int i, cz_controls *c) {
    const cz_word *w = &ws->w[i];
    int pc, mode, used = 1;
    if (cz_compact_key(w, &pc, &mode) == 0) {
        c->key_root = pc;
        c->mode = mode;
        return 1;
    }
    if (cz_note_word(w, &pc) != 0)
        return 0;
    // "f sharp", "b flat"
    if (i + 1 < ws->n && w->low[1] == '\0' &&
        (!strcmp(ws->w[i + 1].low, "sharp") || !strcmp(ws->w[i + 1].low, "flat"))) {
        pc = (pc + (ws->w[i + 1].low[0] == 's' ? 1 : 11)) % 12;
        used = 2;
    }
    // A note and a mode word: "A minor", "e flat major", "c minor key".
    if (i + used < ws->n && strcmp(ws->w[i + used].low, "m") != 0 &&
        (mode = cz_mode_word(ws->w[i + used].low)) >= 0) {
        c->key_root = pc;
        c->mode = mode;
        used++;
        if (i + used < ws->n && !strcmp(ws->w[i + used].low, "key"))
            used++;
        return used;
    }
    // "in C", "key of Eb": a capital note after "in", "of" or "key".
    if (i > 0 && isupper((unsigned char)w->orig[0]) &&
        (!strcmp(ws->w[i - 1].low, "in") || !strcmp(ws->w[i - 1].low, "of") ||
         !strcmp(ws->w[i - 1].low, "key"))) {
        c->key_root = pc;
        return used;
    }
    // "F#", "Bb" and "f sharp" alone are keys too; a bare letter is not.
    if (used == 2 || w->low[1] != '\0') {
        c->key_root = pc;
        return used;
    }
    return 0;
}

/* ================================================================ numbers */

static const char *const cz_bpm_words[] = {"bpm", "bpms", NULL};

/* Tries a tempo or duration at word @p i. @returns the words used, or 0. */
static int cz_read_number(const cz_words *ws, int i, cz_controls *c, double *pending_minutes) {
    const char *w = ws->w[i].low;
    const char *next = i + 1 < ws->n ? ws->w[i + 1].low : "";
    double v, secs;
    // Tempo: "82 bpm", "82bpm", "tempo 82", "82 beats per minute".
    if (cz_parse_number(w, &v) == 0) {
        if (cz_is_one_of(next, cz_bpm_words)) {
            c->tempo_bpm = cz_clamp(v, CZ_TEMPO_MIN, CZ_TEMPO_MAX);
            return 2;
        }
        if (!strcmp(next, "beats") && i + 3 < ws->n && !strcmp(ws->w[i + 2].low, "per") &&
            !strcmp(ws->w[i + 3].low, "minute")) {
            c->tempo_bpm = cz_clamp(v, CZ_TEMPO_MIN, CZ_TEMPO_MAX);
            return 4;
        }
        if (i > 0 && !strcmp(ws->w[i - 1].low, "tempo")) {
            c->tempo_bpm = cz_clamp(v, CZ_TEMPO_MIN, CZ_TEMPO_MAX);
            return 1;
        }
    }
    size_t n = strlen(w);
    if (n > 3 && !strcmp(w + n - 3, "bpm") && isdigit((unsigned char)*w)) {
        char num[CZ_PROMPT_WORD];
        snprintf(num, sizeof num, "%.*s", (int)(n - 3), w);
        if (cz_parse_number(num, &v) == 0) {
            c->tempo_bpm = cz_clamp(v, CZ_TEMPO_MIN, CZ_TEMPO_MAX);
            return 1;
        }
    }
    if (cz_is_decade(w)) {
        if (c->n_moods < CZ_CONTROLS_MAX_MOODS) {
            int dup = 0;
            for (int k = 0; k < c->n_moods; k++)
                dup |= !strcmp(c->moods[k], "nostalgic");
            if (!dup)
                snprintf(c->moods[c->n_moods++], CZ_CONTROLS_TOKEN, "nostalgic");
        }
        return 1;
    }
    // Durations. Minutes and seconds that follow each other add up:
    // "2 minutes 30 seconds", "a minute and a half".
    int used = 0;
    if (cz_parse_clock(w, &secs) == 0 || cz_parse_glued_duration(w, &secs) == 0) {
        used = 1;
    } else if (cz_parse_number(w, &v) == 0 || cz_number_word(w, &v) == 0) {
        int k = i + 1;
        double mult = 1;
        // "half a minute", "one and a half minutes"
        if (k + 1 < ws->n && !strcmp(w, "half") && !strcmp(ws->w[k].low, "a"))
            k++;
        else if (k + 2 < ws->n && !strcmp(ws->w[k].low, "and") && !strcmp(ws->w[k + 1].low, "a") &&
                 !strcmp(ws->w[k + 2].low, "half")) {
            v += 0.5;
            k += 3;
        }
        if (k < ws->n && cz_is_one_of(ws->w[k].low, cz_unit_minutes)) {
            mult = 60;
        } else if (k < ws->n && cz_is_one_of(ws->w[k].low, cz_unit_seconds)) {
            mult = 1;
        } else {
            return 0;
        }
        // "a" and "an" count as one only before a unit.
        secs = v * mult;
        used = k + 1 - i;
        // "a minute and a half"
        if (mult == 60 && i + used + 2 < ws->n && !strcmp(ws->w[i + used].low, "and") &&
            !strcmp(ws->w[i + used + 1].low, "a") && !strcmp(ws->w[i + used + 2].low, "half")) {
            secs += 30;
            used += 3;
        }
    } else {
        return 0;
    }
    // Seconds right after a minutes phrase add to it.
    if (*pending_minutes > 0)
        secs += *pending_minutes;
    c->duration_s = cz_clamp(secs, CZ_DURATION_MIN, CZ_DURATION_MAX);
    *pending_minutes = secs >= 60 && fmod(secs, 60) == 0 ? secs : 0;
    return used;
}

/* ================================================================ phrases */

/* The longest vocabulary phrase at word @p i. @returns its entry and word
 * count in @p used, or NULL. */
static const cz_vocab_entry *cz_read_phrase(const cz_words *ws, int i, int *used) {
    char phrase[CZ_PROMPT_MAX_PHRASE * CZ_PROMPT_WORD];
    const cz_vocab_entry *best = NULL;
    size_t len = 0;
    phrase[0] = '\0';
    for (int k = 0; k < CZ_PROMPT_MAX_PHRASE && i + k < ws->n; k++) {
        len += (size_t)snprintf(phrase + len, sizeof phrase - len, "%s%s", k ? " " : "",
                                ws->w[i + k].low);
        for (size_t e = 0; e < sizeof cz_vocab / sizeof cz_vocab[0]; e++)
            if (!strcmp(cz_vocab[e].phrase, phrase)) {
                best = &cz_vocab[e];
                *used = k + 1;
                break;
            }
    }
    return best;
}

static void cz_add_token(char list[][CZ_CONTROLS_TOKEN], int *n, int max, const char *token) {
    for (int k = 0; k < *n; k++)
        if (!strcmp(list[k], token))
            return;
    if (*n < max)
        snprintf(list[(*n)++], CZ_CONTROLS_TOKEN, "%s", token);
}

static void cz_remove_token(char list[][CZ_CONTROLS_TOKEN], int *n, const char *token) {
    for (int k = 0; k < *n; k++)
        if (!strcmp(list[k], token)) {
            memmove(list[k], list[k + 1], (size_t)(*n - k - 1) * sizeof list[0]);
            (*n)--;
            return;
        }
}

static void cz_ignore(cz_controls *c, const char *word) {
    char w[CZ_CONTROLS_TOKEN];
    cz_copy_utf8(w, sizeof w, word, strlen(word));
    for (int k = 0; k < c->n_ignored; k++)
        if (!strcmp(c->ignored[k], w))
            return;
    if (c->n_ignored < CZ_CONTROLS_MAX_IGNORED)
        memcpy(c->ignored[c->n_ignored++], w, sizeof w);
}

static void cz_set_genre(cz_controls *c, const char *token) {
    if (!strcmp(c->genre, token))
        return;
    if (c->genre[0] && !c->flavor[0])
        snprintf(c->flavor, sizeof c->flavor, "%s", c->genre);
    snprintf(c->genre, sizeof c->genre, "%s", token);
}

/* Reads @p text into @p c. @p kinds limits which entries apply (a genre
 * field reads genres only); words outside them are ignored. */
static void cz_read_text(const char *text, unsigned kinds, cz_controls *c) {
    cz_words *ws = cz_malloc(sizeof *ws);
    cz_words_split(text, ws);
    int negate = 0;
    double pending_minutes = 0;
    for (int i = 0; i < ws->n;) {
        int used = 0;
        double before = c->duration_s;
        if ((kinds & (1u << CZ_VOCAB_MODE)) && (used = cz_read_key(ws, i, c)) > 0) {
            i += used;
            pending_minutes = 0;
            continue;
        }
        if ((kinds & (1u << CZ_VOCAB_TEMPO)) &&
            (used = cz_read_number(ws, i, c, &pending_minutes)) > 0) {
            if (c->duration_s == before)
                pending_minutes = 0;
            i += used;
            continue;
        }
        const cz_vocab_entry *e = cz_read_phrase(ws, i, &used);
        if (!e || !(kinds & (1u << e->kind))) {
            if (!e || e->kind != CZ_VOCAB_FILLER)
                cz_ignore(c, ws->w[i].low);
            i++;
            pending_minutes = 0;
            continue;
        }
        i += used;
        if (e->kind != CZ_VOCAB_FILLER)
            pending_minutes = 0;
        switch (e->kind) {
        case CZ_VOCAB_GENRE:
            cz_set_genre(c, e->token);
            break;
        case CZ_VOCAB_MOOD:
            cz_add_token(c->moods, &c->n_moods, CZ_CONTROLS_MAX_MOODS, e->token);
            break;
        case CZ_VOCAB_INSTRUMENT:
            if (negate) {
                cz_add_token(c->exclude, &c->n_exclude, CZ_CONTROLS_MAX_INSTR, e->token);
                cz_remove_token(c->instruments, &c->n_instruments, e->token);
            } else {
                cz_add_token(c->instruments, &c->n_instruments, CZ_CONTROLS_MAX_INSTR, e->token);
                cz_remove_token(c->exclude, &c->n_exclude, e->token);
            }
            break;
        case CZ_VOCAB_TEXTURE:
            snprintf(c->texture, sizeof c->texture, "%s", e->token);
            break;
        case CZ_VOCAB_TEMPO:
            snprintf(c->tempo, sizeof c->tempo, "%s", e->token);
            break;
        case CZ_VOCAB_MODE:
            c->mode = !strcmp(e->token, "minor");
            break;
        case CZ_VOCAB_SOLO:
            c->solo = true;
            break;
        case CZ_VOCAB_NEGATE:
            if (e->token) {
                cz_add_token(c->exclude, &c->n_exclude, CZ_CONTROLS_MAX_INSTR, e->token);
                cz_remove_token(c->instruments, &c->n_instruments, e->token);
            }
            break;
        case CZ_VOCAB_FILLER:
            break;
        }
        // "no" / "without" reach over filler ("without any drums", "no
        // bass or drums") to the instruments that follow.
        if (e->kind == CZ_VOCAB_NEGATE && !e->token)
            negate = 1;
        else if (e->kind != CZ_VOCAB_FILLER && e->kind != CZ_VOCAB_INSTRUMENT)
            negate = 0;
    }
    free(ws);
}

/* ================================================================ API */

#define CZ_KINDS_ALL 0xffffu
#define CZ_KIND(k) (1u << (k))

/* The one instrument a field name stands for, or NULL. */
static const char *cz_instrument_token(const char *name) {
    cz_words *ws = cz_malloc(sizeof *ws);
    cz_words_split(name, ws);
    int used = 0;
    const cz_vocab_entry *e = ws->n > 0 ? cz_read_phrase(ws, 0, &used) : NULL;
    const char *token = e && e->kind == CZ_VOCAB_INSTRUMENT && used == ws->n ? e->token : NULL;
    free(ws);
    return token;
}

int cz_prompt_controls(const cz_prompt_fields *in, cz_controls *out, int *bad_instrument,
                       cz_err *err) {
    memset(out, 0, sizeof *out);
    out->key_root = -1;
    out->mode = -1;
    if (bad_instrument)
        *bad_instrument = -1;
    cz_read_text(in->prompt, CZ_KINDS_ALL, out);

    if (in->genre) {
        cz_controls g;
        memset(&g, 0, sizeof g);
        cz_read_text(in->genre, CZ_KIND(CZ_VOCAB_GENRE) | CZ_KIND(CZ_VOCAB_FILLER), &g);
        if (g.genre[0]) {
            memcpy(out->genre, g.genre, sizeof out->genre);
            memcpy(out->flavor, g.flavor, sizeof out->flavor);
        }
        for (int k = 0; k < g.n_ignored; k++)
            cz_ignore(out, g.ignored[k]);
    }
    if (in->mood) {
        cz_controls m;
        memset(&m, 0, sizeof m);
        cz_read_text(in->mood, CZ_KIND(CZ_VOCAB_MOOD) | CZ_KIND(CZ_VOCAB_FILLER), &m);
        if (m.n_moods > 0) {
            memcpy(out->moods, m.moods, sizeof out->moods);
            out->n_moods = m.n_moods;
        }
        for (int k = 0; k < m.n_ignored; k++)
            cz_ignore(out, m.ignored[k]);
    }
    if (in->key) {
        int root, mode;
        if (cz_prompt_parse_key(in->key, &root, &mode) != 0)
            return cz_err_set(err, "key \"%s\" is not a key", in->key);
        out->key_root = root;
        out->mode = mode < 0 ? 0 : mode;
    }
    if (in->tempo_bpm > 0) {
        out->tempo_bpm = in->tempo_bpm;
        out->tempo[0] = '\0';
    }
    if (in->duration_s > 0)
        out->duration_s = in->duration_s;
    if (in->n_instruments >= 0) {
        out->n_instruments = 0;
        for (int k = 0; k < in->n_instruments; k++) {
            const char *token = cz_instrument_token(in->instruments[k]);
            if (!token) {
                if (bad_instrument)
                    *bad_instrument = k;
                return cz_err_set(err,
                                  "instrument \"%.60s\" is not known: see docs/composer.md "
                                  "for the instruments the composer plays",
                                  in->instruments[k]);
            }
            cz_add_token(out->instruments, &out->n_instruments, CZ_CONTROLS_MAX_INSTR, token);
            cz_remove_token(out->exclude, &out->n_exclude, token);
        }
    }
    if (out->tempo_bpm > 0)
        out->tempo[0] = '\0';
    return 0;
}

static void cz_json_add_list(cJSON *o, const char *name, const char list[][CZ_CONTROLS_TOKEN],
                             int n) {
    if (n <= 0)
        return;
    cJSON *a = cJSON_AddArrayToObject(o, name);
    for (int k = 0; k < n; k++)
        cJSON_AddItemToArray(a, cJSON_CreateString(list[k]));
}

cJSON *cz_controls_json(const cz_controls *c) {
    cJSON *o = cJSON_CreateObject();
    if (c->genre[0])
        cJSON_AddStringToObject(o, "genre", c->genre);
    if (c->flavor[0])
        cJSON_AddStringToObject(o, "flavor", c->flavor);
    cz_json_add_list(o, "moods", c->moods, c->n_moods);
    if (c->tempo_bpm > 0)
        cJSON_AddNumberToObject(o, "tempo_bpm", c->tempo_bpm);
    if (c->tempo[0])
        cJSON_AddStringToObject(o, "tempo", c->tempo);
    if (c->key_root >= 0) {
        char key[16];
        cz_prompt_key_name(c->key_root, c->mode, key, sizeof key);
        if (c->mode < 0)
            *strchr(key, ' ') = '\0';
        cJSON_AddStringToObject(o, "key", key);
    }
    if (c->mode >= 0)
        cJSON_AddStringToObject(o, "mode", c->mode ? "minor" : "major");
    if (c->duration_s > 0)
        cJSON_AddNumberToObject(o, "duration_s", c->duration_s);
    cz_json_add_list(o, "instruments", c->instruments, c->n_instruments);
    cz_json_add_list(o, "exclude", c->exclude, c->n_exclude);
    if (c->texture[0])
        cJSON_AddStringToObject(o, "texture", c->texture);
    if (c->solo)
        cJSON_AddBoolToObject(o, "solo", true);
    return o;
}

cJSON *cz_controls_ignored_json(const cz_controls *c) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < c->n_ignored; k++)
        cJSON_AddItemToArray(a, cJSON_CreateString(c->ignored[k]));
    return a;
}

static int cz_json_token(const cJSON *v, const char *name, char *dst, cz_err *err) {
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= CZ_CONTROLS_TOKEN)
        return cz_err_set(err, "controls.%s must be a short string", name);
    snprintf(dst, CZ_CONTROLS_TOKEN, "%s", v->valuestring);
    return 0;
}

static int cz_json_tokens(const cJSON *v, const char *name, char list[][CZ_CONTROLS_TOKEN], int *n,
                          int max, cz_err *err) {
    if (!cJSON_IsArray(v))
        return cz_err_set(err, "controls.%s must be an array of strings", name);
    *n = 0;
    for (const cJSON *item = v->child; item && *n < max; item = item->next)
        if (cz_json_token(item, name, list[(*n)++], err) != 0)
            return -1;
    return 0;
}

int cz_controls_from_json(const cJSON *o, cz_controls *out, cz_err *err) {
    memset(out, 0, sizeof *out);
    out->key_root = -1;
    out->mode = -1;
    if (!cJSON_IsObject(o))
        return cz_err_set(err, "controls must be an object");
    for (const cJSON *m = o->child; m; m = m->next) {
        const char *k = m->string;
        int rc = 0;
        if (!strcmp(k, "genre"))
            rc = cz_json_token(m, k, out->genre, err);
        else if (!strcmp(k, "flavor"))
            rc = cz_json_token(m, k, out->flavor, err);
        else if (!strcmp(k, "moods"))
            rc = cz_json_tokens(m, k, out->moods, &out->n_moods, CZ_CONTROLS_MAX_MOODS, err);
        else if (!strcmp(k, "instruments"))
            rc = cz_json_tokens(m, k, out->instruments, &out->n_instruments, CZ_CONTROLS_MAX_INSTR,
                                err);
        else if (!strcmp(k, "exclude"))
            rc = cz_json_tokens(m, k, out->exclude, &out->n_exclude, CZ_CONTROLS_MAX_INSTR, err);
        else if (!strcmp(k, "tempo"))
            rc = cz_json_token(m, k, out->tempo, err);
        else if (!strcmp(k, "texture"))
            rc = cz_json_token(m, k, out->texture, err);
        else if (!strcmp(k, "tempo_bpm") || !strcmp(k, "duration_s")) {
            if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble) || m->valuedouble <= 0)
                return cz_err_set(err, "controls.%s must be a positive number", k);
            *(!strcmp(k, "tempo_bpm") ? &out->tempo_bpm : &out->duration_s) = m->valuedouble;
        } else if (!strcmp(k, "key")) {
            int mode;
            if (!cJSON_IsString(m) ||
                cz_prompt_parse_key(m->valuestring, &out->key_root, &mode) != 0)
                return cz_err_set(err, "controls.key must be a key such as \"A minor\"");
            if (mode >= 0)
                out->mode = mode;
        } else if (!strcmp(k, "mode")) {
            if (!cJSON_IsString(m) ||
                (strcmp(m->valuestring, "major") && strcmp(m->valuestring, "minor")))
                return cz_err_set(err, "controls.mode must be major or minor");
            out->mode = !strcmp(m->valuestring, "minor");
        } else if (!strcmp(k, "solo")) {
            if (!cJSON_IsBool(m))
                return cz_err_set(err, "controls.solo must be true or false");
            out->solo = cJSON_IsTrue(m);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* The request's instruments array holds at most this many names (the API
 * refuses more); cz_controls keeps fewer, in the order given. */
#define CZ_REQUEST_MAX_INSTRUMENTS 16

int cz_prompt_controls_of(const cJSON *request, cz_controls *out, int *bad_instrument,
                          cz_err *err) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(request, "instruments");
    const char *names[CZ_REQUEST_MAX_INSTRUMENTS];
    int n = 0;
    for (const cJSON *i = cJSON_IsArray(list) ? list->child : NULL;
         i && n < CZ_REQUEST_MAX_INSTRUMENTS; i = i->next)
        if (cJSON_IsString(i))
            names[n++] = i->valuestring;
    cz_prompt_fields f = {
        .prompt = cz_json_str(request, "prompt"),
        .genre = cz_json_str(request, "genre"),
        .mood = cz_json_str(request, "mood"),
        .key = cz_json_str(request, "key"),
        .tempo_bpm = cz_json_num(request, "tempo_bpm", 0),
        .duration_s = cz_json_num(request, "duration_s", 0),
        .instruments = names,
        .n_instruments = list ? n : -1,
    };
    return cz_prompt_controls(&f, out, bad_instrument, err);
}
