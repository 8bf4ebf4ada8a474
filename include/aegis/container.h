/* container_of: the struct that embeds a member, from a pointer to that member. libev watchers are
 * embedded in their owners (a connection, a listener, a source) and recovered in callbacks this way, as
 * libuv and the Linux kernel do, instead of a separate data pointer per watcher. */
#ifndef AEGIS_CONTAINER_H
#define AEGIS_CONTAINER_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
