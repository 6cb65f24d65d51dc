/* vgpu-bench: the same driver-API measurements in-process on the emulated GPU and remotely
 * through gpu-server, side by side.
 *
 * Two libcuda.so.1 with one SONAME cannot share a process, so the parent (vgpu_bench.c) runs each
 * mode in a child (itself, re-executed with --mode) whose loader path selects the library; the
 * child (bench_child.c) measures and writes result lines to a pipe. */
#ifndef VG_BENCH_H
#define VG_BENCH_H

#include <stddef.h>

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

#endif
