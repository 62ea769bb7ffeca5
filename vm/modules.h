/*
** modules.h: the table of stdlib modules the build compiles into tide.
** The build generates it from stdlib/: each stdlib/<m>.lua becomes module
** "tide.<m>" (stdlib/tide.lua is "tide" itself), loaded from its embedded
** source; each stdlib/<m>.c provides luaopen_tide_<m>, registered as
** "tide.<m>", or as "tide._<m>" when a Lua half of the same name exists.
*/
#ifndef TIDE_MODULES_H
#define TIDE_MODULES_H

#include <stddef.h>
#include <lua.h>

typedef struct {
  const char *name;   /* for require */
  const char *chunk;  /* chunk name, "@stdlib/<m>.lua" */
  const char *src;    /* embedded Lua source, or NULL */
  size_t len;
  lua_CFunction open; /* C opener, or NULL */
} tide_module_t;

extern const tide_module_t tide__modules[];

#endif
