/* ptx_math: lane functions shared by every path that runs PTX (the general handler, the fast
 * handlers of each instruction-set variant, the JIT's helpers), so that all of them give the
 * same bits. Private to server/emulator/ptx.
 *
 * Transcendentals (ex2, lg2, sin, cos, tanh of .f32) are correctly rounded: the exact value
 * rounded to the nearest float, which is what the long double functions give once rounded.
 * The row functions compute 32 lanes at once (ptx_math_rows.inc); the scalar ones are the
 * reference they fall back on and are tested against. Everything here must be compiled with
 * -ffp-contract=off. */
#ifndef VG_PTX_MATH_H
#define VG_PTX_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t ptx_brev32(uint32_t x)
{
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}

/* Round to the nearest integer, ties to even (the rounding mode is never changed around
 * this). */
static inline float ptx_rint_f32(float x)
{
    return rintf(x);
}

/* cvt.rzi.s32.f32 and friends: truncation, NaN to 0, out-of-range values saturate. */
static inline int32_t ptx_f32_to_s32_rz(float x)
{
    if (!(x == x))
        return 0;
    if (x <= -2147483648.0f)
        return INT32_MIN;
    if (x >= 2147483648.0f)
        return INT32_MAX;
    return (int32_t)x;
}

static inline uint32_t ptx_f32_to_u32_rz(float x)
{
    if (!(x > 0.0f))
        return 0;
    if (x >= 4294967296.0f)
        return UINT32_MAX;
    return (uint32_t)x;
}

static inline int32_t ptx_f64_to_s32_rz(double x)
{
    if (!(x == x))
        return 0;
    if (x <= -2147483648.0)
        return INT32_MIN;
    if (x >= 2147483648.0)
        return INT32_MAX;
    return (int32_t)x;
}

static inline float ptx_ftz_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0)
        u &= 0x80000000u;
    memcpy(&f, &u, 4);
    return f;
}

/* The reference transcendentals, correctly rounded. */
float ptx_ex2_f32(float x);
float ptx_lg2_f32(float x);
float ptx_sin_f32(float x);
float ptx_cos_f32(float x);
float ptx_tanh_f32(float x);

/* Their row forms (out[l] = f(in[l]) for 32 lanes, vectorized) are in ptx_math_rows.inc,
 * compiled with each fast-handler variant and reached through ptx_xops_table.row_f32. */

#endif
