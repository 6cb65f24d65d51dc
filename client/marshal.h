/* The client half of the structures marshalled by hand (the server half is server/marshal.c;
 * protocol/README.md "Structures" says what travels). Each vg_menc_T appends the structure's
 * bulk segments to a call; the generated wrappers call them for the structures the list marks
 * manual. */
#ifndef VG_MARSHAL_H
#define VG_MARSHAL_H

#include <cuda.h>
#include <stdint.h>

#include "call.h"

CUresult vg_menc_CUDA_MEMCPY3D(struct vg_cw *c, const CUDA_MEMCPY3D *in);
CUresult vg_menc_CUDA_MEMSET_NODE_PARAMS(struct vg_cw *c, const CUDA_MEMSET_NODE_PARAMS *in);
CUresult vg_menc_CUDA_KERNEL_NODE_PARAMS(struct vg_cw *c, const CUDA_KERNEL_NODE_PARAMS *in);
CUresult vg_menc_CUDA_BATCH_MEM_OP_NODE_PARAMS(struct vg_cw *c, const CUDA_BATCH_MEM_OP_NODE_PARAMS *in);
CUresult vg_menc_CUlaunchConfig(struct vg_cw *c, const CUlaunchConfig *in);
CUresult vg_menc_CUDA_RESOURCE_DESC(struct vg_cw *c, const CUDA_RESOURCE_DESC *in);
CUresult vg_menc_CUgraphNodeParams(struct vg_cw *c, const CUgraphNodeParams *in);

/* A kernel's parameters packed by its layout (launch.c): data[0..len) is what goes on the wire;
 * heap is what packing allocated (vg_stub_params_free). */
struct vg_params {
    const void *data;
    size_t len;
    uint8_t *heap;
    int max_threads;      /* the function's CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
    uint8_t inline_buf[512];
};
/* From kernelParams or CU_LAUNCH_PARAM_BUFFER_POINTER extras, as cuLaunchKernel takes them. */
CUresult vg_stub_pack_params(uint64_t func, void **params, void **extra, struct vg_params *out);
void vg_stub_params_free(struct vg_params *p);
/* A function's (or kernel's) parameter offsets, n of them, from the cached layout. */
CUresult vg_stub_layout(uint64_t func, const uint32_t **offsets, size_t *n);

#endif
