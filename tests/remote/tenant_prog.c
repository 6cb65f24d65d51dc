/* A driver-API program the tenant tests (test_tenants.c) run through the stub with VGPU_TOKEN:
 *
 *   tenant_prog info             prints "DEVICES n", then for device 0 "TOTAL t", "FREE f" and
 *                                "UUID15 u" (the last byte of its UUID: the emulated GPU's host
 *                                device number)
 *   tenant_prog alloc SIZE [hold] allocates SIZE-byte buffers until one fails; prints "GOT k" and
 *                                "RESULT rc"; with hold, prints READY and keeps them until a line
 *                                arrives on stdin, then prints "FREE f" and "AGAIN rc" (one more
 *                                allocation of SIZE) and exits
 *   tenant_prog module KDIR      prints "FREE f" before and "FREE g" after loading a module with a
 *                                1 MiB global, then "UNLOADED h" after unloading it
 *   tenant_prog fill SIZE        allocates SIZE bytes, fills them with 0xA5, frees them, exits
 *   tenant_prog peek SIZE        allocates SIZE bytes and prints DIRTY if any byte is 0xA5
 *   tenant_prog churn KDIR       allocates, frees, loads and unloads modules for ever (until killed)
 *   tenant_prog calib KDIR ITERS runs one burn kernel of ITERS and prints "NS t" (its time)
 *   tenant_prog burn KDIR ITERS N  prints READY, waits for a line, runs N burn kernels (eight in
 *                                flight) printing "K t" at each completion, then "DONE t"
 *   tenant_prog long KDIR ITERS  launches one burn kernel, prints READY, synchronizes, prints DONE t
 *   tenant_prog launches KDIR N  N launches of an empty (zero-iteration) burn kernel, then a sync
 *   tenant_prog quick KDIR       prints "INFO t" after cuMemGetInfo, then "SMALL t" after a one-
 *                                iteration kernel and a synchronize (t: CLOCK_MONOTONIC ns)
 * Exit status 0 unless a call it needs fails (cuInit's failure prints "INIT rc" and exits 3). */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        CUresult rc_ = (call);                                                                 \
        if (rc_ != CUDA_SUCCESS) {                                                             \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, (int)rc_);    \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static unsigned long long mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static CUfunction burn_fn(const char *kdir, CUdeviceptr *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tenant_kernels.ptx", kdir);
    CUmodule m;
    CUfunction f;
    CHECK(cuModuleLoad(&m, path));
    CHECK(cuModuleGetFunction(&f, m, "burn"));
    CHECK(cuMemAlloc(out, 4096));
    return f;
}

static void launch_burn(CUfunction f, CUdeviceptr out, int iters)
{
    void *args[] = {&out, &iters};
    CHECK(cuLaunchKernel(f, 2, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
}

static int burn_modes(const char *mode, int argc, char **argv)
{
    CUdeviceptr out;
    CUfunction f = burn_fn(argv[2], &out);
    int iters = argc > 3 ? atoi(argv[3]) : 1;
    char line[64];
    if (!strcmp(mode, "calib")) {
        launch_burn(f, out, 1); /* first launch pays for the module's setup */
        CHECK(cuCtxSynchronize());
        unsigned long long t = mono();
        launch_burn(f, out, iters);
        CHECK(cuCtxSynchronize());
        printf("NS %llu\n", mono() - t);
        return 0;
    }
    if (!strcmp(mode, "burn") && argc > 4) {
        /* Eight kernels kept in flight, as an application queues work: the tenant stays busy
         * while it waits for the oldest one. */
        enum { DEPTH = 8 };
        int n = atoi(argv[4]);
        CUevent ev[DEPTH];
        for (int k = 0; k < DEPTH; k++)
            CHECK(cuEventCreate(&ev[k], 0));
        printf("READY\n");
        if (!fgets(line, sizeof line, stdin))
            return 0;
        for (int k = 0; k < n; k++) {
            launch_burn(f, out, iters);
            CHECK(cuEventRecord(ev[k % DEPTH], NULL));
            if (k >= DEPTH - 1) {
                CHECK(cuEventSynchronize(ev[(k - DEPTH + 1) % DEPTH]));
                printf("K %llu\n", mono());
            }
        }
        CHECK(cuCtxSynchronize());
        for (int k = 0; k < DEPTH - 1 && k < n; k++)
            printf("K %llu\n", mono());
        printf("DONE %llu\n", mono());
        return 0;
    }
    if (!strcmp(mode, "long")) {
        launch_burn(f, out, iters);
        printf("READY\n");
        CHECK(cuCtxSynchronize());
        printf("DONE %llu\n", mono());
        return 0;
    }
    if (!strcmp(mode, "launches")) {
        for (int k = 0; k < iters; k++)
            launch_burn(f, out, 0);
        CHECK(cuCtxSynchronize());
        return 0;
    }
    if (!strcmp(mode, "quick")) {
        size_t fr, tot;
        CHECK(cuMemGetInfo(&fr, &tot));
        printf("INFO %llu\n", mono());
        launch_burn(f, out, 1);
        CHECK(cuCtxSynchronize());
        printf("SMALL %llu\n", mono());
        return 0;
    }
    return 2;
}

static size_t free_now(void)
{
    size_t f, t;
    CHECK(cuMemGetInfo(&f, &t));
    return f;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 2;
    CUresult rc = cuInit(0);
    if (rc != CUDA_SUCCESS) {
        printf("INIT %d\n", (int)rc);
        return 3;
    }
    int n = 0;
    CHECK(cuDeviceGetCount(&n));
    printf("DEVICES %d\n", n);
    CUdevice dev;
    CUcontext ctx;
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuCtxCreate(&ctx, NULL, 0, dev));
    const char *mode = argv[1];
    if (!strcmp(mode, "info")) {
        size_t total = 0;
        CHECK(cuDeviceTotalMem(&total, dev));
        printf("TOTAL %zu\nFREE %zu\n", total, free_now());
        CUuuid u;
        CHECK(cuDeviceGetUuid(&u, dev));
        printf("UUID15 %d\n", (int)(unsigned char)u.bytes[15]);
        return 0;
    }
    if (argc < 3)
        return 2;
    if (!strcmp(mode, "churn")) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tenant_kernels.ptx", argv[2]);
        CUdeviceptr live[16] = {0};
        CUmodule mods[2] = {NULL, NULL};
        srand((unsigned)getpid());
        for (unsigned k = 0;; k++) {
            int i = rand() % 16;
            if (live[i]) {
                CHECK(cuMemFree(live[i]));
                live[i] = 0;
            } else if (cuMemAlloc(&live[i], (size_t)(1 + rand() % 8) << 20) != CUDA_SUCCESS) {
                live[i] = 0; /* over the limit: fine, go on */
            }
            if (k % 5 == 0) {
                int m = rand() % 2;
                if (mods[m]) {
                    CHECK(cuModuleUnload(mods[m]));
                    mods[m] = NULL;
                } else if (cuModuleLoad(&mods[m], path) != CUDA_SUCCESS) {
                    mods[m] = NULL;
                }
            }
        }
    }
    if (!strcmp(mode, "calib") || !strcmp(mode, "burn") || !strcmp(mode, "long") || !strcmp(mode, "quick") ||
        !strcmp(mode, "launches"))
        return burn_modes(mode, argc, argv);
    if (!strcmp(mode, "alloc")) {
        size_t size = strtoull(argv[2], NULL, 0);
        int got = 0;
        CUdeviceptr p;
        while ((rc = cuMemAlloc(&p, size)) == CUDA_SUCCESS && got < 100000)
            got++;
        printf("GOT %d\nRESULT %d\n", got, (int)rc);
        if (argc > 3 && !strcmp(argv[3], "hold")) {
            printf("READY\n");
            char line[64];
            if (!fgets(line, sizeof line, stdin))
                return 0;
            printf("FREE %zu\n", free_now());
            printf("AGAIN %d\n", (int)cuMemAlloc(&p, size));
        }
        return 0;
    }
    if (!strcmp(mode, "module")) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tenant_kernels.ptx", argv[2]);
        printf("FREE %zu\n", free_now());
        CUmodule m;
        CHECK(cuModuleLoad(&m, path));
        printf("FREE %zu\n", free_now());
        CHECK(cuModuleUnload(m));
        printf("UNLOADED %zu\n", free_now());
        return 0;
    }
    if (!strcmp(mode, "fill") || !strcmp(mode, "peek")) {
        size_t size = strtoull(argv[2], NULL, 0);
        CUdeviceptr p;
        CHECK(cuMemAlloc(&p, size));
        unsigned char *h = malloc(size);
        if (!h)
            return 1;
        if (!strcmp(mode, "fill")) {
            CHECK(cuMemsetD8(p, 0xA5, size));
            CHECK(cuCtxSynchronize());
            CHECK(cuMemFree(p));
            free(h);
            return 0;
        }
        CHECK(cuMemcpyDtoH(h, p, size));
        int dirty = 0;
        for (size_t i = 0; i < size; i++)
            dirty |= h[i] == 0xA5;
        printf(dirty ? "DIRTY\n" : "CLEAN\n");
        free(h);
        return 0;
    }
    return 2;
}
