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
