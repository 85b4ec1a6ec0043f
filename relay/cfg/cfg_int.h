/*
 * cfg_int.h: declarations shared by cfg_parse.c and cfg.c only.
 */
#ifndef CFG_INT_H
#define CFG_INT_H

#include "cfg.h"

/* Fill a sockaddr_in/_in6 from address bytes (4 or 16) and a port. */
void cfg_addr_fill(struct cfg_addr *a, int af, const unsigned char *bytes, unsigned port);

#endif
