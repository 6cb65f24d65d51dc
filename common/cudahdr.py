"""Reads the toolkit's cuda.h (and cudaProfiler.h) as the C compiler sees it.

Shared by common/gen_cuapi.py (the entry-point list, cuGetProcAddress) and protocol/gen_calls.py
(the wire code generated from protocol/cuda.calls). Nothing here knows about vgpu: it only answers
"which functions does the header declare, with which parameters" and "what is this type".

The header is run through the preprocessor (cc -E -P), so macros such as cuMemAlloc ->
cuMemAlloc_v2 are applied, then tokenized; typedefs and prototypes are read from the tokens.
Anything this reader does not understand stops the build (HeaderError), so that a new toolkit that
changes the header's shape is noticed rather than silently mis-read.
"""
import re
import subprocess

HEADERS = ("cuda.h", "cudaProfiler.h")

BUILTIN_SCALARS = {
    "char", "signed char", "unsigned char", "short", "unsigned short", "short int",
    "unsigned short int", "int", "unsigned", "unsigned int", "signed int", "long", "long int",
    "unsigned long", "unsigned long int", "long long", "long long int", "unsigned long long",
    "unsigned long long int", "float", "double", "size_t", "uint32_t", "uint64_t", "int32_t",
    "int64_t", "uint8_t", "uint16_t", "int8_t", "int16_t",
}


class HeaderError(Exception):
    pass


def preprocess(cc, include_dir, defines=()):
    src = "".join("#include <%s>\n" % h for h in HEADERS)
    res = subprocess.run([cc, "-E", "-P", "-I", include_dir, *defines, "-"], input=src,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise HeaderError("preprocessing cuda.h failed:\n" + res.stderr)
    return res.stdout


_TOKEN = re.compile(r"\s*(?:([A-Za-z_]\w*)|(0[xX][0-9a-fA-F]+\w*|\d[\w.]*)|(\.\.\.|->|<<|>>|[^\sA-Za-z_0-9]))")


def tokenize(text):
    # Alignment and attributes say nothing about what crosses the wire.
    text = re.sub(r"\b_Alignas\s*\([^()]*\)", " ", text)
    text = re.sub(r"\b__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)", " ", text)
    toks = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise HeaderError("cannot tokenize near %r" % text[pos:pos + 40])
        tok = m.group(1) or m.group(2) or m.group(3)
        if tok is None:
            break
        if tok == '"':
            end = text.index('"', m.end())
            tok = text[m.end() - 1:end + 1]
            pos = end + 1
        else:
            pos = m.end()
        toks.append(tok)
    return toks


class CType:
    """A parameter or field type: base name, pointer depth, const on the pointee."""

    def __init__(self, base, ptr, const):
        self.base = base
        self.ptr = ptr
        self.const = const

    def __str__(self):
        return ("const " if self.const else "") + self.base + " *" * self.ptr

    def decl(self, name):
        return ("%s%s%s" % (self, "" if self.ptr else " ", name)).replace("* ", "*") \
            if self.ptr else "%s %s" % (self, name)


class Param:
    def __init__(self, name, ctype, index):
        self.name = name
        self.type = ctype
        self.index = index


class Proto:
    def __init__(self, name, params):
        self.name = name
        self.params = params

    def decl(self, name=None):
        ps = ", ".join(p.type.decl(p.name) for p in self.params) or "void"
        return "CUresult CUDAAPI %s(%s)" % (name or self.name, ps)


def parse_type(tokens):
    """[tokens of a declaration without its name] -> CType."""
    const = False
    ptr = 0
    words = []
    for t in tokens:
        if t == "const":
            if ptr == 0:
                const = True
            continue
        if t in ("volatile", "restrict", "__restrict", "struct", "enum", "union", "CUDAAPI",
                 "__extension__"):
            continue
        if t == "*":
            ptr += 1
            continue
        if ptr:
            raise HeaderError("type with words after '*': %s" % " ".join(tokens))
        words.append(t)
    if not words:
        raise HeaderError("empty type in %s" % " ".join(tokens))
    return CType(" ".join(words), ptr, const)


def split_top(tokens, sep=","):
    parts, cur, depth = [], [], 0
    for t in tokens:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == sep and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        parts.append(cur)
    return parts


def parse_params(tokens, fname):
    if tokens == ["void"] or not tokens:
        return []
    params = []
    for i, p in enumerate(split_top(tokens)):
        if "(" in p:
            raise HeaderError("%s: function-pointer parameter written inline" % fname)
        if "[" in p:
            raise HeaderError("%s: array parameter" % fname)
        if len(p) < 2 or not re.fullmatch(r"[A-Za-z_]\w*", p[-1]) or p[-1] in ("const", "void"):
            raise HeaderError("%s: parameter %d has no name (%s)" % (fname, i, " ".join(p)))
        params.append(Param(p[-1], parse_type(p[:-1]), i))
    return params


class Header:
    """typedefs: name -> (kind, info) where kind is one of
         'scalar'  info = builtin name             'enum'    info = None
         'opaque'  info = struct tag (pointer to an incomplete struct: a driver handle)
         'struct'/'union'  info = body tokens      'funcptr' info = None
         'alias'   info = CType of the target
       tags: struct/union tag -> (kind, body tokens) for tagged definitions.
       protos: name -> Proto (CUresult functions only)."""

    def __init__(self, text):
        self.typedefs = {}
        self.tags = {}
        self.protos = {}
        self._read(tokenize(text))

    def _read(self, toks):
        i, n = 0, len(toks)
        while i < n:
            t = toks[i]
            if t == "typedef":
                j = self._stmt_end(toks, i)
                self._typedef(toks[i + 1:j])
                i = j + 1
            elif t in ("struct", "union", "enum") and i + 2 < n and toks[i + 2] == "{":
                j = self._stmt_end(toks, i)
                body = toks[i + 3:self._match(toks, i + 2)]
                if t != "enum":
                    self.tags[toks[i + 1]] = (t, body)
                i = j + 1
            elif t == "CUresult" and i + 2 < n and toks[i + 2] == "(" and toks[i + 1].startswith("cu"):
                close = self._match(toks, i + 2)
                name = toks[i + 1]
                self.protos[name] = Proto(name, parse_params(toks[i + 3:close], name))
                i = self._stmt_end(toks, i) + 1
            else:
                i += 1

    @staticmethod
    def _match(toks, i):
        pairs = {"(": ")", "{": "}", "[": "]"}
        want, depth = pairs[toks[i]], 0
        for j in range(i, len(toks)):
            if toks[j] in pairs:
                depth += 1
            elif toks[j] in pairs.values():
                depth -= 1
                if depth == 0:
                    if toks[j] != want:
                        raise HeaderError("unbalanced brackets")
                    return j
        raise HeaderError("unbalanced brackets at end of header")

    def _stmt_end(self, toks, i):
        depth = 0
        for j in range(i, len(toks)):
            if toks[j] in "({[":
                depth += 1
            elif toks[j] in ")}]":
                depth -= 1
            elif toks[j] == ";" and depth == 0:
                return j
        raise HeaderError("statement without ';'")

    def _typedef(self, t):
        if not t:
            return
        if t[0] == "__extension__":
            t = t[1:]
        if "(" in t and t[0] not in ("struct", "union", "enum"):
            # function pointer: R (CUDAAPI? *NAME)(...)
            k = t.index("(")
            inner = t[k + 1:self._match(t, k)]
            names = [x for x in inner if re.fullmatch(r"[A-Za-z_]\w*", x) and x != "CUDAAPI"]
            if "*" in inner and names:
                self.typedefs[names[-1]] = ("funcptr", None)
            return
        if t[0] in ("struct", "union", "enum") and "{" in t:
            k = t.index("{")
            end = self._match(t, k)
            body = t[k + 1:end]
            tag = t[1] if k == 2 else None
            declarators = split_top(t[end + 1:])
            kind = t[0]
            if tag and kind != "enum":
                self.tags[tag] = (kind, body)
            for d in declarators:
                if d == [d[-1]]:
                    self.typedefs[d[-1]] = ("enum", None) if kind == "enum" else (kind, body)
                elif d[:-1] == ["*"] * (len(d) - 1):
                    base = tag or "<anon>"
                    self.typedefs[d[-1]] = ("alias", CType(base, len(d) - 1, False))
            return
        name = t[-1]
        if t[0] in ("struct", "union") and len(t) == 4 and t[2] == "*":
            self.typedefs[name] = ("opaque", t[1])
            return
        if t[0] in ("struct", "union") and len(t) == 3:
            self.typedefs[name] = ("alias", CType("struct " + t[1], 0, False))
            return
        if t[0] == "enum" and len(t) == 3:
            self.typedefs[name] = ("enum", None)
            return
        ct = parse_type(t[:-1])
        if ct.ptr == 0 and ct.base in BUILTIN_SCALARS:
            self.typedefs[name] = ("scalar", ct.base)
        else:
            self.typedefs[name] = ("alias", ct)

    def resolve(self, base):
        """Follows aliases: -> (kind, info, final name)."""
        seen = set()
        name = base
        while True:
            if name in BUILTIN_SCALARS:
                return ("scalar", name, name)
            if name == "void":
                return ("void", None, name)
            if name.startswith("struct "):
                tag = name[7:]
                if tag in self.tags:
                    kind, body = self.tags[tag]
                    return (kind, body, name)
                return ("incomplete", tag, name)
            if name in seen:
                raise HeaderError("typedef loop at %s" % name)
            seen.add(name)
            if name not in self.typedefs:
                raise HeaderError("unknown type %s" % name)
            kind, info = self.typedefs[name]
            if kind == "alias":
                if info.ptr:
                    return ("pointer", info, name)
                name = info.base
                continue
            return (kind, info, name)

    def fields(self, body):
        """Flat list of (CType, name, array) for a struct body; nested aggregates are expanded
        with their members prefixed ('res.array.hArray'), unions included."""
        out = []
        for stmt in split_top(body, ";"):
            if not stmt:
                continue
            if stmt[0] in ("struct", "union") and "{" in stmt:
                k = stmt.index("{")
                end = self._match(stmt, k)
                inner = self.fields(stmt[k + 1:end])
                rest = stmt[end + 1:]
                prefix = (rest[0] + ".") if rest and rest[0] != "[" else ""
                out.extend((ct, prefix + n, arr) for ct, n, arr in inner)
                continue
            arr = None
            if "[" in stmt:
                k = stmt.index("[")
                arr = " ".join(stmt[k + 1:-1])
                stmt = stmt[:k]
            if ":" in stmt:  # bit-field
                stmt = stmt[:stmt.index(":")]
            out.append((parse_type(stmt[:-1]), stmt[-1], arr))
        return out


def load(cc, include_dir, defines=()):
    return Header(preprocess(cc, include_dir, defines))
