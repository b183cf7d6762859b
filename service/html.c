/*
 * html.c - the markup builder, the node tree it builds, and the serializer.
 *
 * The serializer is the contract with the browser: the server sends this
 * text, the browser parses it, and later patches address the parsed DOM by
 * child index. So the builder only produces trees that the HTML parser
 * rebuilds node for node (no empty or adjacent text nodes, no markup the
 * parser would move or close early), and the serializer writes exactly what
 * a browser's outerHTML writes for that DOM (escaping rules of the HTML
 * standard's "serializing HTML fragments", including its 2025 escaping of
 * < and > in attribute values).
 *
 * All nodes and strings of a tree come from one arena: a render allocates a
 * few thousand small objects that die together, and a cached tree is one
 * allocation chain to copy or free.
 *
 * A render built on the last one reuses its nodes ("Reuse"), and gives the
 * rows of a list (spark_each) whose item did not change again without
 * running them ("Rows"): the builder keeps what it needs for that.
 */
#include "html_tree.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- arena ---- */

#define ARENA_ALIGN 16
#define ARENA_CHUNK 1024

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
} chunk;

#define CHUNK_HEADER ((sizeof(chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

typedef struct {
    chunk *head;
    size_t next_size;
    size_t bytes; /* held, chunk headers included */
} arena;

static void *arena_alloc(arena *a, size_t n) {
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0) n = ARENA_ALIGN;
    if (!a->head || a->head->cap - a->head->used < n) {
        if (a->next_size < ARENA_CHUNK) a->next_size = ARENA_CHUNK;
        size_t cap = n > a->next_size ? n : a->next_size;
        chunk *c = malloc(CHUNK_HEADER + cap);
        if (!c) return NULL;
        a->bytes += CHUNK_HEADER + cap;
        c->used = 0;
        c->cap = cap;
        /* A big block gets a chunk of its own behind the current one, so the
         * space left in the current chunk is not wasted. */
        if (a->head && n > a->next_size) {
            c->next = a->head->next;
            a->head->next = c;
            c->used = n;
            return (char *)c + CHUNK_HEADER;
        }
        c->next = a->head;
        a->head = c;
        /* Up to 64 KiB: below malloc's mmap threshold, so a render reuses the
         * memory the last one freed instead of faulting in fresh pages. */
        if (a->next_size < 64 * 1024) a->next_size *= 2;
    }
    void *p = (char *)a->head + CHUNK_HEADER + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_free(arena *a) {
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

/* ---- string buffer ---- */

void spark_sbuf_append(spark_sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void spark_sbuf_puts(spark_sbuf *b, const char *s) { spark_sbuf_append(b, s, strlen(s)); }

void spark_sbuf_putc(spark_sbuf *b, char c) { spark_sbuf_append(b, &c, 1); }

void spark_sbuf_printf(spark_sbuf *b, const char *fmt, ...) {
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        spark_sbuf_append(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    spark_sbuf_append(b, big, (size_t)n);
    free(big);
}

void spark_sbuf_truncate(spark_sbuf *b, size_t len) {
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

void spark_sbuf_json_string(spark_sbuf *b, const char *s) {
    spark_sbuf_putc(b, '"');
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        spark_sbuf_append(b, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"':
            spark_sbuf_puts(b, "\\\"");
            break;
        case '\\':
            spark_sbuf_puts(b, "\\\\");
            break;
        case '\n':
            spark_sbuf_puts(b, "\\n");
            break;
        case '\t':
            spark_sbuf_puts(b, "\\t");
            break;
        default:
            spark_sbuf_printf(b, "\\u%04x", c);
            break;
        }
    }
    spark_sbuf_puts(b, run);
    spark_sbuf_putc(b, '"');
}

void spark_sbuf_free(spark_sbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- trees ---- */

struct spark_tree {
    arena mem;
    spark_node *root;
};

spark_tree *spark_tree_new(spark_node_kind root_kind) {
    spark_tree *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (!(t->root = spark_tree_new_node(t, root_kind))) {
        spark_tree_free(t);
        return NULL;
    }
    return t;
}

spark_node *spark_tree_new_node(spark_tree *t, spark_node_kind kind) {
    spark_node *n = arena_alloc(&t->mem, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->kind = kind;
    return n;
}

char *spark_tree_strdup(spark_tree *t, const char *s, size_t n) {
    char *d = arena_alloc(&t->mem, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

int spark_tree_insert_kid(spark_tree *t, spark_node *parent, size_t at, spark_node *kid) {
    if (at > parent->nkids) return -1;
    if (parent->nkids == parent->kids_cap) {
        size_t cap = parent->kids_cap ? parent->kids_cap * 2 : 4;
        spark_node **k = arena_alloc(&t->mem, cap * sizeof *k);
        if (!k) return -1;
        if (parent->nkids) memcpy(k, parent->kids, parent->nkids * sizeof *k);
        parent->kids = k;
        parent->kids_cap = cap;
    }
    memmove(parent->kids + at + 1, parent->kids + at, (parent->nkids - at) * sizeof *parent->kids);
    parent->kids[at] = kid;
    parent->nkids++;
    if (kid->kind == SPARK_NODE_RAW) parent->opaque = true;
    return 0;
}

const char *spark_node_attr(const spark_node *el, const char *name) {
    for (size_t i = 0; i < el->nattrs; i++)
        if (strcmp(el->attrs[i].name, name) == 0) return el->attrs[i].value;
    return NULL;
}

void spark_tree_refresh(spark_node *n) {
    n->key = n->kind == SPARK_NODE_ELEMENT ? spark_node_attr(n, SPARK_KEY_ATTR) : NULL;
    n->opaque = false;
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i]->kind == SPARK_NODE_RAW) n->opaque = true;
}

/* Appends an attribute that is known to be absent. */
static int append_attr(spark_tree *t, spark_node *el, const char *name, const char *value) {
    if (el->nattrs == el->attrs_cap) {
        size_t cap = el->attrs_cap ? el->attrs_cap * 2 : 4;
        spark_attr *a = arena_alloc(&t->mem, cap * sizeof *a);
        if (!a) return -1;
        if (el->nattrs) memcpy(a, el->attrs, el->nattrs * sizeof *a);
        el->attrs = a;
        el->attrs_cap = cap;
    }
    el->attrs[el->nattrs].name = name;
    el->attrs[el->nattrs].value = value;
    el->nattrs++;
    if (strcmp(name, SPARK_KEY_ATTR) == 0) el->key = value;
    return 0;
}

int spark_tree_set_attr(spark_tree *t, spark_node *el, const char *name, const char *value) {
    char *v = spark_tree_strdup(t, value, strlen(value));
    if (!v) return -1;
    for (size_t i = 0; i < el->nattrs; i++) {
        if (strcmp(el->attrs[i].name, name) == 0) {
            el->attrs[i].value = v;
            spark_tree_refresh(el);
            return 0;
        }
    }
    char *nm = spark_tree_strdup(t, name, strlen(name));
    return nm ? append_attr(t, el, nm, v) : -1;
}

void spark_tree_remove_attr(spark_node *el, const char *name) {
    for (size_t i = 0; i < el->nattrs; i++) {
        if (strcmp(el->attrs[i].name, name) == 0) {
            memmove(el->attrs + i, el->attrs + i + 1, (el->nattrs - i - 1) * sizeof *el->attrs);
            el->nattrs--;
            spark_tree_refresh(el);
            return;
        }
    }
}

const spark_node *spark_tree_root(const spark_tree *t) { return t->root; }

spark_node *spark_tree_root_mut(spark_tree *t) { return t->root; }

void spark_tree_free(spark_tree *t) {
    if (!t) return;
    arena_free(&t->mem);
    free(t);
}

bool spark_node_equal(const spark_node *a, const spark_node *b) {
    if (a == b) return true;
    if (a->kind != b->kind || a->nattrs != b->nattrs || a->nkids != b->nkids) return false;
    if ((a->tag || b->tag) && (!a->tag || !b->tag || strcmp(a->tag, b->tag) != 0)) return false;
    if ((a->text || b->text) && (!a->text || !b->text || strcmp(a->text, b->text) != 0))
        return false;
    for (size_t i = 0; i < a->nattrs; i++)
        if (strcmp(a->attrs[i].name, b->attrs[i].name) != 0 ||
            strcmp(a->attrs[i].value, b->attrs[i].value) != 0)
            return false;
    /* Trees that share nodes (renders that reuse) have runs of identical
     * kids: no call for those. */
    for (size_t i = 0; i < a->nkids; i++)
        if (a->kids[i] != b->kids[i] && !spark_node_equal(a->kids[i], b->kids[i])) return false;
    return true;
}

/* ---- tag tables ---- */

static const char *const void_tags[] = {"area",  "base", "br",   "col",    "embed", "hr",  "img",
                                        "input", "link", "meta", "source", "track", "wbr", NULL};
/* Content is raw text to the parser: text would not be unescaped. */
static const char *const raw_text_tags[] = {"script",  "style",    "xmp", "iframe",
                                            "noembed", "noframes", NULL};
/* Content is text only; entities are decoded. */
static const char *const rcdata_tags[] = {"textarea", "title", NULL};
/* Elements whose DOM children differ from their markup's, or whose names
 * the parser rewrites. */
static const char *const unsupported_tags[] = {"html",     "head",      "body",  "frameset",
                                               "frame",    "template",  "svg",   "math",
                                               "noscript", "plaintext", "image", NULL};
/* Start tags that make the parser close an open p. */
static const char *const closes_p[] = {
    "address", "article", "aside",  "blockquote", "center", "details",  "dialog",
    "dir",     "div",     "dl",     "dd",         "dt",     "fieldset", "figcaption",
    "figure",  "footer",  "form",   "h1",         "h2",     "h3",       "h4",
    "h5",      "h6",      "header", "hgroup",     "hr",     "li",       "listing",
    "main",    "menu",    "nav",    "ol",         "p",      "pre",      "search",
    "section", "summary", "table",  "ul",         "xmp",    NULL};
/* Elements that end the parser's search for an open p, a or button. */
static const char *const scope_tags[] = {"applet",  "caption", "table",    "td",     "th",
                                         "marquee", "object",  "template", "button", NULL};
static const char *const headings[] = {"h1", "h2", "h3", "h4", "h5", "h6", NULL};
static const char *const sections[] = {"thead", "tbody", "tfoot", NULL};
static const char *const in_table[] = {"caption", "colgroup", "thead", "tbody",
                                       "tfoot",   "script",   "style", NULL};
static const char *const in_section[] = {"tr", "script", "style", NULL};
static const char *const in_row[] = {"td", "th", "script", "style", NULL};
static const char *const in_select[] = {"option", "optgroup", "hr", NULL};
/* Text (other than spaces) would be moved out of these by the parser. */
static const char *const no_text[] = {"table", "thead", "tbody", "tfoot", "tr", "colgroup", NULL};

/* A tag's classes: which of the lists above hold it, and the tags that the
 * nesting rules name one by one. Every element the builder opens is
 * classified once (one binary search), so that checking where it may go
 * is a few bit tests, not dozens of string compares per element. */
enum {
    T_VOID = 1u << 0,
    T_RAW_TEXT = 1u << 1,
    T_RCDATA = 1u << 2,
    T_UNSUPPORTED = 1u << 3,
    T_CLOSES_P = 1u << 4,
    T_SCOPE = 1u << 5,
    T_HEADING = 1u << 6,
    T_SECTION = 1u << 7,
    T_IN_TABLE = 1u << 8,
    T_IN_SECTION = 1u << 9,
    T_IN_ROW = 1u << 10,
    T_IN_SELECT = 1u << 11,
    T_NO_TEXT = 1u << 12,
    T_TABLE = 1u << 13,
    T_TR = 1u << 14,
    T_COLGROUP = 1u << 15,
    T_COL = 1u << 16,
    T_CELL = 1u << 17, /* td, th */
    T_CAPTION = 1u << 18,
    T_SELECT = 1u << 19,
    T_OPTGROUP = 1u << 20,
    T_OPTION = 1u << 21,
    T_LI = 1u << 22,
    T_DESC = 1u << 23, /* dd, dt */
    T_A = 1u << 24,
    T_BUTTON = 1u << 25,
    T_FORM = 1u << 26,
    T_P = 1u << 27,
};

typedef struct {
    const char *name;
    unsigned classes;
} tag_class;

static tag_class tag_classes[160];
static size_t ntag_classes;

static int by_tag_name(const void *a, const void *b) {
    return strcmp(((const tag_class *)a)->name, ((const tag_class *)b)->name);
}

static void classify(const char *const *list, unsigned bit) {
    for (; *list; list++) {
        size_t i = 0;
        while (i < ntag_classes && strcmp(tag_classes[i].name, *list) != 0)
            i++;
        if (i == ntag_classes) tag_classes[ntag_classes++] = (tag_class){*list, 0};
        tag_classes[i].classes |= bit;
    }
}

static void build_tag_classes(void) {
    static const char
        *const table[] = {"table", NULL},
               *const tr[] = {"tr", NULL}, *const colgroup[] = {"colgroup", NULL},
               *const col[] = {"col", NULL}, *const cell[] = {"td", "th", NULL},
               *const caption[] = {"caption", NULL}, *const select[] = {"select", NULL},
               *const optgroup[] = {"optgroup", NULL}, *const option[] = {"option", NULL},
               *const li[] = {"li", NULL}, *const desc[] = {"dd", "dt", NULL},
               *const a[] = {"a", NULL}, *const button[] = {"button", NULL},
               *const form[] = {"form", NULL}, *const p[] = {"p", NULL};
    static const struct {
        const char *const *list;
        unsigned bit;
    } lists[] = {{void_tags, T_VOID},
                 {raw_text_tags, T_RAW_TEXT},
                 {rcdata_tags, T_RCDATA},
                 {unsupported_tags, T_UNSUPPORTED},
                 {closes_p, T_CLOSES_P},
                 {scope_tags, T_SCOPE},
                 {headings, T_HEADING},
                 {sections, T_SECTION},
                 {in_table, T_IN_TABLE},
                 {in_section, T_IN_SECTION},
                 {in_row, T_IN_ROW},
                 {in_select, T_IN_SELECT},
                 {no_text, T_NO_TEXT},
                 {table, T_TABLE},
                 {tr, T_TR},
                 {colgroup, T_COLGROUP},
                 {col, T_COL},
                 {cell, T_CELL},
                 {caption, T_CAPTION},
                 {select, T_SELECT},
                 {optgroup, T_OPTGROUP},
                 {option, T_OPTION},
                 {li, T_LI},
                 {desc, T_DESC},
                 {a, T_A},
                 {button, T_BUTTON},
                 {form, T_FORM},
                 {p, T_P}};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        classify(lists[i].list, lists[i].bit);
    qsort(tag_classes, ntag_classes, sizeof *tag_classes, by_tag_name);
}

/* The classes of a lowercase tag name (0 for any other tag). */
static unsigned classes_of(const char *tag) {
    static pthread_once_t built = PTHREAD_ONCE_INIT;
    pthread_once(&built, build_tag_classes);
    tag_class key = {tag, 0};
    const tag_class *found =
        bsearch(&key, tag_classes, ntag_classes, sizeof *tag_classes, by_tag_name);
    return found ? found->classes : 0;
}

bool spark_html_is_void(const char *tag) { return (classes_of(tag) & T_VOID) != 0; }

bool spark_html_holds_text_only(const char *tag, bool *escaped) {
    unsigned c = classes_of(tag);
    if (escaped) *escaped = (c & T_RCDATA) != 0;
    return (c & (T_RAW_TEXT | T_RCDATA)) != 0;
}

/* ---- serialization ---- */

void spark_html_escape(spark_sbuf *out, const char *s, bool attr) {
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        size_t skip = 1;
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = attr ? "&quot;" : NULL;
            break;
        case '\xC2':
            if (p[1] == '\xA0') rep = "&nbsp;", skip = 2;
            break;
        default:
            break;
        }
        if (!rep) continue;
        spark_sbuf_append(out, run, (size_t)(p - run));
        spark_sbuf_puts(out, rep);
        p += skip - 1;
        run = p + 1;
    }
    spark_sbuf_puts(out, run);
}

void spark_node_serialize_children(const spark_node *n, spark_sbuf *out) {
    for (size_t i = 0; i < n->nkids; i++)
        spark_node_serialize(n->kids[i], out);
}

void spark_node_serialize(const spark_node *n, spark_sbuf *out) {
    switch (n->kind) {
    case SPARK_NODE_FRAGMENT:
        spark_node_serialize_children(n, out);
        return;
    case SPARK_NODE_TEXT:
        spark_html_escape(out, n->text, false);
        return;
    case SPARK_NODE_RAW:
        spark_sbuf_puts(out, n->text);
        return;
    case SPARK_NODE_ELEMENT:
        break;
    }
    spark_sbuf_putc(out, '<');
    spark_sbuf_puts(out, n->tag);
    for (size_t i = 0; i < n->nattrs; i++) {
        spark_sbuf_putc(out, ' ');
        spark_sbuf_puts(out, n->attrs[i].name);
        spark_sbuf_puts(out, "=\"");
        spark_html_escape(out, n->attrs[i].value, true);
        spark_sbuf_putc(out, '"');
    }
    spark_sbuf_putc(out, '>');
    if (spark_html_is_void(n->tag)) return;
    /* The parser drops one line feed right after these start tags. */
    if (n->nkids && n->kids[0]->kind == SPARK_NODE_TEXT && n->kids[0]->text[0] == '\n' &&
        (strcmp(n->tag, "pre") == 0 || strcmp(n->tag, "textarea") == 0 ||
         strcmp(n->tag, "listing") == 0))
        spark_sbuf_putc(out, '\n');
    spark_node_serialize_children(n, out);
    spark_sbuf_puts(out, "</");
    spark_sbuf_puts(out, n->tag);
    spark_sbuf_putc(out, '>');
}

/* ---- text cleaning ---- */

/* Copies `s` to `out` (when not NULL) with every maximal invalid UTF-8
 * subsequence replaced by U+FFFD, as the WHATWG decoder does, and CR or CRLF
 * turned into LF, as the parser's input stream does. Returns the length. */
static size_t clean_utf8(const unsigned char *s, size_t n, char *out) {
    size_t i = 0, o = 0;
#define EMIT(c)                                                                                    \
    do {                                                                                           \
        if (out) out[o] = (char)(c);                                                               \
        o++;                                                                                       \
    } while (0)
#define EMIT_FFFD()                                                                                \
    do {                                                                                           \
        EMIT(0xEF);                                                                                \
        EMIT(0xBF);                                                                                \
        EMIT(0xBD);                                                                                \
    } while (0)
    while (i < n) {
        unsigned c = s[i];
        if (c == '\r') {
            EMIT('\n');
            i += (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (c < 0x80) {
            EMIT(c);
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            EMIT_FFFD();
            i++;
            continue;
        }
        size_t k = 1;
        while (k <= need && i + k < n && s[i + k] >= lo && s[i + k] <= hi) {
            lo = 0x80;
            hi = 0xBF;
            k++;
        }
        if (k == need + 1) {
            for (size_t j = 0; j < k; j++)
                EMIT(s[i + j]);
        } else {
            EMIT_FFFD();
        }
        i += k;
    }
#undef EMIT
#undef EMIT_FFFD
    return o;
}

static char *clean_copy(spark_tree *t, const char *s, size_t n) {
    size_t len = clean_utf8((const unsigned char *)s, n, NULL);
    char *d = arena_alloc(&t->mem, len + 1);
    if (!d) return NULL;
    clean_utf8((const unsigned char *)s, n, d);
    d[len] = '\0';
    return d;
}

char *spark_tree_clean_copy(spark_tree *t, const char *s, size_t n) { return clean_copy(t, s, n); }

/* ---- attribute policy ----
 *
 * Escaping keeps a value inside its attribute; it does not make the value
 * harmless there. An event handler attribute is script, a javascript: URL
 * is script, style and srcdoc are markup. So the builder decides, by name,
 * what an attribute may hold (html.h states the policy for authors). */

/* The seed's event attributes name a component event, not inline script:
 * they become the attributes spark.js binds, with the same value. */
static const char *event_alias(const char *lname) {
    static const char *const map[][2] = {{"onclick", "spark-click"},
                                         {"onchange", "spark-change"},
                                         {"oninput", "spark-input"},
                                         {"onsubmit", "spark-submit"},
                                         {"onkeydown", "spark-keydown"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(lname, map[i][0]) == 0) return map[i][1];
    return NULL;
}

static bool in_list(const char *const *list, const char *s) {
    for (; *list; list++)
        if (strcmp(*list, s) == 0) return true;
    return false;
}

typedef enum { URL_NONE, URL_ONE, URL_LIST } url_kind;

/* The attribute names the policy judges (every other name is author data),
 * sorted for bsearch: a render sets thousands of attributes, and one
 * search is a handful of compares where a scan of every list was dozens.
 *   - URL attributes: the browser resolves them as URLs (URL_LIST: several
 *     of them). The names are judged on every element, a little stricter
 *     than the browser, so that no tag can be forgotten; xlink:href needs no
 *     entry, as names with ':' and the svg and math elements are refused
 *     already. "data" is a URL on object only.
 *   - TRUST: attributes that hold markup, style or page-wide behaviour,
 *     allowed only with a spark_trusted() value; so is the src of a script,
 *     which loads script from wherever it points, https or not. */
enum { A_URL = 1, A_URL_LIST = 2, A_TRUST = 4 };

typedef struct {
    const char *name;
    unsigned kind;
} attr_policy;

static const attr_policy policies[] = {
    {"action", A_URL},
    {"archive", A_URL_LIST},
    {"attributionsrc", A_URL_LIST},
    {"background", A_URL},
    {"cite", A_URL},
    {"classid", A_URL},
    {"codebase", A_URL},
    {"data", A_URL},
    {"dynsrc", A_URL},
    {"formaction", A_URL},
    {"href", A_URL},
    {"http-equiv", A_TRUST},
    {"icon", A_URL},
    {"imagesrcset", A_URL_LIST},
    {"itemid", A_URL},
    {"longdesc", A_URL},
    {"lowsrc", A_URL},
    {"manifest", A_URL},
    {"ping", A_URL_LIST},
    {"poster", A_URL},
    {"profile", A_URL},
    {"src", A_URL},
    {"srcdoc", A_TRUST},
    {"srcset", A_URL_LIST},
    {"style", A_TRUST},
    {"xmlns", A_URL},
};

/* What the policy asks of attribute `lname` on `tag`: A_* bits, 0 for none. */
static unsigned policy_of(const char *tag, const char *lname) {
    const attr_policy *p = NULL;
    size_t lo = 0, hi = sizeof policies / sizeof *policies;
    while (lo < hi && !p) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(lname, policies[mid].name);
        if (c == 0)
            p = &policies[mid];
        else if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (!p) return 0;
    if (strcmp(lname, "data") == 0) return strcmp(tag, "object") == 0 ? A_URL : 0;
    if (strcmp(lname, "src") == 0 && strcmp(tag, "script") == 0) return A_URL | A_TRUST;
    return p->kind;
}

static url_kind url_attr(unsigned policy) {
    return policy & A_URL_LIST ? URL_LIST : policy & A_URL ? URL_ONE : URL_NONE;
}

/* Does one URL pass, judged as the URL parser reads it? The parser strips
 * leading and trailing C0 controls and spaces, removes every tab, LF and
 * CR, and matches the scheme case-insensitively; a scheme is an ASCII
 * letter, then letters, digits, '+', '-' or '.', then ':'. Anything else
 * is relative (a path, ?query, #fragment or //host), which is allowed:
 * //host is a network URL of the page's own scheme, like https. Other
 * control characters (C0, DEL, C1) have no place in a URL: refused. */
static bool url_allowed(const char *s, size_t n) {
    static const char *const schemes[] = {"http", "https", "mailto", "tel", NULL};
    while (n && (unsigned char)*s <= 0x20) {
        s++;
        n--;
    }
    while (n && (unsigned char)s[n - 1] <= 0x20)
        n--;
    char scheme[8];
    size_t k = 0;
    bool scanning = true, too_long = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t' || c == '\n' || c == '\r') continue;
        if (c < 0x20 || c == 0x7F) return false;
        if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9F)
            return false;
        if (!scanning) continue;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (c == ':' && k > 0) {
            scheme[k < sizeof scheme ? k : sizeof scheme - 1] = '\0';
            if (too_long || !in_list(schemes, scheme)) return false;
            scanning = false;
        } else if (alpha ||
                   (k > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))) {
            if (k + 1 < sizeof scheme)
                scheme[k] = (char)(alpha ? (c | 0x20) : c);
            else
                too_long = true;
            k++;
        } else {
            scanning = false; /* not a scheme: relative */
        }
    }
    return true;
}

/* A list of URLs (srcset, ping, archive): every piece between ASCII
 * whitespace and commas is judged. For srcset that judges each candidate's
 * URL and also its descriptors ("2x", "100w", which pass), and a URL with
 * a comma inside is judged in pieces: stricter than the browser, never
 * looser, as a scheme cannot hold a comma. */
static bool url_list_allowed(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (i < n && strchr(" \t\n\f\r,", s[i]) && s[i])
            i++;
        size_t start = i;
        while (i < n && !strchr(" \t\n\f\r,", s[i]))
            i++;
        if (i > start && !url_allowed(s + start, i - start)) return false;
    }
    return true;
}

/* Decodes character references as the tokenizer does in an attribute
 * value, exactly enough to judge a URL: every ASCII result is exact, any
 * other character becomes the byte 0x80, which no scheme holds. Numeric
 * references with or without ';'; of the named ones, those that decode to
 * a character that can change the verdict (':', '+', '.', tab, LF) and
 * &amp;, for decoding once only. No named reference decodes to an ASCII
 * letter or digit, and any other one left undecoded keeps its '&', which
 * ends a scheme just as its character would. Returns the length. */
static size_t decode_refs(const char *s, size_t n, char *out) {
    static const struct {
        const char *name;
        char c;
    } named[] = {{"colon;", ':'}, {"plus;", '+'},     {"period;", '.'},
                 {"Tab;", '\t'},  {"NewLine;", '\n'}, {"amp;", '&'}};
    size_t o = 0, i = 0;
    while (i < n) {
        if (s[i] != '&') {
            out[o++] = s[i++];
            continue;
        }
        size_t j = i + 1;
        if (j < n && s[j] == '#') {
            j++;
            bool hex = j < n && (s[j] == 'x' || s[j] == 'X');
            if (hex) j++;
            size_t digits = j;
            unsigned long v = 0;
            for (; j < n; j++) {
                int d = s[j] >= '0' && s[j] <= '9'          ? s[j] - '0'
                        : hex && s[j] >= 'a' && s[j] <= 'f' ? s[j] - 'a' + 10
                        : hex && s[j] >= 'A' && s[j] <= 'F' ? s[j] - 'A' + 10
                                                            : -1;
                if (d < 0) break;
                v = v > 0x10FFFF ? v : v * (hex ? 16 : 10) + (unsigned long)d;
            }
            if (j > digits) {
                if (j < n && s[j] == ';') j++;
                out[o++] = (char)(v > 0 && v < 0x80 ? v : 0x80);
                i = j;
                continue;
            }
        } else {
            size_t k = 0;
            while (k < sizeof named / sizeof *named &&
                   (n - j < strlen(named[k].name) ||
                    memcmp(s + j, named[k].name, strlen(named[k].name)) != 0))
                k++;
            if (k < sizeof named / sizeof *named) {
                out[o++] = named[k].c;
                i = j + strlen(named[k].name);
                continue;
            }
        }
        out[o++] = s[i++];
    }
    return o;
}

/* Why the value of URL attribute `lname` is refused, or NULL. It is judged
 * as the builder sends it (escaped, so its references stay literal text)
 * and as the browser would decode it if it ever reached markup unescaped:
 * both must pass. */
static const char *url_refused(url_kind kind, const char *v) {
    size_t n = strlen(v);
    char *decoded = malloc(n + 1);
    if (!decoded) return "out of memory";
    size_t dn = decode_refs(v, n, decoded);
    bool ok = kind == URL_LIST ? url_list_allowed(v, n) && url_list_allowed(decoded, dn)
                               : url_allowed(v, n) && url_allowed(decoded, dn);
    free(decoded);
    return ok ? NULL : "is not a relative, http, https, mailto or tel URL";
}

/* ---- the builder ----
 *
 * Reuse. A builder made with spark_html_new_reusing() follows the tree of
 * an earlier render (its base) while the render runs: each element, text
 * or raw node given is compared with the base's node at the same place
 * (the next child of the open element's counterpart, or for a keyed
 * element out of place, the base child with its key). An element given
 * the same tag and attributes, in the same order, and then the very same
 * children IS the base's node: nothing of it is allocated or checked
 * again, and the diff skips it by identity instead of walking it. So a
 * render costs the author's loop plus a comparison per unchanged node,
 * and the diff costs what changed. It is exact by construction:
 *   - a reused node is what building would have given: input equal to a
 *     stored name is a valid lowercase name, and input equal to a stored
 *     (cleaned) value or text cleans to itself, as cleaning is idempotent;
 *   - the checks that depend on more than those bytes hold or are redone:
 *     the nesting rules see the same open ancestors (a counterpart always
 *     has its node's tag, from the roots down), and a value the policy
 *     judges must be trusted in this builder, or takes the full path;
 *   - nodes never change once built (adjacent text makes a new node), so
 *     trees may share them; a builder holds a reference on its base, which
 *     keeps the shared nodes alive, and spark_html_compact() bounds how
 *     many builders lean on each other. */

typedef struct {
    spark_node *node; /* the element built; NULL while it is `old` so far (or out of memory) */
    spark_node *old;  /* its counterpart in the base's tree, or NULL */
    size_t same;      /* while node is NULL: the first `same` kids of old were given again */
    size_t cursor;    /* the kid of old to compare the next child with */
    size_t differ;    /* kids of node that are not old's kid at their index */
    bool attrs_same;  /* node has old's attributes */
    bool attach;      /* goes into its parent when closed (false: rejected) */
    bool entered;     /* the block macro ran its body once */
} frame;

/* One row of a list given through spark_each: the kids [at, at + count)
 * of the list's parent element, the markup of `item`. */
typedef struct {
    const void *item;
    uint32_t at;
    uint32_t count : 30;
    uint32_t counted : 1;  /* what the row function returned */
    uint32_t reusable : 1; /* its kids are elements that no text beside it joins */
} memo_row;                /* 16 bytes: a render writes one per item */

/* One spark_each call of a render: the state list it gave, what a row was
 * a function of (the row function and argument, with the item), the
 * element its rows went into, and a hold on the items (the state's list)
 * that keeps them alive and unchanged while a later render may compare
 * with them. */
typedef struct {
    void *hold;
    void (*release)(void *);
    void (*fn)(void);
    const char *name, *arg;   /* in the arena; arg may be NULL */
    const spark_node *parent; /* NULL until the parent closes (or it was rejected) */
    size_t depth;             /* open elements when it began */
    size_t first, nrows;      /* its rows in `rows` */
} memo_list;

struct spark_html {
    spark_tree tree;
    frame root;   /* the root fragment's */
    frame *stack; /* the open elements */
    size_t depth, cap;
    const char **trusted; /* values from spark_trusted, by address */
    size_t ntrusted, trusted_cap;
    spark_html *base; /* the earlier render this one takes nodes from (a reference) */
    unsigned chain;   /* builders behind this one through base */
    unsigned kept;    /* compactions that kept this tree's nodes (see there) */
    bool shares;      /* took a node or string of base's tree */
    int refs;         /* 1 + the builders whose base this is */
    /* kid index + 1 by key, of one element of the base (open addressing) */
    const spark_node *keyed;
    size_t *slots, nslots;
    /* lists given by spark_each, for the next render (see "Rows") */
    memo_list *lists;
    size_t nlists, lists_cap;
    memo_row *rows;
    size_t nrows, rows_cap;
    size_t *open_lists; /* lists whose parent is still open, innermost last */
    size_t nopen, open_cap;
    /* the list being given: its base counterpart and where a row began */
    bool in_list;
    const memo_list *from; /* in base, or NULL */
    size_t from_cursor;    /* the base row to compare the next item with */
    size_t misses;         /* items of this list not found in order */
    size_t lists_seen;     /* base lists already matched by this render */
    size_t row_at;
    const spark_node *row_before; /* the kid before the row */
    /* base row index + 1 by item, of `from` (open addressing) */
    const memo_list *indexed;
    size_t *islots, nislots;
    char err[200];
};

const char spark_html_omit_[1] = "";

static void fail(spark_html *h, const char *fmt, ...) SPARK_PRINTF(2, 3);
static void fail(spark_html *h, const char *fmt, ...) {
    if (h->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof h->err, fmt, ap);
    va_end(ap);
}

static spark_html *builder_new(spark_html *base) {
    spark_html *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->refs = 1;
    h->tree.root = spark_tree_new_node(&h->tree, SPARK_NODE_FRAGMENT);
    if (!h->tree.root) {
        free(h);
        return NULL;
    }
    h->root.node = h->tree.root;
    if (base && !spark_html_error(base)) {
        base->refs++;
        h->base = base;
        h->chain = base->chain + 1;
        h->root.old = base->tree.root;
        h->root.attrs_same = true;
    }
    return h;
}

spark_html *spark_html_new(void) { return builder_new(NULL); }

spark_html *spark_html_new_reusing(spark_html *base) { return builder_new(base); }

/* Lets the items of h's lists go: no render will compare with them. */
static void release_lists(spark_html *h) {
    for (size_t i = 0; i < h->nlists; i++)
        if (h->lists[i].release) h->lists[i].release(h->lists[i].hold);
    free(h->lists);
    free(h->rows);
    h->lists = NULL;
    h->rows = NULL;
    h->nlists = h->lists_cap = h->nrows = h->rows_cap = 0;
}

void spark_html_free(spark_html *h) {
    while (h && --h->refs == 0) {
        spark_html *base = h->base;
        release_lists(h);
        arena_free(&h->tree.mem);
        free(h->stack);
        free(h->trusted);
        free(h->slots);
        free(h->open_lists);
        free(h->islots);
        free(h);
        h = base;
    }
}

const char *spark_html_error(const spark_html *h) {
    if (!h) return "no builder";
    if (h->err[0]) return h->err;
    if (h->depth) return "an element was left open (a return or break inside its block?)";
    return NULL;
}

const spark_node *spark_html_root(const spark_html *h) { return h->tree.root; }

char *spark_html_render(const spark_html *h, size_t *len) {
    if (!h || spark_html_error(h)) return NULL;
    spark_sbuf b = {0};
    spark_sbuf_append(&b, "", 0);
    spark_node_serialize(h->tree.root, &b);
    if (b.failed) {
        spark_sbuf_free(&b);
        return NULL;
    }
    if (len) *len = b.len;
    return b.data;
}

/* A copy of node `n` in h's arena without its kids (room for `kids_cap`),
 * or NULL when out of memory: it holds nothing of n's arena. */
static spark_node *copy_shell(spark_html *h, const spark_node *n, size_t kids_cap) {
    spark_tree *t = &h->tree;
    spark_node *c = spark_tree_new_node(t, n->kind);
    if (!c) return NULL;
    c->judged = n->judged;
    c->tag_class = n->tag_class;
    if (n->tag && !(c->tag = spark_tree_strdup(t, n->tag, strlen(n->tag)))) return NULL;
    if (n->text && !(c->text = spark_tree_strdup(t, n->text, strlen(n->text)))) return NULL;
    if (n->nattrs && !(c->attrs = arena_alloc(&t->mem, n->nattrs * sizeof *c->attrs))) return NULL;
    c->attrs_cap = n->nattrs;
    for (; c->nattrs < n->nattrs; c->nattrs++) {
        const spark_attr *a = &n->attrs[c->nattrs];
        spark_attr *d = &c->attrs[c->nattrs];
        if (!(d->name = spark_tree_strdup(t, a->name, strlen(a->name))) ||
            !(d->value = spark_tree_strdup(t, a->value, strlen(a->value))))
            return NULL;
        if (a->value == n->key) c->key = d->value;
    }
    if (kids_cap && !(c->kids = arena_alloc(&t->mem, kids_cap * sizeof *c->kids))) return NULL;
    c->kids_cap = kids_cap;
    return c;
}

/* A compaction's copy: into which builder, the lists whose parents move
 * with it, and the arena whose nodes stay where they are (its chunks'
 * address ranges, sorted), if any. */
typedef struct {
    spark_html *into;
    memo_list *lists;
    size_t nlists;
    uintptr_t (*keep)[2];
    size_t nkeep;
} copying;

static int by_start(const void *a, const void *b) {
    uintptr_t x = ((const uintptr_t *)a)[0], y = ((const uintptr_t *)b)[0];
    return (x > y) - (x < y);
}

/* Whether node `n` is in the arena the copy keeps. */
static bool kept(const copying *cp, const spark_node *n) {
    uintptr_t p = (uintptr_t)n;
    size_t lo = 0, hi = cp->nkeep;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p < cp->keep[mid][0])
            hi = mid;
        else if (p >= cp->keep[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* A copy of `n` in the copy's builder (n itself where it is kept; its
 * subtree then is too, as a builder without a base holds all it points
 * to), or NULL when out of memory. Lists whose parent it copies get the
 * copy as their parent. */
static spark_node *copy_node(copying *cp, spark_node *n) {
    if (cp->nkeep && kept(cp, n)) return n;
    spark_node *c = copy_shell(cp->into, n, n->nkids);
    if (!c) return NULL;
    c->opaque = n->opaque;
    for (; c->nkids < n->nkids; c->nkids++)
        if (!(c->kids[c->nkids] = copy_node(cp, n->kids[c->nkids]))) return NULL;
    for (size_t i = 0; n->nkids && i < cp->nlists; i++)
        if (cp->lists[i].parent == n) cp->lists[i].parent = c;
    return c;
}

/* The address ranges of the chunks of `h`'s arena, sorted; NULL when out
 * of memory. */
static uintptr_t (*chunk_ranges(const spark_html *h, size_t *n))[2] {
    *n = 0;
    for (const chunk *c = h->tree.mem.head; c; c = c->next)
        (*n)++;
    uintptr_t(*r)[2] = malloc((*n + 1) * sizeof *r);
    if (!r) return NULL;
    size_t i = 0;
    for (const chunk *c = h->tree.mem.head; c; c = c->next, i++) {
        r[i][0] = (uintptr_t)c;
        r[i][1] = (uintptr_t)c + CHUNK_HEADER + c->cap;
    }
    qsort(r, *n, sizeof *r, by_start);
    return r;
}

void spark_html_compact(spark_html **hp) {
    spark_html *h = *hp;
    if (!h || !h->base || spark_html_error(h)) return;
    /* A builder behind h that only its successor holds is no viewer's
     * tree: no render will compare with its lists. */
    for (spark_html *b = h->base; b; b = b->base)
        if (b->refs == 1) release_lists(b);
    if (!h->shares) {
        /* Nothing of base is in the tree (it all changed): let it go. */
        spark_html_free(h->base);
        h->base = NULL;
        h->chain = 0;
        return;
    }
    /* Each builder of the chain holds what its render built; the first
     * holds a whole tree. Past 8 renders, or twice that tree in changes,
     * most of what the chain holds is dead: copy what lives. While the
     * changes are less than the first tree, what lives of it is most of
     * it: that stays where it is (dead rows of it stay too, as much as the
     * changes at most) and the copy is of the rest, rows that changed and
     * the elements above them: a few, where a whole copy was a list of
     * thousands every 8 renders. Not more than 8 times, though: a tree
     * that shrank would keep its old self alive for long. */
    size_t held = 0, first = 0;
    spark_html *oldest = h;
    for (spark_html *b = h; b; b = b->base) {
        held += b->tree.mem.bytes;
        first = b->tree.mem.bytes;
        oldest = b;
    }
    if (h->chain < SPARK_HTML_MAX_CHAIN && held <= 3 * first) return;
    bool keep = held <= 2 * first && oldest->kept < SPARK_HTML_MAX_CHAIN;
    spark_html *c = builder_new(NULL);
    copying cp = {.into = c, .lists = h->lists, .nlists = h->nlists};
    if (keep) cp.keep = chunk_ranges(oldest, &cp.nkeep);
    const spark_node **parents = malloc((h->nlists + 1) * sizeof *parents);
    if (parents)
        for (size_t i = 0; i < h->nlists; i++)
            parents[i] = h->lists[i].parent;
    spark_node *root = c && parents && (!keep || cp.keep) ? copy_node(&cp, h->tree.root) : NULL;
    free(cp.keep);
    if (!root) {
        /* out of memory: the chain stays, a little longer, as it was */
        for (size_t i = 0; parents && i < h->nlists; i++)
            h->lists[i].parent = parents[i];
        free(parents);
        spark_html_free(c);
        return;
    }
    free(parents);
    if (keep) {
        /* c holds nodes of the oldest builder: keep it alive for them. */
        oldest->refs++;
        oldest->kept++;
        c->base = oldest;
        c->chain = 1;
        c->shares = true;
    }
    c->tree.root = c->root.node = root;
    /* The lists go with the tree, their parents now the copies. */
    c->lists = h->lists;
    c->nlists = h->nlists;
    c->lists_cap = h->lists_cap;
    c->rows = h->rows;
    c->nrows = h->nrows;
    c->rows_cap = h->rows_cap;
    for (size_t i = 0; i < c->nlists; i++) {
        memo_list *l = &c->lists[i];
        if (!(l->name = spark_tree_strdup(&c->tree, l->name, strlen(l->name))) ||
            (l->arg && !(l->arg = spark_tree_strdup(&c->tree, l->arg, strlen(l->arg)))))
            l->parent = NULL; /* out of memory: a list no render will match */
    }
    h->lists = NULL;
    h->rows = NULL;
    h->nlists = h->nrows = 0;
    spark_html_free(h);
    *hp = c;
}

/* ---- the builder: following the base ---- */

static frame *top(spark_html *h) { return h->depth ? &h->stack[h->depth - 1] : &h->root; }

/* What a frame's element is so far (its tag, class and attributes). */
static const spark_node *frame_el(const frame *f) { return f->node ? f->node : f->old; }

/* The kid of the base to compare the next child of `f` with, or NULL. */
static spark_node *next_old(const frame *f) {
    return f->old && f->cursor < f->old->nkids ? f->old->kids[f->cursor] : NULL;
}

/* The element of a frame that was its base's so far, built now that it
 * differs: old's tag and attributes, and the kids given so far. */
static spark_node *materialize(spark_html *h, frame *f) {
    if (f->node || !f->old) return f->node;
    /* Its own copy of old's tag and attributes: a render that changed
     * everything then holds nothing of its base (spark_html_compact). The
     * kids given so far are base's (h->shares was set when they were). */
    spark_node *el = copy_shell(h, f->old, f->old->nkids + 4);
    if (!el) {
        fail(h, "out of memory");
        return NULL;
    }
    if (f->same) memcpy(el->kids, f->old->kids, f->same * sizeof *el->kids);
    el->nkids = f->same;
    for (size_t i = 0; i < f->same; i++)
        if (el->kids[i]->kind == SPARK_NODE_RAW) el->opaque = true;
    f->node = el;
    f->attrs_same = true;
    f->differ = 0;
    return el;
}

/* Whether `kid` at index `at` of f's element is the base's kid there. */
static bool is_old_kid(const frame *f, size_t at, const spark_node *kid) {
    return f->old && at < f->old->nkids && f->old->kids[at] == kid;
}

/* Appends a finished child to the open element of `f`. */
static void frame_add(spark_html *h, frame *f, spark_node *kid) {
    if (!f->node && f->old) {
        if (is_old_kid(f, f->same, kid)) {
            f->same++;
            return;
        }
        if (!materialize(h, f)) return;
    }
    if (!f->node) return; /* out of memory already */
    size_t at = f->node->nkids;
    if (spark_tree_insert_kid(&h->tree, f->node, at, kid) != 0) {
        fail(h, "out of memory");
        return;
    }
    if (!is_old_kid(f, at, kid)) f->differ++;
}

/* frame_add for a kid known to be an element: it is not read (spark_each
 * gives thousands of rows again, and reading each one's node, scattered
 * over the base's arena, was most of what such a row cost). */
static void frame_add_element(spark_html *h, frame *f, spark_node *kid) {
    spark_node *n = f->node;
    if (!n || n->nkids == n->kids_cap) { /* following the base, or full */
        frame_add(h, f, kid);
        return;
    }
    if (!is_old_kid(f, n->nkids, kid)) f->differ++;
    n->kids[n->nkids++] = kid;
}

/* The last child given to the open element of `f`, or NULL. */
static spark_node *frame_last(const frame *f) {
    if (f->node) return f->node->nkids ? f->node->kids[f->node->nkids - 1] : NULL;
    return f->old && f->same ? f->old->kids[f->same - 1] : NULL;
}

/* Replaces the last child (text that grew): by the base's kid at that
 * index when it is the same text, so the identity stays. */
static void frame_set_last(spark_html *h, frame *f, spark_node *kid) {
    if (!materialize(h, f) || !f->node->nkids) return;
    size_t at = f->node->nkids - 1;
    const spark_node *o = f->old && at < f->old->nkids ? f->old->kids[at] : NULL;
    if (o && o->kind == kid->kind && strcmp(o->text, kid->text) == 0) {
        kid = f->old->kids[at];
        h->shares = true;
    }
    if (!is_old_kid(f, at, f->node->kids[at])) f->differ--;
    f->node->kids[at] = kid;
    if (!is_old_kid(f, at, kid)) f->differ++;
}

/* What a closed frame leaves in its parent: the base's node when nothing
 * differs, else the node built. */
static spark_node *frame_result(spark_html *h, frame *f) {
    bool same = f->node ? f->old && f->attrs_same && !f->differ && f->node->nkids == f->old->nkids
                        : f->old && f->same == f->old->nkids;
    if (!same) return f->node ? f->node : materialize(h, f);
    h->shares = true;
    return f->old;
}

static bool same_key(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static uint64_t hash_key(const char *s) {
    uint64_t x = 1469598103934665603ull;
    for (; *s; s++)
        x = (x ^ (unsigned char)*s) * 1099511628211ull;
    return x;
}

/* The kid of base element `o` keyed `key` with tag `tag` (*at: its index),
 * or NULL. An index of o's keys is built on the first search and kept for
 * the next ones, as a list's items come one after another. */
static spark_node *keyed_kid(spark_html *h, const spark_node *o, const char *key, const char *tag,
                             size_t *at) {
    if (h->keyed != o) {
        size_t n = 16;
        while (n < 2 * o->nkids)
            n *= 2;
        size_t *slots = n <= h->nslots ? h->slots : malloc(n * sizeof *slots);
        if (!slots) return NULL;
        if (slots != h->slots) {
            free(h->slots);
            h->slots = slots;
            h->nslots = n;
        }
        memset(slots, 0, h->nslots * sizeof *slots);
        for (size_t i = 0; i < o->nkids; i++) {
            const char *k = o->kids[i]->key;
            if (!k) continue;
            size_t s = (size_t)hash_key(k) & (h->nslots - 1);
            while (slots[s] && strcmp(o->kids[slots[s] - 1]->key, k) != 0)
                s = (s + 1) & (h->nslots - 1);
            if (!slots[s]) slots[s] = i + 1; /* a duplicate key: the first one */
        }
        h->keyed = o;
    }
    size_t s = (size_t)hash_key(key) & (h->nslots - 1);
    for (; h->slots[s]; s = (s + 1) & (h->nslots - 1)) {
        spark_node *k = o->kids[h->slots[s] - 1];
        if (strcmp(k->key, key) != 0) continue;
        if (k->kind != SPARK_NODE_ELEMENT || strcmp(k->tag, tag) != 0) return NULL;
        *at = h->slots[s] - 1;
        return k;
    }
    return NULL;
}

static bool valid_name(const char *s) {
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
    size_t n = 0;
    for (; *s; s++, n++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return n <= 64;
}

static char *lower_copy(spark_tree *t, const char *s) {
    size_t n = strlen(s);
    char *d = spark_tree_strdup(t, s, n);
    if (d)
        for (size_t i = 0; i < n; i++)
            if (d[i] >= 'A' && d[i] <= 'Z') d[i] = (char)(d[i] - 'A' + 'a');
    return d;
}

/* The n-th open ancestor (0 = the parent), or NULL past the root. */
static const spark_node *ancestor(const spark_html *h, size_t n) {
    return n < h->depth ? frame_el(&h->stack[h->depth - 1 - n]) : NULL;
}

/* Is there an open element of class `tag` before one of class `stops`? */
static bool open_in_scope(const spark_html *h, unsigned tag, unsigned stops) {
    for (size_t i = 0; i < h->depth; i++) {
        const spark_node *a = ancestor(h, i);
        if (!a) continue;
        if (a->tag_class & tag) return true;
        if (a->tag_class & stops) return false;
    }
    return false;
}

/* Why the parser would not rebuild `el` as a child of the open element,
 * or NULL when it would. Not a validator: only what changes the DOM. */
static const char *misnested(const spark_html *h, const spark_node *el) {
    const spark_node *parent = ancestor(h, 0);
    unsigned t = el->tag_class, p = parent ? parent->tag_class : 0;

    if (t & T_UNSUPPORTED) return "is not supported by the builder (use spark_raw)";
    if (p & T_VOID) return "cannot go in a void element";
    if (p & (T_RAW_TEXT | T_RCDATA)) return "cannot go in an element that holds only text";
    if ((p & T_TABLE) && !(t & T_IN_TABLE))
        return "cannot go directly in a table (use thead, tbody or tfoot)";
    if ((p & T_SECTION) && !(t & T_IN_SECTION)) return "cannot go in a table section";
    if ((p & T_TR) && !(t & T_IN_ROW)) return "cannot go in a tr";
    if ((p & T_COLGROUP) && !(t & T_COL)) return "cannot go in a colgroup";
    if ((t & T_CELL) && !(p & T_TR)) return "must be a child of a tr";
    if ((t & T_TR) && !(p & T_SECTION)) return "must be a child of thead, tbody or tfoot";
    if ((t & (T_SECTION | T_CAPTION | T_COLGROUP)) && !(p & T_TABLE))
        return "must be a child of a table";
    if ((t & T_COL) && !(p & T_COLGROUP)) return "must be a child of a colgroup";
    if ((p & T_SELECT) && !(t & T_IN_SELECT)) return "cannot go in a select";
    if ((p & T_OPTGROUP) && !(t & T_OPTION)) return "cannot go in an optgroup";
    if ((p & T_OPTION) && (t & (T_OPTION | T_OPTGROUP))) return "cannot go in an option";
    if ((t & T_LI) && (p & T_LI)) return "cannot go directly in an li";
    if ((t & T_DESC) && (p & T_DESC)) return "cannot go directly in a dd or dt";
    if ((t & T_HEADING) && (p & T_HEADING)) return "cannot go in a heading";
    if ((t & T_CLOSES_P) && open_in_scope(h, T_P, T_SCOPE))
        return "cannot go in a p (the parser would close the p)";
    if ((t & T_A) && open_in_scope(h, T_A, T_SCOPE)) return "cannot go in an a";
    if ((t & T_BUTTON) && open_in_scope(h, T_BUTTON, T_SCOPE)) return "cannot go in a button";
    if ((t & T_FORM) && open_in_scope(h, T_FORM, 0)) return "cannot go in a form";
    return NULL;
}

/* Opens a frame for element `node` (NULL: none built yet) whose base
 * counterpart is `old`. Written in place: a frame passed by value cost a
 * store-forwarding stall per element. */
static void push(spark_html *h, spark_node *node, spark_node *old, bool attrs_same, bool attach) {
    if (h->depth == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        frame *s = realloc(h->stack, cap * sizeof *s);
        if (!s) {
            /* Keep the stack balanced for the block's close: reuse the top. */
            fail(h, "out of memory");
            if (h->depth) h->stack[h->depth - 1].entered = false;
            return;
        }
        h->stack = s;
        h->cap = cap;
    }
    frame *f = &h->stack[h->depth++];
    f->node = node;
    f->old = old;
    f->same = f->cursor = f->differ = 0;
    f->attrs_same = attrs_same;
    f->attach = attach;
    f->entered = false;
}

static bool is_trusted(const spark_html *h, const char *value) {
    for (size_t i = 0; i < h->ntrusted; i++)
        if (h->trusted[i] == value) return true;
    return false;
}

/* Names and values are short: a loop inline beats a call to strcmp, and
 * this compare runs for every attribute of every unchanged element. */
static inline bool streq(const char *a, const char *b) {
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* Whether the attributes `ap` are exactly those of base element `o`, so
 * that building them would give o's again (see "Reuse" above). Values the
 * policy judges must be trusted here, or they take the full path. */
static bool same_attrs(const spark_html *h, const spark_node *o, va_list ap) {
    size_t i = 0;
    for (;;) {
        const char *name = va_arg(ap, const char *);
        if (!name) break;
        const char *value = va_arg(ap, const char *);
        if (!value) return false; /* the full path reports it */
        if (value == spark_html_omit_) continue;
        if (i == o->nattrs) return false;
        const spark_attr *a = &o->attrs[i++];
        if (!streq(a->name, name) || !streq(a->value, value)) return false;
        if (o->judged && policy_of(o->tag, name) && !is_trusted(h, value)) return false;
    }
    return i == o->nattrs;
}

static bool attrs_equal(const spark_node *a, const spark_node *b) {
    if (a->nattrs != b->nattrs) return false;
    for (size_t i = 0; i < a->nattrs; i++)
        if (strcmp(a->attrs[i].name, b->attrs[i].name) != 0 ||
            strcmp(a->attrs[i].value, b->attrs[i].value) != 0)
            return false;
    return true;
}

static void vopen(spark_html *h, const char *tag, va_list ap) {
    frame *pf = top(h);
    spark_node *cand = next_old(pf);
    if (cand && cand->kind == SPARK_NODE_ELEMENT && tag && streq(cand->tag, tag)) {
        va_list aq;
        va_copy(aq, ap);
        bool same = same_attrs(h, cand, aq);
        va_end(aq);
        if (same) {
            pf->cursor++;
            push(h, NULL, cand, true, true);
            return;
        }
    }
    const spark_node *parent = frame_el(pf);
    spark_node *el = spark_tree_new_node(&h->tree, SPARK_NODE_ELEMENT);
    bool ok = parent && el;
    if (!el) fail(h, "out of memory");
    if (!valid_name(tag)) {
        fail(h, "invalid tag name \"%.40s\"", tag ? tag : "(null)");
        ok = false;
        if (el) el->tag = ""; /* still a parent for its (discarded) children */
    } else if (el && !(el->tag = lower_copy(&h->tree, tag))) {
        fail(h, "out of memory");
        ok = false;
    } else if (el) {
        el->tag_class = classes_of(el->tag);
        const char *why = misnested(h, el);
        if (why) {
            fail(h, "<%s> %s", el->tag, why);
            ok = false;
        }
    }
    for (;;) {
        const char *name = va_arg(ap, const char *);
        if (!name) break;
        const char *value = va_arg(ap, const char *);
        if (!value) {
            fail(h, "attribute \"%.40s\" has no value (use \"\" or SPARK_OMIT)", name);
            ok = false;
            break;
        }
        if (value == spark_html_omit_ || !el) continue;
        if (!valid_name(name)) {
            fail(h, "invalid attribute name \"%.40s\"", name);
            ok = false;
            continue;
        }
        const char *lname = lower_copy(&h->tree, name);
        if (!lname) {
            ok = false;
            continue;
        }
        if (lname[0] == 'o' && lname[1] == 'n') {
            const char *alias = event_alias(lname);
            if (!alias) {
                fail(h,
                     "attribute \"%.40s\" is inline script: use spark-click, spark-change, "
                     "spark-input, spark-submit or spark-keydown",
                     lname);
                ok = false;
                continue;
            }
            lname = alias; /* static storage: outlives any tree */
        }
        if (spark_node_attr(el, lname)) continue; /* the first one wins */
        bool trusted = is_trusted(h, value);
        unsigned policy = policy_of(el->tag, lname);
        if (!trusted && (policy & A_TRUST)) {
            fail(h, "<%s %s> needs a spark_trusted() value", el->tag, lname);
            ok = false;
            continue;
        }
        char *v = clean_copy(&h->tree, value, strlen(value));
        if (!v) {
            fail(h, "out of memory");
            ok = false;
            continue;
        }
        url_kind kind = trusted ? URL_NONE : url_attr(policy);
        const char *why = kind == URL_NONE ? NULL : url_refused(kind, v);
        if (why) {
            fail(h, "<%s %s> %s", el->tag, lname, why);
            ok = false;
            continue;
        }
        if (policy) el->judged = true;
        if (append_attr(&h->tree, el, lname, v) != 0) {
            fail(h, "out of memory");
            ok = false;
        }
    }
    /* Its counterpart in the base: the next kid there, if it is the same
     * element (tag and key); else, for a keyed one, the kid with its key. */
    spark_node *old = NULL;
    if (ok && pf->old) {
        size_t at;
        if (cand && cand->kind == SPARK_NODE_ELEMENT && strcmp(cand->tag, el->tag) == 0 &&
            same_key(cand->key, el->key)) {
            old = cand;
            pf->cursor++;
        } else if (el->key && (old = keyed_kid(h, pf->old, el->key, el->tag, &at))) {
            pf->cursor = at + 1;
        }
    }
    /* A rejected element is built but never attached: its whole subtree
     * disappears, and the recorded error makes the render fail. */
    push(h, el, old, old && attrs_equal(el, old), ok);
}

void spark_open(spark_html *h, const char *tag, ...) {
    if (!h) return;
    va_list ap;
    va_start(ap, tag);
    vopen(h, tag, ap);
    va_end(ap);
}

void spark_html_open_(const char *tag, spark_html *h, ...) {
    if (!h) return;
    va_list ap;
    va_start(ap, h);
    vopen(h, tag, ap);
    va_end(ap);
}

void spark_close(spark_html *h) {
    if (!h) return;
    if (!h->depth) {
        fail(h, "spark_close without an open element");
        return;
    }
    frame *f = &h->stack[--h->depth]; /* stays valid: nothing is pushed below */
    spark_node *done = f->attach ? frame_result(h, f) : NULL;
    /* The lists given in this element now know the node they went into. */
    while (h->nopen && h->lists[h->open_lists[h->nopen - 1]].depth == h->depth + 1)
        h->lists[h->open_lists[--h->nopen]].parent = done;
    if (done) frame_add(h, top(h), done);
}

void spark_leaf(spark_html *h, const char *tag, ...) {
    if (!h) return;
    va_list ap;
    va_start(ap, tag);
    vopen(h, tag, ap);
    va_end(ap);
    spark_close(h);
}

void spark_html_leaf_(const char *tag, spark_html *h, ...) {
    if (!h) return;
    va_list ap;
    va_start(ap, h);
    vopen(h, tag, ap);
    va_end(ap);
    spark_close(h);
}

int spark_html_body_(spark_html *h) {
    if (!h || !h->depth) return 0;
    frame *f = &h->stack[h->depth - 1];
    if (!f->entered) {
        f->entered = true;
        return 1;
    }
    spark_close(h);
    return 0;
}

static bool all_space(const char *s) {
    for (; *s; s++)
        if (!strchr(" \t\n\f", *s)) return false;
    return true;
}

static void add_text(spark_html *h, const char *s, size_t n) {
    frame *pf = top(h);
    const spark_node *parent = frame_el(pf);
    if (!parent || n == 0) return;
    spark_node *last = frame_last(pf), *cand = next_old(pf);
    bool join = last && last->kind == SPARK_NODE_TEXT;
    if (cand && cand->kind == SPARK_NODE_TEXT) {
        /* strnlen first: s may hold a NUL, cand's text never does */
        if (!join && strnlen(cand->text, n + 1) == n && memcmp(cand->text, s, n) == 0) {
            pf->cursor++;
            h->shares = true;
            frame_add(h, pf, cand);
            return;
        }
        if (!join) pf->cursor++;
    }
    const char *ptag = parent->kind == SPARK_NODE_ELEMENT ? parent->tag : "";
    unsigned pclass = parent->kind == SPARK_NODE_ELEMENT ? parent->tag_class : 0;
    if (pclass & T_VOID) {
        fail(h, "text cannot go in the void element <%s>", ptag);
        return;
    }
    if (pclass & T_RAW_TEXT) {
        fail(h, "text in <%s> would not be escaped: use spark_raw for trusted content", ptag);
        return;
    }
    char *clean = clean_copy(&h->tree, s, n);
    if (!clean) {
        fail(h, "out of memory");
        return;
    }
    if ((pclass & T_NO_TEXT) && !all_space(clean)) {
        fail(h, "text cannot go directly in <%s>", ptag);
        return;
    }
    if (join) {
        /* The parser makes one node of adjacent text: so must the tree. A
         * new node, as the last one may be shared with other trees. */
        size_t a = strlen(last->text), b = strlen(clean);
        char *joined = arena_alloc(&h->tree.mem, a + b + 1);
        spark_node *t = spark_tree_new_node(&h->tree, SPARK_NODE_TEXT);
        if (!joined || !t) {
            fail(h, "out of memory");
            return;
        }
        memcpy(joined, last->text, a);
        memcpy(joined + a, clean, b + 1);
        t->text = joined;
        frame_set_last(h, pf, t);
        return;
    }
    spark_node *t = spark_tree_new_node(&h->tree, SPARK_NODE_TEXT);
    if (!t) {
        fail(h, "out of memory");
        return;
    }
    t->text = clean;
    frame_add(h, pf, t);
}

void spark_text(spark_html *h, const char *text) {
    if (h && text) add_text(h, text, strlen(text));
}

void spark_textf(spark_html *h, const char *fmt, ...) {
    if (!h || !fmt) return;
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fail(h, "bad format \"%.40s\"", fmt);
        return;
    }
    if ((size_t)n < sizeof small) {
        add_text(h, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        fail(h, "out of memory");
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    add_text(h, big, (size_t)n);
    free(big);
}

void spark_raw(spark_html *h, const char *trusted_html) {
    if (!h || !trusted_html || !*trusted_html) return;
    frame *pf = top(h);
    const spark_node *parent = frame_el(pf);
    if (!parent) return;
    spark_node *cand = next_old(pf);
    if (cand && cand->kind == SPARK_NODE_RAW) {
        pf->cursor++;
        if (strcmp(cand->text, trusted_html) == 0) {
            h->shares = true;
            frame_add(h, pf, cand);
            return;
        }
    }
    if (parent->kind == SPARK_NODE_ELEMENT && (parent->tag_class & T_VOID)) {
        fail(h, "raw HTML cannot go in the void element <%s>", parent->tag);
        return;
    }
    spark_node *r = spark_tree_new_node(&h->tree, SPARK_NODE_RAW);
    if (!r || !(r->text = clean_copy(&h->tree, trusted_html, strlen(trusted_html)))) {
        fail(h, "out of memory");
        return;
    }
    frame_add(h, pf, r);
}

/* ---- the builder: rows of a list ----
 *
 * Rows. spark_each (component.c) gives a list's rows through the calls
 * below. A row's markup is a function of its item, the row function and
 * one argument, nothing else (the row function is given nothing else).
 * The builder records each row as a span of its parent's kids; a render
 * built on this one matches its lists to these in order (same parent
 * node, list, row function and argument), and for an item that is a recorded
 * row's (the same object, or one the caller finds equal) gives that row's
 * nodes again without running its code. That is exact because:
 *   - the items compared with are as they were rendered: the list's hold
 *     keeps them alive, and the runtime never changes an object of a state
 *     it rendered (a handler writes copies; component.c);
 *   - the row function, given the same item and argument, would make the
 *     same calls, so build the same nodes; the parent is the same base
 *     node, so the nesting rules see the same ancestors (as for any reused
 *     node, "Reuse" above);
 *   - the span is the row's alone: a row is reused only if all it gave are
 *     elements (text beside text would join across rows) and the kid
 *     before it stayed as it was. */

static size_t frame_count(const frame *f) { return f->node ? f->node->nkids : f->same; }

static const spark_node *frame_kid(const frame *f, size_t i) {
    return f->node ? f->node->kids[i] : f->old->kids[i];
}

static bool grow(void **p, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, c * size);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

bool spark_html_rows_begin(spark_html *h, void *hold, void (*release)(void *), void (*fn)(void),
                           const char *name, const char *arg) {
    char *a = NULL, *nm = NULL;
    if (!h || !name || h->in_list || h->err[0] ||
        !grow((void **)&h->lists, &h->lists_cap, h->nlists, sizeof *h->lists) ||
        !grow((void **)&h->open_lists, &h->open_cap, h->nopen, sizeof *h->open_lists) ||
        !(nm = spark_tree_strdup(&h->tree, name, strlen(name))) ||
        (arg && !(a = spark_tree_strdup(&h->tree, arg, strlen(arg))))) {
        if (release) release(hold);
        return false;
    }
    memo_list *l = &h->lists[h->nlists++];
    *l = (memo_list){.hold = hold,
                     .release = release,
                     .fn = fn,
                     .name = nm,
                     .arg = a,
                     .parent = h->depth ? NULL : h->tree.root,
                     .depth = h->depth,
                     .first = h->nrows};
    if (h->depth) h->open_lists[h->nopen++] = h->nlists - 1;
    /* Its counterpart: base's next list in the same node, of the same
     * list, function and argument. */
    const frame *f = top(h);
    h->from = NULL;
    h->from_cursor = h->misses = 0;
    for (size_t i = h->lists_seen; f->old && h->base && i < h->base->nlists; i++) {
        const memo_list *b = &h->base->lists[i];
        if (b->parent == f->old && b->fn == fn && strcmp(b->name, name) == 0 &&
            same_key(b->arg, arg)) {
            h->from = b;
            h->lists_seen = i + 1;
            break;
        }
    }
    /* Room for as many rows as base had, at once (a render of thousands
     * grew them by copies before). */
    size_t want = h->nrows + (h->from ? h->from->nrows : 0);
    if (want > h->rows_cap) {
        memo_row *rows = realloc(h->rows, want * sizeof *rows);
        if (rows) {
            h->rows = rows;
            h->rows_cap = want;
        }
    }
    h->in_list = true;
    return true;
}

/* The row of `from` whose item is `item` (the same object), or -1. An
 * index by item is built on the first search that needs it. */
static long indexed_row(spark_html *h, const void *item) {
    const memo_list *l = h->from;
    const memo_row *r = h->base->rows + l->first;
    if (h->indexed != l) {
        size_t n = 16;
        while (n < 2 * l->nrows)
            n *= 2;
        size_t *slots = n <= h->nislots ? h->islots : malloc(n * sizeof *slots);
        if (!slots) return -1;
        if (slots != h->islots) {
            free(h->islots);
            h->islots = slots;
            h->nislots = n;
        }
        memset(slots, 0, h->nislots * sizeof *slots);
        for (size_t i = 0; i < l->nrows; i++) {
            size_t s =
                (size_t)(((uintptr_t)r[i].item >> 4) * 0x9E3779B97F4A7C15ull) & (h->nislots - 1);
            while (slots[s] && r[slots[s] - 1].item != r[i].item)
                s = (s + 1) & (h->nislots - 1);
            if (!slots[s]) slots[s] = i + 1;
        }
        h->indexed = l;
    }
    size_t s = (size_t)(((uintptr_t)item >> 4) * 0x9E3779B97F4A7C15ull) & (h->nislots - 1);
    for (; h->islots[s]; s = (s + 1) & (h->nislots - 1))
        if (r[h->islots[s] - 1].item == item) return (long)h->islots[s] - 1;
    return -1;
}

long spark_html_rows_find(spark_html *h, const void *item,
                          bool (*same)(const void *a, const void *b)) {
    const memo_list *l = h ? h->from : NULL;
    if (!l || !h->in_list) return -1;
    const memo_row *r = h->base->rows + l->first;
    size_t c = h->from_cursor;
    /* In order, or after one that went; else by address, but not for a
     * first miss: one changed item (a new object) would build the index
     * in every render, and only items that moved need it. */
    long k = c < l->nrows && r[c].item == item           ? (long)c
             : c + 1 < l->nrows && r[c + 1].item == item ? (long)c + 1
             : ++h->misses > 1                           ? indexed_row(h, item)
                                                         : -1;
    /* Not the same object (a state read from text): an equal item in
     * order, or just after a row that changed. */
    for (size_t j = c; k < 0 && same && j < l->nrows && j <= c + 1; j++)
        if (same(r[j].item, item)) k = (long)j;
    if (k >= 0 && !r[k].reusable) {
        h->from_cursor = (size_t)k + 1;
        return -1;
    }
    return k;
}

static void add_row(spark_html *h, const void *item, size_t at, size_t count, bool counted,
                    bool reusable) {
    if (!grow((void **)&h->rows, &h->rows_cap, h->nrows, sizeof *h->rows)) {
        fail(h, "out of memory");
        return;
    }
    /* An element of 2^32 kids, or a row of 2^30, is only given again. */
    bool fits = at <= UINT32_MAX && count < (1u << 30);
    h->rows[h->nrows++] = (memo_row){.item = item,
                                     .at = fits ? (uint32_t)at : 0,
                                     .count = fits ? (uint32_t)count : 0,
                                     .counted = counted,
                                     .reusable = fits && reusable};
}

/* Whether the open element is still the one the list began in. */
static bool in_list_element(spark_html *h) {
    if (h->depth == h->lists[h->nlists - 1].depth) return true;
    fail(h, "a row of spark_each left an element open (a return or break inside its block?)");
    return false;
}

bool spark_html_row_reuse(spark_html *h, long k, const void *item) {
    if (!in_list_element(h)) return false;
    const memo_list *l = h->from;
    const memo_row *r = &h->base->rows[l->first + (size_t)k];
    frame *f = top(h);
    size_t at = frame_count(f);
    for (size_t j = 0; j < r->count; j++)
        frame_add_element(h, f, l->parent->kids[r->at + j]);
    if (r->count) {
        f->cursor = r->at + r->count;
        h->shares = true;
    }
    h->from_cursor = (size_t)k + 1;
    add_row(h, item, at, r->count, r->counted, true);
    return r->counted;
}

void spark_html_row_begin(spark_html *h) {
    if (!h || !h->in_list) return;
    const frame *f = top(h);
    h->row_at = frame_count(f);
    h->row_before = h->row_at ? frame_kid(f, h->row_at - 1) : NULL;
}

void spark_html_row_end(spark_html *h, const void *item, bool counted) {
    if (!h || !h->in_list || !in_list_element(h)) return;
    const frame *f = top(h);
    size_t end = frame_count(f), at = h->row_at <= end ? h->row_at : end;
    bool reusable = !at || frame_kid(f, at - 1) == h->row_before;
    for (size_t i = at; i < end && reusable; i++)
        reusable = frame_kid(f, i)->kind == SPARK_NODE_ELEMENT;
    add_row(h, item, at, end - at, counted, reusable);
}

void spark_html_rows_end(spark_html *h) {
    if (!h || !h->in_list) return;
    free(h->islots); /* a list's index serves that list only */
    h->islots = NULL;
    h->nislots = 0;
    h->indexed = NULL;
    memo_list *l = &h->lists[h->nlists - 1];
    l->nrows = h->nrows - l->first;
    h->in_list = false;
    h->from = NULL;
}

const char *spark_itoa(spark_html *h, long long value) {
    if (!h) return "";
    /* By hand: renders call this per list item (ids), and snprintf's
     * format machinery cost more than the rest of the item. */
    char buf[24], *p = buf + sizeof buf;
    unsigned long long u = value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (value < 0) *--p = '-';
    char *d = spark_tree_strdup(&h->tree, p, (size_t)(buf + sizeof buf - p));
    if (!d) fail(h, "out of memory");
    return d ? d : "";
}

const char *spark_printf(spark_html *h, const char *fmt, ...) {
    if (!h || !fmt) return "";
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = n < 0 ? NULL : arena_alloc(&h->tree.mem, (size_t)n + 1);
    if (!d) {
        fail(h, n < 0 ? "bad format" : "out of memory");
        return "";
    }
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

const char *spark_trusted(spark_html *h, const char *value) {
    if (!h || !value) return "";
    if (h->ntrusted == h->trusted_cap) {
        size_t cap = h->trusted_cap ? h->trusted_cap * 2 : 8;
        const char **t = realloc(h->trusted, cap * sizeof *t);
        if (!t) {
            fail(h, "out of memory");
            return "";
        }
        h->trusted = t;
        h->trusted_cap = cap;
    }
    /* A copy of its own, so that its address marks this value only. */
    char *d = spark_tree_strdup(&h->tree, value, strlen(value));
    if (!d) {
        fail(h, "out of memory");
        return "";
    }
    h->trusted[h->ntrusted++] = d;
    return d;
}
