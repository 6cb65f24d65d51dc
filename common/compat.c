/* Driver entry points that are a newer form of a call both libcuda.so.1 builds already
 * implement, written once here in terms of that call, weak: the stub forwards them as calls of
 * their own (protocol/cuda.calls) and its definitions win. (Same-ABI aliases, such as cuCtxDestroy for
 * cuCtxDestroy_v2, need no code: gen_cuapi.py emits a jump for each.) The CUDA 13 runtime
 * resolves both functions below at start-up. */
#include <cuda.h>
#include <cudaProfiler.h>

/* Runs fn with ctx current on this thread, as if the caller had pushed it; ctx NULL means the
 * current context. */
static CUresult with_context(CUcontext ctx, CUresult (*fn)(void *), void *arg)
{
    if (!ctx)
        return fn(arg);
    CUresult rc = cuCtxPushCurrent(ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    rc = fn(arg);
    CUcontext popped;
    CUresult pop_rc = cuCtxPopCurrent(&popped);
    return rc != CUDA_SUCCESS ? rc : pop_rc;
}

static CUresult get_device(void *device)
{
    return cuCtxGetDevice(device);
}

static CUresult synchronize(void *unused)
{
    (void)unused;
    return cuCtxSynchronize();
}

__attribute__((weak)) CUresult CUDAAPI cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    return with_context(ctx, get_device, device);
}

__attribute__((weak)) CUresult CUDAAPI cuCtxSynchronize_v2(CUcontext ctx)
{
    return with_context(ctx, synchronize, NULL);
}

/* Profiling starts and stops for the profiler attached to the process; with none attached the
 * driver does nothing and succeeds (the driver API reference, cuProfilerStart), which is the
 * emulated GPU's case. The stub forwards both to gpu-server's driver. */
__attribute__((weak)) CUresult CUDAAPI cuProfilerStart(void)
{
    return CUDA_SUCCESS;
}

__attribute__((weak)) CUresult CUDAAPI cuProfilerStop(void)
{
    return CUDA_SUCCESS;
}
