/* Hand-written handlers of stream capture and graphs (protocol/cuda.calls marks them manual):
 * the calls whose structures carry outputs the session must translate (node handles, kernel
 * parameters, allocations a graph makes), or arrays the driver owns. The simple graph calls are
 * generated. Wire layouts: protocol/README.md, "Calls written by hand". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session_priv.h"


/* The handle argument i of kind type. */
static CUresult harg(struct vg_sess *s, const struct vg_in *in, size_t i, int type, void *real, int *slot)
{
    int unused;
    if (i >= in->nargs)
        return CUDA_ERROR_INVALID_VALUE;
    return sess_harg(s, in->args[i], type, 0, (void **)real, slot ? slot : &unused);
}

/* The node argument of a Get call (args: node). */
static CUresult node_arg(struct vg_sess *s, const struct vg_in *in, CUgraphNode *node, int *slot)
{
    ARGS(1);
    return harg(s, in, 0, H_GNODE, node, slot);
}

/* In a node-parameters getter: NEED(fn), the node from args[0] (its slot in nslot), and the
 * driver's parameters in p (zeroed first); returns the error if either fails. */
#define NODE_PARAMS(fn, p, nslot)                                    \
    NEED(fn);                                                        \
    do {                                                             \
        CUgraphNode node_;                                           \
        memset(&(p), 0, sizeof(p));                                  \
        CUresult rc_ = node_arg(s, in, &node_, (nslot));             \
        if (rc_ == CUDA_SUCCESS)                                     \
            rc_ = s->drv->fn(node_, &(p));                           \
        if (rc_ != CUDA_SUCCESS)                                     \
            return rc_;                                              \
    } while (0)

/* Reply bulk: a struct's bytes, then (counted) u64 n and n elements of esize bytes. */
static CUresult reply_struct(struct vg_result *res, const void *st, size_t size, int counted, const void *array,
                             uint64_t n, size_t esize)
{
    if (n > VG_MAX_ARRAY_BYTES / (esize ? esize : 1))
        return CUDA_ERROR_INVALID_VALUE;
    uint8_t *b = vg_reply_bulk(res, size + (counted ? 8 + n * esize : 0));
    if (!b)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(b, st, size);
    if (counted) {
        memcpy(b + size, &n, 8);
        if (n)
            memcpy(b + size + 8, array, n * esize);
    }
    return CUDA_SUCCESS;
}

/* Reads n dependency node ids from the bulk (n bounded by the frame). */
static CUresult deps_arg(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, uint64_t n, CUgraphNode **deps)
{
    if (n > (VG_MAX_ARRAY_BYTES / 8))
        return CUDA_ERROR_INVALID_VALUE;
    return sess_harg_array(s, rd, H_GNODE, (size_t)n, t, (void **)deps);
}

/* Records a node the call created in graph slot g; its id (0 on ENOMEM). */
static uint64_t node_out(struct vg_sess *s, CUgraphNode node, int g)
{
    return sess_hout_get(s, H_GNODE, node, &g, 1);
}

/* ---- stream capture ------------------------------------------------------------------------- */

/* args: stream; outs: status, id, graph, count of dependencies, edge data present; reply bulk:
 * the dependencies' ids, then their edge data when present. */
VG_SERVER_CALL(cuStreamGetCaptureInfo_v3)
{
    NEED(cuStreamGetCaptureInfo);
    if (in->nargs != 1)
        return CUDA_ERROR_INVALID_VALUE;
    CUstream st;
    int slot;
    CUresult rc = sess_harg(s, in->args[0], H_STREAM, 0, (void **)&st, &slot);
    if (rc != CUDA_SUCCESS)
        return rc;
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    cuuint64_t id = 0;
    CUgraph graph = NULL;
    const CUgraphNode *deps = NULL;
    const CUgraphEdgeData *edges = NULL;
    size_t n = 0;
    rc = s->drv->cuStreamGetCaptureInfo(st, &status, &id, &graph, &deps, &edges, &n);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (n > VG_MAX_ARRAY_BYTES / 16)
        return CUDA_ERROR_INVALID_VALUE;
    sess_out(res, status);
    sess_out(res, id);
    sess_out(res, graph ? sess_hout_get(s, H_GRAPH, graph, NULL, 0) : 0);
    sess_out(res, n);
    sess_out(res, edges != NULL);
    uint8_t *b = vg_reply_bulk(res, n * 8 + (edges ? n * sizeof *edges : 0));
    if (!b)
        return CUDA_ERROR_OUT_OF_MEMORY;
    int gslot = graph ? sess_hfind_real(s, H_GRAPH, graph) : -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t nid = node_out(s, deps[i], gslot);
        memcpy(b + 8 * i, &nid, 8);
    }
    if (edges)
        memcpy(b + 8 * n, edges, n * sizeof *edges);
    return CUDA_SUCCESS;
}

/* ---- graphs ---------------------------------------------------------------------------------- */

/* args: graph, flags; reply bulk: the DOT text (written to a private file here, read back). */
VG_SERVER_CALL(cuGraphDebugDotPrint)
{
    NEED(cuGraphDebugDotPrint);
    if (in->nargs != 2)
        return CUDA_ERROR_INVALID_VALUE;
    CUgraph g;
    CUresult rc = harg(s, in, 0, H_GRAPH, &g, NULL);
    if (rc != CUDA_SUCCESS)
        return rc;
    char path[] = "/tmp/vgpu-dot-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return CUDA_ERROR_OPERATING_SYSTEM;
    rc = s->drv->cuGraphDebugDotPrint(g, path, (unsigned)in->args[1]);
    if (rc == CUDA_SUCCESS) {
        off_t len = lseek(fd, 0, SEEK_END);
        if (len < 0 || (uint64_t)len > s->max_bulk) {
            rc = CUDA_ERROR_INVALID_VALUE;
        } else {
            uint8_t *b = vg_reply_bulk(res, (uint64_t)len);
            if (!b || (len && pread(fd, b, (size_t)len, 0) != len))
                rc = b ? CUDA_ERROR_OPERATING_SYSTEM : CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    close(fd);
    unlink(path);
    return rc;
}

/* The memory a graph's allocation node holds is charged when the node is added, to the graph's
 * record (refunded when the graph goes); its addresses become the session's to use. */
static CUresult alloc_node_added(struct vg_sess *s, int gslot, CUdeviceptr p, size_t bytes, uint64_t charged, int dev)
{
    s->h[gslot].charged += charged;
    s->h[gslot].charge_dev = dev;
    return sess_global_add(s, p, bytes);
}

/* args: graph, dependency count; bulk: dependency ids, then the parameters (struct, u64 count,
 * access descriptions); outs: node, allocated address. */
VG_SERVER_CALL(cuGraphAddMemAllocNode)
{
    NEED(cuGraphAddMemAllocNode);
    if (in->nargs != 2)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_tmp t;
    struct vg_rd rd;
    vg_tmp_init(&t);
    vg_rd_init(&rd, in->bulk, in->bulk_len);
    CUgraph g;
    int gslot, dev = sess_cur_device(s), charged = 0;
    CUgraphNode *deps = NULL, node = NULL;
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    uint64_t n;
    CUresult rc = harg(s, in, 0, H_GRAPH, &g, &gslot);
    if (rc == CUDA_SUCCESS)
        rc = deps_arg(s, &rd, &t, in->args[1], &deps);
    if (rc == CUDA_SUCCESS && (vg_rd_copy(&rd, &p, sizeof p) < 0 || vg_rd_u64(&rd, &n) < 0 || n > 64 ||
                               n != p.accessDescCount || p.poolProps.win32SecurityAttributes))
        rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS && n) {
        p.accessDescs = vg_rd_dup(&rd, &t, n * sizeof *p.accessDescs);
        if (!p.accessDescs)
            rc = vg_rd_failed(&rd);
    }
    if (rc == CUDA_SUCCESS && !vg_rd_done(&rd))
        rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS && p.bytesize > VG_MAX_CHARGE)
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc == CUDA_SUCCESS)
        rc = sess_mem_charge(s, dev, p.bytesize);
    charged = rc == CUDA_SUCCESS;
    if (rc == CUDA_SUCCESS)
        rc = s->drv->cuGraphAddMemAllocNode(&node, g, deps, (size_t)in->args[1], &p);
    if (rc == CUDA_SUCCESS) {
        charged = 0;
        rc = alloc_node_added(s, gslot, p.dptr, p.bytesize, p.bytesize, dev);
    }
    if (rc == CUDA_SUCCESS) {
        sess_out(res, node_out(s, node, gslot));
        sess_out(res, p.dptr);
    }
    if (charged)
        sess_mem_refund(s, dev, p.bytesize);
    vg_tmp_free(&t);
    return rc;
}

/* args: node; reply bulk: the parameters, u64 count and the access descriptions. */
VG_SERVER_CALL(cuGraphMemAllocNodeGetParams)
{
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    NODE_PARAMS(cuGraphMemAllocNodeGetParams, p, NULL);
    const CUmemAccessDesc *descs = p.accessDescs;
    uint64_t n = descs ? p.accessDescCount : 0;
    p.accessDescs = NULL;
    return n > 64 ? CUDA_ERROR_INVALID_VALUE : reply_struct(res, &p, sizeof p, 1, descs, n, sizeof *descs);
}

/* args: graph, dependency count, edge data present; bulk: dependency ids, edge data, then the
 * node's parameters (server/marshal.c); outs: node, then an allocation node's address or a
 * conditional node's body graphs. */
VG_SERVER_CALL(cuGraphAddNode_v2)
{
    NEED(cuGraphAddNode);
    if (in->nargs != 3)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_tmp t;
    struct vg_rd rd;
    vg_tmp_init(&t);
    vg_rd_init(&rd, in->bulk, in->bulk_len);
    CUgraph g;
    int gslot, child_slot = -1, dev = sess_cur_device(s), charged = 0;
    CUgraphNode *deps = NULL, node = NULL;
    CUgraphEdgeData *edges = NULL;
    CUgraph bodies[8];
    CUgraphNodeParams p;
    uint64_t n = in->args[1];
    CUresult rc = harg(s, in, 0, H_GRAPH, &g, &gslot);
    if (rc == CUDA_SUCCESS)
        rc = deps_arg(s, &rd, &t, n, &deps);
    if (rc == CUDA_SUCCESS && in->args[2] && n) {
        edges = vg_rd_dup(&rd, &t, n * sizeof *edges);
        if (!edges)
            rc = vg_rd_failed(&rd);
    }
    if (rc == CUDA_SUCCESS)
        rc = sess_node_params(s, &rd, &t, &p, 1);
    /* A child graph moved into the node is the node's from then on. */
    if (rc == CUDA_SUCCESS && p.type == CU_GRAPH_NODE_TYPE_GRAPH &&
        p.graph.ownership == CU_GRAPH_CHILD_GRAPH_OWNERSHIP_MOVE)
        child_slot = sess_hfind_real(s, H_GRAPH, p.graph.graph);
    if (rc == CUDA_SUCCESS && !vg_rd_done(&rd))
        rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS && p.type == CU_GRAPH_NODE_TYPE_CONDITIONAL) {
        if (p.conditional.size == 0 || p.conditional.size > sizeof bodies / sizeof bodies[0])
            rc = CUDA_ERROR_INVALID_VALUE;
        memset(bodies, 0, sizeof bodies);
        p.conditional.phGraph_out = bodies;
    }
    if (rc == CUDA_SUCCESS && p.type == CU_GRAPH_NODE_TYPE_MEM_ALLOC) {
        rc = p.alloc.bytesize > VG_MAX_CHARGE ? CUDA_ERROR_OUT_OF_MEMORY : sess_mem_charge(s, dev, p.alloc.bytesize);
        charged = rc == CUDA_SUCCESS;
    }
    if (rc == CUDA_SUCCESS)
        rc = s->drv->cuGraphAddNode(&node, g, deps, edges, (size_t)n, &p);
    if (rc == CUDA_SUCCESS) {
        uint64_t nid = node_out(s, node, gslot);
        sess_out(res, nid);
        if (p.type == CU_GRAPH_NODE_TYPE_MEM_ALLOC) {
            charged = 0;
            rc = alloc_node_added(s, gslot, p.alloc.dptr, p.alloc.bytesize, p.alloc.bytesize, dev);
            sess_out(res, p.alloc.dptr);
        } else if (p.type == CU_GRAPH_NODE_TYPE_CONDITIONAL) {
            int ns = sess_hfind_real(s, H_GNODE, node);
            for (unsigned i = 0; i < p.conditional.size; i++)
                sess_out(res, bodies[i] ? sess_hout_get(s, H_GRAPH, bodies[i], &ns, 1) : 0);
        } else if (child_slot >= 0) {
            s->h[child_slot].owned = 0;
            sess_set_parent(s, (uint32_t)child_slot, sess_hfind_real(s, H_GNODE, node));
        }
    }
    if (charged)
        sess_mem_refund(s, dev, p.alloc.bytesize);
    vg_tmp_free(&t);
    return rc;
}

/* Kernel node parameters as the client sees them: the struct with ids, then u64 length and the
 * parameter buffer packed by the function's layout. */
static CUresult kernel_params_out(struct vg_sess *s, struct vg_result *res, CUDA_KERNEL_NODE_PARAMS *p, int gslot)
{
    CUfunction f = p->func;
    int fslot = -1;
    if (f) {
        uint64_t fid = sess_hout_get(s, H_FUNC, f, &gslot, 1);
        fslot = sess_hfind_real(s, H_FUNC, f);
        p->func = (CUfunction)(uintptr_t)fid;
    }
    if (p->kern) {
        uint64_t kid = sess_hout_get(s, H_KERN, p->kern, NULL, 0);
        if (fslot < 0) {
            fslot = sess_hfind_real(s, H_KERN, p->kern);
            if (s->drv->cuKernelGetFunction)
                s->drv->cuKernelGetFunction(&f, p->kern);
        }
        p->kern = (CUkernel)(uintptr_t)kid;
    }
    if (p->ctx) {
        int c = sess_hfind_real(s, H_CTX, p->ctx);
        p->ctx = c >= 0 ? (CUcontext)(uintptr_t)sess_hid(s, (uint32_t)c) : NULL;
    }
    if (fslot < 0)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult rc = sess_load_layout(s, fslot, f);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct handle *e = &s->h[fslot];
    uint8_t *b = vg_reply_bulk(res, sizeof *p + 8 + e->param_bytes);
    if (!b)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t len = e->param_bytes;
    memcpy(b + sizeof *p, &len, 8);
    for (int k = 0; k < e->nparams && p->kernelParams; k++)
        if (p->kernelParams[k])
            memcpy(b + sizeof *p + 8 + e->param_off[k], p->kernelParams[k], e->param_size[k]);
    p->kernelParams = NULL;
    p->extra = NULL;
    memcpy(b, p, sizeof *p);
    return CUDA_SUCCESS;
}

/* args: node; reply bulk: the parameters (see kernel_params_out). */
VG_SERVER_CALL(cuGraphKernelNodeGetParams_v2)
{
    CUDA_KERNEL_NODE_PARAMS p;
    int nslot;
    NODE_PARAMS(cuGraphKernelNodeGetParams, p, &nslot);
    int gslot = s->h[nslot].parent ? (int)s->h[nslot].parent - 1 : -1;
    return kernel_params_out(s, res, &p, gslot);
}

/* args: node; reply bulk: the copy's parameters (arrays as ids). */
VG_SERVER_CALL(cuGraphMemcpyNodeGetParams)
{
    CUDA_MEMCPY3D p;
    NODE_PARAMS(cuGraphMemcpyNodeGetParams, p, NULL);
    if (p.srcArray)
        p.srcArray = (CUarray)(uintptr_t)sess_hout_get(s, H_ARRAY, p.srcArray, NULL, 0);
    if (p.dstArray)
        p.dstArray = (CUarray)(uintptr_t)sess_hout_get(s, H_ARRAY, p.dstArray, NULL, 0);
    p.srcHost = p.dstHost = NULL;
    return reply_struct(res, &p, sizeof p, 0, NULL, 0, 0);
}

/* args: node; reply bulk: the memset's parameters. */
VG_SERVER_CALL(cuGraphMemsetNodeGetParams)
{
    CUDA_MEMSET_NODE_PARAMS p;
    NODE_PARAMS(cuGraphMemsetNodeGetParams, p, NULL);
    return reply_struct(res, &p, sizeof p, 0, NULL, 0, 0);
}

/* args: node; reply bulk: the struct (context as an id), u64 count and the operations. */
VG_SERVER_CALL(cuGraphBatchMemOpNodeGetParams)
{
    CUDA_BATCH_MEM_OP_NODE_PARAMS p;
    NODE_PARAMS(cuGraphBatchMemOpNodeGetParams, p, NULL);
    const CUstreamBatchMemOpParams *ops = p.paramArray;
    uint64_t n = ops ? p.count : 0;
    int c = p.ctx ? sess_hfind_real(s, H_CTX, p.ctx) : -1;
    p.ctx = c >= 0 ? (CUcontext)(uintptr_t)sess_hid(s, (uint32_t)c) : NULL;
    p.paramArray = NULL;
    return reply_struct(res, &p, sizeof p, 1, ops, n, sizeof *ops);
}

/* args: graph; bulk: the instantiation parameters (upload stream as an id); outs: the
 * executable graph, the node that failed (id), the result. */
VG_SERVER_CALL(cuGraphInstantiateWithParams)
{
    NEED(cuGraphInstantiateWithParams);
    if (in->nargs != 1)
        return CUDA_ERROR_INVALID_VALUE;
    CUgraph g;
    int gslot, sslot;
    CUDA_GRAPH_INSTANTIATE_PARAMS p;
    void *real;
    CUresult rc = harg(s, in, 0, H_GRAPH, &g, &gslot);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (in->bulk_len != sizeof p)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(&p, in->bulk, sizeof p);
    rc = sess_harg(s, (uint64_t)(uintptr_t)p.hUploadStream, H_STREAM, 1, &real, &sslot);
    if (rc != CUDA_SUCCESS)
        return rc;
    p.hUploadStream = real;
    p.hErrNode_out = NULL;
    CUgraphExec exec = NULL;
    rc = s->drv->cuGraphInstantiateWithParams(&exec, g, &p);
    uint64_t id = 0;
    if (rc == CUDA_SUCCESS) {
        id = sess_hout_new(s, H_GEXEC, exec, 0, 0);
        if (!id) {
            s->drv->cuGraphExecDestroy(exec);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    sess_out(res, id);
    sess_out(res, p.hErrNode_out ? node_out(s, p.hErrNode_out, gslot) : 0);
    sess_out(res, p.result_out);
    return rc;
}

/* args: executable graph, graph; outs: update result, error node, error-from node (ids). */
VG_SERVER_CALL(cuGraphExecUpdate_v2)
{
    NEED(cuGraphExecUpdate);
    if (in->nargs != 2)
        return CUDA_ERROR_INVALID_VALUE;
    CUgraphExec exec;
    CUgraph g;
    int gslot;
    CUresult rc = harg(s, in, 0, H_GEXEC, &exec, NULL);
    if (rc == CUDA_SUCCESS)
        rc = harg(s, in, 1, H_GRAPH, &g, &gslot);
    if (rc != CUDA_SUCCESS)
        return rc;
    CUgraphExecUpdateResultInfo info;
    memset(&info, 0, sizeof info);
    rc = s->drv->cuGraphExecUpdate(exec, g, &info);
    sess_out(res, info.result);
    sess_out(res, info.errorNode ? node_out(s, info.errorNode, gslot) : 0);
    sess_out(res, info.errorFromNode ? sess_hout_get(s, H_GNODE, info.errorFromNode, NULL, 0) : 0);
    return rc;
}

/* ---- launch attributes of streams and kernel nodes ---------------------------------------------------------- */

/* args: stream or node, attribute; bulk (Set): the value; reply bulk (Get): the value. */
static CUresult attr_call(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int node, int set)
{
    if (in->nargs != 2)
        return CUDA_ERROR_INVALID_VALUE;
    void *obj;
    CUresult rc = harg(s, in, 0, node ? H_GNODE : H_STREAM, &obj, NULL);
    if (rc != CUDA_SUCCESS)
        return rc;
    CUlaunchAttributeID id = (CUlaunchAttributeID)in->args[1];
    CUlaunchAttributeValue v;
    memset(&v, 0, sizeof v);
    const struct vg_drv *d = s->drv;
    if (set) {
        if (in->bulk_len != sizeof v)
            return CUDA_ERROR_INVALID_VALUE;
        memcpy(&v, in->bulk, sizeof v);
        rc = sess_check_launch_attr(s, id, &v);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (node)
            return d->cuGraphKernelNodeSetAttribute ? d->cuGraphKernelNodeSetAttribute(obj, id, &v)
                                                    : CUDA_ERROR_NOT_SUPPORTED;
        return d->cuStreamSetAttribute ? d->cuStreamSetAttribute(obj, id, &v) : CUDA_ERROR_NOT_SUPPORTED;
    }
    if (node)
        rc = d->cuGraphKernelNodeGetAttribute ? d->cuGraphKernelNodeGetAttribute(obj, id, &v) : CUDA_ERROR_NOT_SUPPORTED;
    else
        rc = d->cuStreamGetAttribute ? d->cuStreamGetAttribute(obj, id, &v) : CUDA_ERROR_NOT_SUPPORTED;
    if (rc != CUDA_SUCCESS)
        return rc;
    sess_out_launch_attr(s, id, &v);
    return reply_struct(res, &v, sizeof v, 0, NULL, 0, 0);
}

VG_SERVER_CALL(cuStreamGetAttribute)
{
    return attr_call(s, in, res, 0, 0);
}

VG_SERVER_CALL(cuStreamSetAttribute)
{
    return attr_call(s, in, res, 0, 1);
}

VG_SERVER_CALL(cuGraphKernelNodeGetAttribute)
{
    return attr_call(s, in, res, 1, 0);
}

VG_SERVER_CALL(cuGraphKernelNodeSetAttribute)
{
    return attr_call(s, in, res, 1, 1);
}

/* ---- texture and surface objects -------------------------------------------------------------- */

/* args: the object (its value); reply bulk: its resource description (handles as ids). */
static CUresult resource_desc(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int surf)
{
    if (in->nargs != 1)
        return CUDA_ERROR_INVALID_VALUE;
    void *obj;
    CUresult rc = harg(s, in, 0, surf ? H_SURFOBJ : H_TEXOBJ, &obj, NULL);
    if (rc != CUDA_SUCCESS)
        return rc;
    CUDA_RESOURCE_DESC d;
    memset(&d, 0, sizeof d);
    if (surf)
        rc = s->drv->cuSurfObjectGetResourceDesc ? s->drv->cuSurfObjectGetResourceDesc(&d, (CUsurfObject)(uintptr_t)obj)
                                                 : CUDA_ERROR_NOT_SUPPORTED;
    else
        rc = s->drv->cuTexObjectGetResourceDesc ? s->drv->cuTexObjectGetResourceDesc(&d, (CUtexObject)(uintptr_t)obj)
                                                : CUDA_ERROR_NOT_SUPPORTED;
    if (rc != CUDA_SUCCESS)
        return rc;
    sess_out_resource_desc(s, &d);
    return reply_struct(res, &d, sizeof d, 0, NULL, 0, 0);
}

VG_SERVER_CALL(cuTexObjectGetResourceDesc)
{
    return resource_desc(s, in, res, 0);
}

VG_SERVER_CALL(cuSurfObjectGetResourceDesc)
{
    return resource_desc(s, in, res, 1);
}
