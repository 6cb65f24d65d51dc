// Parameter passing, local memory, device calls and module-scope variables.

struct params {
    char tag;          // offset 0: forces padding before the double
    double scale;      // offset 8
    int offset;        // offset 16
    float weights[3];  // offset 20
    short shift;       // offset 32
};

// A struct passed by value, followed by a scalar that lands after the struct's padding.
extern "C" __global__ void struct_param(struct params p, const float *in, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float w = p.weights[i % 3];
    out[i] = (float)(p.scale * (double)(in[i] * w)) + (float)(p.offset + p.tag + p.shift);
}

// A per-thread array indexed by data: the compiler must keep it in .local memory.
extern "C" __global__ void local_array(const unsigned *in, unsigned *out, int n)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (unsigned)n)
        return;
    unsigned arr[24];
    unsigned seed = in[i];
    for (int j = 0; j < 24; j++) {
        seed = seed * 1664525u + 1013904223u;
        arr[j] = seed;
    }
    unsigned acc = 0;
    for (int j = 0; j < 24; j++)
        acc ^= arr[(arr[j] >> 7) % 24] + j;
    out[i] = acc;
}

// Collatz steps (capped): a real call (.func) in the PTX thanks to __noinline__.
__device__ __noinline__ unsigned collatz_steps(unsigned long long v, unsigned cap)
{
    unsigned steps = 0;
    while (v != 1 && steps < cap) {
        v = (v & 1) ? 3 * v + 1 : v / 2;
        steps++;
    }
    return steps;
}

extern "C" __global__ void devfunc_call(const unsigned *in, unsigned *out, int n)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (unsigned)n)
        out[i] = collatz_steps(in[i] | 1u, 1000) + collatz_steps(in[i] + 2, 500);
}

// Module-scope variables: coefficients in constant memory and a lookup table in global memory,
// both filled by the host through cuModuleGetGlobal; a counter the kernel updates and the host
// reads back; and an initialised global the host checks without writing it first.
__constant__ float poly_coeffs[8];
__device__ int lookup[64];
__device__ unsigned long long call_counter;
__device__ int magic_init = 0x5eed1e55;

extern "C" __global__ void globals_poly(const float *x, float *out, int *looked_up, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float v = x[i], acc = 0.0f;
    for (int j = 7; j >= 0; j--)
        acc = acc * v + poly_coeffs[j];
    out[i] = acc;
    looked_up[i] = lookup[i % 64] + magic_init;
    atomicAdd(&call_counter, 1ull);
}
