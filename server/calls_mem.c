/* Hand-written handlers of memory calls (protocol/cuda.calls marks them server or manual): 3-D
 * copies that carry host memory, virtual memory management (reservations and mappings are the
 * session's to keep), batches of operations on device ranges, managed memory, green contexts.
 * Wire layouts: protocol/README.md, "Calls written by hand". */
#include <stdlib.h>
#include <string.h>

#include "session_priv.h"


/* ---- 3-D copies --------------------------------------------------------------------------- */

/* The bytes a host side of a 3-D copy spans, from the first one touched (the client sends host
 * sides with their offsets folded into the pointer, so that is where the span starts). */
static vg_u128 host_span(size_t pitch, size_t height, const CUDA_MEMCPY3D *c)
{
    if (!c->WidthInBytes || !c->Height || !c->Depth)
        return 0;
    return (vg_u128)(c->Depth - 1) * pitch * height + (vg_u128)(c->Height - 1) * pitch + c->WidthInBytes;
}

/* args: stream; bulk: the struct, then the source's host span when the source is host memory;
 * reply bulk: the destination's host span when the destination is host memory. */
static CUresult copy3d_stream(struct vg_sess *s, const struct vg_in *in, CUstream *st)
{
    ARGS(1);
    int slot;
    return sess_harg(s, in->args[0], H_STREAM, 0, (void **)st, &slot);
}

static CUresult copy3d_run(struct vg_sess *s, struct vg_result *res, CUDA_MEMCPY3D *c, const uint8_t *src_span,
                           uint64_t src_len, CUstream st, int async,
                           CUresult (*run)(struct vg_sess *, CUDA_MEMCPY3D *, CUstream, int))
{
    if (c->srcMemoryType == CU_MEMORYTYPE_HOST) {
        if (src_len != host_span(c->srcPitch, c->srcHeight, c))
            return CUDA_ERROR_INVALID_VALUE;
        c->srcHost = src_span;
        c->srcXInBytes = c->srcY = c->srcZ = 0;
    } else if (src_len) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    CUresult rc = sess_check_memcpy3d(s, c, 1);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (c->dstMemoryType == CU_MEMORYTYPE_HOST) {
        vg_u128 span = host_span(c->dstPitch, c->dstHeight, c);
        if (span > s->max_bulk)
            return CUDA_ERROR_INVALID_VALUE;
        uint8_t *b = vg_reply_bulk(res, (uint64_t)span);
        if (!b)
            return CUDA_ERROR_OUT_OF_MEMORY;
        c->dstHost = b;
        c->dstXInBytes = c->dstY = c->dstZ = 0;
    }
    int host = c->srcMemoryType == CU_MEMORYTYPE_HOST || c->dstMemoryType == CU_MEMORYTYPE_HOST;
    /* Host sides are the frame's buffers, gone when the call returns: wait for the copy. */
    rc = run(s, c, st, async && !host);
    if (rc == CUDA_SUCCESS && async && host && s->drv->cuStreamSynchronize)
        rc = s->drv->cuStreamSynchronize(st);
    if (rc != CUDA_SUCCESS)
        res->bulk_len = 0;
    return rc;
}

/* A copy of linear memory row by row with the 1-D calls, for a driver without 3-D copies (the
 * emulated GPU before it had them). Arrays need the driver's own. The ranges were checked. */
static CUresult rows_1d(struct vg_sess *s, const CUDA_MEMCPY3D *c, CUstream st)
{
    const struct vg_drv *d = s->drv;
    int sh = c->srcMemoryType == CU_MEMORYTYPE_HOST, dh = c->dstMemoryType == CU_MEMORYTYPE_HOST;
    if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY || c->dstMemoryType == CU_MEMORYTYPE_ARRAY)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (!d->cuMemcpyDtoDAsync || !d->cuMemcpyHtoDAsync || !d->cuMemcpyDtoHAsync || !d->cuStreamSynchronize)
        return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = CUDA_SUCCESS;
    for (size_t z = 0; z < c->Depth && rc == CUDA_SUCCESS; z++) {
        for (size_t y = 0; y < c->Height && rc == CUDA_SUCCESS; y++) {
            size_t so = (c->srcZ + z) * c->srcPitch * c->srcHeight + (c->srcY + y) * c->srcPitch + c->srcXInBytes;
            size_t dof = (c->dstZ + z) * c->dstPitch * c->dstHeight + (c->dstY + y) * c->dstPitch + c->dstXInBytes;
            if (sh)
                rc = d->cuMemcpyHtoDAsync(c->dstDevice + dof, (const uint8_t *)c->srcHost + so, c->WidthInBytes, st);
            else if (dh)
                rc = d->cuMemcpyDtoHAsync((uint8_t *)c->dstHost + dof, c->srcDevice + so, c->WidthInBytes, st);
            else
                rc = d->cuMemcpyDtoDAsync(c->dstDevice + dof, c->srcDevice + so, c->WidthInBytes, st);
        }
    }
    return rc == CUDA_SUCCESS ? d->cuStreamSynchronize(st) : rc;
}

static CUresult run_3d(struct vg_sess *s, CUDA_MEMCPY3D *c, CUstream st, int async)
{
    CUresult rc;
    if (async || st)
        rc = s->drv->cuMemcpy3DAsync ? s->drv->cuMemcpy3DAsync(c, st) : CUDA_ERROR_NOT_SUPPORTED;
    else
        rc = s->drv->cuMemcpy3D ? s->drv->cuMemcpy3D(c) : CUDA_ERROR_NOT_SUPPORTED;
    return rc == CUDA_ERROR_NOT_SUPPORTED ? rows_1d(s, c, st) : rc;
}

static CUresult memcpy3d_call(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int async)
{
    CUDA_MEMCPY3D c;
    CUstream st;
    CUresult rc = copy3d_stream(s, in, &st);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (in->bulk_len < sizeof c)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(&c, in->bulk, sizeof c);
    return copy3d_run(s, res, &c, in->bulk + sizeof c, in->bulk_len - sizeof c, st, async, run_3d);
}

VG_SERVER_CALL(cuMemcpy3D_v2)
{
    return memcpy3d_call(s, in, res, 0);
}

VG_SERVER_CALL(cuMemcpy3DAsync_v2)
{
    return memcpy3d_call(s, in, res, 1);
}

/* A peer copy is checked as the 3-D copy it describes; its contexts are translated. */
static void peer_to_3d(const CUDA_MEMCPY3D_PEER *p, CUDA_MEMCPY3D *c)
{
    memset(c, 0, sizeof *c);
    c->srcXInBytes = p->srcXInBytes, c->srcY = p->srcY, c->srcZ = p->srcZ, c->srcLOD = p->srcLOD;
    c->srcMemoryType = p->srcMemoryType, c->srcHost = p->srcHost, c->srcDevice = p->srcDevice;
    c->srcArray = p->srcArray, c->srcPitch = p->srcPitch, c->srcHeight = p->srcHeight;
    c->dstXInBytes = p->dstXInBytes, c->dstY = p->dstY, c->dstZ = p->dstZ, c->dstLOD = p->dstLOD;
    c->dstMemoryType = p->dstMemoryType, c->dstHost = p->dstHost, c->dstDevice = p->dstDevice;
    c->dstArray = p->dstArray, c->dstPitch = p->dstPitch, c->dstHeight = p->dstHeight;
    c->WidthInBytes = p->WidthInBytes, c->Height = p->Height, c->Depth = p->Depth;
}

static void peer_from_3d(const CUDA_MEMCPY3D *c, CUDA_MEMCPY3D_PEER *p)
{
    p->srcXInBytes = c->srcXInBytes, p->srcY = c->srcY, p->srcZ = c->srcZ;
    p->srcMemoryType = c->srcMemoryType, p->srcHost = c->srcHost, p->srcArray = c->srcArray;
    p->dstXInBytes = c->dstXInBytes, p->dstY = c->dstY, p->dstZ = c->dstZ;
    p->dstMemoryType = c->dstMemoryType, p->dstHost = c->dstHost, p->dstArray = c->dstArray;
}

/* The peer struct being run (its contexts already translated), for run_peer. */
static __thread CUDA_MEMCPY3D_PEER *peer_running;

static CUresult run_peer(struct vg_sess *s, CUDA_MEMCPY3D *c, CUstream st, int async)
{
    peer_from_3d(c, peer_running);
    if (async || st) {
        NEED(cuMemcpy3DPeerAsync);
        return s->drv->cuMemcpy3DPeerAsync(peer_running, st);
    }
    NEED(cuMemcpy3DPeer);
    return s->drv->cuMemcpy3DPeer(peer_running);
}

static CUresult peer_call(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int async)
{
    CUDA_MEMCPY3D c;
    CUDA_MEMCPY3D_PEER p;
    CUstream st;
    CUresult rc = copy3d_stream(s, in, &st);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (in->bulk_len < sizeof p)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(&p, in->bulk, sizeof p);
    void *real;
    int slot;
    rc = sess_harg(s, (uint64_t)(uintptr_t)p.srcContext, H_CTX, 1, &real, &slot);
    p.srcContext = real;
    if (rc == CUDA_SUCCESS)
        rc = sess_harg(s, (uint64_t)(uintptr_t)p.dstContext, H_CTX, 1, &real, &slot);
    p.dstContext = real;
    if (rc != CUDA_SUCCESS)
        return rc;
    peer_to_3d(&p, &c);
    peer_running = &p;
    return copy3d_run(s, res, &c, in->bulk + sizeof p, in->bulk_len - sizeof p, st, async, run_peer);
}

VG_SERVER_CALL(cuMemcpy3DPeer)
{
    return peer_call(s, in, res, 0);
}

VG_SERVER_CALL(cuMemcpy3DPeerAsync)
{
    return peer_call(s, in, res, 1);
}

/* ---- virtual memory management ------------------------------------------------------------------
 * A reservation (struct va) is address space only; a mapping of a memory handle into it is a
 * range the session may touch (R_MAPPED) until unmapped. Physical memory is charged when its
 * handle is created (cuMemCreate, generated). */

static int va_find(const struct vg_sess *s, uint64_t p, uint64_t size)
{
    for (uint32_t i = 0; i < s->nva; i++)
        if (p >= s->va[i].base && size <= s->va[i].size && p - s->va[i].base <= s->va[i].size - size)
            return (int)i;
    return -1;
}

/* args: size, alignment, requested address, flags; outs: the reservation's base. */
VG_SERVER_CALL(cuMemAddressReserve)
{
    NEED(cuMemAddressReserve);
    ARGS(4);
    uint64_t size = in->args[0];
    if (size == 0 || size > ((uint64_t)1 << 48))
        return CUDA_ERROR_INVALID_VALUE;
    if (s->nva == s->capva) {
        uint32_t cap = s->capva ? s->capva * 2 : 16;
        if (cap > SESS_MAX_RANGES)
            return CUDA_ERROR_OUT_OF_MEMORY;
        struct va *n = realloc(s->va, cap * sizeof *n);
        if (!n)
            return CUDA_ERROR_OUT_OF_MEMORY;
        s->va = n;
        s->capva = cap;
    }
    CUdeviceptr p = 0;
    CUresult rc = s->drv->cuMemAddressReserve(&p, (size_t)size, (size_t)in->args[1], in->args[2], in->args[3]);
    if (rc != CUDA_SUCCESS)
        return rc;
    s->va[s->nva++] = (struct va){.base = p, .size = size, .ctx = s->cur_ctx};
    sess_out(res, p);
    return CUDA_SUCCESS;
}

/* args: base, size: a whole reservation with nothing mapped in it. */
VG_SERVER_CALL(cuMemAddressFree)
{
    NEED(cuMemAddressFree);
    ARGS(2);
    uint64_t p = in->args[0], size = in->args[1];
    int i = va_find(s, p, size);
    if (i < 0 || s->va[i].base != p || s->va[i].size != size)
        return CUDA_ERROR_INVALID_VALUE;
    for (uint32_t k = 0; k < s->nr; k++)
        if (s->r[k].kind == R_MAPPED && s->r[k].base - p < size)
            return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = s->drv->cuMemAddressFree(p, (size_t)size);
    if (rc == CUDA_SUCCESS)
        s->va[i] = s->va[--s->nva];
    return rc;
}

/* args: address, size, offset, memory handle, flags: [address, +size) inside one of the
 * session's reservations and free of other mappings. */
VG_SERVER_CALL(cuMemMap)
{
    NEED(cuMemMap);
    ARGS(5);
    uint64_t p = in->args[0], size = in->args[1];
    void *h;
    int slot;
    CUresult rc = sess_harg(s, in->args[3], H_MEMH, 0, &h, &slot);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (size == 0 || va_find(s, p, size) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct range r = {.base = p, .size = size, .ctx = s->cur_ctx, .kind = R_MAPPED};
    if (sess_range_add(s, &r) < 0)
        return CUDA_ERROR_INVALID_VALUE; /* overlaps a mapping (or the table is full) */
    rc = s->drv->cuMemMap(p, (size_t)size, (size_t)in->args[2], (CUmemGenericAllocationHandle)(uintptr_t)h, in->args[4]);
    if (rc != CUDA_SUCCESS)
        sess_range_del(s, (uint32_t)sess_range_at(s, p));
    return rc;
}

/* args: address, size: exactly the mappings that lie in [address, +size), which must cover it. */
VG_SERVER_CALL(cuMemUnmap)
{
    NEED(cuMemUnmap);
    ARGS(2);
    uint64_t p = in->args[0], size = in->args[1], at = p;
    if (size == 0 || p + size < p)
        return CUDA_ERROR_INVALID_VALUE;
    while (at < p + size) {
        int i = sess_range_at(s, at);
        if (i < 0 || s->r[i].kind != R_MAPPED || s->r[i].base != at)
            return CUDA_ERROR_INVALID_VALUE;
        at += s->r[i].size;
    }
    if (at != p + size)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = s->drv->cuMemUnmap(p, (size_t)size);
    if (rc == CUDA_SUCCESS)
        while (sess_range_at(s, p) >= 0 && s->r[sess_range_at(s, p)].base - p < size)
            sess_range_del(s, (uint32_t)sess_range_at(s, p));
    return rc;
}

/* Generated stub layout: args count, stream; bulk: the map infos. Sparse array mappings: the
 * array and memory handle of each translated. */
VG_SERVER_CALL(cuMemMapArrayAsync)
{
    NEED(cuMemMapArrayAsync);
    ARGS(2);
    uint64_t n = in->args[0];
    CUstream st;
    CUarrayMapInfo *m = NULL;
    struct vg_tmp t;
    vg_tmp_init(&t);
    CUresult rc = vg_stream_bulk_array(s, in, 1, &st, n, 1024, sizeof *m, &t, (void **)&m);
    for (uint64_t i = 0; rc == CUDA_SUCCESS && i < n; i++) {
        void *real;
        int slot;
        if (m[i].resourceType == CU_RESOURCE_TYPE_ARRAY) {
            rc = sess_harg(s, (uint64_t)(uintptr_t)m[i].resource.array, H_ARRAY, 0, &real, &slot);
            m[i].resource.array = real;
        } else if (m[i].resourceType == CU_RESOURCE_TYPE_MIPMAPPED_ARRAY) {
            rc = sess_harg(s, (uint64_t)(uintptr_t)m[i].resource.mipmap, H_MIPMAP, 0, &real, &slot);
            m[i].resource.mipmap = real;
        } else {
            rc = CUDA_ERROR_INVALID_VALUE;
        }
        if (rc == CUDA_SUCCESS && m[i].memOperationType == CU_MEM_OPERATION_TYPE_MAP) {
            if (m[i].memHandleType != CU_MEM_HANDLE_TYPE_GENERIC)
                rc = CUDA_ERROR_INVALID_VALUE;
            else
                rc = sess_harg(s, m[i].memHandle.memHandle, H_MEMH, 0, &real, &slot);
            m[i].memHandle.memHandle = (CUmemGenericAllocationHandle)(uintptr_t)real;
        }
    }
    if (rc == CUDA_SUCCESS)
        rc = s->drv->cuMemMapArrayAsync(m, (unsigned)n, st);
    vg_tmp_free(&t);
    return rc;
}

/* ---- batches of operations on device ranges ------------------------------------------------------- */

/* The args and bulk every batch call shares: dptrs[n], sizes[n] (each range the session's). */
static CUresult ranges_arg(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, uint64_t n, CUdeviceptr **dptrs,
                           size_t **sizes)
{
    if (n == 0 || n > VG_MAX_ARRAY_BYTES / 16)
        return CUDA_ERROR_INVALID_VALUE;
    *dptrs = vg_rd_dup(rd, t, n * sizeof **dptrs);
    *sizes = *dptrs ? vg_rd_dup(rd, t, n * sizeof **sizes) : NULL;
    if (!*sizes)
        return vg_rd_failed(rd);
    for (uint64_t i = 0; i < n; i++)
        if (!sess_dev_ok(s, (*dptrs)[i], (*sizes)[i]))
            return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* The prefetch locations of a batch: locs[nlocs] with the index each starts at. */
static CUresult locs_arg(struct vg_rd *rd, struct vg_tmp *t, uint64_t nlocs, uint64_t n, CUmemLocation **locs,
                         size_t **idx)
{
    if (nlocs == 0 || nlocs > n)
        return CUDA_ERROR_INVALID_VALUE;
    *locs = vg_rd_dup(rd, t, nlocs * sizeof **locs);
    *idx = *locs ? vg_rd_dup(rd, t, nlocs * sizeof **idx) : NULL;
    return *idx ? CUDA_SUCCESS : vg_rd_failed(rd);
}

/* cuMemDiscardBatchAsync(dptrs, sizes, count, flags, stream) and the two prefetch forms: the
 * generated stub's layout (args count, [numPrefetchLocs,] flags, stream; bulk the arrays). */
static CUresult batch(struct vg_sess *s, const struct vg_in *in, int prefetch, int discard)
{
    size_t nargs = prefetch ? 4 : 3;
    ARGS(nargs);
    uint64_t n = in->args[0], nlocs = prefetch ? in->args[1] : 0, flags = in->args[nargs - 2];
    CUstream st;
    int slot;
    CUresult rc = sess_harg(s, in->args[nargs - 1], H_STREAM, 0, (void **)&st, &slot);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vg_tmp t;
    struct vg_rd rd;
    vg_tmp_init(&t);
    vg_rd_init(&rd, in->bulk, in->bulk_len);
    CUdeviceptr *dptrs;
    size_t *sizes, *idx = NULL;
    CUmemLocation *locs = NULL;
    rc = ranges_arg(s, &rd, &t, n, &dptrs, &sizes);
    if (rc == CUDA_SUCCESS && prefetch)
        rc = locs_arg(&rd, &t, nlocs, n, &locs, &idx);
    if (rc == CUDA_SUCCESS && !vg_rd_done(&rd))
        rc = CUDA_ERROR_INVALID_VALUE;
    const struct vg_drv *d = s->drv;
    if (rc == CUDA_SUCCESS) {
        if (!prefetch)
            rc = d->cuMemDiscardBatchAsync ? d->cuMemDiscardBatchAsync(dptrs, sizes, (size_t)n, flags, st)
                                           : CUDA_ERROR_NOT_SUPPORTED;
        else if (discard)
            rc = d->cuMemDiscardAndPrefetchBatchAsync
                     ? d->cuMemDiscardAndPrefetchBatchAsync(dptrs, sizes, (size_t)n, locs, idx, (size_t)nlocs, flags, st)
                     : CUDA_ERROR_NOT_SUPPORTED;
        else
            rc = d->cuMemPrefetchBatchAsync
                     ? d->cuMemPrefetchBatchAsync(dptrs, sizes, (size_t)n, locs, idx, (size_t)nlocs, flags, st)
                     : CUDA_ERROR_NOT_SUPPORTED;
    }
    vg_tmp_free(&t);
    return rc;
}

VG_SERVER_CALL(cuMemDiscardBatchAsync)
{
    return batch(s, in, 0, 1);
}

VG_SERVER_CALL(cuMemPrefetchBatchAsync)
{
    return batch(s, in, 1, 0);
}

VG_SERVER_CALL(cuMemDiscardAndPrefetchBatchAsync)
{
    return batch(s, in, 1, 1);
}

/* The generated stub's layout: args count, flags, stream; bulk: the parameters; outs: the
 * index of the operation that failed. Every source, destination and result address is checked. */
VG_SERVER_CALL(cuMemBatchDecompressAsync)
{
    NEED(cuMemBatchDecompressAsync);
    ARGS(3);
    uint64_t n = in->args[0];
    CUstream st;
    CUmemDecompressParams *p = NULL;
    struct vg_tmp t;
    vg_tmp_init(&t);
    CUresult rc = vg_stream_bulk_array(s, in, 2, &st, n, 4096, sizeof *p, &t, (void **)&p);
    for (uint64_t i = 0; rc == CUDA_SUCCESS && i < n; i++)
        if (!sess_dev_ok(s, (uint64_t)(uintptr_t)p[i].src, p[i].srcNumBytes) ||
            !sess_dev_ok(s, (uint64_t)(uintptr_t)p[i].dst, p[i].dstNumBytes) ||
            (p[i].dstActBytes && !sess_dev_ok(s, (uint64_t)(uintptr_t)p[i].dstActBytes, sizeof *p[i].dstActBytes)))
            rc = CUDA_ERROR_INVALID_VALUE;
    size_t err = 0;
    if (rc == CUDA_SUCCESS)
        rc = s->drv->cuMemBatchDecompressAsync(p, (size_t)n, (unsigned)in->args[1], &err, st);
    sess_out(res, err);
    vg_tmp_free(&t);
    return rc;
}

/* ---- managed memory ------------------------------------------------------------------------------
 * The stub keeps a host shadow at the same address and synchronizes it at defined points
 * (client/coherent.c); the server only needs device memory the shadow's address names. A driver
 * without managed memory gives device memory instead: what the client relies on is the shadow
 * protocol, not the server's page migration. */

/* args: bytes, flags; outs: the address. The memory starts zeroed, as the client's shadow does. */
VG_SERVER_CALL(cuMemAllocManaged)
{
    ARGS(2);
    if (!s->cur_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    uint64_t bytes = in->args[0];
    if (bytes == 0 || bytes > VG_MAX_CHARGE)
        return CUDA_ERROR_INVALID_VALUE;
    int dev = sess_cur_device(s);
    CUresult rc = sess_mem_charge(s, dev, bytes);
    if (rc != CUDA_SUCCESS)
        return rc;
    const struct vg_drv *d = s->drv;
    CUdeviceptr p = 0;
    unsigned flags = (unsigned)in->args[1] & ~VG_MANAGED_DEVICE_BACKED;
    int device_backed = (in->args[1] & VG_MANAGED_DEVICE_BACKED) || !d->cuMemAllocManaged;
    rc = device_backed ? CUDA_ERROR_NOT_SUPPORTED : d->cuMemAllocManaged(&p, (size_t)bytes, flags);
    if (rc == CUDA_ERROR_NOT_SUPPORTED && d->cuMemAlloc) {
        device_backed = 1;
        rc = d->cuMemAlloc(&p, (size_t)bytes);
    }
    if (rc == CUDA_SUCCESS && d->cuMemsetD8)
        rc = d->cuMemsetD8(p, 0, (size_t)bytes);
    if (rc == CUDA_SUCCESS) {
        rc = sess_alloc_add(s, p, bytes, dev);
        if (rc == CUDA_SUCCESS) {
            s->r[sess_range_at(s, p)].hint_only = (uint8_t)device_backed;
            sess_out(res, p);
            return CUDA_SUCCESS;
        }
    }
    if (p)
        vg_driver_free(s, p);
    sess_mem_refund(s, dev, bytes);
    return rc;
}

/* ---- green contexts --------------------------------------------------------------------------- */

/* Generated stub layout: args green context; outs context. The context is the green context's
 * (not the session's to destroy): it joins the session's contexts as a child of it. */
VG_SERVER_CALL(cuCtxFromGreenCtx)
{
    NEED(cuCtxFromGreenCtx);
    ARGS(1);
    void *g;
    int gslot;
    CUresult rc = sess_harg(s, in->args[0], H_GREEN, 0, &g, &gslot);
    if (rc != CUDA_SUCCESS)
        return rc;
    CUcontext c = NULL;
    rc = s->drv->cuCtxFromGreenCtx(&c, g);
    if (rc != CUDA_SUCCESS)
        return rc;
    int i = sess_hfind_real(s, H_CTX, c);
    if (i < 0) {
        CUdevice dev = 0;
        if (s->drv->cuCtxGetDevice_v2)
            s->drv->cuCtxGetDevice_v2(&dev, c);
        i = sess_hnew(s, H_CTX, c, 0);
        if (i < 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
        s->h[i].device = dev;
        s->h[i].ctx = (uint32_t)i + 1;
        sess_set_parent(s, (uint32_t)i, gslot);
    }
    sess_out(res, sess_hid(s, (uint32_t)i));
    return CUDA_SUCCESS;
}

/* Generated stub layout: args green context. Its context and what was made in it go too. */
VG_SERVER_CALL(cuGreenCtxDestroy)
{
    NEED(cuGreenCtxDestroy);
    ARGS(1);
    void *g;
    int gslot;
    CUresult rc = sess_harg(s, in->args[0], H_GREEN, 0, &g, &gslot);
    if (rc != CUDA_SUCCESS)
        return rc;
    sess_leave_ctx(s);
    rc = s->drv->cuGreenCtxDestroy(g);
    if (rc == CUDA_SUCCESS)
        sess_free_with_descendants(s, (uint32_t)gslot);
    return rc;
}
