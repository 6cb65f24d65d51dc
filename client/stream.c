/* Host functions and stream callbacks. */
#include <cuda.h>
#include "stub.h"

CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream s);

/* Host functions run in the client: once the stream's earlier work is done, in the calling thread,
 * before the call returns — so work queued later also runs after them, as the API requires. */
static CUresult host_func(CUstream s, int pt, CUhostFn fn, CUstreamCallback cb, void *data)
{
    if (!fn && !cb)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = pt ? cuStreamSynchronize_ptsz(s) : cuStreamSynchronize(s);
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

