// Arithmetic corners: double-precision library math, integer division and modulo in every
// signedness and width, and __half arithmetic.
#include <cuda_fp16.h>

// Per element: out[4i..4i+3] = sqrt(x), exp(x/8), sin(x)*cos(y), fma(x, y, x/y) - all double.
extern "C" __global__ void double_math(const double *x, const double *y, double *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    double a = x[i], b = y[i];
    out[4 * i + 0] = sqrt(a);
    out[4 * i + 1] = exp(a / 8.0);
    out[4 * i + 2] = sin(a) * cos(b);
    out[4 * i + 3] = fma(a, b, a / b);
}

// Quotient and remainder for s32, u32, s64, u64. Divisors are never 0 (and never -1 with a
// most-negative dividend): those are undefined in C and the harness avoids them.
extern "C" __global__ void int_divmod(const int *a32, const int *b32, const long long *a64,
                                      const long long *b64, long long *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    int a = a32[i], b = b32[i];
    long long c = a64[i], d = b64[i];
    long long *o = out + 8 * i;
    o[0] = a / b;
    o[1] = a % b;
    o[2] = (unsigned)a / (unsigned)b;
    o[3] = (unsigned)a % (unsigned)b;
    o[4] = c / d;
    o[5] = c % d;
    o[6] = (long long)((unsigned long long)c / (unsigned long long)d);
    o[7] = (long long)((unsigned long long)c % (unsigned long long)d);
}

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
