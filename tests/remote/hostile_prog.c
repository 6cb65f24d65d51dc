/* A driver-API program the hostile-client tests (test_hostile.c) run through the stub, one mode
 * per attack or check:
 *
 *   hostile_prog secret KDIR        4096 secret bytes on the device; prints "PTR <addr>" and
 *                                   READY, waits for a line on stdin, then prints INTACT or CHANGED
 *   hostile_prog steal KDIR ADDR    a kernel reads 4096 bytes at another client's ADDR into its own
 *                                   buffer and writes 64 bytes there; prints "RESULT <CUresult>"
 *                                   and LEAKED when the secret arrived
 *   hostile_prog spin KDIR          launches a kernel that never ends, prints READY, synchronizes;
 *                                   prints "RESULT <CUresult>" if that ever returns
 *   hostile_prog bigrid KDIR        the same with an empty kernel on a grid of 2^31-1 blocks
 *   hostile_prog small KDIR         a small axpy checked against the CPU; prints OK
 *   hostile_prog hello KDIR N       a kernel prints N lines, then the program prints DONE
 *   hostile_prog idle               connects, prints READY, waits for a line on stdin, then
 *                                   synchronizes and prints "RESULT <CUresult>"
 *   hostile_prog scribble SEED      (shared memory) checked copies in a loop; between rounds it
 *                                   writes random bytes at random places of its shared region
 *                                   (rings and header alike), more each round, until a call
 *                                   fails; prints "ROUNDS <n>" and "RESULT <CUresult>", or
 *                                   "SURVIVED" if none did
 *   hostile_prog bigcopy            copies of 40 MiB + 3 bytes (many pieces, an odd tail) both
 *                                   ways, from pageable and pinned memory, synchronous and on a
 *                                   stream, each checked; prints OK
 *   hostile_prog pinned             (shared memory) 16 MiB of pinned memory and 16 MiB on the
 *                                   device, copied both ways and checked; prints READY, then
 *                                   waits (to be killed)
 * Exits 0 unless a call it needs fails. */
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        CUresult rc_ = (call);                                                                 \
        if (rc_ != CUDA_SUCCESS) {                                                             \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, (int)rc_);    \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define SECRET_BYTES 4096

static CUmodule load(const char *kdir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/hostile_kernels.ptx", kdir);
    CUmodule m;
    CHECK(cuModuleLoad(&m, path));
    return m;
}

static void ready(void)
{
    printf("READY\n");
    fflush(stdout);
}

static void wait_line(void)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        exit(0);
}

static unsigned char secret_byte(int i)
{
    return (unsigned char)(0x5A ^ (i * 7));
}

static int secret(void)
{
    CUdeviceptr d;
    unsigned char h[SECRET_BYTES];
    for (int i = 0; i < SECRET_BYTES; i++)
        h[i] = secret_byte(i);
    CHECK(cuMemAlloc(&d, SECRET_BYTES));
    CHECK(cuMemcpyHtoD(d, h, SECRET_BYTES));
    printf("PTR %llu\n", (unsigned long long)d);
    ready();
    wait_line();
    memset(h, 0, sizeof h);
    CHECK(cuMemcpyDtoH(h, d, SECRET_BYTES));
    int intact = 1;
    for (int i = 0; i < SECRET_BYTES; i++)
        intact &= h[i] == secret_byte(i);
    printf(intact ? "INTACT\n" : "CHANGED\n");
    return 0;
}

static int steal(CUmodule m, unsigned long long victim)
{
    CUfunction f;
    CHECK(cuModuleGetFunction(&f, m, "steal"));
    /* A buffer of our own first: the victim's address may well be a valid address here too. */
    CUdeviceptr mine, mine2;
    CHECK(cuMemAlloc(&mine, SECRET_BYTES));
    CHECK(cuMemAlloc(&mine2, SECRET_BYTES));
    CHECK(cuMemsetD8(mine, 0, SECRET_BYTES));
    CHECK(cuMemsetD8(mine2, 0, SECRET_BYTES));
    CUdeviceptr src = (CUdeviceptr)victim;
    int n = SECRET_BYTES;
    void *args[] = {&src, &mine2, &n};
    CUresult rc = cuLaunchKernel(f, SECRET_BYTES / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL);
    if (rc == CUDA_SUCCESS)
        rc = cuCtxSynchronize();
    printf("RESULT %d\n", (int)rc);
    unsigned char h[SECRET_BYTES];
    int leaked = 0;
    if (cuMemcpyDtoH(h, mine2, SECRET_BYTES) == CUDA_SUCCESS) {
        leaked = 1;
        for (int i = 0; i < SECRET_BYTES; i++)
            leaked &= h[i] == secret_byte(i);
    }
    printf(leaked ? "LEAKED\n" : "NOTHING\n");
    return 0;
}

static int runaway(CUmodule m, int bigrid)
{
    CUfunction f;
    CUresult rc;
    if (bigrid) {
        CHECK(cuModuleGetFunction(&f, m, "empty"));
        rc = cuLaunchKernel(f, 0x7fffffffu, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL);
    } else {
        CUdeviceptr flag;
        CHECK(cuMemAlloc(&flag, sizeof(int)));
        CHECK(cuMemsetD32(flag, 0, 1));
        CHECK(cuModuleGetFunction(&f, m, "spin"));
        void *args[] = {&flag};
        rc = cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL);
    }
    CHECK(rc);
    ready();
    rc = cuCtxSynchronize();
    printf("RESULT %d\n", (int)rc);
    /* What a program sees afterwards: the same error, not a hang. */
    size_t free_b, total_b;
    printf("AFTER %d\n", (int)cuMemGetInfo(&free_b, &total_b));
    return 0;
}

static int small(CUmodule m)
{
    CUfunction f;
    CHECK(cuModuleGetFunction(&f, m, "axpy"));
    enum { N = 4096 };
    static float x[N], y[N], out[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)i;
        y[i] = (float)(N - i);
    }
    CUdeviceptr dx, dy;
    CHECK(cuMemAlloc(&dx, sizeof x));
    CHECK(cuMemAlloc(&dy, sizeof y));
    CHECK(cuMemcpyHtoD(dx, x, sizeof x));
    CHECK(cuMemcpyHtoD(dy, y, sizeof y));
    float a = 2.0f;
    int n = N;
    void *args[] = {&a, &dx, &dy, &n};
    CHECK(cuLaunchKernel(f, N / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CHECK(cuMemcpyDtoH(out, dy, sizeof out));
    for (int i = 0; i < N; i++)
        if (out[i] != 2.0f * x[i] + y[i]) {
            fprintf(stderr, "axpy wrong at %d\n", i);
            return 1;
        }
    printf("OK\n");
    return 0;
}

static int hello(CUmodule m, int lines)
{
    CUfunction f;
    CHECK(cuModuleGetFunction(&f, m, "hello"));
    int tag = 42;
    void *args[] = {&tag};
    CHECK(cuLaunchKernel(f, 1, 1, 1, (unsigned)lines, 1, 1, 0, NULL, args, NULL));
    CHECK(cuCtxSynchronize());
    fflush(stdout);
    printf("DONE\n");
    return 0;
}

/* The shared region the stub mapped for this process's session (its memfd is named
 * "vgpu-shm"): start and length from /proc/self/maps, or 0 when there is none. */
static size_t shared_region(uint8_t **base)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    size_t len = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (strstr(line, "/memfd:vgpu-shm") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
            *base = (uint8_t *)lo;
            len = hi - lo;
            break;
        }
    }
    if (f)
        fclose(f);
    return len;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A client that corrupts its own rings: only its session may suffer, and this process must see
 * errors, not crash or hang. */
static int scribble(uint64_t seed)
{
    uint8_t *base = NULL;
    size_t len = shared_region(&base);
    if (!len) {
        fprintf(stderr, "no shared region mapped: not a shared-memory session\n");
        return 1;
    }
    enum { N = 65536 };
    static uint8_t in[N], out[N];
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, N));
    uint64_t rng = seed | 1;
    for (int round = 1; round <= 200; round++) {
        for (int i = 0; i < N; i++)
            in[i] = (uint8_t)rng_next(&rng);
        CUresult rc = cuMemcpyHtoD(d, in, N);
        if (rc == CUDA_SUCCESS)
            rc = cuMemcpyDtoH(out, d, N);
        if (rc == CUDA_SUCCESS)
            rc = cuCtxSynchronize();
        if (rc != CUDA_SUCCESS) {
            printf("ROUNDS %d\nRESULT %d\n", round, (int)rc);
            return 0;
        }
        /* What came back is what went in, until the corruption is noticed. */
        if (memcmp(in, out, N) != 0) {
            printf("ROUNDS %d\nWRONG\n", round);
            return 0;
        }
        /* Half of them on the header (the rings' indices and wake-up words), half anywhere. */
        for (int k = 0; k < round * round; k++) {
            size_t span = k & 1 ? len : 4096;
            base[rng_next(&rng) % span] = (uint8_t)rng_next(&rng);
        }
    }
    printf("SURVIVED\n");
    return 0;
}

static int bigcopy(void)
{
    const size_t n = ((size_t)40 << 20) + 3;
    uint8_t *pageable = malloc(n), *pin, *back = malloc(n);
    CUdeviceptr d;
    CUstream st;
    if (!pageable || !back)
        return 1;
    CHECK(cuMemAllocHost((void **)&pin, n));
    CHECK(cuMemAlloc(&d, n));
    CHECK(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 4; round++) {
        int use_pinned = round & 1, async = round >> 1;
        uint8_t *src = use_pinned ? pin : pageable;
        for (size_t i = 0; i < n; i++)
            src[i] = (uint8_t)rng_next(&rng);
        if (async) {
            CHECK(cuMemcpyHtoDAsync(d, src, n, st));
            CHECK(cuStreamSynchronize(st));
        } else {
            CHECK(cuMemcpyHtoD(d, src, n));
        }
        uint8_t *dst = use_pinned ? back : pin; /* read back into the other kind of memory */
        memset(dst, 0, n);
        if (async) {
            CHECK(cuMemcpyDtoHAsync(dst, d, n, st));
            CHECK(cuStreamSynchronize(st));
        } else {
            CHECK(cuMemcpyDtoH(dst, d, n));
        }
        if (memcmp(src, dst, n) != 0) {
            fprintf(stderr, "round %d (%s, %s): the bytes read back differ\n", round,
                    use_pinned ? "pinned" : "pageable", async ? "stream" : "synchronous");
            return 1;
        }
    }
    CHECK(cuMemFreeHost(pin));
    free(pageable);
    free(back);
    printf("OK\n");
    return 0;
}

static int pinned(void)
{
    enum { BYTES = 16 << 20 };
    uint8_t *h;
    CUdeviceptr d;
    CHECK(cuMemAllocHost((void **)&h, BYTES));
    CHECK(cuMemAlloc(&d, BYTES));
    for (int i = 0; i < BYTES; i++)
        h[i] = (uint8_t)(i * 7);
    CHECK(cuMemcpyHtoD(d, h, BYTES));
    memset(h, 0, BYTES);
    CHECK(cuMemcpyDtoH(h, d, BYTES));
    for (int i = 0; i < BYTES; i++)
        if (h[i] != (uint8_t)(i * 7)) {
            fprintf(stderr, "pinned copy wrong at %d\n", i);
            return 1;
        }
    ready();
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    CHECK(cuInit(0));
    CUdevice dev;
    CUcontext ctx;
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuCtxCreate(&ctx, NULL, 0, dev));
    if (!strcmp(mode, "idle")) {
        ready();
        wait_line();
        printf("RESULT %d\n", (int)cuCtxSynchronize());
        return 0;
    }
    if (!strcmp(mode, "secret"))
        return secret();
    if (!strcmp(mode, "scribble") && argc > 2)
        return scribble(strtoull(argv[2], NULL, 0));
    if (!strcmp(mode, "pinned"))
        return pinned();
    if (!strcmp(mode, "bigcopy"))
        return bigcopy();
    if (argc < 3)
        return 2;
    CUmodule m = load(argv[2]);
    if (!strcmp(mode, "steal") && argc > 3)
        return steal(m, strtoull(argv[3], NULL, 0));
    if (!strcmp(mode, "spin") || !strcmp(mode, "bigrid"))
        return runaway(m, !strcmp(mode, "bigrid"));
    if (!strcmp(mode, "small"))
        return small(m);
    if (!strcmp(mode, "hello") && argc > 3)
        return hello(m, atoi(argv[3]));
    return 2;
}
