/* vg_drv: the table of CUDA driver entry points gpu-server calls, filled from a dlopen()ed
 * libcuda.so.1 (NVIDIA's or the emulated GPU).
 *
 * Each entry is declared with the type cuda.h gives the name at CUDA_VERSION (so `cuMemAlloc` is a
 * pointer of cuMemAlloc_v2's type, field name cuMemAlloc_v2) and resolved with the driver's
 * dlsym of that versioned name, falling back to the driver's cuGetProcAddress_v2 by base name at
 * CUDA_VERSION (see driver.c for why dlsym comes first).
 * Entries the driver lacks stay NULL; callers check with VG_DRV_HAS. */
#ifndef VG_DRIVER_H
#define VG_DRIVER_H

#include <cuda.h>

#define VG_DRV_FUNCS(X)                                                                        \
    X(cuInit) X(cuDriverGetVersion) X(cuDeviceGet) X(cuDeviceGetCount) X(cuDeviceGetName)      \
    X(cuDeviceGetAttribute) X(cuDeviceTotalMem) X(cuDeviceGetUuid) X(cuDevicePrimaryCtxRetain) \
    X(cuDevicePrimaryCtxRelease) X(cuDevicePrimaryCtxReset) X(cuDevicePrimaryCtxGetState)      \
    X(cuDevicePrimaryCtxSetFlags) X(cuCtxCreate) X(cuCtxDestroy) X(cuCtxSetCurrent)            \
    X(cuCtxGetCurrent) X(cuCtxSynchronize) X(cuCtxGetApiVersion) X(cuCtxGetFlags)              \
    X(cuCtxSetLimit) X(cuCtxGetLimit) X(cuCtxGetStreamPriorityRange) X(cuMemAlloc) X(cuMemFree) \
    X(cuMemGetInfo) X(cuMemGetAddressRange) X(cuMemsetD8Async) X(cuMemsetD16Async)             \
    X(cuMemsetD32Async) X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync)         \
    X(cuMemcpyHtoD) X(cuMemcpyDtoH) X(cuMemcpyDtoD) X(cuModuleLoadData) X(cuModuleUnload)      \
    X(cuModuleGetFunction) X(cuModuleGetGlobal) X(cuLibraryLoadData) X(cuLibraryUnload)        \
    X(cuLibraryGetKernel) X(cuLibraryGetModule) X(cuKernelGetFunction) X(cuFuncGetParamInfo)   \
    X(cuFuncGetAttribute) X(cuFuncSetAttribute) X(cuFuncSetCacheConfig) X(cuLaunchKernel)      \
    X(cuStreamCreate) X(cuStreamCreateWithPriority) X(cuStreamDestroy) X(cuStreamSynchronize)  \
    X(cuStreamQuery) X(cuStreamWaitEvent) X(cuStreamGetPriority) X(cuStreamGetFlags)           \
    X(cuEventCreate) X(cuEventDestroy) X(cuEventRecord) X(cuEventSynchronize) X(cuEventQuery)  \
    X(cuEventElapsedTime) X(cuPointerGetAttribute)                                             \
    X(cuOccupancyMaxActiveBlocksPerMultiprocessor) X(cuLibraryGetGlobal) X(cuKernelGetAttribute) X(cuEventRecordWithFlags)          \
    X(cuKernelSetAttribute) X(cuDeviceGetPCIBusId) X(cuStreamGetId) X(cuFuncGetName)             \
    X(cuKernelGetName) X(cuMemAllocPitch) X(cuMemsetD2D8Async) X(cuMemsetD2D16Async)             \
    X(cuMemsetD2D32Async) X(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags)                 \
    X(cuModuleGetFunctionCount) X(cuLibraryGetKernelCount) X(cuLibraryEnumerateKernels)          \
    X(cuFuncGetModule)                                                                         \
    X(cuMemcpy) X(cuMemcpyAsync) X(cuMemHostRegister) X(cuMemHostUnregister)

struct vg_drv {
#define VG_DRV_FIELD(name) __typeof__(name) *name;
    VG_DRV_FUNCS(VG_DRV_FIELD)
#undef VG_DRV_FIELD
    void *dl;
    char desc[512]; /* "emulated GPU (/path)" or "NVIDIA driver (/path)", for logs and Welcome */
    char path[4096];  /* what was dlopen()ed */
    char kind[64];    /* "emulated GPU", "NVIDIA driver" or "driver" */
    int device_count;
};

#define VG_DRV_HAS(drv, name) ((drv)->name != NULL)

/* Opens the driver named by `which`: "auto", "emulated" or a path. exe_dir is the directory of
 * the gpu-server binary (the emulated driver is <exe_dir>/../lib/emulated/libcuda.so.1).
 * Says nothing on success: gpu-server's main process prints which driver it chose.
 * On success the driver is initialised (cuInit(0)) and has at least one device.
 * Returns 0, or -1 with a logged reason. */
int vg_drv_open(struct vg_drv *drv, const char *which, const char *exe_dir);
/* Opens the driver an earlier vg_drv_open chose (its path and kind), without the driver line:
 * how each session process opens what the start-up probe picked. 0 or -1 (logged). */
int vg_drv_reopen(struct vg_drv *drv, const char *path, const char *kind);
void vg_drv_close(struct vg_drv *drv);

#endif
