/* vgpu-bench: the same driver-API measurements in-process on the emulated GPU and remotely
 * through gpu-server over each transport (TCP, shared memory), beside this machine's floors
 * (raw ping-pongs, a raw TCP transfer, memcpy) measured in the same run.
 *
 * Two libcuda.so.1 with one SONAME cannot share a process, so the parent (vgpu_bench.c) runs each
 * mode in a child (itself, re-executed with --mode) whose loader path selects the library; the
 * child (bench_child.c) measures and writes result lines to a pipe. The floors (bench_floors.c)
 * are measured by the parent between pairs of processes it forks. */
#ifndef VG_BENCH_H
#define VG_BENCH_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Copy sizes: 4 KiB to 64 MiB in powers of 4. */
#define BENCH_COPY_SIZES 8
#define BENCH_COPY_MIN ((size_t)4 << 10)
#define BENCH_COPY_MAX ((size_t)64 << 20)
/* Copies from and to pinned memory (cuMemAllocHost) are measured from this size up. */
#define BENCH_PINNED_MIN ((size_t)256 << 10)

struct bench_opts {
    unsigned calls;       /* null calls (and ping-pong round trips) per repetition */
    unsigned launches;    /* empty-kernel launches per repetition */
    size_t copy_budget;   /* bytes moved per repetition of one copy size (at least one copy) */
    unsigned reps;        /* repetitions; the median is reported */
    int only_null;        /* measure the null call only */
};

/* Runs the measurements against the libcuda.so.1 the loader finds and writes one line per
 * result to result_fd:
 *   lib PATH | device NAME | null_call_us X | h2d_gbps BYTES X | d2h_gbps BYTES X |
 *   h2d_pinned_gbps BYTES X | d2h_pinned_gbps BYTES X | launch_per_s X | error MESSAGE
 * Returns 0 when every measurement ran, 1 after writing an error line for each that failed. */
int bench_child_run(const struct bench_opts *opts, int result_fd);

/* The floors; a figure is negative when it could not be measured. */
struct bench_floors {
    double tcp_pp_us;          /* 64-byte round trip over TCP loopback */
    double unix_pp_us;         /* the same over a Unix socket pair */
    double futex_pp_us;        /* through a shared page, each side sleeping on a futex */
    double spin_pp_us;         /* through a shared page, each side spinning on its own core */
    double futex_pp_1core_us;  /* the futex ping-pong with both processes on one core */
    double tcp_xfer_gbps;      /* one-way TCP transfer of 64 MiB into the receiver's buffer */
    double memcpy_gbps;        /* memcpy of 64 MiB */
};

void bench_floors_run(const struct bench_opts *opts, struct bench_floors *f);

/* Shared by the bench's files: CLOCK_MONOTONIC in seconds; the median of v[0..n) (sorts v). */
double bench_now_s(void);
double bench_median(double *v, unsigned n);

/* vgpu-bench share (share.c): argv[0] is "share"; self is this executable, build its build
 * directory. And its client, run as "vgpu-bench share-client ...". Exit statuses. */
int bench_share(int argc, char **argv, const char *self, const char *build);
int bench_share_client(int argc, char **argv);

/* The build directory vgpu-bench runs from (<build>/bin/vgpu-bench). 0 or -1. */
int bench_build_dir(char *buf, size_t len);

/* A gpu-server of vgpu-bench's own: <build>/bin/gpu-server on the emulated GPU, listening on a
 * free loopback port (addr, "127.0.0.1:PORT") and a Unix socket in a temporary directory
 * (unix_addr, "unix:DIR/gpu.sock": the shared-memory transport), with extra arguments
 * (NULL-terminated, may be NULL), pinned to cpu (>= 0; -1: anywhere). */
struct bench_server {
    pid_t pid;
    char dir[64];
    char port_file[96];
    char log_file[96];
    char addr[128];
    char unix_addr[128];
};
int bench_server_start(struct bench_server *s, const char *build, const char *const *extra, int cpu, char *err,
                       size_t errlen);
void bench_server_stop(struct bench_server *s);
/* Prints the end of a server's log (after a failure). */
void bench_log_tail(const char *path, FILE *to);

#endif
