// Device queries: cudaGetDeviceCount, cudaGetDeviceProperties, cudaSetDevice, cudaDriverGetVersion.
// Needs no memory or kernels, so it also runs against the probe driver.
#include <cstring>
#include "rt_check.h"

int main()
{
    int count = 0;
    RT_CHECK(cudaGetDeviceCount(&count));
    RT_EXPECT(count >= 1, "device count %d", count);
    RT_OK("cudaGetDeviceCount = %d", count);

    int driver = 0, runtime = 0;
    RT_CHECK(cudaDriverGetVersion(&driver));
    RT_CHECK(cudaRuntimeGetVersion(&runtime));
    RT_EXPECT(driver >= runtime, "driver %d older than runtime %d", driver, runtime);
    RT_OK("driver %d >= runtime %d", driver, runtime);

    for (int dev = 0; dev < count; dev++) {
        cudaDeviceProp prop;
        std::memset(&prop, 0, sizeof prop);
        RT_CHECK(cudaGetDeviceProperties(&prop, dev));
        RT_EXPECT(std::strlen(prop.name) > 0, "device %d has no name", dev);
        RT_EXPECT(prop.warpSize == 32, "warp size %d", prop.warpSize);
        RT_EXPECT(prop.maxThreadsPerBlock >= 256, "max threads per block %d", prop.maxThreadsPerBlock);
        RT_EXPECT(prop.major * 10 + prop.minor >= 75, "compute capability %d.%d", prop.major, prop.minor);
        RT_EXPECT(prop.totalGlobalMem > 0, "no global memory");
        int attr = 0;
        RT_CHECK(cudaDeviceGetAttribute(&attr, cudaDevAttrWarpSize, dev));
        RT_EXPECT(attr == prop.warpSize, "attribute warp size %d vs property %d", attr, prop.warpSize);
        RT_OK("device %d: %s, sm_%d%d, %zu MiB, %d threads/block", dev, prop.name, prop.major,
              prop.minor, prop.totalGlobalMem >> 20, prop.maxThreadsPerBlock);
        RT_CHECK(cudaSetDevice(dev));
        int current = -1;
        RT_CHECK(cudaGetDevice(&current));
        RT_EXPECT(current == dev, "cudaGetDevice %d after cudaSetDevice %d", current, dev);
    }
    RT_OK("cudaSetDevice/cudaGetDevice agree");

    cudaError_t err = cudaSetDevice(count);
    RT_EXPECT(err == cudaErrorInvalidDevice, "cudaSetDevice(%d) gave %d", count, (int)err);
    cudaGetLastError();
    cudaDeviceProp prop;
    err = cudaGetDeviceProperties(&prop, count + 7);
    RT_EXPECT(err == cudaErrorInvalidDevice, "properties of a missing device gave %d", (int)err);
    cudaGetLastError();
    RT_OK("a missing device is cudaErrorInvalidDevice");
    std::printf("PASS\n");
    return 0;
}
