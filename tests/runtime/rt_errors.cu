// Error reporting: an invalid launch configuration and an out-of-bounds kernel, which must surface as cudaErrorIllegalAddress at synchronize.
// The illegal address is sticky for the context, so it is the last check.
#include <cstring>
#include "rt_check.h"

__global__ void touch(int *v, long long index)
{
    v[index] = 42;
}

int main()
{
    int *dev = nullptr;
    RT_CHECK(cudaMalloc(&dev, 256 * sizeof(int)));

    touch<<<1, 2048>>>(dev, 0); // more threads per block than any device allows
    cudaError_t err = cudaGetLastError();
    RT_EXPECT(err == cudaErrorInvalidConfiguration, "2048 threads per block gave %d (%s)", (int)err,
              cudaGetErrorString(err));
    const char *msg = cudaGetErrorString(err);
    RT_EXPECT(msg && std::strlen(msg) > 0, "no message for %d", (int)err);
    RT_EXPECT(cudaGetLastError() == cudaSuccess, "cudaGetLastError did not reset");
    RT_OK("invalid launch config -> cudaErrorInvalidConfiguration (\"%s\")", msg);

    touch<<<0, 32>>>(dev, 0);
    err = cudaGetLastError();
    RT_EXPECT(err == cudaErrorInvalidConfiguration, "an empty grid gave %d", (int)err);
    RT_OK("empty grid -> cudaErrorInvalidConfiguration");

    touch<<<1, 1>>>(dev, 5);
    RT_CHECK(cudaDeviceSynchronize());
    int five = 0;
    RT_CHECK(cudaMemcpy(&five, dev + 5, sizeof five, cudaMemcpyDeviceToHost));
    RT_EXPECT(five == 42, "in-bounds store read back %d", five);
    RT_OK("the context still works after launch-config errors");

    touch<<<1, 1>>>(dev, 1LL << 32); // 16 GiB past a 1 KiB allocation
    err = cudaDeviceSynchronize();
    RT_EXPECT(err == cudaErrorIllegalAddress, "out-of-bounds store gave %d (%s)", (int)err, cudaGetErrorString(err));
    RT_OK("out-of-bounds kernel -> cudaErrorIllegalAddress at synchronize (\"%s\")", cudaGetErrorString(err));
    err = cudaMemcpy(&five, dev, sizeof five, cudaMemcpyDeviceToHost);
    RT_EXPECT(err == cudaErrorIllegalAddress, "the error is not sticky: next call gave %d", (int)err);
    RT_OK("the illegal address is sticky");
    std::printf("PASS\n");
    return 0;
}
