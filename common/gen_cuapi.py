#!/usr/bin/env python3
"""Generate the list of every CUDA driver entry point from the toolkit's cuda.h.

cuda.h is run through the C preprocessor three ways (default, per-thread default stream, and
__CUDA_API_VERSION_INTERNAL, which declares the legacy pre-_v2 names) so that the list holds each
symbol NVIDIA's libcuda.so.1 exports: cuMemAlloc and cuMemAlloc_v2, cuLaunchKernel_ptsz, ...

Outputs (in the build tree, never committed):
  cuapi_exports.c  a weak definition of every entry point that returns CUDA_ERROR_NOT_SUPPORTED
                   and logs its name once; a library's real implementation (a strong symbol)
                   replaces it at link time, so linking and dlsym never fail.
  cuapi_names.h    VG_CUAPI_ALL(X): X(name) for every entry point, for tables and tests.
  cuapi_procaddr.c vg_procaddr_table: every versioned entry point cudaTypedefs.h (and
                   cudaProfilerTypedefs.h) names
                   (PFN_<base>_v<version>[_ptsz|_ptds]) with the address of the symbol that
                   implements that ABI, sorted by base name then version, for cuGetProcAddress.

How a PFN version maps to a symbol: the ABI versions of a base name, in increasing order, are the
symbols base, base_v2, base_v3, ... (cuCtxCreate 2000/3020/11040/12050 -> cuCtxCreate,
cuCtxCreate_v2, _v3, _v4). A _ptsz/_ptds version V is the per-thread form of the newest plain
version <= V (cuMemcpyHtoD_v7000_ptds -> cuMemcpyHtoD_v2_ptds). Every derived name must be a
cuda.h symbol, or generation fails: a new header that breaks the rule is caught at build time.
"""
import collections
import os
import re
import subprocess
import sys


def declared_names(cc, include_dir, defines, protos):
    """Names of the entry points cuda.h declares under these defines; fills protos with each
    one's parameter types (names dropped) where the parameter list is simple enough to read."""
    # cudaProfiler.h declares cuProfilerStart/Stop: driver entry points too (cuGetProcAddress
    # serves them, and the runtime's cudaProfilerStart asks for them).
    src = "#include <cuda.h>\n#include <cudaProfiler.h>\n"
    out = subprocess.run([cc, "-E", "-P", "-I", include_dir, *defines, "-"], input=src,
                         capture_output=True, text=True, check=True).stdout
    flat = " ".join(out.split())
    for name, params in re.findall(r"\bCUresult\s+(cu[A-Za-z0-9_]+)\s*\(([^()]*)\)\s*;", flat):
        protos[name] = param_types(params)
    return set(re.findall(r"\bCUresult\s+(cu[A-Za-z0-9_]+)\s*\(", flat))


def param_types(params):
    types = []
    for p in params.split(","):
        p = " ".join(p.replace("*", " * ").split())
        words = p.split(" ")
        if len(words) > 1 and re.fullmatch(r"[A-Za-z_]\w*", words[-1]) and words[-1] != "void":
            words = words[:-1]
        types.append(" ".join(words))
    return tuple(types)


def same_abi_targets(names, protos):
    """{symbol: newer symbol with the same parameter types}: the legacy names (cuCtxDestroy for
    cuCtxDestroy_v2, cuDeviceGetUuid for cuDeviceGetUuid_v2) and the per-thread-stream forms
    (cuLaunchKernel_ptsz for cuLaunchKernel). Old programs and the runtime resolve these; a
    library that implements the newest form then serves them all."""
    def split(n):
        m = re.fullmatch(r"(cu[A-Za-z0-9]+?)(?:_v(\d+))?(_ptsz|_ptds)?", n)
        return (m.group(1), int(m.group(2) or 1), m.group(3) or "") if m else None
    newest = {}
    for n in names:
        parts = split(n)
        if parts and not parts[2] and parts[1] > newest.get(parts[0], (0, None))[0]:
            newest[parts[0]] = (parts[1], n)
    targets = {}
    for n in names:
        parts = split(n)
        if not parts:
            continue
        base, version, ptsz = parts
        if ptsz:
            target = base if version == 1 else "%s_v%d" % (base, version)
        else:
            target = newest.get(base, (0, n))[1]
        if target != n and target in protos and protos.get(n) == protos[target]:
            targets[n] = target
    return targets


def procaddr_entries(include_dir, names):
    """[(base, version, variant, symbol)] sorted by (base, version, variant); variant is
    '' or '_ptsz'/'_ptds'."""
    text = ""
    for header in ("cudaTypedefs.h", "cudaProfilerTypedefs.h"):
        with open(include_dir + "/" + header) as f:
            text += f.read()
    found = set(re.findall(r"\bPFN_(cu[A-Za-z0-9_]+?)_v(\d+)(_ptsz|_ptds)?\b", text))
    by_base = collections.defaultdict(list)
    for base, version, variant in found:
        by_base[base].append((int(version), variant))
    entries = []
    for base, versions in by_base.items():
        plain = sorted(v for v, variant in versions if not variant)
        for version, variant in versions:
            if variant:
                older = [i for i, v in enumerate(plain) if v <= version]
                index = older[-1] if older else 0
            else:
                index = plain.index(version)
            symbol = (base if index == 0 else "%s_v%d" % (base, index + 1)) + variant
            if symbol not in names:
                sys.exit("gen_cuapi.py: PFN_%s_v%d%s maps to %s, which cuda.h does not declare"
                         % (base, version, variant, symbol))
            entries.append((base, version, variant, symbol))
    if len(entries) < 300:
        sys.exit("gen_cuapi.py: only %d versioned entry points in cudaTypedefs.h" % len(entries))
    return sorted(entries)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: gen_cuapi.py CC CUDA_INCLUDE_DIR OUTDIR")
    cc, inc, outdir = sys.argv[1:]
    names = set()
    protos = {}
    for defines in ([], ["-D__CUDA_API_PER_THREAD_DEFAULT_STREAM"], ["-D__CUDA_API_VERSION_INTERNAL"]):
        names |= declared_names(cc, inc, defines, protos)
    thunks = same_abi_targets(names, protos)
    # compat.c writes a few entry points once for both builds, as weak definitions a build may
    # replace: no second weak fallback for those (the linker would keep either).
    compat = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat.c")
    with open(compat) as f:
        shared = set(re.findall(r"__attribute__\(\(weak\)\)\s+CUresult\s+CUDAAPI\s+(cu\w+)\s*\(", f.read()))
    names = sorted(names)
    if len(names) < 300:
        sys.exit("gen_cuapi.py: only %d entry points found in cuda.h; wrong header?" % len(names))

    with open(outdir + "/cuapi_names.h", "w") as f:
        f.write("/* Generated by common/gen_cuapi.py from cuda.h. Do not edit. */\n")
        f.write("#define VG_CUAPI_COUNT %d\n#define VG_CUAPI_ALL(X) \\\n" % len(names))
        f.write(" \\\n".join("    X(%s)" % n for n in names) + "\n")

    with open(outdir + "/cuapi_exports.c", "w") as f:
        f.write("/* Generated by common/gen_cuapi.py from cuda.h. Do not edit.\n"
                " * No cuda.h here: these weak fallbacks take no arguments, which the x86-64 and\n"
                " * AArch64 calling conventions allow for any caller's signature. */\n")
        f.write('#include "log.h"\n\n')
        f.write("/* A same-ABI alias is a weak jump to its newer twin, resolved like any call. */\n"
                "#if defined(__x86_64__)\n#define VG_THUNK(from, to) __asm__(\".text\\n.weak \" #from \"\\n"
                ".type \" #from \",@function\\n\" #from \":\\n\\tjmp \" #to \"@PLT\\n.size \" #from \",.-\" #from)\n"
                "#elif defined(__aarch64__)\n#define VG_THUNK(from, to) __asm__(\".text\\n.weak \" #from \"\\n"
                ".type \" #from \",%function\\n\" #from \":\\n\\tb \" #to \"\\n.size \" #from \",.-\" #from)\n"
                "#endif\n\n")
        for n in names:
            if n in shared:
                continue
            if n in thunks:
                f.write("#ifdef VG_THUNK\nVG_THUNK(%s, %s);\n#else\n" % (n, thunks[n]))
            f.write("__attribute__((weak)) int %s(void)\n{\n    static int once;\n"
                    "    return vg_unsupported(\"%s\", &once);\n}\n" % (n, n))
            f.write("#endif\n\n" if n in thunks else "\n")

    entries = procaddr_entries(inc, set(names))
    with open(outdir + "/cuapi_procaddr.c", "w") as f:
        f.write("/* Generated by common/gen_cuapi.py from cudaTypedefs.h. Do not edit.\n"
                " * Declared as in cuapi_exports.c (no cuda.h here): only the addresses are used,\n"
                " * and each resolves to the library's own implementation or its weak fallback. */\n")
        f.write('#include "procaddr.h"\n\n')
        for sym in sorted(set(e[3] for e in entries)):
            f.write("int %s(void);\n" % sym)
        f.write("\nconst struct vg_procaddr_entry vg_procaddr_table[] = {\n")
        kinds = {"": "VG_PROCADDR_LEGACY", "_ptsz": "VG_PROCADDR_PER_THREAD",
                 "_ptds": "VG_PROCADDR_PER_THREAD"}
        for base, version, variant, sym in entries:
            f.write('    {"%s", "%s", %d, %s, (void (*)(void))%s},\n'
                    % (base, sym, version, kinds[variant], sym))
        f.write("};\nconst unsigned vg_procaddr_count = %d;\n" % len(entries))


if __name__ == "__main__":
    main()
