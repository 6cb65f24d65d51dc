/* The kernel corpus: every kernel in tests/kernels/ launched through the CUDA driver API on fresh
 * random inputs and compared with a CPU reference.
 *
 * Integers are compared exactly. Floats are compared against a reference computed in double, with
 * a tolerance derived from the forward error bound of the GPU's evaluation order (stated at each
 * test), so a correct device never fails and a wrong element, index or operation always does.
 * Where the GPU's operations are each correctly rounded and the CPU can perform the very same
 * operations (IEEE add, mul, div, sqrt, fma), the comparison is exact.
 *
 * Runs against whatever libcuda.so.1 the loader finds: the emulated driver in-process, or the
 * vgpu stub talking to gpu-server. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus_util.h"

TestSuite(corpus, .init = corpus_setup, .fini = corpus_teardown, .timeout = 300);

static unsigned ceil_div(unsigned a, unsigned b) { return (a + b - 1) / b; }

/* A size near `base` that is deliberately not a multiple of any block size we use. */
static int odd_size(int base) { return base + 1 + 2 * rng_int(0, 200); }

/* Asserts |got - ref| <= tol; reports the element and the seed. */
#define ASSERT_CLOSE(what, i, got, ref, tol)                                                       \
    cr_assert(fabs((double)(got) - (double)(ref)) <= (tol),                                        \
              "%s[%d]: got %.9g, want %.9g (tolerance %.3g, seed %llu)", what, (int)(i),          \
              (double)(got), (double)(ref), (double)(tol), (unsigned long long)corpus_seed())

/* ------------------------------------------------------------------------------------------ */

Test(corpus, vec_add)
{
    int n = odd_size(10000);
    size_t bytes = n * sizeof(float);
    float *a = corpus_host(bytes), *b = corpus_host(bytes), *c = corpus_host(bytes);
    for (int i = 0; i < n; i++) {
        a[i] = rng_float(-100, 100);
        b[i] = rng_float(-100, 100);
    }
    CUmodule mod = corpus_load("basic", FORM_PTX_DATA);
    CUdeviceptr da = corpus_upload(a, bytes), db = corpus_upload(b, bytes), dc = corpus_alloc(bytes);
    corpus_fill(dc, bytes, 0xff);
    void *params[] = {&da, &db, &dc, &n};
    corpus_launch(corpus_func(mod, "vec_add"), ceil_div(n, 128), 1, 1, 128, 1, 1, 0, params);
    corpus_download(c, dc, bytes);
    /* One IEEE float addition on both sides: exact. */
    for (int i = 0; i < n; i++)
        cr_assert(c[i] == a[i] + b[i], "c[%d] = %.9g, want %.9g (seed %llu)", i, c[i], a[i] + b[i],
                  (unsigned long long)corpus_seed());
}

/* Launched with the CU_LAUNCH_PARAM_BUFFER_POINTER form: the harness packs the parameters itself
 * in CUDA's layout (each at its natural alignment). */
Test(corpus, saxpy_gridstride_extra)
{
    unsigned long long n = (unsigned long long)odd_size(40000);
    size_t bytes = n * sizeof(float);
    float alpha = rng_float(-3, 3);
    float *x = corpus_host(bytes), *y = corpus_host(bytes), *out = corpus_host(bytes);
    for (size_t i = 0; i < n; i++) {
        x[i] = rng_float(-10, 10);
        y[i] = rng_float(-10, 10);
    }
    CUmodule mod = corpus_load("basic", FORM_FATBIN);
    CUdeviceptr dx = corpus_upload(x, bytes), dy = corpus_upload(y, bytes);

    struct {
        float a;                /* offset 0 */
        uint32_t pad;
        CUdeviceptr x;          /* offset 8 */
        CUdeviceptr y;          /* offset 16 */
        unsigned long long n;   /* offset 24 */
    } args = {alpha, 0, dx, dy, n};
    size_t args_size = sizeof args;
    cr_assert_eq(args_size, 32);
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &args, CU_LAUNCH_PARAM_BUFFER_SIZE, &args_size,
                     CU_LAUNCH_PARAM_END};
    /* 7 blocks of 96 threads: far fewer threads than elements, so every thread loops. */
    CK(cuLaunchKernel(corpus_func(mod, "saxpy_gridstride"), 7, 1, 1, 96, 1, 1, 0, NULL, NULL, extra));
    CK(cuCtxSynchronize());
    corpus_download(out, dy, bytes);
    for (size_t i = 0; i < n; i++) {
        /* nvcc contracts a*x+y into one fma (one rounding); a device that does not contract
         * rounds twice. Either way the error is at most one rounding of each of a*x and the sum,
         * about 2 * FLT_EPSILON/2 * (|a*x| + |y|); 2 * FLT_EPSILON covers the second-order
         * terms with room to spare and is still far below any wrong-element error. */
        double ref = (double)alpha * x[i] + y[i];
        double tol = 2 * FLT_EPSILON * (fabs((double)alpha * x[i]) + fabs(y[i]));
        ASSERT_CLOSE("y", i, out[i], ref, tol);
    }
}

/* A 3-D grid of 3-D blocks whose thread count (30) is not a multiple of the warp size. */
Test(corpus, index3d)
{
    unsigned g[3] = {(unsigned)rng_int(2, 5), (unsigned)rng_int(2, 4), (unsigned)rng_int(2, 3)};
    unsigned b[3] = {5, 3, 2};
    unsigned nthreads = g[0] * g[1] * g[2] * b[0] * b[1] * b[2];
    size_t bytes = 2 * nthreads * sizeof(unsigned);
    unsigned *out = corpus_host(bytes);
    CUmodule mod = corpus_load("basic", FORM_FATBIN_SM80);
    CUdeviceptr dout = corpus_alloc(bytes);
    corpus_fill(dout, bytes, 0xee);
    void *params[] = {&dout};
    corpus_launch(corpus_func(mod, "index3d"), g[0], g[1], g[2], b[0], b[1], b[2], 0, params);
    corpus_download(out, dout, bytes);
    unsigned linear = 0;
    for (unsigned bz = 0; bz < g[2]; bz++)
        for (unsigned by = 0; by < g[1]; by++)
            for (unsigned bx = 0; bx < g[0]; bx++)
                for (unsigned tz = 0; tz < b[2]; tz++)
                    for (unsigned ty = 0; ty < b[1]; ty++)
                        for (unsigned tx = 0; tx < b[0]; tx++, linear++) {
                            unsigned want_block = (bx << 20) | (by << 10) | bz;
                            unsigned want_thread = (tx << 20) | (ty << 10) | tz;
                            cr_assert(out[2 * linear] == want_block && out[2 * linear + 1] == want_thread,
                                      "slot %u: block %#x thread %#x, want %#x %#x", linear,
                                      out[2 * linear], out[2 * linear + 1], want_block, want_thread);
                        }
}

Test(corpus, matmul_tiled)
{
    int m = rng_int(40, 90), n = rng_int(40, 90), k = rng_int(40, 90);
    float *A = corpus_host(sizeof(float) * m * k), *B = corpus_host(sizeof(float) * k * n);
    float *C = corpus_host(sizeof(float) * m * n);
    for (int i = 0; i < m * k; i++)
        A[i] = rng_float(-1, 1);
    for (int i = 0; i < k * n; i++)
        B[i] = rng_float(-1, 1);
    CUmodule mod = corpus_load("matmul", FORM_PTX_FILE);
    CUdeviceptr dA = corpus_upload(A, sizeof(float) * m * k), dB = corpus_upload(B, sizeof(float) * k * n);
    CUdeviceptr dC = corpus_alloc(sizeof(float) * m * n);
    corpus_fill(dC, sizeof(float) * m * n, 0xff);
    void *params[] = {&dA, &dB, &dC, &m, &n, &k};
    corpus_launch(corpus_func(mod, "matmul_tiled"), ceil_div(n, 16), ceil_div(m, 16), 1, 16, 16, 1, 0,
                  params);
    corpus_download(C, dC, sizeof(float) * m * n);
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n; c++) {
            double ref = 0, mag = 0;
            for (int j = 0; j < k; j++) {
                ref += (double)A[r * k + j] * B[j * n + c];
                mag += fabs((double)A[r * k + j] * B[j * n + c]);
            }
            /* A k-term float dot product (fma or mul+add, any order) is within
             * k * FLT_EPSILON * sum|a*b| of the exact value (Higham, gamma_k bound). */
            ASSERT_CLOSE("C", r * n + c, C[r * n + c], ref, k * FLT_EPSILON * mag);
        }
}

Test(corpus, block_reduce_sum)
{
    int n = odd_size(30000);
    unsigned block = 256, blocks = ceil_div(n, block);
    int *in = corpus_host(n * sizeof(int)), *partial = corpus_host(blocks * sizeof(int));
    for (int i = 0; i < n; i++)
        in[i] = rng_int(-1000000, 1000000);
    CUmodule mod = corpus_load("reduce", FORM_FATBIN);
    CUdeviceptr din = corpus_upload(in, n * sizeof(int)), dpartial = corpus_alloc(blocks * sizeof(int));
    int zero = 0, total = 0;
    CUdeviceptr dtotal = corpus_upload(&zero, sizeof zero);
    void *params[] = {&din, &dpartial, &dtotal, &n};
    corpus_launch(corpus_func(mod, "block_reduce_sum"), blocks, 1, 1, block, 1, 1, block * sizeof(int),
                  params);
    corpus_download(partial, dpartial, blocks * sizeof(int));
    corpus_download(&total, dtotal, sizeof total);
    long long want_total = 0;
    for (unsigned b = 0; b < blocks; b++) {
        long long want = 0;
        for (unsigned i = b * block; i < (b + 1) * block && i < (unsigned)n; i++)
            want += in[i];
        cr_assert_eq(partial[b], (int)want, "block %u: %d, want %lld (seed %llu)", b, partial[b], want,
                     (unsigned long long)corpus_seed());
        want_total += want;
    }
    cr_assert_eq(total, (int)want_total, "atomic total %d, want %lld", total, want_total);
}

Test(corpus, warp_reduce_sum)
{
    int n = odd_size(20000);
    unsigned block = 32 * (unsigned)rng_int(2, 8), blocks = ceil_div(n, block);
    float *in = corpus_host(n * sizeof(float)), *partial = corpus_host(blocks * sizeof(float));
    for (int i = 0; i < n; i++)
        in[i] = rng_float(-50, 50);
    CUmodule mod = corpus_load("reduce", FORM_PTX_DATA);
    CUdeviceptr din = corpus_upload(in, n * sizeof(float)), dpartial = corpus_alloc(blocks * sizeof(float));
    void *params[] = {&din, &dpartial, &n};
    corpus_launch(corpus_func(mod, "warp_reduce_sum"), blocks, 1, 1, block, 1, 1, 0, params);
    corpus_download(partial, dpartial, blocks * sizeof(float));
    for (unsigned b = 0; b < blocks; b++) {
        double want = 0, mag = 0;
        for (unsigned i = b * block; i < (b + 1) * block && i < (unsigned)n; i++) {
            want += in[i];
            mag += fabs(in[i]);
        }
        /* Pairwise tree of depth log2(32) + log2(32) = 10 additions per path: error at most
         * 10 * FLT_EPSILON/2 * sum|x|; 10 * FLT_EPSILON leaves a factor of two. */
        ASSERT_CLOSE("partial", b, partial[b], want, 10 * FLT_EPSILON * mag);
    }
}

Test(corpus, warp_vote_max)
{
    unsigned block = 128, blocks = (unsigned)rng_int(3, 20), n = block * blocks;
    unsigned *in = corpus_host(n * sizeof(unsigned));
    unsigned *odd = corpus_host(n / 32 * sizeof(unsigned)), *wmax = corpus_host(n / 32 * sizeof(unsigned));
    for (unsigned i = 0; i < n; i++)
        in[i] = rng_u32() >> rng_int(0, 31);
    CUmodule mod = corpus_load("reduce", FORM_FATBIN_SM80);
    CUdeviceptr din = corpus_upload(in, n * sizeof(unsigned));
    CUdeviceptr dodd = corpus_alloc(n / 32 * sizeof(unsigned)), dmax = corpus_alloc(n / 32 * sizeof(unsigned));
    void *params[] = {&din, &dodd, &dmax};
    corpus_launch(corpus_func(mod, "warp_vote_max"), blocks, 1, 1, block, 1, 1, 0, params);
    corpus_download(odd, dodd, n / 32 * sizeof(unsigned));
    corpus_download(wmax, dmax, n / 32 * sizeof(unsigned));
    for (unsigned w = 0; w < n / 32; w++) {
        unsigned want_odd = 0, want_max = 0;
        for (unsigned l = 0; l < 32; l++) {
            want_odd += in[w * 32 + l] & 1u;
            if (in[w * 32 + l] > want_max)
                want_max = in[w * 32 + l];
        }
        cr_assert_eq(odd[w], want_odd, "warp %u: odd count %u, want %u", w, odd[w], want_odd);
        cr_assert_eq(wmax[w], want_max, "warp %u: max %u, want %u", w, wmax[w], want_max);
    }
}

Test(corpus, histogram256)
{
    int n = odd_size(50000);
    unsigned char *in = corpus_host(n);
    unsigned *bins = corpus_host(256 * sizeof(unsigned)), want[256] = {0};
    /* Half the bytes from a handful of values, so atomics on a bin really collide. */
    for (int i = 0; i < n; i++) {
        in[i] = (rng_u32() & 1) ? (unsigned char)rng_int(0, 255) : (unsigned char)(7 * rng_int(0, 3));
        want[in[i]]++;
    }
    CUmodule mod = corpus_load("reduce", FORM_PTX_FILE);
    CUdeviceptr din = corpus_upload(in, n), dbins = corpus_alloc(256 * sizeof(unsigned));
    corpus_fill(dbins, 256 * sizeof(unsigned), 0);
    void *params[] = {&din, &dbins, &n};
    corpus_launch(corpus_func(mod, "histogram256"), 12, 1, 1, 192, 1, 1, 0, params);
    corpus_download(bins, dbins, 256 * sizeof(unsigned));
    for (int b = 0; b < 256; b++)
        cr_assert_eq(bins[b], want[b], "bin %d: %u, want %u (seed %llu)", b, bins[b], want[b],
                     (unsigned long long)corpus_seed());
}

/* Three launches: per-block scan, scan of the block totals (one block), offsets added back. */
Test(corpus, prefix_scan)
{
    int n = odd_size(60000);
    unsigned block = 256, blocks = ceil_div(n, block);
    cr_assert(blocks <= 1024);
    int *in = corpus_host(n * sizeof(int)), *out = corpus_host(n * sizeof(int));
    for (int i = 0; i < n; i++)
        in[i] = rng_int(-100, 100);
    CUmodule mod = corpus_load("reduce", FORM_FATBIN_FILE);
    CUfunction scan = corpus_func(mod, "scan_block"), add = corpus_func(mod, "scan_add_offsets");
    CUdeviceptr din = corpus_upload(in, n * sizeof(int)), dout = corpus_alloc(n * sizeof(int));
    CUdeviceptr dsums = corpus_alloc(blocks * sizeof(int)), dsums_scanned = corpus_alloc(blocks * sizeof(int));
    CUdeviceptr dunused = corpus_alloc(sizeof(int));
    int nblocks = (int)blocks;
    void *p1[] = {&din, &dout, &dsums, &n};
    CK(cuLaunchKernel(scan, blocks, 1, 1, block, 1, 1, 2 * block * sizeof(int), NULL, p1, NULL));
    void *p2[] = {&dsums, &dsums_scanned, &dunused, &nblocks};
    CK(cuLaunchKernel(scan, 1, 1, 1, blocks, 1, 1, 2 * blocks * sizeof(int), NULL, p2, NULL));
    void *p3[] = {&dout, &dsums_scanned, &n};
    CK(cuLaunchKernel(add, blocks, 1, 1, block, 1, 1, 0, NULL, p3, NULL));
    CK(cuCtxSynchronize());
    corpus_download(out, dout, n * sizeof(int));
    int acc = 0;
    for (int i = 0; i < n; i++) {
        acc += in[i];
        cr_assert_eq(out[i], acc, "out[%d] = %d, want %d (seed %llu)", i, out[i], acc,
                     (unsigned long long)corpus_seed());
    }
}

Test(corpus, stencil5)
{
    int w = rng_int(50, 130), h = rng_int(30, 90);
    float c0 = rng_float(-1, 1), c1 = rng_float(-1, 1);
    size_t bytes = sizeof(float) * w * h;
    float *in = corpus_host(bytes), *out = corpus_host(bytes);
    for (int i = 0; i < w * h; i++)
        in[i] = rng_float(-10, 10);
    CUmodule mod = corpus_load("stencil", FORM_PTX_DATA);
    CUdeviceptr din = corpus_upload(in, bytes), dout = corpus_alloc(bytes);
    void *params[] = {&din, &dout, &w, &h, &c0, &c1};
    corpus_launch(corpus_func(mod, "stencil5"), ceil_div(w, 16), ceil_div(h, 8), 1, 16, 8, 1, 0, params);
    corpus_download(out, dout, bytes);
#define AT(x, y) (((x) >= 0 && (x) < w && (y) >= 0 && (y) < h) ? (double)in[(y) * w + (x)] : 0.0)
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double nsum = AT(x - 1, y) + AT(x + 1, y) + AT(x, y - 1) + AT(x, y + 1);
            double nmag = fabs(AT(x - 1, y)) + fabs(AT(x + 1, y)) + fabs(AT(x, y - 1)) + fabs(AT(x, y + 1));
            double ref = c0 * AT(x, y) + c1 * nsum;
            /* 3 additions + 2 products/fmas on the longest path: at most 6 roundings of
             * FLT_EPSILON/2 relative to the magnitudes involved. */
            double tol = 3 * FLT_EPSILON * (fabs(c0 * AT(x, y)) + fabs(c1) * nmag);
            ASSERT_CLOSE("out", y * w + x, out[y * w + x], ref, tol);
        }
#undef AT
}

Test(corpus, softmax_rows)
{
    int rows = rng_int(5, 20), cols = odd_size(300);
    unsigned threads = 128;
    size_t bytes = sizeof(float) * rows * cols;
    float *in = corpus_host(bytes), *prob = corpus_host(bytes), *logprob = corpus_host(bytes);
    for (int i = 0; i < rows * cols; i++)
        in[i] = rng_float(-10, 10);
    CUmodule mod = corpus_load("stencil", FORM_FATBIN);
    CUdeviceptr din = corpus_upload(in, bytes), dprob = corpus_alloc(bytes), dlog = corpus_alloc(bytes);
    void *params[] = {&din, &dprob, &dlog, &cols};
    corpus_launch(corpus_func(mod, "softmax_rows"), rows, 1, 1, threads, 1, 1, 0, params);
    corpus_download(prob, dprob, bytes);
    corpus_download(logprob, dlog, bytes);
    /* Error budget in units of FLT_EPSILON, relative: expf is within 2 ulp (CUDA programming
     * guide, table of single-precision functions); each thread sums ceil(cols/threads) terms
     * and the tree adds log2(threads) more roundings; division and logf add 1 each. Halved
     * ulps are rounded up to whole epsilons for slack. */
    double per_thread = ceil((double)cols / threads), tree = log2(threads);
    double sum_rel = (2 + per_thread + tree) * FLT_EPSILON;
    for (int r = 0; r < rows; r++) {
        const float *row = in + (size_t)r * cols;
        float m = row[0];
        for (int c = 1; c < cols; c++)
            m = fmaxf(m, row[c]);
        double sum = 0;
        for (int c = 0; c < cols; c++)
            sum += exp((double)(row[c] - m));   /* row[c] - m is a float op, as on the device */
        double logsum = log(sum);
        for (int c = 0; c < cols; c++) {
            int i = r * cols + c;
            double d = (double)(row[c] - m);
            double p = exp(d) / sum;
            ASSERT_CLOSE("prob", i, prob[i], p, (sum_rel + 4 * FLT_EPSILON) * p);
            /* logprob = d - logf(sum): absolute error from logsum (its relative error times
             * nothing larger than 1, plus logf's ulp) and from the two roundings. */
            double lp = d - logsum;
            ASSERT_CLOSE("logprob", i, logprob[i], lp, sum_rel + 4 * FLT_EPSILON * (fabs(d) + fabs(logsum)));
        }
    }
}

Test(corpus, double_math)
{
    int n = odd_size(3000);
    double *x = corpus_host(n * sizeof(double)), *y = corpus_host(n * sizeof(double));
    double *out = corpus_host(4 * n * sizeof(double));
    for (int i = 0; i < n; i++) {
        x[i] = rng_double(0.001, 100);
        y[i] = rng_double(-50, 50);
        if (y[i] == 0)
            y[i] = 1;
    }
    CUmodule mod = corpus_load("fp64", FORM_PTX_DATA);
    CUdeviceptr dx = corpus_upload(x, n * sizeof(double)), dy = corpus_upload(y, n * sizeof(double));
    CUdeviceptr dout = corpus_alloc(4 * n * sizeof(double));
    void *params[] = {&dx, &dy, &dout, &n};
    corpus_launch(corpus_func(mod, "double_math"), ceil_div(n, 64), 1, 1, 64, 1, 1, 0, params);
    corpus_download(out, dout, 4 * n * sizeof(double));
    for (int i = 0; i < n; i++) {
        /* sqrt, division and fma are correctly rounded in PTX (sqrt.rn, div.rn, fma.rn) and in
         * C: exact. */
        cr_assert(out[4 * i] == sqrt(x[i]), "sqrt(%.17g) = %.17g, want %.17g", x[i], out[4 * i], sqrt(x[i]));
        cr_assert(out[4 * i + 3] == fma(x[i], y[i], x[i] / y[i]), "fma(%.17g, %.17g, x/y) = %.17g, want %.17g",
                  x[i], y[i], out[4 * i + 3], fma(x[i], y[i], x[i] / y[i]));
        /* CUDA's exp is within 1 ulp, sin and cos within 2 ulp; glibc's within 1: 2 ulp for exp,
         * (3 + 3 + 1) ulp for the product of sin and cos, as relative errors of DBL_EPSILON. */
        double e = exp(x[i] / 8.0);
        ASSERT_CLOSE("exp", i, out[4 * i + 1], e, 2 * DBL_EPSILON * e);
        double sc = sin(x[i]) * cos(y[i]);
        ASSERT_CLOSE("sin*cos", i, out[4 * i + 2], sc, 7 * DBL_EPSILON * fabs(sc) + 4 * DBL_MIN);
    }
}

Test(corpus, int_divmod)
{
    int n = odd_size(4000);
    int *a32 = corpus_host(n * sizeof(int)), *b32 = corpus_host(n * sizeof(int));
    long long *a64 = corpus_host(n * sizeof(long long)), *b64 = corpus_host(n * sizeof(long long));
    long long *out = corpus_host(8 * n * sizeof(long long));
    for (int i = 0; i < n; i++) {
        /* Mix of magnitudes and signs; divisors never 0, never -1 against the most negative
         * dividend (undefined in C, so no reference exists). */
        a32[i] = (int)(rng_u32() >> rng_int(1, 31)) * (rng_int(0, 1) ? 1 : -1);
        b32[i] = (int)(rng_u32() >> rng_int(1, 31)) * (rng_int(0, 1) ? 1 : -1);
        if (b32[i] == 0)
            b32[i] = 7;
        a64[i] = (long long)(rng_u64() >> rng_int(1, 63)) * (rng_int(0, 1) ? 1 : -1);
        b64[i] = (long long)(rng_u64() >> rng_int(1, 63)) * (rng_int(0, 1) ? 1 : -1);
        if (b64[i] == 0)
            b64[i] = -3;
    }
    a32[0] = INT32_MIN;
    b32[0] = 3;
    a64[0] = INT64_MIN;
    b64[0] = 5;
    CUmodule mod = corpus_load("intdiv", FORM_FATBIN);
    CUdeviceptr da32 = corpus_upload(a32, n * sizeof(int)), db32 = corpus_upload(b32, n * sizeof(int));
    CUdeviceptr da64 = corpus_upload(a64, n * sizeof(long long)), db64 = corpus_upload(b64, n * sizeof(long long));
    CUdeviceptr dout = corpus_alloc(8 * n * sizeof(long long));
    void *params[] = {&da32, &db32, &da64, &db64, &dout, &n};
    corpus_launch(corpus_func(mod, "int_divmod"), ceil_div(n, 96), 1, 1, 96, 1, 1, 0, params);
    corpus_download(out, dout, 8 * n * sizeof(long long));
    for (int i = 0; i < n; i++) {
        int a = a32[i], b = b32[i];
        long long c = a64[i], d = b64[i];
        long long want[8] = {
            a / b, a % b, (unsigned)a / (unsigned)b, (unsigned)a % (unsigned)b, c / d, c % d,
            (long long)((unsigned long long)c / (unsigned long long)d),
            (long long)((unsigned long long)c % (unsigned long long)d)};
        for (int j = 0; j < 8; j++)
            cr_assert_eq(out[8 * i + j], want[j], "element %d op %d (a32 %d b32 %d a64 %lld b64 %lld): %lld, want %lld",
                         i, j, a, b, c, d, out[8 * i + j], want[j]);
    }
}

/* A random finite half with magnitude in [2^-6, 2^6): keeps a*b+c exact in double, so the
 * reference rounds exactly once, as the device must. */
static uint16_t rng_half_moderate(void)
{
    uint16_t exp = (uint16_t)rng_int(15 - 6, 15 + 5);
    return (uint16_t)((rng_u32() & 1) << 15) | (uint16_t)(exp << 10) | (uint16_t)(rng_u32() & 0x3ff);
}

Test(corpus, half_math)
{
    int n = odd_size(5000);
    uint16_t *a = corpus_host(n * 2), *b = corpus_host(n * 2), *c = corpus_host(n * 2), *out = corpus_host(3 * n * 2);
    for (int i = 0; i < n; i++) {
        a[i] = rng_half_moderate();
        b[i] = rng_half_moderate();
        c[i] = rng_half_moderate();
    }
    /* An input whose exact a*b+c lies within float precision of a half tie: a device that
     * computes fma.rn.f16 in float and rounds again returns the neighbour (found by a random run). */
    a[0] = 0xbc47;
    b[0] = 0x3577;
    c[0] = 0xc477;
    CUmodule mod = corpus_load("half", FORM_FATBIN_SM80);
    CUdeviceptr da = corpus_upload(a, n * 2), db = corpus_upload(b, n * 2), dc = corpus_upload(c, n * 2);
    CUdeviceptr dout = corpus_alloc(3 * n * 2);
    void *params[] = {&da, &db, &dc, &dout, &n};
    corpus_launch(corpus_func(mod, "half_math"), ceil_div(n, 128), 1, 1, 128, 1, 1, 0, params);
    corpus_download(out, dout, 3 * n * 2);
    for (int i = 0; i < n; i++) {
        /* add.f16, mul.f16 and fma.rn.f16 round once to nearest even; the exact result in double
         * rounded by half_from_double is the same value, bit for bit. */
        double x = half_to_double(a[i]), y = half_to_double(b[i]), z = half_to_double(c[i]);
        uint16_t want[3] = {half_from_double(x + y), half_from_double(x * y), half_from_double(x * y + z)};
        for (int j = 0; j < 3; j++)
            cr_assert_eq(out[3 * i + j], want[j], "element %d op %d (a %#06x b %#06x c %#06x): %#06x, want %#06x (seed %llu)",
                         i, j, a[i], b[i], c[i], out[3 * i + j], want[j], (unsigned long long)corpus_seed());
    }
}

Test(corpus, half_convert)
{
    int n = odd_size(5000);
    float *f = corpus_host(n * sizeof(float)), *back = corpus_host(n * sizeof(float));
    uint16_t *h = corpus_host(n * 2), *out = corpus_host(n * 2);
    for (int i = 0; i < n; i++) {
        /* floats from far below the smallest half subnormal to beyond the largest half */
        f[i] = (float)ldexp(rng_double(1, 2), rng_int(-27, 17)) * (rng_int(0, 1) ? 1.f : -1.f);
        do
            h[i] = (uint16_t)rng_u32();
        while ((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff));   /* no NaNs: payloads may differ */
    }
    CUmodule mod = corpus_load("half", FORM_PTX_FILE);
    CUdeviceptr df = corpus_upload(f, n * sizeof(float)), dh = corpus_upload(h, n * 2);
    CUdeviceptr dout = corpus_alloc(n * 2), dback = corpus_alloc(n * sizeof(float));
    void *params[] = {&df, &dout, &dh, &dback, &n};
    corpus_launch(corpus_func(mod, "half_convert"), ceil_div(n, 256), 1, 1, 256, 1, 1, 0, params);
    corpus_download(out, dout, n * 2);
    corpus_download(back, dback, n * sizeof(float));
    for (int i = 0; i < n; i++) {
        cr_assert_eq(out[i], half_from_double(f[i]), "half(%.9g) = %#06x, want %#06x", f[i], out[i],
                     half_from_double(f[i]));
        cr_assert(back[i] == (float)half_to_double(h[i]), "float(%#06x) = %.9g, want %.9g", h[i], back[i],
                  half_to_double(h[i]));
    }
}

/* Must match struct params in tests/kernels/misc.cu (CUDA lays it out as x86-64 C does). */
struct params {
    char tag;
    double scale;
    int offset;
    float weights[3];
    short shift;
};

static void struct_param_check(int use_extra)
{
    int n = odd_size(3000);
    struct params p = {.tag = (char)rng_int(-100, 100), .scale = rng_double(-4, 4),
                       .offset = rng_int(-100000, 100000),
                       .weights = {rng_float(-2, 2), rng_float(-2, 2), rng_float(-2, 2)},
                       .shift = (short)rng_int(-30000, 30000)};
    cr_assert_eq(sizeof p, 40);
    float *in = corpus_host(n * sizeof(float)), *out = corpus_host(n * sizeof(float));
    for (int i = 0; i < n; i++)
        in[i] = rng_float(-100, 100);
    CUmodule mod = corpus_load("misc", use_extra ? FORM_FATBIN : FORM_PTX_DATA);
    CUfunction f = corpus_func(mod, "struct_param");
    CUdeviceptr din = corpus_upload(in, n * sizeof(float)), dout = corpus_alloc(n * sizeof(float));
    if (use_extra) {
        unsigned char buf[60];
        memcpy(buf, &p, 40);
        memcpy(buf + 40, &din, 8);
        memcpy(buf + 48, &dout, 8);
        memcpy(buf + 56, &n, 4);
        size_t size = sizeof buf;
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                         CU_LAUNCH_PARAM_END};
        CK(cuLaunchKernel(f, ceil_div(n, 64), 1, 1, 64, 1, 1, 0, NULL, NULL, extra));
        CK(cuCtxSynchronize());
    } else {
        void *params[] = {&p, &din, &dout, &n};
        corpus_launch(f, ceil_div(n, 64), 1, 1, 64, 1, 1, 0, params);
    }
    corpus_download(out, dout, n * sizeof(float));
    for (int i = 0; i < n; i++) {
        /* float mul, double mul, conversions and a float add: all single IEEE roundings that the
         * CPU repeats step by step, and nothing the compiler may fuse: exact. */
        float want = (float)(p.scale * (double)(in[i] * p.weights[i % 3])) + (float)(p.offset + p.tag + p.shift);
        cr_assert(out[i] == want, "out[%d] = %.9g, want %.9g (seed %llu)", i, out[i], want,
                  (unsigned long long)corpus_seed());
    }
}

Test(corpus, struct_param) { struct_param_check(0); }
Test(corpus, struct_param_extra) { struct_param_check(1); }

Test(corpus, local_array)
{
    int n = odd_size(4000);
    unsigned *in = corpus_host(n * sizeof(unsigned)), *out = corpus_host(n * sizeof(unsigned));
    for (int i = 0; i < n; i++)
        in[i] = rng_u32();
    CUmodule mod = corpus_load("misc", FORM_FATBIN_SM80);
    CUdeviceptr din = corpus_upload(in, n * sizeof(unsigned)), dout = corpus_alloc(n * sizeof(unsigned));
    void *params[] = {&din, &dout, &n};
    corpus_launch(corpus_func(mod, "local_array"), ceil_div(n, 128), 1, 1, 128, 1, 1, 0, params);
    corpus_download(out, dout, n * sizeof(unsigned));
    for (int i = 0; i < n; i++) {
        unsigned arr[24], seed = in[i], acc = 0;
        for (int j = 0; j < 24; j++) {
            seed = seed * 1664525u + 1013904223u;
            arr[j] = seed;
        }
        for (int j = 0; j < 24; j++)
            acc ^= arr[(arr[j] >> 7) % 24] + j;
        cr_assert_eq(out[i], acc, "out[%d] = %#x, want %#x (input %#x)", i, out[i], acc, in[i]);
    }
}

static unsigned collatz_steps(unsigned long long v, unsigned cap)
{
    unsigned steps = 0;
    while (v != 1 && steps < cap) {
        v = (v & 1) ? 3 * v + 1 : v / 2;
        steps++;
    }
    return steps;
}

Test(corpus, devfunc_call)
{
    int n = odd_size(2000);
    unsigned *in = corpus_host(n * sizeof(unsigned)), *out = corpus_host(n * sizeof(unsigned));
    for (int i = 0; i < n; i++)
        in[i] = rng_u32() >> rng_int(8, 24);
    CUmodule mod = corpus_load("misc", FORM_PTX_FILE);
    CUdeviceptr din = corpus_upload(in, n * sizeof(unsigned)), dout = corpus_alloc(n * sizeof(unsigned));
    void *params[] = {&din, &dout, &n};
    corpus_launch(corpus_func(mod, "devfunc_call"), ceil_div(n, 64), 1, 1, 64, 1, 1, 0, params);
    corpus_download(out, dout, n * sizeof(unsigned));
    for (int i = 0; i < n; i++) {
        unsigned want = collatz_steps(in[i] | 1u, 1000) + collatz_steps((unsigned long long)(in[i] + 2u), 500);
        cr_assert_eq(out[i], want, "out[%d] = %u, want %u (input %u)", i, out[i], want, in[i]);
    }
}

Test(corpus, module_globals)
{
    int n = odd_size(1000);
    CUmodule mod = corpus_load("misc", FORM_FATBIN);
    CUdeviceptr dcoeffs, dlookup, dcounter, dmagic;
    size_t size = 0;
    CK(cuModuleGetGlobal(&dcoeffs, &size, mod, "poly_coeffs"));
    cr_assert_eq(size, 8 * sizeof(float), "poly_coeffs size %zu", size);
    CK(cuModuleGetGlobal(&dlookup, &size, mod, "lookup"));
    cr_assert_eq(size, 64 * sizeof(int), "lookup size %zu", size);
    CK(cuModuleGetGlobal(&dcounter, &size, mod, "call_counter"));
    cr_assert_eq(size, 8, "call_counter size %zu", size);
    CK(cuModuleGetGlobal(&dmagic, &size, mod, "magic_init"));
    cr_assert_eq(size, 4, "magic_init size %zu", size);
    CUdeviceptr dnone;
    cr_assert_eq(cuModuleGetGlobal(&dnone, &size, mod, "no_such_global"), CUDA_ERROR_NOT_FOUND);

    /* The initialiser is visible before any write; zero-initialised globals read 0. */
    int magic = 0;
    unsigned long long counter = 1;
    corpus_download(&magic, dmagic, sizeof magic);
    cr_assert_eq(magic, 0x5eed1e55, "magic_init = %#x", magic);
    corpus_download(&counter, dcounter, sizeof counter);
    cr_assert_eq(counter, 0, "call_counter starts at %llu", counter);

    float coeffs[8];
    int lookup[64];
    for (int j = 0; j < 8; j++)
        coeffs[j] = rng_float(-1, 1);
    for (int j = 0; j < 64; j++)
        lookup[j] = rng_int(-1000000, 1000000);
    CK(cuMemcpyHtoD(dcoeffs, coeffs, sizeof coeffs));
    CK(cuMemcpyHtoD(dlookup, lookup, sizeof lookup));

    float *x = corpus_host(n * sizeof(float)), *out = corpus_host(n * sizeof(float));
    int *looked = corpus_host(n * sizeof(int));
    for (int i = 0; i < n; i++)
        x[i] = rng_float(-1.5f, 1.5f);
    CUdeviceptr dx = corpus_upload(x, n * sizeof(float)), dout = corpus_alloc(n * sizeof(float));
    CUdeviceptr dlooked = corpus_alloc(n * sizeof(int));
    void *params[] = {&dx, &dout, &dlooked, &n};
    CUfunction f = corpus_func(mod, "globals_poly");
    corpus_launch(f, ceil_div(n, 100), 1, 1, 100, 1, 1, 0, params);
    corpus_launch(f, ceil_div(n, 100), 1, 1, 100, 1, 1, 0, params);   /* counter counts both */
    corpus_download(out, dout, n * sizeof(float));
    corpus_download(looked, dlooked, n * sizeof(int));
    corpus_download(&counter, dcounter, sizeof counter);
    cr_assert_eq(counter, 2ull * n, "call_counter = %llu, want %llu", counter, 2ull * n);
    for (int i = 0; i < n; i++) {
        double ref = 0, mag = 0;
        for (int j = 7; j >= 0; j--) {
            ref = ref * x[i] + coeffs[j];
            mag = mag * fabs(x[i]) + fabs(coeffs[j]);
        }
        /* Horner with 8 steps of fma (or mul + add): at most 2 * 8 roundings of FLT_EPSILON/2
         * relative to sum |c_j x^j| (gamma_16), plus one epsilon for its second-order terms. */
        ASSERT_CLOSE("poly", i, out[i], ref, 9 * FLT_EPSILON * mag);
        cr_assert_eq(looked[i], lookup[i % 64] + 0x5eed1e55, "looked_up[%d]", i);
    }
}

/* Every image form of every module loads, and vec_add gives the right answer from each. */
Test(corpus, image_forms)
{
    static const char *const modules[] = {"basic", "matmul", "reduce", "stencil", "fp64", "intdiv", "half", "misc"};
    for (size_t m = 0; m < sizeof modules / sizeof *modules; m++)
        for (int form = 0; form < FORM_COUNT; form++) {
            CUmodule mod = corpus_load(modules[m], (enum corpus_form)form);
            CUfunction f;
            cr_assert_eq(cuModuleGetFunction(&f, mod, "no_such_kernel"), CUDA_ERROR_NOT_FOUND,
                         "%s (%s): missing kernel not reported as CUDA_ERROR_NOT_FOUND", modules[m],
                         corpus_form_name((enum corpus_form)form));
            CK(cuModuleUnload(mod));
            corpus_forget_last_module();
        }
    int n = odd_size(1000);
    float *a = corpus_host(n * sizeof(float)), *b = corpus_host(n * sizeof(float)), *c = corpus_host(n * sizeof(float));
    for (int i = 0; i < n; i++) {
        a[i] = rng_float(-1, 1);
        b[i] = rng_float(-1, 1);
    }
    CUdeviceptr da = corpus_upload(a, n * sizeof(float)), db = corpus_upload(b, n * sizeof(float));
    CUdeviceptr dc = corpus_alloc(n * sizeof(float));
    for (int form = 0; form < FORM_COUNT; form++) {
        CUmodule mod = corpus_load("basic", (enum corpus_form)form);
        corpus_fill(dc, n * sizeof(float), 0xff);
        void *params[] = {&da, &db, &dc, &n};
        corpus_launch(corpus_func(mod, "vec_add"), ceil_div(n, 256), 1, 1, 256, 1, 1, 0, params);
        corpus_download(c, dc, n * sizeof(float));
        for (int i = 0; i < n; i++)
            cr_assert(c[i] == a[i] + b[i], "%s: c[%d] = %.9g, want %.9g",
                      corpus_form_name((enum corpus_form)form), i, c[i], a[i] + b[i]);
    }
}
