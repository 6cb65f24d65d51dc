/* probe_driver: a minimal CUDA "driver" with one device and no memory or kernels.
 *
 * It is linked with vgapi (cuGetProcAddress, the export tables, the weak fallbacks) so that the
 * runtime's start-up (entry-point resolution, export tables, device queries, primary context)
 * can be tested without the emulated GPU: it checks common/procaddr.c and common/darkapi.c in
 * isolation. Everything else returns CUDA_ERROR_NOT_SUPPORTED through the fallbacks. */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* One fake context object per device; only its address matters to callers. */
static struct probe_ctx {
    int device;
} primary = {0};

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER; /* guards probe_initialized, refs */
static int probe_initialized;
static int primary_refs;
static __thread CUcontext current;

CUresult CUDAAPI cuInit(unsigned int flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    vg_log_set_component("probe");
    pthread_mutex_lock(&probe_lock);
    probe_initialized = 1;
    pthread_mutex_unlock(&probe_lock);
    return CUDA_SUCCESS;
}

static int initialized(void)
{
    pthread_mutex_lock(&probe_lock);
    int v = probe_initialized;
    pthread_mutex_unlock(&probe_lock);
    return v;
}

CUresult CUDAAPI cuDriverGetVersion(int *version)
{
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    *version = CUDA_VERSION;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int *count)
{
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    if (!initialized())
        return CUDA_ERROR_NOT_INITIALIZED;
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGet(CUdevice *dev, int ordinal)
{
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    if (!initialized())
        return CUDA_ERROR_NOT_INITIALIZED;
    if (ordinal != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *dev = 0;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev)
{
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)len, "vgpu probe device");
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *bytes = (size_t)1 << 30;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    memcpy(uuid->bytes, "vgpu-probe-dev-0", 16);
    return CUDA_SUCCESS;
}

/* cuda.h maps cuDeviceGetUuid to _v2 above; the CUDA 9.2 ABI is the same call. */
#undef cuDeviceGetUuid
CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev);
CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    return cuDeviceGetUuid_v2(uuid, dev);
}

CUresult CUDAAPI cuDeviceGetAttribute(int *value, CUdevice_attribute attrib, CUdevice dev)
{
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *value = 64; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *value = 0x7fffffff; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *value = 65535; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *value = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *value = 48 * 1024; break;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: *value = 64 * 1024; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = 2; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 7; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = 5; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *value = 2048; break;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *value = 1000000; break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *value = 1; break;
    default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&probe_lock);
    primary_refs++;
    pthread_mutex_unlock(&probe_lock);
    *pctx = (CUcontext)&primary;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&probe_lock);
    if (primary_refs > 0)
        primary_refs--;
    pthread_mutex_unlock(&probe_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&probe_lock);
    *active = primary_refs > 0;
    pthread_mutex_unlock(&probe_lock);
    *flags = 0;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = current;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
    if (ctx && ctx != (CUcontext)&primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    current = ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice *dev)
{
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    if (!current)
        return CUDA_ERROR_INVALID_CONTEXT;
    *dev = 0;
    return CUDA_SUCCESS;
}

/* The runtime asks this right after the export tables and gives up (cudaErrorNotSupported) if
 * it fails. */
CUresult CUDAAPI cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    if (!mode)
        return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_EAGER_LOADING;
    return CUDA_SUCCESS;
}

/* The runtime registers each translation unit's fatbin here at its first call. The probe has no
 * kernels: it accepts the image (a __fatBinC_Wrapper_t or a fatbin) and hands back a token, so
 * that programs which only query devices run. Kernel lookups then fail as not supported. */
static int probe_library_token;

CUresult CUDAAPI cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jit_options,
                                   void **jit_values, unsigned int num_jit_options,
                                   CUlibraryOption *library_options, void **library_values,
                                   unsigned int num_library_options)
{
    (void)jit_options, (void)jit_values;
    if (!library || !code)
        return CUDA_ERROR_INVALID_VALUE;
    const unsigned *magic = code;
    vg_debug("probe cuLibraryLoadData(magic %#x, %u jit options, %u library options, first %d = %p)",
             magic[0], num_jit_options, num_library_options,
             num_library_options && library_options ? (int)library_options[0] : -1,
             num_library_options && library_values ? library_values[0] : NULL);
    *library = (CUlibrary)&probe_library_token;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryUnload(CUlibrary library)
{
    return library == (CUlibrary)&probe_library_token ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* CUDA 13.0 ABI: the device of ctx, or of the current context when ctx is NULL. */
CUresult CUDAAPI cuCtxGetDevice_v2(CUdevice *dev, CUcontext ctx)
{
    if (!dev)
        return CUDA_ERROR_INVALID_VALUE;
    if (!ctx)
        ctx = current;
    if (ctx != (CUcontext)&primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    *dev = 0;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctx && ctx != (CUcontext)&primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    *version = 3020; /* what NVIDIA's driver reports for primary contexts */
    return CUDA_SUCCESS;
}

/* The runtime resolves cuDevicePrimaryCtxRelease at version 7000: the CUDA 7.0 ABI symbol. */
#undef cuDevicePrimaryCtxRelease
CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev);
CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev)
{
    return cuDevicePrimaryCtxRelease_v2(dev);
}
