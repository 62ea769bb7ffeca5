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

/* Bytecode is only valid for the Lua that made it, and a liblua of another
** release could accept it and run it wrong.  So the build also dumps this
** chunk (stripped), and the runtime loads the embedded bytecode only if
** its own compiler dumps the same bytes; otherwise it compiles the source.
** The chunk uses most kinds of instruction, so a change in their numbering
** or encoding shows. */
#define TIDE_BC_PROBE_NAME "=probe"
#define TIDE_BC_PROBE \
  "local a, b, c, K <const> = ..., 2.5, {}, 4\n" \
  "local t = {a, b, x = a // K, [a] = a .. 's', c:m(a)}\n" \
  "for i = 1, #t, 2 do t[i] = t[i] % 7 end\n" \
  "for k, v in pairs(t) do a = k ~= v and a & 1 | 2 ~ 3 or a >> 1 end\n" \
  "local function f(...) local n <close> = nil; return select('#', ...), ... end\n" \
  "while a < 10 do a = a + 1; if a == 5 then goto out end end\n" \
  "::out:: c.x, c[a] = -a, not a\n" \
  "repeat b = b ^ 2 / 1 - 1 * 3 until b <= 0 or b >= 9\n" \
  "return f(t, ~a, a << 2, a ~= b, a > b, #t, a .. b, table.unpack(t))\n"
extern const unsigned char tide__bc_probe[];
extern const size_t tide__bc_probe_len;

#endif
