// Streams and events (cudaStreamCreate, cudaMemcpyAsync, cudaEventRecord/Synchronize/
// ElapsedTime) with pinned host memory (cudaMallocHost, cudaHostAlloc, cudaFreeHost).
#include "rt_check.h"

__global__ void scale(int n, int factor, int *v)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        v[i] *= factor;
}

int main()
{
    rt_seed();
    const int n = 4096, streams = 3;
    int *host_in = nullptr, *host_out = nullptr;
    RT_CHECK(cudaMallocHost(&host_in, streams * n * sizeof(int)));
    RT_CHECK(cudaHostAlloc(&host_out, streams * n * sizeof(int), cudaHostAllocDefault));
    for (int i = 0; i < streams * n; i++) {
        host_in[i] = std::rand() % 10000;
        host_out[i] = -1;
    }
    RT_OK("pinned host memory from cudaMallocHost and cudaHostAlloc");

    cudaStream_t s[streams];
    int *dev[streams];
    cudaEvent_t start, stop;
    RT_CHECK(cudaEventCreate(&start));
    RT_CHECK(cudaEventCreate(&stop));
    for (int k = 0; k < streams; k++) {
        RT_CHECK(cudaStreamCreate(&s[k]));
        RT_CHECK(cudaMalloc(&dev[k], n * sizeof(int)));
    }
    RT_CHECK(cudaEventRecord(start, s[0]));
    for (int k = 0; k < streams; k++) {
        RT_CHECK(cudaMemcpyAsync(dev[k], host_in + k * n, n * sizeof(int), cudaMemcpyHostToDevice, s[k]));
        scale<<<n / 256, 256, 0, s[k]>>>(n, k + 2, dev[k]);
        RT_CHECK(cudaGetLastError());
        RT_CHECK(cudaMemcpyAsync(host_out + k * n, dev[k], n * sizeof(int), cudaMemcpyDeviceToHost, s[k]));
    }
    for (int k = 0; k < streams; k++)
        RT_CHECK(cudaStreamSynchronize(s[k]));
    RT_CHECK(cudaEventRecord(stop, s[0]));
    RT_CHECK(cudaEventSynchronize(stop));
    RT_CHECK(cudaEventQuery(stop));
    for (int k = 0; k < streams; k++)
        for (int i = 0; i < n; i++)
            RT_EXPECT(host_out[k * n + i] == host_in[k * n + i] * (k + 2), "stream %d element %d = %d", k,
                      i, host_out[k * n + i]);
    RT_OK("%d streams of async copy, kernel, copy back", streams);

    float ms = -1.0f;
    RT_CHECK(cudaEventElapsedTime(&ms, start, stop));
    RT_EXPECT(ms >= 0.0f, "elapsed time %f", ms);
    RT_OK("cudaEventElapsedTime is non-negative");

    // An event recorded after work on one stream orders another stream behind it.
    cudaEvent_t done;
    RT_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    RT_CHECK(cudaMemsetAsync(dev[0], 0, n * sizeof(int), s[0]));
    RT_CHECK(cudaEventRecord(done, s[0]));
    RT_CHECK(cudaStreamWaitEvent(s[1], done, 0));
    RT_CHECK(cudaMemcpyAsync(host_out, dev[0], n * sizeof(int), cudaMemcpyDeviceToHost, s[1]));
    RT_CHECK(cudaStreamSynchronize(s[1]));
    for (int i = 0; i < n; i++)
        RT_EXPECT(host_out[i] == 0, "element %d = %d after memset on another stream", i, host_out[i]);
    RT_OK("cudaStreamWaitEvent orders a second stream after a memset");

    for (int k = 0; k < streams; k++) {
        RT_CHECK(cudaFree(dev[k]));
        RT_CHECK(cudaStreamDestroy(s[k]));
    }
    RT_CHECK(cudaEventDestroy(start));
    RT_CHECK(cudaEventDestroy(stop));
    RT_CHECK(cudaEventDestroy(done));
    RT_CHECK(cudaFreeHost(host_in));
    RT_CHECK(cudaFreeHost(host_out));
    RT_OK("cleanup");
    std::printf("PASS\n");
    return 0;
}
