/* Texture sampling and surface addressing (server/emulator/emu_sample.c), called directly.
 * Expected values come from the rules CUDA documents (programming guide, "Texture Fetching"):
 * nearest-point sampling takes texel floor(x); linear filtering takes (1 - a) T[i] + a T[i + 1]
 * with i = floor(x - 0.5) and a = frac(x - 0.5) held as an 8-bit fraction; normalized coordinates
 * are scaled by the size; wrap, mirror, clamp and border addressing. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "emu.h"
#include "emu_sample.h"

static float level_data_f[4][16][16][16]; /* [level][z][y][x] scratch */

static emu_tex_level level(const void *data, size_t w, size_t h, size_t d, size_t elem)
{
    emu_tex_level l = {data, w, h, d, w * elem, w * elem * h};
    return l;
}

static emu_tex_view view_f(const emu_tex_level *lv, unsigned nlevels, int dims, int filter,
                           int normalized, int addr)
{
    emu_tex_view v;
    memset(&v, 0, sizeof v);
    v.levels = lv;
    v.nlevels = nlevels;
    v.fmt_kind = EMU_FMT_FLOAT;
    v.comp_bytes = 4;
    v.channels = 1;
    v.dims = dims;
    v.filter = filter;
    v.normalized = normalized;
    v.address[0] = v.address[1] = v.address[2] = addr;
    v.max_lod = 1000.0f;
    return v;
}

static ptx_tex_request req(int geom, float x, float y, float z)
{
    ptx_tex_request q;
    memset(&q, 0, sizeof q);
    q.geom = geom;
    q.x = x;
    q.y = y;
    q.z = z;
    q.gather = -1;
    return q;
}

static float fetch1(const emu_tex_view *v, ptx_tex_request q)
{
    uint32_t out[4];
    cr_assert_eq(emu_tex_sample(v, &q, out), 0);
    float f;
    memcpy(&f, &out[0], 4);
    return f;
}

/* The documented linear weight: frac(x - 0.5) in 8-bit fixed point. */
static float lerp_ref(const float *t, size_t n, float x)
{
    float u = x - 0.5f;
    float i = floorf(u);
    float a = roundf((u - i) * 256.0f) / 256.0f;
    long i0 = (long)i, i1 = i0 + 1;
    i0 = i0 < 0 ? 0 : i0 >= (long)n ? (long)n - 1 : i0;
    i1 = i1 < 0 ? 0 : i1 >= (long)n ? (long)n - 1 : i1;
    return (1.0f - a) * t[i0] + a * t[i1];
}

Test(sample, point_and_linear_1d)
{
    static const float t[4] = {0, 10, 20, 30};
    emu_tex_level lv = level(t, 4, 1, 1, 4);
    emu_tex_view v = view_f(&lv, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 2.7f, 0, 0)), 20.0f);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, -5.0f, 0, 0)), 0.0f);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 100.0f, 0, 0)), 30.0f);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, NAN, 0, 0)), 0.0f, "NaN coordinates do not crash");
    v.filter = EMU_FILTER_LINEAR;
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 1.5f, 0, 0)), 10.0f); /* a texel centre */
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 2.0f, 0, 0)), 15.0f);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 1.75f, 0, 0)), 12.5f);
    for (float x = -1.0f; x < 5.0f; x += 0.13f)
        cr_assert_float_eq(fetch1(&v, req(PTX_TEX_1D, x, 0, 0)), lerp_ref(t, 4, x), 1e-5,
                           "x = %f", x);
    /* A 2D request of a 1D texture does not fit it. */
    uint32_t out[4];
    ptx_tex_request q2 = req(PTX_TEX_2D, 0, 0, 0);
    cr_assert_eq(emu_tex_sample(&v, &q2, out), -1);
}

Test(sample, addressing_modes_with_normalized_coordinates)
{
    static const float t[4] = {0, 10, 20, 30};
    emu_tex_level lv = level(t, 4, 1, 1, 4);
    emu_tex_view v = view_f(&lv, 1, 1, EMU_FILTER_POINT, 1, EMU_ADDR_WRAP);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 1.25f, 0, 0)), 10.0f);  /* 0.25 -> texel 1 */
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, -0.25f, 0, 0)), 30.0f); /* 0.75 -> texel 3 */
    v.address[0] = EMU_ADDR_MIRROR;
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 1.25f, 0, 0)), 30.0f);  /* 0.75 */
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, -0.25f, 0, 0)), 10.0f); /* 0.25 */
    v.address[0] = EMU_ADDR_CLAMP;
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 1.25f, 0, 0)), 30.0f);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 0.6f, 0, 0)), 20.0f);  /* 2.4 -> texel 2 */
    v.address[0] = EMU_ADDR_BORDER;
    v.border[0] = -7.0f;
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 1.25f, 0, 0)), -7.0f);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 0.1f, 0, 0)), 0.0f);
    /* Linear filtering at the edge blends with the border color, or wraps around. */
    v.filter = EMU_FILTER_LINEAR;
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 0.0f, 0, 0)), 0.5f * -7.0f + 0.5f * 0.0f);
    v.address[0] = EMU_ADDR_WRAP;
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 0.0f, 0, 0)), 15.0f); /* half texel 3, half texel 0 */
    /* Unnormalized coordinates: wrap and mirror act as clamp. */
    v.normalized = 0;
    v.filter = EMU_FILTER_POINT;
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 9.0f, 0, 0)), 30.0f);
}

Test(sample, bilinear_and_trilinear_reproduce_linear_functions)
{
    /* T = x + 10 y (+ 100 z): filtering a linear function gives the function at the point, up to
     * the 8-bit weights (exact here, at quarter-texel coordinates). */
    static float t2[8][8], t3[4][4][4];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            t2[y][x] = (float)(x + 10 * y);
    for (int z = 0; z < 4; z++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                t3[z][y][x] = (float)(x + 10 * y + 100 * z);
    emu_tex_level l2 = level(t2, 8, 8, 1, 4), l3 = level(t3, 4, 4, 4, 4);
    emu_tex_view v2 = view_f(&l2, 1, 2, EMU_FILTER_LINEAR, 0, EMU_ADDR_CLAMP);
    emu_tex_view v3 = view_f(&l3, 1, 3, EMU_FILTER_LINEAR, 0, EMU_ADDR_CLAMP);
    for (float y = 1.0f; y < 7.0f; y += 0.25f)
        for (float x = 1.0f; x < 7.0f; x += 0.25f)
            cr_assert_float_eq(fetch1(&v2, req(PTX_TEX_2D, x, y, 0)), (x - 0.5f) + 10 * (y - 0.5f),
                               1e-4, "(%f, %f)", x, y);
    cr_assert_float_eq(fetch1(&v3, req(PTX_TEX_3D, 1.75f, 2.25f, 3.0f)),
                       1.25f + 10 * 1.75f + 100 * 2.5f, 1e-4);
    /* Normalized: the same point expressed in [0, 1). */
    v2.normalized = 1;
    cr_assert_float_eq(fetch1(&v2, req(PTX_TEX_2D, 3.0f / 8, 5.0f / 8, 0)), 2.5f + 45.0f, 1e-4);
    /* Point sampling in 3D picks the texel containing the point. */
    v3.filter = EMU_FILTER_POINT;
    cr_assert_eq(fetch1(&v3, req(PTX_TEX_3D, 1.9f, 2.1f, 3.99f)), 1 + 20 + 300);
}

Test(sample, element_formats_and_read_modes)
{
    static const unsigned char u8[4] = {0, 128, 255, 64};
    emu_tex_level lv = level(u8, 4, 1, 1, 1);
    emu_tex_view v = view_f(&lv, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    v.fmt_kind = EMU_FMT_UINT;
    v.comp_bytes = 1;
    cr_assert(emu_tex_returns_float(&v));
    cr_assert_float_eq(fetch1(&v, req(PTX_TEX_1D, 1.5f, 0, 0)), 128.0f / 255.0f, 1e-6);
    cr_assert_eq(fetch1(&v, req(PTX_TEX_1D, 2.5f, 0, 0)), 1.0f);
    v.read_as_int = 1;
    cr_assert(!emu_tex_returns_float(&v));
    uint32_t out[4];
    ptx_tex_request q = req(PTX_TEX_1D, 1.5f, 0, 0);
    cr_assert_eq(emu_tex_sample(&v, &q, out), 0);
    cr_assert_eq(out[0], 128);
    cr_assert_eq(out[3], 1, "a missing alpha reads as 1");

    static const signed char s8[3] = {-128, -127, 64};
    emu_tex_level ls = level(s8, 3, 1, 1, 1);
    emu_tex_view vs = view_f(&ls, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    vs.fmt_kind = EMU_FMT_SINT;
    vs.comp_bytes = 1;
    cr_assert_eq(fetch1(&vs, req(PTX_TEX_1D, 0.5f, 0, 0)), -1.0f);
    cr_assert_eq(fetch1(&vs, req(PTX_TEX_1D, 1.5f, 0, 0)), -1.0f);
    cr_assert_float_eq(fetch1(&vs, req(PTX_TEX_1D, 2.5f, 0, 0)), 64.0f / 127.0f, 1e-6);
    vs.read_as_int = 1;
    q = req(PTX_TEX_1D, 0.5f, 0, 0);
    cr_assert_eq(emu_tex_sample(&vs, &q, out), 0);
    cr_assert_eq((int32_t)out[0], -128);

    /* 32-bit integers always come back as integers. */
    static const int32_t i32[2] = {-5, 70000};
    emu_tex_level li = level(i32, 2, 1, 1, 4);
    emu_tex_view vi = view_f(&li, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    vi.fmt_kind = EMU_FMT_SINT;
    cr_assert(!emu_tex_returns_float(&vi));
    q = req(PTX_TEX_1D, 1.2f, 0, 0);
    cr_assert_eq(emu_tex_sample(&vi, &q, out), 0);
    cr_assert_eq((int32_t)out[0], 70000);

    /* Half floats, two channels: the missing blue reads 0 and alpha 1. */
    static const uint16_t h2[4] = {0x3E00, 0xC000, 0x3C00, 0x0001}; /* 1.5, -2, 1, tiny */
    emu_tex_level lh = level(h2, 2, 1, 1, 4);
    emu_tex_view vh = view_f(&lh, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    vh.fmt_kind = EMU_FMT_HALF;
    vh.comp_bytes = 2;
    vh.channels = 2;
    q = req(PTX_TEX_1D, 0.5f, 0, 0);
    cr_assert_eq(emu_tex_sample(&vh, &q, out), 0);
    float f[4];
    memcpy(f, out, 16);
    cr_assert(f[0] == 1.5f && f[1] == -2.0f && f[2] == 0.0f && f[3] == 1.0f);
    q = req(PTX_TEX_1D, 1.5f, 0, 0);
    cr_assert_eq(emu_tex_sample(&vh, &q, out), 0);
    memcpy(f, out, 16);
    cr_assert_eq(f[0], 1.0f);
    cr_assert_float_eq(f[1], ldexpf(1.0f, -24), 1e-12, "a subnormal half");

    /* sRGB: 8-bit colour converted to linear light, alpha untouched. */
    static const unsigned char rgba[4] = {188, 255, 0, 188};
    emu_tex_level lr = level(rgba, 1, 1, 1, 4);
    emu_tex_view vr = view_f(&lr, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    vr.fmt_kind = EMU_FMT_UNORM;
    vr.comp_bytes = 1;
    vr.channels = 4;
    vr.srgb = 1;
    q = req(PTX_TEX_1D, 0.5f, 0, 0);
    cr_assert_eq(emu_tex_sample(&vr, &q, out), 0);
    memcpy(f, out, 16);
    cr_assert_float_eq(f[0], powf((188.0f / 255 + 0.055f) / 1.055f, 2.4f), 1e-5);
    cr_assert_eq(f[1], 1.0f);
    cr_assert_float_eq(f[3], 188.0f / 255, 1e-6);
}

Test(sample, layers_and_cube_faces)
{
    /* A 1D layered texture of 3 layers of 2 texels: value = 10 * layer + x. */
    static float t[3][2] = {{0, 1}, {10, 11}, {20, 21}};
    emu_tex_level lv = level(t, 2, 1, 3, 4);
    emu_tex_view v = view_f(&lv, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    v.layered = 1;
    ptx_tex_request q = req(PTX_TEX_A1D, 1.5f, 0, 0);
    q.layer = 1;
    cr_assert_eq(fetch1(&v, q), 11.0f);
    q.layer = 7; /* clamped to the last layer */
    cr_assert_eq(fetch1(&v, q), 21.0f);

    /* A cube map of 4x4 faces, each filled with its face index; two cubes in a cube array. */
    static float cube[12][4][4];
    for (int f = 0; f < 12; f++)
        for (int i = 0; i < 16; i++)
            cube[f][i / 4][i % 4] = (float)f;
    emu_tex_level lc = level(cube, 4, 4, 6, 4);
    emu_tex_view vc = view_f(&lc, 1, 2, EMU_FILTER_LINEAR, 1, EMU_ADDR_CLAMP);
    vc.cube = 1;
    static const float dirs[6][3] = {{1, 0.2f, -0.3f}, {-1, 0, 0}, {0.1f, 1, 0},
                                     {0, -1, 0.4f},    {0, 0, 1},  {0.3f, -0.3f, -1}};
    for (int f = 0; f < 6; f++)
        cr_assert_eq(fetch1(&vc, req(PTX_TEX_CUBE, dirs[f][0], dirs[f][1], dirs[f][2])), (float)f,
                     "face %d", f);
    emu_tex_level lca = level(cube, 4, 4, 12, 4);
    emu_tex_view vca = vc;
    vca.levels = &lca;
    vca.layered = 1;
    q = req(PTX_TEX_ACUBE, 0, 0, -1);
    q.layer = 1;
    cr_assert_eq(fetch1(&vca, q), 11.0f);
    /* Face orientation: +z face, s grows with x, t grows with -y. */
    static float face[6][4][4];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            face[4][y][x] = (float)(x + 10 * y);
    emu_tex_level lf = level(face, 4, 4, 6, 4);
    emu_tex_view vf = view_f(&lf, 1, 2, EMU_FILTER_POINT, 1, EMU_ADDR_CLAMP);
    vf.cube = 1;
    cr_assert_eq(fetch1(&vf, req(PTX_TEX_CUBE, 0.9f, -0.9f, 1)), 3.0f + 30.0f);
    cr_assert_eq(fetch1(&vf, req(PTX_TEX_CUBE, -0.9f, 0.9f, 1)), 0.0f);
}

Test(sample, mipmap_levels)
{
    /* Levels 8x8, 4x4, 2x2, 1x1 filled with 0, 10, 20, 30. */
    emu_tex_level lv[4];
    for (int l = 0; l < 4; l++) {
        size_t n = (size_t)8 >> l;
        for (size_t i = 0; i < n * n; i++)
            ((float *)level_data_f[l])[i] = (float)(10 * l);
        lv[l] = level(level_data_f[l], n, n, 1, 4);
    }
    emu_tex_view v = view_f(lv, 4, 2, EMU_FILTER_POINT, 1, EMU_ADDR_CLAMP);
    ptx_tex_request q = req(PTX_TEX_2D, 0.5f, 0.5f, 0);
    cr_assert_eq(fetch1(&v, q), 0.0f, "tex without a level samples level 0");
    q.lod_kind = PTX_TEX_LOD_LEVEL;
    q.lod = 1.4f;
    cr_assert_eq(fetch1(&v, q), 10.0f);
    q.lod = 1.6f;
    cr_assert_eq(fetch1(&v, q), 20.0f);
    q.lod = 9.0f;
    cr_assert_eq(fetch1(&v, q), 30.0f);
    v.mip_filter = EMU_FILTER_LINEAR;
    q.lod = 1.25f;
    cr_assert_float_eq(fetch1(&v, q), 12.5f, 1e-5);
    v.max_lod = 1.0f;
    q.lod = 3.0f;
    cr_assert_eq(fetch1(&v, q), 10.0f, "the level clamp");
    v.max_lod = 1000.0f;
    v.lod_bias = 1.0f;
    q.lod = 0.5f;
    cr_assert_float_eq(fetch1(&v, q), 15.0f, 1e-5, "the level bias");
    /* Gradients: one texel of level 0 per 2 pixels -> level 1. */
    v.lod_bias = 0.0f;
    v.mip_filter = EMU_FILTER_POINT;
    q.lod_kind = PTX_TEX_LOD_GRAD;
    q.dpdx[0] = 2.0f / 8;
    q.dpdy[1] = 1.0f / 8;
    cr_assert_eq(fetch1(&v, q), 10.0f);
}

Test(sample, gather_and_integer_coordinates)
{
    static float t[2][2] = {{1, 2}, {3, 4}}; /* t[y][x] */
    emu_tex_level lv = level(t, 2, 2, 1, 4);
    emu_tex_view v = view_f(&lv, 1, 2, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    ptx_tex_request q = req(PTX_TEX_2D, 1.0f, 1.0f, 0); /* the centre of the four texels */
    q.gather = 0;
    uint32_t out[4];
    cr_assert_eq(emu_tex_sample(&v, &q, out), 0);
    float f[4];
    memcpy(f, out, 16);
    /* (x0, y1), (x1, y1), (x1, y0), (x0, y0) */
    cr_assert(f[0] == 3 && f[1] == 4 && f[2] == 2 && f[3] == 1, "%f %f %f %f", f[0], f[1], f[2], f[3]);
    q.gather = 3; /* alpha of a one-channel texture is 1 everywhere */
    cr_assert_eq(emu_tex_sample(&v, &q, out), 0);
    memcpy(f, out, 16);
    cr_assert(f[0] == 1 && f[3] == 1);

    /* Integer coordinates: element indices, no filtering; a linear buffer reads 0 outside. */
    static const int32_t buf[5] = {5, 6, 7, 8, 9};
    emu_tex_level lb = level(buf, 5, 1, 1, 4);
    emu_tex_view vb = view_f(&lb, 1, 1, EMU_FILTER_POINT, 0, EMU_ADDR_CLAMP);
    vb.fmt_kind = EMU_FMT_SINT;
    vb.linear = 1;
    q = req(PTX_TEX_1D, 0, 0, 0);
    q.int_coords = 1;
    q.ix = 3;
    cr_assert_eq(emu_tex_sample(&vb, &q, out), 0);
    cr_assert_eq(out[0], 8);
    q.ix = -1;
    cr_assert_eq(emu_tex_sample(&vb, &q, out), 0);
    cr_assert(out[0] == 0 && out[3] == 0);
    q.int_coords = 0; /* a linear buffer has texel fetches only */
    cr_assert_eq(emu_tex_sample(&vb, &q, out), -1);
    /* An array fetched with integer coordinates and a border. */
    v.address[0] = v.address[1] = EMU_ADDR_BORDER;
    v.border[0] = 99;
    q = req(PTX_TEX_2D, 0, 0, 0);
    q.int_coords = 1;
    q.ix = 1;
    q.iy = 1;
    cr_assert_eq(fetch1(&v, q), 4.0f);
    q.ix = 2;
    cr_assert_eq(fetch1(&v, q), 99.0f);
}

Test(sample, surface_addressing)
{
    static unsigned char data[3][4][16]; /* 3 layers of 4 rows of 4 float elements */
    emu_tex_level lv = {&data[0][0][0], 4, 4, 3, 16, 64};
    size_t off;
    cr_assert_eq(emu_surf_locate(&lv, 2, 4, 8, 2, 1, 4, PTX_SURF_TRAP, &off), 1);
    cr_assert_eq(off, 64 + 2 * 16 + 8);
    cr_assert_eq(emu_surf_locate(&lv, 2, 4, 14, 0, 0, 4, PTX_SURF_TRAP, &off), -1); /* past a row */
    cr_assert_eq(emu_surf_locate(&lv, 2, 4, 0, 4, 0, 4, PTX_SURF_TRAP, &off), -1);
    cr_assert_eq(emu_surf_locate(&lv, 2, 4, 0, 0, 3, 4, PTX_SURF_ZERO, &off), 0);
    cr_assert_eq(emu_surf_locate(&lv, 2, 4, -8, 9, 5, 4, PTX_SURF_CLAMP, &off), 1);
    cr_assert_eq(off, 2 * 64 + 3 * 16 + 0);
    cr_assert_eq(emu_surf_locate(&lv, 2, 4, 100, 0, 0, 8, PTX_SURF_CLAMP, &off), 1);
    cr_assert_eq(off, 8, "clamped to the last element an 8-byte access fits in");
    cr_assert_eq(emu_surf_locate(&lv, 2, 4, 0, 0, 0, 32, PTX_SURF_TRAP, &off), -1);
}
