/* vgpu-emu-bench: speed of the PTX interpreter on its own (no driver, no server).
 *
 * Runs (a) a straight-line f32 arithmetic kernel and (b) a 16x16-tiled shared-memory matrix
 * multiply, both compiled from bench/kernels/emu_bench_kernels.cu by nvcc at build time, first
 * on one worker thread and then on every online CPU, and prints lane-instructions per second
 * (ptx_launch.lane_instructions over wall time, best of three runs) in total and per core.
 *
 * Usage: vgpu-emu-bench [kernels.ptx] [matrix-size] */
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

#define BENCH_REPEATS 3

/* Runs a launch BENCH_REPEATS times and prints the best rate (the machine may be shared: the
 * fastest run is the one least disturbed). Returns 0 on success. */
static int timed_run(const char *label, ptx_launch *l, unsigned workers)
{
    char err[256];
    l->workers = workers;
    double dt = 0;
    for (int rep = 0; rep < BENCH_REPEATS; rep++) {
        double t0 = now_s();
        int rc = ptx_launch_run(l, err, sizeof(err));
        double t = now_s() - t0;
        if (rc != PTX_OK) {
            fprintf(stderr, "%s: launch failed (%d): %s\n", label, rc, err);
            return -1;
        }
        if (rep == 0 || t < dt)
            dt = t;
    }
    double rate = (double)l->lane_instructions / dt;
    printf("%-14s workers %3u  %12llu lane-instr  %8.3f s  %8.1f M lane-instr/s  %7.1f M/s per core\n",
           label, workers, (unsigned long long)l->lane_instructions, dt, rate / 1e6,
           rate / 1e6 / workers);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : EMU_BENCH_PTX;
    int n = argc > 2 ? atoi(argv[2]) : 256;
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
    printf("vgpu-emu-bench: %zu bytes of PTX parsed in %.3f ms; %u online CPUs\n", len,
           parse_s * 1e3, all);

    bench_mem mem = {.next = BENCH_BASE};
    ptx_memory iface = {.ctx = &mem, .translate = bench_translate};
    int status = 1;

    /* (a) Straight-line f32 arithmetic: 64K threads, 8 flops per iteration. */
    const ptx_kernel *ka = ptx_module_find_kernel(mod, "arith_f32");
    const ptx_kernel *km = ptx_module_find_kernel(mod, "matmul_tiled");
    if (!ka || !km) {
        fprintf(stderr, "bench kernels missing from %s\n", path);
        goto out;
    }
    unsigned threads = 256 * 256;
    float *out_h;
    uint64_t out_d = bench_alloc(&mem, threads * sizeof(float), (void **)&out_h);
    float fa = 0.999f, fb = 0.001f;
    int iters = 64;
    uint8_t pa[64] = {0};
    put_param(pa, ka, 0, &out_d, 8);
    put_param(pa, ka, 1, &fa, 4);
    put_param(pa, ka, 2, &fb, 4);
    put_param(pa, ka, 3, &iters, 4);
    ptx_launch la = {.kernel = ka, .grid = {256, 1, 1}, .block = {256, 1, 1}, .params = pa,
                     .memory = &iface};
    if (!out_d || timed_run("arith_f32", &la, 1) || timed_run("arith_f32", &la, all))
        goto out;

    /* (b) Tiled matrix multiply, checked against a CPU reference. */
    size_t bytes = (size_t)n * n * sizeof(float);
    float *A, *B, *C;
    uint64_t dA = bench_alloc(&mem, bytes, (void **)&A), dB = bench_alloc(&mem, bytes, (void **)&B),
             dC = bench_alloc(&mem, bytes, (void **)&C);
    if (!dA || !dB || !dC) {
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
    if (timed_run("matmul_tiled", &lm, 1) || timed_run("matmul_tiled", &lm, all))
        goto out;
    for (int r = 0; r < n; r += 37) {
        for (int c = 0; c < n; c += 17) {
            float want = 0;
            for (int k = 0; k < n; k++)
                want += A[r * n + k] * B[k * n + c];
            if (fabsf(C[r * n + c] - want) > 1e-3f * fmaxf(1.0f, fabsf(want))) {
                fprintf(stderr, "matmul mismatch at (%d,%d): %g want %g\n", r, c, C[r * n + c], want);
                goto out;
            }
        }
    }
    printf("matmul %dx%d result checked against the CPU\n", n, n);
    status = 0;
out:
    for (size_t i = 0; i < mem.n; i++)
        free(mem.a[i].host);
    ptx_module_free(mod);
    return status;
}
