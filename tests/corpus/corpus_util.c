/* Helpers for the kernel corpus harness; see corpus_util.h. Each Criterion test runs in its own
 * process, so the bookkeeping below is per test and needs no lock (tests are single-threaded). */
#include "corpus_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED 64

static CUdevice dev;
static CUcontext ctx;
static int have_ctx;
static CUdeviceptr buffers[MAX_TRACKED];
static size_t nbuffers;
static CUmodule modules[MAX_TRACKED];
static size_t nmodules;
static void *host_buffers[MAX_TRACKED];
static size_t nhost;

const char *corpus_err(CUresult r)
{
    static __thread char buf[96];
    const char *name = NULL;
    /* cuGetErrorName may itself be unsupported by a young driver: fall back to the number. */
    if (cuGetErrorName(r, &name) != CUDA_SUCCESS || name == NULL)
        name = "unnamed";
    snprintf(buf, sizeof buf, "%s (%d)", name, (int)r);
    return buf;
}

/* ---- random ---- */

static uint64_t seed_value;
static int seed_ready;
static uint64_t rng_state;

uint64_t corpus_seed(void)
{
    if (!seed_ready) {
        const char *env = getenv("VGPU_CORPUS_SEED");
        if (env && *env) {
            seed_value = strtoull(env, NULL, 0);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed_value = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^
                         ((uint64_t)getpid() << 32);
        }
        seed_ready = 1;
        /* splitmix-style scramble so that nearby seeds give unrelated streams */
        uint64_t z = seed_value + 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rng_state = (z ^ (z >> 31)) | 1;
        fprintf(stderr, "corpus: seed %llu (set VGPU_CORPUS_SEED=%llu to repeat)\n",
                (unsigned long long)seed_value, (unsigned long long)seed_value);
    }
    return seed_value;
}

uint64_t rng_u64(void)
{
    corpus_seed();
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

uint32_t rng_u32(void) { return (uint32_t)(rng_u64() >> 32); }

double rng_double(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rng_u64() >> 11) / 9007199254740992.0);
}

float rng_float(float lo, float hi)
{
    float v = (float)rng_double(lo, hi);
    return v >= hi ? lo : v;
}

int rng_int(int lo, int hi)
{
    return lo + (int)(rng_u64() % (uint64_t)((int64_t)hi - lo + 1));
}

/* ---- fixture ---- */

void corpus_setup(void)
{
    corpus_seed();
    CK(cuInit(0));
    int count = 0;
    CK(cuDeviceGetCount(&count));
    cr_assert(count > 0, "no CUDA device");
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    have_ctx = 1;
    CK(cuCtxSetCurrent(ctx));
}

void corpus_teardown(void)
{
    /* Best effort and unchecked: a failed test may have left the context in an error state, and
     * the process ends right after. */
    while (nbuffers > 0)
        cuMemFree(buffers[--nbuffers]);
    while (nmodules > 0)
        cuModuleUnload(modules[--nmodules]);
    while (nhost > 0)
        free(host_buffers[--nhost]);
    if (have_ctx) {
        cuDevicePrimaryCtxRelease(dev);
        have_ctx = 0;
    }
}

/* ---- modules ---- */

const char *corpus_form_name(enum corpus_form form)
{
    static const char *const names[FORM_COUNT] = {
        [FORM_PTX_DATA] = "ptx via cuModuleLoadData",
        [FORM_FATBIN] = "fatbin via cuModuleLoadFatBinary",
        [FORM_FATBIN_SM80] = "sm_80 fatbin via cuModuleLoadData",
        [FORM_PTX_FILE] = "ptx file via cuModuleLoad",
        [FORM_FATBIN_FILE] = "fatbin file via cuModuleLoad",
    };
    return (unsigned)form < FORM_COUNT ? names[form] : "?";
}

static void image_path(char *path, size_t len, const char *name, const char *suffix)
{
    const char *dir = getenv("VGPU_CORPUS_DIR");
    if (!dir || !*dir)
        dir = CORPUS_KERNEL_DIR;
    int n = snprintf(path, len, "%s/%s%s", dir, name, suffix);
    cr_assert(n > 0 && (size_t)n < len, "image path too long");
}

/* Reads a whole file plus a terminating NUL (PTX text must be NUL-terminated for
 * cuModuleLoadData). The caller frees the buffer: the driver copies what it keeps at load. */
static void *read_image(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s: %s", path, strerror(errno));
    cr_assert(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    cr_assert(len > 0, "%s is empty", path);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    cr_assert(buf != NULL, "out of memory reading %s", path);
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        cr_assert_fail("short read of %s", path);
    }
    buf[len] = '\0';
    *size = (size_t)len;
    return buf;
}

CUmodule corpus_load(const char *name, enum corpus_form form)
{
    char path[4096];
    size_t size;
    CUmodule mod = NULL;
    void *image = NULL;
    CUresult r;
    cr_assert(nmodules < MAX_TRACKED);
    switch (form) {
    case FORM_PTX_DATA:
        image_path(path, sizeof path, name, ".ptx");
        image = read_image(path, &size);
        r = cuModuleLoadData(&mod, image);
        break;
    case FORM_FATBIN:
        image_path(path, sizeof path, name, ".fatbin");
        image = read_image(path, &size);
        r = cuModuleLoadFatBinary(&mod, image);
        break;
    case FORM_FATBIN_SM80:
        image_path(path, sizeof path, name, ".sm80.fatbin");
        image = read_image(path, &size);
        r = cuModuleLoadData(&mod, image);
        break;
    case FORM_PTX_FILE:
        image_path(path, sizeof path, name, ".ptx");
        r = cuModuleLoad(&mod, path);
        break;
    case FORM_FATBIN_FILE:
        image_path(path, sizeof path, name, ".fatbin");
        r = cuModuleLoad(&mod, path);
        break;
    default:
        cr_assert_fail("bad form %d", (int)form);
    }
    free(image);
    cr_assert(r == CUDA_SUCCESS, "loading %s (%s) failed: %s", path, corpus_form_name(form),
              corpus_err(r));
    modules[nmodules++] = mod;
    return mod;
}

CUfunction corpus_func(CUmodule mod, const char *kernel)
{
    CUfunction f = NULL;
    CUresult r = cuModuleGetFunction(&f, mod, kernel);
    cr_assert(r == CUDA_SUCCESS, "cuModuleGetFunction(%s): %s", kernel, corpus_err(r));
    return f;
}

void corpus_forget_last_module(void)
{
    if (nmodules > 0)
        nmodules--;
}

/* ---- memory ---- */

void *corpus_host(size_t bytes)
{
    cr_assert(nhost < MAX_TRACKED);
    void *p = calloc(1, bytes ? bytes : 1);
    cr_assert(p != NULL, "out of host memory (%zu bytes)", bytes);
    host_buffers[nhost++] = p;
    return p;
}

CUdeviceptr corpus_alloc(size_t bytes)
{
    CUdeviceptr p = 0;
    cr_assert(nbuffers < MAX_TRACKED);
    CK(cuMemAlloc(&p, bytes));
    cr_assert(p != 0, "cuMemAlloc returned a null pointer");
    buffers[nbuffers++] = p;
    return p;
}

CUdeviceptr corpus_upload(const void *host, size_t bytes)
{
    CUdeviceptr p = corpus_alloc(bytes);
    CK(cuMemcpyHtoD(p, host, bytes));
    return p;
}

void corpus_download(void *host, CUdeviceptr dev_ptr, size_t bytes)
{
    CK(cuMemcpyDtoH(host, dev_ptr, bytes));
}

void corpus_fill(CUdeviceptr dev_ptr, size_t bytes, unsigned char pattern)
{
    void *tmp = malloc(bytes);
    cr_assert(tmp != NULL);
    memset(tmp, pattern, bytes);
    CUresult r = cuMemcpyHtoD(dev_ptr, tmp, bytes);
    free(tmp);
    cr_assert(r == CUDA_SUCCESS, "cuMemcpyHtoD (fill): %s", corpus_err(r));
}

void corpus_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned shared, void **params)
{
    CK(cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, NULL, params, NULL));
    CK(cuCtxSynchronize());
}

/* ---- half ---- */

uint16_t half_from_double(double x)
{
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs(x);
    if (isnan(x))
        return 0x7e00;
    /* 65520 lies halfway between the largest half (65504, odd significand) and 65536: ties to
     * even round it, and everything above, to infinity. */
    if (a >= 65520.0)
        return sign | 0x7c00;
    if (a < 0x1p-14) {
        /* subnormal (or zero): count units of 2^-24, rounding to nearest even; 1024 units is
         * the smallest normal, whose encoding 0x0400 is exactly that count. */
        return sign | (uint16_t)nearbyint(a * 0x1p24);
    }
    int e;
    frexp(a, &e);                       /* a = f * 2^e, f in [0.5, 1) */
    int exp_unbiased = e - 1;           /* a = g * 2^exp_unbiased, g in [1, 2) */
    double sig = nearbyint(ldexp(a, 10 - exp_unbiased));   /* in [1024, 2048] */
    if (sig == 2048.0) {
        sig = 1024.0;
        exp_unbiased++;
    }
    if (exp_unbiased > 15)
        return sign | 0x7c00;
    return sign | (uint16_t)((exp_unbiased + 15) << 10) | (uint16_t)((int)sig - 1024);
}

double half_to_double(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}
