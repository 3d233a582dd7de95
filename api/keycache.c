/* The key cache: see keycache.h.
 *
 * A fixed table of slots, chosen by a hash of the key's prefix, under one
 * mutex (a lookup is a few hundred nanoseconds of work). A new entry takes
 * its slot from whatever was there: the table is small and entries live a
 * second, so there is nothing to gain from smarter eviction. */
#include "api/keycache.h"
#include "common/hash.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"

#define SLOTS 1024

typedef struct slot {
    char prefix[CZ_KEY_PREFIX + 1];
    unsigned char digest[SHA256_DIGEST_LENGTH];
    cz_key_info info;
    int64_t expires_ms; /* 0: empty */
} slot;

struct cz_keycache {
    pthread_mutex_t lock;
    int ttl_ms;
    slot slots[SLOTS];
};

cz_keycache *cz_keycache_new(int ttl_ms) {
    cz_keycache *kc = cz_calloc(1, sizeof *kc);
    pthread_mutex_init(&kc->lock, NULL);
    kc->ttl_ms = ttl_ms;
    return kc;
}

static unsigned slot_of(const char *key) {
    return cz_fnv1a(key, CZ_KEY_PREFIX) % SLOTS;
}

int cz_keycache_get(cz_keycache *kc, const char *key, cz_key_info *out) {
    if (kc->ttl_ms <= 0)
        return 0;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), d);
    slot *s = &kc->slots[slot_of(key)];
    int hit = 0;
    pthread_mutex_lock(&kc->lock);
    if (s->expires_ms > cz_mono_ms() && !strncmp(s->prefix, key, CZ_KEY_PREFIX) &&
        !CRYPTO_memcmp(s->digest, d, sizeof d)) {
        *out = s->info;
        hit = 1;
    }
    pthread_mutex_unlock(&kc->lock);
    return hit;
}

void cz_keycache_put(cz_keycache *kc, const char *key, const cz_key_info *info) {
    if (kc->ttl_ms <= 0)
        return;
    slot fresh = {.info = *info, .expires_ms = cz_mono_ms() + kc->ttl_ms};
    memcpy(fresh.prefix, key, CZ_KEY_PREFIX);
    SHA256((const unsigned char *)key, strlen(key), fresh.digest);
    pthread_mutex_lock(&kc->lock);
    kc->slots[slot_of(key)] = fresh;
    pthread_mutex_unlock(&kc->lock);
}

void cz_keycache_free(cz_keycache *kc) {
    if (!kc)
        return;
    pthread_mutex_destroy(&kc->lock);
    free(kc);
}
