/* Driver calls the stub answers from other calls or on its own: no wire format of their own. */
#include <cuda.h>
#include <stddef.h>

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

CUresult CUDAAPI cuOccupancyMaxPotentialBlockSizeWithFlags(int *min_grid, int *block_size, CUfunction f,
                                                           CUoccupancyB2DSize smem_for_block, size_t smem,
                                                           int limit, unsigned int flags)
{
    /* The flags only change the answer for caching-mode differences this estimate ignores. */
    (void)flags;
    return cuOccupancyMaxPotentialBlockSize(min_grid, block_size, f, smem_for_block, smem, limit);
}
