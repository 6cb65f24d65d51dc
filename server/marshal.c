/* The server half of the structures marshalled by hand: structures with pointers, handles or
 * device addresses inside (protocol/cuda.calls marks them manual or raw). Each is written once
 * here, whichever calls carry it; the client half is client/marshal.c and the wire format of
 * each is in protocol/README.md ("Structures").
 *
 * A structure travels as its own bytes (the client's handle values are session ids; its pointer
 * fields mean nothing here), followed by what its pointers point to. Decoding translates every
 * handle through the session's table, checks every device range against the session's memory,
 * bounds every count, and points the pointer fields at scratch copies (struct vg_tmp) that live
 * until the handler returns. */
#include <stdlib.h>
#include <string.h>

#include "session_priv.h"

/* Translates the handle id stored in a pointer-sized field in place. */
static CUresult xl(struct vg_sess *s, void *field, int type, int nullable)
{
    uint64_t id;
    void *real;
    int slot;
    memcpy(&id, field, sizeof id);
    CUresult rc = sess_harg(s, id, type, nullable, &real, &slot);
    if (rc == CUDA_SUCCESS)
        memcpy(field, &real, sizeof real);
    return rc;
}

/* Turns the driver object in a pointer-sized field into the session's id for it, in place. */
static void xl_out(struct vg_sess *s, void *field, int type)
{
    void *real;
    memcpy(&real, field, sizeof real);
    uint64_t id = real ? sess_hout_get(s, type, real, NULL, 0) : 0;
    memcpy(field, &id, sizeof id);
}

/* A counted array from the bulk: u64 count (at most max), then count elements; an aligned copy. */
static CUresult rd_array(struct vg_rd *rd, struct vg_tmp *t, size_t esize, uint64_t max, void **out,
                         uint64_t *count)
{
    *out = NULL;
    if (vg_rd_u64(rd, count) < 0 || *count > max)
        return CUDA_ERROR_INVALID_VALUE;
    if (*count == 0)
        return CUDA_SUCCESS;
    *out = vg_rd_dup(rd, t, *count * esize);
    return *out ? CUDA_SUCCESS : vg_rd_failed(rd);
}

/* ---- copies ------------------------------------------------------------------------------- */

/* One side of a 3-D copy. A device side must lie in the session's memory: the bytes from the
 * first one touched to the last (offset, pitch and height as the driver uses them). An array
 * side is translated. A host side is refused unless host_ok (then the caller supplies it). */
static CUresult copy_side(struct vg_sess *s, CUmemorytype *type, CUdeviceptr dev, CUarray *array,
                          size_t x, size_t y, size_t z, size_t pitch, size_t height,
                          const CUDA_MEMCPY3D *c, int host_ok)
{
    switch (*type) {
    case CU_MEMORYTYPE_ARRAY:
        return xl(s, array, H_ARRAY, 0);
    case CU_MEMORYTYPE_HOST:
        return host_ok ? CUDA_SUCCESS : CUDA_ERROR_NOT_SUPPORTED;
    case CU_MEMORYTYPE_DEVICE:
    case CU_MEMORYTYPE_UNIFIED: {
        if (c->WidthInBytes == 0 || c->Height == 0 || c->Depth == 0)
            return CUDA_SUCCESS;
        vg_u128 start = (vg_u128)z * pitch * height + (vg_u128)y * pitch + x;
        vg_u128 span = (vg_u128)(c->Depth - 1) * pitch * height + (vg_u128)(c->Height - 1) * pitch + c->WidthInBytes;
        if (start > UINT64_MAX || start + dev > UINT64_MAX || !sess_dev_ok(s, dev + (uint64_t)start, span))
            return CUDA_ERROR_INVALID_VALUE;
        *type = CU_MEMORYTYPE_DEVICE; /* the server's copy: what unified addressing said */
        return CUDA_SUCCESS;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult sess_check_memcpy3d(struct vg_sess *s, CUDA_MEMCPY3D *c, int host_ok)
{
    CUresult rc = copy_side(s, &c->srcMemoryType, c->srcDevice, &c->srcArray, c->srcXInBytes, c->srcY,
                            c->srcZ, c->srcPitch, c->srcHeight, c, host_ok);
    if (rc == CUDA_SUCCESS)
        rc = copy_side(s, &c->dstMemoryType, c->dstDevice, &c->dstArray, c->dstXInBytes, c->dstY, c->dstZ,
                       c->dstPitch, c->dstHeight, c, host_ok);
    c->reserved0 = c->reserved1 = NULL;
    return rc;
}

/* A graph's copy runs whenever the graph does, on the server: host memory (the client's) is
 * not reachable then. */
CUresult vg_mdec_CUDA_MEMCPY3D(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUDA_MEMCPY3D *out)
{
    (void)t;
    if (vg_rd_copy(rd, out, sizeof *out) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    out->srcHost = out->dstHost = NULL;
    return sess_check_memcpy3d(s, out, 0);
}

static CUresult check_memset(struct vg_sess *s, CUdeviceptr dst, size_t pitch, unsigned esize, size_t width,
                             size_t height)
{
    if (esize != 1 && esize != 2 && esize != 4)
        return CUDA_ERROR_INVALID_VALUE;
    if (height > 1 && pitch < (vg_u128)width * esize)
        return CUDA_ERROR_INVALID_VALUE;
    return sess_dev_ok(s, dst, vg_span2d(pitch, (vg_u128)width * esize, height)) ? CUDA_SUCCESS
                                                                                : CUDA_ERROR_INVALID_VALUE;
}

CUresult vg_mdec_CUDA_MEMSET_NODE_PARAMS(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t,
                                         CUDA_MEMSET_NODE_PARAMS *out)
{
    (void)t;
    if (vg_rd_copy(rd, out, sizeof *out) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    return check_memset(s, out->dst, out->pitch, out->elementSize, out->width, out->height);
}

/* ---- stream memory operations ------------------------------------------------------------ */

CUresult sess_check_memops(struct vg_sess *s, CUstreamBatchMemOpParams *ops, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        CUstreamBatchMemOpParams *op = &ops[i];
        switch (op->operation) {
        case CU_STREAM_MEM_OP_WAIT_VALUE_32:
        case CU_STREAM_MEM_OP_WAIT_VALUE_64:
            if (!sess_dev_ok(s, op->waitValue.address, op->operation == CU_STREAM_MEM_OP_WAIT_VALUE_32 ? 4 : 8))
                return CUDA_ERROR_INVALID_VALUE;
            op->waitValue.alias = 0;
            break;
        case CU_STREAM_MEM_OP_WRITE_VALUE_32:
        case CU_STREAM_MEM_OP_WRITE_VALUE_64:
            if (!sess_dev_ok(s, op->writeValue.address, op->operation == CU_STREAM_MEM_OP_WRITE_VALUE_32 ? 4 : 8))
                return CUDA_ERROR_INVALID_VALUE;
            op->writeValue.alias = 0;
            break;
        case CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES:
        case CU_STREAM_MEM_OP_BARRIER:
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    return CUDA_SUCCESS;
}

#define MEMOPS_MAX 4096

/* The struct, then u64 count and the operations. */
CUresult vg_mdec_CUDA_BATCH_MEM_OP_NODE_PARAMS(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t,
                                               CUDA_BATCH_MEM_OP_NODE_PARAMS *out)
{
    if (vg_rd_copy(rd, out, sizeof *out) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = xl(s, &out->ctx, H_CTX, 1);
    uint64_t n;
    if (rc == CUDA_SUCCESS)
        rc = rd_array(rd, t, sizeof *out->paramArray, MEMOPS_MAX, (void **)&out->paramArray, &n);
    if (rc == CUDA_SUCCESS && n != out->count)
        rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS)
        rc = sess_check_memops(s, out->paramArray, n);
    return rc;
}

/* ---- kernels ------------------------------------------------------------------------------ */

CUresult sess_func_layout(struct vg_sess *s, int slot)
{
    struct handle *e = &s->h[slot];
    CUfunction f = e->real;
    if (e->nparams >= 0)
        return CUDA_SUCCESS;
    if (e->type == H_KERN) {
        /* The layout comes from the kernel's function in the current context. */
        if (!s->drv->cuKernelGetFunction)
            return CUDA_ERROR_NOT_SUPPORTED;
        CUresult rc = s->drv->cuKernelGetFunction(&f, e->real);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    return sess_load_layout(s, slot, f);
}

CUresult sess_params(struct vg_sess *s, int slot, const uint8_t *buf, uint64_t len, struct vg_tmp *t,
                     void ***params)
{
    CUresult rc = sess_func_layout(s, slot);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct handle *e = &s->h[slot];
    if (len < e->param_bytes)
        return CUDA_ERROR_INVALID_VALUE;
    *params = NULL;
    if (e->nparams == 0)
        return CUDA_SUCCESS;
    void **p = vg_tmp_zalloc(t, (size_t)e->nparams * sizeof *p);
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (int k = 0; k < e->nparams; k++)
        p[k] = (void *)(buf + e->param_off[k]);
    *params = p;
    return CUDA_SUCCESS;
}

/* func (or kern), dims, context translated; the parameter buffer (u64 length, bytes) follows
 * the struct and becomes kernelParams. */
static CUresult kernel_node(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUfunction *func,
                            CUkernel *kern, CUcontext *ctx, void ***kernel_params, void ***extra)
{
    void *real;
    int fslot = -1, kslot = -1;
    uint64_t fid, kid;
    memcpy(&fid, func, sizeof fid);
    memcpy(&kid, kern, sizeof kid);
    CUresult rc = sess_harg(s, fid, H_FUNC, 1, &real, &fslot);
    if (rc != CUDA_SUCCESS)
        return rc;
    *func = real;
    rc = sess_harg(s, kid, H_KERN, 1, &real, &kslot);
    if (rc != CUDA_SUCCESS)
        return rc;
    *kern = real;
    if (fslot >= 0 && s->h[fslot].type == H_KERN)
        *func = (CUfunction)s->h[fslot].real; /* a kernel given as a function */
    rc = xl(s, ctx, H_CTX, 1);
    if (rc != CUDA_SUCCESS)
        return rc;
    int slot = fslot >= 0 ? fslot : kslot;
    if (slot < 0)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t len;
    if (vg_rd_u64(rd, &len) < 0 || len > (uint64_t)SESS_MAX_PARAMS * 256)
        return CUDA_ERROR_INVALID_VALUE;
    uint8_t *buf = NULL;
    if (len) {
        buf = vg_rd_dup(rd, t, len);
        if (!buf)
            return vg_rd_failed(rd);
    }
    *extra = NULL;
    return sess_params(s, slot, buf, len, t, kernel_params);
}

CUresult vg_mdec_CUDA_KERNEL_NODE_PARAMS(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t,
                                         CUDA_KERNEL_NODE_PARAMS *out)
{
    if (vg_rd_copy(rd, out, sizeof *out) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    return kernel_node(s, rd, t, &out->func, &out->kern, &out->ctx, &out->kernelParams, &out->extra);
}

/* ---- launch attributes -------------------------------------------------------------------- */

/* Checks one attribute value of a launch, stream or kernel node and translates the handles in it.
 * Attributes this table does not know are refused: a new one may carry a handle or an address. */
CUresult sess_check_launch_attr(struct vg_sess *s, CUlaunchAttributeID id, CUlaunchAttributeValue *v)
{
    switch (id) {
    case CU_LAUNCH_ATTRIBUTE_IGNORE:
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
    case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
        return CUDA_SUCCESS;
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW: {
        /* A cache hint about the session's own memory. */
        CUaccessPolicyWindow *w = &v->accessPolicyWindow;
        if (w->num_bytes && !sess_dev_ok(s, (uint64_t)(uintptr_t)w->base_ptr, w->num_bytes))
            return CUDA_ERROR_INVALID_VALUE;
        return CUDA_SUCCESS;
    }
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
        return xl(s, &v->programmaticEvent.event, H_EVENT, 0);
    case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT:
        return xl(s, &v->launchCompletionEvent.event, H_EVENT, 0);
    default:
        return CUDA_ERROR_NOT_SUPPORTED;
    }
}

void sess_out_launch_attr(struct vg_sess *s, CUlaunchAttributeID id, CUlaunchAttributeValue *v)
{
    if (id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT)
        xl_out(s, &v->programmaticEvent.event, H_EVENT);
    else if (id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT)
        xl_out(s, &v->launchCompletionEvent.event, H_EVENT);
    else if (id == CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE)
        v->deviceUpdatableKernelNode.devNode = NULL; /* a device-side handle, not the client's */
}

#define LAUNCH_ATTRS_MAX 64

/* The struct, then u64 count and the attributes. */
CUresult vg_mdec_CUlaunchConfig(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUlaunchConfig *out)
{
    if (vg_rd_copy(rd, out, sizeof *out) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = xl(s, &out->hStream, H_STREAM, 1);
    uint64_t n;
    if (rc == CUDA_SUCCESS)
        rc = rd_array(rd, t, sizeof *out->attrs, LAUNCH_ATTRS_MAX, (void **)&out->attrs, &n);
    if (rc == CUDA_SUCCESS && n != out->numAttrs)
        rc = CUDA_ERROR_INVALID_VALUE;
    for (uint64_t i = 0; rc == CUDA_SUCCESS && i < n; i++)
        rc = sess_check_launch_attr(s, out->attrs[i].id, &out->attrs[i].value);
    return rc;
}

/* ---- textures and surfaces --------------------------------------------------------------------- */

CUresult vg_mdec_CUDA_RESOURCE_DESC(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUDA_RESOURCE_DESC *out)
{
    (void)t;
    if (vg_rd_copy(rd, out, sizeof *out) < 0 || out->flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    switch (out->resType) {
    case CU_RESOURCE_TYPE_ARRAY:
        return xl(s, &out->res.array.hArray, H_ARRAY, 0);
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
        return xl(s, &out->res.mipmap.hMipmappedArray, H_MIPMAP, 0);
    case CU_RESOURCE_TYPE_LINEAR:
        return sess_dev_ok(s, out->res.linear.devPtr, out->res.linear.sizeInBytes) ? CUDA_SUCCESS
                                                                                   : CUDA_ERROR_INVALID_VALUE;
    case CU_RESOURCE_TYPE_PITCH2D: {
        vg_u128 row = (vg_u128)out->res.pitch2D.width * out->res.pitch2D.numChannels *
                      vg_format_bytes(out->res.pitch2D.format);
        return sess_dev_ok(s, out->res.pitch2D.devPtr, vg_span2d(out->res.pitch2D.pitchInBytes, row, out->res.pitch2D.height))
                   ? CUDA_SUCCESS
                   : CUDA_ERROR_INVALID_VALUE;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

void sess_out_resource_desc(struct vg_sess *s, CUDA_RESOURCE_DESC *d)
{
    if (d->resType == CU_RESOURCE_TYPE_ARRAY)
        xl_out(s, &d->res.array.hArray, H_ARRAY);
    else if (d->resType == CU_RESOURCE_TYPE_MIPMAPPED_ARRAY)
        xl_out(s, &d->res.mipmap.hMipmappedArray, H_MIPMAP);
}

/* ---- graph node parameters ----------------------------------------------------------------------- */

/* One node's parameters for the Set calls or, adding, for cuGraphAddNode (whose caller handles
 * the outputs of allocation and conditional nodes and a child graph moved into the node). */
CUresult sess_node_params(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUgraphNodeParams *p, int adding)
{
    if (vg_rd_copy(rd, p, sizeof *p) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc;
    switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL:
        return kernel_node(s, rd, t, &p->kernel.func, &p->kernel.kern, &p->kernel.ctx, &p->kernel.kernelParams,
                           &p->kernel.extra);
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        rc = xl(s, &p->memcpy.copyCtx, H_CTX, 1);
        p->memcpy.copyParams.srcHost = p->memcpy.copyParams.dstHost = NULL;
        return rc == CUDA_SUCCESS ? sess_check_memcpy3d(s, &p->memcpy.copyParams, 0) : rc;
    case CU_GRAPH_NODE_TYPE_MEMSET:
        rc = xl(s, &p->memset.ctx, H_CTX, 1);
        return rc == CUDA_SUCCESS ? check_memset(s, p->memset.dst, p->memset.pitch, p->memset.elementSize,
                                                 p->memset.width, p->memset.height)
                                  : rc;
    case CU_GRAPH_NODE_TYPE_GRAPH:
        /* Only a new node can take a graph over (cuGraphAddNode then hands the handle to it). */
        if (p->graph.ownership != CU_GRAPH_CHILD_GRAPH_OWNERSHIP_CLONE && !adding)
            return CUDA_ERROR_NOT_SUPPORTED;
        return xl(s, &p->graph.graph, H_GRAPH, 0);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return xl(s, &p->eventWait.event, H_EVENT, 0);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return xl(s, &p->eventRecord.event, H_EVENT, 0);
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
        return sess_dev_ok(s, p->free.dptr, 0) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_GRAPH_NODE_TYPE_BATCH_MEM_OP: {
        uint64_t n;
        rc = xl(s, &p->memOp.ctx, H_CTX, 1);
        if (rc == CUDA_SUCCESS)
            rc = rd_array(rd, t, sizeof *p->memOp.paramArray, MEMOPS_MAX, (void **)&p->memOp.paramArray, &n);
        if (rc == CUDA_SUCCESS && n != p->memOp.count)
            rc = CUDA_ERROR_INVALID_VALUE;
        return rc == CUDA_SUCCESS ? sess_check_memops(s, p->memOp.paramArray, n) : rc;
    }
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: {
        if (!adding)
            return CUDA_ERROR_NOT_SUPPORTED; /* fixed once added */
        uint64_t n;
        CUDA_MEM_ALLOC_NODE_PARAMS_v2 *a = &p->alloc;
        if (a->poolProps.win32SecurityAttributes)
            return CUDA_ERROR_INVALID_VALUE;
        rc = rd_array(rd, t, sizeof *a->accessDescs, 64, (void **)&a->accessDescs, &n);
        return rc == CUDA_SUCCESS && n != a->accessDescCount ? CUDA_ERROR_INVALID_VALUE : rc;
    }
    case CU_GRAPH_NODE_TYPE_CONDITIONAL:
        if (!adding)
            return CUDA_ERROR_NOT_SUPPORTED;
        /* The body graphs are the driver's: their handles come back (cuGraphAddNode). */
        p->conditional.phGraph_out = NULL;
        return xl(s, &p->conditional.ctx, H_CTX, 1);
    case CU_GRAPH_NODE_TYPE_EMPTY:
        return CUDA_SUCCESS;
    default: /* host functions, external semaphores: see protocol/cuda.calls' reasons */
        return CUDA_ERROR_NOT_SUPPORTED;
    }
}

CUresult vg_mdec_CUgraphNodeParams(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUgraphNodeParams *out)
{
    return sess_node_params(s, rd, t, out, 0);
}
