/* Stream capture and graph calls written by hand (protocol/cuda.calls marks them manual): the
 * ones whose outputs are structures with handles, kernel parameters or arrays the driver owns,
 * and launch attributes. The simple graph calls are generated. Wire layouts: protocol/README.md,
 * "Calls written by hand"; the structures' own marshalling is client/marshal.c. */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "conn.h"
#include "marshal.h"
#include "stub.h"
#include "vg_gen.h"

/* Arrays the driver would own and the caller reads after the call (capture dependencies, kernel
 * parameters of a node, ...): kept per thread, valid until the same thread's next call of the
 * same function, as the driver's are valid until the next call that changes them. */
struct keep {
    void *p;
    size_t cap;
};
enum { KEEP_DEPS, KEEP_EDGES, KEEP_PARAMS, KEEP_PARAM_PTRS, KEEP_MEMOPS, KEEP_ACCESS, KEEP_N };
static __thread struct keep kept[KEEP_N];

static void *keep(int which, size_t bytes)
{
    struct keep *k = &kept[which];
    if (bytes > k->cap) {
        void *p = realloc(k->p, bytes);
        if (!p)
            return NULL;
        k->p = p;
        k->cap = bytes;
    }
    return k->p;
}

/* One call with a reply bulk of unknown length (a malloc'd buffer the caller frees). */
static CUresult call_var(unsigned call, const uint64_t *args, size_t nargs, const void *bulk, size_t bulk_len,
                         uint64_t *outs, size_t nouts, void **rb, uint64_t *rb_len)
{
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = args, .nargs = nargs, .bulk = bulk,
                       .bulk_len = bulk_len, .outs = outs, .nouts = nouts, .rbulk_alloc = rb,
                       .rbulk_alloc_len = rb_len};
    return vg_conn_call(&r);
}

/* A reply of a struct's bytes, u64 n and n elements of esize bytes: the struct into out, the
 * elements into this thread's keep buffer `which` (*array, NULL when none). */
static CUresult get_counted(unsigned call, uint64_t obj, void *out, size_t size, int which, size_t esize,
                            void **array)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    void *rb = NULL;
    uint64_t len = 0, n = 0;
    CUresult rc = call_var(call, ARGV(obj), 1, NULL, 0, NULL, 0, &rb, &len);
    if (rc == CUDA_SUCCESS && len >= size + 8)
        memcpy(&n, (uint8_t *)rb + size, 8);
    if (rc == CUDA_SUCCESS && (len < size + 8 || n > VG_MAX_ARRAY_BYTES / esize || len != size + 8 + n * esize))
        rc = CUDA_ERROR_UNKNOWN;
    void *a = NULL;
    if (rc == CUDA_SUCCESS && n && !(a = keep(which, (size_t)n * esize)))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc == CUDA_SUCCESS) {
        memcpy(out, rb, size);
        if (n)
            memcpy(a, (uint8_t *)rb + size + 8, (size_t)n * esize);
        *array = a;
    }
    free(rb);
    return rc;
}

/* ---- stream capture ---------------------------------------------------------------------------- */

static CUresult capture_info(CUstream st, int pt, CUstreamCaptureStatus *status, cuuint64_t *id, CUgraph *graph,
                             const CUgraphNode **deps, const CUgraphEdgeData **edges, size_t *ndeps)
{
    if (!status)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t o[5];
    void *rb = NULL;
    uint64_t rb_len = 0;
    CUresult rc = call_var(VG_CALL_cuStreamGetCaptureInfo_v3, ARGV(vg_stub_stream(st, pt)), 1, NULL, 0, o, 5, &rb,
                           &rb_len);
    if (rc == CUDA_SUCCESS) {
        size_t n = (size_t)o[3];
        size_t want = n * 8 + (o[4] ? n * sizeof(CUgraphEdgeData) : 0);
        void *d = n ? keep(KEEP_DEPS, n * 8) : NULL;
        void *e = n && o[4] ? keep(KEEP_EDGES, n * sizeof(CUgraphEdgeData)) : NULL;
        if (rb_len != want || (n && !d) || (n && o[4] && !e)) {
            rc = rb_len != want ? CUDA_ERROR_UNKNOWN : CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            if (n)
                memcpy(d, rb, n * 8);
            if (e)
                memcpy(e, (uint8_t *)rb + n * 8, n * sizeof(CUgraphEdgeData));
            *status = (CUstreamCaptureStatus)o[0];
            if (id)
                *id = o[1];
            if (graph)
                *graph = (CUgraph)(uintptr_t)o[2];
            if (deps)
                *deps = d;
            if (edges)
                *edges = e;
            if (ndeps)
                *ndeps = n;
        }
    }
    free(rb);
    return rc;
}

CUresult CUDAAPI cuStreamGetCaptureInfo_v3(CUstream st, CUstreamCaptureStatus *status, cuuint64_t *id,
                                           CUgraph *graph, const CUgraphNode **deps, const CUgraphEdgeData **edges,
                                           size_t *ndeps)
{
    return capture_info(st, 0, status, id, graph, deps, edges, ndeps);
}

CUresult CUDAAPI cuStreamGetCaptureInfo_v3_ptsz(CUstream st, CUstreamCaptureStatus *status, cuuint64_t *id,
                                                CUgraph *graph, const CUgraphNode **deps,
                                                const CUgraphEdgeData **edges, size_t *ndeps);
CUresult CUDAAPI cuStreamGetCaptureInfo_v3_ptsz(CUstream st, CUstreamCaptureStatus *status, cuuint64_t *id,
                                                CUgraph *graph, const CUgraphNode **deps,
                                                const CUgraphEdgeData **edges, size_t *ndeps)
{
    return capture_info(st, 1, status, id, graph, deps, edges, ndeps);
}

/* ---- graphs ------------------------------------------------------------------------------------ */

/* The server writes the DOT file on its side and sends the text; it is written to path here. */
CUresult CUDAAPI cuGraphDebugDotPrint(CUgraph g, const char *path, unsigned int flags)
{
    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    void *rb = NULL;
    uint64_t len = 0;
    CUresult rc = call_var(VG_CALL_cuGraphDebugDotPrint, ARGV((uint64_t)(uintptr_t)g, flags), 2, NULL, 0, NULL, 0,
                           &rb, &len);
    if (rc == CUDA_SUCCESS) {
        FILE *f = fopen(path, "wb");
        if (!f || (len && fwrite(rb, 1, (size_t)len, f) != len))
            rc = CUDA_ERROR_OPERATING_SYSTEM;
        if (f && fclose(f) != 0)
            rc = CUDA_ERROR_OPERATING_SYSTEM;
    }
    free(rb);
    return rc;
}

CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t ndeps,
                                        CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    if (!node || !p || (ndeps && !deps) || ndeps > VG_MAX_ARRAY_BYTES / 8)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->accessDescCount > 64 || (p->accessDescCount && !p->accessDescs) || p->poolProps.win32SecurityAttributes)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_cw c;
    uint64_t n = p->accessDescCount;
    vg_cw_init(&c, VG_CALL_cuGraphAddMemAllocNode);
    vg_cw_arg(&c, (uint64_t)(uintptr_t)g);
    vg_cw_arg(&c, ndeps);
    vg_cw_in(&c, deps, ndeps * 8);
    vg_cw_in(&c, p, sizeof *p);
    vg_cw_in(&c, &n, sizeof n);
    vg_cw_in(&c, p->accessDescs, (size_t)n * sizeof *p->accessDescs);
    CUresult rc = vg_cw_run(&c);
    if (rc == CUDA_SUCCESS) {
        *node = (CUgraphNode)(uintptr_t)c.outs[0];
        p->dptr = c.outs[1];
    }
    return rc;
}

CUresult CUDAAPI cuGraphMemAllocNodeGetParams(CUgraphNode node, CUDA_MEM_ALLOC_NODE_PARAMS *out)
{
    void *descs = NULL;
    CUresult rc = get_counted(VG_CALL_cuGraphMemAllocNodeGetParams, (uint64_t)(uintptr_t)node, out, sizeof *out,
                              KEEP_ACCESS, sizeof(CUmemAccessDesc), &descs);
    if (rc == CUDA_SUCCESS)
        out->accessDescs = descs;
    return rc;
}

CUresult CUDAAPI cuGraphAddNode_v2(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, const CUgraphEdgeData *edges,
                                   size_t ndeps, CUgraphNodeParams *p)
{
    if (!node || !p || (ndeps && !deps) || ndeps > VG_MAX_ARRAY_BYTES / 16)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->type == CU_GRAPH_NODE_TYPE_CONDITIONAL && (p->conditional.size == 0 || p->conditional.size > 8 ||
                                                      !p->conditional.phGraph_out))
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_cw c;
    vg_cw_init(&c, VG_CALL_cuGraphAddNode_v2);
    vg_cw_arg(&c, (uint64_t)(uintptr_t)g);
    vg_cw_arg(&c, ndeps);
    vg_cw_arg(&c, edges != NULL);
    vg_cw_in(&c, deps, ndeps * 8);
    if (edges)
        vg_cw_in(&c, edges, ndeps * sizeof *edges);
    CUresult rc = vg_menc_CUgraphNodeParams(&c, p);
    if (rc != CUDA_SUCCESS) {
        vg_cw_done(&c);
        return rc;
    }
    rc = vg_cw_run(&c);
    if (rc != CUDA_SUCCESS)
        return rc;
    *node = (CUgraphNode)(uintptr_t)c.outs[0];
    if (p->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC)
        p->alloc.dptr = c.outs[1];
    if (p->type == CU_GRAPH_NODE_TYPE_CONDITIONAL)
        for (unsigned i = 0; i < p->conditional.size && i + 1 < VG_CW_MAX_OUTS; i++)
            p->conditional.phGraph_out[i] = (CUgraph)(uintptr_t)c.outs[1 + i];
    return CUDA_SUCCESS;
}

/* Kernel node parameters come back as the struct, u64 length and the packed parameter buffer;
 * kernelParams points into this thread's copy of the buffer. */
CUresult CUDAAPI cuGraphKernelNodeGetParams_v2(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS *out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    void *rb = NULL;
    uint64_t len = 0, plen = 0;
    CUresult rc = call_var(VG_CALL_cuGraphKernelNodeGetParams_v2, ARGV((uint64_t)(uintptr_t)node), 1, NULL, 0, NULL,
                           0, &rb, &len);
    if (rc != CUDA_SUCCESS) {
        free(rb);
        return rc;
    }
    if (len < sizeof *out + 8 || (memcpy(&plen, (uint8_t *)rb + sizeof *out, 8), len != sizeof *out + 8 + plen)) {
        free(rb);
        return CUDA_ERROR_UNKNOWN;
    }
    memcpy(out, rb, sizeof *out);
    uint8_t *buf = keep(KEEP_PARAMS, plen ? (size_t)plen : 1);
    if (buf && plen)
        memcpy(buf, (uint8_t *)rb + sizeof *out + 8, (size_t)plen);
    free(rb);
    if (!buf)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t np = 0;
    const uint32_t *off = NULL;
    rc = vg_stub_layout(out->func ? (uint64_t)(uintptr_t)out->func : (uint64_t)(uintptr_t)out->kern, &off, &np);
    if (rc != CUDA_SUCCESS)
        return rc;
    void **ptrs = keep(KEEP_PARAM_PTRS, (np ? np : 1) * sizeof *ptrs);
    if (!ptrs)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < np; i++)
        ptrs[i] = buf + off[i];
    out->kernelParams = np ? ptrs : NULL;
    out->extra = NULL;
    return CUDA_SUCCESS;
}

/* A structure that comes back as its own bytes (ids already in place). */
static CUresult get_struct(unsigned call, uint64_t obj, void *out, size_t size)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = ARGV(obj), .nargs = 1, .rbulk = out,
                       .rbulk_len = size};
    return vg_conn_call(&r);
}

CUresult CUDAAPI cuGraphMemcpyNodeGetParams(CUgraphNode node, CUDA_MEMCPY3D *out)
{
    return get_struct(VG_CALL_cuGraphMemcpyNodeGetParams, (uint64_t)(uintptr_t)node, out, sizeof *out);
}

CUresult CUDAAPI cuGraphMemsetNodeGetParams(CUgraphNode node, CUDA_MEMSET_NODE_PARAMS *out)
{
    return get_struct(VG_CALL_cuGraphMemsetNodeGetParams, (uint64_t)(uintptr_t)node, out, sizeof *out);
}

CUresult CUDAAPI cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC *out, CUtexObject tex)
{
    return get_struct(VG_CALL_cuTexObjectGetResourceDesc, tex, out, sizeof *out);
}

CUresult CUDAAPI cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC *out, CUsurfObject surf)
{
    return get_struct(VG_CALL_cuSurfObjectGetResourceDesc, surf, out, sizeof *out);
}

CUresult CUDAAPI cuGraphBatchMemOpNodeGetParams(CUgraphNode node, CUDA_BATCH_MEM_OP_NODE_PARAMS *out)
{
    void *ops = NULL;
    CUresult rc = get_counted(VG_CALL_cuGraphBatchMemOpNodeGetParams, (uint64_t)(uintptr_t)node, out, sizeof *out,
                              KEEP_MEMOPS, sizeof(CUstreamBatchMemOpParams), &ops);
    if (rc == CUDA_SUCCESS)
        out->paramArray = ops;
    return rc;
}

static CUresult instantiate(CUgraphExec *exec, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p, int pt)
{
    if (!exec || !p)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_GRAPH_INSTANTIATE_PARAMS wire = *p;
    wire.hUploadStream = (CUstream)(uintptr_t)vg_stub_stream(p->hUploadStream, pt);
    uint64_t o[3];
    struct vg_rpc r = {.call = VG_CALL_cuGraphInstantiateWithParams, .ctx = vg_stub_ctx(),
                       .args = ARGV((uint64_t)(uintptr_t)g), .nargs = 1, .bulk = &wire, .bulk_len = sizeof wire,
                       .outs = o, .nouts = 3};
    CUresult rc = vg_conn_call(&r);
    if (rc == CUDA_SUCCESS)
        *exec = (CUgraphExec)(uintptr_t)o[0];
    p->hErrNode_out = (CUgraphNode)(uintptr_t)o[1];
    p->result_out = (CUgraphInstantiateResult)o[2];
    return rc;
}

CUresult CUDAAPI cuGraphInstantiateWithParams(CUgraphExec *exec, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    return instantiate(exec, g, p, 0);
}

CUresult CUDAAPI cuGraphInstantiateWithParams_ptsz(CUgraphExec *exec, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p);
CUresult CUDAAPI cuGraphInstantiateWithParams_ptsz(CUgraphExec *exec, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    return instantiate(exec, g, p, 1);
}

CUresult CUDAAPI cuGraphExecUpdate_v2(CUgraphExec exec, CUgraph g, CUgraphExecUpdateResultInfo *info)
{
    if (!info)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t o[3] = {0, 0, 0};
    CUresult rc = FWD(cuGraphExecUpdate_v2, o, 3, (uint64_t)(uintptr_t)exec, (uint64_t)(uintptr_t)g);
    info->result = (CUgraphExecUpdateResult)o[0];
    info->errorNode = (CUgraphNode)(uintptr_t)o[1];
    info->errorFromNode = (CUgraphNode)(uintptr_t)o[2];
    return rc;
}

/* ---- launch attributes of streams and kernel nodes ------------------------------------------------------- */

static CUresult attr_get(unsigned call, uint64_t obj, CUlaunchAttributeID id, CUlaunchAttributeValue *out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = ARGV(obj, (uint64_t)id), .nargs = 2,
                       .rbulk = out, .rbulk_len = sizeof *out};
    return vg_conn_call(&r);
}

static CUresult attr_set(unsigned call, uint64_t obj, CUlaunchAttributeID id, const CUlaunchAttributeValue *v)
{
    if (!v)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = ARGV(obj, (uint64_t)id), .nargs = 2,
                       .bulk = v, .bulk_len = sizeof *v};
    return vg_conn_call(&r);
}

CUresult CUDAAPI cuStreamGetAttribute(CUstream st, CUstreamAttrID id, CUstreamAttrValue *out)
{
    return attr_get(VG_CALL_cuStreamGetAttribute, vg_stub_stream(st, 0), id, out);
}

CUresult CUDAAPI cuStreamGetAttribute_ptsz(CUstream st, CUstreamAttrID id, CUstreamAttrValue *out);
CUresult CUDAAPI cuStreamGetAttribute_ptsz(CUstream st, CUstreamAttrID id, CUstreamAttrValue *out)
{
    return attr_get(VG_CALL_cuStreamGetAttribute, vg_stub_stream(st, 1), id, out);
}

CUresult CUDAAPI cuStreamSetAttribute(CUstream st, CUstreamAttrID id, const CUstreamAttrValue *v)
{
    return attr_set(VG_CALL_cuStreamSetAttribute, vg_stub_stream(st, 0), id, v);
}

CUresult CUDAAPI cuStreamSetAttribute_ptsz(CUstream st, CUstreamAttrID id, const CUstreamAttrValue *v);
CUresult CUDAAPI cuStreamSetAttribute_ptsz(CUstream st, CUstreamAttrID id, const CUstreamAttrValue *v)
{
    return attr_set(VG_CALL_cuStreamSetAttribute, vg_stub_stream(st, 1), id, v);
}

CUresult CUDAAPI cuGraphKernelNodeGetAttribute(CUgraphNode node, CUkernelNodeAttrID id, CUkernelNodeAttrValue *out)
{
    return attr_get(VG_CALL_cuGraphKernelNodeGetAttribute, (uint64_t)(uintptr_t)node, id, out);
}

CUresult CUDAAPI cuGraphKernelNodeSetAttribute(CUgraphNode node, CUkernelNodeAttrID id, const CUkernelNodeAttrValue *v)
{
    return attr_set(VG_CALL_cuGraphKernelNodeSetAttribute, (uint64_t)(uintptr_t)node, id, v);
}
