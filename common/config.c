/* Configuration from the environment: see config.h. */
#include "common/config.h"

#include <stdlib.h>
#include <string.h>

#include "common/webhook.h"

const char *cz_env(const char *name, const char *def) {
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

int cz_env_int(const char *name, int def, int lo, int hi) {
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi)
        return def;
    return (int)n;
}

void cz_config_load(cz_config *cfg) {
    cfg->database_url =
        cz_env("CADENZA_DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/cadenza");
    cfg->kafka_brokers = cz_env("CADENZA_KAFKA_BROKERS", "127.0.0.1:59092");
    cfg->redis_url = cz_env("CADENZA_REDIS_URL", "redis://127.0.0.1:56379/0");
    cfg->api_listen = cz_env("CADENZA_API_LISTEN", "127.0.0.1:58080");
    cfg->artifact_dir = cz_env("CADENZA_ARTIFACT_DIR", ".cadenza/artifacts");
    cfg->soundfont = cz_env("CADENZA_SOUNDFONT", "/usr/share/sounds/sf2/FluidR3_GM.sf2");
    cfg->neural_weights =
        cz_env("CADENZA_NEURAL_WEIGHTS", "workers/models/neural/weights/neural-1.cztf");
    cfg->neural_device = cz_env("CADENZA_NEURAL_DEVICE", "cpu");
    cfg->migrations_dir = cz_env("CADENZA_MIGRATIONS_DIR", "migrations");
    cfg->kafka_partitions = cz_env_int("CADENZA_KAFKA_PARTITIONS", 8, 1, 1024);
    cfg->api_threads = cz_env_int("CADENZA_API_THREADS", 8, 1, 256);
    cfg->lease_s = cz_env_int("CADENZA_LEASE_S", 120, 2, 86400);
    cfg->retry_base_ms = cz_env_int("CADENZA_RETRY_BASE_MS", 2000, 0, 3600000);
    cfg->retry_cap_ms = cz_env_int("CADENZA_RETRY_CAP_MS", 300000, 0, 86400000);
    cfg->cache_ttl_s = cz_env_int("CADENZA_CACHE_TTL_S", 7 * 24 * 3600, 1, 365 * 24 * 3600);
    cfg->cache_max_entries = cz_env_int("CADENZA_CACHE_MAX_ENTRIES", 100000, 1, 100000000);
    cfg->sse_heartbeat_s = cz_env_int("CADENZA_SSE_HEARTBEAT_S", 15, 1, 3600);
    cfg->review_lease_s = cz_env_int("CADENZA_REVIEW_LEASE_S", 600, 1, 86400);
    cfg->rate_limit_per_s = cz_env_int("CADENZA_RATE_LIMIT_PER_S", 100, 1, 1000000);
    cfg->rate_limit_burst = cz_env_int("CADENZA_RATE_LIMIT_BURST", 500, 1, 1000000);
    cfg->rate_limit_fail_open = strcmp(cz_env("CADENZA_RATE_LIMIT_REDIS_DOWN", "open"), "closed");
    cfg->rate_limit_timeout_ms = cz_env_int("CADENZA_RATE_LIMIT_TIMEOUT_MS", 100, 1, 10000);
    cfg->api_batch_max = cz_env_int("CADENZA_API_BATCH_MAX", 128, 1, 4096);
    cfg->api_max_connections = cz_env_int("CADENZA_API_MAX_CONNECTIONS", 512, 1, 65536);
    cfg->api_key_cache_ms = cz_env_int("CADENZA_API_KEY_CACHE_MS", 1000, 0, 60000);
    cfg->api_models_cache_ms = cz_env_int("CADENZA_API_MODELS_CACHE_MS", 1000, 0, 60000);
    /* Production reaches the public internet only; the local stack adds loopback. */
    cfg->webhook_allow = cz_env("CADENZA_WEBHOOK_ALLOW", "");
    cfg->webhook_schedule = cz_env("CADENZA_WEBHOOK_SCHEDULE", CZ_WEBHOOK_DEFAULT_SCHEDULE);
    cfg->webhook_timeout_s = cz_env_int("CADENZA_WEBHOOK_TIMEOUT_S", 15, 1, 300);
    cfg->webhook_concurrency = cz_env_int("CADENZA_WEBHOOK_CONCURRENCY", 256, 1, 4096);
    cfg->webhook_endpoint_concurrency =
        cz_env_int("CADENZA_WEBHOOK_ENDPOINT_CONCURRENCY", 16, 1, 1024);
    cfg->webhook_rotation_s = cz_env_int("CADENZA_WEBHOOK_ROTATION_S", 86400, 0, 30 * 86400);
    cfg->playlist_ttl_s = cz_env_int("CADENZA_PLAYLIST_TTL_S", 600, 1, 7 * 86400);
    cfg->playlist_sync_ms = cz_env_int("CADENZA_PLAYLIST_SYNC_MS", 2000, 50, 3600000);
    cfg->playlist_refresh_s = cz_env_int("CADENZA_PLAYLIST_REFRESH_S", 30, 1, 86400);
    cfg->playlist_top = cz_env_int("CADENZA_PLAYLIST_PRECOMPUTE", 100, 0, 100000);
    cfg->max_batch = cz_env_int("CADENZA_MAX_BATCH", 16, 1, 64);
    cfg->max_queue_delay_ms = cz_env_int("CADENZA_MAX_QUEUE_DELAY_MS", 50, 0, 10000);
}
