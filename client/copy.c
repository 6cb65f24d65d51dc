/* Copies that carry host memory: host-to-device and device-to-host (chunked to what one frame
 * may carry, bulk written straight from the caller's memory), unified-address copies, 2-D copies.
 * Device-to-device copies and memsets are generated (protocol/cuda.calls). */
#include <cuda.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "conn.h"
#include "stub.h"

/* Host bytes to or from the device in pieces one frame can carry: host-to-device args dst,
 * stream with the bytes as bulk; device-to-host args src, size, stream with the bytes as reply
 * bulk. The bulk goes straight from and to the caller's memory. */
static CUresult xfer(int to_device, CUdeviceptr dev, void *host, size_t n, CUstream s, int per_thread, int async)
{
    if (n && !host)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t chunk = vg_conn_max_bulk();
    uint64_t st = vg_stub_stream(s, per_thread);
    size_t done = 0;
    do {
        size_t part = n - done < chunk ? n - done : (size_t)chunk;
        char *h = (char *)host + done;
        uint64_t args[3] = {dev + done, st, st};
        struct vg_rpc r = {.ctx = vg_stub_ctx(), .args = args};
        if (to_device) {
            r.call = async ? VG_CALL_cuMemcpyHtoDAsync_v2 : VG_CALL_cuMemcpyHtoD_v2;
            r.nargs = 2;
            r.bulk = h;
            r.bulk_len = part;
        } else {
            r.call = async ? VG_CALL_cuMemcpyDtoHAsync_v2 : VG_CALL_cuMemcpyDtoH_v2;
            args[1] = part;
            r.nargs = 3;
            r.rbulk = h;
            r.rbulk_len = part;
        }
        CUresult rc = vg_conn_call(&r);
        if (rc != CUDA_SUCCESS)
            return rc;
        done += part;
    } while (done < n);
    return CUDA_SUCCESS;
}

static CUresult htod(CUdeviceptr dst, const void *src, size_t n, CUstream s, int per_thread, int async)
{
    return xfer(1, dst, (void *)src, n, s, per_thread, async);
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    return xfer(0, src, dst, n, s, per_thread, async);
}

/* The per-thread-stream twins of generated calls (cuda.h declares them only for programs built
 * with per-thread default streams). */
CUresult CUDAAPI cuMemcpyDtoD_v2_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult CUDAAPI cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream s);

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    if (async)
        return per_thread ? cuMemcpyDtoDAsync_v2_ptsz(dst, src, n, s) : cuMemcpyDtoDAsync_v2(dst, src, n, s);
    return per_thread ? cuMemcpyDtoD_v2_ptds(dst, src, n) : cuMemcpyDtoD_v2(dst, src, n);
}

CUresult CUDAAPI cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void *src, size_t n);
CUresult CUDAAPI cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void *src, size_t n, CUstream s);
CUresult CUDAAPI cuMemcpyDtoH_v2_ptds(void *dst, CUdeviceptr src, size_t n);
CUresult CUDAAPI cuMemcpyDtoHAsync_v2_ptsz(void *dst, CUdeviceptr src, size_t n, CUstream s);

CUresult CUDAAPI cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
    return htod(dst, src, n, 0, 0, 0);
}

CUresult CUDAAPI cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void *src, size_t n)
{
    return htod(dst, src, n, 0, 1, 0);
}

CUresult CUDAAPI cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
    return htod(dst, src, n, s, 0, 1);
}

CUresult CUDAAPI cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
    return htod(dst, src, n, s, 1, 1);
}

CUresult CUDAAPI cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
    return dtoh(dst, src, n, 0, 0, 0);
}

CUresult CUDAAPI cuMemcpyDtoH_v2_ptds(void *dst, CUdeviceptr src, size_t n)
{
    return dtoh(dst, src, n, 0, 1, 0);
}

CUresult CUDAAPI cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s)
{
    return dtoh(dst, src, n, s, 0, 1);
}

CUresult CUDAAPI cuMemcpyDtoHAsync_v2_ptsz(void *dst, CUdeviceptr src, size_t n, CUstream s)
{
    return dtoh(dst, src, n, s, 1, 1);
}

/* Unified addressing: a pointer the server knows as this session's device memory is device
 * memory, anything else is the caller's host memory. */
int vg_stub_is_device_ptr(CUdeviceptr p)
{
    uint64_t o[1];
    return FWD(cuPointerGetAttribute, o, 1, (uint64_t)CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) == CUDA_SUCCESS &&
           o[0] == CU_MEMORYTYPE_DEVICE;
}

/* Orders host work after a stream's earlier work, as the driver would for a host copy. */
static CUresult stream_sync(CUstream s, int per_thread)
{
    return per_thread ? cuStreamSynchronize_ptsz(s) : cuStreamSynchronize(s);
}

static CUresult copy_any(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    if (n == 0)
        return CUDA_SUCCESS;
    int dd = vg_stub_is_device_ptr(dst), sd = vg_stub_is_device_ptr(src);
    if (dd && sd)
        return dtod(dst, src, n, s, per_thread, async);
    if (dd)
        return htod(dst, (const void *)(uintptr_t)src, n, s, per_thread, async);
    if (sd)
        return dtoh((void *)(uintptr_t)dst, src, n, s, per_thread, async);
    CUresult rc = stream_sync(s, per_thread);
    if (rc == CUDA_SUCCESS)
        memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return rc;
}

CUresult CUDAAPI cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n);
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
        out->device = vg_stub_is_device_ptr(dev);
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
        rc = stream_sync(s, per_thread);
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
    return async ? CUDA_SUCCESS : stream_sync(s, per_thread);
}

CUresult CUDAAPI cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D *c);
CUresult CUDAAPI cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D *c);
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
