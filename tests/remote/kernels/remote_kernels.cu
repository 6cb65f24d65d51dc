// Kernels for the remoting end-to-end tests. extern "C" keeps the names unmangled.

// y[i] = a * x[i] + y[i]
extern "C" __global__ void axpy(float a, const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}

// out[i] = in[i] * 3 + bias (mixed parameter sizes: a pointer, a 64-bit and a 32-bit value)
extern "C" __global__ void mad_u32(const unsigned *in, unsigned *out, unsigned long long n, unsigned bias)
{
    unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = in[i] * 3u + bias;
}

__device__ unsigned counter_global[4];

// Adds v to each of the module global's four words (one thread each).
extern "C" __global__ void bump_global(unsigned v)
{
    if (threadIdx.x < 4)
        counter_global[threadIdx.x] += v;
}
