/* ptx_ir: the pre-decoded form of a PTX module, shared by the parser (ptx_parse.c) and the
 * executor (ptx_exec.c). Private to server/emulator/ptx.
 *
 * Everything a kernel needs at run time is resolved here at load: registers are indices into a
 * per-function register range, branch targets are instruction indices, symbols are indices into
 * the module's tables. The executor never looks at a string. */
#ifndef VG_PTX_IR_H
#define VG_PTX_IR_H

#include "ptx.h"

#include <stdint.h>

#define PTX_MAX_CALL_DEPTH 32

enum ptx_type {
    T_NONE = 0,
    T_B8, T_B16, T_B32, T_B64,
    T_U8, T_U16, T_U32, T_U64,
    T_S8, T_S16, T_S32, T_S64,
    T_F16, T_F16X2, T_BF16, T_BF16X2, T_F32, T_F64,
    T_PRED,
};

enum ptx_space { SP_NONE = 0, SP_GENERIC, SP_GLOBAL, SP_SHARED, SP_LOCAL, SP_CONST, SP_PARAM };

enum ptx_opcode {
    OP_MOV, OP_LD, OP_ST, OP_CVTA, OP_CVT,
    OP_ADD, OP_SUB, OP_MUL, OP_MAD, OP_FMA, OP_DIV, OP_REM, OP_ABS, OP_NEG, OP_MIN, OP_MAX,
    OP_AND, OP_OR, OP_XOR, OP_NOT, OP_CNOT, OP_SHL, OP_SHR,
    OP_BFE, OP_BFI, OP_BREV, OP_POPC, OP_CLZ, OP_BFIND, OP_PRMT, OP_LOP3, OP_SHF, OP_SAD, OP_TESTP, OP_MATCH, OP_ISSPACEP, OP_DP4A, OP_DP2A,
    OP_SELP, OP_SET, OP_SETP, OP_SLCT,
    OP_RCP, OP_SQRT, OP_RSQRT, OP_EX2, OP_LG2, OP_SIN, OP_COS, OP_TANH, OP_COPYSIGN,
    /* call: ops[0] the callee (OPK_FUNC; OPK_REG for a call through a pointer, see
     * PTX_FUNC_ADDR), ops[1] the return variable (OPK_SYM in the frame) or OPK_NONE, ops[2] the
     * arguments (see ptx_module.call_args). */
    OP_BRA, OP_CALL, OP_RET, OP_EXIT, OP_TRAP, OP_BAR, OP_MEMBAR, OP_NOP,
    OP_SHFL, OP_VOTE, OP_ACTIVEMASK, OP_ATOM, OP_RED,
    /* Textures and surfaces (through ptx_memory's callbacks). Operands: tex / tld4 d(vec 4),
     * [handle, coords(vec)] {, lod | dPdx(vec), dPdy(vec)}; suld d(vec), [handle, coords];
     * sust [handle, coords], values(vec) as ops handle, coords, values; txq / suq d, [handle].
     * mode is the geometry (enum ptx_tex_geom) or the query (enum ptx_tex_query); cmp is tex's
     * lod kind (enum ptx_tex_lod), tld4's component (0..3) or suld/sust's boundary (enum
     * ptx_surf_boundary); vec the element count; type the data type, type2 tex's coordinate
     * type. */
    OP_TEX, OP_TLD4, OP_TXQ, OP_SULD, OP_SUST, OP_SUQ,
    /* Warp matrix operations (ptx_wmma.c). Fragments are OPK_LIST operands. wmma.load: d(list),
     * [addr] {, stride}; wmma.store: [addr], values(list) {, stride}; wmma.mma: d, a, b, c (lists).
     * A missing stride is OPK_NONE. boolop is the shape (enum ptx_wmma_shape); cmp the layouts
     * (bit 0: the loaded or stored matrix, or mma's A, is column-major; bit 1: mma's B is);
     * mode the fragment of a load or store (enum ptx_wmma_frag); type the element type in
     * memory (mma: A's and B's), type2 mma's C type and vec mma's D type; sat .satfinite. */
    OP_WMMA_LOAD, OP_WMMA_STORE, OP_WMMA_MMA,
    OP_COUNT
};

/* Comparison operators for setp/set/slct. */
enum ptx_cmp {
    CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE,
    CMP_LO, CMP_LS, CMP_HI, CMP_HS,
    CMP_EQU, CMP_NEU, CMP_LTU, CMP_LEU, CMP_GTU, CMP_GEU, CMP_NUM, CMP_NAN,
};

enum ptx_boolop { BOOL_NONE, BOOL_AND, BOOL_OR, BOOL_XOR };

/* Rounding: RND_NONE means the instruction's default. The *I forms round to an integer value. */
enum ptx_rnd { RND_NONE, RND_RN, RND_RZ, RND_RM, RND_RP, RND_RNI, RND_RZI, RND_RMI, RND_RPI };

enum ptx_atom_op {
    AT_ADD, AT_MIN, AT_MAX, AT_AND, AT_OR, AT_XOR, AT_EXCH, AT_CAS, AT_INC, AT_DEC,
};

enum ptx_shfl_mode { SHFL_UP, SHFL_DOWN, SHFL_BFLY, SHFL_IDX };
enum ptx_vote_mode { VOTE_ALL, VOTE_ANY, VOTE_UNI, VOTE_BALLOT };

enum ptx_wmma_shape { WMMA_M16N16K16, WMMA_M32N8K16, WMMA_M8N32K16 };
enum ptx_wmma_frag { WMMA_A, WMMA_B, WMMA_C };

enum ptx_mulmode { MUL_LO = 0, MUL_HI, MUL_WIDE };

/* shf: bit 0 = right (else left), bit 1 = clamp (else wrap). bfind: 1 = .shiftamt. */
enum { SHF_RIGHT = 1, SHF_CLAMP = 2 };
enum { PTX_CARRY_IN = 1, PTX_CARRY_OUT = 2 };
/* bar mode: plain barrier, or a barrier that also reduces a predicate over the block. */
enum { BAR_SYNC = 0, BAR_RED_POPC, BAR_RED_AND, BAR_RED_OR, BAR_ARRIVE };
#define PTX_NUM_BARRIERS 16
enum ptx_testp { TESTP_FINITE, TESTP_INFINITE, TESTP_NUMBER, TESTP_NAN, TESTP_NORMAL, TESTP_SUBNORMAL };

/* Special registers (operand kind OPK_SREG, reg = one of these). */
enum ptx_sreg {
    SR_TID_X, SR_TID_Y, SR_TID_Z, SR_NTID_X, SR_NTID_Y, SR_NTID_Z,
    SR_CTAID_X, SR_CTAID_Y, SR_CTAID_Z, SR_NCTAID_X, SR_NCTAID_Y, SR_NCTAID_Z,
    SR_LANEID, SR_WARPID, SR_NWARPID, SR_SMID, SR_NSMID, SR_GRIDID,
    SR_CLOCK, SR_CLOCK64, SR_GLOBALTIMER,
    SR_LANEMASK_EQ, SR_LANEMASK_LT, SR_LANEMASK_LE, SR_LANEMASK_GT, SR_LANEMASK_GE,
    SR_WARPSZ, SR_DYN_SMEM,
    SR_ENVREG0, /* %envreg0..31 are SR_ENVREG0 + n: ptx_launch.envreg */
};

enum ptx_opkind {
    OPK_NONE = 0,
    OPK_REG,     /* reg: register index in the function's range */
    OPK_IMM,     /* imm: value (bit pattern already converted for the operand's type) */
    OPK_SREG,    /* reg: enum ptx_sreg */
    OPK_VEC,     /* vec[0..nvec): registers ({%r1,%r2}); a -1 entry is the sink "_" */
    OPK_ADDR,    /* [base + imm] with base a register (reg >= 0) or a symbol (sym) */
    OPK_SYM,     /* the address of a symbol (mov %rd, sym / cvta of a symbol) */
    OPK_LABEL,   /* imm: instruction index (bra target) */
    OPK_FUNC,    /* imm: function index (call) */
    OPK_LIST,    /* a register list longer than OPK_VEC's (wmma fragments): imm = first index in
                  * ptx_module.call_args, nvec = count; each entry a register index */
};

/* Symbol kinds an address or OPK_SYM can refer to. */
enum ptx_symkind {
    SYM_NONE = 0,
    SYM_KPARAM,  /* kernel parameter: imm = byte offset in the parameter buffer */
    SYM_FRAME,   /* function-frame variable in local space: off = offset in the frame */
    SYM_SHARED,  /* module shared variable: idx = shared variable index (per-kernel offset) */
    SYM_DYNSHARED, /* extern .shared []: starts after the kernel's static shared memory */
    SYM_GLOBAL,  /* module .global/.const variable: idx = global index (bound address) */
};

typedef struct ptx_operand {
    uint8_t kind;      /* enum ptx_opkind */
    uint8_t symkind;   /* enum ptx_symkind for OPK_ADDR / OPK_SYM */
    uint8_t nvec;      /* OPK_VEC: number of registers */
    uint8_t neg;       /* predicate operand negated (!%p); OPK_ADDR: base register is 32-bit,
                        * so base + imm wraps in 32 bits as the hardware computes it */
    int32_t reg;       /* register index, sreg, or -1 */
    int32_t sym;       /* symbol index (shared/global) or frame offset */
    int32_t vec[4];
    int64_t imm;       /* immediate, address offset, label or function index */
} ptx_operand;

#define PTX_MAX_OPERANDS 5

typedef struct ptx_insn {
    uint8_t op;        /* enum ptx_opcode */
    uint8_t type;      /* main type */
    uint8_t type2;     /* cvt source type; setp compared type lives in type */
    uint8_t space;     /* enum ptx_space for ld/st/atom/red/cvta */
    uint8_t cmp;       /* enum ptx_cmp */
    uint8_t boolop;    /* setp/set combining op */
    uint8_t rnd;       /* enum ptx_rnd */
    uint8_t mode;      /* mul mode / shfl mode / vote mode / atom op / cvta direction */
    uint8_t vec;       /* 1, 2 or 4 for ld/st */
    uint8_t ftz, sat, approx;
    uint8_t carry;     /* PTX_CARRY_IN (addc/subc/madc) | PTX_CARRY_OUT (.cc) */
    uint8_t mul24;     /* mul24/mad24: operands are the low 24 bits */
    uint8_t nops;
    uint8_t guard_neg;
    int32_t guard;     /* predicate register guarding the instruction, or -1 */
    int32_t line;      /* source line, for error messages */
    int32_t func;      /* index of the function holding the instruction */
    ptx_operand ops[PTX_MAX_OPERANDS];
} ptx_insn;

/* An initializer slot holding the address of a module variable, written when the module's
 * variables have their addresses (ptx_module_global_relocate). Function addresses need none:
 * they are constants (PTX_FUNC_ADDR) written at parse time. */
typedef struct ptx_reloc {
    size_t offset;     /* byte offset of the slot in the initializer */
    uint8_t bytes;     /* slot width: 4 or 8 */
    int32_t target;    /* global index whose address goes there */
    int64_t addend;
} ptx_reloc;

typedef struct ptx_var {
    char *name;
    size_t size;
    size_t align;
    uint8_t *init;     /* NULL for zero-fill */
    int is_const;
    ptx_reloc *relocs; /* slots of init holding variable addresses */
    size_t nrelocs;
    uint64_t addr;     /* bound device address (globals) */
} ptx_var;

/* A constant row of a function's register range (see ptx_exec.h): 32 lanes of value. */
typedef struct ptx_xconst {
    int32_t off;          /* byte offset in the function's range */
    uint8_t kind;         /* XK_32 or XK_64 */
    uint64_t value;
} ptx_xconst;

/* A .entry or .func. Instructions live in the module's one array at [first, first + count). */
typedef struct ptx_func {
    char *name;
    int is_entry;
    int defined;
    uint32_t first, count;
    int nregs;
    uint8_t *reg_types;   /* nregs entries, enum ptx_type */
    /* Frame layout in local space: locals, callee parameters, callseq parameters. */
    size_t frame_bytes;
    size_t nparams;
    size_t *param_off;    /* kernel: offset in the param buffer; func: offset in the frame */
    size_t *param_size;
    size_t param_bytes;   /* kernels: packed size of the parameter buffer */
    int has_retval;
    size_t retval_off, retval_size;
    unsigned maxntid;     /* product of .maxntid/.reqntid, 0 if absent */
    int *callees;         /* distinct function indices called */
    size_t ncallees;
    int indirect_calls;   /* calls through a register: may reach every address-taken function */
    int address_taken;    /* its address is taken (mov, initializer): an indirect-call target */
    int *shared_used;     /* distinct shared variable indices referenced */
    size_t nshared_used;
    int uses_dynshared;
    int builtin;          /* PTX_BUILTIN_* for a called function without a body */
    int line;
    char *unsupported;    /* first construct the emulator cannot run, with its line, or NULL */
    /* Register file layout (ptx_xbuild.c): per register its byte offset in the function's
     * range and its row kind (XK_*); the range's size, constant rows included. */
    int32_t *xroff;
    uint8_t *xkind;
    size_t xbytes;
    ptx_xconst *xconst;
    size_t nxconst, xconst_cap;
} ptx_func;

enum { PTX_BUILTIN_NONE = 0, PTX_BUILTIN_VPRINTF, PTX_BUILTIN_ASSERTFAIL, PTX_BUILTIN_MALLOC,
       PTX_BUILTIN_FREE };

/* The address of function fi, as mov and initializers give it and indirect calls take it (see
 * PTX_FUNC_WINDOW in ptx.h). */
#define PTX_FUNC_ADDR(fi) (PTX_FUNC_WINDOW + 16ull * (uint64_t)(fi))

/* Per-kernel layout, computed once after parsing from the kernel's call graph. */
struct ptx_kernel {
    const ptx_module *module;
    int func;                 /* index of the .entry */
    int nregs_total;          /* registers of the kernel plus every reachable .func */
    int *reg_base;            /* per module function: base of its register range, -1 unreached */
    size_t *frame_base;       /* per module function: offset of its frame in local space */
    size_t local_bytes;       /* per thread */
    size_t *shared_off;       /* per module shared variable: offset in this kernel's shared */
    size_t static_shared;
    size_t dyn_shared_align;
    int recursive;            /* the call graph has a cycle: launches are refused */
    /* It can make indirect calls: every reachable function has a frame of its own (no two
     * overlap, since which may be active together is unknown), and each call checks that the
     * callee is not already active in the lane (recursion through a pointer fails the launch). */
    int indirect;
    int uses_heap;            /* it can call malloc or free (ptx_memory.heap_*) */
    const char *unsupported;  /* a reachable function's ptx_func.unsupported: launches refused */
    size_t *xbase;            /* per module function: byte offset of its register range */
    size_t xbytes;            /* one warp's register file */
    void *jit;                /* the JIT's compiled code (ptx_jit.c), published once */
    uint64_t interp_lanes;    /* lane-instructions interpreted so far (atomic): JIT tiering */
};

struct ptx_module {
    ptx_insn *code;
    size_t ncode;
    ptx_func *funcs;
    size_t nfuncs;
    ptx_var *globals;         /* .global and .const */
    size_t nglobals;
    ptx_var *shared;          /* static .shared, module or function scope */
    size_t nshared;
    size_t dyn_shared_align;
    struct ptx_kernel *kernels;
    size_t nkernels;
    /* Operand lists. Call arguments: a call's ops[2] holds (imm = first index here, reg =
     * count); each entry is the argument's offset in the caller's frame. OPK_LIST operands
     * (wmma fragments): imm = first index, nvec = count; each entry a register index. */
    int32_t *call_args;
    size_t ncall_args;
    struct ptx_xinsn *xcode;  /* one decoded handler per instruction (ptx_exec.h) */
    uint64_t text_hash[2];    /* of the PTX text: the JIT's cache key */
};

int ptx_type_bytes(int type);
void ptx_text_hash(const char *text, size_t len, uint64_t out[2]);

#endif
