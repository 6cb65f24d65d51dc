/* Device memory, pinned memory, copies and memsets, including bad pointers for every call. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "emu_test.h"

#define GARBAGE_HOST ((void *)(uintptr_t)0x10)

static void *unmapped_page(void)
{
    void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    return p;
}

Test(mem, alloc_free_info)
{
    emu_setup();
    size_t free0, total, free1;
    CK(cuMemGetInfo(&free0, &total));
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 1 << 20));
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_geq(free0 - free1, (size_t)1 << 20);
    /* Device addresses are not host pointers. */
    cr_assert_geq(p, 0x700000000000ull);
    CUdeviceptr base;
    size_t size;
    CK(cuMemGetAddressRange(&base, &size, p + 100));
    cr_assert_eq(base, p);
    cr_assert_eq(size, (size_t)1 << 20);
    CK(cuMemFree(p));
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_eq(free1, free0);
    cr_assert_eq(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);          /* double free */
    cr_assert_eq(cuMemFree(0x1234), CUDA_ERROR_INVALID_VALUE);     /* garbage */
    cr_assert_eq(cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAlloc(NULL, 16), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAlloc(&p, (size_t)1 << 40), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(cuMemGetAddressRange(&base, &size, 0x1234), CUDA_ERROR_NOT_FOUND);
    CK(cuMemAlloc(&p, 64));
    cr_assert_eq(cuMemFree(p + 8), CUDA_ERROR_INVALID_VALUE);      /* interior pointer */
    size_t pitch;
    CK(cuMemAllocPitch(&p, &pitch, 100, 10, 4));
    cr_assert_geq(pitch, 100);
    cr_assert_eq(cuMemAllocPitch(&p, &pitch, 100, 10, 3), CUDA_ERROR_INVALID_VALUE);
}

Test(mem, roundtrip_and_memsets)
{
    emu_setup();
    enum { N = 4096 };
    static unsigned char src[N], dst[N];
    for (int i = 0; i < N; i++)
        src[i] = (unsigned char)(rand() & 0xff);
    CUdeviceptr a, b;
    CK(cuMemAlloc(&a, N));
    CK(cuMemAlloc(&b, N));
    CK(cuMemcpyHtoD(a, src, N));
    CK(cuMemcpyDtoD(b, a, N));
    CK(cuMemcpyDtoH(dst, b, N));
    cr_assert_eq(memcmp(src, dst, N), 0);
    CK(cuMemsetD8(a, 0xab, N));
    CK(cuMemcpyDtoH(dst, a, N));
    for (int i = 0; i < N; i++)
        cr_assert_eq(dst[i], 0xab);
    CK(cuMemsetD16(a + 2, 0x1234, 10));
    CK(cuMemsetD32(a + 64, 0xdeadbeef, 4));
    uint16_t s16[12];
    uint32_t s32[4];
    CK(cuMemcpyDtoH(s16, a, sizeof s16));
    cr_assert_eq(s16[0], 0xabab);
    for (int i = 1; i <= 10; i++)
        cr_assert_eq(s16[i], 0x1234);
    cr_assert_eq(s16[11], 0xabab);
    CK(cuMemcpyDtoH(s32, a + 64, sizeof s32));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(s32[i], 0xdeadbeefu);
    /* 2D: 3 rows of 5 bytes in a 16-byte pitch. */
    CK(cuMemsetD8(a, 0, N));
    CK(cuMemsetD2D8(a, 16, 7, 5, 3));
    CK(cuMemcpyDtoH(dst, a, 64));
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 16; x++)
            cr_assert_eq(dst[y * 16 + x], (y < 3 && x < 5) ? 7 : 0, "(%d,%d)", x, y);
    /* Unified cuMemcpy decides direction by address. */
    CK(cuMemcpy(a, (CUdeviceptr)(uintptr_t)src, N));
    memset(dst, 0, N);
    CK(cuMemcpy((CUdeviceptr)(uintptr_t)dst, a, N));
    cr_assert_eq(memcmp(src, dst, N), 0);
    /* Async forms on the legacy stream. */
    CK(cuMemsetD32Async(b, 0x01020304, N / 4, NULL));
    CK(cuMemcpyDtoHAsync(dst, b, N, NULL));
    CK(cuCtxSynchronize());
    cr_assert_eq(((uint32_t *)dst)[N / 4 - 1], 0x01020304u);
}

Test(mem, bad_pointers_every_call)
{
    emu_setup();
    CUdeviceptr a;
    CK(cuMemAlloc(&a, 256));
    char host[512];
    void *bad = unmapped_page();
    /* Out of range on the device side. */
    cr_assert_eq(cuMemcpyHtoD(a, host, 257), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyHtoD(a + 200, host, 100), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoH(host, a + 1, 256), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoD(a, a + 128, 200), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyHtoD(0x1234, host, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoH(host, 0, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyHtoDAsync(a, host, 257, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoHAsync(host, a + 255, 2, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoDAsync(a + 255, a, 2, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD8(a, 0, 257), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD16(a, 0, 129), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD32(a, 0, 65), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD32(a + 2, 0, 1), CUDA_ERROR_INVALID_VALUE); /* misaligned */
    cr_assert_eq(cuMemsetD8Async(a + 256, 0, 1, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD16Async(0x99, 0, 1, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD32Async(a, 0, 100, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemsetD2D8(a, 100, 0, 100, 3), CUDA_ERROR_INVALID_VALUE);
    /* NULL, tiny and unmapped host pointers. */
    cr_assert_eq(cuMemcpyHtoD(a, NULL, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyHtoD(a, GARBAGE_HOST, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyHtoD(a, bad, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoH(NULL, a, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoH(bad, a, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoH((void *)"read-only", a, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyHtoDAsync(a, bad, 4, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoHAsync(bad, a, 4, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyDtoHAsync(NULL, a, 4, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpy(a, (CUdeviceptr)(uintptr_t)bad, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpy((CUdeviceptr)(uintptr_t)bad, a, 4), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyAsync(a, (CUdeviceptr)(uintptr_t)bad, 4, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemcpyAsync(a, a + 250, 8, NULL), CUDA_ERROR_INVALID_VALUE);
    /* Host allocation calls. */
    void *h;
    cr_assert_eq(cuMemAllocHost(NULL, 16), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAllocHost(&h, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemHostAlloc(&h, 16, 0x80), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemFreeHost(host), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemFreeHost(NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemHostRegister(bad, 4096, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemHostRegister(NULL, 16, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemHostUnregister(host), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    CUdeviceptr dp;
    cr_assert_eq(cuMemHostGetDevicePointer(&dp, host, 0), CUDA_ERROR_INVALID_VALUE);
    int v;
    cr_assert_eq(cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, 0x1234),
                 CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuPointerGetAttribute(NULL, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a),
                 CUDA_ERROR_INVALID_VALUE);
    /* Nothing above damaged the allocation or the context. */
    CK(cuMemsetD8(a, 3, 256));
    CK(cuMemcpyDtoH(host, a, 256));
    cr_assert_eq(host[255], 3);
    CK(cuCtxSynchronize());
}

Test(mem, pinned_and_registered)
{
    emu_setup();
    void *h;
    CK(cuMemAllocHost(&h, 1024));
    memset(h, 5, 1024);
    CUdeviceptr a;
    CK(cuMemAlloc(&a, 1024));
    CK(cuMemcpyHtoDAsync(a, h, 1024, NULL));
    unsigned mt = 0;
    CK(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)h));
    cr_assert_eq(mt, CU_MEMORYTYPE_HOST);
    CK(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a + 10));
    cr_assert_eq(mt, CU_MEMORYTYPE_DEVICE);
    CUcontext pc;
    CK(cuPointerGetAttribute(&pc, CU_POINTER_ATTRIBUTE_CONTEXT, a));
    CUcontext cur;
    CK(cuCtxGetCurrent(&cur));
    cr_assert_eq(pc, cur);
    int ord = -1;
    CK(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, a));
    cr_assert_eq(ord, 0);
    CUdeviceptr dp;
    CK(cuMemHostGetDevicePointer(&dp, h, 0));
    cr_assert_eq(dp, (CUdeviceptr)(uintptr_t)h);
    /* cuMemcpy with the pinned pointer resolves through the table. */
    char back[1024];
    CK(cuMemcpy((CUdeviceptr)(uintptr_t)back, a, 1024));
    cr_assert_eq(back[1023], 5);
    CK(cuMemFreeHost(h));
    cr_assert_eq(cuMemFreeHost(h), CUDA_ERROR_INVALID_VALUE);
    static char reg[8192];
    CK(cuMemHostRegister(reg, sizeof reg, 0));
    cr_assert_eq(cuMemHostRegister(reg, sizeof reg, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    CUpointer_attribute attrs[2] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_RANGE_SIZE};
    size_t range = 0;
    void *data[2] = {&mt, &range};
    CK(cuPointerGetAttributes(2, attrs, data, (CUdeviceptr)(uintptr_t)reg));
    cr_assert_eq(mt, CU_MEMORYTYPE_HOST);
    cr_assert_eq(range, sizeof reg);
    CK(cuMemHostUnregister(reg));
    CK(cuPointerGetAttributes(2, attrs, data, (CUdeviceptr)(uintptr_t)reg));
    cr_assert_eq(mt, 0);
}

/* Device addresses come from a 1 TiB span per device and are not reused while it lasts; a
 * long-running server that allocates and frees must keep working once the span is used up. */
Test(mem, address_space_is_reused_after_the_span)
{
    emu_setup();
    CUdeviceptr keep, p, first = 0;
    CK(cuMemAlloc(&keep, 4096)); /* a live allocation the reuse must step around */
    const size_t chunk = (size_t)1 << 30;
    int wrapped = 0;
    for (int i = 0; i < 1100 && !wrapped; i++) {
        cr_assert_eq(cuMemAlloc(&p, chunk), CUDA_SUCCESS, "allocation %d", i);
        if (!first)
            first = p;
        else if (p <= first)
            wrapped = 1;
        CK(cuMemFree(p));
    }
    cr_assert(wrapped, "addresses never came round");
    /* A reused range never overlaps a live allocation, and is usable. */
    CK(cuMemAlloc(&p, chunk));
    cr_assert(p + chunk <= keep || p >= keep + 4096);
    unsigned v = 0xabcdef01, back = 0;
    CK(cuMemcpyHtoD(p + chunk - 4, &v, 4));
    CK(cuMemcpyDtoH(&back, p + chunk - 4, 4));
    cr_assert_eq(back, v);
    CK(cuMemFree(p));
    CK(cuMemFree(keep));
}

Test(mem, pointer_attributes_and_garbage)
{
    emu_setup();
    CUdeviceptr d;
    CK(cuMemAlloc(&d, 256));
    unsigned type = 0;
    CK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 8));
    cr_assert_eq(type, CU_MEMORYTYPE_DEVICE);
    cr_assert_eq(cuPointerGetAttribute(GARBAGE_HOST, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d),
                 CUDA_ERROR_INVALID_VALUE);
    CUpointer_attribute attrs[2] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                    CU_POINTER_ATTRIBUTE_RANGE_SIZE};
    size_t range = 0;
    type = 0;
    void *data[2] = {&type, &range};
    CK(cuPointerGetAttributes(2, attrs, data, d));
    cr_assert_eq(type, CU_MEMORYTYPE_DEVICE);
    cr_assert_eq(range, 256);
    int on_stack;
    CK(cuPointerGetAttributes(2, attrs, data, (CUdeviceptr)(uintptr_t)&on_stack));
    cr_assert_eq(type, 0); /* unknown memory: an unregistered host pointer */
    cr_assert_eq(range, 0);
    cr_assert_eq(cuPointerGetAttributes(2, (CUpointer_attribute *)GARBAGE_HOST, data, d),
                 CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuPointerGetAttributes(2, attrs, (void **)GARBAGE_HOST, d),
                 CUDA_ERROR_INVALID_VALUE);
    void *bad_data[2] = {&type, GARBAGE_HOST};
    cr_assert_eq(cuPointerGetAttributes(2, attrs, bad_data, d), CUDA_ERROR_INVALID_VALUE);
    /* cuCtxCreate's parameter block is read the same careful way. */
    CUcontext c;
    cr_assert_eq(cuCtxCreate(&c, (CUctxCreateParams *)GARBAGE_HOST, 0, 0),
                 CUDA_ERROR_INVALID_VALUE);
    CK(cuMemFree(d));
}
