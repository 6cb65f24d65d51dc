/* Copies that carry host memory: host-to-device and device-to-host (chunked to what one frame
 * may carry, bulk written straight from the caller's memory), unified-address copies, 2-D copies.
 * Device-to-device copies and memsets are generated (protocol/cuda.calls). */
#include <cuda.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "conn.h"
#include "stub.h"
#include "vg_gen.h"

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

/* ---- 3-D copies (and 2-D ones, which are 3-D copies one deep) -----------------------------------
 * wire: args stream; bulk: the struct (host sides' offsets folded into their pointers), then
 * the source span when the source is host memory; reply bulk: the destination span when the
 * destination is host memory. A span runs from the first byte the copy touches to the last, with
 * the side's pitch and height; rows of a destination span are copied out one by one, so that the
 * bytes between them stay the caller's. */

/* Resolves a unified side to device or host memory and folds a host side's offsets. */
static void side_resolve(CUmemorytype *type, const void **host, CUdeviceptr dev, size_t *x, size_t *y, size_t *z,
                         size_t pitch, size_t height)
{
    if (*type == CU_MEMORYTYPE_UNIFIED) {
        if (vg_stub_is_device_ptr(dev)) {
            *type = CU_MEMORYTYPE_DEVICE;
            return;
        }
        *type = CU_MEMORYTYPE_HOST;
        *host = (const void *)(uintptr_t)dev;
    }
    if (*type == CU_MEMORYTYPE_HOST) {
        *host = (const uint8_t *)*host + *z * pitch * height + *y * pitch + *x;
        *x = *y = *z = 0;
    }
}

static size_t span(size_t pitch, size_t height, size_t w, size_t h, size_t d)
{
    return (d - 1) * pitch * height + (h - 1) * pitch + w;
}

/* Copies w bytes of each of h rows in d layers between two pitched host layouts. */
static void rows(uint8_t *dst, size_t dpitch, size_t dheight, const uint8_t *src, size_t spitch, size_t sheight,
                 size_t w, size_t h, size_t d)
{
    for (size_t z = 0; z < d; z++)
        for (size_t y = 0; y < h; y++)
            memmove(dst + z * dpitch * dheight + y * dpitch, src + z * spitch * sheight + y * spitch, w);
}

/* call: the 3-D or peer call; wire_struct/size: the struct as sent (c's resolved fields copied in
 * by the caller); c: the copy as a CUDA_MEMCPY3D (resolved here). */
static CUresult copy3d_send(unsigned call, CUDA_MEMCPY3D *c, void *wire_struct, size_t wire_size, CUstream s,
                            int per_thread)
{
    size_t w = c->WidthInBytes, h = c->Height, d = c->Depth;
    if (w == 0 || h == 0 || d == 0)
        return CUDA_SUCCESS;
    if (c->srcMemoryType == CU_MEMORYTYPE_HOST && c->dstMemoryType == CU_MEMORYTYPE_HOST) {
        CUresult rc = stream_sync(s, per_thread);
        if (rc == CUDA_SUCCESS)
            rows((uint8_t *)c->dstHost, c->dstPitch, c->dstHeight, c->srcHost, c->srcPitch, c->srcHeight, w, h, d);
        return rc;
    }
    size_t src_len = 0, dst_len = 0;
    if (c->srcMemoryType == CU_MEMORYTYPE_HOST) {
        if ((h > 1 || d > 1) && (c->srcPitch < w || (d > 1 && c->srcHeight < h)))
            return CUDA_ERROR_INVALID_VALUE;
        src_len = span(c->srcPitch, c->srcHeight, w, h, d);
    }
    if (c->dstMemoryType == CU_MEMORYTYPE_HOST) {
        if ((h > 1 || d > 1) && (c->dstPitch < w || (d > 1 && c->dstHeight < h)))
            return CUDA_ERROR_INVALID_VALUE;
        dst_len = span(c->dstPitch, c->dstHeight, w, h, d);
    }
    if (src_len + wire_size > vg_conn_max_bulk() || dst_len > vg_conn_max_bulk())
        return CUDA_ERROR_INVALID_VALUE; /* larger than a frame: split it into smaller copies */
    uint8_t *dst_span = dst_len ? malloc(dst_len) : NULL;
    if (dst_len && !dst_span)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct vg_cw cw;
    vg_cw_init(&cw, call);
    vg_cw_arg(&cw, vg_stub_stream(s, per_thread));
    vg_cw_in(&cw, wire_struct, wire_size);
    vg_cw_in(&cw, c->srcHost, src_len);
    vg_cw_out(&cw, dst_span, dst_len);
    cw.want_reply = dst_len != 0;
    CUresult rc = vg_cw_run(&cw);
    if (rc == CUDA_SUCCESS && dst_span)
        rows((uint8_t *)c->dstHost, c->dstPitch, c->dstHeight, dst_span, c->dstPitch, c->dstHeight, w, h, d);
    free(dst_span);
    return rc;
}

static CUresult copy3d(const CUDA_MEMCPY3D *in, CUstream s, int per_thread, int async)
{
    if (!in)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c = *in;
    side_resolve(&c.srcMemoryType, &c.srcHost, c.srcDevice, &c.srcXInBytes, &c.srcY, &c.srcZ, c.srcPitch,
                 c.srcHeight);
    side_resolve(&c.dstMemoryType, (const void **)&c.dstHost, c.dstDevice, &c.dstXInBytes, &c.dstY, &c.dstZ,
                 c.dstPitch, c.dstHeight);
    return copy3d_send(async ? VG_CALL_cuMemcpy3DAsync_v2 : VG_CALL_cuMemcpy3D_v2, &c, &c, sizeof c, s, per_thread);
}

static CUresult copy3d_peer(const CUDA_MEMCPY3D_PEER *in, CUstream s, int per_thread, int async)
{
    if (!in)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D_PEER p = *in;
    side_resolve(&p.srcMemoryType, &p.srcHost, p.srcDevice, &p.srcXInBytes, &p.srcY, &p.srcZ, p.srcPitch,
                 p.srcHeight);
    side_resolve(&p.dstMemoryType, (const void **)&p.dstHost, p.dstDevice, &p.dstXInBytes, &p.dstY, &p.dstZ,
                 p.dstPitch, p.dstHeight);
    CUDA_MEMCPY3D c = {
        .srcMemoryType = p.srcMemoryType, .srcHost = p.srcHost, .srcPitch = p.srcPitch, .srcHeight = p.srcHeight,
        .dstMemoryType = p.dstMemoryType, .dstHost = p.dstHost, .dstPitch = p.dstPitch, .dstHeight = p.dstHeight,
        .WidthInBytes = p.WidthInBytes, .Height = p.Height, .Depth = p.Depth};
    return copy3d_send(async ? VG_CALL_cuMemcpy3DPeerAsync : VG_CALL_cuMemcpy3DPeer, &c, &p, sizeof p, s,
                       per_thread);
}

CUresult CUDAAPI cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D *c);
CUresult CUDAAPI cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D *c, CUstream s);
CUresult CUDAAPI cuMemcpy3DPeer_ptds(const CUDA_MEMCPY3D_PEER *c);
CUresult CUDAAPI cuMemcpy3DPeerAsync_ptsz(const CUDA_MEMCPY3D_PEER *c, CUstream s);

CUresult CUDAAPI cuMemcpy3D_v2(const CUDA_MEMCPY3D *c)
{
    return copy3d(c, 0, 0, 0);
}

CUresult CUDAAPI cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D *c)
{
    return copy3d(c, 0, 1, 0);
}

CUresult CUDAAPI cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *c, CUstream s)
{
    return copy3d(c, s, 0, 1);
}

CUresult CUDAAPI cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D *c, CUstream s)
{
    return copy3d(c, s, 1, 1);
}

CUresult CUDAAPI cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER *c)
{
    return copy3d_peer(c, 0, 0, 0);
}

CUresult CUDAAPI cuMemcpy3DPeer_ptds(const CUDA_MEMCPY3D_PEER *c)
{
    return copy3d_peer(c, 0, 1, 0);
}

CUresult CUDAAPI cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER *c, CUstream s)
{
    return copy3d_peer(c, s, 0, 1);
}

CUresult CUDAAPI cuMemcpy3DPeerAsync_ptsz(const CUDA_MEMCPY3D_PEER *c, CUstream s)
{
    return copy3d_peer(c, s, 1, 1);
}

/* A 2-D copy is a 3-D copy one layer deep. */
static CUresult copy2d(const CUDA_MEMCPY2D *in, CUstream s, int per_thread, int async)
{
    if (!in)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c = {
        .srcXInBytes = in->srcXInBytes, .srcY = in->srcY, .srcMemoryType = in->srcMemoryType,
        .srcHost = in->srcHost, .srcDevice = in->srcDevice, .srcArray = in->srcArray, .srcPitch = in->srcPitch,
        .srcHeight = in->Height, .dstXInBytes = in->dstXInBytes, .dstY = in->dstY,
        .dstMemoryType = in->dstMemoryType, .dstHost = in->dstHost, .dstDevice = in->dstDevice,
        .dstArray = in->dstArray, .dstPitch = in->dstPitch, .dstHeight = in->Height,
        .WidthInBytes = in->WidthInBytes, .Height = in->Height, .Depth = 1};
    return copy3d(&c, s, per_thread, async);
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

/* ---- batches: one copy per element (the batch is an optimization the remote path gains
 * nothing from; the access-order hints do not change a copy's result) ---------------------------- */

static CUresult batch(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes, size_t count, size_t *fail_idx,
                      CUstream s, int per_thread)
{
    if (!dsts || !srcs || !sizes || count == 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++) {
        CUresult rc = copy_any(dsts[i], srcs[i], sizes[i], s, per_thread, 1);
        if (rc != CUDA_SUCCESS) {
            if (fail_idx)
                *fail_idx = i;
            return rc;
        }
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpyBatchAsync_v2(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes, size_t count,
                                       CUmemcpyAttributes *attrs, size_t *attrs_idx, size_t nattrs, CUstream s)
{
    (void)attrs, (void)attrs_idx, (void)nattrs;
    return batch(dsts, srcs, sizes, count, NULL, s, 0);
}

CUresult CUDAAPI cuMemcpyBatchAsync_v2_ptsz(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes, size_t count,
                                            CUmemcpyAttributes *attrs, size_t *attrs_idx, size_t nattrs, CUstream s);
CUresult CUDAAPI cuMemcpyBatchAsync_v2_ptsz(CUdeviceptr *dsts, CUdeviceptr *srcs, size_t *sizes, size_t count,
                                            CUmemcpyAttributes *attrs, size_t *attrs_idx, size_t nattrs, CUstream s)
{
    (void)attrs, (void)attrs_idx, (void)nattrs;
    return batch(dsts, srcs, sizes, count, NULL, s, 1);
}

/* Bytes per element of an array (format size times channels). */
static CUresult array_esize(CUarray a, size_t *esize)
{
    CUDA_ARRAY3D_DESCRIPTOR d;
    CUresult rc = cuArray3DGetDescriptor_v2(&d, a);
    if (rc == CUDA_SUCCESS)
        *esize = (size_t)vg_format_bytes(d.Format) * d.NumChannels;
    return rc;
}

/* One side of a batch operation as a 3-D copy's side (elements of esize bytes). */
static void batch_side(const CUmemcpy3DOperand *o, size_t esize, const CUextent3D *e, CUmemorytype *type,
                       CUdeviceptr *dev, CUarray *array, size_t *x, size_t *y, size_t *z, size_t *pitch,
                       size_t *height)
{
    if (o->type == CU_MEMCPY_OPERAND_TYPE_ARRAY) {
        *type = CU_MEMORYTYPE_ARRAY;
        *array = o->op.array.array;
        *x = o->op.array.offset.x * esize;
        *y = o->op.array.offset.y;
        *z = o->op.array.offset.z;
        return;
    }
    *type = CU_MEMORYTYPE_UNIFIED;
    *dev = o->op.ptr.ptr;
    *pitch = (o->op.ptr.rowLength ? o->op.ptr.rowLength : e->width) * esize;
    *height = o->op.ptr.layerHeight ? o->op.ptr.layerHeight : e->height;
}

static CUresult batch3d(size_t n, CUDA_MEMCPY3D_BATCH_OP *ops, unsigned long long flags, CUstream s, int per_thread)
{
    if (!ops || n == 0 || flags)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < n; i++) {
        CUDA_MEMCPY3D_BATCH_OP *op = &ops[i];
        size_t esize = 1;
        CUresult rc = CUDA_SUCCESS;
        if (op->src.type == CU_MEMCPY_OPERAND_TYPE_ARRAY)
            rc = array_esize(op->src.op.array.array, &esize);
        else if (op->dst.type == CU_MEMCPY_OPERAND_TYPE_ARRAY)
            rc = array_esize(op->dst.op.array.array, &esize);
        if (rc != CUDA_SUCCESS)
            return rc;
        CUDA_MEMCPY3D c = {.WidthInBytes = op->extent.width * esize, .Height = op->extent.height,
                           .Depth = op->extent.depth};
        batch_side(&op->src, esize, &op->extent, &c.srcMemoryType, &c.srcDevice, &c.srcArray, &c.srcXInBytes,
                   &c.srcY, &c.srcZ, &c.srcPitch, &c.srcHeight);
        batch_side(&op->dst, esize, &op->extent, &c.dstMemoryType, &c.dstDevice, &c.dstArray, &c.dstXInBytes,
                   &c.dstY, &c.dstZ, &c.dstPitch, &c.dstHeight);
        rc = copy3d(&c, s, per_thread, 1);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpy3DBatchAsync_v2(size_t n, CUDA_MEMCPY3D_BATCH_OP *ops, unsigned long long flags, CUstream s)
{
    return batch3d(n, ops, flags, s, 0);
}

CUresult CUDAAPI cuMemcpy3DBatchAsync_v2_ptsz(size_t n, CUDA_MEMCPY3D_BATCH_OP *ops, unsigned long long flags,
                                              CUstream s);
CUresult CUDAAPI cuMemcpy3DBatchAsync_v2_ptsz(size_t n, CUDA_MEMCPY3D_BATCH_OP *ops, unsigned long long flags,
                                              CUstream s)
{
    return batch3d(n, ops, flags, s, 1);
}
