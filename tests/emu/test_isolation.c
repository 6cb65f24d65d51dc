/* Per-context address spaces: a kernel reaches only its own context's allocations (plus host
 * memory); a foreign device pointer is CUDA_ERROR_ILLEGAL_ADDRESS for the launching context alone,
 * and the victim's memory is neither read nor written. */
#include <string.h>

#include "emu_test.h"

enum { N = 1024 };

static CUfunction load(const char *name, CUmodule *mod)
{
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CK(cuModuleLoadData(mod, ptx));
    free(ptx);
    CUfunction f;
    CK(cuModuleGetFunction(&f, *mod, name));
    return f;
}

/* The victim: a context holding N secret ints. */
static CUcontext victim(CUdeviceptr *secret, int *host_secret)
{
    CUcontext a;
    CK(cuCtxCreate(&a, NULL, 0, 0));
    for (int i = 0; i < N; i++)
        host_secret[i] = rand() | 1;
    CK(cuMemAlloc(secret, N * sizeof(int)));
    CK(cuMemcpyHtoD(*secret, host_secret, N * sizeof(int)));
    return a;
}

Test(isolation, foreign_pointer_is_an_illegal_address_for_the_attacker_only)
{
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    static int secret_host[N], back[N];
    CUdeviceptr secret;
    CUcontext a = victim(&secret, secret_host);
    CUmodule ma;
    CUfunction fa = load("emu_copy", &ma);

    CUcontext b;
    CK(cuCtxCreate(&b, NULL, 0, 0));
    CUmodule mb;
    CUfunction fb = load("emu_copy", &mb);
    CUdeviceptr loot;
    CK(cuMemAlloc(&loot, N * sizeof(int)));
    CK(cuMemsetD32(loot, 0, N));
    /* Read: copy the victim's buffer into the attacker's. */
    int n = N;
    void *read_params[] = {&loot, &secret, &n};
    CK(cuLaunchKernel(fb, N / 128, 1, 1, 128, 1, 1, 0, NULL, read_params, NULL));
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);

    /* The attacker's context is poisoned; the victim's is not, and its data is intact. */
    CK(cuCtxSetCurrent(a));
    CK(cuCtxSynchronize());
    CK(cuMemcpyDtoH(back, secret, sizeof back));
    cr_assert_eq(memcmp(back, secret_host, sizeof back), 0);
    /* The victim's own kernels still run on its memory. */
    CUdeviceptr copy;
    CK(cuMemAlloc(&copy, N * sizeof(int)));
    void *own_params[] = {&copy, &secret, &n};
    CK(cuLaunchKernel(fa, N / 128, 1, 1, 128, 1, 1, 0, NULL, own_params, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemcpyDtoH(back, copy, sizeof back));
    cr_assert_eq(memcmp(back, secret_host, sizeof back), 0);

    /* Write: a fresh attacker context stores into the victim's buffer. */
    CUcontext c;
    CK(cuCtxCreate(&c, NULL, 0, 0));
    CUmodule mc;
    CUfunction fc = load("emu_copy", &mc);
    CUdeviceptr junk;
    CK(cuMemAlloc(&junk, N * sizeof(int)));
    CK(cuMemsetD32(junk, 0x41414141, N));
    void *write_params[] = {&secret, &junk, &n};
    CK(cuLaunchKernel(fc, N / 128, 1, 1, 128, 1, 1, 0, NULL, write_params, NULL));
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    CK(cuCtxSetCurrent(a));
    CK(cuMemcpyDtoH(back, secret, sizeof back));
    cr_assert_eq(memcmp(back, secret_host, sizeof back), 0, "the victim's memory was written");
    CK(cuCtxDestroy(c));
    CK(cuCtxDestroy(b));
    CK(cuCtxDestroy(a));
}

Test(isolation, memset_of_a_foreign_pointer_is_refused)
{
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    static int secret_host[N], back[N];
    CUdeviceptr secret;
    CUcontext a = victim(&secret, secret_host);
    CUcontext b;
    CK(cuCtxCreate(&b, NULL, 0, 0));
    cr_assert_eq(cuMemsetD32(secret, 0, N), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD8Async(secret, 0, 16, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD2D32(secret, 64, 0, 4, 4), CUDA_ERROR_INVALID_VALUE);
    CK(cuCtxSynchronize()); /* refused at the call: the context is not poisoned */
    CK(cuCtxSetCurrent(a));
    CK(cuMemcpyDtoH(back, secret, sizeof back));
    cr_assert_eq(memcmp(back, secret_host, sizeof back), 0);
    CK(cuCtxDestroy(b));
    CK(cuCtxDestroy(a));
}

/* Unified addressing: copies see the whole process, as cuMemcpy's documentation and the CUDA
 * programming guide's copies between devices rely on; only kernels and memsets are confined. */
Test(isolation, unified_copies_reach_other_contexts)
{
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    static int secret_host[N], back[N];
    CUdeviceptr secret;
    CUcontext a = victim(&secret, secret_host);
    CUcontext b;
    CK(cuCtxCreate(&b, NULL, 0, 0));
    CUdeviceptr mine;
    CK(cuMemAlloc(&mine, N * sizeof(int)));
    CK(cuMemcpy(mine, secret, N * sizeof(int)));
    CK(cuMemcpyDtoH(back, mine, sizeof back));
    cr_assert_eq(memcmp(back, secret_host, sizeof back), 0);
    CK(cuCtxDestroy(b));
    CK(cuCtxDestroy(a));
}

/* Host memory (pinned or registered) is reachable from every context's kernels. */
Test(isolation, host_memory_is_reachable_from_every_context)
{
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    CUcontext a, b;
    CK(cuCtxCreate(&a, NULL, 0, 0));
    int *pinned;
    CK(cuMemAllocHost((void **)&pinned, N * sizeof(int)));
    for (int i = 0; i < N; i++)
        pinned[i] = i * 7;
    static int registered[N];
    CK(cuMemHostRegister(registered, sizeof registered, CU_MEMHOSTREGISTER_DEVICEMAP));
    CK(cuCtxCreate(&b, NULL, 0, 0));
    CUmodule m;
    CUfunction f = load("emu_copy", &m);
    CUdeviceptr dpinned, dreg;
    CK(cuMemHostGetDevicePointer(&dpinned, pinned, 0));
    CK(cuMemHostGetDevicePointer(&dreg, registered, 0));
    cr_assert_eq((void *)(uintptr_t)dpinned, (void *)pinned); /* unified addressing */
    int n = N;
    void *params[] = {&dreg, &dpinned, &n};
    CK(cuLaunchKernel(f, N / 128, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    CK(cuCtxSynchronize());
    for (int i = 0; i < N; i++)
        cr_assert_eq(registered[i], i * 7);
    /* An interior pointer of mapped memory has a device pointer too; unmapped memory has none. */
    CUdeviceptr inner;
    CK(cuMemHostGetDevicePointer(&inner, pinned + 10, 0));
    cr_assert_eq((int *)(uintptr_t)inner, pinned + 10);
    static int plain[4];
    cr_assert_eq(cuMemHostGetDevicePointer(&inner, plain, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemHostGetDevicePointer(&inner, pinned, 1), CUDA_ERROR_INVALID_VALUE);
    CK(cuCtxSetCurrent(a));
    CK(cuMemHostUnregister(registered));
    CK(cuMemFreeHost(pinned));
    CK(cuCtxDestroy(b));
    CK(cuCtxDestroy(a));
}

/* A context's allocations die with it: a pointer kept from a destroyed context is foreign to a
 * new context that happens to be created at the same place. */
Test(isolation, a_destroyed_contexts_memory_is_gone)
{
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    static int secret_host[N];
    CUdeviceptr secret;
    CUcontext a = victim(&secret, secret_host);
    CK(cuCtxDestroy(a));
    CUcontext b;
    CK(cuCtxCreate(&b, NULL, 0, 0));
    CUmodule m;
    CUfunction f = load("emu_copy", &m);
    CUdeviceptr mine;
    CK(cuMemAlloc(&mine, N * sizeof(int)));
    int n = N;
    void *params[] = {&mine, &secret, &n};
    CK(cuLaunchKernel(f, N / 128, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    CK(cuCtxDestroy(b));
}
