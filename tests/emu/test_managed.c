/* Managed memory in-process: one pointer for the host and every context's kernels. */
#include <string.h>

#include "emu_test.h"

enum { N = 2048 };

Test(managed, host_and_kernels_share_the_bytes)
{
    emu_setup();
    int attr = 0;
    CK(cuDeviceGetAttribute(&attr, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, 0));
    cr_assert_eq(attr, 1);
    CUdeviceptr d;
    CK(cuMemAllocManaged(&d, N * sizeof(int), CU_MEM_ATTACH_GLOBAL));
    int *h = (int *)(uintptr_t)d;
    for (int i = 0; i < N; i++)
        h[i] = i;
    int s = 3, n = N;
    void *args[] = {&d, &s, &n};
    CK(cuLaunchKernel(emu_kernel("emu_axpb"), N / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    for (int i = 0; i < N; i++)
        cr_assert_eq(h[i], i * 3 + 1);
    /* Copies and memsets treat it as device memory. */
    CK(cuMemsetD32(d, 7, N));
    cr_assert_eq(h[N - 1], 7);
    int back[4];
    CK(cuMemcpyDtoH(back, d, sizeof back));
    cr_assert_eq(back[3], 7);

    unsigned is_managed = 0;
    CK(cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, d));
    cr_assert_eq(is_managed, 1);
    void *hp = NULL;
    CK(cuPointerGetAttribute(&hp, CU_POINTER_ATTRIBUTE_HOST_POINTER, d + 8));
    cr_assert_eq(hp, (void *)(h + 2));
    CK(cuMemFree(d));
    cr_assert_eq(cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
}

/* Unlike device memory, managed memory is reachable from every context. */
Test(managed, reachable_from_other_contexts)
{
    emu_setup();
    CUdeviceptr d;
    CK(cuMemAllocManaged(&d, N * sizeof(int), CU_MEM_ATTACH_GLOBAL));
    CUcontext other;
    CK(cuCtxCreate(&other, NULL, 0, 0));
    int n = N, mul = 2, add = 0;
    void *args[] = {&d, &n, &mul, &add};
    CK(cuLaunchKernel(emu_kernel("emu_iota"), N / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    cr_assert_eq(((int *)(uintptr_t)d)[100], 200);
    CK(cuCtxDestroy(other));
}

Test(managed, advice_prefetch_and_range_attributes)
{
    emu_setup();
    CUdeviceptr d;
    CK(cuMemAllocManaged(&d, 1 << 20, CU_MEM_ATTACH_HOST));
    CUmemLocation dev0 = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CUmemLocation host = {CU_MEM_LOCATION_TYPE_HOST, 0};
    CK(cuMemAdvise(d, 4096, CU_MEM_ADVISE_SET_READ_MOSTLY, dev0));
    CK(cuMemAdvise(d, 4096, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, dev0));
    CK(cuMemAdvise(d, 4096, CU_MEM_ADVISE_SET_ACCESSED_BY, host));
    CK(cuMemPrefetchAsync(d, 1 << 20, dev0, 0, NULL));
    int v = -9;
    CK(cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, d, 4096));
    cr_assert_eq(v, 1);
    CK(cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, d, 4096));
    cr_assert_eq(v, 0);
    CK(cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, d, 4096));
    cr_assert_eq(v, 0);
    int by[3] = {5, 5, 5};
    CK(cuMemRangeGetAttribute(by, sizeof by, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, d, 4096));
    cr_assert(by[0] == CU_DEVICE_CPU && by[1] == CU_DEVICE_INVALID && by[2] == CU_DEVICE_INVALID);
    CK(cuMemAdvise(d, 4096, CU_MEM_ADVISE_UNSET_READ_MOSTLY, dev0));
    int rm = -1, pl = -1;
    void *data[] = {&rm, &pl};
    size_t sizes[] = {4, 4};
    CUmem_range_attribute attrs[] = {CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY,
                                     CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE};
    CK(cuMemRangeGetAttributes(data, sizes, attrs, 2, d, 4096));
    cr_assert_eq(rm, 0);
    cr_assert_eq(pl, CU_MEM_LOCATION_TYPE_DEVICE);
    CK(cuStreamAttachMemAsync(NULL, d, 0, CU_MEM_ATTACH_GLOBAL));
    /* Not managed memory, or past its end: refused. */
    CUdeviceptr plain;
    CK(cuMemAlloc(&plain, 4096));
    cr_assert_eq(cuMemAdvise(plain, 4096, CU_MEM_ADVISE_SET_READ_MOSTLY, dev0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemPrefetchAsync(d, (2 << 20), dev0, 0, NULL), CUDA_ERROR_INVALID_VALUE);
    CUmemLocation bad = {CU_MEM_LOCATION_TYPE_DEVICE, 7};
    cr_assert_eq(cuMemPrefetchAsync(d, 4096, bad, 0, NULL), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuMemAllocManaged(&plain, 64, 0), CUDA_ERROR_INVALID_VALUE);
    CK(cuMemFree(d));
}
