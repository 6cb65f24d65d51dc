/* vgpu-emu-bench: speed of the emulated GPU's engines on their own (no driver, no server).
 *
 * Runs (a) a straight-line f32 arithmetic kernel and (b) a 16x16-tiled shared-memory matrix
 * multiply, both compiled from bench/kernels/emu_bench_kernels.cu by nvcc at build time, on each
 * engine this build has (the interpreter, and the JIT when built with LLVM), one engine beside
 * the other: first on one worker thread, then on every online CPU. It prints lane-instructions
 * per second (ptx_launch.lane_instructions over wall time, the best of several runs: the machine
 * may be shared) in total and per core, and for the JIT the time its first launch spent
 * compiling. The matrix product is checked against the CPU.
 *
 * Usage: vgpu-emu-bench [--quick] [kernels.ptx] [matrix-size] */
#include "ptx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef EMU_BENCH_PTX
#define EMU_BENCH_PTX "emu_bench_kernels.ptx"
#endif

#define BENCH_MAX_ALLOCS 8
#define BENCH_BASE 0x10000000000ull

/* A trivial device memory: a few malloc'd allocations at fake device addresses. */
typedef struct bench_mem {
    size_t n;
    uint64_t next;
    struct { uint64_t addr; size_t size; uint8_t *host; } a[BENCH_MAX_ALLOCS];
} bench_mem;

static void *bench_translate(void *ctx, uint64_t addr, size_t len)
{
    bench_mem *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        if (addr >= m->a[i].addr && addr - m->a[i].addr <= m->a[i].size &&
            len <= m->a[i].size - (addr - m->a[i].addr))
            return m->a[i].host + (addr - m->a[i].addr);
    return NULL;
}

static uint64_t bench_alloc(bench_mem *m, size_t size, void **host)
{
    if (m->n == BENCH_MAX_ALLOCS)
        return 0;
    uint8_t *h = calloc(1, size);
    if (!h)
        return 0;
    uint64_t addr = m->next;
    m->next += (size + 0xfffff) & ~0xfffffull;
    m->a[m->n].addr = addr;
    m->a[m->n].size = size;
    m->a[m->n].host = h;
    m->n++;
    *host = h;
    return addr;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0)
        goto fail;
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    fclose(f);
    *len = (size_t)n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

static void put_param(uint8_t *buf, const ptx_kernel *k, size_t i, const void *v, size_t size)
{
    size_t off, psize;
    ptx_kernel_param(k, i, &off, &psize);
    if (psize == size)
        memcpy(buf + off, v, size);
}

static int bench_repeats = 7;

typedef struct engine_desc {
    int engine;
    const char *name;
} engine_desc;

static const engine_desc engines[] = {
    {PTX_ENGINE_INTERP, "interpreter"},
    {PTX_ENGINE_JIT, "jit"},
};

/* Runs a launch bench_repeats times and prints the best rates: in wall time, and per core as
 * lane-instructions per CPU-second of the process (the worker threads' time, which time-slicing
 * with other processes on a shared machine does not inflate). Returns 0 on success. */
static int timed_run(const char *label, ptx_launch *l, const engine_desc *e, unsigned workers)
{
    char err[256];
    l->workers = workers;
    l->engine = e->engine;
    double wall = 0, cpu = 0;
    for (int rep = 0; rep < bench_repeats; rep++) {
        double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        int rc = ptx_launch_run(l, err, sizeof(err));
        double t = now_s() - t0, ct = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (rc != PTX_OK) {
            fprintf(stderr, "%s (%s): launch failed (%d): %s\n", label, e->name, rc, err);
            return -1;
        }
        if (rep == 0 || t < wall)
            wall = t;
        if (rep == 0 || ct < cpu)
            cpu = ct;
    }
    double lanes = (double)l->lane_instructions;
    printf("%-13s %-12s %3u %13llu %9.4f %9.3f %9.3f\n", label, e->name, workers,
           (unsigned long long)l->lane_instructions, wall, lanes / wall / 1e9,
           lanes / (cpu > 0 ? cpu : wall) / 1e9);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vgpu-emu-bench [--quick] [kernels.ptx] [matrix-size]\n"
               "Runs a straight-line f32 kernel and a 16x16-tiled matrix product on each engine of the\n"
               "emulated GPU (the interpreter; the JIT when built with LLVM), on one worker and then on\n"
               "every CPU, and prints lane-instructions per second per core and the JIT's compile time.\n"
               "  --quick       a smaller matrix (64) and fewer repeats\n"
               "  kernels.ptx   the benchmark's kernels (default: the PTX built with this program)\n"
               "  matrix-size   a multiple of 16 in [16, 4096] (default 256)\n"
               "Environment: VGPU_EMU_JIT_CACHE=off compiles from scratch; VGPU_EMU_SIMD=baseline\n"
               "uses the interpreter's portable handlers.\n");
}

int main(int argc, char **argv)
{
    int argi = 1, quick = 0;
    if (argi < argc && (strcmp(argv[argi], "--help") == 0 || strcmp(argv[argi], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argi < argc && strcmp(argv[argi], "--quick") == 0) {
        quick = 1;
        bench_repeats = 2;
        argi++;
    }
    if (argi < argc && argv[argi][0] == '-') {
        fprintf(stderr, "vgpu-emu-bench: unknown option %s\n", argv[argi]);
        usage(stderr);
        return 2;
    }
    const char *path = argi < argc ? argv[argi++] : EMU_BENCH_PTX;
    int n = argi < argc ? atoi(argv[argi++]) : (quick ? 64 : 256);
    if (n < 16 || n % 16 || n > 4096) {
        fprintf(stderr, "matrix size must be a multiple of 16 in [16, 4096]\n");
        return 2;
    }
    size_t len;
    char *text = read_text(path, &len);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    ptx_module *mod = NULL;
    char err[256];
    double t0 = now_s();
    int rc = ptx_module_parse(text, len, &mod, err, sizeof(err));
    double parse_s = now_s() - t0;
    free(text);
    if (rc != PTX_OK) {
        fprintf(stderr, "parse %s: %s\n", path, err);
        return 1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned all = ncpu > 0 ? (unsigned)ncpu : 1;
    printf("vgpu-emu-bench: %zu bytes of PTX parsed and decoded in %.3f ms; %u online CPUs; "
           "interpreter fast handlers: %s\n", len, parse_s * 1e3, all, ptx_simd_variant());

    bench_mem mem = {.next = BENCH_BASE};
    ptx_memory iface = {.ctx = &mem, .translate = bench_translate};
    int status = 1;

    const ptx_kernel *ka = ptx_module_find_kernel(mod, "arith_f32");
    const ptx_kernel *km = ptx_module_find_kernel(mod, "matmul_tiled");
    if (!ka || !km) {
        fprintf(stderr, "bench kernels missing from %s\n", path);
        goto out;
    }
    /* (a) Straight-line f32 arithmetic: 64K threads, 24 instructions per 4 iterations. */
    unsigned threads = 256 * 256;
    float *out_h;
    uint64_t out_d = bench_alloc(&mem, threads * sizeof(float), (void **)&out_h);
    float fa = 0.999f, fb = 0.001f;
    int iters = quick ? 16 : 256;
    uint8_t pa[64] = {0};
    put_param(pa, ka, 0, &out_d, 8);
    put_param(pa, ka, 1, &fa, 4);
    put_param(pa, ka, 2, &fb, 4);
    put_param(pa, ka, 3, &iters, 4);
    ptx_launch la = {.kernel = ka, .grid = {256, 1, 1}, .block = {256, 1, 1}, .params = pa,
                     .memory = &iface};

    /* (b) Tiled matrix multiply, checked against a CPU reference after each engine. */
    size_t bytes = (size_t)n * n * sizeof(float);
    float *A, *B, *C;
    uint64_t dA = bench_alloc(&mem, bytes, (void **)&A), dB = bench_alloc(&mem, bytes, (void **)&B),
             dC = bench_alloc(&mem, bytes, (void **)&C);
    if (!out_d || !dA || !dB || !dC) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    for (int i = 0; i < n * n; i++) {
        A[i] = (float)((i * 7) % 13) - 6.0f;
        B[i] = (float)((i * 5) % 11) - 5.0f;
    }
    uint8_t pm[64] = {0};
    put_param(pm, km, 0, &dA, 8);
    put_param(pm, km, 1, &dB, 8);
    put_param(pm, km, 2, &dC, 8);
    put_param(pm, km, 3, &n, 4);
    ptx_launch lm = {.kernel = km, .grid = {(unsigned)n / 16, (unsigned)n / 16, 1},
                     .block = {16, 16, 1}, .params = pm, .memory = &iface};

    if (ptx_engine_available(PTX_ENGINE_JIT)) {
        const ptx_kernel *ks[2] = {ka, km};
        for (int i = 0; i < 2; i++) {
            double ms;
            int from_disk;
            if (ptx_kernel_jit_prepare(ks[i], &ms, &from_disk) == PTX_OK)
                printf("jit: %s %s in %.1f ms\n", ptx_kernel_name(ks[i]),
                       from_disk ? "loaded from the disk cache" : "compiled", ms);
            else
                printf("jit: %s not compiled (runs on the interpreter)\n", ptx_kernel_name(ks[i]));
        }
    }
    printf("%-13s %-12s %3s %13s %9s %9s %9s\n", "kernel", "engine", "wrk", "lane-instr",
           "wall s", "G/s", "G/s/core");
    unsigned worker_counts[2] = {1, all};
    for (int wi = 0; wi < (all > 1 ? 2 : 1); wi++) {
        for (size_t ei = 0; ei < sizeof(engines) / sizeof(engines[0]); ei++) {
            const engine_desc *e = &engines[ei];
            if (!ptx_engine_available(e->engine))
                continue;
            if (timed_run("arith_f32", &la, e, worker_counts[wi]))
                goto out;
        }
        for (size_t ei = 0; ei < sizeof(engines) / sizeof(engines[0]); ei++) {
            const engine_desc *e = &engines[ei];
            if (!ptx_engine_available(e->engine))
                continue;
            memset(C, 0, bytes);
            if (timed_run("matmul_tiled", &lm, e, worker_counts[wi]))
                goto out;
            for (int r = 0; r < n; r += 37) {
                for (int c = 0; c < n; c += 17) {
                    float want = 0;
                    for (int k = 0; k < n; k++)
                        want += A[r * n + k] * B[k * n + c];
                    if (fabsf(C[r * n + c] - want) > 1e-3f * fmaxf(1.0f, fabsf(want))) {
                        fprintf(stderr, "matmul (%s) mismatch at (%d,%d): %g want %g\n", e->name, r,
                                c, C[r * n + c], want);
                        goto out;
                    }
                }
            }
        }
    }
    printf("matmul %dx%d results checked against the CPU\n", n, n);
    status = 0;
out:
    for (size_t i = 0; i < mem.n; i++)
        free(mem.a[i].host);
    ptx_module_free(mod);
    return status;
}
