/* Stream-ordered allocation and memory pools. */
#include <string.h>

#include "emu_test.h"

enum { N = 4096 };

static cuuint64_t attr(CUmemoryPool p, CUmemPool_attribute a)
{
    cuuint64_t v = 0;
    CK(cuMemPoolGetAttribute(p, a, &v));
    return v;
}

Test(pool, async_alloc_use_free_and_reuse)
{
    emu_setup();
    CUstream s;
    CK(cuStreamCreate(&s, 0));
    CUmemoryPool pool;
    CK(cuDeviceGetDefaultMemPool(&pool, 0));
    CUmemoryPool cur;
    CK(cuDeviceGetMemPool(&cur, 0));
    cr_assert_eq(cur, pool);
    /* Keep freed memory in the pool across synchronizations, to see it reused. */
    cuuint64_t keep = (cuuint64_t)64 << 20;
    CK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
    CUfunction f = emu_kernel("emu_iota");
    static int host[N];
    CUdeviceptr d;
    CK(cuMemAllocAsync(&d, N * sizeof(int), s));
    int n = N, mul = 3, add = 1;
    void *args[] = {&d, &n, &mul, &add};
    CK(cuLaunchKernel(f, N / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
    CK(cuMemcpyDtoHAsync(host, d, sizeof host, s));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), N * sizeof(int));
    CK(cuMemFreeAsync(d, s));
    CK(cuStreamSynchronize(s));
    for (int i = 0; i < N; i++)
        cr_assert_eq(host[i], i * 3 + 1);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), N * sizeof(int));
    cr_assert_geq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH), N * sizeof(int));
    /* A freed block is unreachable, then handed out again. */
    cr_assert_eq(cuMemcpyDtoH(host, d, 4), CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr again;
    CK(cuMemAllocAsync(&again, N * sizeof(int) - 100, s));
    cr_assert_eq(again, d, "the parked block was not reused");
    /* cuMemFree takes stream-ordered memory too, synchronously. */
    CK(cuMemFree(again));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    /* Trimming gives parked memory back to the device. */
    size_t free0, free1, total;
    CK(cuMemGetInfo(&free0, &total));
    CK(cuMemPoolTrimTo(pool, 0));
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_gt(free1, free0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
    cuuint64_t zero = 0;
    CK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, &zero));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 0);
    cuuint64_t one = 1;
    cr_assert_eq(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &one),
                 CUDA_ERROR_INVALID_VALUE);
}

Test(pool, release_threshold_zero_releases_at_synchronize)
{
    emu_setup();
    CUmemoryPool pool;
    CK(cuDeviceGetDefaultMemPool(&pool, 0));
    size_t free0, free1, total;
    CK(cuMemGetInfo(&free0, &total));
    CUdeviceptr d;
    CK(cuMemAllocAsync(&d, 1 << 20, NULL));
    CK(cuMemFreeAsync(d, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_eq(free1, free0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
}

Test(pool, created_pools_access_and_destroy)
{
    emu_setup();
    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 0;
    props.maxSize = 1 << 20;
    CUmemoryPool pool;
    CK(cuMemPoolCreate(&pool, &props));
    CUdeviceptr a, b;
    CK(cuMemAllocFromPoolAsync(&a, 512 << 10, pool, NULL));
    cr_assert_eq(cuMemAllocFromPoolAsync(&b, 768 << 10, pool, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CUmemAccess_flags fl;
    CK(cuMemPoolGetAccess(&fl, pool, &loc));
    cr_assert_eq(fl, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    CUmemAccessDesc none = {loc, CU_MEM_ACCESS_FLAGS_PROT_NONE};
    cr_assert_eq(cuMemPoolSetAccess(pool, &none, 1), CUDA_ERROR_INVALID_VALUE); /* its own device */
    /* The device's current pool can be switched to it. */
    CK(cuDeviceSetMemPool(0, pool));
    CK(cuMemAllocAsync(&b, 256 << 10, NULL));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 768 << 10);
    CK(cuMemFreeAsync(a, NULL));
    CK(cuMemFreeAsync(b, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemPoolDestroy(pool));
    cr_assert_eq(cuMemPoolDestroy(pool), CUDA_ERROR_INVALID_VALUE);
    CUmemoryPool cur, def;
    CK(cuDeviceGetMemPool(&cur, 0));
    CK(cuDeviceGetDefaultMemPool(&def, 0));
    cr_assert_eq(cur, def, "destroying the current pool falls back to the default");
    cr_assert_eq(cuMemPoolDestroy(def), CUDA_ERROR_INVALID_VALUE);
    /* Pools of shareable handles (IPC) are not emulated. */
    props.handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    cr_assert_eq(cuMemPoolCreate(&pool, &props), CUDA_ERROR_NOT_SUPPORTED);
    cr_assert_eq(cuMemFreeAsync(0x1234, NULL), CUDA_ERROR_INVALID_VALUE);
}

/* A pool's memory belongs to the allocating context: another context's kernels cannot reach it,
 * and destroying the context gives it back. */
Test(pool, allocations_die_with_their_context)
{
    CUcontext primary = emu_setup();
    CUmemoryPool pool;
    CK(cuDeviceGetDefaultMemPool(&pool, 0));
    CUcontext c;
    CK(cuCtxCreate(&c, NULL, 0, 0));
    CUdeviceptr d;
    CK(cuMemAllocAsync(&d, 8192, NULL));
    CK(cuCtxSynchronize());
    CK(cuCtxDestroy(c));
    CK(cuCtxSetCurrent(primary));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
}
