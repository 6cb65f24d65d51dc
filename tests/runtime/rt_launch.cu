// Cooperative launches and the occupancy API through the runtime, device printf through the
// printf FIFO, and profiler control.
#include <cstring>
#include <cuda_profiler_api.h>
#include <unistd.h>
#include "rt_check.h"

__global__ void fill(int *v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        v[i] = 2 * i;
}

__global__ void chatty(int lines)
{
    for (int i = 0; i < lines; i++)
        printf("block %d thread %d line %d\n", (int)blockIdx.x, (int)threadIdx.x, i);
}

int main()
{
    RT_CHECK(cudaProfilerStart());
    int dev = 0, coop = 0, sms = 0, per_sm = 0;
    RT_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
    RT_EXPECT(coop == 1, "cooperative launch attribute %d", coop);
    RT_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    RT_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fill, 128, 0));
    int blocks = per_sm * sms, n = blocks * 128;
    int *d;
    RT_CHECK(cudaMalloc(&d, n * sizeof(int)));
    void *args[] = {&d, &n};
    RT_CHECK(cudaLaunchCooperativeKernel((void *)fill, blocks, 128, args, 0, 0));
    RT_CHECK(cudaDeviceSynchronize());
    int last = 0;
    RT_CHECK(cudaMemcpy(&last, d + n - 1, sizeof last, cudaMemcpyDeviceToHost));
    RT_EXPECT(last == 2 * (n - 1), "last element %d", last);
    cudaError_t err = cudaLaunchCooperativeKernel((void *)fill, blocks + 1, 128, args, 0, 0);
    RT_EXPECT(err == cudaErrorCooperativeLaunchTooLarge, "an oversized grid gave %d", (int)err);
    cudaGetLastError();
    RT_OK("cooperative launch of %d blocks; %d refused", blocks, blocks + 1);

    // printf: bounded by the FIFO, and only at synchronizing calls.
    RT_CHECK(cudaDeviceSetLimit(cudaLimitPrintfFifoSize, 4096));
    std::fflush(stdout);
    int saved = dup(1);
    char path[] = "/tmp/rt_printf_XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    dup2(fd, 1);
    chatty<<<4, 64>>>(50); // 12800 lines, far more than 4 KiB
    while (cudaStreamQuery(0) == cudaErrorNotReady)
        usleep(1000);
    off_t before = lseek(fd, 0, SEEK_END);
    RT_CHECK(cudaDeviceSynchronize());
    off_t after = lseek(fd, 0, SEEK_END);
    dup2(saved, 1);
    static char text[8192];
    ssize_t got = pread(fd, text, sizeof text - 1, 0);
    RT_EXPECT(before == 0, "%lld bytes of printf output before synchronizing", (long long)before);
    RT_EXPECT(after > 3000 && after <= 4096, "%lld bytes after synchronizing", (long long)after);
    RT_EXPECT(got > 0 && std::strncmp(text, "block ", 6) == 0, "output: %.40s", text);
    size_t limit = 0;
    RT_CHECK(cudaDeviceGetLimit(&limit, cudaLimitPrintfFifoSize));
    RT_EXPECT(limit == 4096, "limit %zu", limit);
    RT_OK("device printf: %lld bytes at the synchronize, none before, FIFO of 4096", (long long)after);
    RT_CHECK(cudaProfilerStop());
    std::printf("PASS\n");
    return 0;
}
