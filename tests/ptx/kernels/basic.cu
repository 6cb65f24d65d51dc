#include <cuda_fp16.h>
extern "C" __global__ void vec_add(const float *a, const float *b, float *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}
extern "C" __global__ void diverge(const int *in, int *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int v = in[i];
    int r = 0;
    if (v & 1) {
        for (int k = 0; k < (v & 15); k++) r += k * v;
    } else if (v % 3 == 0) {
        r = v / 3;
    } else {
        r = v < 0 ? -v : v;
        while (r < 100000) r = r * 2 + 7;
    }
    out[i] = r;
}
extern "C" __global__ void reduce_shared(const float *in, float *out, int n) {
    __shared__ float buf[256];
    int t = threadIdx.x;
    int i = blockIdx.x * blockDim.x + t;
    buf[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) buf[t] += buf[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = buf[0];
}
extern "C" __global__ void reduce_dyn(const int *in, int *out, int n) {
    extern __shared__ int dbuf[];
    int t = threadIdx.x;
    int i = blockIdx.x * blockDim.x + t;
    dbuf[t] = i < n ? in[i] : 0;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) dbuf[t] += dbuf[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = dbuf[0];
}
extern "C" __global__ void warp_reduce(const int *in, int *out, unsigned *ballots, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int v = i < n ? in[i] : 0;
    unsigned b = __ballot_sync(0xffffffffu, v > 0);
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    int x = __shfl_xor_sync(0xffffffffu, v, 1);
    int u = __shfl_up_sync(0xffffffffu, threadIdx.x, 1);
    int all = __all_sync(0xffffffffu, u >= 0);
    if ((threadIdx.x & 31) == 0) { out[i / 32] = v + (x & 0) + all - 1; ballots[i / 32] = b; }
}
extern "C" __global__ void atomics(int *counters, unsigned *umax, float *fsum, const int *in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int v = in[i];
    atomicAdd(&counters[0], v);
    atomicMax(&counters[1], v);
    atomicMin(&counters[2], v);
    atomicOr((unsigned *)&counters[3], 1u << (v & 31));
    atomicXor((unsigned *)&counters[4], (unsigned)v);
    atomicMax(umax, (unsigned)v * 2654435761u);
    atomicAdd(fsum, (float)(v & 7));
    int old;
    do { old = counters[5]; } while (atomicCAS(&counters[5], old, old + 1) != old);
    atomicInc((unsigned *)&counters[6], 99u);
    atomicAdd((unsigned long long *)&counters[8], (unsigned long long)v);
}
__device__ __noinline__ float poly(float x, float y, int k) {
    float r = 0.f;
    for (int i = 0; i < k; i++) r = r * x + y;
    return r;
}
extern "C" __global__ void call_func(const float *x, float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = poly(x[i], 0.5f, (i & 7) + 1);
}
extern "C" __global__ void local_array(const int *in, int *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int arr[16];
    for (int k = 0; k < 16; k++) arr[k] = in[i] * k;
    int idx = in[i] & 15;
    volatile int s = arr[idx];
    out[i] = s + arr[(idx * 7) & 15];
}
extern "C" __global__ void half_ops(const float *a, const float *b, float *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    __half ha = __float2half(a[i]), hb = __float2half(b[i]);
    __half r = __hfma(ha, hb, __hadd(ha, hb));
    __half2 h2 = __halves2half2(ha, hb);
    h2 = __hmul2(h2, h2);
    out[i] = __half2float(r) + __low2float(h2) + __high2float(h2);
}
extern "C" __global__ void f64_ops(const double *a, const double *b, double *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    double x = a[i], y = b[i];
    out[i] = sqrt(fabs(x)) * y + x / (y + 3.0) - fmin(x, y) + (double)(long long)(x * 100.0);
}
extern "C" __global__ void int_divrem(const int *a, const int *b, int *q, int *r, unsigned *uq, long long *lq, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int x = a[i], y = b[i];
    q[i] = x / y;
    r[i] = x % y;
    uq[i] = (unsigned)x / (unsigned)y + (unsigned)x % (unsigned)y;
    lq[i] = ((long long)x * 1000003LL) / (long long)y + __popc(x) + __clz(y) + __brev(x) ;
}
// Generic addressing: one function reads through pointers into shared, local and global memory.
__device__ __noinline__ int sum_ptr(const int *p, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) s += p[i];
    return s;
}
extern "C" __global__ void generic_ptrs(const int *in, int *out) {
    __shared__ int sh[64];
    int loc[8];
    int t = threadIdx.x;
    sh[t] = in[t] * 2;
    for (int i = 0; i < 8; i++) loc[i] = in[(t + i) & 63] + i;
    __syncthreads();
    out[t] = sum_ptr(&sh[t & ~7], 8) + sum_ptr(loc, 8) * 1000 + sum_ptr(&in[t & ~7], 8) * 1000000;
}
