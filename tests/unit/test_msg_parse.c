#include "tap.h"
int main(void) { return TEST_DONE(); }
