/* vgpu-bench: the same driver-API measurements in-process on the emulated GPU and remotely
 * through gpu-server, side by side.
 *
 * Two libcuda.so.1 with one SONAME cannot share a process, so the parent (vgpu_bench.c) runs each
 * mode in a child (itself, re-executed with --mode) whose loader path selects the library; the
 * child (bench_child.c) measures and writes result lines to a pipe. */
#ifndef VG_BENCH_H
#define VG_BENCH_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Copy sizes: 4 KiB to 64 MiB in powers of 4. */
#define BENCH_COPY_SIZES 8
#define BENCH_COPY_MIN ((size_t)4 << 10)
#define BENCH_COPY_MAX ((size_t)64 << 20)

struct bench_opts {
    unsigned calls;       /* null calls per repetition */
    unsigned launches;    /* empty-kernel launches per repetition */
    size_t copy_budget;   /* bytes moved per repetition of one copy size (at least one copy) */
    unsigned reps;        /* repetitions; the median is reported */
};

/* Runs every measurement against the libcuda.so.1 the loader finds and writes one line per
 * result to result_fd:
 *   lib PATH | device NAME | null_call_us X | h2d_gbps BYTES X | d2h_gbps BYTES X |
 *   launch_per_s X | error MESSAGE
 * Returns 0 when every measurement ran, 1 after writing an error line for each that failed. */
int bench_child_run(const struct bench_opts *opts, int result_fd);

/* vgpu-bench share (share.c): argv[0] is "share"; self is this executable, build its build
 * directory. And its client, run as "vgpu-bench share-client ...". Exit statuses. */
int bench_share(int argc, char **argv, const char *self, const char *build);
int bench_share_client(int argc, char **argv);

/* The build directory vgpu-bench runs from (<build>/bin/vgpu-bench). 0 or -1. */
int bench_build_dir(char *buf, size_t len);

/* A gpu-server of vgpu-bench's own: <build>/bin/gpu-server on a free loopback port on the
 * emulated GPU, with extra arguments (NULL-terminated, may be NULL). addr is "127.0.0.1:PORT". */
struct bench_server {
    pid_t pid;
    char port_file[64];
    char log_file[64];
    char addr[128];
};
int bench_server_start(struct bench_server *s, const char *build, const char *const *extra, char *err, size_t errlen);
void bench_server_stop(struct bench_server *s);
/* Prints the end of a server's log (after a failure). */
void bench_log_tail(const char *path, FILE *to);

#endif
