// Double-precision library math: sqrt, exp, sin, cos, division and fma.

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
