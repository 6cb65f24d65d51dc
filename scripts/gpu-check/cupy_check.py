"""CuPy through vgpu (scripts/gpu-check.sh runs it with the stub first in LD_LIBRARY_PATH and
VGPU_SERVER set): a RawKernel compiled by NVRTC and launched with the driver API, an elementwise
kernel, a reduction and a matmul, each against NumPy. Prints one line per check and OK at the
end; exit status 1 on a failed check."""
import sys

import cupy as cp
import numpy as np


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        sys.exit(1)


SAXPY = r'''
extern "C" __global__ void saxpy(float a, const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}
'''


def main():
    n = 1 << 20
    print("      device 0: %s" % cp.cuda.runtime.getDeviceProperties(0)["name"].decode())
    x = cp.arange(n, dtype=cp.float32)
    y = cp.ones(n, dtype=cp.float32)
    k = cp.RawKernel(SAXPY, "saxpy")
    k(((n + 255) // 256,), (256,), (cp.float32(2.0), x, y, cp.int32(n)))
    ref = 2.0 * np.arange(n, dtype=np.float32) + 1.0
    check(np.array_equal(cp.asnumpy(y), ref), "RawKernel saxpy over %d elements" % n)

    sq_add = cp.ElementwiseKernel("float32 a, float32 b", "float32 c", "c = a * a + b", "sq_add")
    xs = cp.asarray(np.linspace(-1, 1, n, dtype=np.float32))
    z = sq_add(xs, y)
    zh = np.linspace(-1, 1, n, dtype=np.float32) ** 2 + ref
    check(np.allclose(cp.asnumpy(z), zh, rtol=1e-6), "ElementwiseKernel")
    s = float(cp.sum(z, dtype=cp.float64))
    check(abs(s - zh.astype(np.float64).sum()) <= 1e-6 * abs(s), "reduction (sum) %.6e" % s)

    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 128)).astype(np.float32)
    b = rng.standard_normal((128, 64)).astype(np.float32)
    m = cp.asnumpy(cp.asarray(a) @ cp.asarray(b))
    mref = a.astype(np.float64) @ b.astype(np.float64)
    check(np.abs(m - mref).max() < 1e-3 * np.abs(mref).max(), "matmul 256x128x64 (cuBLAS)")
    free, total = cp.cuda.runtime.memGetInfo()
    check(0 < free <= total, "memGetInfo = (%d, %d)" % (free, total))
    print("OK")


if __name__ == "__main__":
    main()
