/* vgpu-bench's measuring child: resolves the driver with dlopen (so the parent, which links no
 * libcuda, can start without one) and times null calls, copies and launches. */
#include "bench.h"

#include <cuda.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The entry points used, by their cuda.h names: the macros in cuda.h turn cuMemAlloc into
 * cuMemAlloc_v2 both in the field name and in the dlsym string, so each resolves to the symbol a
 * program compiled against this cuda.h would call. */
#define BENCH_API(X)                                                                         \
    X(cuInit) X(cuDeviceGet) X(cuDeviceGetName) X(cuDevicePrimaryCtxRetain)                  \
    X(cuDevicePrimaryCtxRelease) X(cuCtxSetCurrent) X(cuCtxSynchronize) X(cuMemAlloc)        \
    X(cuMemFree) X(cuMemcpyHtoD) X(cuMemcpyDtoH) X(cuModuleLoadData) X(cuModuleGetFunction)  \
    X(cuModuleUnload) X(cuLaunchKernel) X(cuGetErrorName) X(cuMemAllocHost) X(cuMemFreeHost)

#define BENCH_STR2(x) #x
#define BENCH_STR(x) BENCH_STR2(x)

struct bench_api {
#define BENCH_FIELD(fn) __typeof__(fn) *fn;
    BENCH_API(BENCH_FIELD)
#undef BENCH_FIELD
};

/* An empty kernel as PTX text, so vgpu-bench needs no nvcc and no file beside it. */
static const char empty_ptx[] =
    ".version 7.0\n"
    ".target sm_75\n"
    ".address_size 64\n"
    ".visible .entry vgpu_bench_empty()\n"
    "{\n"
    "    ret;\n"
    "}\n";

struct child {
    struct bench_api api;
    FILE *out;
    CUdevice dev;
    CUcontext ctx;
    int have_ctx;
};

static void report_error(struct child *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    fprintf(c->out, "error %s\n", msg);
    fflush(c->out);
}

static const char *err_name(struct child *c, CUresult r)
{
    const char *name = NULL;
    if (!c->api.cuGetErrorName || c->api.cuGetErrorName(r, &name) != CUDA_SUCCESS || !name)
        return "unnamed error";
    return name;
}

/* Evaluates a driver call; on failure reports it and jumps to the function's fail label. */
#define CHECK(c, call)                                                                       \
    do {                                                                                     \
        CUresult r_ = (call);                                                                \
        if (r_ != CUDA_SUCCESS) {                                                            \
            report_error(c, "%s: %s (%d)", #call, err_name(c, r_), (int)r_);                 \
            goto fail;                                                                       \
        }                                                                                    \
    } while (0)

static int load_api(struct child *c)
{
    /* LD_LIBRARY_PATH, set by the parent, decides which libcuda.so.1 this is. */
    void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        report_error(c, "dlopen libcuda.so.1: %s", dlerror());
        return -1;
    }
#define BENCH_LOAD(fn)                                                                       \
    c->api.fn = (__typeof__(fn) *)dlsym(dl, BENCH_STR(fn));                                  \
    if (!c->api.fn) {                                                                        \
        report_error(c, "libcuda.so.1 lacks %s", BENCH_STR(fn));                             \
        return -1;                                                                           \
    }
    BENCH_API(BENCH_LOAD)
#undef BENCH_LOAD
    Dl_info info;
    if (dladdr((void *)c->api.cuInit, &info) && info.dli_fname)
        fprintf(c->out, "lib %s\n", info.dli_fname);
    return 0;
}

/* cuCtxSynchronize with nothing queued: a call the stub must forward to the server and wait on
 * (it is where deferred errors surface), and about the cheapest such call on the driver side. */
static int bench_null_call(struct child *c, const struct bench_opts *o)
{
    double samples[o->reps];
    CHECK(c, c->api.cuCtxSynchronize());   /* warm-up: connection, caches */
    for (unsigned r = 0; r < o->reps; r++) {
        double t0 = bench_now_s();
        for (unsigned i = 0; i < o->calls; i++)
            CHECK(c, c->api.cuCtxSynchronize());
        samples[r] = (bench_now_s() - t0) / o->calls * 1e6;
    }
    fprintf(c->out, "null_call_us %.6g\n", bench_median(samples, o->reps));
    return 0;
fail:
    return -1;
}

/* One copy size in one direction between host (pageable or pinned) and dbuf: a batch of copies
 * closed by cuCtxSynchronize inside the timed region, so a stub that returns early from HtoD
 * still pays for the transfer. Writes "<what> SIZE GB/s". */
static int bench_copy(struct child *c, const struct bench_opts *o, const char *what, int dtoh,
                      unsigned char *host, CUdeviceptr dbuf, size_t size)
{
    double samples[o->reps];
    unsigned copies = (unsigned)(o->copy_budget / size);
    if (copies < 1)
        copies = 1;
    if (copies > 4096)
        copies = 4096;
    for (unsigned r = 0; r < o->reps + 1; r++) {   /* rep 0 warms up */
        double t0 = bench_now_s();
        for (unsigned i = 0; i < copies; i++) {
            if (!dtoh)
                CHECK(c, c->api.cuMemcpyHtoD(dbuf, host, size));
            else
                CHECK(c, c->api.cuMemcpyDtoH(host, dbuf, size));
        }
        CHECK(c, c->api.cuCtxSynchronize());
        double dt = bench_now_s() - t0;
        if (r > 0)
            samples[r - 1] = (double)size * copies / dt / 1e9;
    }
    fprintf(c->out, "%s %zu %.6g\n", what, size, bench_median(samples, o->reps));
    return 0;
fail:
    return -1;
}

/* Pageable host memory, as most programs copy from, at every size; then pinned host memory
 * (cuMemAllocHost: over shared memory a region the server maps, copied once) from
 * BENCH_PINNED_MIN up. */
static int bench_copies(struct child *c, const struct bench_opts *o)
{
    CUdeviceptr dbuf = 0;
    unsigned char *host = malloc(BENCH_COPY_MAX);
    void *pinned = NULL;
    int ret = -1;
    if (!host) {
        report_error(c, "out of host memory for a %zu-byte buffer", BENCH_COPY_MAX);
        return -1;
    }
    for (size_t i = 0; i < BENCH_COPY_MAX; i++)
        host[i] = (unsigned char)(i * 131u);
    CHECK(c, c->api.cuMemAlloc(&dbuf, BENCH_COPY_MAX));
    for (int dir = 0; dir < 2; dir++)
        for (size_t size = BENCH_COPY_MIN; size <= BENCH_COPY_MAX; size *= 4)
            if (bench_copy(c, o, dir ? "d2h_gbps" : "h2d_gbps", dir, host, dbuf, size) != 0)
                goto fail;
    CHECK(c, c->api.cuMemAllocHost(&pinned, BENCH_COPY_MAX));
    memcpy(pinned, host, BENCH_COPY_MAX);
    for (int dir = 0; dir < 2; dir++)
        for (size_t size = BENCH_PINNED_MIN; size <= BENCH_COPY_MAX; size *= 4)
            if (bench_copy(c, o, dir ? "d2h_pinned_gbps" : "h2d_pinned_gbps", dir, pinned, dbuf, size) != 0)
                goto fail;
    ret = 0;
fail:
    if (pinned)
        c->api.cuMemFreeHost(pinned);
    if (dbuf)
        c->api.cuMemFree(dbuf);
    free(host);
    return ret;
}

/* Launch throughput: N empty <<<1,1>>> launches, then one synchronize, per repetition. */
static int bench_launches(struct child *c, const struct bench_opts *o)
{
    CUmodule mod = NULL;
    CUfunction fn;
    double samples[o->reps];
    int ret = -1;
    CHECK(c, c->api.cuModuleLoadData(&mod, empty_ptx));
    CHECK(c, c->api.cuModuleGetFunction(&fn, mod, "vgpu_bench_empty"));
    CHECK(c, c->api.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
    CHECK(c, c->api.cuCtxSynchronize());
    for (unsigned r = 0; r < o->reps; r++) {
        double t0 = bench_now_s();
        for (unsigned i = 0; i < o->launches; i++)
            CHECK(c, c->api.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
        CHECK(c, c->api.cuCtxSynchronize());
        samples[r] = o->launches / (bench_now_s() - t0);
    }
    fprintf(c->out, "launch_per_s %.6g\n", bench_median(samples, o->reps));
    ret = 0;
fail:
    if (mod)
        c->api.cuModuleUnload(mod);
    return ret;
}

int bench_child_run(const struct bench_opts *opts, int result_fd)
{
    struct child c = {0};
    int ret = 1;
    c.out = fdopen(result_fd, "w");
    if (!c.out) {
        perror("vgpu-bench: fdopen result pipe");
        return 1;
    }
    /* Line-buffered: the parent sees each result as soon as it is measured. */
    setvbuf(c.out, NULL, _IOLBF, 0);
    if (load_api(&c) != 0)
        goto out;
    CHECK(&c, c.api.cuInit(0));
    CHECK(&c, c.api.cuDeviceGet(&c.dev, 0));
    char name[256] = {0};
    CHECK(&c, c.api.cuDeviceGetName(name, sizeof name - 1, c.dev));
    for (char *p = name; *p; p++)
        if (*p == '\n')
            *p = ' ';
    fprintf(c.out, "device %s\n", name);
    CHECK(&c, c.api.cuDevicePrimaryCtxRetain(&c.ctx, c.dev));
    c.have_ctx = 1;
    CHECK(&c, c.api.cuCtxSetCurrent(c.ctx));
    /* Each measurement stands alone: one that fails (an unsupported call, say) is reported and
     * the others still run, so a partial result shows what does work. */
    int failures = 0;
    failures += bench_null_call(&c, opts) != 0;
    if (!opts->only_null) {
        failures += bench_copies(&c, opts) != 0;
        failures += bench_launches(&c, opts) != 0;
    }
    ret = failures ? 1 : 0;
fail:
    if (c.have_ctx)
        c.api.cuDevicePrimaryCtxRelease(c.dev);
out:
    fclose(c.out);
    return ret;
}
