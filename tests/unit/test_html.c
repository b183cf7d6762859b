/*
 * test_html.c - the markup builder and its serializer: escaping, void and
 * boolean attributes, names, UTF-8, nesting the browser would rebuild
 * differently, raw HTML, trees that outlive their builder, and renders that
 * reuse the last one's nodes (spark_html_new_reusing): the same tree as a
 * fresh build, the policy judged again, nothing shared ever changed.
 */
#include "html_tree.h"
#include "support.h"

#include <spark/html.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

static spark_html *h;
static char *out;

static void setup(void) {
    h = spark_html_new();
    out = NULL;
}

static void teardown(void) {
    free(out);
    spark_html_free(h);
}

/* The serialization, owned by the fixture; fails the test on an error. */
static const char *render(void) {
    ck_assert_msg(spark_html_error(h) == NULL, "unexpected error: %s", spark_html_error(h));
    free(out);
    out = spark_html_render(h, NULL);
    ck_assert_ptr_nonnull(out);
    return out;
}

/* The error, after checking that the render is refused. */
static const char *error(void) {
    const char *e = spark_html_error(h);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_null(spark_html_render(h, NULL));
    return e;
}

START_TEST(counter_reads_like_the_design) {
    int count = 3, step = 2;
    DIV(h, "class", "counter-widget") {
        H2(h) { spark_textf(h, "Count: %d", count); }
        DIV(h, "class", "controls") {
            BUTTON(h, "spark-click", "decrement") { spark_text(h, "-"); }
            INPUT(h, "type", "number", "spark-change", "set_step", "value", spark_itoa(h, step));
            BUTTON(h, "spark-click", "increment") { spark_text(h, "+"); }
        }
        BUTTON(h, "spark-click", "reset", "class", "reset") { spark_text(h, "Reset"); }
    }
    size_t len = 0;
    char *s = spark_html_render(h, &len);
    ck_assert_str_eq(s, "<div class=\"counter-widget\"><h2>Count: 3</h2><div class=\"controls\">"
                        "<button spark-click=\"decrement\">-</button>"
                        "<input type=\"number\" spark-change=\"set_step\" value=\"2\">"
                        "<button spark-click=\"increment\">+</button></div>"
                        "<button spark-click=\"reset\" class=\"reset\">Reset</button></div>");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
}
END_TEST

START_TEST(text_is_escaped) {
    LI(h) { spark_text(h, "<img src=x onerror=alert(1)>"); }
    P(h) {
        spark_text(h, "Tom & Jerry \"quoted\" 'single' a\xC2\xA0"
                      "b");
    }
    ck_assert_str_eq(render(), "<li>&lt;img src=x onerror=alert(1)&gt;</li>"
                               "<p>Tom &amp; Jerry \"quoted\" 'single' a&nbsp;b</p>");
}
END_TEST

START_TEST(attribute_values_are_escaped) {
    SPAN(h, "title", "say \"hi\" & <bye>", "data-x", "it's\xC2\xA0ok") {}
    ck_assert_str_eq(render(),
                     "<span title=\"say &quot;hi&quot; &amp; &lt;bye&gt;\" data-x=\"it's&nbsp;ok\">"
                     "</span>");
}
END_TEST

START_TEST(void_elements_have_no_end_tag) {
    DIV(h) {
        BR(h);
        IMG(h, "src", "/a.png", "alt", "");
        HR(h);
        SPARK_LEAF(h, "wbr");
        SPARK_LEAF(h, "span");
    }
    ck_assert_str_eq(render(),
                     "<div><br><img src=\"/a.png\" alt=\"\"><hr><wbr><span></span></div>");
}
END_TEST

START_TEST(void_elements_take_no_children) {
    SPARK_EL(h, "br") { spark_text(h, "x"); }
    ck_assert_ptr_nonnull(strstr(error(), "void"));
}
END_TEST

START_TEST(boolean_and_conditional_attributes) {
    INPUT(h, "type", "checkbox", "checked", SPARK_BOOL(1), "disabled", SPARK_BOOL(0), "class",
          SPARK_IF(0, "done"), "name", "t");
    OPTION(h, "selected", "") { spark_text(h, "a"); }
    ck_assert_str_eq(
        render(),
        "<input type=\"checkbox\" checked=\"\" name=\"t\"><option selected=\"\">a</option>");
}
END_TEST

START_TEST(first_duplicate_attribute_wins) {
    DIV(h, "class", "a", "CLASS", "b") {}
    ck_assert_str_eq(render(), "<div class=\"a\"></div>");
}
END_TEST

START_TEST(names_are_lowercased) {
    SPARK_EL(h, "DIV", "Spark-Click", "go") {}
    ck_assert_str_eq(render(), "<div spark-click=\"go\"></div>");
}
END_TEST

static const char *const bad_tags[] = {"", "1div", "di v", "div>", "a_b", "<script>", "x\"y", "é"};

START_TEST(bad_tag_names_are_refused) {
    DIV(h) {
        SPARK_EL(h, bad_tags[_i]) { spark_text(h, "never"); }
    }
    ck_assert_ptr_nonnull(strstr(error(), "invalid tag name"));
    const spark_node *root = spark_html_root(h);
    ck_assert_uint_eq(root->kids[0]->nkids, 0);
}
END_TEST

static const char *const bad_attrs[] = {"", "on click", "x=y", "\"", "a>b", "-x", "9a", "a/b"};

START_TEST(bad_attribute_names_are_refused) {
    DIV(h, bad_attrs[_i], "v") {}
    ck_assert_ptr_nonnull(strstr(error(), "invalid attribute name"));
}
END_TEST

START_TEST(null_tag_and_missing_value_are_refused) {
    SPARK_EL(h, NULL) {}
    ck_assert_ptr_nonnull(strstr(error(), "invalid tag name"));
    spark_html_free(h);
    h = spark_html_new();
    DIV(h, "class", (const char *)NULL, "id", "x") {}
    ck_assert_ptr_nonnull(strstr(error(), "has no value"));
}
END_TEST

START_TEST(invalid_utf8_becomes_replacement_characters) {
    P(h) {
        spark_text(h, "a\xFF"
                      "b");
    }                                                            /* invalid byte */
    P(h) { spark_text(h, "\xC3(\xE2\x82"); }                     /* bad continuation, truncated */
    P(h) { spark_text(h, "\xC0\xAF\xED\xA0\x80"); }              /* overlong, surrogate */
    P(h) { spark_text(h, "\xF4\x90\x80\x80|\xF0\x9F\x98\x80"); } /* > U+10FFFF, valid emoji */
    P(h, "title", "x\x80y") {}
    ck_assert_str_eq(render(),
                     "<p>a\xEF\xBF\xBD"
                     "b</p>"
                     "<p>\xEF\xBF\xBD(\xEF\xBF\xBD</p>"
                     "<p>\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD</p>"
                     "<p>\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|\xF0\x9F\x98\x80</p>"
                     "<p title=\"x\xEF\xBF\xBDy\"></p>");
}
END_TEST

START_TEST(carriage_returns_become_line_feeds) {
    P(h, "title", "a\r\nb\rc") { spark_text(h, "1\r\n2\r3"); }
    ck_assert_str_eq(render(), "<p title=\"a\nb\nc\">1\n2\n3</p>");
}
END_TEST

START_TEST(nested_blocks_close_in_order) {
    SECTION(h, "id", "s") {
        HEADER(h) {
            H1(h) { spark_text(h, "T"); }
        }
        UL(h) {
            for (int i = 0; i < 3; i++)
                LI(h, "spark-key", spark_itoa(h, i)) {
                    STRONG(h) { spark_textf(h, "#%d", i); }
                    EM(h) { spark_text(h, "x"); }
                }
        }
        FOOTER(h) {
            SMALL(h) { spark_text(h, "f"); }
        }
    }
    ck_assert_str_eq(render(), "<section id=\"s\"><header><h1>T</h1></header><ul>"
                               "<li spark-key=\"0\"><strong>#0</strong><em>x</em></li>"
                               "<li spark-key=\"1\"><strong>#1</strong><em>x</em></li>"
                               "<li spark-key=\"2\"><strong>#2</strong><em>x</em></li></ul>"
                               "<footer><small>f</small></footer></section>");
    const spark_node *ul = spark_html_root(h)->kids[0]->kids[1];
    ck_assert_str_eq(ul->kids[2]->key, "2");
    ck_assert_ptr_null(ul->key);
}
END_TEST

START_TEST(open_and_close_without_blocks) {
    spark_open(h, "ol", "start", "3", (const char *)NULL);
    spark_open(h, "li", (const char *)NULL);
    spark_text(h, "x");
    spark_close(h);
    spark_close(h);
    ck_assert_str_eq(render(), "<ol start=\"3\"><li>x</li></ol>");
    spark_close(h);
    ck_assert_ptr_nonnull(strstr(error(), "without an open"));
}
END_TEST

START_TEST(unclosed_element_is_an_error) {
    spark_open(h, "div", (const char *)NULL);
    ck_assert_ptr_nonnull(strstr(error(), "left open"));
}
END_TEST

START_TEST(adjacent_text_is_one_node) {
    P(h) {
        spark_text(h, "a");
        spark_text(h, "");
        spark_textf(h, "%s", "b");
        spark_text(h, NULL);
    }
    SPAN(h) { spark_text(h, ""); }
    ck_assert_str_eq(render(), "<p>ab</p><span></span>");
    const spark_node *root = spark_html_root(h);
    ck_assert_uint_eq(root->kids[0]->nkids, 1);
    ck_assert_uint_eq(root->kids[1]->nkids, 0);
}
END_TEST

START_TEST(long_formatted_text_and_strings) {
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    P(h, "data-n", spark_itoa(h, -9223372036854775807LL - 1), "data-s",
      spark_printf(h, "%s-%03d", "id", 7)) {
        spark_textf(h, "%s!", big);
    }
    const char *s = render();
    ck_assert_ptr_nonnull(strstr(s, "data-n=\"-9223372036854775808\" data-s=\"id-007\""));
    ck_assert_uint_eq(strlen(s), strlen("<p data-n=\"-9223372036854775808\" data-s=\"id-007\">") +
                                     999 + 1 + strlen("</p>"));
}
END_TEST

START_TEST(raw_is_verbatim_and_opaque) {
    DIV(h, "class", "md") {
        spark_text(h, "<b>");
        spark_raw(h, "<b>bold</b> &amp; more");
    }
    ck_assert_str_eq(render(), "<div class=\"md\">&lt;b&gt;<b>bold</b> &amp; more</div>");
    const spark_node *div = spark_html_root(h)->kids[0];
    ck_assert(div->opaque);
    ck_assert(!spark_html_root(h)->opaque);
    ck_assert_int_eq(div->kids[1]->kind, SPARK_NODE_RAW);
}
END_TEST

START_TEST(script_takes_raw_not_text) {
    SPARK_EL(h, "script") { spark_raw(h, "if (a < b) go();"); }
    ck_assert_str_eq(render(), "<script>if (a < b) go();</script>");
    SPARK_EL(h, "style") { spark_text(h, "p{}"); }
    ck_assert_ptr_nonnull(strstr(error(), "spark_raw"));
}
END_TEST

START_TEST(textarea_keeps_a_leading_newline) {
    TEXTAREA(h, "name", "t") { spark_text(h, "\nline <2>"); }
    SPARK_EL(h, "pre") { spark_text(h, "x\n"); }
    ck_assert_str_eq(render(), "<textarea name=\"t\">\n\nline &lt;2&gt;</textarea><pre>x\n</pre>");
}
END_TEST

START_TEST(tables_need_their_sections) {
    TABLE(h) {
        THEAD(h) {
            TR(h) {
                TH(h) { spark_text(h, "h"); }
            }
        }
        TBODY(h) {
            TR(h, "spark-key", "r1") {
                spark_text(h, " ");
                TD(h) { spark_text(h, "1"); }
            }
        }
    }
    ck_assert_str_eq(render(), "<table><thead><tr><th>h</th></tr></thead>"
                               "<tbody><tr spark-key=\"r1\"> <td>1</td></tr></tbody></table>");
}
END_TEST

/* Markup the HTML parser would restructure: each must be refused. */
static void misnest(int which) {
    switch (which) {
    case 0:
        P(h) {
            DIV(h) {}
        }
        break;
    case 1:
        TABLE(h) {
            TR(h) {}
        }
        break;
    case 2:
        TD(h) {}
        break;
    case 3:
        A(h, "href", "/") {
            SPAN(h) {
                A(h, "href", "/x") {}
            }
        }
        break;
    case 4:
        UL(h) {
            LI(h) {
                LI(h) {}
            }
        }
        break;
    case 5:
        TABLE(h) {
            TBODY(h) {
                TR(h) { spark_text(h, "x"); }
            }
        }
        break;
    case 6:
        FORM(h) {
            DIV(h) {
                FORM(h) {}
            }
        }
        break;
    case 7:
        BUTTON(h) {
            BUTTON(h) {}
        }
        break;
    case 8:
        SELECT(h) {
            DIV(h) {}
        }
        break;
    case 9:
        SPARK_EL(h, "template") {}
        break;
    case 10:
        SPARK_EL(h, "svg") {}
        break;
    case 11:
        P(h) {
            SPAN(h) {
                UL(h) {}
            }
        }
        break;
    case 12:
        TEXTAREA(h) {
            SPAN(h) {}
        }
        break;
    case 13:
        H1(h) {
            H2(h) {}
        }
        break;
    case 14:
        TABLE(h) {
            DIV(h) {}
        }
        break;
    default:
        break;
    }
}

START_TEST(misnested_markup_is_refused) {
    misnest(_i);
    error();
}
END_TEST

START_TEST(nesting_the_parser_accepts) {
    P(h) {
        BUTTON(h) {
            DIV(h) {}
        }
    } /* a button is a scope for p */
    A(h, "href", "/") {
        DIV(h) {}
    }
    UL(h) {
        LI(h) {
            UL(h) {
                LI(h) {}
            }
        }
    }
    SELECT(h) {
        OPTION(h, "value", "1") { spark_text(h, "one"); }
    }
    render();
}
END_TEST

START_TEST(trees_outlive_their_builder_and_parse_back) {
    DIV(h, "class", "x&y", "spark-key", "k") {
        spark_text(h, "a < b \xC2\xA0 \"q\"");
        BR(h);
        TEXTAREA(h) { spark_text(h, "\n<t>"); }
        SPARK_EL(h, "script") { spark_raw(h, "1 < 2 && </p>"); }
        UL(h) {
            LI(h, "data-v", "<>") { spark_text(h, "&amp;"); }
        }
    }
    const char *html = render();
    spark_tree *copy = spark_tree_copy(spark_html_root(h));
    ck_assert_ptr_nonnull(copy);
    ck_assert(spark_node_equal(spark_tree_root(copy), spark_html_root(h)));
    spark_html_free(h);
    h = NULL;

    const spark_node *root = spark_tree_root(copy);
    ck_assert_str_eq(root->kids[0]->key, "k");
    spark_sbuf b = {0};
    spark_node_serialize(root, &b);
    ck_assert_str_eq(b.data, html);

    spark_tree *scratch = spark_tree_copy(root);
    spark_node *parsed = spark_tree_parse(scratch, html, strlen(html));
    ck_assert_ptr_nonnull(parsed);
    ck_assert(spark_node_equal(parsed, root));
    ck_assert_str_eq(parsed->kids[0]->key, "k");

    /* Markup outside the serializer's subset stays verbatim. */
    spark_node *odd = spark_tree_parse(scratch, "<!-- c --><p>x", 14);
    ck_assert_uint_eq(odd->nkids, 1);
    ck_assert_int_eq(odd->kids[0]->kind, SPARK_NODE_RAW);
    spark_sbuf_truncate(&b, 0);
    spark_node_serialize(odd, &b);
    ck_assert_str_eq(b.data, "<!-- c --><p>x");

    spark_sbuf_free(&b);
    spark_tree_free(scratch);
    spark_tree_free(copy);
}
END_TEST

START_TEST(null_builder_is_harmless) {
    spark_html *none = NULL;
    DIV(none, "class", "x") { spark_text(none, "y"); }
    spark_raw(none, "z");
    ck_assert_str_eq(spark_itoa(none, 1), "");
    ck_assert_ptr_nonnull(spark_html_error(none));
    ck_assert_ptr_null(spark_html_render(none, NULL));
    spark_html_free(none);
}
END_TEST

/* ---- the attribute policy ---- */

START_TEST(seed_event_attributes_become_spark_events) {
    FORM(h, "onsubmit", "save") {
        BUTTON(h, "onclick", "increment") { spark_text(h, "+"); }
        BUTTON(h, "OnClick", "a", "ONCLICK", "b", "spark-click", "c") {}
        INPUT(h, "onChange", "set_step", "oninput", "typing", "onkeydown", "key");
    }
    ck_assert_str_eq(render(), "<form spark-submit=\"save\"><button spark-click=\"increment\">+"
                               "</button><button spark-click=\"a\"></button>"
                               "<input spark-change=\"set_step\" spark-input=\"typing\" "
                               "spark-keydown=\"key\"></form>");
}
END_TEST

static const char *const other_handlers[] = {"onmouseover", "OnMouseOver", "ONERROR",  "onload",
                                             "onfocus",     "onkeyup",     "onClickx", "on"};

START_TEST(other_on_attributes_are_refused) {
    DIV(h) { IMG(h, "src", "/a.png", other_handlers[_i], "alert(1)"); }
    const char *e = error();
    ck_assert_ptr_nonnull(strstr(e, "inline script"));
    /* The refused element is dropped, so nothing of it could be sent. */
    ck_assert_uint_eq(spark_html_root(h)->kids[0]->nkids, 0);
}
END_TEST

/* Values the browser would run, or could not be judged safe. */
static const char *const bad_urls[] = {
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "JAVASCRIPT:alert(1)",
    " javascript:alert(1)",
    "  javascript:alert(1)",
    "\x01javascript:alert(1)",
    "\x1f\x20\x0bjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "javascript\t:alert(1)",
    "\tjava\tscript\n:alert(1) ",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "Data:image/svg+xml,<svg onload=alert(1)>",
    "javascript&colon;alert(1)",
    "jav&#x61;script:alert(1)",
    "jav&#X61script:alert(1)",
    "jav&#97;script:alert(1)",
    "jav&#0000097;script:alert(1)",
    "&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)",
    "&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)",
    "java&Tab;script:alert(1)",
    "java&NewLine;script:alert(1)",
    "&#1;javascript:alert(1)",
    "&#32;javascript:alert(1)",
    "javascript&#58;alert(1)",
    "file:///etc/passwd",
    "blob:https://example.com/1",
    "about:blank",
    "ftp://example.com/",
    "x-custom:thing",
    "/ok\x01then",
    "/ok\x7fthen",
    "/ok\xC2\x85then",
};

START_TEST(unsafe_urls_are_refused) {
    /* The same value in several URL attributes of several elements. */
    switch (_i % 5) {
    case 0:
        A(h, "href", bad_urls[_i / 5]) { spark_text(h, "x"); }
        break;
    case 1:
        IMG(h, "src", bad_urls[_i / 5]);
        break;
    case 2:
        FORM(h, "action", bad_urls[_i / 5]) {}
        break;
    case 3:
        BUTTON(h, "formaction", bad_urls[_i / 5]) {}
        break;
    default:
        SPARK_EL(h, "object", "data", bad_urls[_i / 5]) {}
        break;
    }
    const char *e = error();
    ck_assert_msg(strstr(e, "not a relative, http, https, mailto or tel URL"), "%s", e);
    ck_assert_uint_eq(spark_html_root(h)->nkids, 0);
}
END_TEST

START_TEST(every_url_attribute_is_judged) {
    static const char *const names[] = {
        "href",        "src",      "action",  "formaction",    "poster", "cite",
        "background",  "manifest", "icon",    "longdesc",      "lowsrc", "dynsrc",
        "codebase",    "classid",  "profile", "itemid",        "xmlns",  "srcset",
        "imagesrcset", "ping",     "archive", "attributionsrc"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        spark_html *b = spark_html_new();
        DIV(b, names[i], "javascript:alert(1)") {}
        ck_assert_msg(spark_html_error(b) != NULL, "%s was not judged", names[i]);
        spark_html_free(b);
    }
}
END_TEST

START_TEST(safe_urls_pass) {
    A(h, "href", "/relative") {}
    A(h, "href", "relative/path") {}
    A(h, "href", "?q=1&r=2") {}
    A(h, "href", "#frag") {}
    A(h, "href", "//evil.example/x") {} /* protocol-relative: a network URL, like https */
    A(h, "href", "https://example.com/a:b") {}
    A(h, "href", "HTTP://EXAMPLE.COM") {}
    A(h, "href", "mailto:a@example.com") {}
    A(h, "href", "TEL:+1-555-0100") {}
    A(h, "href", "") {}
    A(h, "href", "./javascript:x") {}
    A(h, "href", "/search/javascript:x") {}
    /* Referenced once only, as the browser decodes: "&#x61;" stays text. */
    A(h, "href", "jav&amp;#x61;script:x") {}
    ck_assert_str_eq(render(), "<a href=\"/relative\"></a><a href=\"relative/path\"></a>"
                               "<a href=\"?q=1&amp;r=2\"></a><a href=\"#frag\"></a>"
                               "<a href=\"//evil.example/x\"></a>"
                               "<a href=\"https://example.com/a:b\"></a>"
                               "<a href=\"HTTP://EXAMPLE.COM\"></a>"
                               "<a href=\"mailto:a@example.com\"></a>"
                               "<a href=\"TEL:+1-555-0100\"></a><a href=\"\"></a>"
                               "<a href=\"./javascript:x\"></a>"
                               "<a href=\"/search/javascript:x\"></a>"
                               "<a href=\"jav&amp;amp;#x61;script:x\"></a>");
}
END_TEST

START_TEST(every_srcset_candidate_is_judged) {
    IMG(h, "srcset", "a.png 1x, /b.png 2x,https://cdn.example/c.png 3x", "alt", "");
    ck_assert_str_eq(render(), "<img srcset=\"a.png 1x, /b.png 2x,https://cdn.example/c.png 3x\" "
                               "alt=\"\">");
    static const char *const bad[] = {
        "a.png 1x, javascript:alert(1) 2x", "a.png,javascript:alert(1)",
        " , JAVASCRIPT:alert(1) 2x",        "a.png 1x,\n\tdata:image/svg+xml,x 2x",
        "a.png 1x, jav&#x61;script:x 2x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        spark_html *b = spark_html_new();
        IMG(b, "srcset", bad[i]);
        ck_assert_msg(spark_html_error(b) != NULL, "srcset \"%s\" passed", bad[i]);
        ck_assert_ptr_null(spark_html_render(b, NULL));
        spark_html_free(b);
    }
    A(h, "ping", "/a https://b.example javascript:x") {}
    ck_assert_ptr_nonnull(strstr(error(), "ping"));
}
END_TEST

START_TEST(style_and_srcdoc_need_trust) {
    DIV(h, "style", "color: red") {}
    ck_assert_ptr_nonnull(strstr(error(), "spark_trusted"));
    spark_html_free(h);

    static const char *const cases[][3] = {{"div", "style", "color: red"},
                                           {"iframe", "srcdoc", "<script>alert(1)</script>"},
                                           {"meta", "http-equiv", "refresh"},
                                           {"script", "src", "https://cdn.example/x.js"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        h = spark_html_new();
        spark_leaf(h, cases[i][0], cases[i][1], cases[i][2], (const char *)0);
        ck_assert_msg(spark_html_error(h) != NULL, "%s %s passed", cases[i][0], cases[i][1]);
        spark_html_free(h);
    }

    h = spark_html_new();
    spark_html *other = spark_html_new();
    DIV(h, "style", spark_trusted(h, "width: 3em")) {}
    INPUT(h, "STYLE", spark_trusted(h, "color: \"red\""));
    SPARK_EL(h, "iframe", "srcdoc", spark_trusted(h, "<p>hi</p>")) {}
    A(h, "href", spark_trusted(h, "javascript:void(0)")) {}
    ck_assert_str_eq(render(),
                     "<div style=\"width: 3em\"></div><input style=\"color: &quot;red&quot;\">"
                     "<iframe srcdoc=\"&lt;p&gt;hi&lt;/p&gt;\"></iframe>"
                     "<a href=\"javascript:void(0)\"></a>");
    /* Trust is the pointer from this builder, not an equal string. */
    const char *theirs = spark_trusted(other, "color: red");
    DIV(h, "style", theirs) {}
    ck_assert_ptr_nonnull(error());
    /* Trust never turns an event attribute into script. */
    spark_html_free(other);
    other = spark_html_new();
    BUTTON(other, "onmouseover", spark_trusted(other, "alert(1)")) {}
    ck_assert_ptr_nonnull(spark_html_error(other));
    spark_html_free(other);
}
END_TEST

START_TEST(policy_details) {
    /* data is a URL on object only; an omitted value is not judged. */
    DIV(h, "data", "javascript:x", "href", SPARK_IF(0, "javascript:x")) {}
    ck_assert_str_eq(render(), "<div data=\"javascript:x\"></div>");
    /* A refused value inside a component drops the whole render. */
    DIV(h) {
        P(h) { spark_text(h, "before"); }
        A(h, "href", "java\tscript:alert(1)") { spark_text(h, "x"); }
    }
    ck_assert_ptr_nonnull(strstr(error(), "<a href>"));
}
END_TEST

/* ---- renders that reuse the last one ---- */

static void list_of(spark_html *b, int n, int toggled, const char *title) {
    SECTION(b, "class", "app") {
        H1(b) { spark_text(b, title); }
        UL(b) {
            for (int i = 0; i < n; i++)
                LI(b, "spark-key", spark_itoa(b, i), "class", SPARK_IF(i == toggled, "done")) {
                    INPUT(b, "type", "checkbox", "checked", SPARK_BOOL(i == toggled));
                    LABEL(b) { spark_textf(b, "item %d", i); }
                }
        }
    }
}

static char *html_of(const spark_html *b) {
    ck_assert_msg(spark_html_error(b) == NULL, "unexpected error: %s", spark_html_error(b));
    char *s = spark_html_render(b, NULL);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(reuse_shares_what_did_not_change) {
    list_of(h, 50, -1, "todos");
    spark_html *next = spark_html_new_reusing(h), *fresh = spark_html_new();
    list_of(next, 50, 7, "todos");
    list_of(fresh, 50, 7, "todos");
    char *a = html_of(next), *b = html_of(fresh);
    ck_assert_str_eq(a, b); /* the same tree as without reuse */
    ck_assert(spark_node_equal(spark_html_root(next), spark_html_root(fresh)));
    const spark_node *was = spark_html_root(h)->kids[0], *now = spark_html_root(next)->kids[0];
    ck_assert_ptr_ne(was, now);                   /* the section holds a changed list */
    ck_assert_ptr_eq(was->kids[0], now->kids[0]); /* h1 */
    const spark_node *ul0 = was->kids[1], *ul1 = now->kids[1];
    ck_assert_ptr_ne(ul0, ul1);
    for (int i = 0; i < 50; i++) {
        if (i == 7) {
            ck_assert_ptr_ne(ul0->kids[i], ul1->kids[i]);
            ck_assert_ptr_eq(ul0->kids[i]->kids[1], ul1->kids[i]->kids[1]); /* its label */
        } else {
            ck_assert_ptr_eq(ul0->kids[i], ul1->kids[i]);
        }
    }
    /* The base may go first: the new tree keeps what it shares alive. */
    spark_html_free(h);
    h = NULL;
    char *again = html_of(next);
    ck_assert_str_eq(again, b);
    /* Nothing changed at all: the root's child is the base's. */
    spark_html *same = spark_html_new_reusing(next);
    list_of(same, 50, 7, "todos");
    ck_assert_ptr_eq(spark_html_root(same)->kids[0], spark_html_root(next)->kids[0]);
    free(a);
    free(b);
    free(again);
    spark_html_free(same);
    spark_html_free(next);
    spark_html_free(fresh);
}
END_TEST

START_TEST(reuse_follows_keys_that_moved) {
    list_of(h, 20, -1, "todos");
    spark_html *next = spark_html_new_reusing(h);
    /* Item 0 moved to the end; a new item at the top. */
    SECTION(next, "class", "app") {
        H1(next) { spark_text(next, "todos"); }
        UL(next) {
            LI(next, "spark-key", "new") { spark_text(next, "new"); }
            for (int k = 1; k <= 20; k++) {
                int i = k % 20;
                LI(next, "spark-key", spark_itoa(next, i), "class", SPARK_OMIT) {
                    INPUT(next, "type", "checkbox", "checked", SPARK_OMIT);
                    LABEL(next) { spark_textf(next, "item %d", i); }
                }
            }
        }
    }
    ck_assert_ptr_null(spark_html_error(next));
    /* The ul is new, but every item of the base in it is the base's. */
    const spark_node *ul0 = spark_html_root(h)->kids[0]->kids[1];
    const spark_node *ul1 = spark_html_root(next)->kids[0]->kids[1];
    ck_assert_ptr_ne(ul0, ul1);
    ck_assert_uint_eq(ul1->nkids, 21);
    for (int k = 1; k <= 20; k++)
        ck_assert_ptr_eq(ul1->kids[k], ul0->kids[k % 20]);
    spark_html_free(next);
}
END_TEST

START_TEST(reuse_judges_trust_again) {
    DIV(h, "style", spark_trusted(h, "width: 3em")){
        A(h, "href", spark_trusted(h, "javascript:go()")){spark_text(h, "go");
}
}
(void)render();
/* The same bytes, not trusted this time: refused as without reuse. */
spark_html *next = spark_html_new_reusing(h);
DIV(next, "style", "width: 3em") {}
const char *e = spark_html_error(next);
ck_assert_ptr_nonnull(e);
ck_assert_ptr_nonnull(strstr(e, "spark_trusted"));
spark_html_free(next);
next = spark_html_new_reusing(h);
DIV(next, "style", spark_trusted(next, "width: 3em")) {
    A(next, "href", "javascript:go()") { spark_text(next, "go"); }
}
e = spark_html_error(next);
ck_assert_ptr_nonnull(e);
ck_assert_ptr_nonnull(strstr(e, "<a href>"));
spark_html_free(next);
/* Trusted again: accepted, and shared. */
next = spark_html_new_reusing(h);
DIV(next, "style", spark_trusted(next, "width: 3em")) {
    A(next, "href", spark_trusted(next, "javascript:go()")) { spark_text(next, "go"); }
}
ck_assert_ptr_null(spark_html_error(next));
ck_assert_ptr_eq(spark_html_root(next)->kids[0], spark_html_root(h)->kids[0]);
spark_html_free(next);
}
END_TEST

/* A p whose names and values the builder may change (case, CR, the seed's
 * onclick), with text given in two pieces and raw HTML. */
static void para(spark_html *b, const char *tag, const char *title, const char *title_value,
                 const char *click, const char *second, const char *raw) {
    SPARK_EL(b, tag, title, title_value, click, "go") {
        spark_text(b, "a");
        spark_text(b, second);
        BR(b);
        spark_raw(b, raw);
    }
}

START_TEST(reuse_never_changes_the_base) {
    para(h, "p", "title", "t\r\nx", "spark-click", "b", "<i>r</i>");
    char *before = strdup(render());
    /* What the builder changes builds the same tree, reused or not. */
    spark_html *next = spark_html_new_reusing(h);
    para(next, "P", "TITLE", "t\r\nx", "onclick", "b", "<i>r</i>");
    char *same = html_of(next);
    ck_assert_str_eq(same, before);
    /* Adjacent text joins into a new node: the base's "ab" stays. */
    spark_html *other = spark_html_new_reusing(next);
    para(other, "p", "title", "t\nx", "spark-click", "c", "<b>r</b>");
    char *changed = html_of(other);
    ck_assert_str_eq(changed, "<p title=\"t\nx\" spark-click=\"go\">ac<br><b>r</b></p>");
    ck_assert_str_eq(render(), before);
    char *still = html_of(next);
    ck_assert_str_eq(still, before);
    /* And the other way: the same text again is the base's node. */
    spark_html *back = spark_html_new_reusing(next);
    para(back, "p", "title", "t\nx", "spark-click", "b", "<i>r</i>");
    ck_assert_ptr_eq(spark_html_root(back)->kids[0], spark_html_root(next)->kids[0]);
    free(before);
    free(same);
    free(changed);
    free(still);
    spark_html_free(back);
    spark_html_free(other);
    spark_html_free(next);
}
END_TEST

START_TEST(reuse_of_a_refused_render_builds_afresh) {
    DIV(h, "onmouseover", "x") {}
    ck_assert_ptr_nonnull(spark_html_error(h));
    spark_html *next = spark_html_new_reusing(h);
    DIV(next) {}
    ck_assert_ptr_null(spark_html_error(next));
    spark_html_free(next);
}
END_TEST

START_TEST(compact_ends_the_chain_with_an_equal_tree) {
    list_of(h, 30, -1, "start");
    spark_html *cur = h;
    h = NULL;
    const spark_node *last_row = spark_html_root(cur)->kids[0]->kids[1]->kids[29];
    for (int r = 0; r < SPARK_HTML_MAX_CHAIN + 3; r++) {
        spark_html *before = cur;
        spark_html_compact(&cur);
        if (r == SPARK_HTML_MAX_CHAIN) ck_assert_ptr_ne(cur, before); /* copied */
        if (r < SPARK_HTML_MAX_CHAIN) ck_assert_ptr_eq(cur, before);
        /* A row that never changed is the first tree's node throughout:
         * the copy keeps that tree, which changed little, where it is (and
         * alive: the builders that built it are freed here). */
        ck_assert_ptr_eq(spark_html_root(cur)->kids[0]->kids[1]->kids[29], last_row);
        ck_assert_str_eq(spark_node_attr(last_row, "spark-key"), "29");
        spark_html *next = spark_html_new_reusing(cur), *fresh = spark_html_new();
        list_of(next, 30, r, r % 2 ? "odd" : "even");
        list_of(fresh, 30, r, r % 2 ? "odd" : "even");
        char *a = html_of(next), *b = html_of(fresh);
        ck_assert_str_eq(a, b);
        /* Built on the compacted tree: still shared with it. */
        ck_assert_ptr_eq(spark_html_root(next)->kids[0]->kids[1]->kids[29],
                         spark_html_root(cur)->kids[0]->kids[1]->kids[29]);
        free(a);
        free(b);
        spark_html_free(fresh);
        spark_html_free(cur);
        cur = next;
    }
    spark_html_free(cur);
}
END_TEST

START_TEST(compact_keeps_the_first_tree_a_few_times_only) {
    list_of(h, 200, -1, "start");
    spark_html *cur = h;
    h = NULL;
    const spark_node *last_row = spark_html_root(cur)->kids[0]->kids[1]->kids[199];
    int copied_at = 0, rounds = (SPARK_HTML_MAX_CHAIN + 1) * (SPARK_HTML_MAX_CHAIN + 1) + 1;
    for (int r = 0; r < rounds && !copied_at; r++) {
        spark_html_compact(&cur);
        if (spark_html_root(cur)->kids[0]->kids[1]->kids[199] != last_row) copied_at = r;
        spark_html *next = spark_html_new_reusing(cur);
        list_of(next, 200, r % 199, "start");
        spark_html_free(cur);
        cur = next;
    }
    /* Kept by the first compactions, copied whole before long: a tree
     * that shrank would otherwise keep its old self alive. */
    ck_assert_int_gt(copied_at, SPARK_HTML_MAX_CHAIN);
    spark_html *fresh = spark_html_new();
    list_of(fresh, 200, copied_at % 199, "start");
    char *a = html_of(cur), *b = html_of(fresh);
    ck_assert(strcmp(a, b) == 0);
    free(a);
    free(b);
    spark_html_free(fresh);
    spark_html_free(cur);
}
END_TEST

/* Rows whose every text differs from one round to the next, under a
 * header that stays (shared) or changes too (nothing shared). */
static void churn(spark_html *b, int round, bool keep_header) {
    H1(b) { spark_text(b, keep_header ? "same" : spark_itoa(b, round)); }
    UL(b) {
        for (int i = 0; i < 200; i++)
            LI(b) { spark_textf(b, "row %d of round %d", i, round); }
    }
}

START_TEST(compact_lets_go_of_a_base_nothing_was_taken_from) {
    churn(h, 0, false);
    spark_html *cur = h;
    h = NULL;
    /* Without letting go, the chain would be copied by round 3 or 8. */
    for (int r = 1; r < 3 * SPARK_HTML_MAX_CHAIN; r++) {
        spark_html *next = spark_html_new_reusing(cur);
        churn(next, r, false);
        ck_assert_ptr_null(spark_html_error(next));
        spark_html *before = next;
        spark_html_compact(&next);
        ck_assert_ptr_eq(next, before);
        spark_html_free(cur);
        cur = next;
    }
    spark_html_free(cur);
}
END_TEST

START_TEST(compact_copies_a_chain_that_holds_mostly_changes) {
    churn(h, 0, true);
    spark_html *cur = h;
    h = NULL;
    int copied_at = 0;
    for (int r = 1; r < SPARK_HTML_MAX_CHAIN && !copied_at; r++) {
        spark_html *next = spark_html_new_reusing(cur);
        churn(next, r, true);
        /* The header is shared: the chain is kept, until it holds much
         * more than a tree, well before 8 renders. */
        ck_assert_ptr_eq(spark_html_root(next)->kids[0], spark_html_root(cur)->kids[0]);
        spark_html *before = next;
        spark_html_compact(&next);
        if (next != before) copied_at = r;
        spark_html_free(cur);
        cur = next;
    }
    ck_assert_int_gt(copied_at, 1);
    ck_assert_int_lt(copied_at, SPARK_HTML_MAX_CHAIN);
    spark_html *fresh = spark_html_new();
    churn(fresh, copied_at, true);
    char *a = html_of(cur), *b = html_of(fresh);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    spark_html_free(fresh);
    spark_html_free(cur);
}
END_TEST

static Suite *html_suite(void) {
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("builder");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, counter_reads_like_the_design);
    tcase_add_test(tc, text_is_escaped);
    tcase_add_test(tc, attribute_values_are_escaped);
    tcase_add_test(tc, void_elements_have_no_end_tag);
    tcase_add_test(tc, void_elements_take_no_children);
    tcase_add_test(tc, boolean_and_conditional_attributes);
    tcase_add_test(tc, first_duplicate_attribute_wins);
    tcase_add_test(tc, names_are_lowercased);
    tcase_add_loop_test(tc, bad_tag_names_are_refused, 0,
                        (int)(sizeof bad_tags / sizeof bad_tags[0]));
    tcase_add_loop_test(tc, bad_attribute_names_are_refused, 0,
                        (int)(sizeof bad_attrs / sizeof bad_attrs[0]));
    tcase_add_test(tc, null_tag_and_missing_value_are_refused);
    tcase_add_test(tc, invalid_utf8_becomes_replacement_characters);
    tcase_add_test(tc, carriage_returns_become_line_feeds);
    tcase_add_test(tc, nested_blocks_close_in_order);
    tcase_add_test(tc, open_and_close_without_blocks);
    tcase_add_test(tc, unclosed_element_is_an_error);
    tcase_add_test(tc, adjacent_text_is_one_node);
    tcase_add_test(tc, long_formatted_text_and_strings);
    tcase_add_test(tc, raw_is_verbatim_and_opaque);
    tcase_add_test(tc, script_takes_raw_not_text);
    tcase_add_test(tc, textarea_keeps_a_leading_newline);
    tcase_add_test(tc, tables_need_their_sections);
    tcase_add_loop_test(tc, misnested_markup_is_refused, 0, 15);
    tcase_add_test(tc, nesting_the_parser_accepts);
    tcase_add_test(tc, trees_outlive_their_builder_and_parse_back);
    tcase_add_test(tc, null_builder_is_harmless);
    tcase_add_test(tc, seed_event_attributes_become_spark_events);
    tcase_add_loop_test(tc, other_on_attributes_are_refused, 0,
                        (int)(sizeof other_handlers / sizeof other_handlers[0]));
    tcase_add_loop_test(tc, unsafe_urls_are_refused, 0,
                        (int)(5 * (sizeof bad_urls / sizeof bad_urls[0])));
    tcase_add_test(tc, every_url_attribute_is_judged);
    tcase_add_test(tc, safe_urls_pass);
    tcase_add_test(tc, every_srcset_candidate_is_judged);
    tcase_add_test(tc, style_and_srcdoc_need_trust);
    tcase_add_test(tc, policy_details);
    suite_add_tcase(s, tc);
    TCase *reuse = tcase_create("reuse");
    tcase_add_checked_fixture(reuse, setup, teardown);
    tcase_add_test(reuse, reuse_shares_what_did_not_change);
    tcase_add_test(reuse, reuse_follows_keys_that_moved);
    tcase_add_test(reuse, reuse_judges_trust_again);
    tcase_add_test(reuse, reuse_never_changes_the_base);
    tcase_add_test(reuse, reuse_of_a_refused_render_builds_afresh);
    tcase_add_test(reuse, compact_ends_the_chain_with_an_equal_tree);
    tcase_add_test(reuse, compact_keeps_the_first_tree_a_few_times_only);
    tcase_add_test(reuse, compact_lets_go_of_a_base_nothing_was_taken_from);
    tcase_add_test(reuse, compact_copies_a_chain_that_holds_mostly_changes);
    suite_add_tcase(s, reuse);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(html_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
