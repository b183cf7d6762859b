/* test_html.c - placeholder; filled in by its own change. */
int main(void) { return 0; }
