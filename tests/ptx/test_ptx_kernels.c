/* Runs nvcc-compiled kernels (tests/ptx/kernels/basic.cu) on the PTX interpreter with random
 * inputs and compares each result with a C reference computed here. */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASIC_PTX PTX_KERNEL_DIR "/basic.ptx"

static ptx_module *mod;
static tmem *mem;

static void setup(void)
{
    mod = load_ptx(BASIC_PTX);
    mem = tmem_new();
}

static void teardown(void)
{
    ptx_module_free(mod);
    tmem_free(mem);
}

TestSuite(kernels, .init = setup, .fini = teardown);

static const ptx_kernel *kern(const char *name)
{
    const ptx_kernel *k = ptx_module_find_kernel(mod, name);
    cr_assert(k, "kernel %s not found", name);
    return k;
}

static void launch(const ptx_kernel *k, tparams *p, unsigned grid, unsigned block, size_t dyn,
                   unsigned workers)
{
    char err[256];
    int rc = run1d(k, p, mem, grid, block, dyn, workers, err, sizeof(err));
    cr_assert_eq(rc, PTX_OK, "launch of %s failed (%d): %s", ptx_kernel_name(k), rc, err);
}

static float frand(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(trand(s) & 0xffffff) / (float)0xffffff;
}

Test(kernels, parse_metadata)
{
    cr_assert_geq(ptx_module_kernel_count(mod), 10);
    const ptx_kernel *k = kern("vec_add");
    cr_assert_str_eq(ptx_kernel_name(k), "vec_add");
    cr_assert_eq(ptx_kernel_param_count(k), 4);
    size_t off, size;
    ptx_kernel_param(k, 3, &off, &size);
    cr_assert_eq(off, 24);
    cr_assert_eq(size, 4);
    cr_assert_eq(ptx_kernel_param_bytes(k), 28);
    cr_assert_eq(ptx_kernel_static_shared(kern("reduce_shared")), 256 * sizeof(float));
    cr_assert_eq(ptx_kernel_static_shared(kern("vec_add")), 0);
    cr_assert_geq(ptx_kernel_local_bytes(kern("local_array")), 64);
    cr_assert_eq(ptx_module_find_kernel(mod, "no_such_kernel"), NULL);
    for (size_t i = 0; i < ptx_module_kernel_count(mod); i++) {
        int regs = ptx_kernel_num_regs(ptx_module_kernel_at(mod, i));
        cr_assert(regs >= 1 && regs <= 64, "%d registers", regs);
        cr_assert_eq(ptx_kernel_max_threads(ptx_module_kernel_at(mod, i)), 1024);
    }
}

static void vec_add_case(unsigned workers)
{
    const ptx_kernel *k = kern("vec_add");
    int n = 10007; /* not a multiple of the block: the tail lanes are masked off */
    uint64_t s = 12345 + workers;
    uint64_t da = tmem_alloc(mem, n * 4), db = tmem_alloc(mem, n * 4), dc = tmem_alloc(mem, n * 4);
    float *a = tmem_host(mem, da), *b = tmem_host(mem, db), *c = tmem_host(mem, dc);
    for (int i = 0; i < n; i++) {
        a[i] = frand(&s, -100, 100);
        b[i] = frand(&s, -100, 100);
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, dc);
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 255) / 256, 256, 0, workers);
    for (int i = 0; i < n; i++)
        cr_assert_eq(c[i], a[i] + b[i], "c[%d] = %g, want %g", i, c[i], a[i] + b[i]);
}

Test(kernels, vec_add_one_worker) { vec_add_case(1); }
Test(kernels, vec_add_many_workers) { vec_add_case(4); }

static int diverge_ref(int v)
{
    int r = 0;
    if (v & 1) {
        for (int k = 0; k < (v & 15); k++)
            r += k * v;
    } else if (v % 3 == 0) {
        r = v / 3;
    } else {
        r = v < 0 ? -v : v;
        while (r < 100000)
            r = r * 2 + 7;
    }
    return r;
}

Test(kernels, divergent_branches)
{
    const ptx_kernel *k = kern("diverge");
    int n = 4000;
    uint64_t s = 777;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 4);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 20000) - 10000;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    launch(k, &p, (n + 127) / 128, 128, 0, 2);
    for (int i = 0; i < n; i++)
        cr_assert_eq(out[i], diverge_ref(in[i]), "out[%d] for %d", i, in[i]);
}

Test(kernels, shared_reduction)
{
    const ptx_kernel *k = kern("reduce_shared");
    int n = 256 * 37 + 11, blocks = (n + 255) / 256;
    uint64_t s = 99;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, blocks * 4);
    float *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        in[i] = (float)(int)(trand(&s) % 200) - 100.0f; /* integers: exact sums */
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    launch(k, &p, blocks, 256, 0, 3);
    for (int b = 0; b < blocks; b++) {
        float want = 0;
        for (int i = b * 256; i < (b + 1) * 256 && i < n; i++)
            want += in[i];
        cr_assert_eq(out[b], want, "block %d: %g want %g", b, out[b], want);
    }
}

Test(kernels, dynamic_shared_reduction)
{
    const ptx_kernel *k = kern("reduce_dyn");
    int block = 128, n = block * 20 - 5, blocks = (n + block - 1) / block;
    uint64_t s = 5;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, blocks * 4);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 1000);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    launch(k, &p, blocks, block, block * sizeof(int), 2);
    for (int b = 0; b < blocks; b++) {
        int want = 0;
        for (int i = b * block; i < (b + 1) * block && i < n; i++)
            want += in[i];
        cr_assert_eq(out[b], want, "block %d", b);
    }
    /* Too little dynamic shared memory for the block: the kernel runs off its end. */
    char err[256];
    int rc = run1d(k, &p, mem, blocks, block, block * sizeof(int) / 2, 1, err, sizeof(err));
    cr_assert_eq(rc, PTX_ERR_ILLEGAL_ADDRESS, "rc %d: %s", rc, err);
}

Test(kernels, warp_shuffle_vote)
{
    const ptx_kernel *k = kern("warp_reduce");
    int n = 128 * 12;
    uint64_t s = 31337;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n / 32 * 4),
             dbal = tmem_alloc(mem, n / 32 * 4);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    unsigned *bal = tmem_host(mem, dbal);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 100) - 40;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, dbal);
    TP_SET(&p, 3, n);
    launch(k, &p, n / 128, 128, 0, 2);
    for (int w = 0; w < n / 32; w++) {
        int sum = 0;
        unsigned b = 0;
        for (int l = 0; l < 32; l++) {
            sum += in[w * 32 + l];
            if (in[w * 32 + l] > 0)
                b |= 1u << l;
        }
        cr_assert_eq(out[w], sum, "warp %d: %d want %d", w, out[w], sum);
        cr_assert_eq(bal[w], b, "warp %d ballot %08x want %08x", w, bal[w], b);
    }
}

Test(kernels, atomics_many_blocks)
{
    const ptx_kernel *k = kern("atomics");
    int n = 64 * 100;
    uint64_t s = 4242;
    uint64_t dcnt = tmem_alloc(mem, 16 * 4), dumax = tmem_alloc(mem, 4), dfs = tmem_alloc(mem, 4),
             din = tmem_alloc(mem, n * 4);
    int *cnt = tmem_host(mem, dcnt), *in = tmem_host(mem, din);
    unsigned *umax = tmem_host(mem, dumax);
    float *fsum = tmem_host(mem, dfs);
    cnt[2] = 1 << 30; /* min starts high */
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 100000) - 50000;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dcnt);
    TP_SET(&p, 1, dumax);
    TP_SET(&p, 2, dfs);
    TP_SET(&p, 3, din);
    TP_SET(&p, 4, n);
    launch(k, &p, n / 64, 64, 0, 4);
    int sum = 0, mx = INT32_MIN, mn = 1 << 30;
    unsigned orv = 0, xorv = 0, um = 0;
    long long sum64 = 0;
    float fs = 0;
    for (int i = 0; i < n; i++) {
        int v = in[i];
        sum += v;
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
        orv |= 1u << (v & 31);
        xorv ^= (unsigned)v;
        unsigned h = (unsigned)v * 2654435761u;
        um = h > um ? h : um;
        fs += (float)(v & 7);
        sum64 += v;
    }
    cr_assert_eq(cnt[0], sum);
    cr_assert_eq(cnt[1], mx);
    cr_assert_eq(cnt[2], mn);
    cr_assert_eq((unsigned)cnt[3], orv);
    cr_assert_eq((unsigned)cnt[4], xorv);
    cr_assert_eq(*umax, um);
    cr_assert_eq(*fsum, fs, "fsum %g want %g", *fsum, fs); /* small integers: order-independent */
    cr_assert_eq(cnt[5], n, "CAS loop count %d", cnt[5]);
    cr_assert_eq((unsigned)cnt[6], (unsigned)(n % 100), "atomicInc wrap %u", (unsigned)cnt[6]);
    long long got64;
    memcpy(&got64, &cnt[8], 8);
    cr_assert_eq(got64, sum64);
}

static float poly_ref(float x, float y, int k)
{
    float r = 0.f;
    for (int i = 0; i < k; i++)
        r = fmaf(r, x, y);
    return r;
}

Test(kernels, func_call)
{
    const ptx_kernel *k = kern("call_func");
    int n = 1000;
    uint64_t s = 8;
    uint64_t dx = tmem_alloc(mem, n * 4), dy = tmem_alloc(mem, n * 4);
    float *x = tmem_host(mem, dx), *y = tmem_host(mem, dy);
    for (int i = 0; i < n; i++)
        x[i] = frand(&s, -2, 2);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dx);
    TP_SET(&p, 1, dy);
    TP_SET(&p, 2, n);
    launch(k, &p, (n + 63) / 64, 64, 0, 2);
    for (int i = 0; i < n; i++) {
        float want = poly_ref(x[i], 0.5f, (i & 7) + 1);
        cr_assert(fabsf(y[i] - want) <= 1e-5f * fmaxf(1.0f, fabsf(want)), "y[%d] %g want %g", i, y[i], want);
    }
}

Test(kernels, local_array)
{
    const ptx_kernel *k = kern("local_array");
    int n = 700;
    uint64_t s = 3;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 4);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 1000);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    launch(k, &p, (n + 127) / 128, 128, 0, 2);
    for (int i = 0; i < n; i++) {
        int idx = in[i] & 15;
        int want = in[i] * idx + in[i] * ((idx * 7) & 15);
        cr_assert_eq(out[i], want, "out[%d]", i);
    }
}

Test(kernels, half_precision)
{
    const ptx_kernel *k = kern("half_ops");
    int n = 500;
    uint64_t s = 11;
    uint64_t da = tmem_alloc(mem, n * 4), db = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 4);
    float *a = tmem_host(mem, da), *b = tmem_host(mem, db), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++) {
        a[i] = frand(&s, -8, 8);
        b[i] = frand(&s, -8, 8);
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, dout);
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 127) / 128, 128, 0, 1);
    for (int i = 0; i < n; i++) {
        _Float16 ha = (_Float16)a[i], hb = (_Float16)b[i];
        _Float16 sum = (_Float16)((float)ha + (float)hb);
        _Float16 r = (_Float16)fmaf((float)ha, (float)hb, (float)sum);
        _Float16 lo = (_Float16)((float)ha * (float)ha), hi = (_Float16)((float)hb * (float)hb);
        float want = (float)r + (float)lo + (float)hi;
        cr_assert(fabsf(out[i] - want) <= 1e-3f * fmaxf(1.0f, fabsf(want)), "out[%d] %g want %g", i, out[i], want);
    }
}

Test(kernels, double_precision)
{
    const ptx_kernel *k = kern("f64_ops");
    int n = 500;
    uint64_t s = 13;
    uint64_t da = tmem_alloc(mem, n * 8), db = tmem_alloc(mem, n * 8), dout = tmem_alloc(mem, n * 8);
    double *a = tmem_host(mem, da), *b = tmem_host(mem, db), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++) {
        a[i] = frand(&s, -50, 50);
        b[i] = frand(&s, 0, 50);
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, dout);
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 127) / 128, 128, 0, 2);
    for (int i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        double want = sqrt(fabs(x)) * y + x / (y + 3.0) - fmin(x, y) + (double)(long long)(x * 100.0);
        cr_assert(fabs(out[i] - want) <= 1e-12 * fmax(1.0, fabs(want)), "out[%d] %.17g want %.17g", i, out[i], want);
    }
}

Test(kernels, integer_div_rem)
{
    const ptx_kernel *k = kern("int_divrem");
    int n = 1000;
    uint64_t s = 17;
    uint64_t da = tmem_alloc(mem, n * 4), db = tmem_alloc(mem, n * 4), dq = tmem_alloc(mem, n * 4),
             dr = tmem_alloc(mem, n * 4), duq = tmem_alloc(mem, n * 4), dlq = tmem_alloc(mem, n * 8);
    int *a = tmem_host(mem, da), *b = tmem_host(mem, db), *q = tmem_host(mem, dq), *r = tmem_host(mem, dr);
    unsigned *uq = tmem_host(mem, duq);
    long long *lq = tmem_host(mem, dlq);
    for (int i = 0; i < n; i++) {
        a[i] = (int)(trand(&s) * 65599u - trand(&s));
        b[i] = (int)(trand(&s) % 2000) - 1000;
        if (b[i] == 0)
            b[i] = 7;
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, dq);
    TP_SET(&p, 3, dr);
    TP_SET(&p, 4, duq);
    TP_SET(&p, 5, dlq);
    TP_SET(&p, 6, n);
    launch(k, &p, (n + 127) / 128, 128, 0, 2);
    for (int i = 0; i < n; i++) {
        int x = a[i], y = b[i];
        cr_assert_eq(q[i], x / y, "q[%d] %d / %d", i, x, y);
        cr_assert_eq(r[i], x % y, "r[%d]", i);
        cr_assert_eq(uq[i], (unsigned)x / (unsigned)y + (unsigned)x % (unsigned)y, "uq[%d]", i);
        unsigned rev = 0;
        for (int bit = 0; bit < 32; bit++)
            if ((unsigned)x >> bit & 1)
                rev |= 1u << (31 - bit);
        long long want = ((long long)x * 1000003LL) / (long long)y + __builtin_popcount((unsigned)x) +
                         ((unsigned)y ? __builtin_clz((unsigned)y) : 32) + (long long)rev;
        cr_assert_eq(lq[i], want, "lq[%d] %lld want %lld", i, lq[i], want);
    }
}

Test(kernels, generic_pointers_to_every_space)
{
    const ptx_kernel *k = kern("generic_ptrs");
    uint64_t s = 21;
    uint64_t din = tmem_alloc(mem, 64 * 4), dout = tmem_alloc(mem, 64 * 4);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < 64; i++)
        in[i] = (int)(trand(&s) % 10);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    launch(k, &p, 1, 64, 0, 1);
    for (int t = 0; t < 64; t++) {
        int sh = 0, loc = 0, gl = 0;
        for (int i = 0; i < 8; i++) {
            sh += in[(t & ~7) + i] * 2;
            loc += in[(t + i) & 63] + i;
            gl += in[(t & ~7) + i];
        }
        cr_assert_eq(out[t], sh + loc * 1000 + gl * 1000000, "out[%d]", t);
    }
}

/* Several host threads launching on the same module at once, each with its own data. */
struct concurrent_job {
    const ptx_kernel *k;
    tmem *mem;
    int n, seed, ok;
    char err[256];
};

static void *concurrent_main(void *arg)
{
    struct concurrent_job *j = arg;
    j->ok = 1;
    for (int rep = 0; rep < 5 && j->ok; rep++) {
        float *a = tmem_host(j->mem, 0x7000000000ull), *b = tmem_host(j->mem, 0x7000020000ull);
        float *c = tmem_host(j->mem, 0x7000040000ull);
        for (int i = 0; i < j->n; i++) {
            a[i] = (float)(i * j->seed + rep);
            b[i] = (float)(i - rep);
            c[i] = -1.0f;
        }
        tparams p;
        memset(&p, 0, sizeof(p));
        p.k = j->k;
        uint64_t da = 0x7000000000ull, db = 0x7000020000ull, dc = 0x7000040000ull;
        memcpy(p.buf + 0, &da, 8);
        memcpy(p.buf + 8, &db, 8);
        memcpy(p.buf + 16, &dc, 8);
        memcpy(p.buf + 24, &j->n, 4);
        if (run1d(j->k, &p, j->mem, (j->n + 127) / 128, 128, 0, 2, j->err, sizeof(j->err)) != PTX_OK) {
            j->ok = 0;
            break;
        }
        for (int i = 0; i < j->n; i++)
            if (c[i] != a[i] + b[i]) {
                snprintf(j->err, sizeof(j->err), "job %d rep %d: c[%d] = %g", j->seed, rep, i, c[i]);
                j->ok = 0;
                break;
            }
    }
    return NULL;
}

Test(kernels, concurrent_launches)
{
    const ptx_kernel *k = kern("vec_add");
    enum { NJOBS = 4 };
    struct concurrent_job jobs[NJOBS];
    pthread_t th[NJOBS];
    for (int i = 0; i < NJOBS; i++) {
        jobs[i].k = k;
        jobs[i].mem = tmem_new();
        jobs[i].n = 5000 + i * 100;
        jobs[i].seed = i + 1;
        for (int b = 0; b < 3; b++)
            tmem_alloc(jobs[i].mem, 6000 * 4); /* same device addresses, separate memories */
        cr_assert_eq(pthread_create(&th[i], NULL, concurrent_main, &jobs[i]), 0);
    }
    for (int i = 0; i < NJOBS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NJOBS; i++) {
        cr_assert(jobs[i].ok, "%s", jobs[i].err);
        tmem_free(jobs[i].mem);
    }
}

Test(kernels, lane_instruction_count_independent_of_workers)
{
    const ptx_kernel *k = kern("diverge");
    int n = 3000;
    uint64_t s = 5150;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 4);
    int *in = tmem_host(mem, din);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 20000) - 10000;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    uint64_t counts[3];
    unsigned workers[3] = {1, 3, 8};
    for (int i = 0; i < 3; i++) {
        ptx_launch l = {.kernel = k, .grid = {(unsigned)(n + 63) / 64, 1, 1}, .block = {64, 1, 1},
                        .params = p.buf, .memory = tmem_iface(mem), .workers = workers[i]};
        char err[256];
        cr_assert_eq(ptx_launch_run(&l, err, sizeof(err)), PTX_OK, "%s", err);
        counts[i] = l.lane_instructions;
    }
    cr_assert_gt(counts[0], (uint64_t)n * 10);
    cr_assert_eq(counts[1], counts[0], "%llu vs %llu", (unsigned long long)counts[1], (unsigned long long)counts[0]);
    cr_assert_eq(counts[2], counts[0]);
}
