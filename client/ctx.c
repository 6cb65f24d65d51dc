/* Init, devices and contexts. The current-context stack is per thread and lives here, in the
 * client: each call carries the top of it, and the server makes that context current for it. */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "coherent.h"
#include "log.h"
#include "stub.h"

#define CTX_STACK_MAX 64
static __thread uint64_t ctx_stack[CTX_STACK_MAX];
static __thread int ctx_depth;

uint64_t vg_stub_ctx(void)
{
    return ctx_depth ? ctx_stack[ctx_depth - 1] : 0;
}

/* A forked child starts a new session (conn.c): the contexts and functions it inherited name
 * objects of the parent's session, so the forking thread's stack and the layout cache go. */
static void on_fork_child(void)
{
    ctx_depth = 0;
    vg_stub_forget_layouts();
    vg_stub_forget_names();
    vg_stub_forget_host_lock();
    vg_coh_forget();
}

__attribute__((constructor)) static void api_init(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

CUresult vg_stub_rpc(unsigned call, const uint64_t *args, size_t nargs, uint64_t *outs, size_t nouts)
{
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = args, .nargs = nargs, .outs = outs, .nouts = nouts};
    return vg_conn_call(&r);
}


/* ---- init, versions, devices ----------------------------------------------------------------- */

CUresult CUDAAPI cuInit(unsigned int flags)
{
    vg_log_set_component("stub");
    CUresult rc = vg_conn_connect();
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vg_rpc r = {.call = VG_CALL_cuInit, .args = ARGV(flags), .nargs = 1};
    return vg_conn_call(&r);
}

CUresult CUDAAPI cuDriverGetVersion(int *version)
{
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    /* Answerable before cuInit, as on NVIDIA's driver: the API version this stub implements. */
    *version = CUDA_VERSION;
    return CUDA_SUCCESS;
}

/* ---- contexts ---------------------------------------------------------------------------------- */

static CUresult ctx_push(uint64_t c)
{
    if (ctx_depth >= CTX_STACK_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    ctx_stack[ctx_depth++] = c;
    return CUDA_SUCCESS;
}

/* Removes c from this thread's stack (other threads' stacks are theirs; the server rejects a
 * destroyed context they still send). */
static void ctx_forget(uint64_t c)
{
    int j = 0;
    for (int i = 0; i < ctx_depth; i++)
        if (ctx_stack[i] != c)
            ctx_stack[j++] = ctx_stack[i];
    ctx_depth = j;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev)
{
    /* The primary context's handle stays the same per device: find it to unbind it if released. */
    unsigned flags = 0;
    int active = 1;
    CUresult rc = FWD(cuDevicePrimaryCtxRelease_v2, NULL, 0, (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS && cuDevicePrimaryCtxGetState(dev, &flags, &active) == CUDA_SUCCESS && !active) {
        /* Last reference gone: a thread still bound to it would send a dead handle. */
        for (int i = 0; i < ctx_depth; i++) {
            uint64_t c = ctx_stack[i];
            uint64_t o[1];
            struct vg_rpc r = {.call = VG_CALL_cuCtxGetDevice, .ctx = c, .outs = o, .nouts = 1};
            if (vg_conn_call(&r) != CUDA_SUCCESS)
                ctx_forget(c), i = -1;
        }
    }
    return rc;
}

CUresult CUDAAPI cuCtxCreate(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags, CUdevice dev)
{
    uint64_t o[1];
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (params && (params->execAffinityParams || params->cigParams))
        return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = FWD(cuCtxCreate_v4, o, 1, flags, (uint64_t)(int64_t)dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    rc = ctx_push(o[0]);
    if (rc != CUDA_SUCCESS) {
        FWD(cuCtxDestroy_v2, NULL, 0, o[0]);
        return rc;
    }
    *pctx = (CUcontext)(uintptr_t)o[0];
    return CUDA_SUCCESS;
}

/* The pre-CUDA-13 signature, still called by programs built against older headers. */
CUresult CUDAAPI cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
CUresult CUDAAPI cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return cuCtxCreate(pctx, NULL, flags, dev);
}

CUresult CUDAAPI cuCtxDestroy(CUcontext ctx)
{
    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(cuCtxDestroy_v2, NULL, 0, H(ctx));
    if (rc == CUDA_SUCCESS)
        ctx_forget(H(ctx));
    return rc;
}

CUresult CUDAAPI cuCtxPushCurrent(CUcontext ctx)
{
    if (!ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    return ctx_push(H(ctx));
}

CUresult CUDAAPI cuCtxPopCurrent(CUcontext *pctx)
{
    if (!ctx_depth)
        return CUDA_ERROR_INVALID_CONTEXT;
    uint64_t c = ctx_stack[--ctx_depth];
    if (pctx)
        *pctx = (CUcontext)(uintptr_t)c;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
    if (!vg_conn_initialized())
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!ctx) {
        if (ctx_depth)
            ctx_depth--;
        return CUDA_SUCCESS;
    }
    if (ctx_depth)
        ctx_stack[ctx_depth - 1] = H(ctx);
    else
        ctx_stack[ctx_depth++] = H(ctx);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vg_conn_initialized())
        return CUDA_ERROR_NOT_INITIALIZED;
    *pctx = (CUcontext)(uintptr_t)vg_stub_ctx();
    return CUDA_SUCCESS;
}


/* What the stub adds to the device's memory model (client/coherent.h): managed memory without
 * concurrent access, mapped host memory at the device's address; registered memory gets a
 * device address of its own. */
CUresult CUDAAPI cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    uint64_t o[1];
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(cuDeviceGetAttribute, o, 1, (uint64_t)attrib, (uint64_t)(int64_t)dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
        o[0] = 1;
        break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS:
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS:
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES:
    case CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST:
    case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM:
    case CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED:
        o[0] = 0;
        break;
    default:
        break;
    }
    *pi = (int)o[0];
    return CUDA_SUCCESS;
}
