/* ptx_lex: PTX tokenizer (see ptx_lex.h). */
#include "ptx_lex.h"

#include <ctype.h>
#include <string.h>

void ptx_lex_init(ptx_lexer *lx, const char *text, size_t len)
{
    lx->p = text;
    lx->end = text + len;
    lx->line = 1;
    lx->has_peek = 0;
}

static int ident_start(int c)
{
    return isalpha(c) || c == '_' || c == '$' || c == '%' || c == '.';
}

static int ident_char(int c)
{
    return isalnum(c) || c == '_' || c == '$' || c == '.' || c == '%';
}

/* Skips blanks and comments. An unterminated block comment runs to the end of the text. */
static void skip_space(ptx_lexer *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (c == '\n') {
            lx->line++;
            lx->p++;
        } else if (isspace((unsigned char)c) || c == '\0') {
            lx->p++;
        } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '/') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
            lx->p += 2;
            while (lx->p < lx->end && !(*lx->p == '*' && lx->p + 1 < lx->end && lx->p[1] == '/')) {
                if (*lx->p == '\n')
                    lx->line++;
                lx->p++;
            }
            lx->p = lx->p < lx->end ? lx->p + 2 : lx->end;
        } else {
            return;
        }
    }
}

static ptx_tok scan(ptx_lexer *lx)
{
    skip_space(lx);
    ptx_tok t = {TK_EOF, lx->p, 0, lx->line};
    if (lx->p >= lx->end)
        return t;
    const char *s = lx->p;
    unsigned char c = (unsigned char)*s;
    if (ident_start(c) && !(c == '.' && s + 1 < lx->end && isdigit((unsigned char)s[1]))) {
        const char *q = s + 1;
        while (q < lx->end && ident_char((unsigned char)*q))
            q++;
        t.kind = TK_IDENT;
        t.n = (size_t)(q - s);
    } else if (isdigit(c) || c == '.') {
        /* Numbers: 123, 0x1F, 0f3F800000, 0d..., 1.5, 2e-3, 17U. */
        const char *q = s + 1;
        int hexlike = (c == '0' && q < lx->end && strchr("xXfFdD", *q) != NULL);
        while (q < lx->end) {
            unsigned char d = (unsigned char)*q;
            if (isalnum(d) || d == '.' || d == '_') {
                q++;
            } else if ((d == '+' || d == '-') && !hexlike && (q[-1] == 'e' || q[-1] == 'E')) {
                q++;
            } else {
                break;
            }
        }
        t.kind = TK_NUM;
        t.n = (size_t)(q - s);
    } else if (c == '"') {
        const char *q = s + 1;
        while (q < lx->end && *q != '"' && *q != '\n')
            q++;
        if (q < lx->end && *q == '"')
            q++;
        t.kind = TK_STR;
        t.n = (size_t)(q - s);
    } else if (strchr("{}()[],;:+-@!<>=|", c) != NULL) {
        t.kind = TK_PUNCT;
        t.n = 1;
    } else {
        t.kind = TK_BAD;
        t.n = 1;
    }
    lx->p = s + t.n;
    return t;
}

ptx_tok ptx_lex_next(ptx_lexer *lx)
{
    if (lx->has_peek) {
        lx->has_peek = 0;
        return lx->peeked;
    }
    return scan(lx);
}

ptx_tok ptx_lex_peek(ptx_lexer *lx)
{
    if (!lx->has_peek) {
        lx->peeked = scan(lx);
        lx->has_peek = 1;
    }
    return lx->peeked;
}

int ptx_tok_is(const ptx_tok *t, char c)
{
    return t->kind == TK_PUNCT && t->s[0] == c;
}

int ptx_tok_eq(const ptx_tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->kind == TK_IDENT && t->n == n && memcmp(t->s, s, n) == 0;
}

void ptx_lex_skip_line(ptx_lexer *lx)
{
    if (lx->has_peek) {
        /* The peeked token is on the line being skipped unless it started a new one. */
        lx->has_peek = 0;
        lx->p = lx->peeked.s + lx->peeked.n;
        lx->line = lx->peeked.line;
    }
    while (lx->p < lx->end && *lx->p != '\n')
        lx->p++;
}
