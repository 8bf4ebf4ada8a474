/* `aegisctl inject`: manual sidecar injection (ctl_inject.c, docs/inject.md). */
#ifndef AEGIS_CTL_INJECT_H
#define AEGIS_CTL_INJECT_H

/* Runs `aegisctl inject -f FILE|- [--config FILE] [-o yaml|json]`; argv[0] is "inject". Returns the exit
 * code: 0 done, 1 a document could not be read or injected, 2 usage. */
int aegis_ctl_inject_main(int argc, char **argv);

#endif
