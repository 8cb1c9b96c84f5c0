#include "tallyctl.h"
int cmd_replay(struct ctl *ctl, int argc, char **argv) { (void)ctl; (void)argc; (void)argv; return 0; }
