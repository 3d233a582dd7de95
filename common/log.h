/* Structured logs: one JSON object per line on stderr, with the process
 * name, level, message and, where there is one, the job and trace ids, so
 * a job's path can be followed across processes with one grep. */
#ifndef CZ_LOG_H
#define CZ_LOG_H

typedef enum cz_log_level { CZ_LOG_DEBUG, CZ_LOG_INFO, CZ_LOG_WARN, CZ_LOG_ERROR } cz_log_level;

/** @brief Names the process in every line and sets the minimum level
 * (CADENZA_LOG_LEVEL: debug|info|warn|error). Call once from main(). */
void cz_log_init(const char *process);

/** @brief Logs a line; @p job_id and @p trace_id may be NULL. Thread-safe. */
void cz_log_job(cz_log_level level, const char *job_id, const char *trace_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define cz_log_debug(...) cz_log_job(CZ_LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define cz_log_info(...) cz_log_job(CZ_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define cz_log_warn(...) cz_log_job(CZ_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define cz_log_error(...) cz_log_job(CZ_LOG_ERROR, NULL, NULL, __VA_ARGS__)

#endif
