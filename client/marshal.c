/* The client half of the structures marshalled by hand; server/marshal.c decodes them. A
 * structure goes as its own bytes (handles are the session's ids already; pointer fields are
 * ignored by the server), then what its pointers point to, each array as a u64 count and its
 * elements. */
#include "marshal.h"

#include <stdlib.h>
#include <string.h>

/* The structure's bytes, then u64 n and n elements of esize bytes from array, as one owned
 * segment. */
static CUresult struct_and_array(struct vg_cw *c, const void *st, size_t st_size, const void *array,
                                 uint64_t n, size_t esize)
{
    if (n && !array)
        return CUDA_ERROR_INVALID_VALUE;
    if (n > ((uint64_t)1 << 20))
        return CUDA_ERROR_INVALID_VALUE;
    size_t len = st_size + sizeof n + (size_t)n * esize;
    uint8_t *b = malloc(len);
    if (b) {
        memcpy(b, st, st_size);
        memcpy(b + st_size, &n, sizeof n);
        if (n)
            memcpy(b + st_size + sizeof n, array, (size_t)n * esize);
    }
    vg_cw_in_owned(c, b, len);
    return CUDA_SUCCESS;
}

/* Kernel parameters: u64 length, then the buffer packed by the function's layout. */
static CUresult kernel_params(struct vg_cw *c, CUfunction func, CUkernel kern, void **params, void **extra)
{
    struct vg_params p;
    uint64_t fn = func ? (uint64_t)(uintptr_t)func : (uint64_t)(uintptr_t)kern;
    CUresult rc = vg_stub_pack_params(fn, params, extra, &p);
    if (rc == CUDA_SUCCESS) {
        uint8_t *b = malloc(sizeof(uint64_t) + p.len);
        if (b) {
            uint64_t n = p.len;
            memcpy(b, &n, sizeof n);
            if (p.len)
                memcpy(b + sizeof n, p.data, p.len);
        }
        vg_cw_in_owned(c, b, sizeof(uint64_t) + p.len);
    }
    vg_stub_params_free(&p);
    return rc;
}

/* A copy a graph makes runs on the server whenever the graph does: the client's host memory is
 * not there. */
CUresult vg_menc_CUDA_MEMCPY3D(struct vg_cw *c, const CUDA_MEMCPY3D *in)
{
    if (in->srcMemoryType == CU_MEMORYTYPE_HOST || in->dstMemoryType == CU_MEMORYTYPE_HOST)
        return CUDA_ERROR_NOT_SUPPORTED;
    vg_cw_in(c, in, sizeof *in);
    return CUDA_SUCCESS;
}

CUresult vg_menc_CUDA_MEMSET_NODE_PARAMS(struct vg_cw *c, const CUDA_MEMSET_NODE_PARAMS *in)
{
    vg_cw_in(c, in, sizeof *in);
    return CUDA_SUCCESS;
}

CUresult vg_menc_CUDA_KERNEL_NODE_PARAMS(struct vg_cw *c, const CUDA_KERNEL_NODE_PARAMS *in)
{
    vg_cw_in(c, in, sizeof *in);
    return kernel_params(c, in->func, in->kern, in->kernelParams, in->extra);
}

CUresult vg_menc_CUDA_BATCH_MEM_OP_NODE_PARAMS(struct vg_cw *c, const CUDA_BATCH_MEM_OP_NODE_PARAMS *in)
{
    return struct_and_array(c, in, sizeof *in, in->paramArray, in->count, sizeof *in->paramArray);
}

CUresult vg_menc_CUlaunchConfig(struct vg_cw *c, const CUlaunchConfig *in)
{
    return struct_and_array(c, in, sizeof *in, in->attrs, in->numAttrs, sizeof *in->attrs);
}

CUresult vg_menc_CUDA_RESOURCE_DESC(struct vg_cw *c, const CUDA_RESOURCE_DESC *in)
{
    vg_cw_in(c, in, sizeof *in);
    return CUDA_SUCCESS;
}

CUresult vg_menc_CUgraphNodeParams(struct vg_cw *c, const CUgraphNodeParams *in)
{
    switch (in->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL:
        vg_cw_in(c, in, sizeof *in);
        return kernel_params(c, in->kernel.func, in->kernel.kern, in->kernel.kernelParams, in->kernel.extra);
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        if (in->memcpy.copyParams.srcMemoryType == CU_MEMORYTYPE_HOST ||
            in->memcpy.copyParams.dstMemoryType == CU_MEMORYTYPE_HOST)
            return CUDA_ERROR_NOT_SUPPORTED;
        break;
    case CU_GRAPH_NODE_TYPE_BATCH_MEM_OP:
        return struct_and_array(c, in, sizeof *in, in->memOp.paramArray, in->memOp.count, sizeof *in->memOp.paramArray);
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC:
        return struct_and_array(c, in, sizeof *in, in->alloc.accessDescs, in->alloc.accessDescCount,
                                sizeof *in->alloc.accessDescs);
    case CU_GRAPH_NODE_TYPE_HOST:
    case CU_GRAPH_NODE_TYPE_EXT_SEMAS_SIGNAL:
    case CU_GRAPH_NODE_TYPE_EXT_SEMAS_WAIT:
        return CUDA_ERROR_NOT_SUPPORTED;
    default:
        break;
    }
    vg_cw_in(c, in, sizeof *in);
    return CUDA_SUCCESS;
}
