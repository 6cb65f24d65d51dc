/* emu_ptds: the per-thread-default-stream entry points (_ptds/_ptsz), which a program compiled
 * with --default-stream per-thread calls. Our default streams all feed one ordered queue per
 * context, so each simply forwards to the plain entry point (cuda.h's macros map the plain names
 * to their _v2 symbols). */
#include "emu.h"

#define EMU_FWD(ret_name, params, args)                                                          \
    CUresult CUDAAPI ret_name params;                                                            \
    CUresult CUDAAPI ret_name params { return FWD_TARGET args; }

#define FWD_TARGET cuMemcpyHtoD
EMU_FWD(cuMemcpyHtoD_v2_ptds, (CUdeviceptr d, const void *s, size_t n), (d, s, n))
#undef FWD_TARGET
#define FWD_TARGET cuMemcpyDtoH
EMU_FWD(cuMemcpyDtoH_v2_ptds, (void *d, CUdeviceptr s, size_t n), (d, s, n))
#undef FWD_TARGET
#define FWD_TARGET cuMemcpyDtoD
EMU_FWD(cuMemcpyDtoD_v2_ptds, (CUdeviceptr d, CUdeviceptr s, size_t n), (d, s, n))
#undef FWD_TARGET
#define FWD_TARGET cuMemcpy
EMU_FWD(cuMemcpy_ptds, (CUdeviceptr d, CUdeviceptr s, size_t n), (d, s, n))
#undef FWD_TARGET
#define FWD_TARGET cuMemcpyAsync
EMU_FWD(cuMemcpyAsync_ptsz, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st), (d, s, n, st))
#undef FWD_TARGET
#define FWD_TARGET cuMemcpyHtoDAsync
EMU_FWD(cuMemcpyHtoDAsync_v2_ptsz, (CUdeviceptr d, const void *s, size_t n, CUstream st), (d, s, n, st))
#undef FWD_TARGET
#define FWD_TARGET cuMemcpyDtoHAsync
EMU_FWD(cuMemcpyDtoHAsync_v2_ptsz, (void *d, CUdeviceptr s, size_t n, CUstream st), (d, s, n, st))
#undef FWD_TARGET
#define FWD_TARGET cuMemcpyDtoDAsync
EMU_FWD(cuMemcpyDtoDAsync_v2_ptsz, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st), (d, s, n, st))
#undef FWD_TARGET
#define FWD_TARGET cuMemsetD8
EMU_FWD(cuMemsetD8_v2_ptds, (CUdeviceptr d, unsigned char v, size_t n), (d, v, n))
#undef FWD_TARGET
#define FWD_TARGET cuMemsetD16
EMU_FWD(cuMemsetD16_v2_ptds, (CUdeviceptr d, unsigned short v, size_t n), (d, v, n))
#undef FWD_TARGET
#define FWD_TARGET cuMemsetD32
EMU_FWD(cuMemsetD32_v2_ptds, (CUdeviceptr d, unsigned int v, size_t n), (d, v, n))
#undef FWD_TARGET
#define FWD_TARGET cuMemsetD8Async
EMU_FWD(cuMemsetD8Async_ptsz, (CUdeviceptr d, unsigned char v, size_t n, CUstream s), (d, v, n, s))
#undef FWD_TARGET
#define FWD_TARGET cuMemsetD16Async
EMU_FWD(cuMemsetD16Async_ptsz, (CUdeviceptr d, unsigned short v, size_t n, CUstream s), (d, v, n, s))
#undef FWD_TARGET
#define FWD_TARGET cuMemsetD32Async
EMU_FWD(cuMemsetD32Async_ptsz, (CUdeviceptr d, unsigned int v, size_t n, CUstream s), (d, v, n, s))
#undef FWD_TARGET
#define FWD_TARGET cuLaunchKernel
EMU_FWD(cuLaunchKernel_ptsz, (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
        unsigned by, unsigned bz, unsigned sh, CUstream s, void **p, void **e),
        (f, gx, gy, gz, bx, by, bz, sh, s, p, e))
#undef FWD_TARGET
#define FWD_TARGET cuLaunchKernelEx
EMU_FWD(cuLaunchKernelEx_ptsz, (const CUlaunchConfig *c, CUfunction f, void **p, void **e), (c, f, p, e))
#undef FWD_TARGET
#define FWD_TARGET cuLaunchHostFunc
EMU_FWD(cuLaunchHostFunc_ptsz, (CUstream s, CUhostFn fn, void *u), (s, fn, u))
#undef FWD_TARGET
#define FWD_TARGET cuStreamAddCallback
EMU_FWD(cuStreamAddCallback_ptsz, (CUstream s, CUstreamCallback cb, void *u, unsigned fl), (s, cb, u, fl))
#undef FWD_TARGET
#define FWD_TARGET cuEventRecord
EMU_FWD(cuEventRecord_ptsz, (CUevent e, CUstream s), (e, s))
#undef FWD_TARGET
#define FWD_TARGET cuEventRecordWithFlags
EMU_FWD(cuEventRecordWithFlags_ptsz, (CUevent e, CUstream s, unsigned fl), (e, s, fl))
#undef FWD_TARGET
#define FWD_TARGET cuStreamSynchronize
EMU_FWD(cuStreamSynchronize_ptsz, (CUstream s), (s))
#undef FWD_TARGET
#define FWD_TARGET cuStreamQuery
EMU_FWD(cuStreamQuery_ptsz, (CUstream s), (s))
#undef FWD_TARGET
#define FWD_TARGET cuStreamWaitEvent
EMU_FWD(cuStreamWaitEvent_ptsz, (CUstream s, CUevent e, unsigned fl), (s, e, fl))
#undef FWD_TARGET
#define FWD_TARGET cuStreamGetCtx
EMU_FWD(cuStreamGetCtx_ptsz, (CUstream s, CUcontext *c), (s, c))
#undef FWD_TARGET
#define FWD_TARGET cuStreamGetFlags
EMU_FWD(cuStreamGetFlags_ptsz, (CUstream s, unsigned *fl), (s, fl))
#undef FWD_TARGET
#define FWD_TARGET cuStreamGetPriority
EMU_FWD(cuStreamGetPriority_ptsz, (CUstream s, int *p), (s, p))
#undef FWD_TARGET
#define FWD_TARGET cuStreamGetId
EMU_FWD(cuStreamGetId_ptsz, (CUstream s, unsigned long long *id), (s, id))
#undef FWD_TARGET
#define FWD_TARGET cuStreamGetDevice
EMU_FWD(cuStreamGetDevice_ptsz, (CUstream s, CUdevice *d), (s, d))
#undef FWD_TARGET
