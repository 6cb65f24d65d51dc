// Tensor-core matrix operations through <mma.h> (wmma): a tiled f16 GEMM with f32 accumulators
// (A row-major from global memory, B column-major staged through shared memory, an alpha/beta
// epilogue applied element-wise to the fragments), the m32n8k16 shape with f16 accumulators and
// column-major A, the m8n32k16 shape accumulating onto a loaded C, s8 and u8 integer products,
// and an accumulator load/store round trip that transposes. Results are compared with CPU
// references: exactly where the inputs make every partial sum exact (so any summation order
// gives the same bits), within a relative tolerance for random f16 inputs.
#include "rt_check.h"

#include <cmath>
#include <cuda_fp16.h>
#include <mma.h>
#include <vector>

using namespace nvcuda;

// C = alpha * (A x B) + beta * C for M x N tiles of 16 x 16, one warp per tile; A is M x K
// row-major, B is K x N column-major (element (k, n) at b[n * K + k]).
__global__ void gemm16(const half *a, const half *b, float *c, int M, int N, int K, float alpha,
                       float beta)
{
    __shared__ half btile[16 * 16];
    int tm = blockIdx.y, tn = blockIdx.x, lane = threadIdx.x;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc, fc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k = 0; k < K; k += 16) {
        // The B tile goes through shared memory (column-major, leading dimension 16).
        for (int i = lane; i < 256; i += 32)
            btile[i] = b[(size_t)(tn * 16 + i / 16) * K + k + i % 16];
        __syncwarp();
        wmma::load_matrix_sync(fa, a + (size_t)tm * 16 * K + k, K);
        wmma::load_matrix_sync(fb, btile, 16);
        wmma::mma_sync(acc, fa, fb, acc);
        __syncwarp();
    }
    float *ct = c + (size_t)tm * 16 * N + tn * 16;
    wmma::load_matrix_sync(fc, ct, N, wmma::mem_row_major);
    for (int i = 0; i < acc.num_elements; i++)
        acc.x[i] = __fmaf_rn(alpha, acc.x[i], __fmul_rn(beta, fc.x[i]));
    wmma::store_matrix_sync(ct, acc, N, wmma::mem_row_major);
}

// One m32n8k16 product with f16 accumulators: A 32 x 16 column-major, B 16 x 8 row-major, C
// (and D) 32 x 8 column-major.
__global__ void mma32x8(const half *a, const half *b, half *c)
{
    wmma::fragment<wmma::matrix_a, 32, 8, 16, half, wmma::col_major> fa;
    wmma::fragment<wmma::matrix_b, 32, 8, 16, half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 32, 8, 16, half> fc;
    wmma::load_matrix_sync(fc, c, 32, wmma::mem_col_major);
    wmma::load_matrix_sync(fa, a, 32);
    wmma::load_matrix_sync(fb, b, 8);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c, fc, 32, wmma::mem_col_major);
}

// m8n32k16 accumulating onto C: A 8 x 16 row-major, B 16 x 32 column-major, C 8 x 32 row-major.
__global__ void mma8x32(const half *a, const half *b, float *c)
{
    wmma::fragment<wmma::matrix_a, 8, 32, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 8, 32, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 8, 32, 16, float> fc;
    wmma::load_matrix_sync(fc, c, 32, wmma::mem_row_major);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c, fc, 32, wmma::mem_row_major);
}

// 16 x 16 x 16 integer products: D = A x B + C, A row-major, B column-major.
template <typename T>
__global__ void mma_int(const T *a, const T *b, int *c)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, int> fc;
    wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}

// Loads a 16 x 16 accumulator row-major and stores it column-major: a transpose.
__global__ void transpose16(const float *in, float *out)
{
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> f;
    wmma::load_matrix_sync(f, in, 16, wmma::mem_row_major);
    wmma::store_matrix_sync(out, f, 16, wmma::mem_col_major);
}

// Small multiples of 1/4: every product and partial sum of the tests below is exact in f32 (and
// in f16 where the result is stored as f16).
static float quarter(int span)
{
    return (float)(std::rand() % (2 * span + 1) - span) / 4.0f;
}

template <typename T>
static T *to_device(const std::vector<T> &h)
{
    T *d = nullptr;
    RT_CHECK(cudaMalloc(&d, h.size() * sizeof(T)));
    RT_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <typename T>
static std::vector<T> to_host(const T *d, size_t n)
{
    std::vector<T> h(n);
    RT_CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

// The tiled GEMM with inputs from gen (exact: compare bits; else a relative tolerance).
static void check_gemm(bool exact)
{
    const int M = 64, N = 48, K = 64;
    const float alpha = exact ? 2.0f : 1.5f, beta = exact ? -1.0f : 0.25f;
    std::vector<half> a(M * K), b(K * N);
    std::vector<float> af(M * K), bf(K * N), c(M * N);
    for (int i = 0; i < M * K; i++) {
        float v = exact ? quarter(8) : (float)std::rand() / RAND_MAX * 2.0f - 1.0f;
        a[i] = __float2half(v);
        af[i] = __half2float(a[i]);
    }
    for (int i = 0; i < K * N; i++) { // column-major: (k, n) at n * K + k
        float v = exact ? quarter(8) : (float)std::rand() / RAND_MAX * 2.0f - 1.0f;
        b[i] = __float2half(v);
        bf[i] = __half2float(b[i]);
    }
    for (int i = 0; i < M * N; i++)
        c[i] = exact ? quarter(64) : (float)std::rand() / RAND_MAX;
    half *da = to_device(a), *db = to_device(b);
    float *dc = to_device(c);
    gemm16<<<dim3(N / 16, M / 16), 32>>>(da, db, dc, M, N, K, alpha, beta);
    RT_CHECK(cudaGetLastError());
    RT_CHECK(cudaDeviceSynchronize());
    std::vector<float> got = to_host(dc, M * N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++)
                acc += af[i * K + k] * bf[j * K + k];
            float want = std::fmaf(alpha, acc, beta * c[i * N + j]);
            float g = got[i * N + j];
            if (exact)
                RT_EXPECT(g == want, "gemm (%d,%d): got %.9g, want %.9g", i, j, g, want);
            else
                RT_EXPECT(std::fabs(g - want) <= 1e-3f * (1.0f + std::fabs(want)),
                          "gemm (%d,%d): got %.9g, want %.9g", i, j, g, want);
        }
    RT_CHECK(cudaFree(da));
    RT_CHECK(cudaFree(db));
    RT_CHECK(cudaFree(dc));
    RT_OK("wmma f16 GEMM %dx%dx%d, f32 accumulators, %s inputs", M, N, K, exact ? "exact" : "random");
}

static void check_m32n8k16()
{
    std::vector<half> a(32 * 16), b(16 * 8), c(32 * 8);
    std::vector<float> af(32 * 16), bf(16 * 8), cf(32 * 8);
    for (int i = 0; i < 32 * 16; i++) af[i] = quarter(8), a[i] = __float2half(af[i]); // (m, k) at k * 32 + m
    for (int i = 0; i < 16 * 8; i++) bf[i] = quarter(8), b[i] = __float2half(bf[i]);  // (k, n) at k * 8 + n
    for (int i = 0; i < 32 * 8; i++) cf[i] = quarter(64), c[i] = __float2half(cf[i]); // (m, n) at n * 32 + m
    half *da = to_device(a), *db = to_device(b), *dc = to_device(c);
    mma32x8<<<1, 32>>>(da, db, dc);
    RT_CHECK(cudaDeviceSynchronize());
    std::vector<half> got = to_host(dc, 32 * 8);
    for (int m = 0; m < 32; m++)
        for (int n = 0; n < 8; n++) {
            float acc = cf[n * 32 + m];
            for (int k = 0; k < 16; k++)
                acc += af[k * 32 + m] * bf[k * 8 + n];
            float g = __half2float(got[n * 32 + m]);
            RT_EXPECT(g == acc, "m32n8k16 (%d,%d): got %g, want %g", m, n, g, acc);
        }
    RT_CHECK(cudaFree(da));
    RT_CHECK(cudaFree(db));
    RT_CHECK(cudaFree(dc));
    RT_OK("wmma m32n8k16, f16 accumulators, column-major A and C");
}

static void check_m8n32k16()
{
    std::vector<half> a(8 * 16), b(16 * 32);
    std::vector<float> af(8 * 16), bf(16 * 32), c(8 * 32);
    for (int i = 0; i < 8 * 16; i++) af[i] = quarter(8), a[i] = __float2half(af[i]);  // (m, k) at m * 16 + k
    for (int i = 0; i < 16 * 32; i++) bf[i] = quarter(8), b[i] = __float2half(bf[i]); // (k, n) at n * 16 + k
    for (int i = 0; i < 8 * 32; i++) c[i] = quarter(64);
    half *da = to_device(a), *db = to_device(b);
    float *dc = to_device(c);
    mma8x32<<<1, 32>>>(da, db, dc);
    RT_CHECK(cudaDeviceSynchronize());
    std::vector<float> got = to_host(dc, 8 * 32);
    for (int m = 0; m < 8; m++)
        for (int n = 0; n < 32; n++) {
            float acc = c[m * 32 + n];
            for (int k = 0; k < 16; k++)
                acc += af[m * 16 + k] * bf[n * 16 + k];
            RT_EXPECT(got[m * 32 + n] == acc, "m8n32k16 (%d,%d): got %g, want %g", m, n, got[m * 32 + n], acc);
        }
    RT_CHECK(cudaFree(da));
    RT_CHECK(cudaFree(db));
    RT_CHECK(cudaFree(dc));
    RT_OK("wmma m8n32k16 onto a loaded f32 C");
}

template <typename T>
static void check_int(const char *what)
{
    std::vector<T> a(256), b(256);
    std::vector<int> c(256);
    for (int i = 0; i < 256; i++) {
        a[i] = (T)(std::rand() & 0xff);
        b[i] = (T)(std::rand() & 0xff);
        c[i] = std::rand() % 100001 - 50000;
    }
    T *da = to_device(a), *db = to_device(b);
    int *dc = to_device(c);
    mma_int<T><<<1, 32>>>(da, db, dc);
    RT_CHECK(cudaDeviceSynchronize());
    std::vector<int> got = to_host(dc, 256);
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            int acc = c[m * 16 + n];
            for (int k = 0; k < 16; k++)
                acc += (int)a[m * 16 + k] * (int)b[n * 16 + k];
            RT_EXPECT(got[m * 16 + n] == acc, "%s (%d,%d): got %d, want %d", what, m, n, got[m * 16 + n], acc);
        }
    RT_CHECK(cudaFree(da));
    RT_CHECK(cudaFree(db));
    RT_CHECK(cudaFree(dc));
    RT_OK("wmma m16n16k16 %s", what);
}

static void check_transpose()
{
    std::vector<float> in(256);
    for (int i = 0; i < 256; i++)
        in[i] = (float)i * 0.5f - 17.0f;
    float *din = to_device(in), *dout = nullptr;
    RT_CHECK(cudaMalloc(&dout, 256 * sizeof(float)));
    transpose16<<<1, 32>>>(din, dout);
    RT_CHECK(cudaDeviceSynchronize());
    std::vector<float> got = to_host(dout, 256);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            RT_EXPECT(got[c * 16 + r] == in[r * 16 + c], "transpose (%d,%d)", r, c);
    RT_CHECK(cudaFree(din));
    RT_CHECK(cudaFree(dout));
    RT_OK("wmma accumulator load row-major, store column-major");
}

int main()
{
    rt_seed();
    check_gemm(true);
    check_gemm(false);
    check_m32n8k16();
    check_m8n32k16();
    check_int<signed char>("s8");
    check_int<unsigned char>("u8");
    check_transpose();
    return 0;
}
