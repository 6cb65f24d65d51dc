// Cooperative groups' grid-wide barrier (cg::this_grid().sync()) in a cooperative launch of as
// many blocks as the device can keep resident: a stencil iterated over the whole grid, where
// every step reads what other blocks wrote before the barrier, and a grid-wide sum. A normal
// launch sees a grid group that cannot synchronize (is_valid() false).
#include "rt_check.h"

#include <cooperative_groups.h>
#include <vector>

namespace cg = cooperative_groups;

// steps times: b[i] = (a[i - 1] + 3 a[i] + a[i + 1]) mod 1000003 over a ring of n, then swap.
// Each step needs every neighbour's previous value, which other blocks wrote: a grid barrier
// between steps. total receives the sum of the final values, accumulated by block 0 after one
// more barrier.
__global__ void stencil(unsigned *a, unsigned *b, int n, int steps, unsigned long long *total)
{
    cg::grid_group grid = cg::this_grid();
    unsigned long long rank = grid.thread_rank(), threads = grid.size();
    for (int s = 0; s < steps; s++) {
        for (unsigned long long i = rank; i < (unsigned long long)n; i += threads) {
            unsigned l = a[(i + n - 1) % n], c = a[i], r = a[(i + 1) % n];
            b[i] = (unsigned)(((unsigned long long)l + 3ull * c + r) % 1000003ull);
        }
        grid.sync();
        unsigned *t = a;
        a = b;
        b = t;
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        unsigned long long sum = 0;
        for (int i = 0; i < n; i++)
            sum += a[i];
        *total = sum;
    }
}

__global__ void valid(int *out)
{
    out[0] = cg::this_grid().is_valid();
}

int main()
{
    rt_seed();
    int dev = 0, sms = 0, per_sm = 0, coop = 0;
    RT_CHECK(cudaGetDevice(&dev));
    RT_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
    RT_EXPECT(coop == 1, "the device does not report cooperative launches");
    RT_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int threads = 128;
    RT_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, stencil, threads, 0));
    int blocks = sms * per_sm;
    RT_EXPECT(blocks > 1, "%d resident blocks", blocks);

    const int n = 5000, steps = 12;
    std::vector<unsigned> h(n);
    for (int i = 0; i < n; i++)
        h[i] = (unsigned)(std::rand() % 1000003);
    unsigned *a, *b;
    unsigned long long *total;
    RT_CHECK(cudaMalloc(&a, n * sizeof(unsigned)));
    RT_CHECK(cudaMalloc(&b, n * sizeof(unsigned)));
    RT_CHECK(cudaMalloc(&total, sizeof *total));
    RT_CHECK(cudaMemcpy(a, h.data(), n * sizeof(unsigned), cudaMemcpyHostToDevice));
    int nn = n, ss = steps;
    void *args[] = {&a, &b, &nn, &ss, &total};
    RT_CHECK(cudaLaunchCooperativeKernel((void *)stencil, dim3(blocks), dim3(threads), args, 0, 0));
    RT_CHECK(cudaDeviceSynchronize());

    std::vector<unsigned> x = h, y(n);
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < n; i++)
            y[i] = (unsigned)(((unsigned long long)x[(i + n - 1) % n] + 3ull * x[i] + x[(i + 1) % n]) % 1000003ull);
        x.swap(y);
    }
    std::vector<unsigned> got(n);
    RT_CHECK(cudaMemcpy(got.data(), steps % 2 ? b : a, n * sizeof(unsigned), cudaMemcpyDeviceToHost));
    unsigned long long sum = 0, gsum = 0;
    for (int i = 0; i < n; i++) {
        RT_EXPECT(got[i] == x[i], "element %d: got %u, want %u", i, got[i], x[i]);
        sum += x[i];
    }
    RT_CHECK(cudaMemcpy(&gsum, total, sizeof gsum, cudaMemcpyDeviceToHost));
    RT_EXPECT(gsum == sum, "grid sum %llu, want %llu", gsum, sum);
    RT_OK("%d grid barriers in a cooperative launch of %d blocks x %d threads", steps, blocks, threads);

    // Twice as many blocks as can be resident is refused.
    cudaError_t e = cudaLaunchCooperativeKernel((void *)stencil, dim3(2 * blocks), dim3(threads), args, 0, 0);
    RT_EXPECT(e == cudaErrorCooperativeLaunchTooLarge, "oversized cooperative launch: %s", cudaGetErrorString(e));
    (void)cudaGetLastError();

    int *dv, hv = -1;
    RT_CHECK(cudaMalloc(&dv, sizeof(int)));
    valid<<<1, 1>>>(dv);
    RT_CHECK(cudaDeviceSynchronize());
    RT_CHECK(cudaMemcpy(&hv, dv, sizeof hv, cudaMemcpyDeviceToHost));
    RT_EXPECT(hv == 0, "a normal launch's grid group says it can synchronize");
    void *vargs[] = {&dv};
    RT_CHECK(cudaLaunchCooperativeKernel((void *)valid, dim3(1), dim3(1), vargs, 0, 0));
    RT_CHECK(cudaDeviceSynchronize());
    RT_CHECK(cudaMemcpy(&hv, dv, sizeof hv, cudaMemcpyDeviceToHost));
    RT_EXPECT(hv == 1, "a cooperative launch's grid group cannot synchronize");
    RT_OK("grid_group::is_valid() in normal and cooperative launches");
    return 0;
}
