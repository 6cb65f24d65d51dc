/* Texture and surface objects: creation over each resource type, descriptors read back, what is
 * refused, and handles that go stale. (Sampling itself: test_sample.c.) */
#include <string.h>

#include "emu_test.h"

static CUDA_TEXTURE_DESC tdesc(CUfilter_mode filter, unsigned flags)
{
    CUDA_TEXTURE_DESC t;
    memset(&t, 0, sizeof t);
    t.addressMode[0] = t.addressMode[1] = t.addressMode[2] = CU_TR_ADDRESS_MODE_CLAMP;
    t.filterMode = filter;
    t.flags = flags;
    return t;
}

Test(tex, objects_over_every_resource)
{
    emu_setup();
    CUDA_ARRAY3D_DESCRIPTOR ad = {16, 16, 0, CU_AD_FORMAT_FLOAT, 4, CUDA_ARRAY3D_SURFACE_LDST};
    CUarray arr;
    CK(cuArray3DCreate(&arr, &ad));
    CUDA_RESOURCE_DESC res;
    memset(&res, 0, sizeof res);
    res.resType = CU_RESOURCE_TYPE_ARRAY;
    res.res.array.hArray = arr;
    CUDA_TEXTURE_DESC td = tdesc(CU_TR_FILTER_MODE_LINEAR, CU_TRSF_NORMALIZED_COORDINATES);
    td.borderColor[2] = 0.5f;
    CUtexObject t1;
    CK(cuTexObjectCreate(&t1, &res, &td, NULL));
    cr_assert_neq(t1, 0);
    CUDA_RESOURCE_DESC rback;
    CK(cuTexObjectGetResourceDesc(&rback, t1));
    cr_assert_eq(rback.res.array.hArray, arr);
    CUDA_TEXTURE_DESC tback;
    CK(cuTexObjectGetTextureDesc(&tback, t1));
    cr_assert_eq(tback.filterMode, CU_TR_FILTER_MODE_LINEAR);
    cr_assert_eq(tback.borderColor[2], 0.5f);
    CUDA_RESOURCE_VIEW_DESC vback;
    cr_assert_eq(cuTexObjectGetResourceViewDesc(&vback, t1), CUDA_ERROR_INVALID_VALUE); /* none */

    CUsurfObject s1;
    CK(cuSurfObjectCreate(&s1, &res));
    CK(cuSurfObjectGetResourceDesc(&rback, s1));
    cr_assert_eq(rback.resType, CU_RESOURCE_TYPE_ARRAY);
    /* Texture and surface handles are not interchangeable. */
    cr_assert_eq(cuTexObjectGetResourceDesc(&rback, s1), CUDA_ERROR_INVALID_VALUE);

    /* Linear memory and pitched memory. */
    CUdeviceptr lin;
    CK(cuMemAlloc(&lin, 4096));
    memset(&res, 0, sizeof res);
    res.resType = CU_RESOURCE_TYPE_LINEAR;
    res.res.linear.devPtr = lin;
    res.res.linear.format = CU_AD_FORMAT_SIGNED_INT32;
    res.res.linear.numChannels = 1;
    res.res.linear.sizeInBytes = 4096;
    CUDA_TEXTURE_DESC pt = tdesc(CU_TR_FILTER_MODE_POINT, 0);
    CUtexObject t2;
    CK(cuTexObjectCreate(&t2, &res, &pt, NULL));
    res.res.linear.sizeInBytes = 8192; /* more than the allocation */
    CUtexObject bad;
    cr_assert_eq(cuTexObjectCreate(&bad, &res, &pt, NULL), CUDA_ERROR_INVALID_VALUE);
    /* Linear filtering of integers read as integers is refused. */
    res.res.linear.sizeInBytes = 4096;
    CUDA_TEXTURE_DESC lint = tdesc(CU_TR_FILTER_MODE_LINEAR, 0);
    cr_assert_eq(cuTexObjectCreate(&bad, &res, &lint, NULL), CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr pitched;
    size_t pitch;
    CK(cuMemAllocPitch(&pitched, &pitch, 64 * 2, 32, 4));
    memset(&res, 0, sizeof res);
    res.resType = CU_RESOURCE_TYPE_PITCH2D;
    res.res.pitch2D.devPtr = pitched;
    res.res.pitch2D.format = CU_AD_FORMAT_UNSIGNED_INT16;
    res.res.pitch2D.numChannels = 1;
    res.res.pitch2D.width = 64;
    res.res.pitch2D.height = 32;
    res.res.pitch2D.pitchInBytes = pitch;
    CUtexObject t3;
    CK(cuTexObjectCreate(&t3, &res, &lint, NULL)); /* 16-bit integers read as normalized floats */
    res.res.pitch2D.pitchInBytes = 64; /* shorter than a row */
    cr_assert_eq(cuTexObjectCreate(&bad, &res, &lint, NULL), CUDA_ERROR_INVALID_VALUE);

    /* A mipmapped array with a view of some of its levels. */
    CUDA_ARRAY3D_DESCRIPTOR md = {32, 32, 0, CU_AD_FORMAT_UNSIGNED_INT32, 1, 0};
    CUmipmappedArray mm;
    CK(cuMipmappedArrayCreate(&mm, &md, 4));
    memset(&res, 0, sizeof res);
    res.resType = CU_RESOURCE_TYPE_MIPMAPPED_ARRAY;
    res.res.mipmap.hMipmappedArray = mm;
    CUDA_RESOURCE_VIEW_DESC view;
    memset(&view, 0, sizeof view);
    view.format = CU_RES_VIEW_FORMAT_FLOAT_1X32; /* same element size, reinterpreted */
    view.width = 32;
    view.height = 32;
    view.firstMipmapLevel = 1;
    view.lastMipmapLevel = 3;
    CUDA_TEXTURE_DESC mt = tdesc(CU_TR_FILTER_MODE_POINT, CU_TRSF_NORMALIZED_COORDINATES);
    mt.maxMipmapLevelClamp = 2;
    CUtexObject t4;
    CK(cuTexObjectCreate(&t4, &res, &mt, &view));
    CK(cuTexObjectGetResourceViewDesc(&vback, t4));
    cr_assert_eq(vback.lastMipmapLevel, 3);
    view.lastMipmapLevel = 4; /* no such level */
    cr_assert_eq(cuTexObjectCreate(&bad, &res, &mt, &view), CUDA_ERROR_INVALID_VALUE);
    view.lastMipmapLevel = 3;
    view.format = CU_RES_VIEW_FORMAT_UINT_2X32; /* a different element size */
    cr_assert_eq(cuTexObjectCreate(&bad, &res, &mt, &view), CUDA_ERROR_INVALID_VALUE);
    /* Surfaces need arrays made for load/store. */
    CUDA_ARRAY3D_DESCRIPTOR plain = {8, 8, 0, CU_AD_FORMAT_FLOAT, 1, 0};
    CUarray parr;
    CK(cuArray3DCreate(&parr, &plain));
    memset(&res, 0, sizeof res);
    res.resType = CU_RESOURCE_TYPE_ARRAY;
    res.res.array.hArray = parr;
    CUsurfObject sbad;
    cr_assert_eq(cuSurfObjectCreate(&sbad, &res), CUDA_ERROR_INVALID_VALUE);
    /* Garbage handles and descriptors. */
    res.res.array.hArray = (CUarray)&res;
    cr_assert_eq(cuTexObjectCreate(&bad, &res, &pt, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuTexObjectCreate(&bad, (CUDA_RESOURCE_DESC *)(uintptr_t)0x10, &pt, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuTexObjectDestroy(0x123456789ull), CUDA_ERROR_INVALID_VALUE);

    /* The array outlives its handle while an object uses it; a destroyed object is stale. */
    CK(cuArrayDestroy(arr));
    CK(cuTexObjectGetResourceDesc(&rback, t1));
    CUtexObject handles[] = {t1, t2, t3, t4};
    for (int i = 0; i < 4; i++)
        CK(cuTexObjectDestroy(handles[i]));
    CK(cuSurfObjectDestroy(s1));
    cr_assert_eq(cuTexObjectDestroy(t1), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuTexObjectGetTextureDesc(&tback, t2), CUDA_ERROR_INVALID_VALUE);
    /* A new object in the same slot gets a new handle. */
    res.res.array.hArray = parr;
    CUtexObject t5;
    CK(cuTexObjectCreate(&t5, &res, &pt, NULL));
    cr_assert_neq(t5, t1);
    CK(cuTexObjectDestroy(t5));
    CK(cuMipmappedArrayDestroy(mm));
    CK(cuArrayDestroy(parr));
}

/* Objects die with the context that made them. */
Test(tex, objects_die_with_their_context)
{
    CUcontext primary = emu_setup();
    CUcontext c;
    CK(cuCtxCreate(&c, NULL, 0, 0));
    CUDA_ARRAY3D_DESCRIPTOR ad = {8, 8, 0, CU_AD_FORMAT_FLOAT, 1, 0};
    CUarray arr;
    CK(cuArray3DCreate(&arr, &ad));
    CUDA_RESOURCE_DESC res;
    memset(&res, 0, sizeof res);
    res.resType = CU_RESOURCE_TYPE_ARRAY;
    res.res.array.hArray = arr;
    CUDA_TEXTURE_DESC td = tdesc(CU_TR_FILTER_MODE_POINT, 0);
    CUtexObject t;
    CK(cuTexObjectCreate(&t, &res, &td, NULL));
    CK(cuCtxDestroy(c));
    CK(cuCtxSetCurrent(primary));
    CUDA_TEXTURE_DESC back;
    cr_assert_eq(cuTexObjectGetTextureDesc(&back, t), CUDA_ERROR_INVALID_VALUE);
}
