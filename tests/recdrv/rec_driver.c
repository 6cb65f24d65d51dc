/* The recording driver's runtime and the functions gpu-server relies on for more than a log line
 * (contexts it makes current, parameter layouts, images, allocations, structures it reads back).
 * Every other function is generated (cuapi_rec.c) and only logs and writes patterned outputs. */
#include <cuda.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rec.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static int log_fd = -1;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static uint64_t next_handle = 0x10000000;
static uint64_t next_addr = 0x7e0000000000ull;
static __thread void *current_ctx;

static void open_log(void)
{
    const char *path = getenv("VGPU_REC_LOG");
    if (path)
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

void rec_end(struct rec_line *l)
{
    pthread_once(&log_once, open_log);
    if (log_fd < 0)
        return;
    char line[sizeof l->buf + 16];
    int n = snprintf(line, sizeof line, "%s%s\n", l->buf, l->overflow ? " (truncated)" : "");
    if (n > 0 && write(log_fd, line, (size_t)n) < 0)
        return;
}

void rec_name_only(const char *name)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_sep(&l);
    rec_end(&l);
}

void *rec_new_handle(int salt)
{
    uint64_t v = __atomic_fetch_add(&next_handle, 0x100, __ATOMIC_RELAXED);
    return (void *)(uintptr_t)(v + (uint64_t)(salt & 0xff));
}

CUdeviceptr rec_alloc(uint64_t bytes)
{
    uint64_t step = (bytes + 0xfff) & ~(uint64_t)0xfff;
    if (step == 0 || step > ((uint64_t)1 << 40))
        step = 0x1000;
    return __atomic_fetch_add(&next_addr, step, __ATOMIC_RELAXED);
}

void *rec_current_ctx(void)
{
    return current_ctx;
}

void rec_strbuf(struct rec_line *l, char *buf, long long len)
{
    if (len > 0) {
        snprintf(buf, (size_t)len, "rec-name");
        rec_str(l, buf);
    }
}

/* ---- contexts ---------------------------------------------------------------------------- */

/* gpu-server registers its copy buffers when the driver lets it (server/sess_copy.c) and then
 * copies with cuMemcpy; this driver does not, so copies arrive as the calls the client made. */
CUresult CUDAAPI cuMemHostRegister_v2(void *p, size_t bytes, unsigned int flags)
{
    (void)p, (void)bytes, (void)flags;
    rec_name_only("cuMemHostRegister_v2");
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* Answered in the stub (no wire call), but gpu-server asks it for the NVML stub. */
CUresult CUDAAPI cuDriverGetVersion(int *v)
{
    struct rec_line l;
    rec_begin(&l, "cuDriverGetVersion");
    rec_o(&l, v);
    rec_sep(&l);
    if (v) {
        *v = 13000;
        rec_u64(&l, 13000);
    }
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuInit(unsigned int flags)
{
    struct rec_line l;
    rec_begin(&l, "cuInit");
    rec_u64(&l, flags);
    rec_sep(&l);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *p, unsigned int flags, CUdevice dev)
{
    struct rec_line l;
    rec_begin(&l, "cuCtxCreate_v4");
    rec_o(&l, p);
    rec_u64(&l, flags);
    rec_u64(&l, (uint64_t)(int64_t)dev);
    rec_sep(&l);
    *pctx = rec_new_handle(0xc);
    rec_ptr(&l, (uint64_t)(uintptr_t)*pctx);
    rec_end(&l);
    current_ctx = *pctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxFromGreenCtx(CUcontext *pctx, CUgreenCtx g)
{
    struct rec_line l;
    rec_begin(&l, "cuCtxFromGreenCtx");
    rec_ptr(&l, (uint64_t)(uintptr_t)g);
    rec_sep(&l);
    *pctx = rec_new_handle(0xd);
    rec_ptr(&l, (uint64_t)(uintptr_t)*pctx);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
    current_ctx = ctx; /* not logged: gpu-server sets the context before every call */
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    *pctx = current_ctx;
    return CUDA_SUCCESS;
}

/* ---- memory ----------------------------------------------------------------------------------- */

CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    struct rec_line l;
    rec_begin(&l, "cuMemAllocManaged");
    rec_u64(&l, bytes);
    rec_u64(&l, flags);
    rec_sep(&l);
    *dptr = rec_alloc(bytes);
    rec_ptr(&l, *dptr);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t w, size_t h, unsigned int esz)
{
    struct rec_line l;
    rec_begin(&l, "cuMemAllocPitch_v2");
    rec_u64(&l, w);
    rec_u64(&l, h);
    rec_u64(&l, esz);
    rec_sep(&l);
    *pitch = (w + 255) & ~(size_t)255;
    *dptr = rec_alloc(*pitch * h);
    rec_ptr(&l, *dptr);
    rec_u64(&l, *pitch);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *p, size_t size, size_t align, CUdeviceptr addr, unsigned long long flags)
{
    struct rec_line l;
    rec_begin(&l, "cuMemAddressReserve");
    rec_u64(&l, size);
    rec_u64(&l, align);
    rec_ptr(&l, addr);
    rec_u64(&l, flags);
    rec_sep(&l);
    *p = rec_alloc(size);
    rec_ptr(&l, *p);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attr, CUdeviceptr p)
{
    struct rec_line l;
    rec_begin(&l, "cuPointerGetAttribute");
    rec_u64(&l, attr);
    rec_ptr(&l, p);
    rec_sep(&l);
    uint64_t v = rec_out_value("cuPointerGetAttribute", (int)attr);
    if (attr == CU_POINTER_ATTRIBUTE_MEMORY_TYPE)
        v = CU_MEMORYTYPE_DEVICE;
    else if (attr == CU_POINTER_ATTRIBUTE_CONTEXT)
        v = (uint64_t)(uintptr_t)current_ctx;
    memcpy(data, &v, sizeof v);
    rec_u64(&l, v);
    rec_end(&l);
    return CUDA_SUCCESS;
}

static CUresult htod(const char *name, CUdeviceptr dst, const void *src, size_t n)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_ptr(&l, dst);
    rec_bytes(&l, src, n < 256 ? n : 256);
    rec_u64(&l, n);
    rec_sep(&l);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
    return htod("cuMemcpyHtoD_v2", dst, src, n);
}

CUresult CUDAAPI cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
    (void)s;
    return htod("cuMemcpyHtoDAsync_v2", dst, src, n);
}

static CUresult dtoh(const char *name, void *dst, CUdeviceptr src, size_t n)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_ptr(&l, src);
    rec_u64(&l, n);
    rec_sep(&l);
    rec_fill(dst, n, 1);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
    return dtoh("cuMemcpyDtoH_v2", dst, src, n);
}

CUresult CUDAAPI cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s)
{
    (void)s;
    return dtoh("cuMemcpyDtoHAsync_v2", dst, src, n);
}

/* A 3-D copy as the driver got it: types, device addresses, arrays, extents; a host source's
 * bytes; a host destination gets the pattern of output 1. */
static void copy3d_line(const char *name, const CUDA_MEMCPY3D *c, CUcontext sctx, CUcontext dctx)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_u64(&l, c->srcMemoryType);
    rec_ptr(&l, c->srcDevice);
    rec_ptr(&l, (uint64_t)(uintptr_t)c->srcArray);
    rec_u64(&l, c->dstMemoryType);
    rec_ptr(&l, c->dstDevice);
    rec_ptr(&l, (uint64_t)(uintptr_t)c->dstArray);
    rec_u64(&l, c->WidthInBytes);
    rec_u64(&l, c->Height);
    rec_u64(&l, c->Depth);
    rec_ptr(&l, (uint64_t)(uintptr_t)sctx);
    rec_ptr(&l, (uint64_t)(uintptr_t)dctx);
    size_t w = c->WidthInBytes, h = c->Height, d = c->Depth;
    if (c->srcMemoryType == CU_MEMORYTYPE_HOST && w && h && d)
        rec_bytes(&l, c->srcHost, (d - 1) * c->srcPitch * c->srcHeight + (h - 1) * c->srcPitch + w);
    if (c->dstMemoryType == CU_MEMORYTYPE_HOST && w && h && d)
        for (size_t z = 0; z < d; z++)
            for (size_t y = 0; y < h; y++)
                rec_fill((uint8_t *)c->dstHost + z * c->dstPitch * c->dstHeight + y * c->dstPitch, w, 1);
    rec_sep(&l);
    rec_end(&l);
}

CUresult CUDAAPI cuMemcpy3D_v2(const CUDA_MEMCPY3D *c)
{
    copy3d_line("cuMemcpy3D_v2", c, NULL, NULL);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *c, CUstream s)
{
    (void)s;
    copy3d_line("cuMemcpy3DAsync_v2", c, NULL, NULL);
    return CUDA_SUCCESS;
}

static void peer_line(const char *name, const CUDA_MEMCPY3D_PEER *p)
{
    CUDA_MEMCPY3D c = {.srcMemoryType = p->srcMemoryType, .srcDevice = p->srcDevice, .srcArray = p->srcArray,
                       .srcHost = p->srcHost, .srcPitch = p->srcPitch, .srcHeight = p->srcHeight,
                       .dstMemoryType = p->dstMemoryType, .dstDevice = p->dstDevice, .dstArray = p->dstArray,
                       .dstHost = p->dstHost, .dstPitch = p->dstPitch, .dstHeight = p->dstHeight,
                       .WidthInBytes = p->WidthInBytes, .Height = p->Height, .Depth = p->Depth};
    copy3d_line(name, &c, p->srcContext, p->dstContext);
}

CUresult CUDAAPI cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER *p)
{
    peer_line("cuMemcpy3DPeer", p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER *p, CUstream s)
{
    (void)s;
    peer_line("cuMemcpy3DPeerAsync", p);
    return CUDA_SUCCESS;
}

/* ---- modules and kernels ---------------------------------------------------------------------------------------------------------------- */

static CUresult image(const char *name, void **out, const void *img)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_str(&l, (const char *)img); /* the tests load a one-word PTX text */
    rec_sep(&l);
    *out = rec_new_handle(0x3);
    rec_ptr(&l, (uint64_t)(uintptr_t)*out);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoadData(CUmodule *m, const void *img)
{
    return image("cuModuleLoadData", (void **)m, img);
}

CUresult CUDAAPI cuLibraryLoadData(CUlibrary *lib, const void *code, CUjit_option *jo, void **jv, unsigned int njo,
                                   CUlibraryOption *lo, void **lv, unsigned int nlo)
{
    (void)jo, (void)jv, (void)njo, (void)lo, (void)lv, (void)nlo;
    return image("cuLibraryLoadData", (void **)lib, code);
}

/* Every function takes a u64 and a u32: offsets 0 and 8. */
CUresult CUDAAPI cuFuncGetParamInfo(CUfunction f, size_t i, size_t *off, size_t *size)
{
    (void)f;
    if (i > 1)
        return CUDA_ERROR_INVALID_VALUE;
    *off = i * 8;
    *size = i ? 4 : 8;
    return CUDA_SUCCESS;
}

static void params_line(struct rec_line *l, void **params)
{
    rec_bytes(l, params ? params[0] : NULL, 8);
    rec_bytes(l, params ? params[1] : NULL, 4);
}

static CUresult launch_line(const char *name, CUfunction f, unsigned gx, unsigned bx, unsigned shmem, CUstream s,
                            void **params)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_ptr(&l, (uint64_t)(uintptr_t)f);
    rec_u64(&l, gx);
    rec_u64(&l, bx);
    rec_u64(&l, shmem);
    rec_ptr(&l, (uint64_t)(uintptr_t)s);
    params_line(&l, params);
    rec_sep(&l);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                unsigned bz, unsigned shmem, CUstream s, void **params, void **extra)
{
    (void)gy, (void)gz, (void)by, (void)bz, (void)extra;
    return launch_line("cuLaunchKernel", f, gx, bx, shmem, s, params);
}

CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                           unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params)
{
    (void)gy, (void)gz, (void)by, (void)bz;
    return launch_line("cuLaunchCooperativeKernel", f, gx, bx, shmem, s, params);
}

/* The configuration's stream and attributes (id and the event of a completion event). */
CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    (void)extra;
    struct rec_line l;
    rec_begin(&l, "cuLaunchKernelEx");
    rec_ptr(&l, (uint64_t)(uintptr_t)f);
    rec_u64(&l, c->gridDimX);
    rec_ptr(&l, (uint64_t)(uintptr_t)c->hStream);
    rec_u64(&l, c->numAttrs);
    for (unsigned i = 0; i < c->numAttrs; i++) {
        rec_u64(&l, c->attrs[i].id);
        if (c->attrs[i].id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT)
            rec_ptr(&l, (uint64_t)(uintptr_t)c->attrs[i].value.launchCompletionEvent.event);
    }
    params_line(&l, params);
    rec_sep(&l);
    rec_end(&l);
    return CUDA_SUCCESS;
}

static CUresult name_of(const char *fn, const void *h, const char **name)
{
    struct rec_line l;
    rec_begin(&l, fn);
    rec_ptr(&l, (uint64_t)(uintptr_t)h);
    rec_sep(&l);
    *name = "rec_kernel_name_longer_than_any_fixed_buffer_would_be_if_it_went_on_and_on";
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction f)
{
    return name_of("cuFuncGetName", f, name);
}

CUresult CUDAAPI cuKernelGetName(const char **name, CUkernel k)
{
    return name_of("cuKernelGetName", k, name);
}

/* ---- the linker ---------------------------------------------------------------------------------- */

CUresult CUDAAPI cuLinkCreate_v2(unsigned int n, CUjit_option *opts, void **vals, CUlinkState *out)
{
    struct rec_line l;
    rec_begin(&l, "cuLinkCreate_v2");
    rec_u64(&l, n);
    for (unsigned i = 0; i < n; i++) {
        rec_u64(&l, opts[i]);
        if (opts[i] == CU_JIT_ERROR_LOG_BUFFER)
            snprintf(vals[i], 64, "rec link error");
        else if (opts[i] != CU_JIT_INFO_LOG_BUFFER)
            rec_u64(&l, (uint64_t)(uintptr_t)vals[i]);
    }
    rec_sep(&l);
    *out = rec_new_handle(0x1);
    rec_ptr(&l, (uint64_t)(uintptr_t)*out);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLinkAddData_v2(CUlinkState st, CUjitInputType type, void *data, size_t size, const char *name,
                                  unsigned int n, CUjit_option *opts, void **vals)
{
    (void)n, (void)opts, (void)vals;
    struct rec_line l;
    rec_begin(&l, "cuLinkAddData_v2");
    rec_ptr(&l, (uint64_t)(uintptr_t)st);
    rec_u64(&l, type);
    rec_bytes(&l, data, size);
    rec_str(&l, name);
    rec_sep(&l);
    rec_end(&l);
    return size == 3 ? CUDA_ERROR_INVALID_PTX : CUDA_SUCCESS; /* a 3-byte input "fails" */
}

CUresult CUDAAPI cuLinkComplete(CUlinkState st, void **cubin, size_t *size)
{
    static char image[32];
    rec_fill(image, sizeof image, 1);
    struct rec_line l;
    rec_begin(&l, "cuLinkComplete");
    rec_ptr(&l, (uint64_t)(uintptr_t)st);
    rec_sep(&l);
    rec_end(&l);
    *cubin = image;
    *size = sizeof image;
    return CUDA_SUCCESS;
}

/* ---- graphs ------------------------------------------------------------------------------------ */

CUresult CUDAAPI cuStreamGetCaptureInfo_v3(CUstream s, CUstreamCaptureStatus *status, cuuint64_t *id, CUgraph *graph,
                                           const CUgraphNode **deps, const CUgraphEdgeData **edges, size_t *n)
{
    static CUgraphNode nodes[2];
    static CUgraphEdgeData edge[2];
    nodes[0] = rec_new_handle(0x21);
    nodes[1] = rec_new_handle(0x22);
    rec_fill(edge, sizeof edge, 3);
    struct rec_line l;
    rec_begin(&l, "cuStreamGetCaptureInfo_v3");
    rec_ptr(&l, (uint64_t)(uintptr_t)s);
    rec_sep(&l);
    *status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
    *id = 77;
    *graph = rec_new_handle(0x20);
    *deps = nodes;
    *edges = edge;
    *n = 2;
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphDebugDotPrint(CUgraph g, const char *path, unsigned int flags)
{
    struct rec_line l;
    rec_begin(&l, "cuGraphDebugDotPrint");
    rec_ptr(&l, (uint64_t)(uintptr_t)g);
    rec_u64(&l, flags);
    rec_sep(&l);
    rec_end(&l);
    FILE *f = fopen(path, "w");
    if (!f)
        return CUDA_ERROR_OPERATING_SYSTEM;
    fputs("digraph rec { a -> b }\n", f);
    fclose(f);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t n,
                                        CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    struct rec_line l;
    rec_begin(&l, "cuGraphAddMemAllocNode");
    rec_ptr(&l, (uint64_t)(uintptr_t)g);
    rec_handles(&l, deps, n);
    rec_u64(&l, p->bytesize);
    rec_u64(&l, p->accessDescCount);
    rec_sep(&l);
    *node = rec_new_handle(0x30);
    p->dptr = rec_alloc(p->bytesize);
    rec_ptr(&l, p->dptr);
    rec_end(&l);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphAddNode_v2(CUgraphNode *node, CUgraph g, const CUgraphNode *deps,
                                   const CUgraphEdgeData *edges, size_t n, CUgraphNodeParams *p)
{
    struct rec_line l;
    rec_begin(&l, "cuGraphAddNode_v2");
    rec_ptr(&l, (uint64_t)(uintptr_t)g);
    rec_handles(&l, deps, n);
    rec_bytes(&l, edges, edges ? n * sizeof *edges : 0);
    rec_u64(&l, p->type);
    if (p->type == CU_GRAPH_NODE_TYPE_KERNEL) {
        rec_ptr(&l, (uint64_t)(uintptr_t)p->kernel.func);
        params_line(&l, p->kernel.kernelParams);
    } else if (p->type == CU_GRAPH_NODE_TYPE_EVENT_RECORD) {
        rec_ptr(&l, (uint64_t)(uintptr_t)p->eventRecord.event);
    }
    rec_sep(&l);
    *node = rec_new_handle(0x31);
    if (p->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC)
        p->alloc.dptr = rec_alloc(p->alloc.bytesize);
    rec_end(&l);
    return CUDA_SUCCESS;
}

/* A kernel node's parameters as the driver keeps them: its function and two parameters. */
CUresult CUDAAPI cuGraphKernelNodeGetParams_v2(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS *p)
{
    static uint64_t a0 = 0x1122334455667788ull;
    static uint32_t a1 = 0x99aabbcc;
    static void *params[2] = {&a0, &a1};
    struct rec_line l;
    rec_begin(&l, "cuGraphKernelNodeGetParams_v2");
    rec_ptr(&l, (uint64_t)(uintptr_t)node);
    rec_sep(&l);
    rec_end(&l);
    memset(p, 0, sizeof *p);
    p->func = rec_new_handle(0x32);
    p->gridDimX = 3;
    p->blockDimX = 32;
    p->kernelParams = params;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphInstantiateWithParams(CUgraphExec *exec, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    struct rec_line l;
    rec_begin(&l, "cuGraphInstantiateWithParams");
    rec_ptr(&l, (uint64_t)(uintptr_t)g);
    rec_u64(&l, p->flags);
    rec_ptr(&l, (uint64_t)(uintptr_t)p->hUploadStream);
    rec_sep(&l);
    rec_end(&l);
    *exec = rec_new_handle(0x33);
    p->hErrNode_out = NULL;
    p->result_out = CUDA_GRAPH_INSTANTIATE_SUCCESS;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphExecUpdate_v2(CUgraphExec exec, CUgraph g, CUgraphExecUpdateResultInfo *info)
{
    struct rec_line l;
    rec_begin(&l, "cuGraphExecUpdate_v2");
    rec_ptr(&l, (uint64_t)(uintptr_t)exec);
    rec_ptr(&l, (uint64_t)(uintptr_t)g);
    rec_sep(&l);
    rec_end(&l);
    info->result = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
    info->errorNode = rec_new_handle(0x34);
    info->errorFromNode = NULL;
    return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
}

/* Graph and stream attributes: the id, and the event of a completion event. */
static CUresult attr_line(const char *name, const void *obj, CUlaunchAttributeID id, CUlaunchAttributeValue *v, int set)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_ptr(&l, (uint64_t)(uintptr_t)obj);
    rec_u64(&l, id);
    if (set)
        rec_bytes(&l, v, sizeof *v);
    rec_sep(&l);
    rec_end(&l);
    if (!set) {
        rec_fill(v, sizeof *v, 1);
        if (id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT)
            v->launchCompletionEvent.event = NULL;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetAttribute(CUstream s, CUstreamAttrID id, CUstreamAttrValue *v)
{
    return attr_line("cuStreamGetAttribute", s, id, v, 0);
}

CUresult CUDAAPI cuStreamSetAttribute(CUstream s, CUstreamAttrID id, const CUstreamAttrValue *v)
{
    return attr_line("cuStreamSetAttribute", s, id, (CUlaunchAttributeValue *)v, 1);
}

CUresult CUDAAPI cuGraphKernelNodeGetAttribute(CUgraphNode n, CUkernelNodeAttrID id, CUkernelNodeAttrValue *v)
{
    return attr_line("cuGraphKernelNodeGetAttribute", n, id, v, 0);
}

CUresult CUDAAPI cuGraphKernelNodeSetAttribute(CUgraphNode n, CUkernelNodeAttrID id, const CUkernelNodeAttrValue *v)
{
    return attr_line("cuGraphKernelNodeSetAttribute", n, id, (CUlaunchAttributeValue *)v, 1);
}

/* A resource description of linear memory (no handle inside to translate back). */
static CUresult res_desc(const char *name, CUDA_RESOURCE_DESC *d, uint64_t obj)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_ptr(&l, obj);
    rec_sep(&l);
    rec_end(&l);
    memset(d, 0, sizeof *d);
    d->resType = CU_RESOURCE_TYPE_LINEAR;
    d->res.linear.devPtr = 0x7e00000000aaull;
    d->res.linear.sizeInBytes = 4096;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC *d, CUtexObject t)
{
    return res_desc("cuTexObjectGetResourceDesc", d, t);
}

CUresult CUDAAPI cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC *d, CUsurfObject s)
{
    return res_desc("cuSurfObjectGetResourceDesc", d, s);
}

/* ---- calls whose structures hold pointers the server makes (logged field by field) ---- */

CUresult CUDAAPI cuCtxDestroy_v2(CUcontext c)
{
    struct rec_line l;
    rec_begin(&l, "cuCtxDestroy_v2");
    rec_ptr(&l, (uint64_t)(uintptr_t)c);
    rec_sep(&l);
    rec_end(&l);
    return CUDA_SUCCESS;
}

static void kernel_node_line(const char *name, const void *a, const void *b, const CUDA_KERNEL_NODE_PARAMS *p)
{
    struct rec_line l;
    rec_begin(&l, name);
    if (a)
        rec_ptr(&l, (uint64_t)(uintptr_t)a);
    if (b)
        rec_ptr(&l, (uint64_t)(uintptr_t)b);
    rec_ptr(&l, (uint64_t)(uintptr_t)p->func);
    rec_u64(&l, p->gridDimX);
    rec_u64(&l, p->blockDimX);
    rec_ptr(&l, (uint64_t)(uintptr_t)p->ctx);
    params_line(&l, p->kernelParams);
    rec_sep(&l);
    rec_end(&l);
}

CUresult CUDAAPI cuGraphAddKernelNode_v2(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t n,
                                         const CUDA_KERNEL_NODE_PARAMS *p)
{
    (void)deps, (void)n;
    kernel_node_line("cuGraphAddKernelNode_v2", g, NULL, p);
    *node = rec_new_handle(0x40);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphKernelNodeSetParams_v2(CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS *p)
{
    kernel_node_line("cuGraphKernelNodeSetParams_v2", node, NULL, p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphExecKernelNodeSetParams_v2(CUgraphExec e, CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS *p)
{
    kernel_node_line("cuGraphExecKernelNodeSetParams_v2", e, node, p);
    return CUDA_SUCCESS;
}

static void memop_line(const char *name, const void *a, const void *b, const CUDA_BATCH_MEM_OP_NODE_PARAMS *p)
{
    struct rec_line l;
    rec_begin(&l, name);
    if (a)
        rec_ptr(&l, (uint64_t)(uintptr_t)a);
    if (b)
        rec_ptr(&l, (uint64_t)(uintptr_t)b);
    rec_ptr(&l, (uint64_t)(uintptr_t)p->ctx);
    rec_u64(&l, p->count);
    rec_bytes(&l, p->paramArray, p->count * sizeof *p->paramArray);
    rec_sep(&l);
    rec_end(&l);
}

CUresult CUDAAPI cuGraphAddBatchMemOpNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t n,
                                          const CUDA_BATCH_MEM_OP_NODE_PARAMS *p)
{
    (void)deps, (void)n;
    memop_line("cuGraphAddBatchMemOpNode", g, NULL, p);
    *node = rec_new_handle(0x41);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphBatchMemOpNodeSetParams(CUgraphNode node, const CUDA_BATCH_MEM_OP_NODE_PARAMS *p)
{
    memop_line("cuGraphBatchMemOpNodeSetParams", node, NULL, p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphExecBatchMemOpNodeSetParams(CUgraphExec e, CUgraphNode node,
                                                    const CUDA_BATCH_MEM_OP_NODE_PARAMS *p)
{
    memop_line("cuGraphExecBatchMemOpNodeSetParams", e, node, p);
    return CUDA_SUCCESS;
}

static void config_line(const char *name, const void *f, const CUlaunchConfig *c)
{
    struct rec_line l;
    rec_begin(&l, name);
    rec_ptr(&l, (uint64_t)(uintptr_t)f);
    rec_u64(&l, c->gridDimX);
    rec_u64(&l, c->blockDimX);
    rec_ptr(&l, (uint64_t)(uintptr_t)c->hStream);
    rec_u64(&l, c->numAttrs);
    for (unsigned i = 0; i < c->numAttrs; i++)
        rec_u64(&l, c->attrs[i].id);
    rec_sep(&l);
    rec_end(&l);
}

CUresult CUDAAPI cuOccupancyMaxActiveClusters(int *n, CUfunction f, const CUlaunchConfig *c)
{
    config_line("cuOccupancyMaxActiveClusters", f, c);
    *n = 5;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuOccupancyMaxPotentialClusterSize(int *n, CUfunction f, const CUlaunchConfig *c)
{
    config_line("cuOccupancyMaxPotentialClusterSize", f, c);
    *n = 6;
    return CUDA_SUCCESS;
}

static void node_params_line(const char *name, const void *a, const void *b, const CUgraphNodeParams *p)
{
    struct rec_line l;
    rec_begin(&l, name);
    if (a)
        rec_ptr(&l, (uint64_t)(uintptr_t)a);
    if (b)
        rec_ptr(&l, (uint64_t)(uintptr_t)b);
    rec_u64(&l, p->type);
    if (p->type == CU_GRAPH_NODE_TYPE_EVENT_RECORD)
        rec_ptr(&l, (uint64_t)(uintptr_t)p->eventRecord.event);
    rec_sep(&l);
    rec_end(&l);
}

CUresult CUDAAPI cuGraphNodeSetParams(CUgraphNode node, CUgraphNodeParams *p)
{
    node_params_line("cuGraphNodeSetParams", node, NULL, p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphExecNodeSetParams(CUgraphExec e, CUgraphNode node, CUgraphNodeParams *p)
{
    node_params_line("cuGraphExecNodeSetParams", e, node, p);
    return CUDA_SUCCESS;
}
