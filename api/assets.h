/* The curators' web page (api/review/), embedded in the binary at build
 * time by tools/embed_files.py (build/gen/review_assets.c) and served at
 * /review/: plain HTML, CSS and JavaScript, nothing fetched from elsewhere. */
#ifndef CZ_ASSETS_H
#define CZ_ASSETS_H

#include <stddef.h>

/** One embedded file. */
typedef struct cz_asset {
    const char *name;         /* file name, e.g. "index.html" */
    const char *content_type; /* its media type */
    const unsigned char *data;
    size_t len;
} cz_asset;

/** Every file of api/review/, sorted by name. */
extern const cz_asset cz_review_assets[];
extern const size_t cz_review_assets_count;

#endif
