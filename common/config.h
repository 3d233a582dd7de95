/* Per-process configuration, read once from the environment in main().
 * Every Cadenza binary takes the same variables, so one `.cadenza/env`
 * configures the whole local stack. Defaults suit the local stack that
 * deploy/local starts; production sets every variable explicitly. */
#ifndef CZ_CONFIG_H
#define CZ_CONFIG_H

typedef struct cz_config {
    const char *database_url;   /* CADENZA_DATABASE_URL */
    const char *kafka_brokers;  /* CADENZA_KAFKA_BROKERS */
    const char *redis_url;      /* CADENZA_REDIS_URL */
    const char *api_listen;     /* CADENZA_API_LISTEN, host:port */
    const char *artifact_dir;   /* CADENZA_ARTIFACT_DIR */
    const char *soundfont;      /* CADENZA_SOUNDFONT */
    const char *neural_weights; /* CADENZA_NEURAL_WEIGHTS: neural@1's CZTF file */
    const char *neural_device;  /* CADENZA_NEURAL_DEVICE: cpu or cuda, where neural@1 runs */
    const char *migrations_dir; /* CADENZA_MIGRATIONS_DIR */
    int kafka_partitions;       /* CADENZA_KAFKA_PARTITIONS: the most workers a pool may scale to */
    int api_threads;            /* CADENZA_API_THREADS */
    int lease_s;       /* CADENZA_LEASE_S: how long a running job may go without progress */
    int retry_base_ms; /* CADENZA_RETRY_BASE_MS: the first retry's backoff ceiling */
    int retry_cap_ms;  /* CADENZA_RETRY_CAP_MS: the largest backoff ceiling */
    /* The API's per-key rate limit (a token bucket in Redis), for keys
     * without their own: a sustained rate and a burst. */
    int rate_limit_per_s; /* CADENZA_RATE_LIMIT_PER_S */
    int rate_limit_burst; /* CADENZA_RATE_LIMIT_BURST */
    /* CADENZA_RATE_LIMIT_REDIS_DOWN=open|closed: when Redis cannot be asked,
     * serve requests unlimited (open, the default) or refuse them with 503. */
    int rate_limit_fail_open;
    int rate_limit_timeout_ms; /* CADENZA_RATE_LIMIT_TIMEOUT_MS: one Redis call's limit */
    int api_batch_max;         /* CADENZA_API_BATCH_MAX: most submissions in one commit */
    int api_max_connections;   /* CADENZA_API_MAX_CONNECTIONS: open client connections */
    int api_key_cache_ms;      /* CADENZA_API_KEY_CACHE_MS: how long a looked-up key is kept */
    int api_models_cache_ms;   /* CADENZA_API_MODELS_CACHE_MS: how long the registry is kept */
    int cache_ttl_s;           /* CADENZA_CACHE_TTL_S: how long a prompt-cache entry lives */
    int cache_max_entries;     /* CADENZA_CACHE_MAX_ENTRIES: the most entries kept */
    int sse_heartbeat_s;       /* CADENZA_SSE_HEARTBEAT_S: comment lines on idle event streams */
    /* Webhooks (see common/webhook.h, common/netguard.h, scheduler/webhooks.c). */
    const char *webhook_allow;        /* CADENZA_WEBHOOK_ALLOW: CIDR blocks beyond the public net */
    const char *webhook_schedule;     /* CADENZA_WEBHOOK_SCHEDULE: delay before each attempt */
    int webhook_timeout_s;            /* CADENZA_WEBHOOK_TIMEOUT_S: one attempt, start to end */
    int webhook_concurrency;          /* CADENZA_WEBHOOK_CONCURRENCY: attempts in flight, overall */
    int webhook_endpoint_concurrency; /* CADENZA_WEBHOOK_ENDPOINT_CONCURRENCY: per receiver */
    int webhook_rotation_s; /* CADENZA_WEBHOOK_ROTATION_S: an old secret's life after rotation */
    int playlist_ttl_s;     /* CADENZA_PLAYLIST_TTL_S: how long a cached playlist is served */
    int playlist_sync_ms;   /* CADENZA_PLAYLIST_SYNC_MS: how often new tracks are read */
    int playlist_refresh_s; /* CADENZA_PLAYLIST_REFRESH_S: the scheduler's precompute round */
    int playlist_top;       /* CADENZA_PLAYLIST_PRECOMPUTE: most requested playlists kept fresh */
    int review_lease_s;     /* CADENZA_REVIEW_LEASE_S: how long a curator's claim lasts */
    /* Dynamic batching of a model's jobs (workers/pool.c), Triton's two knobs. */
    int max_batch;          /* CADENZA_MAX_BATCH: most jobs decoded together */
    int max_queue_delay_ms; /* CADENZA_MAX_QUEUE_DELAY_MS: longest wait for a batch to fill */
} cz_config;

/** @brief Fills @p cfg from the environment, with defaults for what is unset. */
void cz_config_load(cz_config *cfg);

/** @brief Returns the value of env var @p name, or @p def when unset or empty. */
const char *cz_env(const char *name, const char *def);

/** @brief Returns env var @p name as an int within [lo, hi], or @p def. */
int cz_env_int(const char *name, int def, int lo, int hi);

#endif
