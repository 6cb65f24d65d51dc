// Launches beyond <<<>>>: cudaLaunchKernelEx with attributes, the occupancy API,
// cudaFuncGetAttributes, stream-ordered host functions and callbacks, profiler start/stop, and
// event timing around them; results compared with a CPU computation.
#include <atomic>
#include <cuda_profiler_api.h>

#include "rt_check.h"

__global__ void fill(int n, int base, int *v)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        v[i] = base + i;
}

__global__ void add(int n, const int *a, int *b)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        b[i] += a[i];
}

static std::atomic<int> order{0};
static int host_fn_saw = -1, callback_saw = -1;

static void CUDART_CB host_fn(void *arg)
{
    host_fn_saw = *(int *)arg; // the first element, copied back before this runs
    order.fetch_add(1);
}

static void CUDART_CB callback(cudaStream_t, cudaError_t status, void *arg)
{
    callback_saw = status == cudaSuccess ? *(int *)arg : -2;
    order.fetch_add(10);
}

int main()
{
    rt_seed();
    RT_CHECK(cudaProfilerStart());
    const int n = 5000;
    int *a = nullptr, *b = nullptr;
    RT_CHECK(cudaMalloc(&a, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&b, n * sizeof(int)));
    cudaStream_t s;
    RT_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    cudaFuncAttributes fa;
    RT_CHECK(cudaFuncGetAttributes(&fa, fill));
    RT_EXPECT(fa.maxThreadsPerBlock > 0, "maxThreadsPerBlock %d", fa.maxThreadsPerBlock);
    int blocks = 0, min_grid = 0, block = 0;
    RT_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, add, 128, 0));
    RT_CHECK(cudaOccupancyMaxPotentialBlockSize(&min_grid, &block, add, 0, 0));
    RT_EXPECT(blocks > 0 && block > 0 && block <= fa.maxThreadsPerBlock, "blocks %d, block %d", blocks, block);
    RT_OK("cudaFuncGetAttributes (%d threads, %d registers), occupancy %d blocks/SM, suggested block %d",
          fa.maxThreadsPerBlock, fa.numRegs, blocks, block);

    cudaEvent_t t0, t1;
    RT_CHECK(cudaEventCreate(&t0));
    RT_CHECK(cudaEventCreate(&t1));
    RT_CHECK(cudaEventRecord(t0, s));
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((n + block - 1) / block);
    cfg.blockDim = dim3(block);
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributePriority;
    attr[0].val.priority = 0;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    RT_CHECK(cudaLaunchKernelEx(&cfg, fill, n, 7, a));
    RT_CHECK(cudaLaunchKernelEx(&cfg, fill, n, 1000, b));
    cfg.numAttrs = 0;
    RT_CHECK(cudaLaunchKernelEx(&cfg, add, n, (const int *)a, b));
    int first = 0;
    RT_CHECK(cudaMemcpyAsync(&first, b, sizeof first, cudaMemcpyDeviceToHost, s));
    RT_CHECK(cudaLaunchHostFunc(s, host_fn, &first));
    RT_CHECK(cudaStreamAddCallback(s, callback, &first, 0));
    RT_CHECK(cudaEventRecord(t1, s));
    RT_CHECK(cudaStreamSynchronize(s));
    int *host = new int[n];
    RT_CHECK(cudaMemcpy(host, b, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        RT_EXPECT(host[i] == (7 + i) + (1000 + i), "b[%d] = %d", i, host[i]);
    RT_OK("cudaLaunchKernelEx with and without a priority attribute");
    RT_EXPECT(host_fn_saw == 1007 && callback_saw == 1007 && order.load() == 11,
              "host function saw %d, callback saw %d, order %d", host_fn_saw, callback_saw, order.load());
    RT_OK("a host function and a callback ran in stream order after the copy");
    float ms = -1;
    RT_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    RT_EXPECT(ms >= 0, "elapsed %f", ms);
    RT_OK("events around it: %.3f ms", ms);

    RT_CHECK(cudaProfilerStop());
    RT_CHECK(cudaStreamDestroy(s));
    RT_CHECK(cudaFree(a));
    RT_CHECK(cudaFree(b));
    delete[] host;
    RT_OK("profiler start/stop, cleaned up");
    return 0;
}
