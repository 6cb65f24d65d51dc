/* Arrays (1D, 2D, 3D, layered, cube, mipmapped) and 2D/3D copies between host memory, device
 * memory and arrays, checked against the same copies done on the CPU. */
#include <string.h>

#include "emu_test.h"

static CUarray make(size_t w, size_t h, size_t d, CUarray_format f, unsigned ch, unsigned flags)
{
    CUDA_ARRAY3D_DESCRIPTOR desc = {w, h, d, f, ch, flags};
    CUarray a;
    CK(cuArray3DCreate(&a, &desc));
    return a;
}

Test(array, create_describe_destroy)
{
    emu_setup();
    size_t free0, free1, total;
    CK(cuMemGetInfo(&free0, &total));
    CUDA_ARRAY_DESCRIPTOR d2 = {64, 32, CU_AD_FORMAT_FLOAT, 4};
    CUarray a2;
    CK(cuArrayCreate(&a2, &d2));
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_geq(free0 - free1, 64 * 32 * 16, "arrays count against device memory");
    CUDA_ARRAY_DESCRIPTOR back2;
    CK(cuArrayGetDescriptor(&back2, a2));
    cr_assert(back2.Width == 64 && back2.Height == 32 && back2.NumChannels == 4);
    CUDA_ARRAY3D_DESCRIPTOR back3;
    CK(cuArray3DGetDescriptor(&back3, a2));
    cr_assert_eq(back3.Depth, 0);

    CUarray a3 = make(16, 8, 4, CU_AD_FORMAT_UNSIGNED_INT16, 2, 0);
    CUarray layered = make(32, 0, 5, CU_AD_FORMAT_SIGNED_INT8, 1, CUDA_ARRAY3D_LAYERED);
    CUarray cube = make(8, 8, 6, CU_AD_FORMAT_HALF, 1, CUDA_ARRAY3D_CUBEMAP);
    CUarray cubes = make(8, 8, 12, CU_AD_FORMAT_FLOAT, 1, CUDA_ARRAY3D_CUBEMAP | CUDA_ARRAY3D_LAYERED);
    CUarray surf = make(8, 8, 0, CU_AD_FORMAT_UNORM_INT8X4, 4, CUDA_ARRAY3D_SURFACE_LDST);
    CK(cuArray3DGetDescriptor(&back3, cubes));
    cr_assert_eq(back3.Flags, CUDA_ARRAY3D_CUBEMAP | CUDA_ARRAY3D_LAYERED);
    cr_assert_eq(cuArrayGetDescriptor(&back2, a3), CUDA_ERROR_INVALID_VALUE); /* a 3D array */
    CUDA_ARRAY_MEMORY_REQUIREMENTS req;
    CK(cuArrayGetMemoryRequirements(&req, a3, 0));
    cr_assert_geq(req.size, 16 * 8 * 4 * 4);

    /* Invalid descriptors. */
    CUDA_ARRAY3D_DESCRIPTOR bad[] = {
        {0, 4, 0, CU_AD_FORMAT_FLOAT, 1, 0},                       /* no width */
        {4, 4, 0, CU_AD_FORMAT_FLOAT, 3, 0},                       /* 3 channels */
        {8, 4, 6, CU_AD_FORMAT_FLOAT, 1, CUDA_ARRAY3D_CUBEMAP},    /* not square */
        {8, 8, 5, CU_AD_FORMAT_FLOAT, 1, CUDA_ARRAY3D_CUBEMAP},    /* not 6 faces */
        {4, 0, 4, CU_AD_FORMAT_FLOAT, 1, 0},                       /* 3D without height */
        {4, 4, 0, (CUarray_format)0x77, 1, 0},                     /* no such format */
        {4, 4, 0, CU_AD_FORMAT_UNORM_INT8X2, 4, 0},                /* format fixes 2 channels */
        {4, 4, 0, CU_AD_FORMAT_FLOAT, 1, 0x4000},                  /* unknown flag */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CUarray x;
        cr_assert_eq(cuArray3DCreate(&x, &bad[i]), CUDA_ERROR_INVALID_VALUE, "descriptor %zu", i);
    }
    CUDA_ARRAY3D_DESCRIPTOR bc = {4, 4, 0, CU_AD_FORMAT_BC1_UNORM, 4, 0};
    CUarray x;
    cr_assert_eq(cuArray3DCreate(&x, &bc), CUDA_ERROR_NOT_SUPPORTED);

    CUarray arrays[] = {a2, a3, layered, cube, cubes, surf};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        CK(cuArrayDestroy(arrays[i]));
    cr_assert_eq(cuArrayDestroy(a2), CUDA_ERROR_INVALID_HANDLE);
    CK(cuMemGetInfo(&free1, &total));
    cr_assert_eq(free1, free0);
}

Test(array, mipmapped_levels)
{
    emu_setup();
    CUDA_ARRAY3D_DESCRIPTOR d = {64, 16, 0, CU_AD_FORMAT_FLOAT, 1, 0};
    CUmipmappedArray mm;
    CUDA_ARRAY3D_DESCRIPTOR too_many = d;
    cr_assert_eq(cuMipmappedArrayCreate(&mm, &too_many, 8), CUDA_ERROR_INVALID_VALUE);
    CK(cuMipmappedArrayCreate(&mm, &d, 7));
    size_t expect_w[] = {64, 32, 16, 8, 4, 2, 1}, expect_h[] = {16, 8, 4, 2, 1, 1, 1};
    for (unsigned l = 0; l < 7; l++) {
        CUarray level;
        CK(cuMipmappedArrayGetLevel(&level, mm, l));
        CUDA_ARRAY3D_DESCRIPTOR ld;
        CK(cuArray3DGetDescriptor(&ld, level));
        cr_assert(ld.Width == expect_w[l] && ld.Height == expect_h[l], "level %u: %zux%zu", l,
                  ld.Width, ld.Height);
        cr_assert_eq(cuArrayDestroy(level), CUDA_ERROR_INVALID_HANDLE); /* owned by the mipmap */
    }
    CUarray none;
    cr_assert_eq(cuMipmappedArrayGetLevel(&none, mm, 7), CUDA_ERROR_INVALID_VALUE);
    CK(cuMipmappedArrayDestroy(mm));
}

/* A 2D region copied host -> device (pitched) -> array -> array -> host, with offsets everywhere;
 * each hop is checked against a CPU model of the same copy. */
Test(array, copies_2d_all_kinds)
{
    emu_setup();
    enum { W = 40, H = 30 };                  /* elements of 4 bytes */
    static unsigned src[H][W], model[H][W], back[H][W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            src[y][x] = (unsigned)(y * 1000 + x);
    CUdeviceptr dev;
    size_t pitch;
    CK(cuMemAllocPitch(&dev, &pitch, W * 4, H, 4));
    CK(cuMemsetD8(dev, 0, pitch * H));
    CUarray arr = make(W, H, 0, CU_AD_FORMAT_UNSIGNED_INT32, 1, 0);
    CUarray arr2 = make(W, H, 0, CU_AD_FORMAT_UNSIGNED_INT32, 1, 0);

    /* host -> device: a 20x10 block from (3, 2) to (5, 4). */
    CUDA_MEMCPY2D c;
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = src;
    c.srcPitch = W * 4;
    c.srcXInBytes = 3 * 4;
    c.srcY = 2;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = dev;
    c.dstPitch = pitch;
    c.dstXInBytes = 5 * 4;
    c.dstY = 4;
    c.WidthInBytes = 20 * 4;
    c.Height = 10;
    CK(cuMemcpy2D(&c));
    memset(model, 0, sizeof model);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 20; x++)
            model[4 + y][5 + x] = src[2 + y][3 + x];

    /* device -> array (whole), asynchronously. */
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = dev;
    c.srcPitch = pitch;
    c.dstMemoryType = CU_MEMORYTYPE_ARRAY;
    c.dstArray = arr;
    c.WidthInBytes = W * 4;
    c.Height = H;
    CK(cuMemcpy2DAsync(&c, NULL));
    /* array -> array with offsets; then array -> host. */
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    c.srcArray = arr;
    c.dstMemoryType = CU_MEMORYTYPE_ARRAY;
    c.dstArray = arr2;
    c.WidthInBytes = W * 4;
    c.Height = H;
    CK(cuMemcpy2D(&c));
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    c.srcArray = arr2;
    c.srcXInBytes = 4 * 4;
    c.srcY = 3;
    c.dstMemoryType = CU_MEMORYTYPE_UNIFIED; /* a host pointer, told by unified addressing */
    c.dstDevice = (CUdeviceptr)(uintptr_t)back;
    c.dstPitch = W * 4;
    c.WidthInBytes = (W - 4) * 4;
    c.Height = H - 3;
    memset(back, 0xee, sizeof back);
    CK(cuMemcpy2D(&c));
    for (int y = 0; y < H - 3; y++)
        for (int x = 0; x < W - 4; x++)
            cr_assert_eq(back[y][x], model[3 + y][4 + x], "(%d, %d)", x, y);
    cr_assert_eq(back[H - 1][0], 0xeeeeeeeeu, "rows past the copy are untouched");

    /* Regions outside an array, unaligned array offsets, short pitches: refused. */
    c.srcY = H - 2;
    cr_assert_eq(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);
    c.srcY = 0;
    c.srcXInBytes = 2;
    cr_assert_eq(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);
    c.srcXInBytes = 0;
    c.dstPitch = 8;
    cr_assert_eq(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.dstHost = (void *)(uintptr_t)0x10;
    c.dstPitch = W * 4;
    cr_assert_eq(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE); /* garbage host pointer */
    CK(cuArrayDestroy(arr));
    CK(cuArrayDestroy(arr2));
}

/* A 3D box from a host volume into a 3D array and a layered array, and back through device
 * memory. */
Test(array, copies_3d)
{
    emu_setup();
    enum { X = 12, Y = 10, Z = 6 };
    static float vol[Z][Y][X], out[Z][Y][X];
    for (int z = 0; z < Z; z++)
        for (int y = 0; y < Y; y++)
            for (int x = 0; x < X; x++)
                vol[z][y][x] = (float)(z * 10000 + y * 100 + x);
    CUarray a = make(X, Y, Z, CU_AD_FORMAT_FLOAT, 1, 0);
    CUDA_MEMCPY3D c;
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = vol;
    c.srcPitch = X * 4;
    c.srcHeight = Y;
    c.dstMemoryType = CU_MEMORYTYPE_ARRAY;
    c.dstArray = a;
    c.WidthInBytes = X * 4;
    c.Height = Y;
    c.Depth = Z;
    CK(cuMemcpy3D(&c));
    /* array (a sub-box at (2, 3, 1)) -> device -> host. */
    enum { BX = 5, BY = 4, BZ = 3 };
    CUdeviceptr d;
    CK(cuMemAlloc(&d, BX * BY * BZ * 4));
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    c.srcArray = a;
    c.srcXInBytes = 2 * 4;
    c.srcY = 3;
    c.srcZ = 1;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = d;
    c.dstPitch = BX * 4;
    c.dstHeight = BY;
    c.WidthInBytes = BX * 4;
    c.Height = BY;
    c.Depth = BZ;
    CK(cuMemcpy3DAsync(&c, NULL));
    float box[BZ][BY][BX];
    CK(cuMemcpyDtoH(box, d, sizeof box));
    for (int z = 0; z < BZ; z++)
        for (int y = 0; y < BY; y++)
            for (int x = 0; x < BX; x++)
                cr_assert_eq(box[z][y][x], vol[1 + z][3 + y][2 + x]);
    /* Whole array back to host, through the peer form of the call. */
    CUcontext ctx;
    CK(cuCtxGetCurrent(&ctx));
    CUDA_MEMCPY3D_PEER p;
    memset(&p, 0, sizeof p);
    p.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    p.srcArray = a;
    p.srcContext = ctx;
    p.dstMemoryType = CU_MEMORYTYPE_HOST;
    p.dstHost = out;
    p.dstPitch = X * 4;
    p.dstHeight = Y;
    p.dstContext = ctx;
    p.WidthInBytes = X * 4;
    p.Height = Y;
    p.Depth = Z;
    CK(cuMemcpy3DPeer(&p));
    cr_assert_eq(memcmp(out, vol, sizeof vol), 0);
    c.Depth = Z; /* past the array's depth from srcZ = 1 */
    cr_assert_eq(cuMemcpy3D(&c), CUDA_ERROR_INVALID_VALUE);
    c.Depth = BZ;
    c.srcLOD = 1;
    cr_assert_eq(cuMemcpy3D(&c), CUDA_ERROR_INVALID_VALUE);
    CK(cuArrayDestroy(a));
}

Test(array, one_dimensional_array_copies)
{
    emu_setup();
    enum { N = 256 };
    CUarray a = make(N, 0, 0, CU_AD_FORMAT_UNSIGNED_INT8, 4, 0);
    CUarray b = make(N, 0, 0, CU_AD_FORMAT_UNSIGNED_INT8, 4, 0);
    static unsigned char host[N * 4], back[N * 4];
    for (int i = 0; i < N * 4; i++)
        host[i] = (unsigned char)(i * 7);
    CK(cuMemcpyHtoA(a, 0, host, sizeof host));
    CK(cuMemcpyAtoA(b, 16, a, 0, 512));
    CUdeviceptr d;
    CK(cuMemAlloc(&d, sizeof host));
    CK(cuMemsetD8(d, 0, sizeof host));
    CK(cuMemcpyAtoD(d, b, 16, 512));
    CK(cuMemcpyDtoH(back, d, 512));
    cr_assert_eq(memcmp(back, host, 512), 0);
    CK(cuMemcpyDtoA(a, 4, d, 8));
    CK(cuMemcpyAtoHAsync(back, a, 0, 16, NULL));
    CK(cuCtxSynchronize());
    cr_assert_eq(memcmp(back, host, 4), 0);
    cr_assert_eq(memcmp(back + 4, host, 8), 0);
    CK(cuMemcpyHtoAAsync(b, 0, host, 4, NULL));
    CK(cuCtxSynchronize());
    cr_assert_eq(cuMemcpyHtoA(a, 1020, host, 8), CUDA_ERROR_INVALID_VALUE); /* past the end */
    cr_assert_eq(cuMemcpyHtoA((CUarray)host, 0, host, 8), CUDA_ERROR_INVALID_VALUE);
    /* A destroyed array stays alive under a queued copy. */
    CK(cuMemcpyAtoHAsync(back, b, 0, sizeof back, NULL));
    CK(cuArrayDestroy(b));
    CK(cuCtxSynchronize());
    CK(cuArrayDestroy(a));
}
