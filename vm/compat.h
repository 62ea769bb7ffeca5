/*
** compat.h: shims over differences between Lua 5.4 releases, kept in one
** place.  Debian ships 5.4.4, where closing a thread is lua_resetthread(L);
** 5.4.6 renamed it lua_closethread(L, from).
*/
#ifndef TIDE_COMPAT_H
#define TIDE_COMPAT_H

#include <lua.h>

#if LUA_VERSION_RELEASE_NUM >= 50406
#define tide_closethread(L, from) lua_closethread((L), (from))
#else
#define tide_closethread(L, from) ((void)(from), lua_resetthread(L))
#endif

#if defined(__GNUC__)
#define tide_likely(x) __builtin_expect(!!(x), 1)
#define tide_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define tide_likely(x) (x)
#define tide_unlikely(x) (x)
#endif

#define tide_container_of(ptr, type, member) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
