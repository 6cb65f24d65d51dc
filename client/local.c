/* Driver calls the stub answers from other calls or on its own: no wire format of their own.
 * Context cache and shared-memory configurations are hints a device may ignore; this one does. */
#include <cuda.h>
#include <stddef.h>
#include <strings.h>

CUresult CUDAAPI cuCtxGetCacheConfig(CUfunc_cache *config)
{
    if (!config)
        return CUDA_ERROR_INVALID_VALUE;
    *config = CU_FUNC_CACHE_PREFER_NONE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCacheConfig(CUfunc_cache config)
{
    return config <= CU_FUNC_CACHE_PREFER_EQUAL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuCtxGetSharedMemConfig(CUsharedconfig *config)
{
    if (!config)
        return CUDA_ERROR_INVALID_VALUE;
    *config = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetProperties(CUdevprop *p, CUdevice dev)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    static const CUdevice_attribute attrs[] = {
        CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK,   CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X,
        CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y,         CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z,
        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X,          CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y,
        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z,          CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK,
        CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY,   CU_DEVICE_ATTRIBUTE_WARP_SIZE,
        CU_DEVICE_ATTRIBUTE_MAX_PITCH,               CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK,
        CU_DEVICE_ATTRIBUTE_CLOCK_RATE,              CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT,
    };
    int *fields[] = {&p->maxThreadsPerBlock, &p->maxThreadsDim[0], &p->maxThreadsDim[1],
                     &p->maxThreadsDim[2],   &p->maxGridSize[0],   &p->maxGridSize[1],
                     &p->maxGridSize[2],     &p->sharedMemPerBlock, &p->totalConstantMemory,
                     &p->SIMDWidth,          &p->memPitch,         &p->regsPerBlock,
                     &p->clockRate,          &p->textureAlign};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        CUresult rc = cuDeviceGetAttribute(fields[i], attrs[i], dev);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetByPCIBusId(CUdevice *dev, const char *bus_id)
{
    int n = 0;
    if (!dev || !bus_id)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = cuDeviceGetCount(&n);
    if (rc != CUDA_SUCCESS)
        return rc;
    for (int i = 0; i < n; i++) {
        char id[64];
        if (cuDeviceGetPCIBusId(id, sizeof id, i) == CUDA_SUCCESS && strcasecmp(id, bus_id) == 0) {
            *dev = i;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_DEVICE;
}

CUresult CUDAAPI cuKernelGetParamInfo(CUkernel k, size_t index, size_t *offset, size_t *size)
{
    /* The server's layout query accepts kernels as well as functions. */
    return cuFuncGetParamInfo((CUfunction)k, index, offset, size);
}

/* The block size with the most resident threads per multiprocessor, asking the server's
 * occupancy calculator for each multiple of the warp size (the dynamic shared memory may depend
 * on the block size through the caller's callback, which only runs here). */
CUresult CUDAAPI cuOccupancyMaxPotentialBlockSize(int *min_grid, int *block_size, CUfunction f,
                                                  CUoccupancyB2DSize smem_for_block, size_t smem, int limit)
{
    if (!min_grid || !block_size || !f)
        return CUDA_ERROR_INVALID_VALUE;
    int max_threads = 0, warp = 32, sms = 1;
    CUresult rc = cuFuncGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f);
    CUdevice dev;
    if (rc == CUDA_SUCCESS)
        rc = cuCtxGetDevice(&dev);
    if (rc == CUDA_SUCCESS)
        rc = cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev);
    if (rc == CUDA_SUCCESS)
        rc = cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (limit > 0 && limit < max_threads)
        max_threads = limit;
    if (warp <= 0)
        warp = 32;
    int best_block = 0, best_threads = -1, best_blocks = 0;
    for (int b = max_threads - max_threads % warp; b > 0; b -= warp) {
        int blocks = 0;
        size_t dyn = smem_for_block ? smem_for_block(b) : smem;
        rc = cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, b, dyn);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (blocks * b > best_threads) {
            best_threads = blocks * b;
            best_block = b;
            best_blocks = blocks;
        }
    }
    if (best_block == 0)
        return CUDA_ERROR_INVALID_VALUE;
    *block_size = best_block;
    *min_grid = best_blocks * sms;
    return CUDA_SUCCESS;
}
