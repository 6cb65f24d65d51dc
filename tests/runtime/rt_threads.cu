// Several host threads launching on one device, each with its own buffer and stream.
#include <thread>
#include <vector>
#include "rt_check.h"

__global__ void fill(int n, int tag, int *v)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        v[i] = tag * 100000 + i;
}

int main()
{
    const int threads = 4, n = 2048, rounds = 5;
    std::vector<int> failures(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) {
        pool.emplace_back([t, &failures]() {
            if (cudaSetDevice(0) != cudaSuccess) {
                failures[t] = 1;
                return;
            }
            cudaStream_t s;
            int *dev = nullptr;
            std::vector<int> host(n);
            if (cudaStreamCreate(&s) != cudaSuccess || cudaMalloc(&dev, n * sizeof(int)) != cudaSuccess) {
                failures[t] = 2;
                return;
            }
            for (int r = 0; r < rounds; r++) {
                int tag = t * rounds + r;
                fill<<<n / 128, 128, 0, s>>>(n, tag, dev);
                if (cudaMemcpyAsync(host.data(), dev, n * sizeof(int), cudaMemcpyDeviceToHost, s) != cudaSuccess ||
                    cudaStreamSynchronize(s) != cudaSuccess) {
                    failures[t] = 3;
                    return;
                }
                for (int i = 0; i < n; i++)
                    if (host[i] != tag * 100000 + i) {
                        failures[t] = 4;
                        return;
                    }
            }
            if (cudaFree(dev) != cudaSuccess || cudaStreamDestroy(s) != cudaSuccess)
                failures[t] = 5;
        });
    }
    for (auto &th : pool)
        th.join();
    for (int t = 0; t < threads; t++)
        RT_EXPECT(failures[t] == 0, "thread %d failed at step %d", t, failures[t]);
    RT_OK("%d threads x %d launches on one device, each result checked", threads, rounds);
    std::printf("PASS\n");
    return 0;
}
