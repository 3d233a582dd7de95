/* The supervisor: see supervisor.h.
 *
 * Each supervised pool has slots 0..63; slot i is wanted while i < desired.
 * Every tick (250 ms) the supervisor reaps exited workers, starts a worker
 * in each wanted empty slot whose backoff has passed, and sends SIGTERM to
 * the worker of each slot no longer wanted. Scaling down takes the highest
 * slots first. A worker told to stop is not restarted; one that exits on
 * its own (a crash, kill -9, an operator's SIGTERM) is, after a backoff
 * that doubles with each exit in a row (0.5 s up to 30 s) and starts again
 * once a worker has lived a minute. A slot being drained keeps its worker
 * until it exits, so scaling down and up again never runs two workers in
 * one slot.
 *
 * Files. Slot 0 of pool P writes its pid to $CADENZA_RUN_DIR/worker-P.pid,
 * slot i to worker-P-i.pid; every slot of P appends to
 * $CADENZA_LOG_DIR/worker-P.log (JSON lines carry the worker's name).
 * Without those variables the workers write to the scheduler's output.
 * With CADENZA_WORKER_METRICS_PORT_BASE, the worker in slot i of the k-th
 * supervised pool serves /metrics on base + 64k + i.
 *
 * Workers get PR_SET_PDEATHSIG=SIGTERM: if the scheduler dies (even by
 * kill -9), they finish or hand back their jobs and exit instead of living
 * on beside the workers of the next scheduler. The signal follows the
 * thread that forked, which is this one, and it ends only after stopping
 * them. fork() in a threaded process: the child only calls
 * async-signal-safe functions before exec, with everything prepared first. */
#include "scheduler/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/pools.h"
#include "common/log.h"
#include "common/mem.h"

#define SLOTS 64
#define TICK_MS 250
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define HEALTHY_MS 60000 /* a worker that lived this long resets the backoff */

typedef struct slot {
    pid_t pid;       /* 0: empty */
    bool stopping;   /* SIGTERM sent by us: do not restart */
    int64_t started; /* cz_mono_ms() */
    int64_t term_at; /* when SIGTERM was sent */
} slot;

typedef struct pool {
    char name[CZ_POOL_NAME_MAX];
    int desired; /* -1 until read */
    slot slots[SLOTS];
    int exits_in_row;
    int64_t next_start; /* no start before this (backoff) */
    int reported;       /* running, as last written to the pools table */
    int64_t reported_at;
} pool;

typedef struct supervisor {
    const cz_config *cfg;
    char worker_bin[PATH_MAX];
    const char *log_dir, *run_dir;
    pool pools[CZ_POOLS_MAX];
    int npools;
    int stop_s;
    int metrics_base; /* CADENZA_WORKER_METRICS_PORT_BASE, 0: none */
    const char *metrics_host;
    PGconn *db;
} supervisor;

static void pid_path(const supervisor *s, const pool *p, int i, char *out, size_t n) {
    if (i == 0)
        snprintf(out, n, "%s/worker-%s.pid", s->run_dir, p->name);
    else
        snprintf(out, n, "%s/worker-%s-%d.pid", s->run_dir, p->name, i);
}

static void write_pid(const supervisor *s, const pool *p, int i, pid_t pid) {
    if (!s->run_dir)
        return;
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    pid_path(s, p, i, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) || rename(tmp, path))
        cz_log_warn("supervisor: cannot write %s: %s", path, strerror(errno));
}

static void remove_pid(const supervisor *s, const pool *p, int i, pid_t pid) {
    if (!s->run_dir)
        return;
    char path[PATH_MAX], buf[32] = "";
    pid_path(s, p, i, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    bool ours = fgets(buf, sizeof buf, f) && atoi(buf) == (int)pid;
    fclose(f);
    if (ours) /* a newer worker's file is left alone */
        unlink(path);
}

extern char **environ;

/* The environment of the worker in slot @p i of the @p k-th pool: the
 * scheduler's, with CADENZA_METRICS_LISTEN set to the slot's own port
 * (CADENZA_WORKER_METRICS_PORT_BASE + k * 64 + i), or removed when there is
 * no base: the scheduler's own address must never be inherited. */
static char **worker_env(const supervisor *s, int k, int i, char *listen, size_t n) {
    size_t count = 0;
    while (environ[count])
        count++;
    char **env = cz_calloc(count + 2, sizeof *env);
    size_t j = 0;
    for (size_t e = 0; e < count; e++)
        if (strncmp(environ[e], "CADENZA_METRICS_LISTEN=", 23))
            env[j++] = environ[e];
    if (s->metrics_base > 0) {
        snprintf(listen, n, "CADENZA_METRICS_LISTEN=%s:%d", s->metrics_host,
                 s->metrics_base + k * SLOTS + i);
        env[j++] = listen;
    }
    env[j] = NULL;
    return env;
}

/* Starts a worker in slot @p i of @p p. */
static void start(supervisor *s, pool *p, int i) {
    char logf[PATH_MAX] = "";
    if (s->log_dir)
        snprintf(logf, sizeof logf, "%s/worker-%s.log", s->log_dir, p->name);
    char *const argv[] = {s->worker_bin, "--pool", p->name, NULL};
    char listen[128];
    char **env = worker_env(s, (int)(p - s->pools), i, listen, sizeof listen);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        free(env);
        cz_log_error("supervisor: cannot fork a %s worker: %s", p->name, strerror(errno));
        p->next_start = cz_mono_ms() + BACKOFF_MIN_MS;
        return;
    }
    if (pid == 0) {
        /* The child: async-signal-safe calls only, then exec. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* the scheduler blocks SIGTERM */
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        if (logf[0]) {
            int out = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (out >= 0) {
                dup2(out, 1);
                dup2(out, 2);
            }
        }
        close_range(3, ~0U, 0);
        execve(argv[0], argv, env);
        _exit(127);
    }
    free(env);
    p->slots[i] = (slot){.pid = pid, .started = cz_mono_ms()};
    write_pid(s, p, i, pid);
    cz_log_info("supervisor: started %s worker %d (pid %d)", p->name, i, (int)pid);
}

static void describe_exit(int status, char *out, size_t n) {
    if (WIFSIGNALED(status))
        snprintf(out, n, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, n, "exited with status %d", WEXITSTATUS(status));
}

/* Reaps the workers of @p p that have exited; schedules restarts. */
static void reap(supervisor *s, pool *p) {
    int64_t now = cz_mono_ms();
    for (int i = 0; i < SLOTS; i++) {
        slot *sl = &p->slots[i];
        int status;
        if (!sl->pid || waitpid(sl->pid, &status, WNOHANG) != sl->pid)
            continue;
        char how[64];
        describe_exit(status, how, sizeof how);
        remove_pid(s, p, i, sl->pid);
        if (sl->stopping) {
            cz_log_info("supervisor: %s worker %d (pid %d) stopped: %s", p->name, i, (int)sl->pid,
                        how);
        } else {
            if (now - sl->started >= HEALTHY_MS)
                p->exits_in_row = 0;
            int64_t backoff = BACKOFF_MIN_MS;
            for (int k = 0; k < p->exits_in_row && backoff < BACKOFF_MAX_MS; k++)
                backoff *= 2;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            p->exits_in_row++;
            p->next_start = now + backoff;
            cz_log_warn("supervisor: %s worker %d (pid %d) %s; restarting in %lld ms", p->name, i,
                        (int)sl->pid, how, (long long)backoff);
            char reason[160];
            snprintf(reason, sizeof reason, "worker %d (pid %d) %s; restarted after %lld ms", i,
                     (int)sl->pid, how, (long long)backoff);
            cz_err err;
            if (s->db && cz_db_pool_note(s->db, p->name, "supervisor", "restart", reason, &err))
                cz_log_warn("supervisor: %s", err.msg);
        }
        sl->pid = 0;
        sl->stopping = false;
    }
}

/* Brings the workers of @p p toward its desired count. */
static void converge(supervisor *s, pool *p) {
    int64_t now = cz_mono_ms();
    for (int i = 0; i < SLOTS; i++) {
        slot *sl = &p->slots[i];
        if (i < p->desired) {
            if (!sl->pid && now >= p->next_start)
                start(s, p, i);
        } else if (sl->pid && !sl->stopping) {
            cz_log_info("supervisor: scaling %s down: SIGTERM to worker %d (pid %d)", p->name, i,
                        (int)sl->pid);
            kill(sl->pid, SIGTERM);
            sl->stopping = true;
            sl->term_at = now;
        }
        /* A drained worker that outlives its time is killed; its job's
         * lease expires and the job is retried. */
        if (sl->pid && sl->stopping && now - sl->term_at > (int64_t)s->stop_s * 1000) {
            cz_log_warn("supervisor: %s worker %d (pid %d) ignored SIGTERM for %d s: SIGKILL",
                        p->name, i, (int)sl->pid, s->stop_s);
            kill(sl->pid, SIGKILL);
            sl->term_at = now; /* once per stop_s */
        }
    }
}

static int running(const pool *p) {
    int n = 0;
    for (int i = 0; i < SLOTS; i++)
        n += p->slots[i].pid && !p->slots[i].stopping;
    return n;
}

/* Reads desired for every supervised pool; keeps the last values when the
 * database cannot be reached. */
static void read_desired(supervisor *s) {
    cz_err err;
    if (!s->db && !(s->db = cz_db_connect(s->cfg->database_url, &err))) {
        cz_log_warn("supervisor: %s", err.msg);
        return;
    }
    if (cz_db_ensure(s->db))
        return;
    cz_pool rows[CZ_POOLS_MAX];
    int n = cz_db_pools_load(s->db, rows, CZ_POOLS_MAX, &err);
    if (n < 0) {
        cz_log_warn("supervisor: %s", err.msg);
        return;
    }
    for (int k = 0; k < s->npools; k++)
        for (int j = 0; j < n; j++)
            if (!strcmp(rows[j].name, s->pools[k].name)) {
                int d = rows[j].desired < 0 ? 0 : rows[j].desired > SLOTS ? SLOTS : rows[j].desired;
                if (d != s->pools[k].desired)
                    cz_log_info("supervisor: %s desired %d (was %d)", rows[j].name, d,
                                s->pools[k].desired);
                s->pools[k].desired = d;
            }
}

static void report(supervisor *s, pool *p) {
    int n = running(p);
    int64_t now = cz_mono_ms();
    if (!s->db || (n == p->reported && now - p->reported_at < 5000))
        return;
    cz_err err;
    if (cz_db_pool_observe(s->db, p->name, n, -1, -1, &err) == 0) {
        p->reported = n;
        p->reported_at = now;
    }
}

static void shutdown_all(supervisor *s) {
    int64_t now = cz_mono_ms();
    for (int k = 0; k < s->npools; k++)
        for (int i = 0; i < SLOTS; i++) {
            slot *sl = &s->pools[k].slots[i];
            if (sl->pid && !sl->stopping) {
                kill(sl->pid, SIGTERM);
                sl->stopping = true;
                sl->term_at = now;
            }
        }
    for (;;) {
        int left = 0;
        for (int k = 0; k < s->npools; k++) {
            reap(s, &s->pools[k]);
            for (int i = 0; i < SLOTS; i++) {
                slot *sl = &s->pools[k].slots[i];
                if (!sl->pid)
                    continue;
                left++;
                if (cz_mono_ms() - now > (int64_t)s->stop_s * 1000)
                    kill(sl->pid, SIGKILL);
            }
        }
        if (!left)
            break;
        usleep(100 * 1000);
    }
    for (int k = 0; k < s->npools; k++)
        report(s, &s->pools[k]);
}

/* The worker binary: CADENZA_WORKER_BIN, or cadenza-worker beside this one. */
static int find_worker(char *out, size_t n) {
    const char *env = cz_env("CADENZA_WORKER_BIN", NULL);
    if (env) {
        snprintf(out, n, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return -1;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return snprintf(out, n, "%.*s/cadenza-worker", (int)(n - 16), self) < (int)n ? 0 : -1;
}

void cz_supervisor_run(const cz_config *cfg, atomic_bool *stop) {
    const char *list = cz_env("CADENZA_SUPERVISE", NULL);
    if (!list)
        return;
    static supervisor s; /* large (slots); one per process */
    s.cfg = cfg;
    s.log_dir = cz_env("CADENZA_LOG_DIR", NULL);
    s.run_dir = cz_env("CADENZA_RUN_DIR", NULL);
    s.stop_s = cz_env_int("CADENZA_SUPERVISE_STOP_S", 25, 1, 3600);
    s.metrics_base = cz_env_int("CADENZA_WORKER_METRICS_PORT_BASE", 0, 0, 65535 - 2 * SLOTS);
    s.metrics_host = cz_env("CADENZA_WORKER_METRICS_HOST", "127.0.0.1");
    if (find_worker(s.worker_bin, sizeof s.worker_bin) || access(s.worker_bin, X_OK)) {
        cz_log_error("supervisor: no worker binary at %s (set CADENZA_WORKER_BIN)", s.worker_bin);
        return;
    }
    char names[256];
    snprintf(names, sizeof names, "%s", list);
    for (char *save = NULL, *t = strtok_r(names, ", ", &save); t && s.npools < CZ_POOLS_MAX;
         t = strtok_r(NULL, ", ", &save)) {
        pool *p = &s.pools[s.npools++];
        snprintf(p->name, sizeof p->name, "%s", t);
        p->desired = -1;
        p->reported = -1;
    }
    cz_log_info("supervisor: running the workers of %s (%s)", list, s.worker_bin);
    int64_t next_read = 0;
    while (!atomic_load(stop)) {
        if (cz_mono_ms() >= next_read) {
            read_desired(&s);
            next_read = cz_mono_ms() + 1000;
        }
        for (int k = 0; k < s.npools; k++) {
            pool *p = &s.pools[k];
            reap(&s, p);
            if (p->desired >= 0)
                converge(&s, p);
            report(&s, p);
        }
        usleep(TICK_MS * 1000);
    }
    cz_log_info("supervisor: stopping every worker");
    shutdown_all(&s);
    PQfinish(s.db);
}
