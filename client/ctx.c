/* Init, devices and contexts. The current-context stack is per thread and lives here, in the
 * client: each call carries the top of it, and the server makes that context current for it. */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
    struct vg_rpc r = {.call = VG_CALL_INIT, .args = ARGV(flags), .nargs = 1};
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

CUresult CUDAAPI cuDeviceGet(CUdevice *dev, int ordinal)
{
    uint64_t o[1];
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(DEVICE_GET, o, 1, (uint64_t)(int64_t)ordinal);
    if (rc == CUDA_SUCCESS)
        *dev = (CUdevice)o[0];
    return rc;
}

CUresult CUDAAPI cuDeviceGetCount(int *count)
{
    uint64_t o[1];
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(DEVICE_GET_COUNT, o, 1);
    if (rc == CUDA_SUCCESS)
        *count = (int)o[0];
    return rc;
}

CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev)
{
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    char buf[256];
    struct vg_rpc r = {.call = VG_CALL_DEVICE_GET_NAME, .args = ARGV((uint64_t)(int64_t)dev), .nargs = 1,
                       .str = buf, .str_size = sizeof buf};
    CUresult rc = vg_conn_call(&r);
    if (rc == CUDA_SUCCESS)
        snprintf(name, (size_t)len, "%s", buf);
    return rc;
}

CUresult CUDAAPI cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    uint64_t o[1];
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(DEVICE_GET_ATTRIBUTE, o, 1, (uint64_t)attrib, (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS)
        *pi = (int)o[0];
    return rc;
}

CUresult CUDAAPI cuDeviceTotalMem(size_t *bytes, CUdevice dev)
{
    uint64_t o[1];
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(DEVICE_TOTAL_MEM, o, 1, (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS)
        *bytes = (size_t)o[0];
    return rc;
}

CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    uint64_t o[2];
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(DEVICE_GET_UUID, o, 2, (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS)
        memcpy(uuid->bytes, o, sizeof uuid->bytes);
    return rc;
}

CUresult CUDAAPI cuDeviceGetPCIBusId(char *bus_id, int len, CUdevice dev)
{
    if (!bus_id || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    char buf[256];
    struct vg_rpc r = {.call = VG_CALL_DEVICE_GET_PCI_BUS_ID, .args = ARGV((uint64_t)(int64_t)dev), .nargs = 1,
                       .str = buf, .str_size = sizeof buf};
    CUresult rc = vg_conn_call(&r);
    if (rc == CUDA_SUCCESS)
        snprintf(bus_id, (size_t)len, "%s", buf);
    return rc;
}

CUresult CUDAAPI cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    if (rc == CUDA_SUCCESS)
        rc = cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    return rc;
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

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    uint64_t o[1];
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(PRIMARY_CTX_RETAIN, o, 1, (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS)
        *pctx = (CUcontext)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev)
{
    /* The primary context's handle stays the same per device: find it to unbind it if released. */
    uint64_t st[2] = {0, 0};
    CUresult rc = FWD(PRIMARY_CTX_RELEASE, NULL, 0, (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS && FWD(PRIMARY_CTX_GET_STATE, st, 2, (uint64_t)(int64_t)dev) == CUDA_SUCCESS &&
        !st[1]) {
        /* Last reference gone: a thread still bound to it would send a dead handle. */
        for (int i = 0; i < ctx_depth; i++) {
            uint64_t c = ctx_stack[i];
            uint64_t o[1];
            struct vg_rpc r = {.call = VG_CALL_CTX_GET_DEVICE, .ctx = c, .outs = o, .nouts = 1};
            if (vg_conn_call(&r) != CUDA_SUCCESS)
                ctx_forget(c), i = -1;
        }
    }
    return rc;
}

CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev)
{
    return FWD(PRIMARY_CTX_RESET, NULL, 0, (uint64_t)(int64_t)dev);
}

CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    uint64_t o[2];
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(PRIMARY_CTX_GET_STATE, o, 2, (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS) {
        *flags = (unsigned)o[0];
        *active = (int)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    return FWD(PRIMARY_CTX_SET_FLAGS, NULL, 0, (uint64_t)(int64_t)dev, flags);
}

CUresult CUDAAPI cuCtxCreate(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags, CUdevice dev)
{
    uint64_t o[1];
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (params && (params->execAffinityParams || params->cigParams))
        return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = FWD(CTX_CREATE, o, 1, flags, (uint64_t)(int64_t)dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    rc = ctx_push(o[0]);
    if (rc != CUDA_SUCCESS) {
        FWD(CTX_DESTROY, NULL, 0, o[0]);
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
    CUresult rc = FWD(CTX_DESTROY, NULL, 0, H(ctx));
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

CUresult CUDAAPI cuCtxGetDevice(CUdevice *dev)
{
    uint64_t o[1];
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vg_stub_ctx())
        return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = FWD(CTX_GET_DEVICE, o, 1);
    if (rc == CUDA_SUCCESS)
        *dev = (CUdevice)o[0];
    return rc;
}

/* Context ids only need to be unique in the process: the session's handle is. */
CUresult CUDAAPI cuCtxGetId(CUcontext ctx, unsigned long long *id)
{
    if (!id)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t c = ctx ? H(ctx) : vg_stub_ctx();
    if (!c)
        return CUDA_ERROR_INVALID_CONTEXT;
    *id = c;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSynchronize(void)
{
    return FWD(CTX_SYNCHRONIZE, NULL, 0);
}

CUresult CUDAAPI cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    uint64_t o[1];
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(CTX_GET_API_VERSION, o, 1, ctx ? H(ctx) : vg_stub_ctx());
    if (rc == CUDA_SUCCESS)
        *version = (unsigned)o[0];
    return rc;
}

CUresult CUDAAPI cuCtxGetFlags(unsigned int *flags)
{
    uint64_t o[1];
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(CTX_GET_FLAGS, o, 1);
    if (rc == CUDA_SUCCESS)
        *flags = (unsigned)o[0];
    return rc;
}

CUresult CUDAAPI cuCtxSetLimit(CUlimit limit, size_t value)
{
    return FWD(CTX_SET_LIMIT, NULL, 0, (uint64_t)limit, value);
}

CUresult CUDAAPI cuCtxGetLimit(size_t *value, CUlimit limit)
{
    uint64_t o[1];
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(CTX_GET_LIMIT, o, 1, (uint64_t)limit);
    if (rc == CUDA_SUCCESS)
        *value = (size_t)o[0];
    return rc;
}

CUresult CUDAAPI cuCtxGetStreamPriorityRange(int *least, int *greatest)
{
    uint64_t o[2];
    CUresult rc = FWD(CTX_GET_STREAM_PRIORITY_RANGE, o, 2);
    if (rc == CUDA_SUCCESS) {
        if (least)
            *least = (int)o[0];
        if (greatest)
            *greatest = (int)o[1];
    }
    return rc;
}
