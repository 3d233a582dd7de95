/* What the tests of the remote backends share (test_backend.c for http@1,
 * test_http2.c for http@2): starting tests/reference_model.py on a free
 * port. A static function, for those test programs only. */
#ifndef CZ_TEST_REFERENCE_SERVER_H
#define CZ_TEST_REFERENCE_SERVER_H

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starts the reference server with the options @p extra (NULL-terminated;
 * NULL for none) on a free port, reads the port back and writes its base
 * URL to @p url. @returns the server's pid, or -1 when it did not start. */
static pid_t start_reference(char *url, size_t n, const char *const *extra) {
    const char *argv[16] = {"python3", "tests/reference_model.py", "--port", "0"};
    int argc = 4;
    for (int i = 0; extra && extra[i] && argc < 15; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    int port = 0;
    if (!f || fscanf(f, "listening on %d", &port) != 1) {
        if (f)
            fclose(f);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    fclose(f);
    snprintf(url, n, "http://127.0.0.1:%d", port);
    return pid;
}

#endif
