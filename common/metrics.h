/* Prometheus metrics: counters, gauges and histograms in one per-process
 * registry, rendered in the text exposition format, and a tiny HTTP
 * listener for processes that have no HTTP server of their own.
 *
 * A series is a name plus a fixed label set ("pool=\"inference\""); asking
 * for the same name and labels again returns the same series, so callers
 * may look a series up on each use or keep the pointer. Updates are atomic
 * and lock-free; registering takes a mutex. Every name starts cadenza_. */
#ifndef CZ_METRICS_H
#define CZ_METRICS_H

#include "common/err.h"

typedef struct cz_metric cz_metric;

/** The default latency buckets, in seconds (0.005 .. 600). */
extern const double cz_metrics_latency_buckets[];
extern const int cz_metrics_latency_nbuckets;

/**
 * @brief The counter @p name{@p labels} (labels: "" or `k="v",k2="v2"`).
 * @returns the series, or NULL when the registry is full (updates to NULL
 * are ignored).
 */
cz_metric *cz_metric_counter(const char *name, const char *help, const char *labels);

/** @brief The gauge @p name{@p labels}; as cz_metric_counter. */
cz_metric *cz_metric_gauge(const char *name, const char *help, const char *labels);

/** @brief The histogram @p name{@p labels} with @p n upper bounds (ascending). */
cz_metric *cz_metric_histogram(const char *name, const char *help, const char *labels,
                               const double *bounds, int n);

/** @brief Adds @p v (>= 0) to a counter or gauge. NULL-safe. */
void cz_metric_add(cz_metric *m, double v);

/** @brief Sets a gauge. NULL-safe. */
void cz_metric_set(cz_metric *m, double v);

/** @brief Records one observation in a histogram. NULL-safe. */
void cz_metric_observe(cz_metric *m, double v);

/** @brief The current value of a counter or gauge (0 for NULL). */
double cz_metric_value(const cz_metric *m);

/**
 * @brief Every series in the text exposition format (version 0.0.4).
 * @returns the text, which the caller frees.
 */
char *cz_metrics_render(void);

/**
 * @brief Serves GET /metrics on @p listen ("host:port") from a thread of
 * its own, until the process exits. An empty or NULL @p listen serves nothing.
 * @returns 0, or -1 with @p err filled (bad address, port in use).
 */
int cz_metrics_serve(const char *listen, cz_err *err);

#endif
