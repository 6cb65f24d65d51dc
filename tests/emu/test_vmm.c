/* Virtual memory management: reserve, create, map, set access, unmap, release. */
#include <string.h>

#include "emu_test.h"

static CUmemAllocationProp prop(int dev)
{
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = dev;
    return p;
}

Test(vmm, map_access_use_unmap)
{
    emu_setup();
    int supported = 0;
    CK(cuDeviceGetAttribute(&supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 0));
    cr_assert_eq(supported, 1);
    CUmemAllocationProp p = prop(0);
    size_t gran = 0;
    CK(cuMemGetAllocationGranularity(&gran, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    cr_assert_gt(gran, 0);
    size_t size = 2 * gran;
    /* The module first: its variables take device memory too. */
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUmodule m;
    CK(cuModuleLoadData(&m, ptx));
    free(ptx);
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "emu_iota"));
    size_t free0, free1, total;
    CK(cuMemGetInfo(&free0, &total));
    CUmemGenericAllocationHandle h1, h2;
    CK(cuMemCreate(&h1, gran, &p, 0));
    CK(cuMemCreate(&h2, gran, &p, 0));
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_eq(free0 - free1, 2 * gran, "physical memory counts against the device");
    CUdeviceptr va;
    CK(cuMemAddressReserve(&va, size, 0, 0, 0));
    cr_assert_eq(va % gran, 0);
    /* Two handles back to back make one contiguous range. */
    CK(cuMemMap(va, gran, 0, h1, 0));
    CK(cuMemMap(va + gran, gran, 0, h2, 0));
    cr_assert_eq(cuMemMap(va, gran, 0, h2, 0), CUDA_ERROR_INVALID_VALUE); /* already mapped */
    /* No access until it is granted. */
    int x = 5;
    cr_assert_eq(cuMemcpyHtoD(va, &x, sizeof x), CUDA_ERROR_INVALID_VALUE);
    CUmemAccessDesc rw = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CK(cuMemSetAccess(va, size, &rw, 1));
    unsigned long long flags = 0;
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CK(cuMemGetAccess(&flags, &loc, va + gran + 100));
    cr_assert_eq(flags, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);

    /* A kernel writes across the boundary between the two handles: adjacent mappings are one
     * contiguous range, as on a GPU. */
    int n = 256, mul = 1, add = 0;
    CUdeviceptr start = va + gran - 128 * sizeof(int);
    void *args[] = {&start, &n, &mul, &add};
    CK(cuLaunchKernel(f, 1, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    int back[256];
    CK(cuMemcpyDtoH(back, start, sizeof back)); /* a copy across the boundary, too */
    for (int i = 0; i < 256; i++)
        cr_assert_eq(back[i], i);
    /* The same handle mapped a second time shows the same bytes. */
    CUdeviceptr alias;
    CK(cuMemAddressReserve(&alias, gran, 0, 0, 0));
    CK(cuMemMap(alias, gran, 0, h2, 0));
    CK(cuMemSetAccess(alias, gran, &rw, 1));
    int first;
    CK(cuMemcpyDtoH(&first, alias, sizeof first));
    cr_assert_eq(first, 128);
    CK(cuMemUnmap(alias, gran));
    CK(cuMemAddressFree(alias, gran));

    /* The handle can be found again from the address. */
    CUmemGenericAllocationHandle again;
    CK(cuMemRetainAllocationHandle(&again, (void *)(uintptr_t)(va + gran + 4)));
    cr_assert_eq(again, h2);
    CK(cuMemRelease(again));
    CUmemAllocationProp got;
    CK(cuMemGetAllocationPropertiesFromHandle(&got, h1));
    cr_assert_eq(got.location.id, 0);

    /* Releasing the handles keeps the memory while mapped. */
    CK(cuMemRelease(h1));
    CK(cuMemRelease(h2));
    CK(cuMemcpyDtoH(back, start, sizeof back));
    cr_assert_eq(back[255], 255);
    cr_assert_eq(cuMemAddressFree(va, size), CUDA_ERROR_INVALID_VALUE); /* still mapped */
    cr_assert_eq(cuMemUnmap(va, gran / 2), CUDA_ERROR_INVALID_VALUE);   /* part of a mapping */
    CK(cuMemUnmap(va, size));
    cr_assert_eq(cuMemcpyDtoH(back, va + gran, 4), CUDA_ERROR_INVALID_VALUE);
    CK(cuMemAddressFree(va, size));
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_eq(free1, free0, "the physical memory went back");
}

Test(vmm, bad_arguments)
{
    emu_setup();
    CUmemAllocationProp p = prop(0);
    size_t gran;
    CK(cuMemGetAllocationGranularity(&gran, &p, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
    CUmemGenericAllocationHandle h;
    cr_assert_eq(cuMemCreate(&h, gran + 1, &p, 0), CUDA_ERROR_INVALID_VALUE);
    CUmemAllocationProp bad = prop(9);
    cr_assert_eq(cuMemCreate(&h, gran, &bad, 0), CUDA_ERROR_INVALID_DEVICE);
    CUdeviceptr va;
    cr_assert_eq(cuMemAddressReserve(&va, gran + 1, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    CK(cuMemAddressReserve(&va, gran, 0, 0, 0));
    CK(cuMemCreate(&h, gran, &p, 0));
    cr_assert_eq(cuMemMap(va, 2 * gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);   /* past it */
    cr_assert_eq(cuMemMap(va + gran, gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE); /* not reserved */
    cr_assert_eq(cuMemMap(va, gran, 0, (CUmemGenericAllocationHandle)12345, 0), CUDA_ERROR_INVALID_VALUE);
    CK(cuMemMap(va, gran, 0, h, 0));
    CUmemAccessDesc ro = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READ};
    cr_assert_eq(cuMemSetAccess(va, gran, &ro, 1), CUDA_ERROR_NOT_SUPPORTED);
    CUmemAccessDesc rw = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    cr_assert_eq(cuMemSetAccess(va, 2 * gran, &rw, 1), CUDA_ERROR_INVALID_VALUE); /* not all mapped */
    CK(cuMemUnmap(va, gran));
    CK(cuMemRelease(h));
    cr_assert_eq(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
    CK(cuMemAddressFree(va, gran));
    cr_assert_eq(cuMemAddressFree(va, gran), CUDA_ERROR_INVALID_VALUE);
    int fd;
    cr_assert_eq(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
                 CUDA_ERROR_NOT_SUPPORTED);
}
