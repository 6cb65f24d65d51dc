/* The transcendentals (ex2, lg2, sin, cos, tanh of .f32): their vectorized row forms, on every
 * instruction-set variant this machine can run, give exactly the scalar reference's results,
 * which are correctly rounded (checked against known values and against libm's double
 * functions). */
#include "ptx_math.h"
#include "ptx_testlib.h"
#include "ptx_xops.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static float (*const refs[5])(float) = {ptx_ex2_f32, ptx_lg2_f32, ptx_sin_f32, ptx_cos_f32, ptx_tanh_f32};
static const char *const names[5] = {"ex2", "lg2", "sin", "cos", "tanh"};

static int same(float a, float b)
{
    return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b));
}

static float flush(float f)
{
    return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f;
}

static void check_table(const ptx_xops_table *t)
{
    uint64_t s = 0xabcdef;
    /* Special values, then random bit patterns and ordinary ranges. */
    static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.0f, 127.99f, 128.0f, -126.0f,
                                    -149.5f, -150.0f, 1e-45f, -1e-45f, 1e-38f, 3.4e38f, -3.4e38f,
                                    1048575.9f, 1048576.0f, -1048576.0f, 3.14159265f, 1.57079633f,
                                    9.0f, 9.1f, 20.0f, -20.5f, 0.49999997f, 0.5f};
    float in[32], out[32];
    for (int it = 0; it < 6000; it++) {
        for (int l = 0; l < 32; l++) {
            uint32_t u = trand(&s);
            float x;
            switch ((it + l) % 5) {
            case 0: memcpy(&x, &u, 4); break;
            case 1: x = (float)((int)(u % 2600000) - 1300000) / 10000.0f; break;
            case 2: x = (float)((int)(u % 2000000) - 1000000) / 100000.0f; break;
            case 3: x = special[u % (sizeof(special) / sizeof(special[0]))]; break;
            default: x = ldexpf((float)(u & 0xffffff) / 16777216.0f, (int)(u >> 24) % 80 - 40); break;
            }
            in[l] = x;
        }
        for (int f = 0; f < 5; f++) {
            for (int ftz = 0; ftz < 2; ftz++) {
                t->row_f32[f](out, in, ftz);
                for (int l = 0; l < 32; l++) {
                    float x = ftz ? flush(in[l]) : in[l];
                    float want = refs[f](x);
                    if (ftz)
                        want = flush(want);
                    cr_assert(same(out[l], want), "%s: %s(%a)%s = %a, reference %a", t->name, names[f], in[l],
                              ftz ? " ftz" : "", out[l], want);
                }
            }
        }
    }
}

Test(math, rows_equal_the_reference_on_every_variant)
{
    check_table(&ptx_xops_baseline);
#if defined(__x86_64__)
    if (ptx_xops_select() == &ptx_xops_avx2)
        check_table(&ptx_xops_avx2);
#endif
}

Test(math, reference_is_correctly_rounded)
{
    cr_assert_eq(ptx_ex2_f32(3.0f), 8.0f);
    cr_assert_eq(ptx_ex2_f32(-1.0f), 0.5f);
    cr_assert_eq(ptx_ex2_f32(-150.0f), 0.0f);
    cr_assert(isinf(ptx_ex2_f32(128.0f)));
    cr_assert_eq(ptx_lg2_f32(0.125f), -3.0f);
    cr_assert(isinf(ptx_lg2_f32(0.0f)) && ptx_lg2_f32(0.0f) < 0);
    cr_assert(isnan(ptx_lg2_f32(-1.0f)));
    cr_assert_eq(ptx_sin_f32(0.0f), 0.0f);
    cr_assert(signbit(ptx_sin_f32(-0.0f)));
    cr_assert_eq(ptx_cos_f32(0.0f), 1.0f);
    cr_assert_eq(ptx_tanh_f32(20.0f), 1.0f);
    /* Against double libm: the float nearest the double result (the same except within 2^-29
     * of a midpoint, which random inputs essentially never hit). */
    uint64_t s = 7;
    for (int i = 0; i < 200000; i++) {
        float x = (float)((int)(trand(&s) % 2000000) - 1000000) / 10000.0f;
        cr_assert(same(ptx_ex2_f32(x), (float)exp2((double)x)), "ex2(%a)", x);
        cr_assert(same(ptx_sin_f32(x), (float)sin((double)x)), "sin(%a)", x);
        cr_assert(same(ptx_cos_f32(x), (float)cos((double)x)), "cos(%a)", x);
        cr_assert(same(ptx_tanh_f32(x), (float)tanh((double)x)), "tanh(%a)", x);
        float y = fabsf(x) + 1e-3f;
        cr_assert(same(ptx_lg2_f32(y), (float)log2((double)y)), "lg2(%a)", y);
    }
}
