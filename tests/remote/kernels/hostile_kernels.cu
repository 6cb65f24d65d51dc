// Kernels for the hostile-client tests (tests/remote/test_hostile.c). extern "C" keeps the names
// unmangled.
#include <cstdio>

// Never ends while *flag is 0 (nobody sets it): a runaway kernel.
extern "C" __global__ void spin(volatile int *flag)
{
    while (*flag == 0) {
    }
}

// Does nothing: launched with a grid of 2^31-1 blocks it keeps a device busy for hours.
extern "C" __global__ void empty() {}

// Copies n bytes from src (another client's pointer) to dst and scribbles over 64 bytes of src.
extern "C" __global__ void steal(unsigned char *src, unsigned char *dst, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = src[i];
    if (i < 64)
        src[i] = 0xEE;
}

// Device printf: one line per thread.
extern "C" __global__ void hello(int tag)
{
    printf("hello %d from thread %d\n", tag, (int)threadIdx.x);
}

// y[i] = a * x[i] + y[i]: the small kernel a well-behaved client runs beside the attacks.
extern "C" __global__ void axpy(float a, const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}
