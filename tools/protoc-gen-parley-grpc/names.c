/* names.c: protoc-c's naming rules and the generator's identifiers (see
 * names.h). ASCII only, independent of the locale. */
#include "names.h"

#include <string.h>

static int is_up(char c) { return c >= 'A' && c <= 'Z'; }
static char to_up(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}
static char to_low(char c) { return is_up(c) ? (char)(c - 'A' + 'a') : c; }
static int is_alnum(char c)
{
    return is_up(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static char *camel_to(text_pool *p, const char *s, int upper)
{
    text_buf b;
    text_init(&b);
    int was_upper = 1; /* no '_' before a leading capital */
    for (; *s; s++) {
        int up = is_up(*s);
        if (up && !was_upper) text_putc(&b, '_');
        text_putc(&b, upper ? to_up(*s) : to_low(*s));
        was_upper = up;
    }
    return text_pool_own(p, text_take(&b));
}

char *names_camel_to_lower(text_pool *p, const char *s)
{
    return camel_to(p, s, 0);
}
char *names_camel_to_upper(text_pool *p, const char *s)
{
    return camel_to(p, s, 1);
}

char *names_to_camel(text_pool *p, const char *s)
{
    text_buf b;
    text_init(&b);
    int next_upper = 1;
    for (; *s; s++) {
        if (*s == '_') {
            next_upper = 1;
        } else {
            text_putc(&b, next_upper ? to_up(*s) : *s);
            next_upper = 0;
        }
    }
    return text_pool_own(p, text_take(&b));
}

/* Splits full on dots (skipping empty pieces), maps each piece and joins the
 * results with "__". */
static char *full_map(text_pool *p, const char *full,
                      char *(*map)(text_pool *, const char *))
{
    text_buf b;
    text_init(&b);
    const char *s = full;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (n > 0) {
            char *piece = text_pool_own(p, strndup(s, n));
            char *m = piece ? map(p, piece) : NULL;
            if (!m) {
                text_free(&b);
                return NULL;
            }
            if (b.len) text_puts(&b, "__");
            text_puts(&b, m);
        }
        s += n;
        if (*s == '.') s++;
    }
    return text_pool_own(p, text_take(&b));
}

char *names_full_to_c(text_pool *p, const char *full)
{
    return full_map(p, full, names_to_camel);
}
char *names_full_to_lower(text_pool *p, const char *full)
{
    return full_map(p, full, names_camel_to_lower);
}

char *names_dots_to_underscores(text_pool *p, const char *s)
{
    char *r = text_pool_strdup(p, s);
    for (char *c = r; c && *c; c++)
        if (*c == '.') *c = '_';
    return r;
}

char *names_upper(text_pool *p, const char *s)
{
    char *r = text_pool_strdup(p, s);
    for (char *c = r; c && *c; c++) *c = to_up(*c);
    return r;
}

char *names_file_ident(text_pool *p, const char *filename)
{
    text_buf b;
    text_init(&b);
    for (const char *s = filename; *s; s++) {
        if (is_alnum(*s))
            text_putc(&b, *s);
        else
            text_printf(&b, "_%x", (unsigned)(unsigned char)*s);
    }
    return text_pool_own(p, text_take(&b));
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

char *names_strip_proto(text_pool *p, const char *filename)
{
    size_t n = strlen(filename);
    if (has_suffix(filename, ".protodevel"))
        n -= strlen(".protodevel");
    else if (has_suffix(filename, ".proto"))
        n -= strlen(".proto");
    return text_pool_own(p, strndup(filename, n));
}

int names_is_keyword(const char *s)
{
    static const char *const kw[] = {
        "_Alignas",
        "_Alignof",
        "_Atomic",
        "_Bool",
        "_Complex",
        "_Generic",
        "_Imaginary",
        "_Noreturn",
        "_Static_assert",
        "_Thread_local",
        "alignas",
        "alignof",
        "and",
        "and_eq",
        "asm",
        "auto",
        "bitand",
        "bitor",
        "bool",
        "break",
        "case",
        "catch",
        "char",
        "class",
        "compl",
        "const",
        "const_cast",
        "constexpr",
        "continue",
        "default",
        "delete",
        "do",
        "double",
        "dynamic_cast",
        "else",
        "enum",
        "explicit",
        "extern",
        "false",
        "float",
        "for",
        "friend",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "mutable",
        "namespace",
        "new",
        "noexcept",
        "not",
        "not_eq",
        "nullptr",
        "operator",
        "or",
        "or_eq",
        "private",
        "protected",
        "public",
        "register",
        "reinterpret_cast",
        "restrict",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "static_assert",
        "static_cast",
        "struct",
        "switch",
        "template",
        "this",
        "thread_local",
        "throw",
        "true",
        "try",
        "typedef",
        "typeid",
        "typename",
        "union",
        "unsigned",
        "using",
        "virtual",
        "void",
        "volatile",
        "wchar_t",
        "while",
        "xor",
        "xor_eq",
    };
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strcmp(s, kw[i]) == 0) return 1;
    return 0;
}
