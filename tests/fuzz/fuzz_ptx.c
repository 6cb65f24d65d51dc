/* Fuzz harness: PTX text as cuModuleLoadData hands it to the emulated GPU's parser, and the
 * kernels of every module that parses, run on the interpreter.
 *
 * The input is the module text (ptx_module_parse takes a length; it need not end in a NUL).
 * When it parses, each .entry runs once on a tiny grid (2 blocks of up to 32x2 threads, fewer if
 * .maxntid says so) on one thread, with an instruction budget, against a small fake device
 * memory: four 1 KiB allocations that every 8-byte parameter points into, and the module's
 * globals bound to allocations of their own. So the interpreter's checks (addresses, barriers,
 * calls, traps, misaligned accesses) are fuzzed too, deterministically: same input, same run. */
#include "fuzz.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ptx.h"

#define FUZZ_BUFFERS 4
#define FUZZ_BUFFER_BYTES 1024
#define FUZZ_GLOBAL_MAX_BYTES (64u << 10) /* larger globals are bound but not backed */
#define FUZZ_MAX_ALLOCS 64
#define FUZZ_BUDGET 200000                /* lane instructions per launch: about a millisecond */
#define FUZZ_DEVICE_BASE 0x700000000000ull
#define FUZZ_ALLOC_STRIDE 0x100000ull      /* 1 MiB apart: a small overrun hits no neighbour */

/* VGPU_FUZZ_VERBOSE=1: say how each input parsed and how each kernel ended (for replays). */
static int verbose;

struct fake_alloc {
    uint64_t base;
    size_t size;
    uint8_t *host;
};

struct fake_memory {
    struct fake_alloc a[FUZZ_MAX_ALLOCS];
    unsigned n;          /* backed allocations in a[] */
    unsigned addresses;  /* addresses handed out, backed or not */
};

static void *fake_translate(void *ctx, uint64_t addr, size_t len)
{
    struct fake_memory *m = ctx;
    for (unsigned i = 0; i < m->n; i++) {
        const struct fake_alloc *a = &m->a[i];
        if (addr >= a->base && addr - a->base <= a->size && len <= a->size - (addr - a->base))
            return a->host + (addr - a->base);
    }
    return NULL;
}

/* Returns a fresh device address for size bytes, backed by zeroed host memory when `backed`
 * (and slots and memory remain; else nothing translates there). */
static uint64_t fake_alloc(struct fake_memory *m, size_t size, int backed)
{
    uint64_t base = FUZZ_DEVICE_BASE + (uint64_t)++m->addresses * FUZZ_ALLOC_STRIDE;
    if (m->n == FUZZ_MAX_ALLOCS || !backed)
        return base;
    uint8_t *host = calloc(size ? size : 1, 1);
    if (!host)
        return base;
    m->a[m->n++] = (struct fake_alloc){base, size, host};
    return base;
}

static void fake_free(struct fake_memory *m)
{
    for (unsigned i = 0; i < m->n; i++)
        free(m->a[i].host);
    m->n = 0;
}

/* Parameters: every 8-byte one points into a buffer (a pointer, as most are; as a count it is
 * just large), every 4-byte one is 16 (a count or an index), other sizes a byte pattern. */
static uint8_t *make_params(const ptx_kernel *k, const uint64_t *buffers)
{
    size_t bytes = ptx_kernel_param_bytes(k);
    uint8_t *p = calloc(bytes ? bytes : 1, 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < ptx_kernel_param_count(k); i++) {
        size_t off, size;
        ptx_kernel_param(k, i, &off, &size);
        FUZZ_CHECK(off <= bytes && size <= bytes - off);
        if (size == 8) {
            uint64_t v = buffers[i % FUZZ_BUFFERS];
            memcpy(p + off, &v, 8);
        } else if (size == 4) {
            uint32_t v = 16;
            memcpy(p + off, &v, 4);
        } else {
            memset(p + off, (int)(0x11 * (i + 1)), size);
        }
    }
    return p;
}

static void run_kernel(const ptx_kernel *k, const ptx_memory *mem, const uint64_t *buffers)
{
    uint8_t *params = make_params(k, buffers);
    if (!params)
        return;
    unsigned max_threads = ptx_kernel_max_threads(k);
    FUZZ_CHECK(max_threads >= 1);
    ptx_launch l = {
        .kernel = k,
        .grid = {2, 1, 1},
        .block = {max_threads < 32 ? max_threads : 32, max_threads >= 64 ? 2 : 1, 1},
        .dynamic_shared = 256,
        .params = params,
        .memory = mem,
        .workers = 1,
        .max_lane_instructions = FUZZ_BUDGET,
    };
    char err[256];
    memset(err, 'x', sizeof err);
    int rc = ptx_launch_run(&l, err, sizeof err);
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    FUZZ_CHECK(rc == PTX_OK || rc == PTX_ERR_NOMEM || rc == PTX_ERR_ILLEGAL_ADDRESS ||
               rc == PTX_ERR_LAUNCH || rc == PTX_ERR_TRAP || rc == PTX_ERR_MISALIGNED ||
               rc == PTX_ERR_BUDGET);
    FUZZ_CHECK(rc != PTX_OK || err[0] == '\0');
    if (verbose)
        fprintf(stderr, "  %s: status %d after %llu lane instructions%s%s\n", ptx_kernel_name(k), rc,
                (unsigned long long)l.lane_instructions, err[0] ? ": " : "", err);
    free(params);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *v = getenv("VGPU_FUZZ_VERBOSE");
    verbose = v && *v && *v != '0';
    /* Device printf writes to stdout: keep it from flooding the fuzzer's terminal. */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so that a read past the text is caught. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    ptx_module *m = NULL;
    char err[256];
    memset(err, 'x', sizeof err);
    int rc = ptx_module_parse(text, size, &m, err, sizeof err);
    free(text);
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    if (verbose)
        fprintf(stderr, "%zu bytes: %s\n", size, rc == PTX_OK ? "parsed" : err);
    if (rc != PTX_OK) {
        FUZZ_CHECK(rc == PTX_ERR_PARSE || rc == PTX_ERR_NOMEM);
        FUZZ_CHECK(m == NULL);
        FUZZ_CHECK(strncmp(err, "line ", 5) == 0);
        return 0;
    }
    FUZZ_CHECK(m != NULL);

    struct fake_memory fm = {.n = 0, .addresses = 0};
    uint64_t buffers[FUZZ_BUFFERS];
    for (int i = 0; i < FUZZ_BUFFERS; i++)
        buffers[i] = fake_alloc(&fm, FUZZ_BUFFER_BYTES, 1);
    for (size_t i = 0; i < ptx_module_global_count(m); i++) {
        ptx_global_info g;
        ptx_module_global(m, i, &g);
        FUZZ_CHECK(g.name != NULL);
        int backed = g.size <= FUZZ_GLOBAL_MAX_BYTES;
        uint64_t addr = fake_alloc(&fm, g.size, backed);
        if (backed && g.init && fake_translate(&fm, addr, g.size))
            memcpy(fake_translate(&fm, addr, g.size), g.init, g.size);
        ptx_module_bind_global(m, i, addr);
    }
    ptx_memory mem = {.ctx = &fm, .translate = fake_translate};
    for (size_t i = 0; i < ptx_module_kernel_count(m); i++) {
        const ptx_kernel *k = ptx_module_kernel_at(m, i);
        FUZZ_CHECK(k != NULL);
        const char *name = ptx_kernel_name(k);
        FUZZ_CHECK(name != NULL && ptx_module_find_kernel(m, name) != NULL);
        run_kernel(k, &mem, buffers);
    }
    fake_free(&fm);
    ptx_module_free(m);
    return 0;
}
