/* Module and library loading in every image form, damaged images, and launches. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "emu_test.h"

static void run_add(CUmodule m)
{
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_add"));
    enum { N = 1000 };
    float a[N], b[N], out[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)(rand() % 1000);
        b[i] = (float)(rand() % 1000);
    }
    CUdeviceptr da, db;
    CK(cuMemAlloc(&da, sizeof a));
    CK(cuMemAlloc(&db, sizeof b));
    CK(cuMemcpyHtoD(da, a, sizeof a));
    CK(cuMemcpyHtoD(db, b, sizeof b));
    int n = N;
    void *params[] = {&da, &db, &n};
    CK(cuLaunchKernel(f, (N + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    CK(cuMemcpyDtoH(out, da, sizeof out));
    for (int i = 0; i < N; i++)
        cr_assert_float_eq(out[i], a[i] + b[i], 1e-6, "i=%d", i);
    CK(cuMemFree(da));
    CK(cuMemFree(db));
}

Test(module, ptx_text)
{
    emu_setup();
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadData(&m, ptx));
    run_add(m);
    CUfunction f;
    cr_assert_eq(cuModuleGetFunction(&f, m, "nope"), CUDA_ERROR_NOT_FOUND);
    CK(cuModuleUnload(m));
    cr_assert_eq(cuModuleGetFunction(&f, m, "emu_add"), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
    free(ptx);
}

Test(module, files_and_fatbins)
{
    emu_setup();
    const char *files[] = {"emu_kernels.ptx", "emu_kernels.fatbin", "emu_kernels.o.fatbin",
                           "emu_kernels.lz4.fatbin", "emu_kernels.raw.fatbin"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", EMU_KERNEL_DIR, files[i]);
        CUmodule m;
        cr_assert_eq(cuModuleLoad(&m, path), CUDA_SUCCESS, "%s", files[i]);
        run_add(m);
        CK(cuModuleUnload(m));
    }
    void *fb = emu_read_kernel_file("emu_kernels.fatbin", NULL);
    CUmodule m;
    CK(cuModuleLoadFatBinary(&m, fb));
    CK(cuModuleUnload(m));
    struct { uint32_t magic, version; const void *data; const void *unused; } w = {
        0x466243b1u, 1, fb, NULL};
    CK(cuModuleLoadData(&m, &w));
    run_add(m);
    free(fb);
}

Test(module, globals)
{
    emu_setup();
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadDataEx(&m, ptx, 0, NULL, NULL));
    CUdeviceptr g;
    size_t size;
    CK(cuModuleGetGlobal(&g, &size, m, "emu_table"));
    cr_assert_eq(size, 16);
    int table[4];
    CK(cuMemcpyDtoH(table, g, sizeof table));
    cr_assert_eq(table[2], 30);
    int newv[4] = {5, 6, 7, 8};
    CK(cuMemcpyHtoD(g, newv, sizeof newv));
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_read_table"));
    CUdeviceptr out;
    CK(cuMemAlloc(&out, 8 * sizeof(int)));
    void *params[] = {&out};
    CK(cuLaunchKernel(f, 1, 1, 1, 8, 1, 1, 0, NULL, params, NULL));
    int res[8];
    CK(cuMemcpyDtoH(res, out, sizeof res));
    for (int i = 0; i < 8; i++)
        cr_assert_eq(res[i], newv[i & 3]);
    cr_assert_eq(cuModuleGetGlobal(&g, &size, m, "missing"), CUDA_ERROR_NOT_FOUND);
    free(ptx);
}

Test(module, function_info_and_extra_launch)
{
    emu_setup();
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadData(&m, ptx));
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_add"));
    size_t off, size;
    CK(cuFuncGetParamInfo(f, 0, &off, &size));
    cr_assert_eq(off, 0);
    cr_assert_eq(size, 8);
    CK(cuFuncGetParamInfo(f, 2, &off, &size));
    cr_assert_eq(off, 16);
    cr_assert_eq(size, 4);
    cr_assert_eq(cuFuncGetParamInfo(f, 3, &off, &size), CUDA_ERROR_INVALID_VALUE);
    const char *name;
    CK(cuFuncGetName(&name, f));
    cr_assert_str_eq(name, "emu_add");
    int v;
    CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
    cr_assert_eq(v, 1024);
    CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_PTX_VERSION, f));
    cr_assert_geq(v, 75);
    CK(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 60 * 1024));
    CK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
    cr_assert_eq(v, 60 * 1024);
    cr_assert_eq(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1 << 20),
                 CUDA_ERROR_INVALID_VALUE);
    int blocks, minGrid, bs;
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 0));
    cr_assert_gt(blocks, 0);
    CK(cuOccupancyMaxPotentialBlockSize(&minGrid, &bs, f, NULL, 0, 0));
    cr_assert_gt(bs, 0);
    cr_assert_leq(bs, 1024);

    /* The packed-buffer (extra) launch form. */
    float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40};
    CUdeviceptr da, db;
    CK(cuMemAlloc(&da, sizeof a));
    CK(cuMemAlloc(&db, sizeof b));
    CK(cuMemcpyHtoD(da, a, sizeof a));
    CK(cuMemcpyHtoD(db, b, sizeof b));
    struct { CUdeviceptr a, b; int n; int pad; } buf = {da, db, 4, 0};
    size_t bufsize = 20;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &bufsize,
                     CU_LAUNCH_PARAM_END};
    CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra));
    CK(cuMemcpyDtoH(a, da, sizeof a));
    cr_assert_float_eq(a[3], 44.0f, 1e-6);
    size_t small = 8;
    void *extra_small[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buf, CU_LAUNCH_PARAM_BUFFER_SIZE,
                           &small, CU_LAUNCH_PARAM_END};
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra_small),
                 CUDA_ERROR_INVALID_VALUE);
    /* Bad launch configurations and handles. */
    void *params[] = {&da, &db, &buf.n};
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 2048, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuLaunchKernel(f, 0, 1, 1, 32, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
    int junk[16] = {0};
    cr_assert_eq(cuLaunchKernel((CUfunction)junk, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL),
                 CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuLaunchKernel(NULL, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL),
                 CUDA_ERROR_INVALID_HANDLE);
    CUlaunchConfig cfg = {0};
    cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 4;
    cfg.blockDimY = cfg.blockDimZ = 1;
    CK(cuLaunchKernelEx(&cfg, f, params, NULL));
    CK(cuCtxSynchronize());
    free(ptx);
}

Test(module, library_and_kernels)
{
    emu_setup();
    void *fb = emu_read_kernel_file("emu_kernels.fatbin", NULL);
    struct { uint32_t magic, version; const void *data; const void *unused; } w = {
        0x466243b1u, 1, fb, NULL};
    CUlibrary lib;
    CK(cuLibraryLoadData(&lib, &w, NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    CK(cuLibraryGetKernel(&k, lib, "emu_add"));
    const char *name;
    CK(cuKernelGetName(&name, k));
    cr_assert_str_eq(name, "emu_add");
    int v;
    CK(cuKernelGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, k, 0));
    cr_assert_eq(v, 1024);
    cr_assert_eq(cuLibraryGetKernel(&k, lib, "nope"), CUDA_ERROR_NOT_FOUND);
    CK(cuLibraryGetKernel(&k, lib, "emu_add"));
    /* The runtime launches the CUkernel cast to CUfunction. */
    float a[2] = {1, 2}, b[2] = {3, 4};
    CUdeviceptr da, db;
    CK(cuMemAlloc(&da, sizeof a));
    CK(cuMemAlloc(&db, sizeof b));
    CK(cuMemcpyHtoD(da, a, sizeof a));
    CK(cuMemcpyHtoD(db, b, sizeof b));
    int n = 2;
    void *params[] = {&da, &db, &n};
    CK(cuLaunchKernel((CUfunction)k, 1, 1, 1, 2, 1, 1, 0, NULL, params, NULL));
    CK(cuMemcpyDtoH(a, da, sizeof a));
    cr_assert_float_eq(a[1], 6.0f, 1e-6);
    CUfunction f;
    CK(cuKernelGetFunction(&f, k));
    CUmodule m;
    CK(cuLibraryGetModule(&m, lib));
    CUfunction f2;
    CK(cuModuleGetFunction(&f2, m, "emu_add"));
    cr_assert_eq(f, f2);
    CUdeviceptr g;
    size_t gs;
    CK(cuLibraryGetGlobal(&g, &gs, lib, "emu_table"));
    cr_assert_eq(gs, 16);
    CK(cuLibraryUnload(lib));
    cr_assert_eq(cuLibraryGetKernel(&k, lib, "emu_add"), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuKernelGetName(&name, k), CUDA_ERROR_INVALID_HANDLE);
    free(fb);
}

Test(module, rejected_images)
{
    emu_setup();
    CUmodule m;
    CUlibrary lib;
    /* ELF cubin: needs PTX. */
    void *cubin = emu_read_kernel_file("emu_kernels.cubin", NULL);
    cr_assert_eq(cuModuleLoadData(&m, cubin), CUDA_ERROR_NO_BINARY_FOR_GPU);
    cr_assert_eq(cuLibraryLoadData(&lib, cubin, NULL, NULL, 0, NULL, NULL, 0),
                 CUDA_ERROR_NO_BINARY_FOR_GPU);
    free(cubin);
    void *elfonly = emu_read_kernel_file("emu_kernels.elfonly.fatbin", NULL);
    cr_assert_eq(cuModuleLoadFatBinary(&m, elfonly), CUDA_ERROR_NO_BINARY_FOR_GPU);
    free(elfonly);
    /* Garbage and truncated fatbins. */
    size_t size;
    unsigned char *fb = emu_read_kernel_file("emu_kernels.fatbin", &size);
    char path[] = "/tmp/emu_trunc_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "wb");
    fwrite(fb, 1, size / 2, f);
    fclose(f);
    cr_assert_eq(cuModuleLoad(&m, path), CUDA_ERROR_INVALID_IMAGE);
    unlink(path);
    fb[8] = 0xff; /* container size field far past the data */
    fb[12] = 0x7f;
    cr_assert_eq(cuModuleLoadData(&m, fb), CUDA_ERROR_INVALID_IMAGE);
    free(fb);
    unsigned char junk[64] = {0x01, 0x80, 0x02};
    cr_assert_eq(cuModuleLoadData(&m, junk), CUDA_ERROR_INVALID_IMAGE);
    cr_assert_eq(cuModuleLoadData(&m, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuModuleLoad(&m, "/nonexistent/file.ptx"), CUDA_ERROR_FILE_NOT_FOUND);
    /* Malformed PTX. */
    cr_assert_eq(cuModuleLoadData(&m, ".version 7.5\n.target sm_75\nthis is not ptx {{{\n"),
                 CUDA_ERROR_INVALID_PTX);
    CUmoduleLoadingMode mode;
    CK(cuModuleGetLoadingMode(&mode));
    /* The context is unharmed. */
    CK(cuCtxSynchronize());
}

Test(module, out_of_bounds_is_sticky)
{
    emu_setup();
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadData(&m, ptx));
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_oob"));
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 64));
    long long offset = 1 << 24;
    void *params[] = {&p, &offset};
    CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    /* Sticky: every later call on the context reports it. */
    CUdeviceptr q;
    cr_assert_eq(cuMemAlloc(&q, 16), CUDA_ERROR_ILLEGAL_ADDRESS);
    int x = 0;
    cr_assert_eq(cuMemcpyHtoD(p, &x, 4), CUDA_ERROR_ILLEGAL_ADDRESS);
    cr_assert_eq(cuStreamSynchronize(NULL), CUDA_ERROR_ILLEGAL_ADDRESS);
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    /* A reset of the primary context recovers. */
    CK(cuDevicePrimaryCtxReset(0));
    CK(cuMemAlloc(&q, 16));
    free(ptx);
}

/* Every way a launch configuration can be impossible on the device. */
struct bad_config {
    unsigned grid[3], block[3], shared;
};
static const struct bad_config bad_configs[] = {
    {{1, 1, 1}, {2048, 1, 1}, 0},        /* too many threads per block */
    {{1, 1, 1}, {64, 32, 1}, 0},         /* 2048 threads, each axis within its limit */
    {{1, 1, 1}, {1, 1, 65}, 0},          /* z over its per-axis limit of 64 */
    {{1, 1, 1}, {1025, 1, 1}, 0},        /* x over its per-axis limit */
    {{0, 1, 1}, {32, 1, 1}, 0},          /* empty grid */
    {{1, 0, 1}, {32, 1, 1}, 0},
    {{1, 1, 1}, {32, 1, 0}, 0},          /* empty block */
    {{1, 65536, 1}, {32, 1, 1}, 0},      /* grid y over its limit */
    {{1, 1, 1}, {32, 1, 1}, 49153},      /* more dynamic shared memory than a block may have */
};

Test(module, bad_launch_configurations)
{
    emu_setup();
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadData(&m, ptx));
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_add"));
    CUdeviceptr da;
    CK(cuMemAlloc(&da, 64));
    int n = 0;
    void *params[] = {&da, &da, &n};
    void *fb = emu_read_kernel_file("emu_kernels.fatbin", NULL);
    CUlibrary lib;
    CK(cuLibraryLoadData(&lib, fb, NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    CK(cuLibraryGetKernel(&k, lib, "emu_add"));
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        const struct bad_config *b = &bad_configs[i];
        /* A module's CUfunction: what cuLaunchKernel documents. */
        cr_assert_eq(cuLaunchKernel(f, b->grid[0], b->grid[1], b->grid[2], b->block[0],
                                    b->block[1], b->block[2], b->shared, NULL, params, NULL),
                     CUDA_ERROR_INVALID_VALUE, "config %zu", i);
        CUlaunchConfig cfg = {b->grid[0], b->grid[1], b->grid[2], b->block[0], b->block[1],
                              b->block[2], b->shared, NULL, NULL, 0};
        cr_assert_eq(cuLaunchKernelEx(&cfg, f, params, NULL), CUDA_ERROR_INVALID_VALUE,
                     "config %zu (Ex)", i);
        /* The runtime's way, a CUkernel: CUresult 9, which it reports as
         * cudaErrorInvalidConfiguration. */
        cr_assert_eq((int)cuLaunchKernel((CUfunction)k, b->grid[0], b->grid[1], b->grid[2],
                                         b->block[0], b->block[1], b->block[2], b->shared, NULL,
                                         params, NULL),
                     9, "config %zu (CUkernel)", i);
        cr_assert_eq((int)cuLaunchKernelEx(&cfg, (CUfunction)k, params, NULL), 9,
                     "config %zu (CUkernel, Ex)", i);
    }
    /* The limits themselves are fine, and nothing above poisoned the context. */
    CK(cuLaunchKernel(f, 1, 1, 1, 1024, 1, 1, 48 * 1024, NULL, params, NULL));
    CK(cuLaunchKernel((CUfunction)k, 1, 1, 1, 16, 1, 64, 0, NULL, params, NULL));
    CK(cuCtxSynchronize());
    CK(cuLibraryUnload(lib));
    CK(cuModuleUnload(m));
    CK(cuMemFree(da));
    free(fb);
    free(ptx);
}

/* Garbage where the API takes pointers to images, parameter arrays and launch configurations:
 * a clean error, never a crash. */
Test(module, garbage_pointers)
{
    emu_setup();
    CUmodule m;
    CUlibrary lib;
    void *garbage = (void *)(uintptr_t)0x10;
    cr_assert_eq(cuModuleLoadData(&m, garbage), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuModuleLoadFatBinary(&m, garbage), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuLibraryLoadData(&lib, garbage, NULL, NULL, 0, NULL, NULL, 0),
                 CUDA_ERROR_INVALID_VALUE);
    struct { uint32_t magic, version; const void *data; const void *unused; } w = {
        0x466243b1u, 1, garbage, NULL};
    cr_assert_eq(cuModuleLoadData(&m, &w), CUDA_ERROR_INVALID_VALUE);
    /* Not regular files: refused without reading them forever. */
    cr_assert_eq(cuModuleLoad(&m, "/dev/zero"), CUDA_ERROR_INVALID_IMAGE);
    cr_assert_eq(cuModuleLoad(&m, "/tmp"), CUDA_ERROR_INVALID_IMAGE);

    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CK(cuModuleLoadData(&m, ptx));
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_add"));
    CUdeviceptr d;
    CK(cuMemAlloc(&d, 64));
    int n = 1;
    void *bad_entry[] = {&d, garbage, &n};
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, (void **)garbage, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, bad_entry, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, (void **)garbage),
                 CUDA_ERROR_INVALID_VALUE);
    void *extra_garbage_buf[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, garbage,
                                 CU_LAUNCH_PARAM_BUFFER_SIZE, garbage, CU_LAUNCH_PARAM_END};
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, extra_garbage_buf),
                 CUDA_ERROR_INVALID_VALUE);
    void *extra_unterminated[64];
    for (int i = 0; i < 64; i += 2) {
        extra_unterminated[i] = CU_LAUNCH_PARAM_BUFFER_POINTER;
        extra_unterminated[i + 1] = &n;
    }
    cr_assert_eq(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, extra_unterminated),
                 CUDA_ERROR_INVALID_VALUE);
    void *params[] = {&d, &d, &n};
    cr_assert_eq(cuLaunchKernelEx((const CUlaunchConfig *)garbage, f, params, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    CUlaunchConfig cfg = {1, 1, 1, 1, 1, 1, 0, NULL, (CUlaunchAttribute *)garbage, 1};
    cr_assert_eq(cuLaunchKernelEx(&cfg, f, params, NULL), CUDA_ERROR_INVALID_VALUE);
    /* None of it harmed the context. */
    CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemFree(d));
    CK(cuModuleUnload(m));
    free(ptx);
}

/* A module's variables belong to it: cuMemFree refuses them, the unload releases them. */
Test(module, globals_are_not_for_cuMemFree)
{
    emu_setup();
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadData(&m, ptx));
    CUdeviceptr g;
    size_t size;
    CK(cuModuleGetGlobal(&g, &size, m, "emu_table"));
    cr_assert_eq(cuMemFree(g), CUDA_ERROR_INVALID_VALUE);
    int table[4];
    CK(cuMemcpyDtoH(table, g, sizeof table));
    cr_assert_eq(table[3], 40);
    CK(cuModuleUnload(m));
    cr_assert_eq(cuMemcpyDtoH(table, g, sizeof table), CUDA_ERROR_INVALID_VALUE);
    free(ptx);
}

/* A CUkernel runs in the context of the stream it is launched into, whichever is current. */
Test(module, kernel_follows_the_stream_context)
{
    CUcontext primary = emu_setup();
    void *fb = emu_read_kernel_file("emu_kernels.fatbin", NULL);
    CUlibrary lib;
    CK(cuLibraryLoadData(&lib, fb, NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    CK(cuLibraryGetKernel(&k, lib, "emu_add"));
    CUcontext other;
    CK(cuCtxCreate(&other, NULL, 0, 0));
    CUstream s;
    CK(cuStreamCreate(&s, 0));
    float a[2] = {1, 2}, b[2] = {10, 20};
    CUdeviceptr da, db;
    CK(cuMemAlloc(&da, sizeof a));
    CK(cuMemAlloc(&db, sizeof b));
    CK(cuMemcpyHtoD(da, a, sizeof a));
    CK(cuMemcpyHtoD(db, b, sizeof b));
    CK(cuCtxSetCurrent(primary));
    int n = 2;
    void *params[] = {&da, &db, &n};
    CK(cuLaunchKernel((CUfunction)k, 1, 1, 1, 2, 1, 1, 0, s, params, NULL));
    CK(cuStreamSynchronize(s));
    CK(cuCtxSetCurrent(other));
    CK(cuMemcpyDtoH(a, da, sizeof a));
    cr_assert_float_eq(a[1], 22.0f, 1e-6);
    CK(cuCtxDestroy(other));
    CK(cuCtxSetCurrent(primary));
    CK(cuLibraryUnload(lib));
    free(fb);
}

/* A module with a construct the emulator cannot run loads and serves its other kernels; only a
 * launch of the kernel that reaches it fails (CUDA_ERROR_NOT_SUPPORTED, at the call, not sticky).
 * A failed device assert is CUDA_ERROR_ASSERT (sticky, as on a GPU). */
static const char *const partly_supported_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".extern .func __assertfail(.param .b64 a, .param .b64 b, .param .b32 c, .param .b64 d, .param .b64 e);\n"
    ".visible .entry uses_tex(.param .u64 t)\n{\n\t.reg .b64 %rd<2>;\n\t.reg .f32 %f<3>;\n"
    "\tld.param.u64 %rd1, [t];\n"
    "\ttex.2d.v4.f16.f32 {%f1, %f2, %f1, %f2}, [%rd1, {%f1, %f2}];\n\tret;\n}\n"
    ".visible .entry store7(.param .u64 p)\n{\n\t.reg .b32 %r<2>;\n\t.reg .b64 %rd<2>;\n"
    "\tld.param.u64 %rd1, [p];\n\tmov.u32 %r1, 7;\n\tst.global.u32 [%rd1], %r1;\n\tret;\n}\n"
    ".visible .entry fails_assert(.param .u64 p)\n{\n\t.reg .b32 %r<2>;\n\t.reg .b64 %rd<2>;\n"
    "\tmov.u64 %rd1, 0;\n\tmov.u32 %r1, 1;\n"
    "\t{\n\t.param .b64 a0;\n\t.param .b64 a1;\n\t.param .b32 a2;\n\t.param .b64 a3;\n\t.param .b64 a4;\n"
    "\tst.param.b64 [a0], %rd1;\n\tst.param.b64 [a1], %rd1;\n\tst.param.b32 [a2], %r1;\n"
    "\tst.param.b64 [a3], %rd1;\n\tst.param.b64 [a4], 1;\n"
    "\tcall __assertfail, (a0, a1, a2, a3, a4);\n\t}\n\tret;\n}\n";

Test(module, unsupported_kernel_and_assert)
{
    emu_setup();
    CUmodule m;
    CK(cuModuleLoadData(&m, partly_supported_ptx));
    CUfunction tex, store, fails;
    CK(cuModuleGetFunction(&tex, m, "uses_tex"));
    CK(cuModuleGetFunction(&store, m, "store7"));
    CK(cuModuleGetFunction(&fails, m, "fails_assert"));
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 4));
    void *params[] = {&p};
    cr_assert_eq(cuLaunchKernel(tex, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL), CUDA_ERROR_NOT_SUPPORTED);
    CK(cuLaunchKernel(store, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CK(cuCtxSynchronize());
    unsigned v = 0;
    CK(cuMemcpyDtoH(&v, p, 4));
    cr_assert_eq(v, 7u);
    CK(cuLaunchKernel(fails, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_ASSERT);
    CK(cuDevicePrimaryCtxReset(0));
}
