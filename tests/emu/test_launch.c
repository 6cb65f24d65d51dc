/* Cooperative launches, cuLaunchKernelEx and its attributes, the occupancy API, kernel cache
 * configuration, and profiler control through cuGetProcAddress. */
#include <cudaProfiler.h>
#include <string.h>

#include "emu_test.h"

enum { N = 4096 };

Test(launch, cooperative_grids_must_fit_the_device)
{
    emu_setup();
    int coop = 0, sms = 0;
    CK(cuDeviceGetAttribute(&coop, CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, 0));
    cr_assert_eq(coop, 1);
    CK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
    CUfunction f = emu_kernel("emu_iota");
    int per_sm = 0;
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, f, 256, 0));
    cr_assert_gt(per_sm, 0);
    unsigned fits = (unsigned)(per_sm * sms);
    CUdeviceptr d;
    CK(cuMemAlloc(&d, (size_t)fits * 256 * sizeof(int)));
    int n = (int)fits * 256, mul = 1, add = 2;
    void *args[] = {&d, &n, &mul, &add};
    CK(cuLaunchCooperativeKernel(f, fits, 1, 1, 256, 1, 1, 0, NULL, args));
    CK(cuCtxSynchronize());
    int last;
    CK(cuMemcpyDtoH(&last, d + (size_t)(n - 1) * 4, 4));
    cr_assert_eq(last, n - 1 + 2);
    cr_assert_eq(cuLaunchCooperativeKernel(f, fits + 1, 1, 1, 256, 1, 1, 0, NULL, args),
                 CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
    /* The same through cuLaunchKernelEx's attribute. */
    CUlaunchAttribute at;
    memset(&at, 0, sizeof at);
    at.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
    at.value.cooperative = 1;
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDimX = fits + 1;
    cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 256;
    cfg.blockDimY = cfg.blockDimZ = 1;
    cfg.attrs = &at;
    cfg.numAttrs = 1;
    cr_assert_eq(cuLaunchKernelEx(&cfg, f, args, NULL), CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
    cfg.gridDimX = fits;
    CK(cuLaunchKernelEx(&cfg, f, args, NULL));
    CK(cuCtxSynchronize());
}

Test(launch, launch_ex_attributes)
{
    emu_setup();
    CUfunction f = emu_kernel("emu_iota");
    CUdeviceptr d;
    CK(cuMemAlloc(&d, N * sizeof(int)));
    int n = N, mul = 2, add = 0;
    void *args[] = {&d, &n, &mul, &add};
    CUevent done;
    CK(cuEventCreate(&done, 0));
    CUlaunchAttribute at[3];
    memset(at, 0, sizeof at);
    at[0].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
    at[0].value.priority = -1;
    at[1].id = CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT;
    at[1].value.launchCompletionEvent.event = done;
    at[2].id = CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW;
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDimX = N / 256;
    cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 256;
    cfg.blockDimY = cfg.blockDimZ = 1;
    cfg.attrs = at;
    cfg.numAttrs = 3;
    CK(cuLaunchKernelEx(&cfg, f, args, NULL));
    CK(cuEventSynchronize(done)); /* recorded when the kernel is done */
    int v;
    CK(cuMemcpyDtoH(&v, d + 100 * 4, 4));
    cr_assert_eq(v, 200);
    /* Clusters need a newer device; unknown attributes are refused. */
    at[0].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    at[0].value.clusterDim.x = 2;
    at[0].value.clusterDim.y = at[0].value.clusterDim.z = 1;
    cfg.numAttrs = 1;
    cr_assert_eq(cuLaunchKernelEx(&cfg, f, args, NULL), CUDA_ERROR_NOT_SUPPORTED);
    at[0].id = (CUlaunchAttributeID)999;
    cr_assert_eq(cuLaunchKernelEx(&cfg, f, args, NULL), CUDA_ERROR_INVALID_VALUE);
    cfg.attrs = (CUlaunchAttribute *)(uintptr_t)0x10;
    cr_assert_eq(cuLaunchKernelEx(&cfg, f, args, NULL), CUDA_ERROR_INVALID_VALUE);
}

Test(launch, occupancy_api)
{
    emu_setup();
    CUfunction f = emu_kernel("emu_iota");
    int blocks = 0;
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 1024, 0));
    cr_assert_eq(blocks, 1);
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, f, 64, 0,
                                                             CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE));
    cr_assert_eq(blocks, 16);
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 128, 32 * 1024));
    cr_assert_eq(blocks, 2, "64 KiB of shared memory per multiprocessor");
    cr_assert_eq(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, f, 64, 0, 0x80),
                 CUDA_ERROR_INVALID_VALUE);
    int grid = 0, block = 0, sms = 0;
    CK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
    CK(cuOccupancyMaxPotentialBlockSize(&grid, &block, f, NULL, 0, 0));
    cr_assert_eq(block % 32, 0);
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, block, 0));
    cr_assert_eq(grid, blocks * sms);
    CK(cuOccupancyMaxPotentialBlockSizeWithFlags(&grid, &block, f, NULL, 0, 96, 0));
    cr_assert_leq(block, 96);
    size_t smem = 0;
    CK(cuOccupancyAvailableDynamicSMemPerBlock(&smem, f, 4, 128));
    cr_assert_eq(smem, 16 * 1024);
    CK(cuOccupancyAvailableDynamicSMemPerBlock(&smem, f, 64, 1024));
    cr_assert_eq(smem, 0, "64 blocks of 1024 threads do not fit at all");
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    int cluster;
    cr_assert_eq(cuOccupancyMaxPotentialClusterSize(&cluster, f, &cfg), CUDA_ERROR_NOT_SUPPORTED);
}

Test(launch, kernel_cache_config_and_profiler)
{
    emu_setup();
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CUlibrary lib;
    CK(cuLibraryLoadData(&lib, ptx, NULL, NULL, 0, NULL, NULL, 0));
    free(ptx);
    CUkernel k;
    CK(cuLibraryGetKernel(&k, lib, "emu_iota"));
    CK(cuKernelSetCacheConfig(k, CU_FUNC_CACHE_PREFER_SHARED, 0));
    cr_assert_eq(cuKernelSetCacheConfig(k, (CUfunc_cache)9, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuKernelSetCacheConfig(k, CU_FUNC_CACHE_PREFER_L1, 5), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuKernelSetCacheConfig((CUkernel)&k, CU_FUNC_CACHE_PREFER_L1, 0),
                 CUDA_ERROR_INVALID_HANDLE);
    CK(cuLibraryUnload(lib));

    /* The runtime finds profiler control through cuGetProcAddress. */
    CUresult (*start)(void) = NULL, (*stop)(void) = NULL;
    CUdriverProcAddressQueryResult status;
    CK(cuGetProcAddress("cuProfilerStart", (void **)&start, 12000, 0, &status));
    cr_assert_eq(status, CU_GET_PROC_ADDRESS_SUCCESS);
    CK(cuGetProcAddress("cuProfilerStop", (void **)&stop, 12000, 0, &status));
    cr_assert(start && stop);
    CK(start());
    CK(stop());
    CK(cuProfilerStart());
}
