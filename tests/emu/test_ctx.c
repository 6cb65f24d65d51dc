/* Created and primary contexts and the per-thread context stack. */
#include <pthread.h>

#include "emu_test.h"

Test(ctx, create_push_pop)
{
    CK(cuInit(0));
    CUcontext a, b, cur;
    CK(cuCtxCreate(&a, NULL, 0, 0));
    CK(cuCtxGetCurrent(&cur));
    cr_assert_eq(cur, a);
    CK(cuCtxCreate(&b, NULL, 0, 0));
    cr_assert_neq(a, b);
    CK(cuCtxGetCurrent(&cur));
    cr_assert_eq(cur, b);
    CK(cuCtxPopCurrent(&cur));
    cr_assert_eq(cur, b);
    CK(cuCtxGetCurrent(&cur));
    cr_assert_eq(cur, a);
    CK(cuCtxPushCurrent(b));
    CK(cuCtxGetCurrent(&cur));
    cr_assert_eq(cur, b);
    unsigned long long ida, idb;
    CK(cuCtxGetId(a, &ida));
    CK(cuCtxGetId(b, &idb));
    cr_assert_neq(ida, idb);
    unsigned ver;
    CK(cuCtxGetApiVersion(a, &ver));
    cr_assert_geq(ver, 3020);
    CK(cuCtxDestroy(b));
    CK(cuCtxGetCurrent(&cur));
    cr_assert_eq(cur, a);
    CK(cuCtxDestroy(a));
    CK(cuCtxGetCurrent(&cur));
    cr_assert_null(cur);
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
}

Test(ctx, bad_handles)
{
    CK(cuInit(0));
    CUcontext a;
    cr_assert_eq(cuCtxCreate(NULL, NULL, 0, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuCtxCreate(&a, NULL, 0, 7), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuCtxDestroy(NULL), CUDA_ERROR_INVALID_CONTEXT);
    int junk[16] = {0};
    cr_assert_eq(cuCtxDestroy((CUcontext)junk), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuCtxPushCurrent((CUcontext)junk), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuCtxSetCurrent((CUcontext)0x1234), CUDA_ERROR_INVALID_CONTEXT);
    CK(cuCtxCreate(&a, NULL, 0, 0));
    CK(cuCtxDestroy(a));
    cr_assert_eq(cuCtxDestroy(a), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuCtxPushCurrent(a), CUDA_ERROR_INVALID_CONTEXT);
    unsigned long long id;
    cr_assert_eq(cuCtxGetId(a, &id), CUDA_ERROR_INVALID_CONTEXT);
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc(&p, 4), CUDA_ERROR_INVALID_CONTEXT);
}

Test(ctx, primary)
{
    CK(cuInit(0));
    unsigned flags;
    int active;
    CK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    cr_assert_eq(active, 0);
    CK(cuDevicePrimaryCtxSetFlags(0, CU_CTX_SCHED_BLOCKING_SYNC));
    CUcontext p1, p2;
    CK(cuDevicePrimaryCtxRetain(&p1, 0));
    CK(cuDevicePrimaryCtxRetain(&p2, 0));
    cr_assert_eq(p1, p2);
    CK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    cr_assert_eq(active, 1);
    cr_assert_eq(flags, CU_CTX_SCHED_BLOCKING_SYNC);
    cr_assert_eq(cuCtxDestroy(p1), CUDA_ERROR_INVALID_CONTEXT); /* primary: release, not destroy */
    CK(cuCtxSetCurrent(p1));
    unsigned cf;
    CK(cuCtxGetFlags(&cf));
    cr_assert_eq(cf, CU_CTX_SCHED_BLOCKING_SYNC);
    CUdeviceptr d;
    CK(cuMemAlloc(&d, 64));
    CK(cuDevicePrimaryCtxReset(0));
    /* After a reset the memory is gone but the retained handle still works. */
    CUdeviceptr base;
    cr_assert_eq(cuMemGetAddressRange(&base, NULL, d), CUDA_ERROR_NOT_FOUND);
    CK(cuMemAlloc(&d, 64));
    CK(cuDevicePrimaryCtxRelease(0));
    CK(cuDevicePrimaryCtxRelease(0));
    CK(cuDevicePrimaryCtxGetState(0, &flags, &active));
    cr_assert_eq(active, 0);
    cr_assert_eq(cuDevicePrimaryCtxRelease(0), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuMemAlloc(&d, 64), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuDevicePrimaryCtxRetain(&p1, 3), CUDA_ERROR_INVALID_DEVICE);
}

Test(ctx, limits_and_config)
{
    emu_setup();
    size_t v;
    CK(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 4096));
    CK(cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE));
    cr_assert_eq(v, 4096);
    cr_assert_eq(cuCtxGetLimit(&v, CU_LIMIT_MAX), CUDA_ERROR_INVALID_VALUE);
    CK(cuCtxSetCacheConfig(CU_FUNC_CACHE_PREFER_SHARED));
    CUfunc_cache cc;
    CK(cuCtxGetCacheConfig(&cc));
    cr_assert_eq(cc, CU_FUNC_CACHE_PREFER_SHARED);
    int lo, hi;
    CK(cuCtxGetStreamPriorityRange(&lo, &hi));
    cr_assert_geq(lo, hi);
    CUdevice d;
    CK(cuCtxGetDevice(&d));
    cr_assert_eq(d, 0);
    CK(cuCtxSynchronize());
}

static void *other_thread(void *arg)
{
    CUcontext cur = (CUcontext)1;
    CUresult r = cuCtxGetCurrent(&cur);
    *(int *)arg = r == CUDA_SUCCESS && cur == NULL;
    return NULL;
}

Test(ctx, stack_is_per_thread)
{
    emu_setup();
    pthread_t t;
    int ok = 0;
    pthread_create(&t, NULL, other_thread, &ok);
    pthread_join(t, NULL);
    cr_assert_eq(ok, 1);
}

/* cuCtxDestroy releases what the context owned: memory (seen in cuMemGetInfo from another
 * context), modules and their variables, streams and events (whose handles go stale). LSan, in
 * sanitizer builds, checks that nothing leaks. */
Test(ctx, destroy_releases_everything)
{
    CUcontext primary = emu_setup();
    size_t free0, free1, total;
    CK(cuMemGetInfo(&free0, &total));
    CUcontext c;
    CK(cuCtxCreate(&c, NULL, 0, 0));
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 8 << 20));
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadData(&m, ptx));
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_read_table"));
    CUstream s;
    CK(cuStreamCreate(&s, 0));
    CUevent e;
    CK(cuEventCreate(&e, 0));
    void *params[] = {&p};
    CK(cuLaunchKernel(f, 1, 1, 1, 8, 1, 1, 0, s, params, NULL));
    CK(cuEventRecord(e, s));
    void *host;
    CK(cuMemAllocHost(&host, 4096));
    CK(cuCtxDestroy(c));
    CK(cuCtxSetCurrent(primary));
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_eq(free1, free0);
    cr_assert_eq(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuModuleGetFunction(&f, m, "emu_read_table"), CUDA_ERROR_INVALID_HANDLE);
    unsigned char b;
    cr_assert_eq(cuMemcpyDtoH(&b, p, 1), CUDA_ERROR_INVALID_VALUE);
    free(ptx);
}
