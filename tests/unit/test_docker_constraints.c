/*
 * Unit test of the docker provider's constraint expressions
 * (constraints.c): parsing, error columns, evaluation against label sets.
 */
#include "constraints.h"

#include <stdio.h>
#include <string.h>

#include "tap.h"

/** A label set: NULL-terminated key, value, key, value, ... */
struct tc_labels {
    const char *const *kv; /* pairs, NULL-terminated */
};

/* dkcon_lookup_fn over a tc_labels. */
static const char *tc_lookup(void *arg, const char *key)
{
    const struct tc_labels *l = arg;

    for (size_t i = 0; l->kv[i]; i += 2)
        if (!strcmp(l->kv[i], key)) return l->kv[i + 1];
    return NULL;
}

/* Evaluates expr against labels: 1/0, or -1 when it does not parse. */
static int tc_eval(const char *expr, const char *const *kv)
{
    struct tc_labels l = {kv};
    char err[256];
    size_t col;
    dkcon *e = dkcon_parse(expr, &col, err, sizeof(err));
    int r;

    if (!e) return -1;
    r = dkcon_match(e, tc_lookup, &l);
    dkcon_free(e);
    return r;
}

/* Parses expr expecting an error: returns its column (0 when it parsed)
 * and copies the message to msg. */
static size_t tc_err(const char *expr, char *msg, size_t len)
{
    size_t col = 99;
    dkcon *e = dkcon_parse(expr, &col, msg, len);

    if (e) {
        dkcon_free(e);
        return 0;
    }
    return col;
}

int main(void)
{
    static const char *const web[] = {"env", "production", "team", "web",
                                      "a.b.c", "x y", "empty", "", NULL};
    static const char *const none[] = {NULL};
    char msg[256];
    size_t col;

    /* Label */
    ok(tc_eval("Label(`env`, `production`)", web) == 1, "Label equal");
    ok(tc_eval("Label(`env`, `prod`)", web) == 0, "Label is an exact compare");
    ok(tc_eval("Label(`env`, `Production`)", web) == 0, "Label is case-sensitive");
    ok(tc_eval("Label(`missing`, `x`)", web) == 0, "absent label does not equal x");
    ok(tc_eval("Label(`missing`, ``)", web) == 1, "absent label equals the empty string");
    ok(tc_eval("Label(`empty`, ``)", web) == 1, "empty label equals the empty string");
    ok(tc_eval("Label(\"a.b.c\", \"x y\")", web) == 1, "double-quoted strings");
    ok(tc_eval("Label(\"a.b.c\",`x y`)", web) == 1, "mixed quotes, no blanks");
    ok(tc_eval("  Label ( `team` ,  `web` )  ", web) == 1, "blanks everywhere");
    ok(tc_eval("Label(`q`, \"a\\\"b\")", (const char *const[]){"q", "a\"b", NULL}) == 1,
       "escaped double quote");
    ok(tc_eval("Label(`q`, \"a\\\\b\\tc\")", (const char *const[]){"q", "a\\b\tc", NULL}) == 1,
       "escaped backslash and tab");
    ok(tc_eval("Label(`q`, `a\\nb`)", (const char *const[]){"q", "a\\nb", NULL}) == 1,
       "backquoted strings are raw");

    /* LabelRegex */
    ok(tc_eval("LabelRegex(`env`, `prod.*`)", web) == 1, "LabelRegex matches");
    ok(tc_eval("LabelRegex(`env`, `^prod$`)", web) == 0, "LabelRegex anchored mismatch");
    ok(tc_eval("LabelRegex(`env`, `duct`)", web) == 1,
       "LabelRegex is unanchored (Go regexp.MatchString, as Traefik)");
    ok(tc_eval("LabelRegex(`env`, `^(production|staging)$`)", web) == 1, "alternation");
    ok(tc_eval("LabelRegex(`env`, `^dev`)", web) == 0, "LabelRegex no match");
    ok(tc_eval("LabelRegex(`missing`, `^$`)", web) == 1, "absent label matches ^$");
    ok(tc_eval("LabelRegex(`missing`, `.`)", web) == 0, "absent label is the empty string");
    ok(tc_eval("LabelRegex(`q`, `b$`)", (const char *const[]){"q", "ab\n", NULL}) == 0,
       "$ matches only at the very end (as in Go)");
    ok(tc_eval("LabelRegex(`q`, `^.$`)", (const char *const[]){"q", "\xc3\xa9", NULL}) == 1,
       "UTF-8: . is one character");

    /* operators and precedence */
    ok(tc_eval("!Label(`env`, `dev`)", web) == 1, "not");
    ok(tc_eval("!!Label(`env`, `dev`)", web) == 0, "not not");
    ok(tc_eval("Label(`env`, `production`) && Label(`team`, `web`)", web) == 1, "and true");
    ok(tc_eval("Label(`env`, `production`) && Label(`team`, `db`)", web) == 0, "and false");
    ok(tc_eval("Label(`env`, `dev`) || Label(`team`, `web`)", web) == 1, "or true");
    ok(tc_eval("Label(`env`, `dev`) || Label(`team`, `db`)", web) == 0, "or false");
    ok(tc_eval("Label(`env`, `dev`) && Label(`team`, `db`) || Label(`team`, `web`)", web) == 1,
       "&& binds tighter than || (left)");
    ok(tc_eval("Label(`team`, `web`) || Label(`env`, `dev`) && Label(`team`, `db`)", web) == 1,
       "&& binds tighter than || (right)");
    ok(tc_eval("(Label(`team`, `web`) || Label(`env`, `dev`)) && Label(`team`, `db`)", web) == 0,
       "parentheses override");
    ok(tc_eval("!Label(`env`, `production`) || Label(`team`, `web`)", web) == 1,
       "! binds tighter than ||");
    ok(tc_eval("!(Label(`env`, `production`) || Label(`team`, `x`))", web) == 0, "! of a group");
    ok(tc_eval("((((Label(`team`, `web`)))))", web) == 1, "nested parentheses");
    ok(tc_eval("Label(`team`, `web`)", none) == 0, "no labels at all");
    ok(tc_eval("!Label(`team`, `web`)&&!LabelRegex(`env`,`.`)", none) == 1, "no blanks");

    /* errors and their columns (1-based) */
    col = tc_err("Label(`a`, `b`", msg, sizeof(msg));
    ok(col == 15, "missing ')' at column 15 (got %zu: %s)", col, msg);
    col = tc_err("Label(`a` `b`)", msg, sizeof(msg));
    ok(col == 11 && strstr(msg, "','"), "missing ',' at column 11 (got %zu: %s)", col, msg);
    col = tc_err("Lable(`a`, `b`)", msg, sizeof(msg));
    ok(col == 1 && strstr(msg, "unknown function Lable"), "unknown function (got %zu: %s)", col,
       msg);
    col = tc_err("label(`a`, `b`)", msg, sizeof(msg));
    ok(col == 1, "function names are case-sensitive (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, `b`) &&", msg, sizeof(msg));
    ok(col == 19 && strstr(msg, "end"), "dangling && (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, `b`) & Label(`c`, `d`)", msg, sizeof(msg));
    ok(col == 17 && strstr(msg, "&&"), "single & (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, `b`) | Label(`c`, `d`)", msg, sizeof(msg));
    ok(col == 17 && strstr(msg, "||"), "single | (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, `b`) Label(`c`, `d`)", msg, sizeof(msg));
    ok(col == 17, "two expressions without an operator (got %zu: %s)", col, msg);
    col = tc_err("(Label(`a`, `b`)", msg, sizeof(msg));
    ok(col == 17 && strstr(msg, "column 1"), "unclosed ( (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, `b`))", msg, sizeof(msg));
    ok(col == 16, "extra ) (got %zu: %s)", col, msg);
    col = tc_err("Label(`a, `b`)", msg, sizeof(msg));
    ok(col > 0, "unbalanced backquotes (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, \"b)", msg, sizeof(msg));
    ok(col == 12 && strstr(msg, "unterminated"), "unterminated string (got %zu: %s)", col, msg);
    col = tc_err("Label('a', 'b')", msg, sizeof(msg));
    ok(col == 7, "single quotes are not strings (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, \"\\q\")", msg, sizeof(msg));
    ok(col == 13 && strstr(msg, "escape"), "bad escape (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`)", msg, sizeof(msg));
    ok(col == 10, "one argument (got %zu: %s)", col, msg);
    col = tc_err("Label(`a`, `b`, `c`)", msg, sizeof(msg));
    ok(col == 15, "three arguments (got %zu: %s)", col, msg);
    col = tc_err("LabelRegex(`a`, `(`)", msg, sizeof(msg));
    ok(col == 17 && strstr(msg, "regular expression"), "bad regex (got %zu: %s)", col, msg);
    col = tc_err("", msg, sizeof(msg));
    ok(col == 1, "empty expression (got %zu: %s)", col, msg);
    col = tc_err("!", msg, sizeof(msg));
    ok(col == 2, "lone ! (got %zu: %s)", col, msg);
    col = tc_err("Label", msg, sizeof(msg));
    ok(col == 6 && strstr(msg, "'('"), "function without arguments (got %zu: %s)", col, msg);
    {
        char deep[400];
        size_t n = 0;
        for (int i = 0; i < 100; i++) deep[n++] = '(';
        memcpy(deep + n, "Label(`a`,`b`)", 14);
        n += 14;
        for (int i = 0; i < 100; i++) deep[n++] = ')';
        deep[n] = 0;
        col = tc_err(deep, msg, sizeof(msg));
        ok(col == 65 && strstr(msg, "deep"), "nesting cap (got %zu: %s)", col, msg);
    }
    {
        static char big[DKCON_MAX_LEN + 100];
        memset(big, ' ', sizeof(big) - 1);
        memcpy(big, "Label(`a`,`b`)", 14);
        col = tc_err(big, msg, sizeof(msg));
        ok(col > 0 && strstr(msg, "longer"), "length cap (got %zu: %s)", col, msg);
    }
    ok(dkcon_parse("Label(`a`, `b`", NULL, NULL, 0) == NULL, "NULL col and err allowed");
    dkcon_free(NULL);
    ok(1, "dkcon_free(NULL) is a no-op");
    return tap_done();
}
