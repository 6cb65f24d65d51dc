"""PyTorch through vgpu (scripts/gpu-check.sh runs it with the stub first in LD_LIBRARY_PATH and
VGPU_SERVER set): a matmul against a CPU reference, a few training steps of a small model against
the same steps on the CPU, and the memory and device queries frameworks make (the NVML ones go
through build/lib/libnvidia-ml.so.1). Prints one line per check and OK at the end; exit status 1
on a failed check."""
import os
import sys

import torch


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        sys.exit(1)


def main():
    check(torch.cuda.is_available(), "torch.cuda.is_available()")
    n = torch.cuda.device_count()
    check(n >= 1, "torch.cuda.device_count() = %d" % n)
    print("      device 0: %s, capability %s" % (torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0)))
    free, total = torch.cuda.mem_get_info()
    check(0 < free <= total, "torch.cuda.mem_get_info() = (%d, %d)" % (free, total))

    # A matmul (cuBLAS) against float64 on the CPU.
    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator().manual_seed(0)
    a = torch.randn(512, 384, generator=g)
    b = torch.randn(384, 256, generator=g)
    ref = a.double() @ b.double()
    got = (a.cuda() @ b.cuda()).cpu().double()
    err = (got - ref).abs().max().item()
    check(err < 1e-3 * ref.abs().max().item(), "matmul 512x384x256 matches the CPU (max error %.2e)" % err)

    # A few training steps: the same model, data and steps on the GPU and on the CPU.
    torch.manual_seed(1)
    cpu_model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    gpu_model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model = gpu_model.cuda()
    x = torch.randn(256, 32, generator=g)
    y = x @ torch.randn(32, 1, generator=g)
    losses = {}
    for name, model, dev in (("cpu", cpu_model, "cpu"), ("gpu", gpu_model, "cuda")):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        xd, yd = x.to(dev), y.to(dev)
        hist = []
        for _ in range(30):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xd), yd)
            loss.backward()
            opt.step()
            hist.append(loss.item())
        losses[name] = hist
    g0, g1, c1 = losses["gpu"][0], losses["gpu"][-1], losses["cpu"][-1]
    check(g1 < 0.5 * g0, "30 training steps on the GPU: loss %.4f -> %.4f" % (g0, g1))
    check(abs(g1 - c1) <= 1e-3 * max(1.0, abs(c1)), "the GPU's losses follow the CPU's (%.6f vs %.6f)" % (g1, c1))

    # Memory queries.
    torch.cuda.synchronize()
    alloc = torch.cuda.memory_allocated()
    check(alloc > 0, "torch.cuda.memory_allocated() = %d" % alloc)
    print("      memory_reserved %d, max_memory_allocated %d" % (torch.cuda.memory_reserved(),
                                                               torch.cuda.max_memory_allocated()))
    free2, total2 = torch.cuda.mem_get_info()
    check(total2 == total and free2 <= free, "mem_get_info after training = (%d, %d)" % (free2, total2))
    # The NVML-based queries (libnvidia-ml.so.1; some need pynvml, which may not be installed).
    for name in ("device_memory_used", "utilization", "memory_usage", "list_gpu_processes"):
        fn = getattr(torch.cuda, name, None)
        if fn is None:
            continue
        try:
            print("      torch.cuda.%s() = %r" % (name, fn()))
        except Exception as e:  # reported, not a failure: pynvml or the sensor may be absent
            print("      torch.cuda.%s(): %s: %s" % (name, type(e).__name__, e))
    print("OK")


if __name__ == "__main__":
    main()
