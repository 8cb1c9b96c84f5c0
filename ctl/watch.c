#include "tallyctl.h"
int cmd_watch(struct ctl *ctl, int argc, char **argv) { (void)ctl; (void)argc; (void)argv; return 0; }
