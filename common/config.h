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
    const char *migrations_dir; /* CADENZA_MIGRATIONS_DIR */
    int kafka_partitions;       /* CADENZA_KAFKA_PARTITIONS: the most workers a pool may scale to */
    int api_threads;            /* CADENZA_API_THREADS */
    int lease_s;       /* CADENZA_LEASE_S: how long a running job may go without progress */
    int retry_base_ms; /* CADENZA_RETRY_BASE_MS: the first retry's backoff ceiling */
    int retry_cap_ms;  /* CADENZA_RETRY_CAP_MS: the largest backoff ceiling */
    /* Webhooks (see common/webhook.h, common/netguard.h, scheduler/webhooks.c). */
    const char *webhook_allow;        /* CADENZA_WEBHOOK_ALLOW: CIDR blocks beyond the public net */
    const char *webhook_schedule;     /* CADENZA_WEBHOOK_SCHEDULE: delay before each attempt */
    int webhook_timeout_s;            /* CADENZA_WEBHOOK_TIMEOUT_S: one attempt, start to end */
    int webhook_concurrency;          /* CADENZA_WEBHOOK_CONCURRENCY: attempts in flight, overall */
    int webhook_endpoint_concurrency; /* CADENZA_WEBHOOK_ENDPOINT_CONCURRENCY: per receiver */
    int webhook_rotation_s; /* CADENZA_WEBHOOK_ROTATION_S: an old secret's life after rotation */
} cz_config;

/** @brief Fills @p cfg from the environment, with defaults for what is unset. */
void cz_config_load(cz_config *cfg);

/** @brief Returns the value of env var @p name, or @p def when unset or empty. */
const char *cz_env(const char *name, const char *def);

/** @brief Returns env var @p name as an int within [lo, hi], or @p def. */
int cz_env_int(const char *name, int def, int lo, int hi);

#endif
