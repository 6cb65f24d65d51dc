/* ptx_math: the transcendentals of ptx_math.h. */
#include "ptx_math.h"

float ptx_ex2_f32(float x)
{
    return (float)exp2l((long double)x);
}

float ptx_lg2_f32(float x)
{
    return (float)log2l((long double)x);
}

float ptx_sin_f32(float x)
{
    return (float)sinl((long double)x);
}

float ptx_cos_f32(float x)
{
    return (float)cosl((long double)x);
}

float ptx_tanh_f32(float x)
{
    return (float)tanhl((long double)x);
}

#define ROW(name)                                                                        \
    void ptx_row_##name##_f32(float *out, const float *in, int ftz)                     \
    {                                                                                    \
        for (int l = 0; l < 32; l++) {                                                   \
            float a = ftz ? ptx_ftz_f32(in[l]) : in[l];                                  \
            float r = ptx_##name##_f32(a);                                               \
            out[l] = ftz ? ptx_ftz_f32(r) : r;                                           \
        }                                                                                \
    }
ROW(ex2)
ROW(lg2)
ROW(sin)
ROW(cos)
ROW(tanh)
