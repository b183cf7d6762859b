/*
 * html.h - the markup builder a component's render function writes with.
 *
 *     DIV(h, "class", "counter-widget") {
 *         H2(h) { spark_textf(h, "Count: %d", count); }
 *         BUTTON(h, "spark-click", "increment") { spark_text(h, "+"); }
 *         INPUT(h, "type", "number", "value", spark_itoa(h, step));
 *     }
 *
 * An element macro takes the builder, then attribute name/value pairs, and
 * opens a block for the children; void elements (INPUT, BR, IMG, HR) take no
 * block. Text and attribute values are escaped; the only way to emit markup
 * is spark_raw(), named so that it stands out in review.
 *
 * Events are attributes read by the client: spark-click, spark-change,
 * spark-input, spark-submit, spark-keydown name the event sent to the
 * component; spark-value-NAME attributes add payload fields. Children of a
 * list give each item a stable `spark-key` so that inserting, removing or
 * moving one item patches only that item.
 *
 * What escaping guarantees, and what it does not. Escaping keeps text text
 * and keeps a value inside its attribute: no input can open a tag or add an
 * attribute. It does not make a value harmless where it lands, so the
 * builder also applies an attribute policy, by name (any case):
 *   - onclick, onchange, oninput, onsubmit, onkeydown become spark-click,
 *     spark-change, spark-input, spark-submit, spark-keydown with the same
 *     value (the component event), never inline script;
 *   - every other on* attribute is refused;
 *   - URL attributes (href, src, action, formaction, poster, cite,
 *     background, manifest, icon, longdesc, lowsrc, dynsrc, codebase,
 *     classid, profile, itemid, xmlns, data on object; and each URL of
 *     srcset, imagesrcset, ping, archive, attributionsrc) accept relative
 *     URLs (path, ?query, #fragment, and //host, a network URL like https)
 *     and the schemes http, https, mailto and tel only. The value is judged
 *     as the browser's URL parser reads it: scheme in any case, leading and
 *     trailing controls and spaces stripped, tab/LF/CR removed anywhere;
 *     other control characters are refused. It is judged again with its
 *     character references decoded (jav&#x61;script:, javascript&colon;),
 *     though the builder escapes '&' so the browser never decodes them:
 *     the value stays safe even if copied into markup unescaped;
 *   - style, srcdoc, http-equiv and the src of a script need a value from
 *     spark_trusted() (which also lifts the URL check for that value).
 * A refused attribute is an error like any other (below): the render
 * fails and nothing of it reaches the browser. The policy judges names and
 * URLs only: other values (class, title, value, data-*, spark-*) are
 * author data, escaped and nothing more, and what a URL points to (an
 * https page, a mailto address) is the author's choice.
 *
 * Mistakes (a tag or attribute name outside [a-zA-Z][a-zA-Z0-9-]*, children
 * in a void element, markup the HTML parser would restructure, such as a div
 * inside a p or a tr directly inside a table) never reach the browser: the
 * builder records the first error, drops the offending element, and
 * spark_html_error() reports it; the runtime then refuses the render.
 *
 * Ownership: the builder owns everything it returns (spark_itoa and
 * spark_printf strings, the tree); spark_html_free() releases all of it at
 * once. Strings passed in are copied. Do not leave a block with return,
 * break or goto: its element would stay open.
 */
#ifndef SPARK_HTML_H
#define SPARK_HTML_H

#include <spark/spark.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spark_html spark_html;

#if defined(__GNUC__)
#define SPARK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPARK_PRINTF(f, a)
#endif

/* A new, empty builder; NULL when out of memory. */
SPARK_API spark_html *spark_html_new(void);
/* Frees the builder, its tree and every string it handed out. */
SPARK_API void spark_html_free(spark_html *h);
/* The first error recorded, or NULL when the markup is sound. */
SPARK_API const char *spark_html_error(const spark_html *h);
/* The markup built so far, as the browser would serialize it; malloc'd, the
 * caller frees it. NULL after an error or when out of memory. */
SPARK_API char *spark_html_render(const spark_html *h, size_t *len);

/* Elements. Attributes are name/value pairs ending with NULL. A value of
 * SPARK_OMIT leaves the attribute out; "" gives a boolean attribute. The
 * first of two equal names wins, as in the browser. */
SPARK_API void spark_open(spark_html *h, const char *tag, ...);
SPARK_API void spark_close(spark_html *h);
/* An element without children: open and close at once. */
SPARK_API void spark_leaf(spark_html *h, const char *tag, ...);

/* Text, escaped. Invalid UTF-8 becomes U+FFFD; CR and CRLF become LF. */
SPARK_API void spark_text(spark_html *h, const char *text);
SPARK_API void spark_textf(spark_html *h, const char *fmt, ...) SPARK_PRINTF(2, 3);
/* Trusted HTML, emitted as is. The element holding it is patched as a
 * whole: the diff never looks inside. Never pass user input here. */
SPARK_API void spark_raw(spark_html *h, const char *trusted_html);

/* A copy of `value` that the attribute policy lets through where it asks
 * for trust (style, srcdoc, http-equiv, script src) and as any URL:
 *     DIV(h, "style", spark_trusted(h, "width: 3em")) { ... }
 * Only that returned pointer, in this builder, carries the trust. Like
 * spark_raw: never pass user input here. */
SPARK_API const char *spark_trusted(spark_html *h, const char *value);

/* Strings owned by the builder, for attribute values. */
SPARK_API const char *spark_itoa(spark_html *h, long long value);
SPARK_API const char *spark_printf(spark_html *h, const char *fmt, ...) SPARK_PRINTF(2, 3);

/* Attribute values: SPARK_IF(cond, value) is the value or nothing;
 * SPARK_BOOL(cond) is a boolean attribute such as checked or disabled. */
SPARK_API extern const char spark_html_omit_[1];
#define SPARK_OMIT          ((const char *)spark_html_omit_)
#define SPARK_IF(cond, val) ((cond) ? (const char *)(val) : SPARK_OMIT)
#define SPARK_BOOL(cond)    SPARK_IF(cond, "")

/* Block macros: open the element, run the block once, close it. */
#define SPARK_EL(...)                                                                              \
    for (spark_open(__VA_ARGS__, (const char *)0);                                                 \
         spark_html_body_(SPARK_HTML_FIRST_(__VA_ARGS__));)
#define SPARK_LEAF(...) spark_leaf(__VA_ARGS__, (const char *)0)

/* Plumbing for the macros; not for direct use. */
SPARK_API void spark_html_open_(const char *tag, spark_html *h, ...);
SPARK_API void spark_html_leaf_(const char *tag, spark_html *h, ...);
SPARK_API int spark_html_body_(spark_html *h);
#define SPARK_HTML_FIRST_(...)     SPARK_HTML_FIRST2_(__VA_ARGS__, 0)
#define SPARK_HTML_FIRST2_(h, ...) h
#define SPARK_HTML_BLOCK_(tag, ...)                                                                \
    for (spark_html_open_(tag, __VA_ARGS__, (const char *)0);                                      \
         spark_html_body_(SPARK_HTML_FIRST_(__VA_ARGS__));)
#define SPARK_HTML_VOID_(tag, ...) spark_html_leaf_(tag, __VA_ARGS__, (const char *)0)

/* Named tags. Define SPARK_NO_TAG_MACROS to keep these short names out of
 * your namespace and use SPARK_EL(h, "div", ...) instead. */
#ifndef SPARK_NO_TAG_MACROS
#define DIV(...)      SPARK_HTML_BLOCK_("div", __VA_ARGS__)
#define SPAN(...)     SPARK_HTML_BLOCK_("span", __VA_ARGS__)
#define P(...)        SPARK_HTML_BLOCK_("p", __VA_ARGS__)
#define H1(...)       SPARK_HTML_BLOCK_("h1", __VA_ARGS__)
#define H2(...)       SPARK_HTML_BLOCK_("h2", __VA_ARGS__)
#define H3(...)       SPARK_HTML_BLOCK_("h3", __VA_ARGS__)
#define UL(...)       SPARK_HTML_BLOCK_("ul", __VA_ARGS__)
#define OL(...)       SPARK_HTML_BLOCK_("ol", __VA_ARGS__)
#define LI(...)       SPARK_HTML_BLOCK_("li", __VA_ARGS__)
#define A(...)        SPARK_HTML_BLOCK_("a", __VA_ARGS__)
#define BUTTON(...)   SPARK_HTML_BLOCK_("button", __VA_ARGS__)
#define FORM(...)     SPARK_HTML_BLOCK_("form", __VA_ARGS__)
#define LABEL(...)    SPARK_HTML_BLOCK_("label", __VA_ARGS__)
#define TEXTAREA(...) SPARK_HTML_BLOCK_("textarea", __VA_ARGS__)
#define SELECT(...)   SPARK_HTML_BLOCK_("select", __VA_ARGS__)
#define OPTION(...)   SPARK_HTML_BLOCK_("option", __VA_ARGS__)
#define SECTION(...)  SPARK_HTML_BLOCK_("section", __VA_ARGS__)
#define HEADER(...)   SPARK_HTML_BLOCK_("header", __VA_ARGS__)
#define FOOTER(...)   SPARK_HTML_BLOCK_("footer", __VA_ARGS__)
#define NAV(...)      SPARK_HTML_BLOCK_("nav", __VA_ARGS__)
#define MAIN(...)     SPARK_HTML_BLOCK_("main", __VA_ARGS__)
#define STRONG(...)   SPARK_HTML_BLOCK_("strong", __VA_ARGS__)
#define EM(...)       SPARK_HTML_BLOCK_("em", __VA_ARGS__)
#define SMALL(...)    SPARK_HTML_BLOCK_("small", __VA_ARGS__)
#define TIME(...)     SPARK_HTML_BLOCK_("time", __VA_ARGS__)
#define TABLE(...)    SPARK_HTML_BLOCK_("table", __VA_ARGS__)
#define THEAD(...)    SPARK_HTML_BLOCK_("thead", __VA_ARGS__)
#define TBODY(...)    SPARK_HTML_BLOCK_("tbody", __VA_ARGS__)
#define TR(...)       SPARK_HTML_BLOCK_("tr", __VA_ARGS__)
#define TH(...)       SPARK_HTML_BLOCK_("th", __VA_ARGS__)
#define TD(...)       SPARK_HTML_BLOCK_("td", __VA_ARGS__)
#define INPUT(...)    SPARK_HTML_VOID_("input", __VA_ARGS__)
#define IMG(...)      SPARK_HTML_VOID_("img", __VA_ARGS__)
#define BR(...)       SPARK_HTML_VOID_("br", __VA_ARGS__)
#define HR(...)       SPARK_HTML_VOID_("hr", __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif

#endif
