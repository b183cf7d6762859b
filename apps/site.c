/*
 * site.c - sparkd's demo site, declared in one place as a router file
 * would: the index at /, and a page for each demo component, in the order
 * of the navigation.
 *
 * The pages are the runtime's (<spark/page.h>): rendered on the server,
 * deferred until the component has loaded, behind its scope. The index is
 * a plain route (<spark/route.h>), so that a program linking libspark
 * without these demos serves no page linking to them.
 */
#include <spark/history.h>
#include <spark/page.h>
#include <spark/route.h>

static const char index_html[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "  <meta charset=\"utf-8\">\n"
    "  <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "  <title>Spark</title>\n"
    "  <link rel=\"stylesheet\" href=\"/css/spark.css\">\n"
    "</head>\n"
    "<body>\n"
    "  <header class=\"site\">\n"
    "    <a class=\"brand\" href=\"/\">Spark</a>\n"
    "    <nav><a href=\"/counter/home\">Counter</a> <a href=\"/todo/groceries\">Todo</a> "
    "<a href=\"/chat/lobby\">Chat</a></nav>\n"
    "  </header>\n"
    "  <main>\n"
    "    <h1>Spark</h1>\n"
    "    <p class=\"lead\">Live components and WebSocket channels, with their state in "
    "PostgreSQL.\n"
    "      Open a demo in two windows, or on two instances, and watch them stay in step.</p>\n"
    "\n"
    "    <ul class=\"cards\">\n"
    "      <li><a href=\"/counter/home\"><strong>Counter</strong>\n"
    "        <span>One shared number: every click shows in every window.</span></a></li>\n"
    "      <li><a href=\"/todo/groceries\"><strong>Todo list</strong>\n"
    "        <span>A collaborative list; each window keeps its own filter.</span></a></li>\n"
    "      <li><a href=\"/chat/lobby\"><strong>Chat</strong>\n"
    "        <span>Messages, who is online and who is typing; the same room as the\n"
    "          <code>/chat/lobby</code> channel.</span></a></li>\n"
    "      <li><a href=\"/my-app\"><strong>Your own page</strong>\n"
    "        <span>A page the app writes, with a counter and a todo list live inside it.</span>"
    "</a></li>\n"
    "      <li><a href=\"/login\"><strong>Sign in</strong>\n"
    "        <span>Pick a name (when the demo login is on).</span></a></li>\n"
    "    </ul>\n"
    "\n"
    "    <h2>This instance</h2>\n"
    "    <ul>\n"
    "      <li><a href=\"/healthz\">/healthz</a>: database and listener state</li>\n"
    "      <li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\n"
    "      <li><a href=\"/js/spark.js\">/js/spark.js</a>: the browser client</li>\n"
    "    </ul>\n"
    "  </main>\n"
    "</body>\n"
    "</html>\n";

static void index_page(spark_request *req) {
    spark_respond(req, 200, "text/html; charset=utf-8", index_html, sizeof index_html - 1);
}

SPARK_ROUTE(index, .method = SPARK_GET, .path = "/", .handler = index_page);

SPARK_PAGE(counter, .route = "/counter/:id", .component = "counter:{id}", .title = "Counter {id}",
           .nav = "Counter", .nav_path = "/counter/home");
SPARK_PAGE(todo, .route = "/todo/:list", .component = "todo:{list}", .title = "Todo: {list}",
           .nav = "Todo", .nav_path = "/todo/groceries");
SPARK_PAGE(chat, .route = "/chat/:room", .component = "chat:{room}", .title = "Chat: {room}",
           .nav = "Chat", .nav_path = "/chat/lobby");
SPARK_PAGE(game, .route = "/game/:id", .component = "game:{id}", .title = "Game {id}");

/* Every version of a counter or a list, at /history/counter/home and
 * /history/todo/groceries: who changed what, any past version, revert. */
SPARK_HISTORY(counter);
SPARK_HISTORY(todo);
