// __half arithmetic and conversions.
#include <cuda_fp16.h>

// __half: out[3i..3i+2] = a+b, a*b, fma(a, b, c), each rounded once to half.
extern "C" __global__ void half_math(const __half *a, const __half *b, const __half *c, __half *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    out[3 * i + 0] = __hadd(a[i], b[i]);
    out[3 * i + 1] = __hmul(a[i], b[i]);
    out[3 * i + 2] = __hfma(a[i], b[i], c[i]);
}

// float <-> half conversions with round-to-nearest-even: out[i] = half(f[i]), back[i] = float(h[i]).
extern "C" __global__ void half_convert(const float *f, __half *out, const __half *h, float *back, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    out[i] = __float2half_rn(f[i]);
    back[i] = __half2float(h[i]);
}
