/* test_auth.c - placeholder; filled in by its own change. */
int main(void) { return 0; }
