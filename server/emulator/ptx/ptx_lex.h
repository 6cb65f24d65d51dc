/* ptx_lex: splits PTX text into tokens for ptx_parse.c. Private to server/emulator/ptx.
 *
 * Identifiers keep their dots and sigils ("ld.global.f32", "%tid.x", "$L__BB0_3", ".reg"), so the
 * parser sees an opcode with its modifiers as one token. Comments are skipped. The lexer never
 * reads past end and never allocates. */
#ifndef VG_PTX_LEX_H
#define VG_PTX_LEX_H

#include <stddef.h>

enum ptx_tok_kind { TK_EOF, TK_IDENT, TK_NUM, TK_STR, TK_PUNCT, TK_BAD };

typedef struct ptx_tok {
    int kind;
    const char *s;   /* points into the source text; not NUL-terminated */
    size_t n;
    int line;
} ptx_tok;

typedef struct ptx_lexer {
    const char *p, *end;
    int line;
    ptx_tok peeked;
    int has_peek;
} ptx_lexer;

void ptx_lex_init(ptx_lexer *lx, const char *text, size_t len);
ptx_tok ptx_lex_next(ptx_lexer *lx);
ptx_tok ptx_lex_peek(ptx_lexer *lx);
/* 1 when t is the punctuation character c or the identifier/keyword equal to s. */
int ptx_tok_is(const ptx_tok *t, char c);
int ptx_tok_eq(const ptx_tok *t, const char *s);
/* Skips to the end of the current line (for .loc/.file style directives). */
void ptx_lex_skip_line(ptx_lexer *lx);

#endif
