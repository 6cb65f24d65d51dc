/* The stub's driver API: each function checks what it can locally, marshals its arguments into a
 * Call (protocol/calls.h, README.md) and unmarshals the Reply. Handles the server gives out
 * (contexts, modules, functions, streams, events, ...) are opaque session ids; device pointers
 * are the server's device addresses.
 *
 * Kept locally: the per-thread current-context stack (sent with each call), page-locked host
 * memory (plain host memory here), the kernel parameter layouts, error strings. */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calls.h"
#include "conn.h"
#include "fatbin.h"
#include "log.h"

#define H(x) ((uint64_t)(uintptr_t)(x))
#define ARGV(...) ((const uint64_t[]){0, ##__VA_ARGS__} + 1)
#define ARGC(...) (sizeof((const uint64_t[]){0, ##__VA_ARGS__}) / sizeof(uint64_t) - 1)

/* ---- per-thread context stack ---------------------------------------------------------------- */

#define CTX_STACK_MAX 64
static __thread uint64_t ctx_stack[CTX_STACK_MAX];
static __thread int ctx_depth;

static uint64_t cur_ctx(void)
{
    return ctx_depth ? ctx_stack[ctx_depth - 1] : 0;
}

static void forget_layouts(void);

/* A forked child starts a new session (conn.c): the contexts and functions it inherited name
 * objects of the parent's session, so the forking thread's stack and the layout cache go. */
static void on_fork_child(void)
{
    ctx_depth = 0;
    forget_layouts();
}

__attribute__((constructor)) static void api_init(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static CUresult rpc(unsigned call, const uint64_t *args, size_t nargs, uint64_t *outs, size_t nouts)
{
    struct vg_rpc r = {.call = call, .ctx = cur_ctx(), .args = args, .nargs = nargs, .outs = outs, .nouts = nouts};
    return vg_conn_call(&r);
}

#define FWD(id, outs, nouts, ...) rpc(VG_CALL_##id, ARGV(__VA_ARGS__), ARGC(__VA_ARGS__), outs, nouts)

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
    *pctx = (CUcontext)(uintptr_t)cur_ctx();
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice *dev)
{
    uint64_t o[1];
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cur_ctx())
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
    uint64_t c = ctx ? H(ctx) : cur_ctx();
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
    CUresult rc = FWD(CTX_GET_API_VERSION, o, 1, ctx ? H(ctx) : cur_ctx());
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

/* ---- memory ------------------------------------------------------------------------------------ */

CUresult CUDAAPI cuMemAlloc(CUdeviceptr *dptr, size_t bytes)
{
    uint64_t o[1];
    if (!dptr || bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(MEM_ALLOC, o, 1, bytes);
    if (rc == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)o[0];
    return rc;
}

CUresult CUDAAPI cuMemAllocPitch(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned int esz)
{
    uint64_t o[2];
    if (!dptr || !pitch || !width || !height || (esz != 4 && esz != 8 && esz != 16))
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(MEM_ALLOC_PITCH, o, 2, width, height, esz);
    if (rc == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)o[0];
        *pitch = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuMemFree(CUdeviceptr dptr)
{
    return FWD(MEM_FREE, NULL, 0, dptr);
}

CUresult CUDAAPI cuMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    uint64_t o[2];
    CUresult rc = FWD(MEM_GET_INFO, o, 2);
    if (rc == CUDA_SUCCESS) {
        if (free_bytes)
            *free_bytes = (size_t)o[0];
        if (total_bytes)
            *total_bytes = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuMemGetAddressRange(CUdeviceptr *base, size_t *size, CUdeviceptr dptr)
{
    uint64_t o[2];
    CUresult rc = FWD(MEM_GET_ADDRESS_RANGE, o, 2, dptr);
    if (rc == CUDA_SUCCESS) {
        if (base)
            *base = (CUdeviceptr)o[0];
        if (size)
            *size = (size_t)o[1];
    }
    return rc;
}

/* Page-locked host memory is plain host memory on the client: the copies go through the socket
 * either way. */
CUresult CUDAAPI cuMemAllocHost(void **pp, size_t bytes)
{
    if (!pp || bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vg_conn_initialized())
        return CUDA_ERROR_NOT_INITIALIZED;
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
    (void)flags;
    return cuMemAllocHost(pp, bytes);
}

CUresult CUDAAPI cuMemFreeHost(void *p)
{
    free(p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytes, unsigned int flags)
{
    (void)flags;
    return p && bytes ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemHostUnregister(void *p)
{
    return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static uint64_t default_stream(CUstream s, int per_thread)
{
    if (!s && per_thread)
        return (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD;
    return H(s);
}

static CUresult memset_any(CUdeviceptr dst, unsigned value, unsigned esz, size_t n, CUstream s, int per_thread)
{
    return FWD(MEMSET, NULL, 0, dst, value, esz, n, default_stream(s, per_thread));
}

/* Sends host bytes in frames the server accepts. */
static CUresult htod(CUdeviceptr dst, const void *src, size_t n, CUstream s, int per_thread, int async)
{
    if (n && !src)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t chunk = vg_conn_max_bulk();
    uint64_t st = default_stream(s, per_thread);
    size_t done = 0;
    do {
        size_t part = n - done < chunk ? n - done : (size_t)chunk;
        struct vg_rpc r = {.call = async ? VG_CALL_MEMCPY_HTOD_ASYNC : VG_CALL_MEMCPY_HTOD, .ctx = cur_ctx(),
                           .args = ARGV(dst + done, st), .nargs = 2,
                           .bulk = (const char *)src + done, .bulk_len = part};
        CUresult rc = vg_conn_call(&r);
        if (rc != CUDA_SUCCESS)
            return rc;
        done += part;
    } while (done < n);
    return CUDA_SUCCESS;
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    if (n && !dst)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t chunk = vg_conn_max_bulk();
    uint64_t st = default_stream(s, per_thread);
    size_t done = 0;
    do {
        size_t part = n - done < chunk ? n - done : (size_t)chunk;
        struct vg_rpc r = {.call = VG_CALL_MEMCPY_DTOH, .ctx = cur_ctx(),
                           .args = ARGV(src + done, part, st, (uint64_t)async), .nargs = 4,
                           .rbulk = (char *)dst + done, .rbulk_len = part};
        CUresult rc = vg_conn_call(&r);
        if (rc != CUDA_SUCCESS)
            return rc;
        done += part;
    } while (done < n);
    return CUDA_SUCCESS;
}

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    return rpc(async ? VG_CALL_MEMCPY_DTOD_ASYNC : VG_CALL_MEMCPY_DTOD,
               ARGV(dst, src, n, default_stream(s, per_thread)), 4, NULL, 0);
}

/* Each copy/memset comes in the default-stream form (_v2), its per-thread-default-stream form
 * (_v2_ptds / _ptsz) and async forms; the per-thread forms map stream 0 to CU_STREAM_PER_THREAD. */
#define VG_MEMSET_FNS(bits, type)                                                                     \
    CUresult CUDAAPI cuMemsetD##bits##_v2(CUdeviceptr d, type v, size_t n)                           \
    {                                                                                                 \
        CUresult rc = memset_any(d, v, bits / 8, n, 0, 0);                                            \
        return rc == CUDA_SUCCESS ? FWD(STREAM_SYNCHRONIZE, NULL, 0, 0) : rc;                         \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD##bits##_v2_ptds(CUdeviceptr d, type v, size_t n)                      \
    {                                                                                                 \
        CUresult rc = memset_any(d, v, bits / 8, n, 0, 1);                                            \
        return rc == CUDA_SUCCESS ? FWD(STREAM_SYNCHRONIZE, NULL, 0, (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD) : rc; \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD##bits##Async(CUdeviceptr d, type v, size_t n, CUstream s)             \
    {                                                                                                 \
        return memset_any(d, v, bits / 8, n, s, 0);                                                   \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD##bits##Async_ptsz(CUdeviceptr d, type v, size_t n, CUstream s)        \
    {                                                                                                 \
        return memset_any(d, v, bits / 8, n, s, 1);                                                   \
    }
#undef cuMemsetD8Async
#undef cuMemsetD16Async
#undef cuMemsetD32Async
CUresult CUDAAPI cuMemsetD8_v2(CUdeviceptr, unsigned char, size_t);
CUresult CUDAAPI cuMemsetD8_v2_ptds(CUdeviceptr, unsigned char, size_t);
CUresult CUDAAPI cuMemsetD16_v2(CUdeviceptr, unsigned short, size_t);
CUresult CUDAAPI cuMemsetD16_v2_ptds(CUdeviceptr, unsigned short, size_t);
CUresult CUDAAPI cuMemsetD32_v2(CUdeviceptr, unsigned int, size_t);
CUresult CUDAAPI cuMemsetD32_v2_ptds(CUdeviceptr, unsigned int, size_t);
CUresult CUDAAPI cuMemsetD8Async(CUdeviceptr, unsigned char, size_t, CUstream);
CUresult CUDAAPI cuMemsetD8Async_ptsz(CUdeviceptr, unsigned char, size_t, CUstream);
CUresult CUDAAPI cuMemsetD16Async(CUdeviceptr, unsigned short, size_t, CUstream);
CUresult CUDAAPI cuMemsetD16Async_ptsz(CUdeviceptr, unsigned short, size_t, CUstream);
CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr, unsigned int, size_t, CUstream);
CUresult CUDAAPI cuMemsetD32Async_ptsz(CUdeviceptr, unsigned int, size_t, CUstream);
VG_MEMSET_FNS(8, unsigned char)
VG_MEMSET_FNS(16, unsigned short)
VG_MEMSET_FNS(32, unsigned int)

static CUresult memset_2d(CUdeviceptr dst, size_t pitch, unsigned value, unsigned esz, size_t width,
                          size_t height, CUstream s, int per_thread, int sync)
{
    CUresult rc = FWD(MEMSET_2D, NULL, 0, dst, pitch, value, esz, width, height, default_stream(s, per_thread));
    if (rc == CUDA_SUCCESS && sync)
        rc = FWD(STREAM_SYNCHRONIZE, NULL, 0, default_stream(s, per_thread));
    return rc;
}

#define VG_MEMSET2D_FNS(bits, type)                                                                   \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2(CUdeviceptr d, size_t p, type v, size_t w, size_t h);     \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2_ptds(CUdeviceptr d, size_t p, type v, size_t w, size_t h); \
    CUresult CUDAAPI cuMemsetD2D##bits##Async(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s); \
    CUresult CUDAAPI cuMemsetD2D##bits##Async_ptsz(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s); \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2(CUdeviceptr d, size_t p, type v, size_t w, size_t h)      \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, 0, 0, 1);                                           \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD2D##bits##_v2_ptds(CUdeviceptr d, size_t p, type v, size_t w, size_t h) \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, 0, 1, 1);                                           \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD2D##bits##Async(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s) \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, s, 0, 0);                                           \
    }                                                                                                 \
    CUresult CUDAAPI cuMemsetD2D##bits##Async_ptsz(CUdeviceptr d, size_t p, type v, size_t w, size_t h, CUstream s) \
    {                                                                                                 \
        return memset_2d(d, p, v, bits / 8, w, h, s, 1, 0);                                           \
    }
#undef cuMemsetD2D8Async
#undef cuMemsetD2D16Async
#undef cuMemsetD2D32Async
VG_MEMSET2D_FNS(8, unsigned char)
VG_MEMSET2D_FNS(16, unsigned short)
VG_MEMSET2D_FNS(32, unsigned int)

#undef cuMemcpyHtoD
#undef cuMemcpyDtoH
#undef cuMemcpyDtoD
#undef cuMemcpyHtoDAsync
#undef cuMemcpyDtoHAsync
#undef cuMemcpyDtoDAsync
#define VG_COPY_FNS(dir, dt, st, impl, dexpr, sexpr)                                                  \
    CUresult CUDAAPI cuMemcpy##dir##_v2(dt dst, st src, size_t n);                                    \
    CUresult CUDAAPI cuMemcpy##dir##_v2_ptds(dt dst, st src, size_t n);                               \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2(dt dst, st src, size_t n, CUstream s);                   \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2_ptsz(dt dst, st src, size_t n, CUstream s);              \
    CUresult CUDAAPI cuMemcpy##dir##_v2(dt dst, st src, size_t n)                                     \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, 0, 0, 0);                                                        \
    }                                                                                                 \
    CUresult CUDAAPI cuMemcpy##dir##_v2_ptds(dt dst, st src, size_t n)                                \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, 0, 1, 0);                                                        \
    }                                                                                                 \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2(dt dst, st src, size_t n, CUstream s)                    \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, s, 0, 1);                                                        \
    }                                                                                                 \
    CUresult CUDAAPI cuMemcpy##dir##Async_v2_ptsz(dt dst, st src, size_t n, CUstream s)               \
    {                                                                                                 \
        return impl(dexpr, sexpr, n, s, 1, 1);                                                        \
    }
VG_COPY_FNS(HtoD, CUdeviceptr, const void *, htod, dst, src)
VG_COPY_FNS(DtoH, void *, CUdeviceptr, dtoh, dst, src)
VG_COPY_FNS(DtoD, CUdeviceptr, CUdeviceptr, dtod, dst, src)

/* Unified addressing: a pointer the server knows as this session's device memory is device
 * memory, anything else is the caller's host memory. */
static int is_device_ptr(CUdeviceptr p)
{
    uint64_t o[1];
    return FWD(POINTER_GET_ATTRIBUTE, o, 1, (uint64_t)CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) == CUDA_SUCCESS &&
           o[0] == CU_MEMORYTYPE_DEVICE;
}

static CUresult copy_any(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int per_thread, int async)
{
    if (n == 0)
        return CUDA_SUCCESS;
    int dd = is_device_ptr(dst), sd = is_device_ptr(src);
    if (dd && sd)
        return dtod(dst, src, n, s, per_thread, async);
    if (dd)
        return htod(dst, (const void *)(uintptr_t)src, n, s, per_thread, async);
    if (sd)
        return dtoh((void *)(uintptr_t)dst, src, n, s, per_thread, async);
    /* Host to host: ordered after the stream's earlier work, as the driver would. */
    CUresult rc = FWD(STREAM_SYNCHRONIZE, NULL, 0, default_stream(s, per_thread));
    if (rc == CUDA_SUCCESS)
        memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return rc;
}

#undef cuMemcpy
#undef cuMemcpyAsync
CUresult CUDAAPI cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult CUDAAPI cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
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

/* ---- pointer attributes -------------------------------------------------------------------------- */

/* The size of the value each supported attribute writes; 0 for attributes not forwarded. */
static size_t pointer_attr_width(CUpointer_attribute attr)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        return 8;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        return 4;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        return 1; /* a bool */
    default:
        return 0;
    }
}

static void store_width(void *data, uint64_t v, size_t width)
{
    if (width == 8)
        memcpy(data, &v, 8);
    else if (width == 4) {
        uint32_t w = (uint32_t)v;
        memcpy(data, &w, 4);
    } else {
        *(unsigned char *)data = v != 0;
    }
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
    uint64_t o[1];
    size_t width = pointer_attr_width(attr);
    if (!width)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(POINTER_GET_ATTRIBUTE, o, 1, (uint64_t)attr, ptr);
    if (rc == CUDA_SUCCESS)
        store_width(data, o[0], width);
    return rc;
}

/* Like the driver: a pointer that is not device memory of this client gets zeros (memory type 0,
 * "unregistered host memory") and success. */
CUresult CUDAAPI cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data, CUdeviceptr ptr)
{
    if (!attrs || !data || n == 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < n; i++)
        if (!pointer_attr_width(attrs[i]) || !data[i])
            return CUDA_ERROR_INVALID_VALUE;
    int device = is_device_ptr(ptr);
    for (unsigned i = 0; i < n; i++) {
        size_t width = pointer_attr_width(attrs[i]);
        uint64_t v = 0;
        if (device) {
            CUresult rc = FWD(POINTER_GET_ATTRIBUTE, &v, 1, (uint64_t)attrs[i], ptr);
            if (rc != CUDA_SUCCESS)
                return rc;
        }
        store_width(data[i], v, width);
    }
    return CUDA_SUCCESS;
}

/* ---- modules and libraries ------------------------------------------------------------------------ */

static CUresult load_image(unsigned call, uint64_t *handle, const void *image, size_t size, const char *what)
{
    struct vg_rpc r = {.call = call, .ctx = cur_ctx(), .name = what, .bulk = image, .bulk_len = size,
                       .outs = handle, .nouts = 1};
    if (size > vg_conn_max_bulk())
        return CUDA_ERROR_INVALID_IMAGE;
    return vg_conn_call(&r);
}

/* Sizes a caller's in-memory image (PTX, fatbin, wrapper, ELF). */
static CUresult image_extent(const void *image, const void **data, size_t *size)
{
    if (!image)
        return CUDA_ERROR_INVALID_VALUE;
    if (vg_image_locate(image, data, size) == VG_IMAGE_UNKNOWN || *size == 0)
        return CUDA_ERROR_INVALID_IMAGE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoadData(CUmodule *mod, const void *image)
{
    const void *data;
    size_t size;
    uint64_t h;
    if (!mod)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = image_extent(image, &data, &size);
    if (rc == CUDA_SUCCESS)
        rc = load_image(VG_CALL_MODULE_LOAD_DATA, &h, data, size, "");
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)h;
    return rc;
}

CUresult CUDAAPI cuModuleLoadDataEx(CUmodule *mod, const void *image, unsigned int n,
                                    CUjit_option *options, void **values)
{
    /* JIT options tune or report the compilation, which happens on the server. */
    (void)n, (void)options, (void)values;
    return cuModuleLoadData(mod, image);
}

CUresult CUDAAPI cuModuleLoadFatBinary(CUmodule *mod, const void *fatbin)
{
    return cuModuleLoadData(mod, fatbin);
}

CUresult CUDAAPI cuModuleLoad(CUmodule *mod, const char *path)
{
    if (!mod || !path)
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    CUresult rc = CUDA_ERROR_INVALID_IMAGE;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > vg_conn_max_bulk())
        goto done;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto done;
    buf[st.st_size] = 0; /* PTX text files have no NUL */
    uint64_t h;
    rc = load_image(VG_CALL_MODULE_LOAD_DATA, &h, buf, (size_t)st.st_size + 1, path);
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)h;
done:
    free(buf);
    fclose(f);
    return rc;
}

CUresult CUDAAPI cuModuleUnload(CUmodule mod)
{
    return FWD(MODULE_UNLOAD, NULL, 0, H(mod));
}

static CUresult named(unsigned call, uint64_t obj, const char *name, uint64_t *outs, size_t nouts)
{
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_rpc r = {.call = call, .ctx = cur_ctx(), .args = ARGV(obj), .nargs = 1, .name = name,
                       .outs = outs, .nouts = nouts};
    return vg_conn_call(&r);
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction *f, CUmodule mod, const char *name)
{
    uint64_t o[1];
    if (!f)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = named(VG_CALL_MODULE_GET_FUNCTION, H(mod), name, o, 1);
    if (rc == CUDA_SUCCESS)
        *f = (CUfunction)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuModuleGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUmodule mod, const char *name)
{
    uint64_t o[2];
    CUresult rc = named(VG_CALL_MODULE_GET_GLOBAL, H(mod), name, o, 2);
    if (rc == CUDA_SUCCESS) {
        if (dptr)
            *dptr = (CUdeviceptr)o[0];
        if (bytes)
            *bytes = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    if (!mode)
        return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_EAGER_LOADING;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryLoadData(CUlibrary *lib, const void *code, CUjit_option *jo, void **jv,
                                   unsigned int njo, CUlibraryOption *lo, void **lv, unsigned int nlo)
{
    (void)jo, (void)jv, (void)njo, (void)lo, (void)lv, (void)nlo;
    const void *data;
    size_t size;
    uint64_t h;
    if (!lib)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = image_extent(code, &data, &size);
    if (rc == CUDA_SUCCESS)
        rc = load_image(VG_CALL_LIBRARY_LOAD_DATA, &h, data, size, "");
    if (rc == CUDA_SUCCESS)
        *lib = (CUlibrary)(uintptr_t)h;
    return rc;
}

CUresult CUDAAPI cuLibraryUnload(CUlibrary lib)
{
    return FWD(LIBRARY_UNLOAD, NULL, 0, H(lib));
}

CUresult CUDAAPI cuLibraryGetKernel(CUkernel *k, CUlibrary lib, const char *name)
{
    uint64_t o[1];
    if (!k)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = named(VG_CALL_LIBRARY_GET_KERNEL, H(lib), name, o, 1);
    if (rc == CUDA_SUCCESS)
        *k = (CUkernel)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuLibraryGetModule(CUmodule *mod, CUlibrary lib)
{
    uint64_t o[1];
    if (!mod)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(LIBRARY_GET_MODULE, o, 1, H(lib));
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary lib, const char *name)
{
    uint64_t o[2];
    CUresult rc = named(VG_CALL_LIBRARY_GET_GLOBAL, H(lib), name, o, 2);
    if (rc == CUDA_SUCCESS) {
        if (dptr)
            *dptr = (CUdeviceptr)o[0];
        if (bytes)
            *bytes = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel k, CUdevice dev)
{
    uint64_t o[1];
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(KERNEL_GET_ATTRIBUTE, o, 1, (uint64_t)attrib, H(k), (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS)
        *pi = (int)o[0];
    return rc;
}

CUresult CUDAAPI cuKernelSetAttribute(CUfunction_attribute attrib, int value, CUkernel k, CUdevice dev)
{
    return FWD(KERNEL_SET_ATTRIBUTE, NULL, 0, (uint64_t)attrib, (uint64_t)(int64_t)value, H(k), (uint64_t)(int64_t)dev);
}

/* Names handed out by cuFuncGetName/cuKernelGetName must stay valid: they are kept here, one per
 * handle, for the life of the process (names_lock protects the list). */
struct name_entry {
    struct name_entry *next;
    uint64_t handle;
    char name[];
};
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry *names;

static CUresult get_name(unsigned call, uint64_t handle, const char **out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&names_lock);
    for (struct name_entry *e = names; e; e = e->next)
        if (e->handle == handle) {
            *out = e->name;
            pthread_mutex_unlock(&names_lock);
            return CUDA_SUCCESS;
        }
    pthread_mutex_unlock(&names_lock);
    char buf[256];
    struct vg_rpc r = {.call = call, .ctx = cur_ctx(), .args = ARGV(handle), .nargs = 1, .str = buf,
                       .str_size = sizeof buf};
    CUresult rc = vg_conn_call(&r);
    if (rc != CUDA_SUCCESS)
        return rc;
    size_t len = strlen(buf) + 1;
    struct name_entry *e = malloc(sizeof *e + len);
    if (!e)
        return CUDA_ERROR_OUT_OF_MEMORY;
    e->handle = handle;
    memcpy(e->name, buf, len);
    pthread_mutex_lock(&names_lock);
    e->next = names;
    names = e;
    pthread_mutex_unlock(&names_lock);
    *out = e->name;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction f)
{
    return get_name(VG_CALL_FUNC_GET_NAME, H(f), name);
}

CUresult CUDAAPI cuKernelGetName(const char **name, CUkernel k)
{
    return get_name(VG_CALL_KERNEL_GET_NAME, H(k), name);
}

CUresult CUDAAPI cuLibraryLoadFromFile(CUlibrary *lib, const char *path, CUjit_option *jo, void **jv,
                                       unsigned int njo, CUlibraryOption *lo, void **lv, unsigned int nlo)
{
    if (!lib || !path)
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    CUresult rc = CUDA_ERROR_INVALID_IMAGE;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > vg_conn_max_bulk())
        goto done;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto done;
    buf[st.st_size] = 0;
    rc = cuLibraryLoadData(lib, buf, jo, jv, njo, lo, lv, nlo);
done:
    free(buf);
    fclose(f);
    return rc;
}

CUresult CUDAAPI cuKernelGetFunction(CUfunction *f, CUkernel k)
{
    uint64_t o[1];
    if (!f)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(KERNEL_GET_FUNCTION, o, 1, H(k));
    if (rc == CUDA_SUCCESS)
        *f = (CUfunction)(uintptr_t)o[0];
    return rc;
}

/* ---- functions and launches ----------------------------------------------------------------------- */

/* Parameter layouts by function handle, fetched once from the server (which asks the driver's
 * cuFuncGetParamInfo). layout_lock protects the list; entries are never freed, so a pointer
 * handed out stays valid. */
struct layout {
    struct layout *next;
    uint64_t func;
    int n;
    uint32_t bytes;
    uint32_t *off, *size;
    int max_threads; /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, to reject launches at the call */
};
static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static struct layout *layouts;

/* In a forked child only: the parent's entries are left allocated (another thread of the parent
 * may have been reading them when it forked). */
static void forget_layouts(void)
{
    pthread_mutex_init(&layout_lock, NULL);
    layouts = NULL;
}

static CUresult get_layout(uint64_t func, const struct layout **out)
{
    pthread_mutex_lock(&layout_lock);
    for (struct layout *l = layouts; l; l = l->next)
        if (l->func == func) {
            pthread_mutex_unlock(&layout_lock);
            *out = l;
            return CUDA_SUCCESS;
        }
    pthread_mutex_unlock(&layout_lock);

    uint64_t *o = NULL;
    size_t no = 0;
    struct vg_rpc r = {.call = VG_CALL_FUNC_GET_PARAM_LAYOUT, .ctx = cur_ctx(), .args = ARGV(func), .nargs = 1,
                       .outs_alloc = &o, .nouts_alloc = &no};
    CUresult rc = vg_conn_call(&r);
    if (rc != CUDA_SUCCESS) {
        free(o);
        return rc;
    }
    struct layout *l = calloc(1, sizeof *l);
    if (!l || no < 1 || o[0] > 4096 || no != 1 + 2 * o[0]) {
        free(l);
        free(o);
        return l ? CUDA_ERROR_UNKNOWN : CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->func = func;
    l->n = (int)o[0];
    l->off = calloc((size_t)l->n + 1, sizeof *l->off);
    l->size = calloc((size_t)l->n + 1, sizeof *l->size);
    if (!l->off || !l->size) {
        free(l->off);
        free(l->size);
        free(l);
        free(o);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < l->n; i++) {
        l->off[i] = (uint32_t)o[1 + 2 * i];
        l->size[i] = (uint32_t)o[2 + 2 * i];
        if (o[1 + 2 * i] > 65536 || o[2 + 2 * i] > 65536) {
            free(l->off);
            free(l->size);
            free(l);
            free(o);
            return CUDA_ERROR_UNKNOWN;
        }
        if (l->off[i] + l->size[i] > l->bytes)
            l->bytes = l->off[i] + l->size[i];
    }
    free(o);
    uint64_t mt = 0;
    if (FWD(FUNC_GET_ATTRIBUTE, &mt, 1, (uint64_t)CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, func) != CUDA_SUCCESS ||
        (int)mt <= 0)
        mt = 1024;
    l->max_threads = (int)mt;
    pthread_mutex_lock(&layout_lock);
    l->next = layouts;
    layouts = l;
    pthread_mutex_unlock(&layout_lock);
    *out = l;
    return CUDA_SUCCESS;
}

static CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                       unsigned bz, unsigned shmem, CUstream s, void **params, void **extra, int per_thread)
{
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    const struct layout *l;
    CUresult rc = get_layout(H(f), &l);
    if (rc != CUDA_SUCCESS)
        return rc;
    /* A launch is pipelined, but a bad configuration must fail at the call as on a GPU (the
     * runtime's cudaGetLastError after <<<>>> relies on it): check the limits every CUDA device
     * shares and the function's own thread limit here. */
    if (!gx || !gy || !gz || !bx || !by || !bz || gx > 2147483647u || gy > 65535 || gz > 65535 ||
        bx > 1024 || by > 1024 || bz > 64 || (uint64_t)bx * by * bz > (uint64_t)l->max_threads ||
        (params && extra))
        return CUDA_ERROR_INVALID_VALUE;
    uint8_t stackbuf[512];
    uint8_t *buf = stackbuf;
    const void *bulk = NULL;
    size_t bulk_len = 0;
    if (params) {
        if (l->bytes > sizeof stackbuf) {
            buf = calloc(1, l->bytes);
            if (!buf)
                return CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            memset(buf, 0, l->bytes);
        }
        for (int i = 0; i < l->n; i++) {
            if (!params[i]) {
                rc = CUDA_ERROR_INVALID_VALUE;
                goto done;
            }
            memcpy(buf + l->off[i], params[i], l->size[i]);
        }
        bulk = buf;
        bulk_len = l->bytes;
    } else if (extra) {
        const void *pbuf = NULL;
        size_t psize = 0;
        int have_size = 0;
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (i > 64) {
                rc = CUDA_ERROR_INVALID_VALUE;
                goto done;
            }
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                pbuf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1]) {
                psize = *(size_t *)extra[i + 1];
                have_size = 1;
            } else {
                rc = CUDA_ERROR_INVALID_VALUE;
                goto done;
            }
        }
        if (!pbuf || !have_size || psize < l->bytes) {
            rc = CUDA_ERROR_INVALID_VALUE;
            goto done;
        }
        bulk = pbuf;
        bulk_len = psize;
    } else if (l->n > 0) {
        rc = CUDA_ERROR_INVALID_VALUE;
        goto done;
    }
    struct vg_rpc r = {.call = VG_CALL_LAUNCH_KERNEL, .ctx = cur_ctx(),
                       .args = ARGV(H(f), gx, gy, gz, bx, by, bz, shmem, default_stream(s, per_thread)),
                       .nargs = 9, .bulk = bulk, .bulk_len = bulk_len};
    rc = vg_conn_call(&r);
done:
    if (buf != stackbuf)
        free(buf);
    return rc;
}

#undef cuLaunchKernel
#undef cuLaunchKernelEx
CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                void **extra)
{
    return launch(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, 0);
}

CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                     unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                     void **extra);
CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                     unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                     void **extra)
{
    return launch(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, 1);
}

static CUresult launch_ex(const CUlaunchConfig *c, CUfunction f, void **params, void **extra, int per_thread)
{
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < c->numAttrs; i++) {
        /* Attributes that only tune scheduling are safe to drop; others change semantics. */
        switch (c->attrs[i].id) {
        case CU_LAUNCH_ATTRIBUTE_IGNORE:
        case CU_LAUNCH_ATTRIBUTE_PRIORITY:
        case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
            break;
        case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
            if (c->attrs[i].value.cooperative == 0)
                break;
            return CUDA_ERROR_NOT_SUPPORTED;
        default:
            return CUDA_ERROR_NOT_SUPPORTED;
        }
    }
    return launch(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ,
                  c->sharedMemBytes, c->hStream, params, extra, per_thread);
}

CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    return launch_ex(c, f, params, extra, 0);
}

CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra);
CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    return launch_ex(c, f, params, extra, 1);
}

CUresult CUDAAPI cuFuncGetParamInfo(CUfunction f, size_t index, size_t *offset, size_t *size)
{
    const struct layout *l;
    CUresult rc = get_layout(H(f), &l);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (index >= (size_t)l->n)
        return CUDA_ERROR_INVALID_VALUE;
    if (offset)
        *offset = l->off[index];
    if (size)
        *size = l->size[index];
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction f)
{
    uint64_t o[1];
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(FUNC_GET_ATTRIBUTE, o, 1, (uint64_t)attrib, H(f));
    if (rc == CUDA_SUCCESS)
        *pi = (int)o[0];
    return rc;
}

CUresult CUDAAPI cuFuncSetAttribute(CUfunction f, CUfunction_attribute attrib, int value)
{
    return FWD(FUNC_SET_ATTRIBUTE, NULL, 0, H(f), (uint64_t)attrib, (uint64_t)(int64_t)value);
}

CUresult CUDAAPI cuFuncSetCacheConfig(CUfunction f, CUfunc_cache config)
{
    return FWD(FUNC_SET_CACHE_CONFIG, NULL, 0, H(f), (uint64_t)config);
}

CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *n, CUfunction f, int block,
                                                                     size_t shmem, unsigned int flags)
{
    uint64_t o[1];
    if (!n)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(OCCUPANCY_MAX_BLOCKS, o, 1, H(f), (uint64_t)(int64_t)block, shmem, flags);
    if (rc == CUDA_SUCCESS)
        *n = (int)o[0];
    return rc;
}

CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessor(int *n, CUfunction f, int block, size_t shmem)
{
    uint64_t o[1];
    if (!n)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(OCCUPANCY_MAX_BLOCKS, o, 1, H(f), (uint64_t)(int64_t)block, shmem);
    if (rc == CUDA_SUCCESS)
        *n = (int)o[0];
    return rc;
}

/* ---- streams and events ------------------------------------------------------------------------- */

CUresult CUDAAPI cuStreamCreate(CUstream *s, unsigned int flags)
{
    uint64_t o[1];
    if (!s)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(STREAM_CREATE, o, 1, flags, 0, 0);
    if (rc == CUDA_SUCCESS)
        *s = (CUstream)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuStreamCreateWithPriority(CUstream *s, unsigned int flags, int priority)
{
    uint64_t o[1];
    if (!s)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(STREAM_CREATE, o, 1, flags, (uint64_t)(int64_t)priority, 1);
    if (rc == CUDA_SUCCESS)
        *s = (CUstream)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuStreamDestroy(CUstream s)
{
    if (!s)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(STREAM_DESTROY, NULL, 0, H(s));
}

#undef cuStreamSynchronize
#undef cuStreamQuery
#undef cuStreamWaitEvent
#undef cuStreamGetPriority
#undef cuStreamGetFlags
#undef cuEventRecord
#define VG_STREAM_FN(name, id)                                                \
    CUresult CUDAAPI name(CUstream s);                                        \
    CUresult CUDAAPI name##_ptsz(CUstream s);                                 \
    CUresult CUDAAPI name(CUstream s)                                         \
    {                                                                         \
        return FWD(id, NULL, 0, default_stream(s, 0));                        \
    }                                                                         \
    CUresult CUDAAPI name##_ptsz(CUstream s)                                  \
    {                                                                         \
        return FWD(id, NULL, 0, default_stream(s, 1));                        \
    }
VG_STREAM_FN(cuStreamSynchronize, STREAM_SYNCHRONIZE)
VG_STREAM_FN(cuStreamQuery, STREAM_QUERY)

static CUresult stream_wait(CUstream s, CUevent e, unsigned flags, int pt)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(STREAM_WAIT_EVENT, NULL, 0, default_stream(s, pt), H(e), flags);
}
CUresult CUDAAPI cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags)
{
    return stream_wait(s, e, flags, 0);
}
CUresult CUDAAPI cuStreamWaitEvent_ptsz(CUstream s, CUevent e, unsigned int flags);
CUresult CUDAAPI cuStreamWaitEvent_ptsz(CUstream s, CUevent e, unsigned int flags)
{
    return stream_wait(s, e, flags, 1);
}

static CUresult stream_get(unsigned call, CUstream s, int pt, uint64_t *v)
{
    return rpc(call, ARGV(default_stream(s, pt)), 1, v, 1);
}
CUresult CUDAAPI cuStreamGetPriority(CUstream s, int *p)
{
    uint64_t v;
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = stream_get(VG_CALL_STREAM_GET_PRIORITY, s, 0, &v);
    if (rc == CUDA_SUCCESS)
        *p = (int)v;
    return rc;
}
CUresult CUDAAPI cuStreamGetPriority_ptsz(CUstream s, int *p);
CUresult CUDAAPI cuStreamGetPriority_ptsz(CUstream s, int *p)
{
    uint64_t v;
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = stream_get(VG_CALL_STREAM_GET_PRIORITY, s, 1, &v);
    if (rc == CUDA_SUCCESS)
        *p = (int)v;
    return rc;
}
CUresult CUDAAPI cuStreamGetFlags(CUstream s, unsigned int *f)
{
    uint64_t v;
    if (!f)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = stream_get(VG_CALL_STREAM_GET_FLAGS, s, 0, &v);
    if (rc == CUDA_SUCCESS)
        *f = (unsigned)v;
    return rc;
}
CUresult CUDAAPI cuStreamGetFlags_ptsz(CUstream s, unsigned int *f);
CUresult CUDAAPI cuStreamGetFlags_ptsz(CUstream s, unsigned int *f)
{
    uint64_t v;
    if (!f)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = stream_get(VG_CALL_STREAM_GET_FLAGS, s, 1, &v);
    if (rc == CUDA_SUCCESS)
        *f = (unsigned)v;
    return rc;
}

#undef cuStreamGetCtx
#undef cuStreamGetId
#undef cuStreamGetDevice
static CUresult stream_ctx(CUstream s, int pt, CUcontext *pctx)
{
    uint64_t v;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rpc(VG_CALL_STREAM_GET_CTX, ARGV(default_stream(s, pt)), 1, &v, 1);
    if (rc == CUDA_SUCCESS)
        *pctx = (CUcontext)(uintptr_t)v;
    return rc;
}
CUresult CUDAAPI cuStreamGetCtx(CUstream s, CUcontext *pctx)
{
    return stream_ctx(s, 0, pctx);
}
CUresult CUDAAPI cuStreamGetCtx_ptsz(CUstream s, CUcontext *pctx);
CUresult CUDAAPI cuStreamGetCtx_ptsz(CUstream s, CUcontext *pctx)
{
    return stream_ctx(s, 1, pctx);
}
static CUresult stream_id(CUstream s, int pt, unsigned long long *id)
{
    uint64_t v;
    if (!id)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = stream_get(VG_CALL_STREAM_GET_ID, s, pt, &v);
    if (rc == CUDA_SUCCESS)
        *id = v;
    return rc;
}
CUresult CUDAAPI cuStreamGetId(CUstream s, unsigned long long *id)
{
    return stream_id(s, 0, id);
}
CUresult CUDAAPI cuStreamGetId_ptsz(CUstream s, unsigned long long *id);
CUresult CUDAAPI cuStreamGetId_ptsz(CUstream s, unsigned long long *id)
{
    return stream_id(s, 1, id);
}
static CUresult stream_device(CUstream s, int pt, CUdevice *dev)
{
    CUcontext c;
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = stream_ctx(s, pt, &c);
    if (rc != CUDA_SUCCESS)
        return rc;
    uint64_t o[1];
    struct vg_rpc r = {.call = VG_CALL_CTX_GET_DEVICE, .ctx = H(c), .outs = o, .nouts = 1};
    rc = vg_conn_call(&r);
    if (rc == CUDA_SUCCESS)
        *dev = (CUdevice)o[0];
    return rc;
}
CUresult CUDAAPI cuStreamGetDevice(CUstream s, CUdevice *dev)
{
    return stream_device(s, 0, dev);
}
CUresult CUDAAPI cuStreamGetDevice_ptsz(CUstream s, CUdevice *dev);
CUresult CUDAAPI cuStreamGetDevice_ptsz(CUstream s, CUdevice *dev)
{
    return stream_device(s, 1, dev);
}

CUresult CUDAAPI cuEventCreate(CUevent *e, unsigned int flags)
{
    uint64_t o[1];
    if (!e)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(EVENT_CREATE, o, 1, flags);
    if (rc == CUDA_SUCCESS)
        *e = (CUevent)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuEventDestroy(CUevent e)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_DESTROY, NULL, 0, H(e));
}

CUresult CUDAAPI cuEventRecord(CUevent e, CUstream s)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_RECORD, NULL, 0, H(e), default_stream(s, 0));
}

CUresult CUDAAPI cuEventRecord_ptsz(CUevent e, CUstream s);
CUresult CUDAAPI cuEventRecord_ptsz(CUevent e, CUstream s)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_RECORD, NULL, 0, H(e), default_stream(s, 1));
}

static CUresult record_flags(CUevent e, CUstream s, unsigned flags, int pt)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_RECORD, NULL, 0, H(e), default_stream(s, pt), flags);
}
#undef cuEventRecordWithFlags
CUresult CUDAAPI cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int flags)
{
    return record_flags(e, s, flags, 0);
}
CUresult CUDAAPI cuEventRecordWithFlags_ptsz(CUevent e, CUstream s, unsigned int flags);
CUresult CUDAAPI cuEventRecordWithFlags_ptsz(CUevent e, CUstream s, unsigned int flags)
{
    return record_flags(e, s, flags, 1);
}

/* Host functions run in the client: once the stream's earlier work is done, in the calling thread,
 * before the call returns — so work queued later also runs after them, as the API requires. */
static CUresult host_func(CUstream s, int pt, CUhostFn fn, CUstreamCallback cb, void *data)
{
    if (!fn && !cb)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(STREAM_SYNCHRONIZE, NULL, 0, default_stream(s, pt));
    if (fn) {
        if (rc == CUDA_SUCCESS)
            fn(data);
        return rc;
    }
    cb(s, rc, data); /* a callback also learns of an earlier failure */
    return CUDA_SUCCESS;
}
#undef cuLaunchHostFunc
#undef cuStreamAddCallback
CUresult CUDAAPI cuLaunchHostFunc(CUstream s, CUhostFn fn, void *data)
{
    return host_func(s, 0, fn, NULL, data);
}
CUresult CUDAAPI cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void *data);
CUresult CUDAAPI cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void *data)
{
    return host_func(s, 1, fn, NULL, data);
}
CUresult CUDAAPI cuStreamAddCallback(CUstream s, CUstreamCallback cb, void *data, unsigned int flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return host_func(s, 0, NULL, cb, data);
}
CUresult CUDAAPI cuStreamAddCallback_ptsz(CUstream s, CUstreamCallback cb, void *data, unsigned int flags);
CUresult CUDAAPI cuStreamAddCallback_ptsz(CUstream s, CUstreamCallback cb, void *data, unsigned int flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return host_func(s, 1, NULL, cb, data);
}

CUresult CUDAAPI cuEventSynchronize(CUevent e)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_SYNCHRONIZE, NULL, 0, H(e));
}

CUresult CUDAAPI cuEventQuery(CUevent e)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_QUERY, NULL, 0, H(e));
}

CUresult CUDAAPI cuEventElapsedTime(float *ms, CUevent start, CUevent end)
{
    uint64_t o[1];
    if (!ms)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(EVENT_ELAPSED_TIME, o, 1, H(start), H(end));
    if (rc == CUDA_SUCCESS) {
        uint32_t bits = (uint32_t)o[0];
        memcpy(ms, &bits, sizeof *ms);
    }
    return rc;
}
