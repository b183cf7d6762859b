/*
 * embed.c - the seed's "Spark Integration" template: a page of one's own,
 * written by the app, with live components mounted inside it. Each
 * <!--spark-live--> becomes a component's root, rendered on the server,
 * which spark.js then makes live; `props` is the shared state a component
 * starts from when it was never written (the seed's
 * `CounterComponent.mount(count: 10)`), and never overwrites a stored one.
 */
#include <spark/route.h>

static const char page[] = "<!DOCTYPE html>\n"
                           "<html>\n"
                           "  <head>\n"
                           "    <title>My Spark App</title>\n"
                           "    <link rel=\"stylesheet\" href=\"/css/spark.css\">\n"
                           "    <script src=\"/js/spark.js\" defer></script>\n"
                           "  </head>\n"
                           "  <body>\n"
                           "    <!-- Mount live components -->\n"
                           "    <div id=\"counter-widget\">\n"
                           "      <!--spark-live-->\n"
                           "    </div>\n"
                           "\n"
                           "    <div id=\"todo-list\">\n"
                           "      <!--spark-live-->\n"
                           "    </div>\n"
                           "  </body>\n"
                           "</html>\n";

static void my_app(spark_request *req) {
    static const spark_live_root roots[] = {
        {.id = "counter:widget", .props = "{\"count\":10}"},
        {.id = "todo:widget"},
    };
    spark_respond_live(req, page, roots, 2);
}

SPARK_ROUTE(my_app, .method = SPARK_GET, .path = "/my-app", .handler = my_app);
