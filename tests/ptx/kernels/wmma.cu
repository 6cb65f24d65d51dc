// wmma kernels for tests/ptx/test_ptx_wmma.c: one product per shape and element type, and
// kernels that write a fragment's elements out as they are held per lane (the fragment mapping
// server/emulator/ptx/ptx_wmma.c documents).
#include <cuda_fp16.h>
#include <mma.h>

using namespace nvcuda;

// D = A x B + C, 16 x 16 x 16: A row-major, B column-major, C and D row-major (all packed).
extern "C" __global__ void mma_f32(const half *a, const half *b, const float *c, float *d)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(d, fc, 16, wmma::mem_row_major);
}

// The same with f16 accumulators.
extern "C" __global__ void mma_f16(const half *a, const half *b, const half *c, half *d)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, half> fc;
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(d, fc, 16, wmma::mem_row_major);
}

// A's fragment (16 x 16, leading dimension ld, row- or column-major) as each lane holds it.
extern "C" __global__ void dump_a_row(const half *a, int ld, half *out)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> f;
    wmma::load_matrix_sync(f, a, ld);
    for (int i = 0; i < f.num_elements; i++)
        out[threadIdx.x * f.num_elements + i] = f.x[i];
}

extern "C" __global__ void dump_a_col(const half *a, int ld, half *out)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::col_major> f;
    wmma::load_matrix_sync(f, a, ld);
    for (int i = 0; i < f.num_elements; i++)
        out[threadIdx.x * f.num_elements + i] = f.x[i];
}

extern "C" __global__ void dump_c(const float *c, float *out)
{
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> f;
    wmma::load_matrix_sync(f, c, 16, wmma::mem_row_major);
    for (int i = 0; i < f.num_elements; i++)
        out[threadIdx.x * f.num_elements + i] = f.x[i];
}
