/* Device memory, copies and memsets, page-locked host memory (shared with gpu-server over shared
 * memory, see pinned.h), pointer attributes. */
#include <cuda.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "pinned.h"
#include "stub.h"

/* ---- memory ------------------------------------------------------------------------------------ */

CUresult CUDAAPI cuMemAlloc(CUdeviceptr *dptr, size_t bytes)
{
    uint64_t o[1];
    if (!dptr || bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(MEM_ALLOC, o, 1, bytes);
    if (rc == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)o[0];
    return rc;
}

CUresult CUDAAPI cuMemAllocPitch(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned int esz)
{
    uint64_t o[2];
    if (!dptr || !pitch || !width || !height || (esz != 4 && esz != 8 && esz != 16))
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(MEM_ALLOC_PITCH, o, 2, width, height, esz);
    if (rc == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)o[0];
        *pitch = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuMemFree(CUdeviceptr dptr)
{
    return FWD(MEM_FREE, NULL, 0, dptr);
}

CUresult CUDAAPI cuMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    uint64_t o[2];
    CUresult rc = FWD(MEM_GET_INFO, o, 2);
    if (rc == CUDA_SUCCESS) {
        if (free_bytes)
            *free_bytes = (size_t)o[0];
        if (total_bytes)
            *total_bytes = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuMemGetAddressRange(CUdeviceptr *base, size_t *size, CUdeviceptr dptr)
{
    uint64_t o[2];
    CUresult rc = FWD(MEM_GET_ADDRESS_RANGE, o, 2, dptr);
    if (rc == CUDA_SUCCESS) {
        if (base)
            *base = (CUdeviceptr)o[0];
        if (size)
            *size = (size_t)o[1];
    }
    return rc;
}

/* Page-locked host memory is shared with gpu-server over shared memory (pinned.h) and plain host
 * memory otherwise; either way the stub remembers it (allocated or registered) so that pointer
 * attributes can say "host" and cuMemFreeHost can refuse a pointer it never gave out. host_lock
 * protects the list. */
struct host_range {
    struct host_range *next;
    uintptr_t base;
    size_t size;
    int owned; /* cuMemAllocHost/cuMemHostAlloc (freed by cuMemFreeHost) vs registered */
};
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static struct host_range *host_ranges;

/* In a forked child: the ranges are still the child's memory, the lock may have been held. */
void vg_stub_forget_host_lock(void)
{
    pthread_mutex_init(&host_lock, NULL);
}

static int host_add(void *p, size_t size, int owned)
{
    struct host_range *r = malloc(sizeof *r);
    if (!r)
        return -1;
    r->base = (uintptr_t)p;
    r->size = size;
    r->owned = owned;
    pthread_mutex_lock(&host_lock);
    r->next = host_ranges;
    host_ranges = r;
    pthread_mutex_unlock(&host_lock);
    return 0;
}

/* Removes the range starting exactly at p with the given ownership; 0 or -1 if none. */
static int host_remove(void *p, int owned)
{
    int found = -1;
    pthread_mutex_lock(&host_lock);
    for (struct host_range **pp = &host_ranges; *pp; pp = &(*pp)->next) {
        if ((*pp)->base == (uintptr_t)p && (*pp)->owned == owned) {
            struct host_range *r = *pp;
            *pp = r->next;
            free(r);
            found = 0;
            break;
        }
    }
    pthread_mutex_unlock(&host_lock);
    return found;
}

/* The range holding p: 1 with its base and size, else 0. */
static int host_find(uint64_t p, uint64_t *base, uint64_t *size)
{
    int found = 0;
    pthread_mutex_lock(&host_lock);
    for (struct host_range *r = host_ranges; r; r = r->next) {
        if (p >= r->base && p - r->base < r->size) {
            *base = r->base;
            *size = r->size;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&host_lock);
    return found;
}

CUresult CUDAAPI cuMemAllocHost(void **pp, size_t bytes)
{
    if (!pp || bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vg_conn_initialized())
        return CUDA_ERROR_NOT_INITIALIZED;
    void *p = NULL;
    /* Shared with gpu-server when the transport allows (pinned.h), else plain memory. */
    CUresult rc = vg_pinned_alloc(bytes, &p);
    if (rc == CUDA_ERROR_NOT_SUPPORTED && posix_memalign(&p, 4096, bytes) == 0)
        rc = CUDA_SUCCESS;
    else if (rc == CUDA_ERROR_NOT_SUPPORTED)
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc != CUDA_SUCCESS)
        return rc;
    if (host_add(p, bytes, 1) < 0) {
        if (!vg_pinned_free(p))
            free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
    (void)flags;
    return cuMemAllocHost(pp, bytes);
}

CUresult CUDAAPI cuMemFreeHost(void *p)
{
    if (host_remove(p, 1) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vg_pinned_free(p))
        free(p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytes, unsigned int flags)
{
    (void)flags;
    if (!p || !bytes)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t base, size;
    if (host_find((uint64_t)(uintptr_t)p, &base, &size))
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    return host_add(p, bytes, 0) < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostUnregister(void *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    return host_remove(p, 0) < 0 ? CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED : CUDA_SUCCESS;
}

uint64_t vg_stub_stream(CUstream s, int per_thread)
{
    if (!s && per_thread)
        return (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD;
    return H(s);
}

static CUresult memset_any(CUdeviceptr dst, unsigned value, unsigned esz, size_t n, CUstream s, int per_thread)
{
    return FWD(MEMSET, NULL, 0, dst, value, esz, n, vg_stub_stream(s, per_thread));
}

/* Sends host bytes in frames the server accepts. */
static CUresult htod(CUdeviceptr dst, const void *src, size_t n, CUstream s, int per_thread, int async)
{
    if (n && !src)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t chunk = vg_conn_max_bulk();
    uint64_t st = vg_stub_stream(s, per_thread);
    size_t done = 0;
    do {
        size_t part = n - done < chunk ? n - done : (size_t)chunk;
        struct vg_rpc r = {.call = async ? VG_CALL_MEMCPY_HTOD_ASYNC : VG_CALL_MEMCPY_HTOD, .ctx = vg_stub_ctx(),
                           .args = ARGV(dst + done, st), .nargs = 2,
                           .bulk = (const char *)src + done, .bulk_len = part};
        CUresult rc = vg_conn_call(&r);
        if (rc != CUDA_SUCCESS)
            return rc;
        done += part;
    } while (done < n);
    return CUDA_SUCCESS;
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    if (n && !dst)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t chunk = vg_conn_max_bulk();
    uint64_t st = vg_stub_stream(s, per_thread);
    size_t done = 0;
    do {
        size_t part = n - done < chunk ? n - done : (size_t)chunk;
        struct vg_rpc r = {.call = VG_CALL_MEMCPY_DTOH, .ctx = vg_stub_ctx(),
                           .args = ARGV(src + done, part, st, (uint64_t)async), .nargs = 4,
                           .rbulk = (char *)dst + done, .rbulk_len = part};
        CUresult rc = vg_conn_call(&r);
        if (rc != CUDA_SUCCESS)
            return rc;
        done += part;
    } while (done < n);
    return CUDA_SUCCESS;
}

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    return vg_stub_rpc(async ? VG_CALL_MEMCPY_DTOD_ASYNC : VG_CALL_MEMCPY_DTOD,
               ARGV(dst, src, n, vg_stub_stream(s, per_thread)), 4, NULL, 0);
}

/* Each copy/memset comes in the default-stream form (_v2), its per-thread-default-stream form
 * (_v2_ptds / _ptsz) and async forms; the per-thread forms map stream 0 to CU_STREAM_PER_THREAD. */
#define VG_MEMSET_FNS(bits, type)                                                                     \
    CUresult CUDAAPI cuMemsetD##bits##_v2(CUdeviceptr d, type v, size_t n)                           \
    {                                                                                                 \
        CUresult rc = memset_any(d, v, bits / 8, n, 0, 0);                                            \
        return rc == CUDA_SUCCESS ? FWD(STREAM_SYNCHRONIZE, NULL, 0, 0) : rc;                         \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD##bits##_v2_ptds(CUdeviceptr d, type v, size_t n)                      \
    {                                                                                                 \
        CUresult rc = memset_any(d, v, bits / 8, n, 0, 1);                                            \
        return rc == CUDA_SUCCESS ? FWD(STREAM_SYNCHRONIZE, NULL, 0, (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD) : rc; \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD##bits##Async(CUdeviceptr d, type v, size_t n, CUstream s)             \
    {                                                                                                 \
        return memset_any(d, v, bits / 8, n, s, 0);                                                   \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD##bits##Async_ptsz(CUdeviceptr d, type v, size_t n, CUstream s)        \
    {                                                                                                 \
        return memset_any(d, v, bits / 8, n, s, 1);                                                   \
    }
#undef cuMemsetD8Async
#undef cuMemsetD16Async
#undef cuMemsetD32Async
CUresult CUDAAPI cuMemsetD8_v2(CUdeviceptr, unsigned char, size_t);
CUresult CUDAAPI cuMemsetD8_v2_ptds(CUdeviceptr, unsigned char, size_t);
CUresult CUDAAPI cuMemsetD16_v2(CUdeviceptr, unsigned short, size_t);
CUresult CUDAAPI cuMemsetD16_v2_ptds(CUdeviceptr, unsigned short, size_t);
CUresult CUDAAPI cuMemsetD32_v2(CUdeviceptr, unsigned int, size_t);
CUresult CUDAAPI cuMemsetD32_v2_ptds(CUdeviceptr, unsigned int, size_t);
CUresult CUDAAPI cuMemsetD8Async(CUdeviceptr, unsigned char, size_t, CUstream);
CUresult CUDAAPI cuMemsetD8Async_ptsz(CUdeviceptr, unsigned char, size_t, CUstream);
CUresult CUDAAPI cuMemsetD16Async(CUdeviceptr, unsigned short, size_t, CUstream);
CUresult CUDAAPI cuMemsetD16Async_ptsz(CUdeviceptr, unsigned short, size_t, CUstream);
CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr, unsigned int, size_t, CUstream);
CUresult CUDAAPI cuMemsetD32Async_ptsz(CUdeviceptr, unsigned int, size_t, CUstream);
VG_MEMSET_FNS(8, unsigned char)
VG_MEMSET_FNS(16, unsigned short)
VG_MEMSET_FNS(32, unsigned int)

static CUresult memset_2d(CUdeviceptr dst, size_t pitch, unsigned value, unsigned esz, size_t width,
                          size_t height, CUstream s, int per_thread, int sync)
{
    CUresult rc = FWD(MEMSET_2D, NULL, 0, dst, pitch, value, esz, width, height, vg_stub_stream(s, per_thread));
    if (rc == CUDA_SUCCESS && sync)
        rc = FWD(STREAM_SYNCHRONIZE, NULL, 0, vg_stub_stream(s, per_thread));
    return rc;
}

#define VG_MEMSET2D_FNS(bits, type)                                                                   \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2(CUdeviceptr d, size_t p, type v, size_t w, size_t h);     \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2_ptds(CUdeviceptr d, size_t p, type v, size_t w, size_t h); \
    CUresult CUDAAPI cuMemsetD2D##bits##Async(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s); \
    CUresult CUDAAPI cuMemsetD2D##bits##Async_ptsz(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s); \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2(CUdeviceptr d, size_t p, type v, size_t w, size_t h)      \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, 0, 0, 1);                                           \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2_ptds(CUdeviceptr d, size_t p, type v, size_t w, size_t h) \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, 0, 1, 1);                                           \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD2D##bits##Async(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s) \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, s, 0, 0);                                           \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD2D##bits##Async_ptsz(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s) \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, s, 1, 0);                                           \
    }
#undef cuMemsetD2D8Async
#undef cuMemsetD2D16Async
#undef cuMemsetD2D32Async
VG_MEMSET2D_FNS(8, unsigned char)
VG_MEMSET2D_FNS(16, unsigned short)
VG_MEMSET2D_FNS(32, unsigned int)

#undef cuMemcpyHtoD
#undef cuMemcpyDtoH
#undef cuMemcpyDtoD
#undef cuMemcpyHtoDAsync
#undef cuMemcpyDtoHAsync
#undef cuMemcpyDtoDAsync
#define VG_COPY_FNS(dir, dt, st, impl, dexpr, sexpr)                                                  \
    CUresult CUDAAPI cuMemcpy##dir##_v2(dt dst, st src, size_t n);                                    \
    CUresult CUDAAPI cuMemcpy##dir##_v2_ptds(dt dst, st src, size_t n);                               \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2(dt dst, st src, size_t n, CUstream s);                   \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2_ptsz(dt dst, st src, size_t n, CUstream s);              \
    CUresult CUDAAPI cuMemcpy##dir##_v2(dt dst, st src, size_t n)                                     \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, 0, 0, 0);                                                        \
    }                                                                                                 \
    CUresult CUDAAPI cuMemcpy##dir##_v2_ptds(dt dst, st src, size_t n)                                \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, 0, 1, 0);                                                        \
    }                                                                                                 \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2(dt dst, st src, size_t n, CUstream s)                    \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, s, 0, 1);                                                        \
    }                                                                                                 \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2_ptsz(dt dst, st src, size_t n, CUstream s)               \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, s, 1, 1);                                                        \
    }
VG_COPY_FNS(HtoD, CUdeviceptr, const void *, htod, dst, src)
VG_COPY_FNS(DtoH, void *, CUdeviceptr, dtoh, dst, src)
VG_COPY_FNS(DtoD, CUdeviceptr, CUdeviceptr, dtod, dst, src)

/* Unified addressing: a pointer the server knows as this session's device memory is device
 * memory, anything else is the caller's host memory. */
static int is_device_ptr(CUdeviceptr p)
{
    uint64_t o[1];
    return FWD(POINTER_GET_ATTRIBUTE, o, 1, (uint64_t)CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) == CUDA_SUCCESS &&
           o[0] == CU_MEMORYTYPE_DEVICE;
}

static CUresult copy_any(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    if (n == 0)
        return CUDA_SUCCESS;
    int dd = is_device_ptr(dst), sd = is_device_ptr(src);
    if (dd && sd)
        return dtod(dst, src, n, s, per_thread, async);
    if (dd)
        return htod(dst, (const void *)(uintptr_t)src, n, s, per_thread, async);
    if (sd)
        return dtoh((void *)(uintptr_t)dst, src, n, s, per_thread, async);
    /* Host to host: ordered after the stream's earlier work, as the driver would. */
    CUresult rc = FWD(STREAM_SYNCHRONIZE, NULL, 0, vg_stub_stream(s, per_thread));
    if (rc == CUDA_SUCCESS)
        memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return rc;
}

#undef cuMemcpy
#undef cuMemcpyAsync
CUresult CUDAAPI cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult CUDAAPI cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
CUresult CUDAAPI cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
CUresult CUDAAPI cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return copy_any(dst, src, n, 0, 0, 0);
}
CUresult CUDAAPI cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return copy_any(dst, src, n, 0, 1, 0);
}
CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    return copy_any(dst, src, n, s, 0, 1);
}
CUresult CUDAAPI cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    return copy_any(dst, src, n, s, 1, 1);
}

/* 2-D copies, made of the 1-D calls: a device-to-host copy reads the whole span of rows once and
 * picks the rows out here; other directions go row by row (pipelined), unless both sides are
 * contiguous. Arrays are not supported. */
struct side {
    int device;
    uint64_t addr; /* the first byte: a device address or a host pointer */
    size_t pitch;
};

static CUresult copy2d_side(CUmemorytype type, const void *host, CUdeviceptr dev, size_t x, size_t y,
                            size_t pitch, struct side *out)
{
    switch (type) {
    case CU_MEMORYTYPE_HOST:
        out->device = 0;
        out->addr = (uint64_t)(uintptr_t)host;
        break;
    case CU_MEMORYTYPE_DEVICE:
        out->device = 1;
        out->addr = dev;
        break;
    case CU_MEMORYTYPE_UNIFIED:
        out->device = is_device_ptr(dev);
        out->addr = dev;
        break;
    default:
        return CUDA_ERROR_NOT_SUPPORTED; /* arrays */
    }
    if (!out->addr)
        return CUDA_ERROR_INVALID_VALUE;
    out->addr += y * pitch + x;
    out->pitch = pitch;
    return CUDA_SUCCESS;
}

static CUresult copy2d(const CUDA_MEMCPY2D *c, CUstream s, int per_thread, int async)
{
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    struct side src, dst;
    CUresult rc = copy2d_side(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcXInBytes, c->srcY, c->srcPitch, &src);
    if (rc == CUDA_SUCCESS)
        rc = copy2d_side(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstXInBytes, c->dstY, c->dstPitch, &dst);
    if (rc != CUDA_SUCCESS)
        return rc;
    size_t w = c->WidthInBytes, h = c->Height;
    if (w == 0 || h == 0)
        return CUDA_SUCCESS;
    if ((h > 1 && (src.pitch < w || dst.pitch < w)) || h > SIZE_MAX / (src.pitch + dst.pitch + 1))
        return CUDA_ERROR_INVALID_VALUE;
    if ((src.pitch == w && dst.pitch == w) || h == 1)
        return copy_any(dst.addr, src.addr, w * h, s, per_thread, async);
    if (src.device && !dst.device) {
        size_t span = (h - 1) * src.pitch + w;
        unsigned char *tmp = malloc(span);
        if (!tmp)
            return CUDA_ERROR_OUT_OF_MEMORY;
        rc = dtoh(tmp, src.addr, span, s, per_thread, async);
        for (size_t r = 0; rc == CUDA_SUCCESS && r < h; r++)
            memcpy((unsigned char *)(uintptr_t)dst.addr + r * dst.pitch, tmp + r * src.pitch, w);
        free(tmp);
        return rc;
    }
    if (!src.device && !dst.device) {
        rc = FWD(STREAM_SYNCHRONIZE, NULL, 0, vg_stub_stream(s, per_thread));
        for (size_t r = 0; rc == CUDA_SUCCESS && r < h; r++)
            memmove((void *)(uintptr_t)(dst.addr + r * dst.pitch), (const void *)(uintptr_t)(src.addr + r * src.pitch), w);
        return rc;
    }
    for (size_t r = 0; r < h; r++) {
        if (src.device)
            rc = dtod(dst.addr + r * dst.pitch, src.addr + r * src.pitch, w, s, per_thread, 1);
        else
            rc = htod(dst.addr + r * dst.pitch, (const void *)(uintptr_t)(src.addr + r * src.pitch), w, s,
                      per_thread, 1);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    /* The rows went pipelined: a blocking copy waits for them and reports their errors. */
    return async ? CUDA_SUCCESS : FWD(STREAM_SYNCHRONIZE, NULL, 0, vg_stub_stream(s, per_thread));
}

#undef cuMemcpy2D
#undef cuMemcpy2DUnaligned
#undef cuMemcpy2DAsync
CUresult CUDAAPI cuMemcpy2D_v2(const CUDA_MEMCPY2D *c);
CUresult CUDAAPI cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D *c);
CUresult CUDAAPI cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *c);
CUresult CUDAAPI cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D *c);
CUresult CUDAAPI cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *c, CUstream s);
CUresult CUDAAPI cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *c, CUstream s);
CUresult CUDAAPI cuMemcpy2D_v2(const CUDA_MEMCPY2D *c)
{
    return copy2d(c, 0, 0, 0);
}
CUresult CUDAAPI cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D *c)
{
    return copy2d(c, 0, 1, 0);
}
CUresult CUDAAPI cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *c)
{
    return copy2d(c, 0, 0, 0);
}
CUresult CUDAAPI cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D *c)
{
    return copy2d(c, 0, 1, 0);
}
CUresult CUDAAPI cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *c, CUstream s)
{
    return copy2d(c, s, 0, 1);
}
CUresult CUDAAPI cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *c, CUstream s)
{
    return copy2d(c, s, 1, 1);
}

/* ---- pointer attributes -------------------------------------------------------------------------- */

/* The size of the value each supported attribute writes; 0 for attributes not forwarded. */
static size_t pointer_attr_width(CUpointer_attribute attr)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        return 8;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        return 4;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        return 1; /* a bool */
    default:
        return 0;
    }
}

static void store_width(void *data, uint64_t v, size_t width)
{
    if (width == 8)
        memcpy(data, &v, 8);
    else if (width == 4) {
        uint32_t w = (uint32_t)v;
        memcpy(data, &w, 4);
    } else {
        *(unsigned char *)data = v != 0;
    }
}

/* Attributes of page-locked host memory, answered here: 1 when ptr is such memory. */
static int host_attr(CUpointer_attribute attr, CUdeviceptr ptr, uint64_t *v)
{
    uint64_t base, size;
    if (!host_find(ptr, &base, &size))
        return 0;
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *v = CU_MEMORYTYPE_HOST;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *v = base;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *v = size;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: /* not mapped into the device */
    default:
        *v = 0;
        break;
    }
    return 1;
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
    uint64_t o[1];
    size_t width = pointer_attr_width(attr);
    if (!width)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t v;
    if (host_attr(attr, ptr, &v)) {
        store_width(data, v, width);
        return CUDA_SUCCESS;
    }
    CUresult rc = FWD(POINTER_GET_ATTRIBUTE, o, 1, (uint64_t)attr, ptr);
    if (rc == CUDA_SUCCESS)
        store_width(data, o[0], width);
    return rc;
}

/* Like the driver: a pointer that is not device memory of this client gets zeros (memory type 0,
 * "unregistered host memory") and success. */
CUresult CUDAAPI cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data, CUdeviceptr ptr)
{
    if (!attrs || !data || n == 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < n; i++)
        if (!pointer_attr_width(attrs[i]) || !data[i])
            return CUDA_ERROR_INVALID_VALUE;
    uint64_t hb, hs;
    int host = host_find(ptr, &hb, &hs);
    int device = !host && is_device_ptr(ptr);
    for (unsigned i = 0; i < n; i++) {
        size_t width = pointer_attr_width(attrs[i]);
        uint64_t v = 0;
        if (host)
            host_attr(attrs[i], ptr, &v);
        if (device) {
            CUresult rc = FWD(POINTER_GET_ATTRIBUTE, &v, 1, (uint64_t)attrs[i], ptr);
            if (rc != CUDA_SUCCESS)
                return rc;
        }
        store_width(data[i], v, width);
    }
    return CUDA_SUCCESS;
}
