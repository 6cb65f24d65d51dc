// Basic kernels for the corpus: element-wise work, grid-stride loops, 3-D indexing, an empty
// kernel. extern "C" keeps the names unmangled so the harness finds them by plain name.

extern "C" __global__ void vec_add(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}

// y = a*x + y over n elements with a grid much smaller than n: every thread loops.
extern "C" __global__ void saxpy_gridstride(float a, const float *x, float *y, unsigned long long n)
{
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x)
        y[i] = a * x[i] + y[i];
}

// Every thread of a 3-D grid of 3-D blocks writes its coordinates, so the harness can check that
// each (block, thread) pair ran exactly once and saw the right special registers.
extern "C" __global__ void index3d(unsigned *out)
{
    unsigned bx = blockIdx.x, by = blockIdx.y, bz = blockIdx.z;
    unsigned tx = threadIdx.x, ty = threadIdx.y, tz = threadIdx.z;
    unsigned block = (bz * gridDim.y + by) * gridDim.x + bx;
    unsigned thread = (tz * blockDim.y + ty) * blockDim.x + tx;
    unsigned threads_per_block = blockDim.x * blockDim.y * blockDim.z;
    unsigned linear = block * threads_per_block + thread;
    out[2 * linear] = (bx << 20) | (by << 10) | bz;
    out[2 * linear + 1] = (tx << 20) | (ty << 10) | tz;
}

extern "C" __global__ void empty_kernel(void)
{
}
