/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "json-util.h"
#include "label-selector.h"
#include "string-util.h"

/* A selector longer than this is a mistake, not a selector. */
#define LABEL_SELECTOR_LENGTH_MAX 4096U
#define LABEL_SELECTOR_REQUIREMENTS_MAX 256U

typedef enum Operator {
        OP_EQUALS,
        OP_NOT_EQUALS,
        OP_IN,
        OP_NOT_IN,
        OP_EXISTS,
        OP_DOES_NOT_EXIST,
        OP_GREATER_THAN,
        OP_LESS_THAN,
} Operator;

typedef struct Requirement {
        char *key;
        Operator op;
        char **values;          /* EQUALS, NOT_EQUALS (one), IN, NOT_IN (one or more) */
        int64_t number;         /* GREATER_THAN, LESS_THAN */
} Requirement;

struct LabelSelector {
        Requirement *requirements;
        size_t n_requirements;
};

typedef enum TokenType {
        TOKEN_END,
        TOKEN_IDENTIFIER,
        TOKEN_COMMA,
        TOKEN_OPEN,
        TOKEN_CLOSE,
        TOKEN_EQUALS,           /* "=" and "==" */
        TOKEN_NOT_EQUALS,
        TOKEN_NOT,
        TOKEN_GREATER,
        TOKEN_LESS,
        TOKEN_IN,
        TOKEN_NOT_IN,
} TokenType;

/* the end of one requirement */
#define TOKEN_ENDS_REQUIREMENT(t) ((t) == TOKEN_END || (t) == TOKEN_COMMA)

typedef struct Lexer {
        const char *p;
        const char *token;      /* start of the current identifier */
        size_t token_len;
} Lexer;

static bool is_special(char c) {
        return strchr("=!(),<>", c) && c != 0;
}

static TokenType lexer_next(Lexer *l) {
        while (isspace((unsigned char) *l->p))
                l->p++;

        switch (*l->p) {
        case 0:
                return TOKEN_END;
        case ',':
                l->p++;
                return TOKEN_COMMA;
        case '(':
                l->p++;
                return TOKEN_OPEN;
        case ')':
                l->p++;
                return TOKEN_CLOSE;
        case '<':
                l->p++;
                return TOKEN_LESS;
        case '>':
                l->p++;
                return TOKEN_GREATER;
        case '=':
                l->p += l->p[1] == '=' ? 2 : 1;
                return TOKEN_EQUALS;
        case '!':
                if (l->p[1] == '=') {
                        l->p += 2;
                        return TOKEN_NOT_EQUALS;
                }
                l->p++;
                return TOKEN_NOT;
        }

        l->token = l->p;
        while (*l->p && !isspace((unsigned char) *l->p) && !is_special(*l->p))
                l->p++;
        l->token_len = (size_t) (l->p - l->token);

        if (l->token_len == 2 && strneq(l->token, "in", 2))
                return TOKEN_IN;
        if (l->token_len == 5 && strneq(l->token, "notin", 5))
                return TOKEN_NOT_IN;
        return TOKEN_IDENTIFIER;
}

static TokenType lexer_peek(const Lexer *l) {
        Lexer copy = *l;
        return lexer_next(&copy);
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters: a label name or value. */
static bool name_is_valid(const char *s, size_t n) {
        if (n == 0 || n > 63)
                return false;
        if (!isalnum((unsigned char) s[0]) || !isalnum((unsigned char) s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && !strchr("-_.", s[i]))
                        return false;
        return true;
}

/* A lower-case RFC 1123 DNS subdomain of at most 253 characters: the optional key prefix. */
static bool prefix_is_valid(const char *s, size_t n) {
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

                if (c == '.') {
                        if (i == 0 || i == n - 1 || s[i - 1] == '.' || s[i - 1] == '-' || s[i + 1] == '-')
                                return false;
                } else if (c == '-') {
                        if (i == 0 || i == n - 1)
                                return false;
                } else if (!alnum)
                        return false;
        }
        return true;
}

static bool key_is_valid(const char *s, size_t n) {
        const char *slash = memchr(s, '/', n);

        if (!slash)
                return name_is_valid(s, n);
        return prefix_is_valid(s, (size_t) (slash - s)) &&
                name_is_valid(slash + 1, n - (size_t) (slash - s) - 1);
}

static bool value_is_valid(const char *s, size_t n) {
        return n == 0 || name_is_valid(s, n);
}

static int parse_int64(const char *s, size_t n, int64_t *ret) {
        _cleanup_free_ char *t = NULL;
        char *end;
        long long v;

        if (n == 0)
                return -EINVAL;
        t = strndup(s, n);
        if (!t)
                return -ENOMEM;
        errno = 0;
        v = strtoll(t, &end, 10);
        if (errno != 0 || *end != 0)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

static void requirement_done(Requirement *r) {
        free(r->key);
        strv_free(r->values);
        *r = (Requirement) {};
}

LabelSelector *label_selector_free(LabelSelector *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_requirements; i++)
                requirement_done(s->requirements + i);
        free(s->requirements);
        return mfree(s);
}

static int value_push(Requirement *r, const char *s, size_t n) {
        char *v;

        if (!value_is_valid(s, n))
                return -EINVAL;
        v = strndup(s, n);
        if (!v)
                return -ENOMEM;
        return strv_push(&r->values, v);
}

/* "(a, b, c)" after in/notin. */
static int parse_set(Lexer *l, Requirement *r) {
        int r2;

        if (lexer_next(l) != TOKEN_OPEN)
                return -EINVAL;
        for (;;) {
                TokenType t = lexer_next(l);

                if (t == TOKEN_IDENTIFIER) {
                        r2 = value_push(r, l->token, l->token_len);
                        if (r2 < 0)
                                return r2;
                        t = lexer_next(l);
                } else if (t == TOKEN_COMMA || t == TOKEN_CLOSE) {
                        /* an empty value, as in "in (a,)" or "in (,a)"; "in ()" is refused below */
                        if (t == TOKEN_COMMA || strv_length(r->values) > 0) {
                                r2 = value_push(r, "", 0);
                                if (r2 < 0)
                                        return r2;
                        }
                } else
                        return -EINVAL;

                if (t == TOKEN_CLOSE)
                        break;
                if (t != TOKEN_COMMA)
                        return -EINVAL;
        }
        return strv_length(r->values) > 0 ? 0 : -EINVAL;
}

static int parse_requirement(Lexer *l, Requirement *r) {
        TokenType t;

        t = lexer_next(l);
        if (t == TOKEN_NOT) {
                if (lexer_next(l) != TOKEN_IDENTIFIER || !key_is_valid(l->token, l->token_len))
                        return -EINVAL;
                r->key = strndup(l->token, l->token_len);
                if (!r->key)
                        return -ENOMEM;
                r->op = OP_DOES_NOT_EXIST;
                return 0;
        }
        if (t != TOKEN_IDENTIFIER || !key_is_valid(l->token, l->token_len))
                return -EINVAL;
        r->key = strndup(l->token, l->token_len);
        if (!r->key)
                return -ENOMEM;

        t = lexer_peek(l);
        if (TOKEN_ENDS_REQUIREMENT(t)) {
                r->op = OP_EXISTS;
                return 0;
        }

        t = lexer_next(l);
        switch (t) {
        case TOKEN_EQUALS:
        case TOKEN_NOT_EQUALS:
                r->op = t == TOKEN_EQUALS ? OP_EQUALS : OP_NOT_EQUALS;
                if (TOKEN_ENDS_REQUIREMENT(lexer_peek(l)))
                        return value_push(r, "", 0);   /* "key=" selects an empty value */
                if (lexer_next(l) != TOKEN_IDENTIFIER)
                        return -EINVAL;
                return value_push(r, l->token, l->token_len);

        case TOKEN_IN:
        case TOKEN_NOT_IN:
                r->op = t == TOKEN_IN ? OP_IN : OP_NOT_IN;
                return parse_set(l, r);

        case TOKEN_GREATER:
        case TOKEN_LESS:
                r->op = t == TOKEN_GREATER ? OP_GREATER_THAN : OP_LESS_THAN;
                if (lexer_next(l) != TOKEN_IDENTIFIER)
                        return -EINVAL;
                return parse_int64(l->token, l->token_len, &r->number);

        default:
                return -EINVAL;
        }
}

int label_selector_parse(const char *s, LabelSelector **ret) {
        _cleanup_(label_selector_freep) LabelSelector *sel = NULL;
        Lexer l = {};
        int r;

        if (s && strlen(s) > LABEL_SELECTOR_LENGTH_MAX)
                return -EINVAL;

        sel = calloc(1, sizeof(LabelSelector));
        if (!sel)
                return -ENOMEM;

        l.p = strempty(s);
        if (lexer_peek(&l) == TOKEN_END) {
                *ret = TAKE_PTR(sel);
                return 0;
        }

        for (;;) {
                Requirement *a;

                if (sel->n_requirements >= LABEL_SELECTOR_REQUIREMENTS_MAX)
                        return -EINVAL;
                a = reallocarray(sel->requirements, sel->n_requirements + 1, sizeof(Requirement));
                if (!a)
                        return -ENOMEM;
                sel->requirements = a;
                a[sel->n_requirements] = (Requirement) {};
                sel->n_requirements++;

                r = parse_requirement(&l, a + sel->n_requirements - 1);
                if (r < 0)
                        return r;

                TokenType t = lexer_next(&l);
                if (t == TOKEN_END)
                        break;
                if (t != TOKEN_COMMA)
                        return -EINVAL;
        }

        *ret = TAKE_PTR(sel);
        return 0;
}

static bool requirement_matches(const Requirement *r, json_object *labels) {
        json_object *v = json_get_member(labels, r->key);
        const char *value = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        int64_t n;

        switch (r->op) {
        case OP_EXISTS:
                return value;
        case OP_DOES_NOT_EXIST:
                return !value;
        case OP_EQUALS:
        case OP_IN:
                return value && strv_contains(r->values, value);
        case OP_NOT_EQUALS:
        case OP_NOT_IN:
                return !value || !strv_contains(r->values, value);
        case OP_GREATER_THAN:
        case OP_LESS_THAN:
                if (!value || parse_int64(value, strlen(value), &n) < 0)
                        return false;
                return r->op == OP_GREATER_THAN ? n > r->number : n < r->number;
        }
        return false;
}

bool label_selector_matches(const LabelSelector *s, json_object *labels) {
        if (!s)
                return true;
        for (size_t i = 0; i < s->n_requirements; i++)
                if (!requirement_matches(s->requirements + i, labels))
                        return false;
        return true;
}
