/* vgpu-bench's gpu-server: started on a free loopback port and a Unix socket (for the
 * shared-memory transport) for a measurement, stopped after. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_SERVER_START_S 20

int bench_build_dir(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *bin = dirname(exe);
    char *build = dirname(bin);
    if (strlen(build) + 1 > len)
        return -1;
    snprintf(buf, len, "%s", build);
    return 0;
}


void bench_log_tail(const char *path, FILE *to)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (n)
        fprintf(to, "--- gpu-server log (tail) ---\n%s%s---\n", buf, buf[n - 1] == '\n' ? "" : "\n");
}

/* Reads the port file; accepts "PORT" or "HOST:PORT". Returns 1 once it names a port. */
static int read_port_file(struct bench_server *s)
{
    FILE *f = fopen(s->port_file, "r");
    if (!f)
        return 0;
    char buf[128] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, " \r\n")] = '\0';
    char *port = strrchr(buf, ':');
    port = port ? port + 1 : buf;
    char *end;
    long p = strtol(port, &end, 10);
    if (end == port || *end || p <= 0 || p > 65535)
        return 0;
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%ld", p);
    return 1;
}

void bench_server_stop(struct bench_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        /* give it 5 s to shut down cleanly, then insist */
        for (int i = 0; i < 100; i++) {
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
                s->pid = 0;
                break;
            }
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        }
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
        }
    }
    if (s->dir[0]) {
        unlink(s->port_file);
        unlink(s->log_file);
        unlink(s->unix_addr + 5);
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

/* Starts <build>/bin/gpu-server on a free loopback port and DIR/gpu.sock, pinned to cpu (>= 0:
 * its session processes inherit it). On failure writes why into err, leaves nothing running and
 * returns -1. */
int bench_server_start(struct bench_server *s, const char *build, const char *const *extra, int cpu, char *err,
                       size_t errlen)
{
    char exe[PATH_MAX + 32];
    memset(s, 0, sizeof *s);
    snprintf(exe, sizeof exe, "%s/bin/gpu-server", build);
    if (access(exe, X_OK) != 0) {
        snprintf(err, errlen, "%s: %s (build the gpu-server target)", exe, strerror(errno));
        return -1;
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/vgpu-bench.XXXXXX");
    if (!mkdtemp(s->dir)) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->port_file, sizeof s->port_file, "%s/port", s->dir);
    snprintf(s->log_file, sizeof s->log_file, "%s/server.log", s->dir);
    snprintf(s->unix_addr, sizeof s->unix_addr, "unix:%s/gpu.sock", s->dir);
    int lfd = open(s->log_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (lfd < 0) {
        snprintf(err, errlen, "%s: %s", s->log_file, strerror(errno));
        bench_server_stop(s);
        return -1;
    }
    s->pid = fork();
    if (s->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(lfd);
        s->pid = 0;
        bench_server_stop(s);
        return -1;
    }
    if (s->pid == 0) {
        dup2(lfd, 1);
        dup2(lfd, 2);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        const char *argv[32] = {exe, "--listen", "127.0.0.1:0", "--listen", s->unix_addr, "--port-file",
                                s->port_file, "--driver", "emulated"};
        int argc = 9;
        for (int i = 0; extra && extra[i] && argc < 31; i++)
            argv[argc++] = extra[i];
        argv[argc] = NULL;
        execv(exe, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(lfd);
    for (int i = 0; i < BENCH_SERVER_START_S * 50; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            snprintf(err, errlen, "gpu-server exited during start-up (status %d)",
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            bench_log_tail(s->log_file, stderr);
            bench_server_stop(s);
            return -1;
        }
        if (read_port_file(s))
            return 0;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    snprintf(err, errlen, "gpu-server wrote no port to %s within %d s", s->port_file, BENCH_SERVER_START_S);
    bench_log_tail(s->log_file, stderr);
    bench_server_stop(s);
    return -1;
}

