/* Broader coverage (tests/ptx/kernels/more.cu): math library code, conversions with rounding
 * and saturation, bit manipulation, 2-D/3-D blocks, module globals and constants, shared-memory
 * atomics, vector loads and struct parameters, early exit around a barrier, lane registers and
 * warp votes, device printf, 64-bit and f64 atomics. Each is checked against a C reference. */
#include "ptx_testlib.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MORE_PTX PTX_KERNEL_DIR "/more.ptx"

static ptx_module *mod;
static tmem *mem;
static uint64_t global_dev[16];

/* Allocates and initialises the module's .global/.const variables, as the driver does. */
static void bind_globals(void)
{
    for (size_t i = 0; i < ptx_module_global_count(mod); i++) {
        ptx_global_info g;
        ptx_module_global(mod, i, &g);
        uint64_t a = tmem_alloc(mem, g.size);
        if (i < 16)
            global_dev[i] = a;
        if (g.init)
            memcpy(tmem_host(mem, a), g.init, g.size);
        ptx_module_bind_global(mod, i, a);
    }
}

static void setup(void)
{
    mod = load_ptx(MORE_PTX);
    mem = tmem_new();
    bind_globals();
}

static void teardown(void)
{
    ptx_module_free(mod);
    tmem_free(mem);
}

TestSuite(more, .init = setup, .fini = teardown);

static const ptx_kernel *kern(const char *name)
{
    const ptx_kernel *k = ptx_module_find_kernel(mod, name);
    cr_assert(k, "kernel %s not found", name);
    return k;
}

static void launch(const ptx_kernel *k, tparams *p, unsigned grid, unsigned block, unsigned workers)
{
    char err[256];
    int rc = run1d(k, p, mem, grid, block, 0, workers, err, sizeof(err));
    cr_assert_eq(rc, PTX_OK, "launch of %s failed (%d): %s", ptx_kernel_name(k), rc, err);
}

static float frand(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(trand(s) & 0xffffff) / (float)0xffffff;
}

static uint64_t global_addr(const char *name)
{
    for (size_t i = 0; i < ptx_module_global_count(mod); i++) {
        ptx_global_info g;
        ptx_module_global(mod, i, &g);
        if (strcmp(g.name, name) == 0 && i < 16)
            return global_dev[i];
    }
    cr_assert_fail("no global %s", name);
    return 0;
}

static void close_enough(float got, float want, float rel, const char *what, int i)
{
    cr_assert(got == want || fabsf(got - want) <= rel * fmaxf(1.0f, fabsf(want)), "%s[%d]: %.9g want %.9g", what, i, got, want);
}

Test(more, globals_metadata)
{
    /* coeffs, dev_counter, dev_sum64, printf's strings and the sinf reduction table. */
    cr_assert_geq(ptx_module_global_count(mod), 3);
    int saw_const = 0;
    for (size_t i = 0; i < ptx_module_global_count(mod); i++) {
        ptx_global_info g;
        ptx_module_global(mod, i, &g);
        if (strcmp(g.name, "coeffs") == 0) {
            saw_const = 1;
            cr_assert(g.is_const);
            cr_assert_eq(g.size, 16);
            cr_assert(g.init);
            float c[4];
            memcpy(c, g.init, 16);
            cr_assert_eq(c[1], -1.25f);
            cr_assert_eq(c[3], 3.5f);
        }
    }
    cr_assert(saw_const);
}

Test(more, math_library)
{
    const ptx_kernel *k = kern("math_f32");
    int n = 777;
    uint64_t s = 1;
    uint64_t dx = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 8 * 4);
    float *x = tmem_host(mem, dx), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        x[i] = frand(&s, -40, 40);
    x[0] = 0.0f;
    x[1] = 2.5f; /* rintf tie: 2 */
    x[2] = 1e4f; /* sinf argument reduction beyond the fast path */
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dx);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    launch(k, &p, (n + 127) / 128, 128, 2);
    const float cf[4] = {0.5f, -1.25f, 2.0f, 3.5f};
    for (int i = 0; i < n; i++) {
        float v = x[i];
        float *o = out + i * 8;
        close_enough(o[0], sinf(v), 2e-6f, "sinf", i);
        close_enough(o[1], expf(v * 0.1f), 2e-6f, "expf", i);
        close_enough(o[2], logf(fabsf(v) + 1.0f), 2e-6f, "logf", i);
        close_enough(o[3], sqrtf(fabsf(v)) + 1.0f / sqrtf(fabsf(v) + 1.0f), 2e-6f, "sqrt", i);
        close_enough(o[4], tanhf(v * 0.2f), 2e-6f, "tanhf", i);
        close_enough(o[5], expf(v * 0.05f) + sinf(v) + cosf(v), 1e-4f, "fast", i);
        close_enough(o[6], powf(fabsf(v) + 0.5f, 1.5f), 2e-6f, "powf", i);
        float want = cf[i & 3] * v + floorf(v) + ceilf(v) + truncf(v) + rintf(v);
        close_enough(o[7], want, 1e-6f, "round", i);
    }
}

Test(more, conversions)
{
    const ptx_kernel *k = kern("conversions");
    int n = 600;
    uint64_t s = 2;
    uint64_t dx = tmem_alloc(mem, n * 4), dy = tmem_alloc(mem, n * 8), doi = tmem_alloc(mem, n * 16),
             dou = tmem_alloc(mem, n * 4), dol = tmem_alloc(mem, n * 16), dof = tmem_alloc(mem, n * 8),
             dod = tmem_alloc(mem, n * 8), dos = tmem_alloc(mem, n * 2), doc = tmem_alloc(mem, n);
    float *x = tmem_host(mem, dx);
    double *y = tmem_host(mem, dy);
    for (int i = 0; i < n; i++) {
        x[i] = frand(&s, -300, 300);
        y[i] = (double)frand(&s, -1e6f, 1e6f) * 1000.0 + 0.25;
    }
    x[0] = 2.5f;
    x[1] = -2.5f;
    x[2] = 3.5f;
    x[3] = -0.0f;
    y[0] = 1e300; /* float conversion overflows to inf; ll conversion saturates */
    y[1] = -1e300;
    tparams p;
    tparams_init(&p, k);
    uint64_t ptrs[9] = {dx, dy, doi, dou, dol, dof, dod, dos, doc};
    for (int i = 0; i < 9; i++)
        TP_SET(&p, i, ptrs[i]);
    TP_SET(&p, 9, n);
    launch(k, &p, (n + 127) / 128, 128, 2);
    int *oi = tmem_host(mem, doi);
    unsigned *ou = tmem_host(mem, dou);
    long long *ol = tmem_host(mem, dol);
    float *of = tmem_host(mem, dof);
    double *od = tmem_host(mem, dod);
    short *os = tmem_host(mem, dos);
    unsigned char *oc = tmem_host(mem, doc);
    for (int i = 0; i < n; i++) {
        float v = x[i];
        double d = y[i];
        cr_assert_eq(oi[i * 4 + 0], (int)v, "trunc %d", i);
        cr_assert_eq(oi[i * 4 + 1], (int)rintf(v), "rn %d: %g -> %d", i, v, oi[i * 4 + 1]);
        cr_assert_eq(oi[i * 4 + 2], (int)floorf(v), "rd %d", i);
        cr_assert_eq(oi[i * 4 + 3], (int)ceilf(v), "ru %d", i);
        unsigned uz = v < 0 ? 0 : (unsigned)v;
        cr_assert_eq(ou[i], (unsigned)fabsf(v * 1000.0f) + uz, "u %d", i);
        long long lt = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (long long)d;
        long long lr = d * 3.0 >= 9.2e18 ? INT64_MAX : d * 3.0 <= -9.2e18 ? INT64_MIN : llrint(d * 3.0);
        cr_assert_eq(ol[i * 2 + 0], lt, "ll %d", i);
        cr_assert_eq(ol[i * 2 + 1], lr, "llrn %d", i);
        cr_assert_eq(of[i * 2 + 0], (float)d, "f %d", i);
        cr_assert_eq(of[i * 2 + 1], (float)(i * 7 - 300) + (float)((unsigned)i * 3u), "i2f %d", i);
        cr_assert_eq(od[i], (double)v + (double)(i * 3 - 100) + (double)(unsigned long long)(i * 1000000007ull), "d %d", i);
        cr_assert_eq(os[i], (short)(int)(v * 100.0f), "s16 %d", i);
        cr_assert_eq(oc[i], (unsigned char)(int)(v * 10.0f), "u8 %d", i);
    }
}

Test(more, bit_manipulation)
{
    const ptx_kernel *k = kern("bits");
    int n = 900;
    uint64_t s = 3;
    uint64_t da = tmem_alloc(mem, n * 4), db = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 48);
    unsigned *a = tmem_host(mem, da), *b = tmem_host(mem, db), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++) {
        a[i] = trand(&s) * 65599u + trand(&s);
        b[i] = trand(&s) * 31u + trand(&s);
    }
    a[0] = 0;
    b[0] = 0;
    a[1] = 0x80000000u;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, dout);
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 255) / 256, 256, 2);
    for (int i = 0; i < n; i++) {
        unsigned x = a[i], y = b[i];
        unsigned *o = out + i * 12;
        cr_assert_eq(o[0], (unsigned)(((unsigned long long)x * y) >> 32), "umulhi %d", i);
        cr_assert_eq(o[1], (unsigned)(((long long)(int)x * (int)y) >> 32), "mulhi %d", i);
        cr_assert_eq(o[2], (x >> (y & 31)) ^ (x << ((y >> 5) & 31)), "shifts %d", i);
        cr_assert_eq(o[3], (unsigned)((int)x >> (y & 31)), "sar %d", i);
        unsigned sel = 0x5140 + (y & 3), perm = 0;
        unsigned long long bytes = ((unsigned long long)y << 32) | x;
        for (int j = 0; j < 4; j++)
            perm |= (unsigned)((bytes >> (((sel >> (4 * j)) & 7) * 8)) & 0xff) << (8 * j);
        cr_assert_eq(o[4], perm, "byte_perm %d: %08x want %08x", i, o[4], perm);
        cr_assert_eq(o[5], (x >> 5) & 0x3ff, "bfe %d", i);
        cr_assert_eq(o[6], (x & ~(0xffu << 8)) | ((y & 0xff) << 8), "bfi %d", i);
        unsigned long long prod = (unsigned long long)x * y;
        unsigned ffs = x ? (unsigned)__builtin_ctz(x) + 1 : 0;
        unsigned clz = prod ? (unsigned)__builtin_clzll(prod) : 64;
        unsigned want7 = ffs + clz + (unsigned)__builtin_popcountll((unsigned long long)x << 7);
        cr_assert_eq(o[7], want7, "ffs/clz/popc %d", i);
        unsigned mn = x < y ? x : y;
        int mx = (int)x > (int)y ? (int)x : (int)y;
        cr_assert_eq(o[8], mn + (unsigned)mx, "minmax %d", i);
        cr_assert_eq(o[9], x > y ? x - y : y - x, "absdiff %d", i);
        cr_assert_eq(o[10], (unsigned)(prod >> 17), "wide shift %d", i);
        long long sd = (long long)(int)x - (long long)(int)y;
        unsigned sad = (unsigned)(sd < 0 ? -sd : sd) + 3u;
        unsigned usad = (x > y ? x - y : y - x) + 1u;
        unsigned ab = (int)x < 0 ? 0u - x : x;
        cr_assert_eq(o[11], sad + usad + ab, "sad %d", i);
    }
}

Test(more, grid_and_block_3d)
{
    const ptx_kernel *k = kern("grid2d");
    int width = 32, height = 12;
    uint64_t dout = tmem_alloc(mem, (size_t)width * height * 2 * 4);
    int *out = tmem_host(mem, dout);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dout);
    TP_SET(&p, 1, width);
    ptx_launch l = {.kernel = k, .grid = {4, 3, 1}, .block = {8, 4, 2}, .params = p.buf,
                    .memory = tmem_iface(mem), .workers = 3};
    char err[256];
    cr_assert_eq(ptx_launch_run(&l, err, sizeof(err)), PTX_OK, "%s", err);
    cr_assert_eq(l.lane_instructions % 64, 0); /* every block runs the same straight-line code */
    cr_assert_gt(l.lane_instructions, 0);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            for (int z = 0; z < 2; z++)
                cr_assert_eq(out[(y * width + x) * 2 + z], x * 1000 + y * 10 + z + 400000 + 2000000,
                             "(%d,%d,%d)", x, y, z);
}

Test(more, module_globals)
{
    const ptx_kernel *k = kern("globals");
    int n = 3000;
    uint64_t s = 4;
    uint64_t din = tmem_alloc(mem, n * 4);
    int *in = tmem_host(mem, din);
    unsigned long long want = 0;
    for (int i = 0; i < n; i++) {
        in[i] = (int)(trand(&s) % 100000);
        want += (unsigned long long)in[i];
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, n);
    launch(k, &p, (n + 255) / 256, 256, 4);
    int *counter = tmem_host(mem, global_addr("dev_counter"));
    unsigned long long *sum = tmem_host(mem, global_addr("dev_sum64"));
    cr_assert_eq(*counter, n);
    cr_assert_eq(*sum, want);
}

Test(more, shared_atomics)
{
    const ptx_kernel *k = kern("shared_hist");
    int n = 10000;
    uint64_t s = 5;
    uint64_t din = tmem_alloc(mem, n * 4), dh = tmem_alloc(mem, 16 * 4);
    int *in = tmem_host(mem, din), *h = tmem_host(mem, dh);
    int want[16] = {0};
    for (int i = 0; i < n; i++) {
        in[i] = (int)trand(&s);
        want[in[i] & 15]++;
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dh);
    TP_SET(&p, 2, n);
    launch(k, &p, 7, 128, 3);
    for (int b = 0; b < 16; b++)
        cr_assert_eq(h[b], want[b], "bin %d", b);
}

Test(more, vector_loads_struct_param)
{
    const ptx_kernel *k = kern("vec4_struct");
    int n = 300;
    uint64_t s = 6;
    uint64_t din = tmem_alloc(mem, n * 16), dout = tmem_alloc(mem, n * 16);
    float *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n * 4; i++)
        in[i] = frand(&s, -10, 10);
    struct { int scale; float bias; long long offset; } prm = {3, 0.5f, 1000};
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    tparams_set(&p, 2, &prm, sizeof(prm));
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 63) / 64, 64, 2);
    for (int i = 0; i < n; i++) {
        float *v = in + i * 4, *o = out + i * 4;
        cr_assert_eq(o[0], fmaf(v[3], 3.0f, 0.5f), "%d.x", i); /* nvcc contracts to fma */
        cr_assert_eq(o[1], v[2] * 3.0f, "%d.y", i);
        cr_assert_eq(o[2], v[1] + 1000.0f, "%d.z", i);
        cr_assert_eq(o[3], v[0], "%d.w", i);
    }
}

Test(more, early_exit_then_barrier)
{
    const ptx_kernel *k = kern("early_exit_barrier");
    int blocks = 9, n = blocks * 96;
    uint64_t s = 7;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 4);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 1000);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    launch(k, &p, blocks, 128, 2);
    for (int b = 0; b < blocks; b++)
        for (int t = 0; t < 96; t++)
            cr_assert_eq(out[b * 96 + t], in[b * 96 + 95 - t] + in[b * 96 + (t + 1) % 96], "%d,%d", b, t);
}

Test(more, lane_registers_and_votes)
{
    const ptx_kernel *k = kern("lanes");
    uint64_t dout = tmem_alloc(mem, 64 * 8 * 4);
    unsigned *out = tmem_host(mem, dout);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dout);
    launch(k, &p, 1, 64, 1);
    for (unsigned t = 0; t < 64; t++) {
        unsigned lane = t % 32, *o = out + t * 8;
        cr_assert_eq(o[0], lane);
        cr_assert_eq(o[1], t / 32);
        cr_assert_eq(o[2], (1u << lane) - 1);
        cr_assert_eq(o[3], ~((1u << lane) - 1));
        cr_assert_eq(o[4], (t & 1) ? 0xaaaaaaaau : 0, "activemask %u: %08x", t, o[4]);
        cr_assert_eq(o[5], t / 32 == 1, "any %u", t);
        cr_assert_eq(o[6], 1);
        cr_assert_eq(o[7], ((t & ~31u) + ((t + 5) & 31)) * 3, "shfl idx %u", t);
    }
}

Test(more, device_printf, .init = cr_redirect_stdout)
{
    if (!mod) /* a test's own .init may replace the suite's */
        setup();
    const ptx_kernel *k = kern("say_hello");
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, 42);
    launch(k, &p, 2, 32, 1);
    fflush(stdout);
    cr_assert_stdout_eq_str("hello 42 from block 0, 1.50 ok\nhello 42 from block 1, 1.50 ok\n");
}

Test(more, atomics_64bit_and_f64)
{
    const ptx_kernel *k = kern("atomics64");
    int n = 2000;
    uint64_t s = 8;
    uint64_t du = tmem_alloc(mem, 24), dd = tmem_alloc(mem, 8), de = tmem_alloc(mem, 16),
             din = tmem_alloc(mem, n * 4);
    unsigned long long *u = tmem_host(mem, du);
    double *d = tmem_host(mem, dd);
    int *e = tmem_host(mem, de), *in = tmem_host(mem, din);
    u[1] = ~0ull;
    e[2] = -1;
    e[3] = 10;
    unsigned long long mx = 0, mn = ~0ull;
    double sum = 0;
    int sub = 0, andv = -1;
    for (int i = 0; i < n; i++) {
        in[i] = (int)(trand(&s) % 50000);
        unsigned long long v = (unsigned long long)in[i] * 1000003ull;
        mx = v > mx ? v : mx;
        mn = (unsigned long long)in[i] + 5 < mn ? (unsigned long long)in[i] + 5 : mn;
        sum += in[i] * 0.5; /* halves of integers below 2^52: exact in any order */
        sub -= in[i];
        andv &= (int)~(1u << (in[i] & 31));
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, du);
    TP_SET(&p, 1, dd);
    TP_SET(&p, 2, de);
    TP_SET(&p, 3, din);
    TP_SET(&p, 4, n);
    launch(k, &p, (n + 127) / 128, 128, 4);
    cr_assert_eq(u[0], mx);
    cr_assert_eq(u[1], mn);
    cr_assert(u[2] >= 1 && u[2] <= (unsigned long long)n, "cas winner %llu", u[2]);
    cr_assert_eq(*d, sum);
    cr_assert_eq(e[0], 7);
    cr_assert_eq(e[1], sub);
    cr_assert_eq(e[2], andv);
    /* atomicDec from 10 with limit 1000, n times: 10 down to 0, then wraps to 1000 and on. */
    unsigned dec = 10;
    for (int i = 0; i < n; i++)
        dec = (dec == 0 || dec > 1000) ? 1000 : dec - 1;
    cr_assert_eq((unsigned)e[3], dec);
}

Test(more, carry_flag_128bit)
{
    const ptx_kernel *k = kern("carry128");
    int n = 500;
    uint64_t s = 9;
    uint64_t da = tmem_alloc(mem, n * 16), db = tmem_alloc(mem, n * 16), ds = tmem_alloc(mem, n * 16),
             dd = tmem_alloc(mem, n * 16), dm = tmem_alloc(mem, n * 8);
    unsigned long long *a = tmem_host(mem, da), *b = tmem_host(mem, db);
    for (int i = 0; i < 2 * n; i++) {
        a[i] = ((unsigned long long)trand(&s) << 40) ^ ((unsigned long long)trand(&s) << 20) ^ trand(&s);
        b[i] = ((unsigned long long)trand(&s) << 40) ^ ((unsigned long long)trand(&s) << 20) ^ trand(&s);
        if (i % 7 == 0)
            a[i] = ~0ull; /* force carries */
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, ds);
    TP_SET(&p, 3, dd);
    TP_SET(&p, 4, dm);
    TP_SET(&p, 5, n);
    launch(k, &p, (n + 127) / 128, 128, 2);
    unsigned long long *sum = tmem_host(mem, ds), *diff = tmem_host(mem, dd);
    unsigned *mul = tmem_host(mem, dm);
    for (int i = 0; i < n; i++) {
        unsigned __int128 x = ((unsigned __int128)a[2 * i + 1] << 64) | a[2 * i];
        unsigned __int128 y = ((unsigned __int128)b[2 * i + 1] << 64) | b[2 * i];
        unsigned __int128 sm = x + y, df = x - y;
        cr_assert_eq(sum[2 * i], (unsigned long long)sm, "sum lo %d", i);
        cr_assert_eq(sum[2 * i + 1], (unsigned long long)(sm >> 64), "sum hi %d", i);
        cr_assert_eq(diff[2 * i], (unsigned long long)df, "diff lo %d", i);
        cr_assert_eq(diff[2 * i + 1], (unsigned long long)(df >> 64), "diff hi %d", i);
        unsigned xx = (unsigned)a[2 * i], yy = (unsigned)b[2 * i];
        unsigned c0 = (unsigned)a[2 * i + 1], c1 = (unsigned)b[2 * i + 1];
        unsigned long long prod = (unsigned long long)xx * yy;
        unsigned long long lo = (prod & 0xffffffffull) + c0;
        unsigned hi = (unsigned)(prod >> 32) + c1 + (unsigned)(lo >> 32);
        cr_assert_eq(mul[2 * i], (unsigned)lo, "mad lo %d", i);
        cr_assert_eq(mul[2 * i + 1], hi, "madc hi %d", i);
    }
}

Test(more, block_predicate_reductions)
{
    const ptx_kernel *k = kern("block_votes");
    int blocks = 6, block = 96, n = blocks * block;
    uint64_t s = 10;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 4);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 20) - 4 - (i / block == 2 ? 10 : 0);
    in[4 * block + 7] = 3;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    launch(k, &p, blocks, block, 2);
    for (int b = 0; b < blocks; b++) {
        int cnt = 0, all = 1, any = 0;
        for (int t = 0; t < block; t++) {
            int v = in[b * block + t];
            cnt += v > 0;
            all &= v > -5;
            any |= v == 3;
        }
        for (int t = 0; t < block; t++)
            cr_assert_eq(out[b * block + t], cnt * 100 + all * 10 + any, "block %d thread %d", b, t);
    }
}

Test(more, float_classes_and_half2_packing)
{
    const ptx_kernel *k = kern("fp_classify");
    int n = 8;
    float vals[8] = {1.0f, -2.5f, INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 65504.0f};
    uint64_t dx = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 4), dpk = tmem_alloc(mem, n * 4);
    memcpy(tmem_host(mem, dx), vals, sizeof(vals));
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dx);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, dpk);
    TP_SET(&p, 3, n);
    launch(k, &p, 1, 32, 1);
    int *out = tmem_host(mem, dout);
    unsigned *pk = tmem_host(mem, dpk);
    for (int i = 0; i < n; i++) {
        float v = vals[i];
        int want = (isinf(v) ? 1 : 0) + (isnan(v) ? 2 : 0) + (isfinite(v) ? 4 : 0) + (signbit(v) ? 8 : 0);
        cr_assert_eq(out[i], want, "class %d", i);
        _Float16 lo = (_Float16)v, hi = (_Float16)(v * 2.0f);
        uint16_t l16, h16;
        memcpy(&l16, &lo, 2);
        memcpy(&h16, &hi, 2);
        if (isnan(v))
            cr_assert((pk[i] & 0x7c00) == 0x7c00 && (pk[i] & 0x3ff), "nan %d", i);
        else
            cr_assert_eq(pk[i], ((unsigned)h16 << 16) | l16, "half2 %d: %08x", i, pk[i]);
    }
}

/* Instructions nvcc rarely emits, in hand-written PTX. */
static const char *const hand_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry hand(.param .u64 out, .param .f32 x, .param .f32 y)\n{\n"
    "\t.reg .b32 %r<12>;\n\t.reg .f32 %f<4>;\n\t.reg .pred %p<8>;\n\t.reg .b64 %rd<4>;\n"
    "\tld.param.u64 %rd1, [out];\n\tld.param.f32 %f1, [x];\n\tld.param.f32 %f2, [y];\n"
    "\ttestp.infinite.f32 %p1, %f1;\n\ttestp.notanumber.f32 %p2, %f1;\n\ttestp.subnormal.f32 %p3, %f2;\n"
    "\tselp.u32 %r1, 1, 0, %p1;\n\tselp.u32 %r2, 2, 0, %p2;\n\tselp.u32 %r3, 4, 0, %p3;\n"
    "\tor.b32 %r4, %r1, %r2;\n\tor.b32 %r4, %r4, %r3;\n"
    "\tcvt.rn.f16x2.f32 %r5, %f2, %f1;\n"
    "\tsetp.lt.and.f32 %p4|%p5, %f2, 0f40000000, %p3;\n"
    "\tselp.u32 %r6, 16, 0, %p5;\n\tor.b32 %r4, %r4, %r6;\n"
    "\tlop3.b32 %r7, %r4, 0xf0f0f0f0, 0x33333333, 0xe8;\n" /* majority(a, b, c) */
    "\tslct.u32.s32 %r8, 100, 200, %r2;\n"
    "\tmov.b32 %r9, 0f3FC00000;\n\tcopysign.f32 %f3, %f2, %f1;\n\tmov.b32 %r10, %f3;\n"
    "\tst.global.v4.u32 [%rd1], {%r4, %r5, %r7, %r8};\n"
    "\tst.global.v2.u32 [%rd1+16], {%r9, %r10};\n\tret;\n}\n";

Test(more, handwritten_rare_instructions)
{
    ptx_module *m = NULL;
    char err[256];
    cr_assert_eq(ptx_module_parse(hand_ptx, strlen(hand_ptx), &m, err, sizeof(err)), PTX_OK, "%s", err);
    const ptx_kernel *k = ptx_module_find_kernel(m, "hand");
    float xs[3] = {INFINITY, NAN, 1.0f}, ys[3] = {1e-40f, 3.0f, -1.0f};
    for (int c = 0; c < 3; c++) {
        uint64_t dout = tmem_alloc(mem, 32);
        tparams p;
        tparams_init(&p, k);
        TP_SET(&p, 0, dout);
        TP_SET(&p, 1, xs[c]);
        TP_SET(&p, 2, ys[c]);
        cr_assert_eq(run1d(k, &p, mem, 1, 1, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
        unsigned *o = tmem_host(mem, dout);
        float x = xs[c], y = ys[c];
        int sub = fpclassify(y) == FP_SUBNORMAL;
        unsigned flags = (isinf(x) ? 1u : 0) | (isnan(x) ? 2u : 0) | (sub ? 4u : 0);
        int lt = y < 2.0f; /* p5 = !lt && p3 */
        if (!lt && sub)
            flags |= 16;
        cr_assert_eq(o[0], flags, "case %d flags %x", c, o[0]);
        _Float16 hy = (_Float16)y, hx = (_Float16)x;
        uint16_t by, bx;
        memcpy(&by, &hy, 2);
        memcpy(&bx, &hx, 2);
        if (!isnan(x))
            cr_assert_eq(o[1], ((unsigned)by << 16) | bx, "case %d half2 %08x", c, o[1]);
        unsigned a = flags, b = 0xf0f0f0f0u, cc = 0x33333333u;
        cr_assert_eq(o[2], (a & b) | (a & cc) | (b & cc), "case %d lop3", c);
        cr_assert_eq(o[3], (int)(isnan(x) ? 2 : 0) >= 0 ? 100u : 200u);
        cr_assert_eq(o[4], 0x3fc00000u);
        float cs = copysignf(x, y);
        unsigned csb;
        memcpy(&csb, &cs, 4);
        if (!isnan(x))
            cr_assert_eq(o[5], csb, "case %d copysign", c);
    }
    ptx_module_free(m);
}

static int sw_ref(int x)
{
    switch (x & 15) {
    case 0: return x * 3; case 1: return x - 7; case 2: return x ^ 0x55; case 3: return (int)((unsigned)x << 2);
    case 4: return x / 3; case 5: return ~x; case 6: return x + 100; case 7: return x * x;
    case 8: return x >> 1; case 9: return -x; case 10: return x | 8; case 11: return x & 0xf0;
    default: return 42;
    }
}

Test(more, switch_tiles_and_widths)
{
    const ptx_kernel *k = kern("features");
    int n = 64 * 5;
    uint64_t s = 12;
    uint64_t din = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 12);
    int *in = tmem_host(mem, din), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++)
        in[i] = (int)(trand(&s) % 2000) - 1000;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    TP_SET(&p, 2, n);
    launch(k, &p, n / 64, 64, 2);
    for (int i = 0; i < n; i++) {
        /* tile.shfl_down over 16 lanes: lanes past the tile's end read their own value. */
        int base = i & ~15, lane = i & 15, vals[16];
        for (int j = 0; j < 16; j++)
            vals[j] = in[base + j];
        for (int o = 8; o > 0; o >>= 1) {
            int nv[16];
            for (int j = 0; j < 16; j++)
                nv[j] = vals[j] + (j + o < 16 ? vals[j + o] : vals[j]);
            memcpy(vals, nv, sizeof(vals));
        }
        int w = in[(i & ~7) + 3]; /* __shfl_sync(v, 3, width 8) */
        cr_assert_eq(out[i * 3], sw_ref(in[i]), "switch %d", i);
        cr_assert_eq(out[i * 3 + 1], vals[lane] * 1000 + w, "shuffles %d", i);
        cr_assert_eq(out[i * 3 + 2], 1, "clock64 %d", i);
    }
}

Test(more, device_assert_fails_launch)
{
    const ptx_kernel *k = kern("assert_kernel");
    tparams p;
    tparams_init(&p, k);
    char err[256];
    TP_SET(&p, 0, 2);
    cr_assert_eq(run1d(k, &p, mem, 2, 32, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
    TP_SET(&p, 0, 3);
    /* Distinct from trap, so that the driver can return CUDA_ERROR_ASSERT. */
    cr_assert_eq(run1d(k, &p, mem, 2, 32, 0, 1, err, sizeof(err)), PTX_ERR_ASSERT);
    cr_assert(strstr(err, "x != 3"), "%s", err);
}

Test(more, atomics_16bit)
{
    const ptx_kernel *k = kern("atomics16");
    int n = 1000; /* 250 in f16 is exact; 1000 and 500 too */
    uint64_t dh = tmem_alloc(mem, 2), dh2 = tmem_alloc(mem, 4), du = tmem_alloc(mem, 2);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dh);
    TP_SET(&p, 1, dh2);
    TP_SET(&p, 2, du);
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 127) / 128, 128, 4);
    uint16_t hb, h2b[2], ub;
    memcpy(&hb, tmem_host(mem, dh), 2);
    memcpy(h2b, tmem_host(mem, dh2), 4);
    memcpy(&ub, tmem_host(mem, du), 2);
    _Float16 h, lo, hi;
    memcpy(&h, &hb, 2);
    memcpy(&lo, &h2b[0], 2);
    memcpy(&hi, &h2b[1], 2);
    cr_assert_eq((float)h, 250.0f, "half sum %g", (float)h);
    cr_assert_eq((float)lo, 1000.0f, "half2.x sum %g", (float)lo);
    cr_assert_eq((float)hi, 500.0f, "half2.y sum %g", (float)hi);
    cr_assert_eq(ub, n, "cas16 count %u", ub);
}

Test(more, multiply_24bit)
{
    const ptx_kernel *k = kern("mul24k");
    int n = 400;
    uint64_t s = 24;
    uint64_t da = tmem_alloc(mem, n * 4), db = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 16);
    int *a = tmem_host(mem, da), *b = tmem_host(mem, db), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++) {
        a[i] = (int)(trand(&s) * 2654435761u);
        b[i] = (int)(trand(&s) * 40503u + trand(&s));
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, dout);
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 127) / 128, 128, 2);
    for (int i = 0; i < n; i++) {
        long long sx = (long long)((int)((unsigned)a[i] << 8) >> 8), sy = (long long)((int)((unsigned)b[i] << 8) >> 8);
        unsigned long long ux = (unsigned)a[i] & 0xffffff, uy = (unsigned)b[i] & 0xffffff;
        cr_assert_eq((unsigned)out[i * 4], (unsigned)(unsigned long long)(sx * sy), "mul24 %d", i);
        cr_assert_eq((unsigned)out[i * 4 + 1], (unsigned)(ux * uy), "umul24 %d", i);
        cr_assert_eq((unsigned)out[i * 4 + 2], (unsigned)((ux * uy) >> 16), "mul24.hi %d", i);
        cr_assert_eq((unsigned)out[i * 4 + 3], (unsigned)(unsigned long long)(sx * sy) + (unsigned)i, "mad24 %d", i);
    }
}

Test(more, warps_take_turns_without_barriers)
{
    const ptx_kernel *k = kern("spin_flag");
    uint64_t dout = tmem_alloc(mem, 8);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dout);
    launch(k, &p, 1, 64, 1);
    int *out = tmem_host(mem, dout);
    cr_assert_eq(out[0], 1234);
    cr_assert_eq(out[1], 1);
}

Test(more, match_and_address_spaces)
{
    const ptx_kernel *k = kern("match_space");
    uint64_t din = tmem_alloc(mem, 32 * 4), dout = tmem_alloc(mem, 32 * 16);
    int *in = tmem_host(mem, din);
    unsigned *out = tmem_host(mem, dout);
    for (int i = 0; i < 32; i++)
        in[i] = i % 5;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    launch(k, &p, 1, 32, 1);
    for (int t = 0; t < 32; t++) {
        unsigned same = 0;
        for (int j = 0; j < 32; j++)
            if (in[j] == in[t])
                same |= 1u << j;
        cr_assert_eq(out[t * 4], same, "match.any %d: %08x", t, out[t * 4]);
        cr_assert_eq(out[t * 4 + 1], 0xffffffffu, "match.all uniform %d", t);
        cr_assert_eq(out[t * 4 + 2], 0u, "match.all mixed %d", t);
        unsigned want = (t & 1) ? 1u : (t & 2) ? 4u : 2u;
        cr_assert_eq(out[t * 4 + 3], want, "space of pointer %d: %u", t, out[t * 4 + 3]);
    }
}

/* Narrow and vector loads/stores: sign extension of ld.s8/ld.s16, v2.f64, v4.u16, v2.u8. */
static const char *const narrow_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry narrow(.param .u64 in, .param .u64 out)\n{\n"
    "\t.reg .b16 %rs<8>;\n\t.reg .b32 %r<8>;\n\t.reg .b64 %rd<8>;\n\t.reg .f64 %fd<4>;\n"
    "\tld.param.u64 %rd1, [in];\n\tld.param.u64 %rd2, [out];\n"
    "\tld.global.s8 %r1, [%rd1];\n\tld.global.u8 %r2, [%rd1];\n"
    "\tld.global.s16 %r3, [%rd1+2];\n\tld.global.u16 %r4, [%rd1+2];\n"
    "\tld.global.s8 %rs1, [%rd1+1];\n\tcvt.s32.s16 %r5, %rs1;\n"
    "\tst.global.v4.u32 [%rd2], {%r1, %r2, %r3, %r4};\n\tst.global.u32 [%rd2+16], %r5;\n"
    "\tld.global.v2.f64 {%fd1, %fd2}, [%rd1+16];\n\tadd.f64 %fd3, %fd1, %fd2;\n"
    "\tst.global.f64 [%rd2+24], %fd3;\n"
    "\tld.global.v4.u16 {%rs2, %rs3, %rs4, %rs5}, [%rd1+32];\n"
    "\tst.global.v4.u16 [%rd2+32], {%rs5, %rs4, %rs3, %rs2};\n"
    "\tld.global.v2.u8 {%rs6, %rs7}, [%rd1+40];\n\tst.global.v2.u8 [%rd2+40], {%rs7, %rs6};\n"
    "\tld.global.s16 %rd3, [%rd1+2];\n\tst.global.u64 [%rd2+48], %rd3;\n"
    "\tret;\n}\n";

Test(more, narrow_and_vector_memory)
{
    ptx_module *m = NULL;
    char err[256];
    cr_assert_eq(ptx_module_parse(narrow_ptx, strlen(narrow_ptx), &m, err, sizeof(err)), PTX_OK, "%s", err);
    const ptx_kernel *k = ptx_module_find_kernel(m, "narrow");
    uint64_t din = tmem_alloc(mem, 64), dout = tmem_alloc(mem, 64);
    uint8_t *in = tmem_host(mem, din);
    in[0] = 0xf0;   /* -16 as s8 */
    in[1] = 0x85;   /* -123 as s8 */
    in[2] = 0x34;
    in[3] = 0x92;   /* 0x9234: negative as s16 */
    double d2[2] = {1.25, -3.5};
    memcpy(in + 16, d2, 16);
    uint16_t h4[4] = {1, 2, 0xfffe, 40000};
    memcpy(in + 32, h4, 8);
    in[40] = 7;
    in[41] = 250;
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, din);
    TP_SET(&p, 1, dout);
    cr_assert_eq(run1d(k, &p, mem, 1, 1, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
    uint8_t *out = tmem_host(mem, dout);
    int32_t w[5];
    memcpy(w, out, 20);
    cr_assert_eq(w[0], -16);
    cr_assert_eq(w[1], 0xf0);
    cr_assert_eq(w[2], (int16_t)0x9234);
    cr_assert_eq(w[3], 0x9234);
    cr_assert_eq(w[4], -123);
    double sum;
    memcpy(&sum, out + 24, 8);
    cr_assert_eq(sum, -2.25);
    uint16_t r4[4];
    memcpy(r4, out + 32, 8);
    cr_assert(r4[0] == 40000 && r4[1] == 0xfffe && r4[2] == 2 && r4[3] == 1);
    cr_assert(out[40] == 250 && out[41] == 7);
    int64_t s64;
    memcpy(&s64, out + 48, 8);
    cr_assert_eq(s64, (int16_t)0x9234, "ld.s16 into a 64-bit register: %lld", (long long)s64);
    ptx_module_free(m);
}

Test(more, byte_dot_products)
{
    const ptx_kernel *k = kern("dots");
    int n = 300;
    uint64_t s = 44;
    uint64_t da = tmem_alloc(mem, n * 4), db = tmem_alloc(mem, n * 4), dout = tmem_alloc(mem, n * 16);
    int *a = tmem_host(mem, da), *b = tmem_host(mem, db), *out = tmem_host(mem, dout);
    for (int i = 0; i < n; i++) {
        a[i] = (int)(trand(&s) * 2654435761u);
        b[i] = (int)(trand(&s) * 40503u + trand(&s));
    }
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, da);
    TP_SET(&p, 1, db);
    TP_SET(&p, 2, dout);
    TP_SET(&p, 3, n);
    launch(k, &p, (n + 127) / 128, 128, 2);
    for (int i = 0; i < n; i++) {
        unsigned ua = (unsigned)a[i], ub = (unsigned)b[i];
        long long s4 = i, u4 = i, lo = 5, hi = -5;
        for (int j = 0; j < 4; j++) {
            s4 += (long long)(int8_t)(ua >> (8 * j)) * (int8_t)(ub >> (8 * j));
            u4 += (long long)(uint8_t)(ua >> (8 * j)) * (uint8_t)(ub >> (8 * j));
        }
        for (int j = 0; j < 2; j++) {
            lo += (long long)(int16_t)(ua >> (16 * j)) * (int8_t)(ub >> (8 * j));
            hi += (long long)(int16_t)(ua >> (16 * j)) * (int8_t)(ub >> (8 * (j + 2)));
        }
        cr_assert_eq(out[i * 4], (int)s4, "dp4a s %d", i);
        cr_assert_eq((unsigned)out[i * 4 + 1], (unsigned)u4, "dp4a u %d", i);
        cr_assert_eq(out[i * 4 + 2], (int)lo, "dp2a lo %d", i);
        cr_assert_eq(out[i * 4 + 3], (int)hi, "dp2a hi %d", i);
    }
}

/* Named barriers with thread counts and bar.arrive: warp 0 waits for warp 1's arrival while
 * warp 1 spins until warp 0 is through, so only a counted barrier lets both finish. */
static const char *const named_bar_ptx =
    ".version 7.5\n.target sm_75\n.address_size 64\n"
    ".visible .entry named(.param .u64 out)\n{\n"
    "\t.reg .b32 %r<8>;\n\t.reg .pred %p<4>;\n\t.reg .b64 %rd<2>;\n"
    "\t.shared .align 4 .b32 data;\n\t.shared .align 4 .b32 flag;\n"
    "\tld.param.u64 %rd1, [out];\n\tmov.u32 %r1, %tid.x;\n\tshr.u32 %r2, %r1, 5;\n"
    "\tsetp.eq.u32 %p1, %r2, 0;\n\t@%p1 bra CONSUMER;\n"
    "\tsetp.eq.u32 %p2, %r2, 1;\n\t@%p2 bra PRODUCER;\n"
    "\tbar.sync 2, 64;\n\tret;\n"
    "PRODUCER:\n\tmov.u32 %r3, 777;\n\tst.shared.u32 [data], %r3;\n\tbar.arrive 3, 64;\n"
    "SPIN:\n\tld.volatile.shared.u32 %r4, [flag];\n\tsetp.eq.u32 %p3, %r4, 0;\n\t@%p3 bra SPIN;\n\tret;\n"
    "CONSUMER:\n\tbar.sync 3, 64;\n\tld.shared.u32 %r5, [data];\n\tst.global.u32 [%rd1], %r5;\n"
    "\tmov.u32 %r6, 1;\n\tst.volatile.shared.u32 [flag], %r6;\n\tret;\n}\n";

Test(more, named_barriers_with_counts, .timeout = 30)
{
    ptx_module *m = NULL;
    char err[256];
    cr_assert_eq(ptx_module_parse(named_bar_ptx, strlen(named_bar_ptx), &m, err, sizeof(err)), PTX_OK, "%s", err);
    const ptx_kernel *k = ptx_module_find_kernel(m, "named");
    uint64_t dout = tmem_alloc(mem, 4);
    tparams p;
    tparams_init(&p, k);
    TP_SET(&p, 0, dout);
    cr_assert_eq(run1d(k, &p, mem, 1, 128, 0, 1, err, sizeof(err)), PTX_OK, "%s", err);
    cr_assert_eq(*(int *)tmem_host(mem, dout), 777);
    ptx_module_free(m);
}
