/* Streams, events, host functions. */
#include <cuda.h>
#include <string.h>
#include "stub.h"

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
        return FWD(id, NULL, 0, vg_stub_stream(s, 0));                        \
    }                                                                         \
    CUresult CUDAAPI name##_ptsz(CUstream s)                                  \
    {                                                                         \
        return FWD(id, NULL, 0, vg_stub_stream(s, 1));                        \
    }
VG_STREAM_FN(cuStreamSynchronize, STREAM_SYNCHRONIZE)
VG_STREAM_FN(cuStreamQuery, STREAM_QUERY)

static CUresult stream_wait(CUstream s, CUevent e, unsigned flags, int pt)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(STREAM_WAIT_EVENT, NULL, 0, vg_stub_stream(s, pt), H(e), flags);
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
    return vg_stub_rpc(call, ARGV(vg_stub_stream(s, pt)), 1, v, 1);
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
    CUresult rc = vg_stub_rpc(VG_CALL_STREAM_GET_CTX, ARGV(vg_stub_stream(s, pt)), 1, &v, 1);
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
    return FWD(EVENT_RECORD, NULL, 0, H(e), vg_stub_stream(s, 0));
}

CUresult CUDAAPI cuEventRecord_ptsz(CUevent e, CUstream s);
CUresult CUDAAPI cuEventRecord_ptsz(CUevent e, CUstream s)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_RECORD, NULL, 0, H(e), vg_stub_stream(s, 1));
}

static CUresult record_flags(CUevent e, CUstream s, unsigned flags, int pt)
{
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    return FWD(EVENT_RECORD, NULL, 0, H(e), vg_stub_stream(s, pt), flags);
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
    CUresult rc = FWD(STREAM_SYNCHRONIZE, NULL, 0, vg_stub_stream(s, pt));
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
