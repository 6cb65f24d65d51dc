#!/usr/bin/env python3
"""Generates the remoting code of every driver call from one annotated list, protocol/cuda.calls.

    gen_calls.py CC CUDA_INCLUDE_DIR LIST SRCDIR OUTDIR      generate (see OUTPUTS)
    gen_calls.py CC CUDA_INCLUDE_DIR LIST --missing         print list lines for cuda.h
                                                            functions the list lacks

The list says, for each function of cuda.h, whether and how it is forwarded; cuda.h itself says
the parameter types. From both come (OUTDIR, in the build tree, "Generated ... Do not edit"):

  calls.h          wire ids (enum vg_call), kinds, names, VG_API_HASH (a digest of the wire
                   layout that both sides compare in the handshake)
  calls.md         the wire layout of every call and the table of unsupported functions
  cuapi_stub.c     the stub's wrappers (client side), per-thread-stream twins included
  cuapi_server.c   the server's handlers: handle translation through the session table, type
                   checks, device-range checks, count bounds, memory charges, then the driver call;
                   and the handler table vg_handlers[]
  cuapi_drv.h      VG_DRV_FUNCS(X): every driver entry point gpu-server calls
  cuapi_rec.c      the recording test driver's functions (tests/recdrv)
  cuapi_rec_cases.c  one test case per generated call for tests/recdrv's Criterion test
  cuapi_info.h     per-call facts for tests (names, wire ids, generated or not)

Fails (exit status 1, a message naming the function and parameter) on: a cuda.h function the list
does not name; a list entry cuda.h does not declare; a pointer parameter whose direction or length
the list does not say; a device pointer without a range; a manual call whose implementation is
missing from the sources; a pipelined call with outputs.
"""
import hashlib
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import cudahdr  # noqa: E402

KINDS = ("reply", "pipelined", "syncing")
MODES = ("gen", "manual", "server", "client", "local", "unsupported")
MAX_OUTS = 8


class ListError(Exception):
    pass


def fail(msg):
    raise ListError(msg)


# ---- the list ------------------------------------------------------------------------------------

class HandleKind:
    def __init__(self, ctype, tag, opts, line):
        self.ctype = ctype
        self.tag = tag
        self.destroy = opts.pop("destroy", None)
        self.parent = opts.pop("parent", None)
        self.identity = opts.pop("identity", None) is not None
        self.special = opts.pop("special", None) is not None
        if opts:
            fail("line %d: unknown handle option(s) %s" % (line, ", ".join(opts)))
        self.enum = "H_" + tag.upper()


class StructKind:
    def __init__(self, ctype, mode, opts, line):
        if mode not in ("pod", "manual", "raw"):
            fail("line %d: struct %s: mode must be pod, raw or manual" % (line, ctype))
        self.ctype = ctype
        self.mode = mode
        self.nulls = [x for x in opts.pop("null", "").split(",") if x]
        if opts:
            fail("line %d: unknown struct option(s) %s" % (line, ", ".join(opts)))


class Spec:
    """What one pointer (or checked) parameter means on the wire."""

    def __init__(self, text, line, fname):
        self.text = text
        m = re.fullmatch(r"([a-z]+)(\?)?(?:\[(.*)\])?((?:,[a-z]+(?:\[.*?\])?)*)", text)
        if not m:
            fail("line %d: %s: cannot read spec '%s'" % (line, fname, text))
        self.role = m.group(1)
        self.nullable = m.group(2) == "?"
        self.count = m.group(3)
        self.charge = None
        self.charge_dev = None
        for extra in re.findall(r",([a-z]+)(?:\[(.*?)\])?", m.group(4) or ""):
            if extra[0] == "charge":
                parts = split_args(extra[1])
                self.charge = parts[0]
                self.charge_dev = parts[1] if len(parts) > 1 else None
            else:
                fail("line %d: %s: unknown modifier ,%s" % (line, fname, extra[0]))
        roles = ("in", "out", "inout", "dev", "alloc", "free", "new", "get", "destroy", "opt",
                 "str", "strbuf", "global", "host", "retain")
        if self.role not in roles:
            fail("line %d: %s: unknown role '%s' (one of %s)" % (line, fname, self.role, ", ".join(roles)))


def split_args(s):
    parts, cur, depth = [], "", 0
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


class Entry:
    def __init__(self, name, words, line):
        self.name = name
        self.line = line
        self.kind = None
        self.mode = "gen"
        self.reason = None
        self.specs = {}
        self.proto = None
        self.twin = None        # per-thread-stream symbol (_ptsz/_ptds), if cuda.h has one
        self.twin_flag = False  # the twin has no stream parameter: the wire carries a flag
        self.private = name.startswith("vg")
        self.wait = None        # wait=STREAM
        self.work = None        # work=kernel|copy[:ARG]: device work, for the scheduler
        self.work_arg = None    # the wire argument naming its stream ("legacy": none)
        self.hint = None        # hint=PARAM: a no-op on device-backed managed memory
        self.err = "CUDA_ERROR_INVALID_VALUE"
        for w in words:
            if w.startswith("wait="):
                self.wait = w[5:]
            elif w.startswith("hint="):
                self.hint = w[5:]
            elif w.startswith("work="):
                kind, _, arg = w[5:].partition(":")
                if kind not in ("kernel", "copy"):
                    fail("line %d: %s: work=kernel or work=copy, not '%s'" % (line, name, kind))
                if arg and arg != "legacy" and not arg.isdigit():
                    fail("line %d: %s: work=%s:ARG takes an argument index or 'legacy'" % (line, name, kind))
                self.work, self.work_arg = kind, arg or None
            elif w.startswith("err="):
                self.err = w[4:]
            elif w in KINDS:
                self.kind = w
            elif w in ("manual", "server", "client", "local"):
                self.mode = w
            elif w.startswith("unsupported:"):
                self.mode = "unsupported"
                self.reason = w.split(":", 1)[1]
            elif "=" in w:
                p, s = w.split("=", 1)
                self.specs[p] = Spec(s, line, name)
            else:
                fail("line %d: %s: cannot read '%s'" % (line, name, w))
        if self.mode in ("gen", "manual", "server", "client") and not self.kind:
            fail("line %d: %s: forwarded, but no kind (reply, pipelined or syncing)" % (line, name))
        if self.mode in ("local", "unsupported") and self.kind:
            fail("line %d: %s: a %s function has no wire kind" % (line, name, self.mode))

    @property
    def wire(self):
        return self.mode in ("gen", "manual", "server", "client")

    @property
    def gen_client(self):
        return self.mode in ("gen", "server") and not self.private

    @property
    def gen_server(self):
        return self.mode in ("gen", "client")


def split_words(line):
    words, cur, depth = [], "", 0
    for ch in line:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch.isspace() and depth == 0:
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def read_list(path):
    handles, structs, reasons, entries = {}, {}, {}, []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("reason "):
                _, key, text = line.split(None, 2)
                reasons[key] = text.strip().strip('"')
                continue
            words = split_words(line)
            opts = {}
            rest = []
            for w in words[1:]:
                if "=" in w and words[0] in ("handle", "struct"):
                    k, v = w.split("=", 1)
                    opts[k] = v
                elif w in ("identity", "special") and words[0] == "handle":
                    opts[w] = ""
                else:
                    rest.append(w)
            if words[0] == "handle":
                if len(rest) != 2:
                    fail("line %d: handle CTYPE TAG [options]" % n)
                handles[rest[0]] = HandleKind(rest[0], rest[1], opts, n)
            elif words[0] == "struct":
                if len(rest) != 2:
                    fail("line %d: struct CTYPE pod|manual [null=FIELDS]" % n)
                structs[rest[0]] = StructKind(rest[0], rest[1], opts, n)
            else:
                entries.append(Entry(words[0], words[1:], n))
    seen = set()
    for e in entries:
        if e.name in seen:
            fail("line %d: %s is listed twice" % (e.line, e.name))
        seen.add(e.name)
        if e.mode == "unsupported" and e.reason not in reasons:
            fail("line %d: %s: no 'reason %s' line" % (e.line, e.name, e.reason))
    return handles, structs, reasons, entries


# ---- parameters ----------------------------------------------------------------------------------

class Model:
    """cuda.h's types as the list classifies them."""

    def __init__(self, hdr, handles, structs):
        self.hdr = hdr
        self.handles = handles
        self.structs = structs

    def elem(self, base):
        """Category of a (non-pointer) type name: 'handle', 'dev', 'float', 'scalar', 'pod',
        'marshal', 'void', 'char', 'funcptr', 'opaque', 'aggregate' (a struct the list does not
        describe)."""
        if base in self.handles:
            return "handle"
        if base == "CUdeviceptr":
            return "dev"
        if base in ("char", "const char"):
            return "char"
        if base == "void":
            return "void"
        kind, info, final = self.hdr.resolve(base)
        if kind == "scalar":
            return "float" if info in ("float", "double") else "scalar"
        if kind == "enum":
            return "scalar"
        if kind in ("struct", "union"):
            st = self.structs.get(base) or self.structs.get(final)
            if not st:
                return "aggregate"
            return {"pod": "pod", "raw": "raw", "manual": "marshal"}[st.mode]
        if kind == "funcptr":
            return "funcptr"
        if kind == "opaque":
            return "opaque"
        if kind == "pointer":
            return "pointer"
        return kind

    def struct_of(self, base):
        final = self.hdr.resolve(base)[2]
        return self.structs.get(base) or self.structs.get(final)


class WP:
    """One parameter of one call, classified: cat is the C category of the parameter itself
    ('value' or 'ptr'), elem the category of what it is or points to, role what the list (or the
    default) says about it."""

    def __init__(self, model, entry, p):
        self.p = p
        self.name = p.name
        self.type = p.type
        t = p.type
        self.spec = entry.specs.get(p.name)
        self.nullable = bool(self.spec and self.spec.nullable)
        self.count = self.spec.count if self.spec else None
        if t.ptr == 0:
            self.cat = "value"
            self.elem = model.elem(t.base)
        elif t.ptr == 1:
            self.cat = "ptr"
            self.elem = model.elem(t.base)
        else:
            self.cat = "ptr2"
            self.elem = model.elem(t.base)
        self.server_manual = entry.mode in ("server", "manual")
        self.role = self.spec.role if self.spec else self.default_role()

    def default_role(self):
        t = self.type
        if self.cat == "value":
            if self.elem in ("scalar", "float"):
                return "arg"
            if self.elem == "handle":
                return "handle"
            if self.elem == "pod":
                return "val"
            if self.elem == "dev" and self.server_manual:
                return "arg"  # checked by the hand-written handler
            return None  # a device pointer or an opaque value needs saying
        if self.cat == "ptr":
            if self.elem == "char" and t.const:
                return "str"
            if self.elem in ("scalar", "float", "handle", "dev") and not t.const:
                return "out"
            if self.elem in ("pod", "marshal", "raw"):
                return "in" if t.const else "out"
        return None

    def elem_size_c(self):
        """C expression of one element's wire size."""
        if self.elem == "handle":
            return "8"
        if self.elem == "void":
            return "1"
        return "sizeof(%s)" % self.type.base


def classify(model, entry):
    proto = entry.proto
    names = {p.name for p in proto.params}
    for pn in entry.specs:
        if pn not in names:
            fail("line %d: %s has no parameter '%s' (it has: %s)" % (entry.line, entry.name, pn,
                                                                   ", ".join(sorted(names))))
    wps = [WP(model, entry, p) for p in proto.params]
    return wps


def check_generic(entry, wps):
    """Raises when the generator cannot marshal a call it is asked to generate."""
    where = "line %d: %s" % (entry.line, entry.name)
    strings = 0
    for w in wps:
        r, c, e = w.role, w.cat, w.elem
        what = "%s: parameter %s (%s)" % (where, w.name, w.type)
        if r is None:
            fail("%s: say what it is (in/out/inout[N], dev[LEN], ...) or mark the call manual" % what)
        if e in ("funcptr", "opaque", "aggregate", "pointer") and not (e == "aggregate" and False):
            if e == "aggregate":
                fail("%s: struct not described in the list (add 'struct %s pod|manual')" % (what, w.type.base))
            fail("%s: %s cannot cross the wire generically; mark the call manual, local or unsupported" % (what, e))
        if c == "ptr2":
            fail("%s: pointer to pointer; mark the call manual, local or unsupported" % what)
        if r in ("arg", "val"):
            continue
        if r in ("handle", "opt", "destroy"):
            if not (c == "value" and e == "handle"):
                fail("%s: '%s' is for a handle passed by value" % (what, r))
            continue
        if r == "dev":
            if not ((c == "value" and e == "dev") or (c == "value" and e == "void") or (c == "ptr" and e == "void")):
                fail("%s: 'dev' is for a CUdeviceptr or void * device address" % what)
            if w.count is None:
                fail("%s: dev needs the length it touches: dev[LEN]" % what)
            continue
        if r == "free":
            if not (c == "value" and e == "dev"):
                fail("%s: 'free' is for a CUdeviceptr" % what)
            continue
        if r in ("alloc", "global"):
            if not (c == "ptr" and e == "dev" and not w.type.const):
                fail("%s: '%s' is for a CUdeviceptr * output" % (what, r))
            if w.count is None:
                fail("%s: %s needs its size: %s[BYTES]" % (what, r, r))
            continue
        if r in ("new", "get", "retain"):
            if not (c == "ptr" and e == "handle" and not w.type.const):
                fail("%s: '%s' is for a handle output (T *)" % (what, r))
            continue
        if r == "str":
            if not (c == "ptr" and e == "char" and w.type.const):
                fail("%s: 'str' is for const char *" % what)
            strings += 1
            continue
        if r == "strbuf":
            if not (c == "ptr" and e == "char" and not w.type.const) or w.count is None:
                fail("%s: 'strbuf[LEN]' is for a char * output buffer" % what)
            continue
        if r in ("in", "out", "inout"):
            if c != "ptr":
                fail("%s: '%s' is for a pointer" % (what, r))
            if e == "void" and w.count is None:
                fail("%s: a void * buffer needs its length in bytes: %s[BYTES]" % (what, r))
            if e == "char" and w.count is None:
                fail("%s: strings are 'str' or 'strbuf[LEN]'; a byte array is in/out[N]" % what)
            if e == "raw" and not w.server_manual:
                fail("%s: %s is only checked by hand-written handlers: mark the call server" % (what, w.type.base))
            if r != "in" and w.type.const:
                fail("%s: const pointer cannot be '%s'" % (what, r))
            if e == "marshal" and (w.count is not None or r != "in"):
                fail("%s: only single input structures are marshalled by generated calls; mark the call manual" % what)
            continue
        if r == "host":
            fail("%s: 'host' values (client addresses) only appear in manual calls" % what)
        fail("%s: role %s not handled" % (what, r))
    if strings > 1:
        fail("%s: more than one string argument; mark it manual" % where)
    if entry.kind == "pipelined" and any(w.role in ("out", "inout", "new", "get", "alloc", "global", "strbuf") for w in wps):
        fail("%s: a pipelined call cannot have outputs" % where)


def suggest(model, name, proto):
    """A list line for a function the list lacks: defaults where they apply, TODO where not."""
    class E:
        specs = {}
        line = 0
    words = [name, "reply"]
    for p in proto.params:
        w = WP(model, E, p)
        if w.role is None:
            words.append("%s=TODO" % p.name)
    return " ".join(words)



# ---- code generation helpers ---------------------------------------------------------------------

GEN_NOTE = "Generated by protocol/gen_calls.py from protocol/cuda.calls and cuda.h. Do not edit."


def scalar_params(wps):
    """Names whose values are integers on both sides (rewritten to 128-bit in size expressions)."""
    names = set()
    for w in wps:
        if w.cat == "value" and w.elem in ("scalar", "dev"):
            names.add(w.name)
    return names


def deref_params(wps):
    return {w.name for w in wps if w.cat == "ptr" and w.elem in ("scalar", "dev") and w.role in ("inout", "out")}


def wide(expr, wps):
    """The expression computed in 128 bits: every integer parameter (and *p of an integer
    in/out parameter) is widened first, so that N*4 cannot wrap."""
    sc = scalar_params(wps)
    de = deref_params(wps)

    def rep(m):
        star, name, call = m.group(1), m.group(2), m.group(3)
        if call:
            return m.group(0)
        if star and name in de:
            return "((vg_u128)(*%s))" % name
        if not star and name in sc:
            return "((vg_u128)(%s))" % name
        return m.group(0)
    return re.sub(r"(\*\s*)?\b([A-Za-z_]\w*)\b(\s*\()?", rep, expr)


def c_cast_in(w, src):
    """C expression turning the wire value src (uint64_t) into the parameter's type."""
    t = w.type.base
    if w.elem == "float":
        return None
    return "(%s)%s" % (t, src)


def wire_of(w, val):
    """uint64_t wire value of a by-value parameter."""
    if w.elem == "float":
        return "vg_f2u(%s)" % val
    if w.elem == "handle":
        return "(uint64_t)(uintptr_t)%s" % val if not is_int_handle(w) else "(uint64_t)%s" % val
    if w.elem == "void":
        return "(uint64_t)(uintptr_t)%s" % val
    return "(uint64_t)(int64_t)%s" % val if signed_type(w) else "(uint64_t)%s" % val


INT_HANDLES = ("CUtexObject", "CUsurfObject", "CUmemGenericAllocationHandle")


def is_int_handle(w):
    return w.type.base in INT_HANDLES


SIGNED = {"int", "short", "long", "long long", "signed char", "CUdevice"}


def signed_type(w):
    return w.type.base in SIGNED


class Seg:
    """A bulk or reply-bulk segment of a generated call."""
    pass


def plan(model, e, wps):
    """Wire plan of one generated call: arguments, bulk segments, outputs, reply segments.
    Returns dict with lists of (kind, wp, extra)."""
    args, bulk, outs, rbulk = [], [], [], []
    for w in wps:
        r = w.role
        if r in ("arg", "handle", "opt", "destroy", "dev", "free"):
            args.append(("value", w))
        elif r == "val":
            bulk.append(w)
        elif r == "str":
            pass
        elif r == "strbuf":
            pass
        elif r in ("in", "inout"):
            if w.count is None and w.elem in ("scalar", "float", "handle", "dev") and r == "inout":
                args.append(("inval", w))
                outs.append(("out1", w))
                continue
            if w.nullable:
                args.append(("present", w))
            bulk.append(w)
            if r == "inout":
                rbulk.append(w)
        elif r in ("out", "alloc", "global", "new", "get", "retain"):
            if w.count is not None and r == "out":
                if w.nullable:
                    args.append(("present", w))
                rbulk.append(w)
            elif w.elem in ("pod", "marshal", "raw"):
                rbulk.append(w)
            else:
                outs.append(("out1", w))
        else:
            fail("line %d: %s: no wire plan for %s role %s" % (e.line, e.name, w.name, r))
    if e.twin_flag:
        args.append(("perthread", None))
    if len(outs) > MAX_OUTS:
        fail("line %d: %s: more than %d single outputs" % (e.line, e.name, MAX_OUTS))
    return {"args": args, "bulk": bulk, "outs": outs, "rbulk": rbulk}


def stream_param(wps):
    for w in wps:
        if w.cat == "value" and w.elem == "handle" and w.type.base == "CUstream":
            return w
    return None


def count_c(w, wps, side):
    """C expression (vg_u128) of the element count of an array parameter."""
    return wide(w.count, wps)


def check_struct_pod(model, st):
    """A 'pod' structure must hold no pointer, handle or device address (null= fields excepted)."""
    kind, body, final = model.hdr.resolve(st.ctype)

    def bad(b, prefix):
        for ct, n, arr in model.hdr.fields(b):
            full = prefix + n
            if full in st.nulls or n in st.nulls:
                continue
            if ct.ptr:
                return "pointer field %s" % full
            if ct.base in model.handles:
                return "handle field %s" % full
            if ct.base == "CUdeviceptr":
                return "device address field %s" % full
            k, info, fin = model.hdr.resolve(ct.base)
            if k in ("struct", "union"):
                r = bad(info, full + ".")
                if r:
                    return r
            elif k in ("funcptr", "opaque", "pointer"):
                return "%s field %s" % (k, full)
        return None
    if kind not in ("struct", "union"):
        fail("struct %s: not a structure in cuda.h" % st.ctype)
    why = bad(body, "")
    if why:
        fail("struct %s is marked pod but has a %s (mark it manual or raw, or null=FIELD)" % (st.ctype, why))


# ---- server handlers -----------------------------------------------------------------------------

def single_storage(w):
    """A pointer parameter the server gives a local of its own (one element)."""
    if w.cat != "ptr" or w.elem == "void":
        return False
    if w.role in ("alloc", "global", "new", "get", "retain"):
        return True
    return w.role in ("in", "out", "inout") and w.count is None


def is_array(w):
    return w.cat == "ptr" and w.role in ("in", "out", "inout") and w.count is not None


def htype(model, w):
    return model.handles[w.type.base].enum


def gen_server(model, e, wps):
    P = plan(model, e, wps)
    L = []
    emit = L.append

    def check(pre, cond, rc):
        """if (cond) fail the call with rc."""
        emit(pre + "if (%s) {" % cond)
        emit(pre + "    rc = %s;" % rc)
        emit(pre + "    goto out;")
        emit(pre + "}")
    name = e.name
    nargs = len(P["args"])
    for w in wps:
        if w.elem == "raw":
            fail("line %d: %s: parameter %s (%s) is only checked by hand-written handlers" % (e.line, name, w.name, w.type.base))
    emit("static CUresult h_%s(struct vg_sess *s, const struct vg_in *in, struct vg_result *res)" % name)
    emit("{")
    emit("    const struct vg_drv *d = s->drv;")
    emit("    (void)res;")
    emit("    if (!d->%s)" % name)
    emit("        return CUDA_ERROR_NOT_SUPPORTED;")
    emit("    if (in->nargs != %d)" % nargs)
    emit("        return CUDA_ERROR_INVALID_VALUE;")
    emit("    CUresult rc = CUDA_SUCCESS;")
    emit("    struct vg_tmp tmp;")
    emit("    vg_tmp_init(&tmp);")
    emit("    struct vg_rd rd;")
    emit("    vg_rd_init(&rd, in->bulk, in->bulk_len);")
    emit("    (void)rd;")
    # declarations
    for w in wps:
        t = w.type
        if w.cat == "value":
            emit("    %s;" % t.decl(w.name).replace("const ", "") if False else "    %s %s;" % (t.base, w.name))
            if w.role in ("handle", "opt", "destroy"):
                emit("    int %s_slot = -1;" % w.name)
                emit("    (void)%s_slot;" % w.name)
        else:
            base = t.base if w.elem != "void" else "void"
            ct = ("const " if t.const else "") + base
            emit("    %s *%s = NULL;" % (base if not t.const else ct, w.name))
            if single_storage(w):
                emit("    %s %s_v;" % (t.base, w.name))
                emit("    memset(&%s_v, 0, sizeof %s_v);" % (w.name, w.name))
            if is_array(w):
                emit("    size_t %s_n = 0;" % w.name)
            if w.nullable and (is_array(w) or (w.role == "in" and w.count is None)):
                emit("    int %s_present = 1;" % w.name)
    if e.twin_flag:
        emit("    int vg_pt = 0;")
    charges = [w for w in wps if w.role == "alloc" or (w.spec and w.spec.charge)]
    for w in charges:
        emit("    uint64_t %s_charge = 0;" % w.name)
        emit("    int %s_charge_dev = 0, %s_charged = 0;" % (w.name, w.name))
    strbuf = [w for w in wps if w.role == "strbuf"]
    for w in strbuf:
        emit("    char %s_buf[VG_STR_MAX];" % w.name)
    # 1. values
    for i, (k, w) in enumerate(P["args"]):
        a = "in->args[%d]" % i
        if k == "perthread":
            emit("    vg_pt = %s != 0;" % a)
        elif k == "present":
            emit("    %s_present = %s != 0;" % (w.name, a))
        elif k == "inval":
            emit("    %s_v = (%s)%s;" % (w.name, w.type.base, a) if w.elem != "float" else "    %s_v = vg_u2f(%s);" % (w.name, a))
            emit("    %s = &%s_v;" % (w.name, w.name))
        elif w.role in ("handle", "opt", "destroy"):
            emit("    {")
            emit("        void *r = NULL;")
            emit("        rc = sess_harg(s, %s, %s, %d, &r, &%s_slot);" % (a, htype(model, w), 1 if w.role == "opt" else 0, w.name))
            emit("        if (rc != CUDA_SUCCESS)")
            emit("            goto out;")
            emit("        %s = (%s)(uintptr_t)r;" % (w.name, w.type.base))
            emit("    }")
        elif w.elem == "float":
            emit("    %s = vg_u2f(%s);" % (w.name, a))
        elif w.elem == "void":
            emit("    %s = (void *)(uintptr_t)%s;" % (w.name, a))
        else:
            emit("    %s = (%s)%s;" % (w.name, w.type.base, a))
    # strings
    for w in wps:
        if w.role == "str":
            emit("    %s = in->name;" % w.name)
    # 2. bulk inputs, in parameter order
    for w in P["bulk"]:
        esz = w.elem_size_c()
        ctype = "void" if w.elem == "void" else w.type.base
        pre = "    "
        if w.nullable:
            emit("    if (%s_present) {" % w.name)
            pre = "        "
        if w.elem == "marshal":
            emit(pre + "rc = vg_mdec_%s(s, &rd, &tmp, &%s_v);" % (w.type.base, w.name))
            emit(pre + "if (rc != CUDA_SUCCESS)")
            emit(pre + "    goto out;")
            emit(pre + "%s = &%s_v;" % (w.name, w.name))
        elif w.role == "val":
            check(pre, "vg_rd_copy(&rd, &%s, sizeof %s) < 0" % (w.name, w.name), "CUDA_ERROR_INVALID_VALUE")
        elif w.count is None:
            check(pre, "vg_rd_copy(&rd, &%s_v, sizeof %s_v) < 0" % (w.name, w.name), "CUDA_ERROR_INVALID_VALUE")
            emit(pre + "%s = &%s_v;" % (w.name, w.name))
            st = model.struct_of(w.type.base) if w.elem == "pod" else None
            for f in (st.nulls if st else []):
                check(pre, "%s_v.%s != NULL" % (w.name, f), "CUDA_ERROR_INVALID_VALUE")
        else:
            emit(pre + "rc = vg_count(%s, %s, &%s_n);" % (wide(w.count, wps), esz, w.name))
            emit(pre + "if (rc != CUDA_SUCCESS)")
            emit(pre + "    goto out;")
            if w.elem == "handle":
                emit(pre + "rc = sess_harg_array(s, &rd, %s, %s_n, &tmp, (void **)&%s);" % (htype(model, w), w.name, w.name))
                emit(pre + "if (rc != CUDA_SUCCESS)")
                emit(pre + "    goto out;")
            else:
                emit(pre + "%s = vg_rd_dup(&rd, &tmp, %s_n * %s);" % (w.name, w.name, esz))
                check(pre, "!%s && %s_n" % (w.name, w.name), "vg_rd_failed(&rd)")
        if w.nullable:
            emit("    } else {")
            emit("        %s = NULL;" % w.name)
            emit("    }")
    check("    ", "!vg_rd_done(&rd)", "CUDA_ERROR_INVALID_VALUE")
    # 3. device ranges (their sizes may come from inputs in the bulk)
    for w in wps:
        if w.role == "dev":
            val = "(uint64_t)(uintptr_t)%s" % w.name if w.elem == "void" else w.name
            cond = "!sess_dev_ok(s, %s, %s)" % (val, wide(w.count, wps))
            if w.nullable:
                cond = "%s != 0 && %s" % (val, cond)
            check("    ", cond, e.err)
        if w.role == "free":
            emit("    int %s_alloc = -1;" % w.name)
            emit("    if (%s != 0) {" % w.name)
            emit("        %s_alloc = sess_alloc_find(s, %s);" % (w.name, w.name))
            check("        ", "%s_alloc < 0" % w.name, "CUDA_ERROR_INVALID_VALUE")
            emit("    }")
    # 4. output storage
    for w in wps:
        if w.cat != "ptr":
            continue
        r = w.role
        if r == "strbuf":
            ln = w.count
            check("    ", "%s <= 0" % ln, "CUDA_ERROR_INVALID_VALUE")
            emit("    if (%s > (int)sizeof %s_buf - 1)" % (ln, w.name))
            emit("        %s = (int)sizeof %s_buf - 1;" % (ln, w.name))
            emit("    memset(%s_buf, 0, sizeof %s_buf);" % (w.name, w.name))
            emit("    %s = %s_buf;" % (w.name, w.name))
        elif r in ("out", "alloc", "global", "new", "get", "retain") or (r == "inout" and w.count is not None and False):
            if w.count is not None and r == "out":
                esz = w.elem_size_c()
                pre = "    "
                if w.nullable:
                    emit("    if (%s_present) {" % w.name)
                    pre = "        "
                emit(pre + "rc = vg_count(%s, %s, &%s_n);" % (wide(w.count, wps), esz, w.name))
                emit(pre + "if (rc == CUDA_SUCCESS && vg_out_room(res, s, %s_n * %s) < 0)" % (w.name, esz))
                emit(pre + "    rc = CUDA_ERROR_INVALID_VALUE;")
                emit(pre + "if (rc != CUDA_SUCCESS)")
                emit(pre + "    goto out;")
                if w.elem == "handle":
                    emit(pre + "%s = vg_tmp_zalloc(&tmp, %s_n * sizeof *%s);" % (w.name, w.name, w.name))
                else:
                    emit(pre + "%s = vg_tmp_zalloc(&tmp, %s_n * %s);" % (w.name, w.name, esz))
                check(pre, "!%s && %s_n" % (w.name, w.name), "CUDA_ERROR_OUT_OF_MEMORY")
                if w.nullable:
                    emit("    }")
            else:
                emit("    %s = &%s_v;" % (w.name, w.name))
    # inout arrays reuse their input buffer (already a private copy)
    # 5. charges before the driver allocates
    for w in charges:
        expr = w.count if w.role == "alloc" else w.spec.charge
        dev = w.spec.charge_dev if w.spec.charge_dev else None
        emit("    {")
        emit("        vg_u128 bytes = %s;" % wide(expr, wps))
        check("        ", "bytes > VG_MAX_CHARGE", "CUDA_ERROR_OUT_OF_MEMORY")
        emit("        %s_charge = (uint64_t)bytes;" % w.name)
        emit("    }")
        emit("    %s_charge_dev = %s;" % (w.name, dev if dev else "sess_cur_device(s)"))
        emit("    rc = sess_mem_charge(s, %s_charge_dev, %s_charge);" % (w.name, w.name))
        emit("    if (rc != CUDA_SUCCESS)")
        emit("        goto out;")
        emit("    %s_charged = 1;" % w.name)
    # 6. the call (a hint about managed memory the server backs with device memory changes
    # nothing: the stub keeps it coherent)
    if e.hint:
        hw = [w for w in wps if w.name == e.hint and w.role == "dev"]
        if not hw:
            fail("line %d: %s: hint=%s must name a device-range parameter" % (e.line, name, e.hint))
        emit("    if (sess_hint_only(s, %s, %s))" % (e.hint, wide(hw[0].count, wps)))
        emit("        goto out;")
    callargs = ", ".join(w.name for w in wps)
    fn = "d->%s" % name
    if e.twin_flag:
        emit("    __typeof__(d->%s) fn = vg_pt && d->%s ? d->%s : d->%s;" % (name, e.twin, e.twin, name))
        fn = "fn"
    emit("    rc = %s(%s);" % (fn, callargs))
    if e.wait:
        emit("    if (rc == CUDA_SUCCESS && d->cuStreamSynchronize)")
        emit("        rc = d->cuStreamSynchronize(%s);" % e.wait)
    emit("    if (rc != CUDA_SUCCESS)")
    emit("        goto out;")
    # 7. after success
    in_slots = [w for w in wps if w.role in ("handle", "opt", "destroy")]
    slots_c = "(const int[]){%s}, %d" % (", ".join("%s_slot" % w.name for w in in_slots) or "-1", len(in_slots))
    for w in wps:
        r = w.role
        if r == "alloc":
            emit("    rc = sess_alloc_add(s, %s_v, %s_charge, %s_charge_dev);" % (w.name, w.name, w.name))
            emit("    if (rc != CUDA_SUCCESS) {")
            emit("        vg_driver_free(s, %s_v);" % w.name)
            emit("        goto out;")
            emit("    }")
            emit("    %s_charged = 0; /* the allocation's record holds the charge now */" % w.name)
        elif r == "global":
            emit("    if (%s_v) {" % w.name)
            emit("        vg_u128 size = %s;" % wide(w.count, wps))
            emit("        rc = sess_global_add(s, %s_v, size);" % w.name)
            emit("        if (rc != CUDA_SUCCESS)")
            emit("            goto out;")
            emit("    }")
        elif r == "free":
            emit("    if (%s_alloc >= 0)" % w.name)
            emit("        sess_alloc_freed(s, %s_alloc);" % w.name)
        elif r == "destroy":
            emit("    sess_hdestroyed(s, %s_slot);" % w.name)
    # outputs
    outi = 0
    for k, w in P["outs"]:
        r = w.role
        v = "%s_v" % w.name
        if r == "new":
            ch = ("%s_charge, %s_charge_dev" % (w.name, w.name)) if (w.spec and w.spec.charge) else "0, 0"
            emit("    {")
            emit("        uint64_t id = sess_hout_new(s, %s, (void *)(uintptr_t)%s, %s);" % (htype(model, w), v, ch))
            emit("        if (!id) {")
            emit("            sess_hdrop_real(s, %s, (void *)(uintptr_t)%s);" % (htype(model, w), v))
            emit("            rc = CUDA_ERROR_OUT_OF_MEMORY;")
            emit("            goto out;")
            emit("        }")
            if w.spec and w.spec.charge:
                emit("        %s_charged = 0;" % w.name)
            emit("        sess_out(res, id);")
            emit("    }")
        elif r in ("get", "retain") or (r == "out" and w.elem == "handle"):
            fnn = "sess_hout_retain" if r == "retain" else "sess_hout_get"
            emit("    sess_out(res, %s(s, %s, (void *)(uintptr_t)%s, %s));" % (fnn, htype(model, w), v, slots_c))
        elif w.elem == "float":
            emit("    sess_out(res, vg_f2u(%s));" % v)
        elif signed_type(w):
            emit("    sess_out(res, (uint64_t)(int64_t)%s);" % v)
        else:
            emit("    sess_out(res, (uint64_t)%s);" % v)
        outi += 1
    # reply bulk
    if P["rbulk"]:
        parts = []
        for w in P["rbulk"]:
            if w.count is None:
                parts.append("sizeof %s_v" % w.name)
            else:
                cond = "%s_present ? " % w.name if w.nullable else ""
                sz = "%s_n * %s" % (w.name, w.elem_size_c())
                parts.append("(%s%s%s)" % (cond, sz, " : 0" if cond else ""))
        emit("    {")
        emit("        uint8_t *rb = vg_reply_bulk(res, %s);" % " + ".join(parts))
        check("        ", "!rb", "CUDA_ERROR_OUT_OF_MEMORY")
        for w in P["rbulk"]:
            pre = "        "
            if w.nullable and w.count is not None:
                emit("        if (%s_present) {" % w.name)
                pre = "            "
            if w.count is None:
                emit(pre + "memcpy(rb, &%s_v, sizeof %s_v);" % (w.name, w.name))
                emit(pre + "rb += sizeof %s_v;" % w.name)
            elif w.elem == "handle":
                emit(pre + "for (size_t i = 0; i < %s_n; i++) {" % w.name)
                emit(pre + "    uint64_t id = %s[i] ? sess_hout_get(s, %s, (void *)(uintptr_t)%s[i], %s) : 0;" % (w.name, htype(model, w), w.name, slots_c))
                emit(pre + "    memcpy(rb, &id, 8);")
                emit(pre + "    rb += 8;")
                emit(pre + "}")
            else:
                # No memcpy from a null array: a count of 0 leaves it unallocated.
                emit(pre + "if (%s_n)" % w.name)
                emit(pre + "    memcpy(rb, %s, %s_n * %s);" % (w.name, w.name, w.elem_size_c()))
                emit(pre + "rb += %s_n * %s;" % (w.name, w.elem_size_c()))
            if w.nullable and w.count is not None:
                emit("        }")
        emit("    }")
    for w in strbuf:
        emit("    snprintf(res->str, sizeof res->str, \"%%s\", %s_buf);" % w.name)
    emit("out:")
    for w in charges:
        emit("    if (%s_charged)" % w.name)
        emit("        sess_mem_refund(s, %s_charge_dev, %s_charge);" % (w.name, w.name))
    emit("    vg_tmp_free(&tmp);")
    emit("    return rc;")
    emit("}")
    return "\n".join(L) + "\n"


# ---- stub wrappers -------------------------------------------------------------------------------

def gen_client(model, e, wps):
    P = plan(model, e, wps)
    L = []
    emit = L.append
    name = e.name
    proto = e.proto
    params = ", ".join(p.type.decl(p.name) for p in proto.params)
    sp = stream_param(wps)
    emit("static CUresult w_%s(%s%sint vg_pt)" % (name, params, ", " if params else ""))
    emit("{")
    emit("    (void)vg_pt;")
    # local checks: required pointers
    for w in wps:
        if w.cat != "ptr":
            continue
        if w.nullable:
            continue
        if w.role in ("dev",):
            continue
        emit("    if (!%s)" % w.name)
        emit("        return CUDA_ERROR_INVALID_VALUE;")
    for w in wps:
        if w.role == "strbuf":
            emit("    if ((long long)(%s) <= 0)" % w.count)
            emit("        return CUDA_ERROR_INVALID_VALUE;")
        if w.role in ("in", "inout") and w.elem == "pod" and w.count is None:
            st = model.struct_of(w.type.base)
            for f in st.nulls:
                emit("    if (%s%s->%s != NULL)" % ("%s && " % w.name if w.nullable else "", w.name, f))
                emit("        return CUDA_ERROR_INVALID_VALUE;")
    # counts
    for w in wps:
        if is_array(w):
            cond = "%s && " % w.name if w.nullable else ""
            emit("    size_t %s_n = 0;" % w.name)
            emit("    if (%svg_count(%s, %s, &%s_n) != CUDA_SUCCESS)" % (cond, wide(w.count, wps), w.elem_size_c(), w.name))
            emit("        return CUDA_ERROR_INVALID_VALUE;")
    emit("    struct vg_cw c;")
    emit("    vg_cw_init(&c, VG_CALL_%s);" % name)
    for k, w in P["args"]:
        if k == "perthread":
            emit("    vg_cw_arg(&c, (uint64_t)vg_pt);")
        elif k == "present":
            emit("    vg_cw_arg(&c, %s != NULL);" % w.name)
        elif k == "inval":
            v = "*%s" % w.name
            if w.elem == "float":
                emit("    vg_cw_arg(&c, vg_f2u(%s));" % v)
            elif w.elem == "handle":
                emit("    vg_cw_arg(&c, (uint64_t)(uintptr_t)%s);" % v)
            else:
                emit("    vg_cw_arg(&c, (uint64_t)%s);" % v)
        elif w is sp:
            emit("    vg_cw_arg(&c, vg_stub_stream(%s, vg_pt));" % w.name)
        else:
            emit("    vg_cw_arg(&c, %s);" % wire_of(w, w.name))
    for w in wps:
        if w.role == "str":
            emit("    c.name = %s;" % w.name)
        if w.role == "strbuf":
            emit("    c.str = %s;" % w.name)
            emit("    c.str_size = (size_t)%s;" % w.count)
    for w in P["bulk"]:
        if w.elem == "marshal":
            emit("    if (%s) {" % w.name)
            emit("        CUresult mrc = vg_menc_%s(&c, %s);" % (w.type.base, w.name))
            emit("        if (mrc != CUDA_SUCCESS) {")
            emit("            vg_cw_done(&c);")
            emit("            return mrc;")
            emit("        }")
            emit("    }")
        elif w.role == "val":
            emit("    vg_cw_in(&c, &%s, sizeof %s);" % (w.name, w.name))
        elif w.count is None:
            emit("    if (%s)" % w.name if w.nullable else "    if (1)")
            emit("        vg_cw_in(&c, %s, sizeof *%s);" % (w.name, w.name))
        else:
            emit("    if (%s)" % w.name if w.nullable else "    if (1)")
            emit("        vg_cw_in(&c, %s, %s_n * %s);" % (w.name, w.name, w.elem_size_c()))
    for w in P["rbulk"]:
        if w.count is None:
            emit("    vg_cw_out(&c, %s, sizeof *%s);" % (w.name, w.name))
        else:
            emit("    if (%s)" % w.name if w.nullable else "    if (1)")
            emit("        vg_cw_out(&c, %s, %s_n * %s);" % (w.name, w.name, w.elem_size_c()))
    emit("    CUresult rc = vg_cw_run(&c);")
    if P["outs"]:
        emit("    if (rc != CUDA_SUCCESS)")
        emit("        return rc;")
        for i, (k, w) in enumerate(P["outs"]):
            o = "c.outs[%d]" % i
            pre = "    "
            if w.nullable:
                emit("    if (%s)" % w.name)
                pre = "        "
            if w.elem == "float":
                emit(pre + "*%s = vg_u2f(%s);" % (w.name, o))
            elif w.elem == "handle" and not is_int_handle(w):
                emit(pre + "*%s = (%s)(uintptr_t)%s;" % (w.name, w.type.base, o))
            else:
                emit(pre + "*%s = (%s)%s;" % (w.name, w.type.base, o))
    emit("    return rc;")
    emit("}")
    args = ", ".join(p.name for p in proto.params)
    sep = ", " if args else ""
    emit("CUresult CUDAAPI %s(%s)" % (name, params or "void"))
    emit("{")
    emit("    return w_%s(%s%s0);" % (name, args, sep))
    emit("}")
    if e.twin:
        emit("%s;" % proto.decl(e.twin))
        emit("CUresult CUDAAPI %s(%s)" % (e.twin, params or "void"))
        emit("{")
        emit("    return w_%s(%s%s1);" % (name, args, sep))
        emit("}")
    return "\n".join(L) + "\n"



# ---- the recording test driver and its test cases (tests/recdrv) -----------------------------------

def rec_fmt(w, val):
    """C statement logging one input of the recording driver (rec.h)."""
    t = w.type
    if w.cat == "value":
        if w.elem == "float":
            return "rec_float(&L, %s);" % val
        if w.elem in ("handle", "dev") or t.base in INT_HANDLES:
            return "rec_ptr(&L, (uint64_t)(uintptr_t)%s);" % val
        if w.elem == "pod":
            return "rec_bytes(&L, &%s, sizeof %s);" % (val, val)
        if signed_type(w):
            return "rec_u64(&L, (uint64_t)(int64_t)%s);" % val
        return "rec_u64(&L, (uint64_t)%s);" % val
    return None


def gen_rec_fn(model, e, wps, sym):
    """A recording driver function: logs what it receives, writes deterministic outputs."""
    params = ", ".join(p.type.decl(p.name) for p in e.proto.params) or "void"
    L = ["__attribute__((weak)) CUresult CUDAAPI %s(%s)" % (sym, params), "{", "    struct rec_line L;",
         '    rec_begin(&L, "%s");' % sym]
    # Array lengths as the call gave them, before any output overwrites a count they depend on.
    for w in wps:
        if w.count is not None and w.cat == "ptr" and w.role in ("in", "out", "inout"):
            L.append("    size_t %s_cnt = %s ? (size_t)(%s) : 0;" % (w.name, w.name, wide(w.count, wps)))
    outs = []
    k = 0
    for w in wps:
        f = rec_fmt(w, w.name)
        if f:
            L.append("    " + f)
            continue
        r = w.role
        if r == "str":
            L.append("    rec_str(&L, %s);" % w.name)
        elif r == "dev":
            L.append("    rec_ptr(&L, (uint64_t)(uintptr_t)%s);" % w.name)
        elif r in ("in", "inout") and w.count is None:
            if w.elem in ("scalar", "float", "dev", "marshal", "raw"):
                L.append("    rec_bytes(&L, %s, %s ? sizeof *%s : 0);" % (w.name, w.name, w.name))
            elif w.elem == "handle":
                L.append("    rec_handles(&L, (const void *)%s, %s ? 1 : 0);" % (w.name, w.name))
            else:
                L.append("    rec_bytes(&L, %s, %s ? sizeof *%s : 0);" % (w.name, w.name, w.name))
            if r == "inout":
                outs.append(w)
        elif r in ("in", "inout"):
            cnt = "%s_cnt" % w.name
            if w.elem == "handle":
                L.append("    rec_handles(&L, (const void *)%s, %s);" % (w.name, cnt))
            else:
                L.append("    rec_bytes(&L, %s, %s * %s);" % (w.name, cnt, w.elem_size_c()))
            if r == "inout":
                outs.append(w)
        else:
            L.append("    rec_o(&L, %s);" % w.name)
            outs.append(w)
    L.append("    rec_sep(&L);")
    for w in outs:
        k += 1
        r = w.role
        pre = "    if (%s) {" % w.name
        L.append(pre)
        if r == "strbuf":
            L.append('        rec_strbuf(&L, %s, (long long)(%s));' % (w.name, w.count))
        elif w.count is not None and r in ("out", "inout"):
            cnt = "%s_cnt" % w.name
            if w.elem == "handle":
                L.append("        for (size_t i = 0; i < %s; i++)" % cnt)
                L.append("            ((void **)%s)[i] = rec_new_handle(%d);" % (w.name, k))
            else:
                L.append("        rec_fill(%s, %s * %s, %d);" % (w.name, cnt, w.elem_size_c(), k))
        elif r in ("alloc", "global"):
            L.append("        *%s = rec_alloc((uint64_t)(%s));" % (w.name, "4096" if r == "global" else wide(w.count, wps)))
            L.append("        rec_ptr(&L, *%s);" % w.name)
        elif w.elem == "handle" and w.type.base == "CUcontext":
            L.append("        *%s = (CUcontext)rec_current_ctx();" % w.name)
            L.append("        rec_ptr(&L, (uint64_t)(uintptr_t)*%s);" % w.name)
        elif w.elem == "handle":
            L.append("        *%s = (%s)(uintptr_t)rec_new_handle(%d);" % (w.name, w.type.base, k))
            L.append("        rec_ptr(&L, (uint64_t)(uintptr_t)*%s);" % w.name)
        elif w.elem in ("scalar", "dev"):
            L.append("        *%s = (%s)rec_out_value(\"%s\", %d);" % (w.name, w.type.base, sym, k))
            L.append("        rec_u64(&L, (uint64_t)*%s);" % w.name)
        elif w.elem == "float":
            L.append("        *%s = (float)rec_out_value(\"%s\", %d);" % (w.name, sym, k))
            L.append("        rec_float(&L, *%s);" % w.name)
        else:
            L.append("        rec_fill(%s, sizeof *%s, %d);" % (w.name, w.name, k))
        L.append("    }")
    L.append("    rec_end(&L);")
    L.append("    return CUDA_SUCCESS;")
    L.append("}")
    return "\n".join(L) + "\n"


def gen_rec_c(model, entries, wps_of, hdr):
    out = ["/* %s */" % GEN_NOTE,
           "/* The recording test driver's functions (tests/recdrv/rec.h): each logs the arguments it",
           " * receives and writes deterministic outputs. Weak: tests/recdrv/rec_driver.c overrides the ones",
           " * gpu-server relies on for more than a log line (contexts, allocations, layouts, images). */",
           "#include <cuda.h>", "#include <cudaProfiler.h>", "#include <stdint.h>", "#include <string.h>", "",
           '#include "rec.h"', '#include "vg_gen.h"', "",
           '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"',
           '#pragma GCC diagnostic ignored "-Wunused-parameter"', ""]
    done = set()
    for e in entries:
        if e.private:
            continue
        wps = wps_of.get(e.name)
        planned = e.mode in ("gen", "client", "server") and wps is not None
        for sym in [e.name] + ([e.twin] if e.twin and e.twin_flag else []):
            if sym in done:
                continue
            done.add(sym)
            if planned:
                if sym != e.name:
                    out.append("%s;" % e.proto.decl(sym))
                out.append(gen_rec_fn(model, e, wps, sym))
            else:
                params = ", ".join(p.type.decl(p.name) for p in e.proto.params) or "void"
                if sym != e.name:
                    out.append("%s;" % e.proto.decl(sym))
                out.append("__attribute__((weak)) CUresult CUDAAPI %s(%s)\n{\n    rec_name_only(\"%s\");\n"
                           "    return CUDA_SUCCESS;\n}\n" % (sym, params, sym))
    return "\n".join(out)


def case_arg(model, w, i, wps):
    """(declaration lines, call expression, expected-log statement) of one argument of a case."""
    t = w.type
    n = w.name
    r = w.role
    decl, exp = [], None
    small = "%d" % (2 + i % 5)
    if w.cat == "value":
        if w.elem == "float":
            decl.append("float %s = 1.5f;" % n)
            return decl, n, "rec_float(&E, %s);" % n
        if w.elem == "handle" or t.base in INT_HANDLES:
            hk = model.handles[t.base].enum
            decl.append("%s %s = (%s)(uintptr_t)%s;" % (t.base, n, t.base,
                        "rec_fresh(t, %s)" % hk if r == "destroy" else "rec_h(t, %s)" % hk))
            return decl, n, "rec_ptr(&E, rec_real(t, %s, (uint64_t)(uintptr_t)%s));" % (hk, n)
        if w.elem == "dev":
            val = "rec_fresh_alloc(t)" if r == "free" else "rec_dev(t)"
            decl.append("CUdeviceptr %s = %s;" % (n, val))
            return decl, n, "rec_ptr(&E, %s);" % n
        if w.elem == "pod":
            decl.append("%s %s;" % (t.base, n))
            decl.append("rec_fill(&%s, sizeof %s, %d);" % (n, n, 100 + i))
            return decl, n, "rec_bytes(&E, &%s, sizeof %s);" % (n, n)
        if t.base == "CUdevice":
            decl.append("CUdevice %s = 0;" % n)
        else:
            decl.append("%s %s = (%s)%s;" % (t.base, n, t.base, small))
        if signed_type(w):
            return decl, n, "rec_u64(&E, (uint64_t)(int64_t)%s);" % n
        return decl, n, "rec_u64(&E, (uint64_t)%s);" % n
    # pointers
    if r == "str":
        decl.append('const char *%s = "recstr";' % n)
        return decl, n, "rec_str(&E, %s);" % n
    if r == "dev":
        decl.append("void *%s = (void *)(uintptr_t)rec_dev(t);" % n)
        return decl, n, "rec_ptr(&E, (uint64_t)(uintptr_t)%s);" % n
    if r == "strbuf":
        decl.append("char %s_buf[64];" % n)
        return decl, "%s_buf" % n, "rec_o(&E, %s_buf);" % n
    base = "uint8_t" if w.elem in ("void", "char") else t.base
    if w.count is None and r in ("in", "inout"):
        decl.append("%s %s_v;" % (base, n))
        if w.elem == "handle":
            hk = model.handles[t.base].enum
            decl.append("%s_v = (%s)(uintptr_t)rec_h(t, %s);" % (n, t.base, hk))
            exp = "rec_handles_of(&E, t, %s, &%s_v, 1);" % (hk, n)
        else:
            decl.append("rec_fill(&%s_v, sizeof %s_v, %d);" % (n, n, 100 + i))
            if w.elem == "pod":
                st = model.struct_of(t.base)
                for f in st.nulls:
                    decl.append("%s_v.%s = NULL;" % (n, f))
            if w.elem in ("scalar",) and r == "inout":
                decl.append("%s_v = (%s)%s;" % (n, t.base, small))
            exp = "rec_bytes(&E, &%s_v, sizeof %s_v);" % (n, n)
        decl.append("%s *%s = &%s_v;" % (base, n, n))
        return decl, n, exp
    if w.count is not None and r in ("in", "inout", "out"):
        cnt = "(size_t)(%s)" % wide(w.count, wps)
        decl.append("size_t %s_n = %s;" % (n, cnt))
        decl.append("%s %s_a[%s_n ? %s_n : 1];" % ("void *" if w.elem == "handle" else base, n, n, n) if w.elem == "handle"
                    else "%s %s_a[(%s_n ? %s_n : 1) * %s / sizeof(%s) + 1];" % (base, n, n, n, w.elem_size_c(), base))
        if w.elem == "handle":
            hk = model.handles[t.base].enum
            if r != "out":
                decl.append("for (size_t k = 0; k < %s_n; k++) %s_a[k] = (void *)(uintptr_t)rec_h(t, %s);" % (n, n, hk))
                exp = "rec_handles_of(&E, t, %s, %s_a, %s_n);" % (hk, n, n)
            else:
                exp = "rec_o(&E, %s_a);" % n
        else:
            if r != "out":
                decl.append("rec_fill(%s_a, %s_n * %s, %d);" % (n, n, w.elem_size_c(), 100 + i))
                exp = "rec_bytes(&E, %s_a, %s_n * %s);" % (n, n, w.elem_size_c())
            else:
                exp = "rec_o(&E, %s_a);" % n
        return decl, "(%s *)(void *)%s_a" % (t.base if w.elem not in ("void",) else "void", n), exp
    # single outputs
    decl.append("%s %s_v;" % (t.base, n))
    decl.append("memset(&%s_v, 0, sizeof %s_v);" % (n, n))
    decl.append("%s *%s = &%s_v;" % (t.base, n, n))
    return decl, n, "rec_o(&E, %s);" % n


def gen_case(model, e, wps):
    name = e.name
    L = ["static void case_%s(struct rec_test *t)" % name, "{"]
    calls, exps = [], []
    # count parameters first (arrays size from them)
    def rank(w):
        if w.cat == "value":
            return 0
        return 2 if w.count is not None and w.role in ("in", "inout", "out") else 1
    order = sorted(range(len(wps)), key=lambda i: rank(wps[i]))
    decls = {}
    for i in order:
        d, c, x = case_arg(model, wps[i], i, wps)
        decls[i] = d
        calls.append((i, c))
        exps.append((i, x))
    for i in order:
        for d in decls[i]:
            L.append("    " + d)
    L.append("    struct rec_line E;")
    L.append('    rec_begin(&E, "%s");' % name)
    for i, x in sorted(exps):
        L.append("    " + x)
    L.append("    rec_sep(&E);")
    args = ", ".join(c for i, c in sorted(calls))
    L.append("    CUresult rc = %s(%s);" % (name, args))
    L.append('    rec_check(t, "%s", rc, &E, %d);' % (name, 1 if e.kind == "pipelined" else 0))
    # outputs returned to the caller
    k = 0
    for w in wps:
        r = w.role
        if r in ("out", "inout", "new", "get", "retain", "alloc", "global", "strbuf") or (r == "inout"):
            k += 1
            n = w.name
            if r == "strbuf":
                L.append('    rec_check_str(t, "%s", %s_buf, (long long)(%s));' % (name, n, w.count))
            elif w.count is not None and r in ("out", "inout"):
                if w.elem == "handle":
                    L.append('    rec_check_ids(t, "%s", %s, %s_a, %s_n);' % (name, model.handles[w.type.base].enum, n, n))
                else:
                    L.append('    rec_check_fill(t, "%s", %s_a, %s_n * %s, %d);' % (name, n, n, w.elem_size_c(), k))
            elif r in ("alloc", "global"):
                L.append('    rec_check_nonzero(t, "%s", (uint64_t)%s_v);' % (name, n))
            elif w.elem == "handle" and w.type.base == "CUcontext":
                L.append('    rec_check_ctx(t, "%s", (uint64_t)(uintptr_t)%s_v);' % (name, n))
            elif w.elem == "handle":
                L.append('    rec_check_ids(t, "%s", %s, (void *const *)&%s_v, 1);' % (name, model.handles[w.type.base].enum, n))
            elif w.elem in ("scalar", "dev", "float"):
                L.append('    rec_check_value(t, "%s", (double)%s_v, (double)(%s)rec_out_value("%s", %d));'
                         % (name, n, w.type.base, name, k))
            else:
                L.append('    rec_check_fill(t, "%s", &%s_v, sizeof %s_v, %d);' % (name, n, n, k))
    L.append("}")
    return "\n".join(L) + "\n"


def gen_hostile(model, e, wps):
    """Hostile variants of a generated case: all arguments valid but one handle (a forged id of
    the right kind), one device address (outside every allocation) or one element of a handle
    array. Each must fail, and the driver must never see the call. Returns [(fn name, what, code)]."""
    name = e.name
    decls, calls = {}, {}
    for i, w in enumerate(wps):
        d, c, _ = case_arg(model, w, i, wps)
        decls[i], calls[i] = d, c
    def rank(w):
        if w.cat == "value":
            return 0
        return 2 if w.count is not None and w.role in ("in", "inout", "out") else 1
    order = sorted(range(len(wps)), key=lambda i: rank(wps[i]))
    out = []
    for j, w in enumerate(wps):
        t, n, r = w.type, w.name, w.role
        hk = model.handles[t.base].enum if (w.elem == "handle" or t.base in INT_HANDLES) and t.base in model.handles else None
        if w.cat == "value" and hk and r in ("handle", "opt", "destroy"):
            what, mut = "handle %s" % n, ["%s = (%s)(uintptr_t)rec_forged(t, %s);" % (n, t.base, hk)]
        elif w.cat == "value" and w.elem == "dev" and r in ("dev", "free"):
            what, mut = "address %s" % n, ["%s = (CUdeviceptr)0x1000;" % n]
        elif w.cat == "ptr" and r == "dev":
            what, mut = "address %s" % n, ["%s = (void *)(uintptr_t)0x1000;" % n]
        elif w.cat == "ptr" and hk and r == "in" and w.count is None:
            what, mut = "handle *%s" % n, ["%s_v = (%s)(uintptr_t)rec_forged(t, %s);" % (n, t.base, hk)]
        elif w.cat == "ptr" and hk and r in ("in", "inout") and w.count is not None:
            what, mut = "handle %s[0]" % n, ["if (!%s_n)" % n, "    return;",
                                              "%s_a[0] = (void *)(uintptr_t)rec_forged(t, %s);" % (n, hk)]
        else:
            continue
        fn = "hostile_%s_%d" % (name, j)
        L = ["static void %s(struct rec_test *t)" % fn, "{"]
        for i in order:
            L += ["    " + d for d in decls[i]]
        L += ["    " + m for m in mut]
        L.append('    unsigned before = rec_seen(t, "%s");' % name)
        L.append("    CUresult rc = %s(%s);" % (name, ", ".join(calls[i] for i in range(len(wps)))))
        L.append('    rec_check_refused(t, "%s", "%s", rc, before, %d);' % (name, what, 1 if e.kind == "pipelined" else 0))
        L.append("}")
        out.append((fn, what, "\n".join(L) + "\n"))
    return out


def generated_case_ok(e, wps):
    """Whether a generated case can choose the call's arguments: not when a structure needs real
    handles inside (marshalled), or a size or charge is computed from a structure's fields
    (patterned bytes would make absurd sizes): tests/recdrv/test_recdrv.c has those cases."""
    if any(w.elem == "marshal" for w in wps):
        return False
    ptrs = {w.name for w in wps if w.cat == "ptr" and w.elem in ("pod", "raw")}
    for w in wps:
        exprs = [w.count or ""] + ([w.spec.charge or "", w.spec.charge_dev or ""] if w.spec else [])
        for x in exprs:
            if any(re.search(r"\b%s\b" % re.escape(p), x) for p in ptrs):
                return False
    return True


def gen_rec_cases(model, entries, wps_of):
    out = ["/* %s */" % GEN_NOTE,
           "/* One case per call both of whose sides are generated: the arguments go through the stub and",
           " * gpu-server to the recording driver, whose log must show them (handles as the driver's own",
           " * objects), and the outputs it wrote must come back. tests/recdrv/test_recdrv.c runs them. */",
           "#include <cuda.h>", "#include <cudaProfiler.h>", "#include <stdint.h>", "#include <string.h>", "",
           '#include "calls.h"', '#include "cuapi_handles.h"', '#include "rec.h"', '#include "vg_gen.h"', "",
           '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"', ""]
    table, hostile = [], []
    for e in entries:
        if e.mode != "gen" or e.private:
            continue
        wps = wps_of[e.name]
        if not generated_case_ok(e, wps):
            continue
        out.append(gen_case(model, e, wps))
        table.append('    {VG_CALL_%s, "%s", case_%s},' % (e.name, e.name, e.name))
        for fn, what, code in gen_hostile(model, e, wps):
            out.append(code)
            hostile.append('    {VG_CALL_%s, "%s: %s", %s},' % (e.name, e.name, what, fn))
    out.append("const struct rec_case rec_generated_cases[] = {")
    out += table
    out.append("};")
    out.append("const unsigned rec_generated_count = %d;" % len(table))
    out.append("/* Hostile variants (gen_hostile): a forged handle or an address outside the session's memory. */")
    out.append("const struct rec_case rec_hostile_cases[] = {")
    out += hostile
    out.append("};")
    out.append("const unsigned rec_hostile_count = %d;" % len(hostile))
    out.append("")
    return "\n".join(out)

# ---- whole-list checks and outputs ---------------------------------------------------------------

def read_sources(srcdir, sub):
    text = {}
    d = os.path.join(srcdir, sub)
    for f in sorted(os.listdir(d)):
        if f.endswith(".c"):
            with open(os.path.join(d, f)) as fh:
                text[os.path.join(sub, f)] = fh.read()
    return text


def find_def(sources, name):
    """Files defining the function: by its symbol, or by the name cuda.h's macro maps to it
    (hand-written code says cuCtxDestroy for cuCtxDestroy_v2)."""
    names = {name, re.sub(r"_v\d+$", "", name)}
    found = []
    for n in names:
        rx = re.compile(r"CUresult\s+CUDAAPI\s+%s\s*\([^;{]*\)\s*\{" % re.escape(n))
        found += [f for f, t in sources.items() if rx.search(t)]
    return found


def find_server(sources, name):
    rx = re.compile(r"VG_SERVER_CALL\(\s*%s\s*\)" % re.escape(name))
    return [f for f, t in sources.items() if rx.search(t)]


def validate(hdr, model, reasons, entries, twins, srcdir):
    listed = {}
    for e in entries:
        if e.private:
            if e.mode != "manual" or not e.kind:
                fail("line %d: %s: calls of our own (vg*) are 'KIND manual'" % (e.line, e.name))
            listed[e.name] = e
            continue
        if e.name not in hdr.protos:
            fail("line %d: %s is not declared by cuda.h (after its macros: is it %s_v2?)" % (e.line, e.name, e.name))
        e.proto = hdr.protos[e.name]
        e.twin = twins.get(e.name)
        listed[e.name] = e
    missing = sorted(n for n in hdr.protos if n not in listed)
    if missing:
        fail("cuda.h declares %d function(s) protocol/cuda.calls does not list: %s\n"
             "  (gen_calls.py CC INCDIR protocol/cuda.calls --missing prints lines to start from)"
             % (len(missing), ", ".join(missing)))
    for st in model.structs.values():
        if st.mode == "pod":
            check_struct_pod(model, st)
    client_only = read_sources(srcdir, "client")
    client_src = dict(client_only)
    client_src.update(read_sources(srcdir, "common"))  # both libcuda.so.1 builds (weak where shared)
    server_src = read_sources(srcdir, "server")
    wps_of = {}
    errors = []
    for e in entries:
        try:
            if e.private:
                if not find_server(server_src, e.name):
                    fail("line %d: %s is manual but no VG_SERVER_CALL(%s) is defined in server/" % (e.line, e.name, e.name))
                continue
            wps = classify(model, e)
            wps_of[e.name] = wps
            sp = stream_param(wps)
            e.twin_flag = bool(e.twin) and sp is None and e.wire
            if e.mode in ("gen", "server", "client"):
                check_generic(e, wps)
            if e.mode in ("manual", "server") and not find_server(server_src, e.name):
                fail("line %d: %s is %s but no VG_SERVER_CALL(%s) is defined in server/" % (e.line, e.name, e.mode, e.name))
            if e.mode in ("manual", "client", "local"):
                # A twin left undefined falls back to a jump to the legacy-stream symbol
                # (common/gen_cuapi.py): right only for calls that do not involve a stream.
                needs_twin = e.twin and (e.mode != "local" or sp is not None or e.twin.endswith("_ptds"))
                for sym in [e.name] + ([e.twin] if needs_twin else []):
                    if not find_def(client_src, sym):
                        fail("line %d: %s is %s but the stub (client/) does not define %s" % (e.line, e.name, e.mode, sym))
            if e.mode in ("gen", "server"):
                for sym in [e.name] + ([e.twin] if e.twin else []):
                    where = find_def(client_only, sym)
                    if where:
                        fail("line %d: %s is generated for the stub, but %s defines it too" % (e.line, sym, where[0]))
        except ListError as exc:
            errors.append(str(exc))
    for t in marshal_types(entries, wps_of):
        if not any(re.search(r"\bvg_mdec_%s\s*\(" % t, x) for x in server_src.values()):
            errors.append("structure %s is marshalled by hand, but server/ does not define vg_mdec_%s" % (t, t))
        if not any(re.search(r"\bvg_menc_%s\s*\(" % t, x) for x in client_only.values()):
            errors.append("structure %s is marshalled by hand, but client/ does not define vg_menc_%s" % (t, t))
    if errors:
        fail("\n".join(errors))
    return wps_of


def api_hash(entries, wps_of, model):
    h = hashlib.sha256()
    for i, e in enumerate(x for x in entries if x.wire):
        h.update(("%d %s %s %s|" % (i, e.name, e.kind, e.mode)).encode())
        for w in wps_of.get(e.name, []):
            h.update(("%s:%s:%s:%s:%s|" % (w.name, w.type, w.role, w.count, w.nullable)).encode())
        h.update(("twin=%s;" % e.twin_flag).encode())
    return int.from_bytes(h.digest()[:8], "little")


def write(path, text):
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if old != text:
        with open(path, "w") as f:
            f.write(text)


def gen_calls_h(entries, hashv):
    wire = [e for e in entries if e.wire]
    kinds = {"reply": "VG_REPLY", "pipelined": "VG_PIPELINED", "syncing": "VG_SYNCING"}
    out = ["/* %s */" % GEN_NOTE,
           "/* The forwarded calls: VG_CALLS(X) expands X(NAME, kind); the wire id of a call is its position",
           " * (enum vg_call). Both sides compare VG_API_HASH in the handshake, so a stub and a server built",
           " * from different lists refuse each other with a clear message. */",
           "#ifndef VG_CALLS_H", "#define VG_CALLS_H", "",
           "#define VG_REPLY 0", "#define VG_PIPELINED 1", "#define VG_SYNCING 2", "",
           "#define VG_API_HASH 0x%016xull" % hashv, "",
           "#define VG_CALLS(X) \\"]
    out += ["    X(%s, %s) \\" % (e.name, kinds[e.kind]) for e in wire]
    out += ["", "enum vg_call {",
            "#define VG_CALL_ENUM(name, kind) VG_CALL_##name,",
            "    VG_CALLS(VG_CALL_ENUM)",
            "#undef VG_CALL_ENUM",
            "    VG_CALL_COUNT",
            "};", "",
            "/* The kind of call id (VG_REPLY for an id out of range: the server rejects those anyway). */",
            "static inline int vg_call_kind(unsigned id)", "{",
            "    static const unsigned char kinds[] = {",
            "#define VG_CALL_KIND(name, kind) kind,",
            "        VG_CALLS(VG_CALL_KIND)",
            "#undef VG_CALL_KIND",
            "    };",
            "    return id < VG_CALL_COUNT ? kinds[id] : VG_REPLY;", "}", "",
            "/* \"cuMemAlloc_v2\" for VG_CALL_cuMemAlloc_v2, for logs; \"?\" out of range. */",
            "static inline const char *vg_call_name(unsigned id)", "{",
            "    static const char *const names[] = {",
            "#define VG_CALL_NAME(name, kind) #name,",
            "        VG_CALLS(VG_CALL_NAME)",
            "#undef VG_CALL_NAME",
            "    };",
            "    return id < VG_CALL_COUNT ? names[id] : \"?\";", "}", "", "#endif", ""]
    return "\n".join(out)


def gen_drv_h(hdr, entries, inc, cc):
    import gen_cuapi
    names = set()
    for defines in ([], ["-D__CUDA_API_PER_THREAD_DEFAULT_STREAM"], ["-D__CUDA_API_VERSION_INTERNAL"]):
        names |= gen_cuapi.declared_names(cc, inc, defines, {})
    version = {}
    for base, ver, variant, sym in gen_cuapi.procaddr_entries(inc, names):
        version[sym] = (base, max(ver, version.get(sym, (base, 0))[1]))
    twin_entries = [e for e in entries if e.twin and e.twin_flag]
    syms = sorted(set(hdr.protos) | {e.twin for e in twin_entries})
    out = ["/* %s */" % GEN_NOTE,
           "/* VG_DRV_FUNCS(X): X(symbol, base name, CUDA version of its ABI) for every driver entry point",
           " * gpu-server may call (server/driver.h). */", "",
           "/* Per-thread-stream twins the handlers call (cuda.h declares them only for programs built",
           " * with per-thread default streams). */"]
    out += ["%s;" % e.proto.decl(e.twin) for e in twin_entries]
    out += ["", "#define VG_DRV_FUNCS(X) \\"]
    for sym in syms:
        base, ver = version.get(sym, (re.sub(r"(_v\d+)?(_ptsz|_ptds)?$", "", sym), 0))
        out.append("    X(%s, \"%s\", %d) \\" % (sym, base, ver))
    out.append("    /* end of VG_DRV_FUNCS */")
    out.append("")
    return "\n".join(out)


def marshal_types(entries, wps_of):
    """Structures the generated calls marshal by hand-written functions."""
    types = set()
    for e in entries:
        for w in wps_of.get(e.name, []):
            if w.elem == "marshal" and e.gen_server:
                types.add(w.type.base)
    return sorted(types)


def gen_server_c(model, entries, wps_of):
    out = ["/* %s */" % GEN_NOTE,
           "/* gpu-server's handler of every forwarded call (session_priv.h, vg_gen.h): handles through the",
           " * session's table, device ranges and counts checked, memory charged, then the driver. */",
           "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>", "",
           '#include "calls.h"', '#include "session_priv.h"', '#include "vg_gen.h"', "",
           "/* Deprecated driver functions are forwarded as they are: the program chose them. */",
           '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"', ""]
    out += ["CUresult vg_mdec_%s(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, %s *out);" % (t, t)
            for t in marshal_types(entries, wps_of)]
    out.append("")
    table = []
    for e in entries:
        if not e.wire:
            continue
        if e.gen_server:
            out.append(gen_server(model, e, wps_of[e.name]))
            table.append("    [VG_CALL_%s] = h_%s," % (e.name, e.name))
        else:
            out.append("CUresult vg_srv_%s(struct vg_sess *s, const struct vg_in *in, struct vg_result *res);" % e.name)
            table.append("    [VG_CALL_%s] = vg_srv_%s," % (e.name, e.name))
    out.append("")
    out.append("const vg_handler_fn vg_handlers[VG_CALL_COUNT] = {")
    out += table
    out.append("};")
    out.append("")
    kinds, streams = work_tables(model, entries, wps_of)
    out.append("/* Device work for the scheduler (work= in the list): its kind, and the argument naming its")
    out.append(" * stream (-1: the legacy stream). */")
    out.append("const unsigned char vg_work_kind[VG_CALL_COUNT] = {")
    out += kinds
    out.append("};")
    out.append("const signed char vg_work_stream[VG_CALL_COUNT] = {")
    out += streams
    out.append("};")
    out.append("")
    return "\n".join(out)


def work_tables(model, entries, wps_of):
    """vg_work_kind[] and vg_work_stream[] initializers. A generated layout's stream argument is
    found from the plan; a hand-written layout must say it (work=KIND:ARG)."""
    kinds, streams = [], []
    for e in entries:
        if not e.work:
            continue
        if not e.wire:
            fail("line %d: %s: work= on a call that is not forwarded" % (e.line, e.name))
        planned = e.mode in ("gen", "client", "server") and not e.private
        if planned:
            if e.work_arg is not None:
                fail("line %d: %s: the generated layout says which argument is the stream; drop ':%s'"
                     % (e.line, e.name, e.work_arg))
            idx = -1
            for i, (k, w) in enumerate(plan(model, e, wps_of[e.name])["args"]):
                if k == "value" and w.type.base == "CUstream":
                    idx = i
        else:
            if e.work_arg is None:
                fail("line %d: %s: a hand-written layout must say its stream argument (work=%s:ARG or :legacy)"
                     % (e.line, e.name, e.work))
            idx = -1 if e.work_arg == "legacy" else int(e.work_arg)
        kinds.append("    [VG_CALL_%s] = %s," % (e.name, "VG_WORK_KERNEL" if e.work == "kernel" else "VG_WORK_COPY"))
        streams.append("    [VG_CALL_%s] = %d," % (e.name, idx))
    return kinds, streams


def gen_stub_c(model, entries, wps_of):
    out = ["/* %s */" % GEN_NOTE,
           "/* The stub's wrapper of every call whose marshalling the list describes (client/call.h). */",
           "#include <cuda.h>", "#include <cudaProfiler.h>", "#include <stdint.h>", "#include <string.h>", "",
           '#include "call.h"', '#include "vg_gen.h"', "",
           "/* Deprecated driver functions are forwarded as they are: the program chose them. */",
           '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"', ""]
    out += ["CUresult vg_menc_%s(struct vg_cw *c, const %s *in);" % (t, t) for t in marshal_types(entries, wps_of)]
    out.append("")
    for e in entries:
        if e.wire and e.gen_client:
            out.append(gen_client(model, e, wps_of[e.name]))
    return "\n".join(out)


def describe(w):
    r = w.role
    cnt = "[%s]" % w.count if w.count else ""
    q = "?" if w.nullable else ""
    return "%s %s%s%s" % (w.name, r, q, cnt)


def gen_doc(model, reasons, entries, wps_of, hashv):
    wire = [e for e in entries if e.wire]
    L = ["<!-- %s -->" % GEN_NOTE, "# vgpu calls (wire layout)", "",
         "API hash `0x%016x` (VG_API_HASH, compared in the handshake). Encoding rules: "
         "protocol/README.md. `args` are Call.args in order, `bulk` the Call's bulk segments in "
         "order, `outs` Reply.outs, `reply bulk` the Reply's bulk segments; `?` marks an optional "
         "pointer (its presence is an argument of its own, before it)." % hashv, "",
         "| id | call | kind | args | bulk | outs | reply bulk |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, e in enumerate(wire):
        if not e.gen_server or e.private:
            L.append("| %d | %s | %s | hand-written (%s) | | | |" % (i, e.name, e.kind, e.mode))
            continue
        P = plan(model, e, wps_of[e.name])
        args = []
        for k, w in P["args"]:
            if k == "perthread":
                args.append("per-thread stream flag")
            elif k == "present":
                args.append("%s present" % w.name)
            elif k == "inval":
                args.append("*%s" % w.name)
            else:
                args.append(describe(w))
        strs = [w.name + " (Call.name)" for w in wps_of[e.name] if w.role == "str"]
        bulk = [describe(w) for w in P["bulk"]]
        outs = [describe(w) for k, w in P["outs"]] + [w.name + " (Reply.str)" for w in wps_of[e.name] if w.role == "strbuf"]
        rb = [describe(w) for w in P["rbulk"]]
        L.append("| %d | %s | %s | %s | %s | %s | %s |" % (i, e.name, e.kind, ", ".join(args + strs),
                                                         ", ".join(bulk), ", ".join(outs), ", ".join(rb)))
    L += ["", "## Not forwarded", "", "| function | reason |", "| --- | --- |"]
    for e in entries:
        if e.mode == "unsupported":
            L.append("| %s | %s |" % (e.name, reasons[e.reason]))
    L += ["", "## Answered in the stub", ""]
    L.append(", ".join(e.name for e in entries if e.mode == "local"))
    n_fwd = sum(1 for e in entries if not e.private and e.mode != "unsupported")
    n_uns = sum(1 for e in entries if e.mode == "unsupported")
    L += ["", "%d cuda.h functions served (%d forwarded, %d in the stub), %d not." %
          (n_fwd, sum(1 for e in entries if e.wire and not e.private), sum(1 for e in entries if e.mode == "local"), n_uns), ""]
    return "\n".join(L)


def gen_handles_h(model):
    kinds = list(model.handles.values())
    out = ["/* %s */" % GEN_NOTE,
           "/* Handle kinds of the session table, in teardown order (the list's 'handle' lines). */",
           "#ifndef VG_CUAPI_HANDLES_H", "#define VG_CUAPI_HANDLES_H", "",
           "enum htype {", "    H_NONE = 0,"]
    out += ["    %s, /* %s */" % (k.enum, k.ctype) for k in kinds]
    out += ["    H_TYPES", "};", "", "#endif", ""]
    return "\n".join(out)


def gen_handles_c(model):
    kinds = list(model.handles.values())
    out = ["const struct vg_handle_kind vg_handle_kinds[H_TYPES] = {"]
    for k in kinds:
        parents = " | ".join("(1u << %s)" % model.handles[p].enum for p in (k.parent.split("|") if k.parent else [])) or "0"
        out.append('    [%s] = {"%s", %s, %d, %d},' % (k.enum, k.ctype, parents, 1 if k.identity else 0, 1 if k.destroy else 0))
    out.append("};")
    out.append("")
    out.append("void vg_handle_destroy_real(const struct vg_drv *d, int type, void *real)")
    out.append("{")
    out.append("    switch (type) {")
    for k in kinds:
        if k.destroy:
            out.append("    case %s:" % k.enum)
            out.append("        if (d->%s)" % k.destroy)
            out.append("            d->%s((%s)(uintptr_t)real);" % (k.destroy, k.ctype))
            out.append("        break;")
    out.append("    default:")
    out.append("        break;")
    out.append("    }")
    out.append("}")
    out.append("")
    for k in kinds:
        if k.parent:
            for p in k.parent.split("|"):
                if p not in model.handles:
                    fail("handle %s: parent %s is not a handle kind" % (k.ctype, p))
    return "\n".join(out)


def generate(hdr, model, reasons, entries, twins, srcdir, outdir, inc, cc):
    wps_of = validate(hdr, model, reasons, entries, twins, srcdir)
    hashv = api_hash(entries, wps_of, model)
    os.makedirs(outdir, exist_ok=True)
    write(os.path.join(outdir, "calls.h"), gen_calls_h(entries, hashv))
    write(os.path.join(outdir, "cuapi_drv.h"), gen_drv_h(hdr, entries, inc, cc))
    write(os.path.join(outdir, "cuapi_handles.h"), gen_handles_h(model))
    write(os.path.join(outdir, "cuapi_server.c"), gen_server_c(model, entries, wps_of) + gen_handles_c(model))
    write(os.path.join(outdir, "cuapi_stub.c"), gen_stub_c(model, entries, wps_of))
    write(os.path.join(outdir, "calls.md"), gen_doc(model, reasons, entries, wps_of, hashv))
    write(os.path.join(outdir, "cuapi_rec.c"), gen_rec_c(model, entries, wps_of, hdr))
    write(os.path.join(outdir, "cuapi_rec_cases.c"), gen_rec_cases(model, entries, wps_of))

# ---- main ----------------------------------------------------------------------------------------

def per_thread_twins(pt_hdr, default_names):
    """{default symbol: per-thread symbol} from the header read with per-thread default streams."""
    twins = {}
    for n in pt_hdr.protos:
        m = re.fullmatch(r"(.*)_(ptsz|ptds)", n)
        if m and m.group(1) in default_names:
            twins[m.group(1)] = n
    return twins


def load_all(cc, inc, list_path):
    hdr = cudahdr.load(cc, inc)
    pt = cudahdr.load(cc, inc, ["-D__CUDA_API_PER_THREAD_DEFAULT_STREAM"])
    handles, structs, reasons, entries = read_list(list_path)
    model = Model(hdr, handles, structs)
    twins = per_thread_twins(pt, set(hdr.protos))
    return hdr, model, reasons, entries, twins


def main(argv):
    if len(argv) == 5 and argv[4] == "--missing":
        cc, inc, lst = argv[1:4]
        hdr, model, reasons, entries, twins = load_all(cc, inc, lst)
        listed = {e.name for e in entries}
        for name in sorted(hdr.protos):
            if name not in listed:
                print(suggest(model, name, hdr.protos[name]))
        return 0
    if len(argv) != 6:
        sys.stderr.write(__doc__)
        return 2
    cc, inc, lst, srcdir, outdir = argv[1:]
    hdr, model, reasons, entries, twins = load_all(cc, inc, lst)
    generate(hdr, model, reasons, entries, twins, srcdir, outdir, inc, cc)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (ListError, cudahdr.HeaderError) as exc:
        sys.stderr.write("gen_calls.py: %s\n" % exc)
        sys.exit(1)
