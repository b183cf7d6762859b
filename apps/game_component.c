/*
 * game_component.c - the game behind the seed's GameChannel: tic-tac-toe.
 * Its state is the board ("---------", a cell per square, left to right,
 * top to bottom: "x", "o" or "-"), the two seats ("x", "o": user ids, ""
 * while free, and their names), whose turn it is and the winner ("x",
 * "o", "draw" or ""). Only the game channel changes it, through
 * on_external; every window showing the page /game/:id sees each move.
 */
#include <spark/component.h>

#include <stdio.h>
#include <string.h>

static const int lines[8][3] = {{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {0, 3, 6},
                                {1, 4, 7}, {2, 5, 8}, {0, 4, 8}, {2, 4, 6}};

static void render(spark_html *h, const spark_view *v) {
    const char *board = spark_state_str(v, "board", "---------");
    const char *winner = spark_state_str(v, "winner", "");
    DIV(h, "class", "game") {
        P(h, "class", "players") {
            spark_textf(h, "X: %s, O: %s", spark_state_str(v, "x_name", "(free)"),
                        spark_state_str(v, "o_name", "(free)"));
        }
        DIV(h, "class", "board") {
            for (int i = 0; i < 9 && board[i]; i++)
                SPAN(h, "class", "cell") {
                    spark_text(h, board[i] == 'x' ? "X" : board[i] == 'o' ? "O" : "·");
                }
        }
        P(h, "class", "status") {
            if (strcmp(winner, "draw") == 0)
                spark_text(h, "Draw");
            else if (*winner)
                spark_textf(h, "%s wins", *winner == 'x' ? "X" : "O");
            else
                spark_textf(h, "%s to move",
                            strcmp(spark_state_str(v, "turn", "x"), "o") ? "X" : "O");
        }
    }
}

/* "x" or "o" for the user's seat, or NULL. */
static const char *seat_of(const spark_event *e, const char *user) {
    if (strcmp(spark_state_str(e, "x", ""), user) == 0) return "x";
    if (strcmp(spark_state_str(e, "o", ""), user) == 0) return "o";
    return NULL;
}

static const char *winner_of(const char *b) {
    for (int i = 0; i < 8; i++)
        if (b[lines[i][0]] != '-' && b[lines[i][0]] == b[lines[i][1]] &&
            b[lines[i][1]] == b[lines[i][2]])
            return b[lines[i][0]] == 'x' ? "x" : "o";
    return strchr(b, '-') ? "" : "draw";
}

/* A move is valid when the game is on, both seats are taken, it is the
 * mover's turn and the square is free. */
static int move(spark_event *e) {
    char board[10];
    long long at;
    const char *seat = seat_of(e, spark_viewer_id(e));
    snprintf(board, sizeof board, "%s", spark_state_str(e, "board", "---------"));
    if (!spark_data_int(e, "position", &at) || at < 0 || at > 8 || !seat || strlen(board) != 9 ||
        *spark_state_str(e, "winner", "") || !*spark_state_str(e, "o", "") ||
        strcmp(spark_state_str(e, "turn", "x"), seat) != 0 || board[at] != '-')
        return spark_fail(e, "invalid_move", "Invalid move");
    board[at] = *seat;
    spark_state_set_str(e, "board", board);
    spark_state_set_str(e, "turn", *seat == 'x' ? "o" : "x");
    return spark_state_set_str(e, "winner", winner_of(board));
}

/* Takes the first free seat; a third player watches. */
static int join(spark_event *e) {
    const char *user = spark_viewer_id(e);
    if (seat_of(e, user)) return SPARK_OK;
    const char *seat = !*spark_state_str(e, "x", "")   ? "x"
                       : !*spark_state_str(e, "o", "") ? "o"
                                                       : NULL;
    if (!seat) return SPARK_OK;
    char name_key[8];
    snprintf(name_key, sizeof name_key, "%s_name", seat);
    spark_state_set_str(e, name_key, spark_viewer_name(e));
    return spark_state_set_str(e, seat, user);
}

static int leave(spark_event *e) {
    const char *seat = seat_of(e, spark_viewer_id(e));
    if (!seat) return SPARK_OK;
    char name_key[8];
    snprintf(name_key, sizeof name_key, "%s_name", seat);
    spark_state_set_str(e, name_key, "(free)");
    return spark_state_set_str(e, seat, "");
}

static int on_external(spark_event *e) {
    if (spark_event_is(e, "move")) return move(e);
    if (spark_event_is(e, "join")) return join(e);
    if (spark_event_is(e, "leave")) return leave(e);
    return SPARK_UNKNOWN_EVENT;
}

SPARK_COMPONENT(game, .render = render, .on_external = on_external,
                .initial_state = "{\"board\":\"---------\",\"x\":\"\",\"o\":\"\",\"turn\":\"x\","
                                 "\"winner\":\"\"}");
