// Kernels that sample textures and read and write surfaces (tex, tld4, suld, sust): 2-D float
// textures with point and linear filtering, clamp and wrap addressing, normalized coordinates,
// element fetches from linear memory, layered textures, gathers, and 2-D and layered surfaces
// written by one kernel and read back by the host and by another kernel.
#include "rt_check.h"

#include <cmath>
#include <vector>

__global__ void sample2d(cudaTextureObject_t t, float *out, int w, float dx, float dy)
{
    int x = threadIdx.x, y = blockIdx.x;
    out[y * w + x] = tex2D<float>(t, x + dx, y + dy);
}

__global__ void sample_norm(cudaTextureObject_t t, float *out, int w, int h)
{
    int x = threadIdx.x, y = blockIdx.x;
    // one texel to the right of the texel, through normalized coordinates (wraps at the edge)
    out[y * w + x] = tex2D<float>(t, (x + 1.5f) / w, (y + 0.5f) / h);
}

__global__ void fetch1d(cudaTextureObject_t t, float4 *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    out[i] = tex1Dfetch<float4>(t, i);
}

__global__ void sample_layered(cudaTextureObject_t t, int *out, int w, int layer)
{
    int x = threadIdx.x;
    out[x] = tex2DLayered<int>(t, x + 0.5f, 1.5f, layer);
}

__global__ void gather(cudaTextureObject_t t, float4 *out)
{
    int x = threadIdx.x;
    out[x] = tex2Dgather<float4>(t, x + 1.0f, 1.0f, 0);
}

__global__ void surf_write(cudaSurfaceObject_t s, int w)
{
    int x = threadIdx.x, y = blockIdx.x;
    surf2Dwrite(x * 100.0f + y, s, x * (int)sizeof(float), y);
}

__global__ void surf_double(cudaSurfaceObject_t s, float *out, int w)
{
    int x = threadIdx.x, y = blockIdx.x;
    float v;
    surf2Dread(&v, s, x * (int)sizeof(float), y);
    surf2Dwrite(2 * v, s, x * (int)sizeof(float), y);
    // past the right edge with cudaBoundaryModeZero reads 0
    out[y * w + x] = surf2Dread<float>(s, (w + x) * (int)sizeof(float), y, cudaBoundaryModeZero);
}

__global__ void surf_layered(cudaSurfaceObject_t s, int layer)
{
    int x = threadIdx.x;
    uchar2 v = surf2DLayeredread<uchar2>(s, x * 2, 0, layer);
    surf2DLayeredwrite(make_uchar2(v.x + 1, v.y + 2), s, x * 2, 0, layer);
}

static cudaTextureObject_t make_tex(cudaArray_t a, cudaTextureFilterMode f, cudaTextureAddressMode am, int norm)
{
    cudaResourceDesc rd = {};
    rd.resType = cudaResourceTypeArray;
    rd.res.array.array = a;
    cudaTextureDesc td = {};
    td.filterMode = f;
    td.addressMode[0] = td.addressMode[1] = am;
    td.normalizedCoords = norm;
    td.readMode = cudaReadModeElementType;
    cudaTextureObject_t t;
    RT_CHECK(cudaCreateTextureObject(&t, &rd, &td, nullptr));
    return t;
}

int main()
{
    rt_seed();
    const int W = 16, H = 8;
    std::vector<float> img(W * H);
    for (int i = 0; i < W * H; i++)
        img[i] = (float)(std::rand() % 1000) / 8.0f;
    cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
    cudaArray_t arr;
    RT_CHECK(cudaMallocArray(&arr, &fd, W, H));
    RT_CHECK(cudaMemcpy2DToArray(arr, 0, 0, img.data(), W * sizeof(float), W * sizeof(float), H,
                                 cudaMemcpyHostToDevice));
    float *d_out;
    RT_CHECK(cudaMalloc(&d_out, W * H * sizeof(float)));
    std::vector<float> out(W * H);

    // Point sampling at texel centres gives the texels; three texels to the left, clamped
    // addressing keeps the first columns on column 0.
    cudaTextureObject_t tp = make_tex(arr, cudaFilterModePoint, cudaAddressModeClamp, 0);
    sample2d<<<H, W>>>(tp, d_out, W, 0.5f, 0.5f);
    RT_CHECK(cudaMemcpy(out.data(), d_out, W * H * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < W * H; i++)
        RT_EXPECT(out[i] == img[i], "point sample %d: %g, want %g", i, out[i], img[i]);
    sample2d<<<H, W>>>(tp, d_out, W, -3.0f, 0.5f);
    RT_CHECK(cudaMemcpy(out.data(), d_out, W * H * sizeof(float), cudaMemcpyDeviceToHost));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sx = x - 3 < 0 ? 0 : x - 3;
            RT_EXPECT(out[y * W + x] == img[y * W + sx], "clamped sample (%d, %d)", x, y);
        }
    RT_OK("tex2D, point filtering, clamp addressing");

    // Linear filtering halfway between two texels: their mean (exact at weight 1/2).
    cudaTextureObject_t tl = make_tex(arr, cudaFilterModeLinear, cudaAddressModeClamp, 0);
    sample2d<<<H, W - 1>>>(tl, d_out, W, 1.0f, 0.5f);
    RT_CHECK(cudaMemcpy(out.data(), d_out, W * H * sizeof(float), cudaMemcpyDeviceToHost));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W - 1; x++) {
            float want = 0.5f * (img[y * W + x] + img[y * W + x + 1]);
            RT_EXPECT(std::fabs(out[y * W + x] - want) <= 1e-4f * std::fabs(want) + 1e-6f,
                      "linear sample (%d, %d): %g, want %g", x, y, out[y * W + x], want);
        }
    RT_OK("tex2D, linear filtering");

    // Normalized coordinates with wrap addressing: column W-1 + 1 wraps to column 0.
    cudaTextureObject_t tw = make_tex(arr, cudaFilterModePoint, cudaAddressModeWrap, 1);
    sample_norm<<<H, W>>>(tw, d_out, W, H);
    RT_CHECK(cudaMemcpy(out.data(), d_out, W * H * sizeof(float), cudaMemcpyDeviceToHost));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            RT_EXPECT(out[y * W + x] == img[y * W + (x + 1) % W], "wrapped sample (%d, %d)", x, y);
    RT_OK("tex2D, normalized coordinates, wrap addressing");

    // tex2Dgather of component 0 at a texel corner: the four neighbours (GPU order w, z / x, y:
    // (x-1, y), (x, y), (x, y-1), (x-1, y-1) for the corner at (x, y)).
    float4 *d_g;
    RT_CHECK(cudaMalloc(&d_g, W * sizeof(float4)));
    gather<<<1, W - 1>>>(tp, d_g);
    std::vector<float4> g(W);
    RT_CHECK(cudaMemcpy(g.data(), d_g, (W - 1) * sizeof(float4), cudaMemcpyDeviceToHost));
    for (int x = 0; x < W - 1; x++) {
        float want[4] = {img[1 * W + x], img[1 * W + x + 1], img[0 * W + x + 1], img[0 * W + x]};
        float got[4] = {g[x].x, g[x].y, g[x].z, g[x].w};
        for (int c = 0; c < 4; c++)
            RT_EXPECT(got[c] == want[c], "gather %d component %d: %g, want %g", x, c, got[c], want[c]);
    }
    RT_OK("tex2Dgather (tld4)");

    // tex1Dfetch from linear memory.
    const int N = 256;
    std::vector<float4> lin(N);
    for (int i = 0; i < N; i++)
        lin[i] = make_float4(i, -i, i * 0.5f, 7);
    float4 *d_lin, *d_lout;
    RT_CHECK(cudaMalloc(&d_lin, N * sizeof(float4)));
    RT_CHECK(cudaMalloc(&d_lout, N * sizeof(float4)));
    RT_CHECK(cudaMemcpy(d_lin, lin.data(), N * sizeof(float4), cudaMemcpyHostToDevice));
    cudaResourceDesc lrd = {};
    lrd.resType = cudaResourceTypeLinear;
    lrd.res.linear.devPtr = d_lin;
    lrd.res.linear.desc = cudaCreateChannelDesc<float4>();
    lrd.res.linear.sizeInBytes = N * sizeof(float4);
    cudaTextureDesc ltd = {};
    ltd.readMode = cudaReadModeElementType;
    cudaTextureObject_t tlin;
    RT_CHECK(cudaCreateTextureObject(&tlin, &lrd, &ltd, nullptr));
    fetch1d<<<N / 64, 64>>>(tlin, d_lout);
    std::vector<float4> lout(N);
    RT_CHECK(cudaMemcpy(lout.data(), d_lout, N * sizeof(float4), cudaMemcpyDeviceToHost));
    for (int i = 0; i < N; i++)
        RT_EXPECT(lout[i].x == lin[i].x && lout[i].y == lin[i].y && lout[i].z == lin[i].z && lout[i].w == 7,
                  "tex1Dfetch %d", i);
    RT_OK("tex1Dfetch from linear memory");

    // A layered 2-D int texture.
    const int LW = 32, LH = 4, LL = 3;
    std::vector<int> vol(LW * LH * LL);
    for (size_t i = 0; i < vol.size(); i++)
        vol[i] = (int)i * 3 - 50;
    cudaChannelFormatDesc id = cudaCreateChannelDesc<int>();
    cudaArray_t larr;
    RT_CHECK(cudaMalloc3DArray(&larr, &id, make_cudaExtent(LW, LH, LL), cudaArrayLayered));
    cudaMemcpy3DParms p = {};
    p.srcPtr = make_cudaPitchedPtr(vol.data(), LW * sizeof(int), LW, LH);
    p.dstArray = larr;
    p.extent = make_cudaExtent(LW, LH, LL);
    p.kind = cudaMemcpyHostToDevice;
    RT_CHECK(cudaMemcpy3D(&p));
    cudaTextureObject_t tly = make_tex(larr, cudaFilterModePoint, cudaAddressModeClamp, 0);
    int *d_i;
    RT_CHECK(cudaMalloc(&d_i, LW * sizeof(int)));
    sample_layered<<<1, LW>>>(tly, d_i, LW, 2);
    std::vector<int> iout(LW);
    RT_CHECK(cudaMemcpy(iout.data(), d_i, LW * sizeof(int), cudaMemcpyDeviceToHost));
    for (int x = 0; x < LW; x++)
        RT_EXPECT(iout[x] == vol[(2 * LH + 1) * LW + x], "layered sample %d: %d", x, iout[x]);
    RT_OK("tex2DLayered<int>");

    // Surfaces: a kernel writes a 2-D array, the host reads it back, a second kernel doubles it
    // in place.
    cudaArray_t sarr;
    RT_CHECK(cudaMallocArray(&sarr, &fd, W, H, cudaArraySurfaceLoadStore));
    cudaResourceDesc srd = {};
    srd.resType = cudaResourceTypeArray;
    srd.res.array.array = sarr;
    cudaSurfaceObject_t s;
    RT_CHECK(cudaCreateSurfaceObject(&s, &srd));
    surf_write<<<H, W>>>(s, W);
    RT_CHECK(cudaMemcpy2DFromArray(out.data(), W * sizeof(float), sarr, 0, 0, W * sizeof(float), H,
                                   cudaMemcpyDeviceToHost));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            RT_EXPECT(out[y * W + x] == x * 100.0f + y, "surface (%d, %d): %g", x, y, out[y * W + x]);
    surf_double<<<H, W>>>(s, d_out, W);
    std::vector<float> zeros(W * H);
    RT_CHECK(cudaMemcpy(zeros.data(), d_out, W * H * sizeof(float), cudaMemcpyDeviceToHost));
    RT_CHECK(cudaMemcpy2DFromArray(out.data(), W * sizeof(float), sarr, 0, 0, W * sizeof(float), H,
                                   cudaMemcpyDeviceToHost));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            RT_EXPECT(out[y * W + x] == 2 * (x * 100.0f + y), "doubled surface (%d, %d)", x, y);
            RT_EXPECT(zeros[y * W + x] == 0.0f, "zero-mode read past the edge (%d, %d)", x, y);
        }
    RT_OK("surf2Dwrite / surf2Dread, boundary mode zero");

    // A layered surface of uchar2.
    cudaChannelFormatDesc cd = cudaCreateChannelDesc<uchar2>();
    cudaArray_t slarr;
    RT_CHECK(cudaMalloc3DArray(&slarr, &cd, make_cudaExtent(W, 1, 2), cudaArrayLayered | cudaArraySurfaceLoadStore));
    std::vector<uchar2> bytes(W * 2);
    for (int i = 0; i < W * 2; i++)
        bytes[i] = make_uchar2(i, 100 + i);
    cudaMemcpy3DParms bp = {};
    bp.srcPtr = make_cudaPitchedPtr(bytes.data(), W * sizeof(uchar2), W, 1);
    bp.dstArray = slarr;
    bp.extent = make_cudaExtent(W, 1, 2);
    bp.kind = cudaMemcpyHostToDevice;
    RT_CHECK(cudaMemcpy3D(&bp));
    srd.res.array.array = slarr;
    cudaSurfaceObject_t sl;
    RT_CHECK(cudaCreateSurfaceObject(&sl, &srd));
    surf_layered<<<1, W>>>(sl, 1);
    std::vector<uchar2> back(W * 2);
    bp.srcPtr = make_cudaPitchedPtr(nullptr, 0, 0, 0);
    bp.srcArray = slarr;
    bp.dstArray = nullptr;
    bp.dstPtr = make_cudaPitchedPtr(back.data(), W * sizeof(uchar2), W, 1);
    bp.kind = cudaMemcpyDeviceToHost;
    RT_CHECK(cudaMemcpy3D(&bp));
    for (int i = 0; i < W * 2; i++) {
        int add = i >= W; // layer 1 only
        RT_EXPECT(back[i].x == (unsigned char)(i + add) && back[i].y == (unsigned char)(100 + i + 2 * add),
                  "layered surface element %d: %d %d", i, back[i].x, back[i].y);
    }
    RT_OK("surf2DLayeredread / surf2DLayeredwrite");

    RT_CHECK(cudaDestroySurfaceObject(s));
    RT_CHECK(cudaDestroySurfaceObject(sl));
    RT_CHECK(cudaDestroyTextureObject(tp));
    RT_CHECK(cudaDestroyTextureObject(tl));
    RT_CHECK(cudaDestroyTextureObject(tw));
    RT_CHECK(cudaDestroyTextureObject(tlin));
    RT_CHECK(cudaDestroyTextureObject(tly));
    RT_CHECK(cudaGetLastError());
    std::printf("PASS\n");
    return 0;
}
