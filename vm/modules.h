/*
** modules.h: the table of stdlib modules the build compiles into tide.
** The build generates it from stdlib/: each stdlib/<m>.lua becomes module
** "tide.<m>" (stdlib/tide.lua is "tide" itself), embedded both as bytecode
** compiled by the build's liblua (cmake/luac.c) and as source; each
** stdlib/<m>.c provides luaopen_tide_<m>, registered as "tide.<m>", or as
** "tide._<m>" when a Lua half of the same name exists.
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
  const char *bc;     /* the same compiled at build time, with debug info */
  size_t bclen;
  lua_CFunction open; /* C opener, or NULL */
} tide_module_t;

extern const tide_module_t tide__modules[];

/* Bytecode is only valid for the Lua release that made it, and a liblua of
** another release could accept it and run it wrong.  The build compiles the
** stdlib with the liblua of lua.h's LUA_RELEASE (tide_luac checks that), so
** the embedded bytecode is used only when the liblua the process runs says
** it is that release: lua_ident starts with this. */
#define TIDE_LUA_IDENT "$LuaVersion: " LUA_RELEASE " "

#endif
