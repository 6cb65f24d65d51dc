// Integer division and modulo in every signedness and width.

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
