/* A CUDA driver-API program run through the stub by the remoting tests (and usable by hand:
 * tests/with-server.sh build ./remote_e2e_prog full KERNEL_DIR).
 *
 *   remote_e2e_prog mem [x shared] memory, copies, memsets, contexts, streams, events (no kernels)
 *   remote_e2e_prog full KDIR [shared] mem + module loads (PTX file, PTX data, fatbin, library) and launches
 *   remote_e2e_prog hog KDIR       allocates, prints READY, then copies (and launches, unless KDIR
 *                                  is "") until killed
 *   remote_e2e_prog meminfo        prints "free total" from cuMemGetInfo
 *   remote_e2e_prog threads        8 threads copy through one connection at once
 *   remote_e2e_prog fork           a forked child gets its own session
 *   remote_e2e_prog fault KDIR     breaks its context with a bad kernel, prints READY, waits
 *
 * "shared": other clients run at the same time (skips the checks of the device's free memory).
 * Exits 0 when every check passed; prints the first failed check otherwise. Inputs are random
 * (seeded from the pid) and results are compared with a CPU computation. */
#include <cuda.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        CUresult rc_ = (call);                                                                 \
        if (rc_ != CUDA_SUCCESS) {                                                             \
            const char *n_ = NULL;                                                             \
            cuGetErrorName(rc_, &n_);                                                          \
            fprintf(stderr, "%s:%d: %s failed: %d %s\n", __FILE__, __LINE__, #call, (int)rc_, \
                    n_ ? n_ : "?");                                                            \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)
#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void setup(CUcontext *ctx)
{
    CHECK(cuInit(0));
    int count = 0;
    CHECK(cuDeviceGetCount(&count));
    EXPECT(count >= 1);
    CUdevice dev;
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(ctx, dev));
    CHECK(cuCtxSetCurrent(*ctx));
}

struct host_check {
    unsigned seen;
};

/* Host functions may not call CUDA: this one only records that it ran. */
static void CUDA_CB host_fn(void *arg)
{
    struct host_check *hc = arg;
    hc->seen = 1;
}

/* shared: other clients use the device at the same time, so free memory is not ours to check. */
static void test_mem(int shared)
{
    char name[128] = "";
    CHECK(cuDeviceGetName(name, sizeof name, 0));
    EXPECT(name[0] != 0);
    int major = 0;
    CHECK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
    EXPECT(major >= 1);
    size_t total = 0, free0 = 0;
    CHECK(cuDeviceTotalMem(&total, 0));
    CHECK(cuMemGetInfo(&free0, &total));
    EXPECT(free0 <= total && total > 0);

    /* A created context on top of the primary one, then back. */
    CUcontext created, cur;
    CHECK(cuCtxCreate(&created, NULL, 0, 0));
    CHECK(cuCtxGetCurrent(&cur));
    EXPECT(cur == created);
    CUdeviceptr in_created;
    CHECK(cuMemAlloc(&in_created, 4096));
    CHECK(cuCtxDestroy(created));

    const size_t n = 1 << 20;
    unsigned *h = malloc(n * 4), *back = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        h[i] = (unsigned)rand();
    CUdeviceptr d, d2;
    CHECK(cuMemAlloc(&d, n * 4));
    CHECK(cuMemAlloc(&d2, n * 4));
    size_t free1 = 0;
    CHECK(cuMemGetInfo(&free1, &total));
    EXPECT(shared || free1 < free0);
    CHECK(cuMemcpyHtoD(d, h, n * 4));
    memset(back, 0, n * 4);
    CHECK(cuMemcpyDtoH(back, d, n * 4));
    EXPECT(memcmp(h, back, n * 4) == 0);

    /* Address range and pointer attributes of an interior pointer. */
    CUdeviceptr base;
    size_t size;
    CHECK(cuMemGetAddressRange(&base, &size, d + 100));
    EXPECT(base == d && size == n * 4);
    unsigned mt = 0;
    CHECK(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 8));
    EXPECT(mt == CU_MEMORYTYPE_DEVICE);
    {
        CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
                                       CU_POINTER_ATTRIBUTE_CONTEXT};
        unsigned type = 99;
        size_t rsize = 0;
        CUcontext owner = NULL, cur = NULL;
        void *vals[] = {&type, &rsize, &owner};
        CHECK(cuPointerGetAttributes(3, attrs, vals, d + 12));
        CHECK(cuCtxGetCurrent(&cur));
        EXPECT(type == CU_MEMORYTYPE_DEVICE && rsize == n * 4 && owner == cur);
        int local = 0;
        CHECK(cuPointerGetAttributes(3, attrs, vals, (CUdeviceptr)(uintptr_t)&local));
        EXPECT(type == 0 && rsize == 0 && owner == NULL);
    }

    /* Memsets of each width, on a part of the buffer. */
    CHECK(cuMemsetD32(d + 16, 0xdeadbeef, 100));
    CHECK(cuMemsetD16(d + 16 + 400, 0x1234, 2));
    CHECK(cuMemsetD8(d + 16 + 404, 0x77, 4));
    CHECK(cuMemcpyDtoH(back, d, n * 4));
    for (size_t i = 0; i < 4; i++)
        EXPECT(back[i] == h[i]);
    for (size_t i = 4; i < 104; i++)
        EXPECT(back[i] == 0xdeadbeef);
    EXPECT(back[104] == 0x12341234u);
    EXPECT(back[105] == 0x77777777u);
    EXPECT(back[106] == h[106]);

    /* Device to device, and the async forms on a created stream. */
    CHECK(cuMemcpyDtoD(d2, d, n * 4));
    CUstream s;
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUevent e0, e1;
    CHECK(cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CHECK(cuEventCreate(&e1, CU_EVENT_DEFAULT));
    CHECK(cuEventRecord(e0, s));
    for (size_t i = 0; i < n; i++)
        h[i] = (unsigned)rand();
    CHECK(cuMemcpyHtoDAsync(d, h, n * 4, s));
    CHECK(cuMemsetD32Async(d2, 7, 10, s));
    CHECK(cuEventRecord(e1, s));
    CHECK(cuStreamWaitEvent(NULL, e1, 0));
    CHECK(cuMemcpyDtoHAsync(back, d, n * 4, s));
    CHECK(cuStreamSynchronize(s));
    EXPECT(memcmp(h, back, n * 4) == 0);
    CHECK(cuEventSynchronize(e1));
    CHECK(cuEventQuery(e1));
    float ms = -1;
    CHECK(cuEventElapsedTime(&ms, e0, e1));
    EXPECT(ms >= 0);
    CHECK(cuMemcpyDtoH(back, d2, 64));
    EXPECT(back[0] == 7 && back[9] == 7);
    CHECK(cuStreamQuery(s));
    /* A host function in the stream runs by the time the stream is done. */
    struct host_check hc = {.seen = 0};
    CHECK(cuLaunchHostFunc(s, host_fn, &hc));
    CHECK(cuStreamSynchronize(s));
    EXPECT(hc.seen == 1);
    CHECK(cuEventRecordWithFlags(e1, s, CU_EVENT_RECORD_DEFAULT));
    CHECK(cuEventSynchronize(e1));
    CHECK(cuEventDestroy(e0));
    CHECK(cuEventDestroy(e1));
    CHECK(cuStreamDestroy(s));

    /* Errors the caller must see. */
    EXPECT(cuMemFree(d + 4) != CUDA_SUCCESS);
    EXPECT(cuMemcpyDtoH(back, d, n * 4 + 4) != CUDA_SUCCESS);
    EXPECT(cuMemcpyHtoD(in_created, h, 4) != CUDA_SUCCESS); /* freed with its context */
    EXPECT(cuStreamSynchronize((CUstream)(uintptr_t)0x7777777) != CUDA_SUCCESS);

    /* Unified-address copies: the stub tells device from host pointers. */
    unsigned *h2 = malloc(4096);
    CHECK(cuMemcpy((CUdeviceptr)(uintptr_t)h2, d + 64, 4096));
    EXPECT(memcmp(h2, (char *)h + 64, 4096) == 0);
    for (int i = 0; i < 1024; i++)
        h2[i] = (unsigned)rand();
    CHECK(cuMemcpy(d2, (CUdeviceptr)(uintptr_t)h2, 4096));
    CHECK(cuMemcpyAsync(d2 + 4096, d2, 4096, NULL));
    CHECK(cuMemcpyDtoH(back, d2 + 4096, 4096));
    EXPECT(memcmp(back, h2, 4096) == 0);
    free(h2);

    /* A copy larger than one frame (the test server allows 16 MiB): the stub splits it. */
    const size_t big = 40u << 20;
    unsigned char *hb = malloc(big), *hb2 = malloc(big);
    for (size_t i = 0; i < big; i++)
        hb[i] = (unsigned char)(i * 7 + (i >> 20));
    CUdeviceptr db;
    CHECK(cuMemAlloc(&db, big));
    CHECK(cuMemcpyHtoD(db, hb, big));
    memset(hb2, 0, big);
    CHECK(cuMemcpyDtoH(hb2, db, big));
    EXPECT(memcmp(hb, hb2, big) == 0);
    CHECK(cuMemFree(db));
    free(hb);
    free(hb2);

    /* Pitched memory and 2-D memsets: only the rectangle changes. */
    {
        CUdeviceptr pd;
        size_t pitch = 0;
        const size_t w = 100, rows = 7;
        CHECK(cuMemAllocPitch(&pd, &pitch, w, rows, 4));
        EXPECT(pitch >= w);
        CHECK(cuMemsetD8(pd, 0x11, pitch * rows));
        CHECK(cuMemsetD2D8(pd + 2, pitch, 0x22, 10, 5));
        CHECK(cuMemsetD2D32Async(pd + pitch * 6, pitch, 0x33333333u, 4, 1, NULL));
        unsigned char *img = malloc(pitch * rows);
        CHECK(cuMemcpyDtoH(img, pd, pitch * rows));
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < pitch; c++) {
                unsigned char want = 0x11;
                if (r < 5 && c >= 2 && c < 12)
                    want = 0x22;
                if (r == 6 && c < 16)
                    want = 0x33;
                EXPECT(img[r * pitch + c] == want);
            }
        /* 2-D copies: host rectangle -> pitched device -> another pitched device -> host. */
        unsigned char src[4][128], back2[4][64];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 128; c++)
                src[r][c] = (unsigned char)rand();
        CUDA_MEMCPY2D cp;
        memset(&cp, 0, sizeof cp);
        cp.srcMemoryType = CU_MEMORYTYPE_HOST;
        cp.srcHost = src;
        cp.srcPitch = 128;
        cp.srcXInBytes = 3;
        cp.dstMemoryType = CU_MEMORYTYPE_DEVICE;
        cp.dstDevice = pd;
        cp.dstPitch = pitch;
        cp.dstXInBytes = 4;
        cp.dstY = 1;
        cp.WidthInBytes = 50;
        cp.Height = 4;
        CHECK(cuMemcpy2D(&cp));
        CUdeviceptr pd2;
        size_t pitch2 = 0;
        CHECK(cuMemAllocPitch(&pd2, &pitch2, w, rows, 4));
        CUDA_MEMCPY2D dd = cp;
        dd.srcMemoryType = CU_MEMORYTYPE_DEVICE;
        dd.srcDevice = pd;
        dd.srcPitch = pitch;
        dd.srcXInBytes = 4;
        dd.srcY = 1;
        dd.dstDevice = pd2;
        dd.dstPitch = pitch2;
        dd.dstXInBytes = 0;
        dd.dstY = 0;
        CHECK(cuMemcpy2DAsync(&dd, NULL));
        CUDA_MEMCPY2D dh;
        memset(&dh, 0, sizeof dh);
        dh.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
        dh.srcDevice = pd2;
        dh.srcPitch = pitch2;
        dh.dstMemoryType = CU_MEMORYTYPE_HOST;
        dh.dstHost = back2;
        dh.dstPitch = 64;
        dh.WidthInBytes = 50;
        dh.Height = 4;
        CHECK(cuMemcpy2D(&dh));
        for (int r = 0; r < 4; r++)
            EXPECT(memcmp(back2[r], src[r] + 3, 50) == 0);
        CHECK(cuMemFree(pd2));
        free(img);
        CHECK(cuMemFree(pd));
    }

    /* Stream and device identity. */
    {
        CUstream st;
        CUcontext sc = NULL, cur = NULL;
        unsigned long long id1 = 0, id2 = 0;
        CUdevice sd = -1;
        char bus[64] = "";
        CHECK(cuStreamCreate(&st, 0));
        CHECK(cuStreamGetCtx(st, &sc));
        CHECK(cuCtxGetCurrent(&cur));
        EXPECT(sc == cur);
        CHECK(cuStreamGetDevice(st, &sd));
        EXPECT(sd == 0);
        CHECK(cuStreamGetId(st, &id1));
        CHECK(cuStreamGetId(NULL, &id2));
        EXPECT(id1 != id2);
        CHECK(cuStreamDestroy(st));
        CHECK(cuDeviceGetPCIBusId(bus, sizeof bus, 0));
        EXPECT(strchr(bus, ':') != NULL);
        CUdevice by_bus = -1;
        CHECK(cuDeviceGetByPCIBusId(&by_bus, bus));
        EXPECT(by_bus == 0);
        CUdevprop prop;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* still exported, still used */
        CHECK(cuDeviceGetProperties(&prop, 0));
#pragma GCC diagnostic pop
        EXPECT(prop.maxThreadsPerBlock >= 256 && prop.SIMDWidth == 32);
    }

    void *pinned;
    CHECK(cuMemAllocHost(&pinned, 1 << 16));
    CHECK(cuMemcpyDtoH(pinned, d, 1 << 16));
    EXPECT(memcmp(pinned, h, 1 << 16) == 0);
    unsigned ptype = 0;
    CHECK(cuPointerGetAttribute(&ptype, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)pinned + 100));
    EXPECT(ptype == CU_MEMORYTYPE_HOST);
    void *plain = malloc(4096);
    EXPECT(cuMemFreeHost(plain) == CUDA_ERROR_INVALID_VALUE); /* never page-locked: refused */
    CHECK(cuMemHostRegister(plain, 4096, 0));
    EXPECT(cuMemHostRegister(plain, 4096, 0) == CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    CHECK(cuMemHostUnregister(plain));
    EXPECT(cuMemHostUnregister(plain) == CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    free(plain);
    CHECK(cuMemFreeHost(pinned));

    CHECK(cuMemFree(d));
    CHECK(cuMemFree(d2));
    size_t free2 = 0;
    CHECK(cuMemGetInfo(&free2, &total));
    EXPECT(shared || free2 == free0);
    free(h);
    free(back);
}

static void run_axpy(CUmodule m, int use_extra)
{
    CUfunction f;
    CHECK(cuModuleGetFunction(&f, m, "axpy"));
    const char *fname = NULL;
    CHECK(cuFuncGetName(&fname, f));
    EXPECT(fname && strcmp(fname, "axpy") == 0);
    int n = 10000;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *r = malloc(n * sizeof *r);
    for (int i = 0; i < n; i++) {
        x[i] = (float)(rand() % 1000) / 10.0f;
        y[i] = (float)(rand() % 1000) / 10.0f;
    }
    CUdeviceptr dx, dy;
    CHECK(cuMemAlloc(&dx, n * sizeof *x));
    CHECK(cuMemAlloc(&dy, n * sizeof *y));
    CHECK(cuMemcpyHtoD(dx, x, n * sizeof *x));
    CHECK(cuMemcpyHtoD(dy, y, n * sizeof *y));
    float a = 2.5f;
    unsigned grid = (unsigned)(n + 127) / 128;
    if (!use_extra) {
        void *params[] = {&a, &dx, &dy, &n};
        CHECK(cuLaunchKernel(f, grid, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    } else {
        size_t off, sz;
        unsigned char buf[64] = {0};
        size_t bytes = 0;
        void *vals[] = {&a, &dx, &dy, &n};
        for (int i = 0; i < 4; i++) {
            CHECK(cuFuncGetParamInfo(f, (size_t)i, &off, &sz));
            memcpy(buf + off, vals[i], sz);
            bytes = off + sz;
        }
        EXPECT(cuFuncGetParamInfo(f, 4, &off, &sz) != CUDA_SUCCESS);
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &bytes,
                         CU_LAUNCH_PARAM_END};
        CHECK(cuLaunchKernel(f, grid, 1, 1, 128, 1, 1, 0, NULL, NULL, extra));
    }
    CHECK(cuCtxSynchronize());
    CHECK(cuMemcpyDtoH(r, dy, n * sizeof *r));
    for (int i = 0; i < n; i++)
        EXPECT(r[i] == fmaf(a, x[i], y[i])); /* the kernel's fma.rn: one rounding */
    CHECK(cuMemFree(dx));
    CHECK(cuMemFree(dy));
    free(x);
    free(y);
    free(r);
}

static void test_kernels(const char *kdir)
{
    char path[4096];
    CUmodule m_file, m_data, m_fat;
    snprintf(path, sizeof path, "%s/remote_kernels.ptx", kdir);
    CHECK(cuModuleLoad(&m_file, path));
    run_axpy(m_file, 0);
    run_axpy(m_file, 1);

    size_t len;
    char *ptx = read_file(path, &len);
    EXPECT(ptx != NULL);
    CHECK(cuModuleLoadData(&m_data, ptx));
    free(ptx);

    /* Mixed parameter sizes, on a stream, launched with cuLaunchKernelEx. */
    CUfunction f;
    CHECK(cuModuleGetFunction(&f, m_data, "mad_u32"));
    int maxthreads = 0;
    CHECK(cuFuncGetAttribute(&maxthreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
    EXPECT(maxthreads >= 256);
    unsigned long long n = 5000;
    unsigned bias = (unsigned)rand();
    unsigned *in = malloc(n * 4), *out = malloc(n * 4);
    for (unsigned long long i = 0; i < n; i++)
        in[i] = (unsigned)rand();
    CUdeviceptr din, dout;
    CHECK(cuMemAlloc(&din, n * 4));
    CHECK(cuMemAlloc(&dout, n * 4));
    CUstream s;
    CHECK(cuStreamCreate(&s, 0));
    CHECK(cuMemcpyHtoDAsync(din, in, n * 4, s));
    CUlaunchConfig cfg = {.gridDimX = (unsigned)(n + 255) / 256, .gridDimY = 1, .gridDimZ = 1,
                          .blockDimX = 256, .blockDimY = 1, .blockDimZ = 1, .hStream = s};
    void *params[] = {&din, &dout, &n, &bias};
    CHECK(cuLaunchKernelEx(&cfg, f, params, NULL));
    CHECK(cuMemcpyDtoHAsync(out, dout, n * 4, s));
    CHECK(cuStreamSynchronize(s));
    for (unsigned long long i = 0; i < n; i++)
        EXPECT(out[i] == in[i] * 3u + bias);
    CHECK(cuStreamDestroy(s));

    /* A fatbin, and a module global written by the host and updated by a kernel. */
    snprintf(path, sizeof path, "%s/remote_kernels.fatbin", kdir);
    char *fat = read_file(path, &len);
    EXPECT(fat != NULL);
    CHECK(cuModuleLoadFatBinary(&m_fat, fat));
    CUdeviceptr g;
    size_t gsize;
    CHECK(cuModuleGetGlobal(&g, &gsize, m_fat, "counter_global"));
    EXPECT(gsize == 16);
    unsigned init[4] = {1, 2, 3, 4}, res[4];
    CHECK(cuMemcpyHtoD(g, init, sizeof init));
    CUfunction bump;
    CHECK(cuModuleGetFunction(&bump, m_fat, "bump_global"));
    unsigned v = 10;
    void *bp[] = {&v};
    CHECK(cuLaunchKernel(bump, 1, 1, 1, 32, 1, 1, 0, NULL, bp, NULL));
    CHECK(cuLaunchKernel(bump, 1, 1, 1, 32, 1, 1, 0, NULL, bp, NULL));
    CHECK(cuMemcpyDtoH(res, g, sizeof res));
    for (int i = 0; i < 4; i++)
        EXPECT(res[i] == init[i] + 20);

    /* The library API on the same fatbin. */
    CUlibrary lib;
    CUkernel k;
    CHECK(cuLibraryLoadData(&lib, fat, NULL, NULL, 0, NULL, NULL, 0));
    CHECK(cuLibraryGetKernel(&k, lib, "mad_u32"));
    size_t koff = 1, ksize = 0;
    CHECK(cuKernelGetParamInfo(k, 2, &koff, &ksize));
    EXPECT(koff == 16 && ksize == 8); /* (const unsigned *, unsigned *, unsigned long long n, ...) */
    unsigned nk = 0;
    CHECK(cuLibraryGetKernelCount(&nk, lib));
    EXPECT(nk == 3);
    CUkernel all[3] = {NULL, NULL, NULL};
    CHECK(cuLibraryEnumerateKernels(all, 3, lib));
    EXPECT(all[0] == k || all[1] == k || all[2] == k);
    CUlibrary owner = NULL;
    CHECK(cuKernelGetLibrary(&owner, k));
    EXPECT(owner == lib);
    unsigned nf = 0;
    CHECK(cuModuleGetFunctionCount(&nf, m_data));
    EXPECT(nf == 3);
    CUmodule fmod = NULL;
    CHECK(cuFuncGetModule(&fmod, f));
    EXPECT(fmod == m_data);
    const char *kname = NULL;
    CHECK(cuKernelGetName(&kname, k));
    EXPECT(kname && strcmp(kname, "mad_u32") == 0);
    int blocks = 0;
    CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, (CUfunction)k, 256, 0, 0));
    EXPECT(blocks >= 1);
    CUfunction kf;
    CHECK(cuKernelGetFunction(&kf, k));
    int min_grid = 0, best_block = 0;
    CHECK(cuOccupancyMaxPotentialBlockSize(&min_grid, &best_block, kf, NULL, 0, 0));
    EXPECT(best_block > 0 && best_block <= 1024 && best_block % 32 == 0 && min_grid > 0);
    bias = 1;
    CHECK(cuLaunchKernel(kf, (unsigned)(n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    CHECK(cuMemcpyDtoH(out, dout, n * 4));
    for (unsigned long long i = 0; i < n; i++)
        EXPECT(out[i] == in[i] * 3u + 1);
    CHECK(cuLibraryUnload(lib));
    free(fat);

    /* An impossible configuration fails at the launch itself, although launches are pipelined. */
    {
        void *bp2[] = {&v};
        EXPECT(cuLaunchKernel(bump, 1, 1, 1, 2048, 1, 1, 0, NULL, bp2, NULL) == CUDA_ERROR_INVALID_VALUE);
        EXPECT(cuLaunchKernel(bump, 0, 1, 1, 32, 1, 1, 0, NULL, bp2, NULL) == CUDA_ERROR_INVALID_VALUE);
        CHECK(cuCtxSynchronize()); /* and leaves nothing behind to report later */
    }

    /* A launch error surfaces at the launch or at the next synchronizing call. */
    EXPECT(cuModuleGetFunction(&f, m_data, "no_such_kernel") != CUDA_SUCCESS);

    /* An out-of-bounds kernel fails the context at the next synchronizing call, not at the
     * launch; the error is the context's, so it runs in a context of its own. */
    {
        CUcontext bad, prev;
        CHECK(cuCtxCreate(&bad, NULL, 0, 0));
        CUmodule mb;
        CUfunction fb;
        snprintf(path, sizeof path, "%s/remote_kernels.ptx", kdir);
        CHECK(cuModuleLoad(&mb, path));
        CHECK(cuModuleGetFunction(&fb, mb, "axpy"));
        CUdeviceptr small;
        CHECK(cuMemAlloc(&small, 256));
        int big_n = 1 << 20;
        float a = 1;
        void *p[] = {&a, &small, &small, &big_n};
        CHECK(cuLaunchKernel(fb, big_n / 256, 1, 1, 256, 1, 1, 0, NULL, p, NULL));
        CUresult rc = cuCtxSynchronize();
        EXPECT(rc == CUDA_ERROR_ILLEGAL_ADDRESS);
        CHECK(cuCtxPopCurrent(&prev));
        EXPECT(prev == bad);
        CHECK(cuCtxDestroy(bad));
    }

    CHECK(cuModuleUnload(m_file));
    CHECK(cuModuleUnload(m_data));
    CHECK(cuModuleUnload(m_fat));
    EXPECT(cuModuleGetFunction(&f, m_data, "axpy") != CUDA_SUCCESS);
    CHECK(cuMemFree(din));
    CHECK(cuMemFree(dout));
    free(in);
    free(out);
}

/* Copies (and with a kernel directory, launches) in a loop until killed. */
static void hog(const char *kdir)
{
    CUfunction f = NULL;
    if (kdir[0]) {
        char path[4096];
        snprintf(path, sizeof path, "%s/remote_kernels.ptx", kdir);
        CUmodule m;
        CHECK(cuModuleLoad(&m, path));
        CHECK(cuModuleGetFunction(&f, m, "axpy"));
    }
    const int n = 1 << 20;
    CUdeviceptr bufs[8];
    for (int i = 0; i < 8; i++)
        CHECK(cuMemAlloc(&bufs[i], n * sizeof(float)));
    CUstream s;
    CHECK(cuStreamCreate(&s, 0));
    float *h = calloc(n, sizeof(float));
    printf("READY\n");
    fflush(stdout);
    float a = 1.0f;
    int nn = n;
    for (unsigned it = 0;; it++) {
        CHECK(cuMemcpyHtoDAsync(bufs[it % 8], h, n * sizeof(float), s));
        CHECK(cuMemsetD32Async(bufs[(it + 3) % 8], it, n, s));
        if (f) {
            void *p[] = {&a, &bufs[it % 8], &bufs[(it + 1) % 8], &nn};
            CHECK(cuLaunchKernel(f, n / 256, 1, 1, 256, 1, 1, 0, s, p, NULL));
        }
        if (it % 4 == 0)
            CHECK(cuMemcpyDtoH(h, bufs[(it + 1) % 8], n * sizeof(float)));
    }
}

/* Faults its primary context with an out-of-bounds kernel, prints READY and waits to be killed:
 * other clients must be unaffected meanwhile. */
static void fault(const char *kdir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/remote_kernels.ptx", kdir);
    CUmodule m;
    CUfunction f;
    CHECK(cuModuleLoad(&m, path));
    CHECK(cuModuleGetFunction(&f, m, "axpy"));
    CUdeviceptr small;
    CHECK(cuMemAlloc(&small, 256));
    int n = 1 << 20;
    float a = 1;
    void *p[] = {&a, &small, &small, &n};
    CHECK(cuLaunchKernel(f, n / 256, 1, 1, 256, 1, 1, 0, NULL, p, NULL));
    EXPECT(cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS);
    printf("READY\n");
    fflush(stdout);
    for (;;)
        pause();
}

/* Several threads of one process share the connection; each checks its own data. */
static void *thread_main(void *arg)
{
    CUcontext ctx = arg;
    CHECK(cuCtxSetCurrent(ctx));
    unsigned seed = (unsigned)(uintptr_t)&ctx;
    const size_t n = 100000;
    unsigned *h = malloc(n * 4), *back = malloc(n * 4);
    CUdeviceptr d;
    CHECK(cuMemAlloc(&d, n * 4));
    CUstream s;
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < n; i++)
            h[i] = rand_r(&seed);
        CHECK(cuMemcpyHtoDAsync(d, h, n * 4, s));
        CHECK(cuMemsetD32Async(d, (unsigned)round, 7, s));
        CHECK(cuMemcpyDtoHAsync(back, d, n * 4, s));
        CHECK(cuStreamSynchronize(s));
        for (size_t i = 0; i < 7; i++)
            EXPECT(back[i] == (unsigned)round);
        EXPECT(memcmp(back + 7, h + 7, (n - 7) * 4) == 0);
    }
    CHECK(cuStreamDestroy(s));
    CHECK(cuMemFree(d));
    free(h);
    free(back);
    return NULL;
}

static void test_threads(CUcontext ctx)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        EXPECT(pthread_create(&t[i], NULL, thread_main, ctx) == 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
}

/* A forked child opens its own session; the parent's keeps working. */
static void test_fork(void)
{
    CUdeviceptr d;
    unsigned v = 0x1234567, back = 0;
    CHECK(cuMemAlloc(&d, 4));
    CHECK(cuMemcpyHtoD(d, &v, 4));
    pid_t pid = fork();
    EXPECT(pid >= 0);
    if (pid == 0) {
        CUcontext c;
        CHECK(cuInit(0));
        CHECK(cuDevicePrimaryCtxRetain(&c, 0));
        CHECK(cuCtxSetCurrent(c));
        /* The parent's pointer is not this session's memory. */
        EXPECT(cuMemcpyDtoH(&back, d, 4) != CUDA_SUCCESS);
        CUdeviceptr mine;
        unsigned w = 99, wb = 0;
        CHECK(cuMemAlloc(&mine, 4));
        CHECK(cuMemcpyHtoD(mine, &w, 4));
        CHECK(cuMemcpyDtoH(&wb, mine, 4));
        EXPECT(wb == 99);
        _exit(0);
    }
    int st = 0;
    EXPECT(waitpid(pid, &st, 0) == pid);
    EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(cuMemcpyDtoH(&back, d, 4));
    EXPECT(back == v);
    CHECK(cuMemFree(d));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s mem | full KDIR | hog KDIR | meminfo\n", argv[0]);
        return 2;
    }
    srand((unsigned)getpid());
    CUcontext ctx;
    setup(&ctx);
    if (!strcmp(argv[1], "meminfo")) {
        size_t f, t;
        CHECK(cuMemGetInfo(&f, &t));
        printf("%zu %zu\n", f, t);
        return 0;
    }
    if (!strcmp(argv[1], "hog") && argc > 2)
        hog(argv[2]);
    if (!strcmp(argv[1], "fault") && argc > 2)
        fault(argv[2]);
    if (!strcmp(argv[1], "threads"))
        test_threads(ctx);
    if (!strcmp(argv[1], "fork"))
        test_fork();
    if (!strcmp(argv[1], "mem") || !strcmp(argv[1], "full"))
        test_mem(argc > 3 && !strcmp(argv[3], "shared"));
    if (!strcmp(argv[1], "full") && argc > 2)
        test_kernels(argv[2]);
    CHECK(cuDevicePrimaryCtxRelease(0));
    printf("OK\n");
    return 0;
}
