// cudaMalloc / cudaMemcpy / cudaFree and a <<<>>> launch, checked against a CPU reference on
// random input; also cudaMemset.
#include <vector>
#include "rt_check.h"

__global__ void saxpy(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}

__global__ void add_index(int n, int *v)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        v[i] += i;
}

int main()
{
    rt_seed();
    const int n = 10007; // not a multiple of the block size: the tail is guarded
    std::vector<float> x(n), y(n), out(n);
    for (int i = 0; i < n; i++) {
        x[i] = (float)(std::rand() % 2001 - 1000) / 8.0f;
        y[i] = (float)(std::rand() % 2001 - 1000) / 8.0f;
    }
    const float a = 2.5f;
    float *dx = nullptr, *dy = nullptr;
    RT_CHECK(cudaMalloc(&dx, n * sizeof(float)));
    RT_CHECK(cudaMalloc(&dy, n * sizeof(float)));
    RT_EXPECT(dx && dy && dx != dy, "cudaMalloc returned %p and %p", (void *)dx, (void *)dy);
    RT_CHECK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    RT_CHECK(cudaMemcpy(dy, y.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    saxpy<<<(n + 255) / 256, 256>>>(n, a, dx, dy);
    RT_CHECK(cudaGetLastError());
    RT_CHECK(cudaMemcpy(out.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        float want = a * x[i] + y[i]; // exact: the inputs are multiples of 1/8
        RT_EXPECT(out[i] == want, "saxpy[%d] = %g, want %g", i, out[i], want);
    }
    RT_OK("saxpy on %d random elements matches the CPU", n);

    // Device-to-device copy, then memset part of it.
    RT_CHECK(cudaMemcpy(dx, dy, n * sizeof(float), cudaMemcpyDeviceToDevice));
    RT_CHECK(cudaMemset(dx, 0, 100 * sizeof(float)));
    std::vector<float> back(n);
    RT_CHECK(cudaMemcpy(back.data(), dx, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        float want = i < 100 ? 0.0f : out[i];
        RT_EXPECT(back[i] == want, "copy+memset[%d] = %g, want %g", i, back[i], want);
    }
    RT_OK("cudaMemcpy device-to-device and cudaMemset");

    int *dv = nullptr;
    RT_CHECK(cudaMalloc(&dv, n * sizeof(int)));
    RT_CHECK(cudaMemset(dv, 0x01, n * sizeof(int)));
    add_index<<<(n + 127) / 128, 128>>>(n, dv);
    RT_CHECK(cudaDeviceSynchronize());
    std::vector<int> iv(n);
    RT_CHECK(cudaMemcpy(iv.data(), dv, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        RT_EXPECT(iv[i] == 0x01010101 + i, "add_index[%d] = %#x", i, iv[i]);
    RT_OK("cudaMemset byte pattern then a kernel");

    RT_CHECK(cudaFree(dx));
    RT_CHECK(cudaFree(dy));
    RT_CHECK(cudaFree(dv));
    RT_CHECK(cudaFree(nullptr));
    RT_OK("cudaFree");
    std::printf("PASS\n");
    return 0;
}
