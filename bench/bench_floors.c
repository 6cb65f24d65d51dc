/* vgpu-bench's floors: what this machine's kernel, memory and cores allow at best, measured in
 * the same run as the remote figures so that each can be given as a ratio to its floor. Each
 * ping-pong and transfer runs between two processes (a fork), as a client and its session
 * process do. */
#include "bench.h"

#include <errno.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "shm.h"

#define PING_BYTES 64
/* A spinning ping-pong whose two processes share a core can take a scheduler tick per round
 * trip; the measurement stops after this long whatever it reached. */
#define SPIN_BUDGET_S 2.0

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int wait_child(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- socket ping-pong ---- */

/* A connected pair of TCP loopback sockets (both TCP_NODELAY) or a Unix socket pair. */
static int socket_pair(int tcp, int sv[2])
{
    if (!tcp)
        return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0) {
        if (l >= 0)
            close(l);
        return -1;
    }
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof a) != 0) {
        close(l);
        if (sv[0] >= 0)
            close(sv[0]);
        return -1;
    }
    sv[1] = accept(l, NULL, NULL);
    close(l);
    if (sv[1] < 0) {
        close(sv[0]);
        return -1;
    }
    int one = 1;
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* Microseconds per 64-byte round trip between two processes (median of reps), -1 on failure. */
static double socket_ping_pong(int tcp, unsigned iters, unsigned reps)
{
    int sv[2];
    if (socket_pair(tcp, sv) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    char buf[PING_BYTES] = {0};
    if (pid == 0) {
        close(sv[0]);
        for (unsigned i = 0; i < (iters + 1) * reps; i++)
            if (vg_io_read_all(sv[1], buf, sizeof buf) || vg_io_write_all(sv[1], buf, sizeof buf))
                _exit(1);
        _exit(0);
    }
    close(sv[1]);
    double samples[reps];
    int ok = 1;
    for (unsigned r = 0; r < reps && ok; r++) {
        ok = !vg_io_write_all(sv[0], buf, sizeof buf) && !vg_io_read_all(sv[0], buf, sizeof buf); /* warm */
        double t0 = bench_now_s();
        for (unsigned i = 0; i < iters && ok; i++)
            ok = !vg_io_write_all(sv[0], buf, sizeof buf) && !vg_io_read_all(sv[0], buf, sizeof buf);
        samples[r] = (bench_now_s() - t0) / iters * 1e6;
    }
    close(sv[0]);
    if (wait_child(pid) != 0)
        ok = 0;
    return ok ? bench_median(samples, reps) : -1;
}

/* ---- shared-page ping-pong ---- */

static void futex_wait(uint32_t *w, uint32_t seen)
{
    syscall(SYS_futex, w, FUTEX_WAIT, seen, NULL, NULL, 0);
}

static void futex_wake(uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Waits until *w == want: by futex (spin = 0) or by spinning. */
static void page_wait(uint32_t *w, uint32_t want, int spin)
{
    for (;;) {
        uint32_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        if (v == want)
            return;
        if (spin)
            vg_cpu_relax();
        else
            futex_wait(w, v);
    }
}

static void page_post(uint32_t *w, uint32_t v, int spin)
{
    __atomic_store_n(w, v, __ATOMIC_RELEASE);
    if (!spin)
        futex_wake(w);
}

/* Microseconds per round trip through one shared page: each side waits for its word by futex or
 * by spinning. cpu_a, cpu_b >= 0 pin the two processes. Median of reps; -1 on failure. */
static double page_ping_pong(int spin, unsigned iters, unsigned reps, int cpu_a, int cpu_b)
{
    uint32_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -1;
    uint32_t *ping = &page[0], *pong = &page[16]; /* different cache lines */
    pid_t pid = fork();
    if (pid < 0) {
        munmap(page, 4096);
        return -1;
    }
    if (pid == 0) {
        if (cpu_b >= 0)
            pin_to(cpu_b);
        for (uint32_t i = 1;; i++) {
            page_wait(ping, i, spin);
            if (__atomic_load_n(&page[32], __ATOMIC_ACQUIRE))
                _exit(0);
            page_post(pong, i, spin);
        }
    }
    cpu_set_t old;
    sched_getaffinity(0, sizeof old, &old);
    if (cpu_a >= 0)
        pin_to(cpu_a);
    double samples[reps];
    unsigned done = 0;
    uint32_t seq = 0;
    double t_end = bench_now_s() + SPIN_BUDGET_S * reps;
    for (unsigned r = 0; r < reps; r++) {
        double t0 = bench_now_s();
        unsigned i = 0;
        for (; i < iters; i++) {
            seq++;
            page_post(ping, seq, spin);
            page_wait(pong, seq, spin);
            if (spin && (i & 255) == 255 && bench_now_s() > t_end)
                break;
        }
        if (i == 0)
            break;
        samples[done++] = (bench_now_s() - t0) / i * 1e6;
        if (i < iters)
            break;
    }
    __atomic_store_n(&page[32], 1, __ATOMIC_RELEASE);
    page_post(ping, seq + 1, spin);
    wait_child(pid);
    sched_setaffinity(0, sizeof old, &old);
    munmap(page, 4096);
    return done ? bench_median(samples, done) : -1;
}

/* ---- bulk ---- */

/* GB/s of a one-way TCP transfer of `bytes` between two processes, from the first byte sent to
 * the receiver's acknowledgement that all of it is in its buffer. Median of reps. */
static double tcp_transfer(size_t bytes, unsigned reps)
{
    int sv[2];
    if (socket_pair(1, sv) != 0)
        return -1;
    char *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    memset(buf, 0x5a, bytes); /* both sides' buffers are in memory, as a program's would be */
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        munmap(buf, bytes);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        for (unsigned r = 0; r < reps + 1; r++) {
            char ack = 1;
            if (vg_io_read_all(sv[1], buf, bytes) || vg_io_write_all(sv[1], &ack, 1))
                _exit(1);
        }
        _exit(0);
    }
    close(sv[1]);
    double samples[reps];
    int ok = 1;
    for (unsigned r = 0; r < reps + 1 && ok; r++) { /* rep 0 warms up */
        char ack;
        double t0 = bench_now_s();
        ok = !vg_io_write_all(sv[0], buf, bytes) && !vg_io_read_all(sv[0], &ack, 1);
        if (r > 0)
            samples[r - 1] = (double)bytes / (bench_now_s() - t0) / 1e9;
    }
    close(sv[0]);
    if (wait_child(pid) != 0)
        ok = 0;
    munmap(buf, bytes);
    return ok ? bench_median(samples, reps) : -1;
}

static double memcpy_rate(size_t bytes, unsigned reps)
{
    char *a = malloc(bytes), *b = malloc(bytes);
    double samples[reps];
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    for (unsigned r = 0; r < reps + 1; r++) {
        double t0 = bench_now_s();
        memcpy(r & 1 ? a : b, r & 1 ? b : a, bytes);
        __asm__ __volatile__("" ::: "memory");
        if (r > 0)
            samples[r - 1] = (double)bytes / (bench_now_s() - t0) / 1e9;
    }
    free(a);
    free(b);
    return bench_median(samples, reps);
}

void bench_floors_run(const struct bench_opts *o, struct bench_floors *f)
{
    memset(f, 0, sizeof *f);
    unsigned iters = o->calls, reps = o->reps;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    f->tcp_pp_us = socket_ping_pong(1, iters, reps);
    f->unix_pp_us = socket_ping_pong(0, iters, reps);
    f->futex_pp_us = page_ping_pong(0, iters, reps, -1, -1);
    /* Spinning needs a core per side: each process gets its own (when there are two). */
    f->spin_pp_us = page_ping_pong(1, iters, reps, cpus > 1 ? 0 : -1, cpus > 1 ? 1 : -1);
    f->futex_pp_1core_us = page_ping_pong(0, iters, reps, 0, 0);
    f->tcp_xfer_gbps = tcp_transfer(BENCH_COPY_MAX, reps);
    f->memcpy_gbps = memcpy_rate(BENCH_COPY_MAX, reps);
}

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
