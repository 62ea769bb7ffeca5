/*
** luac.c: the build's Lua compiler.  It compiles each stdlib module with
** the liblua the build links, debug information kept, so tide loads its
** modules as bytecode instead of parsing their source at every startup.
** It refuses to run if that liblua is not the release lua.h names, since
** the runtime trusts the bytecode by that name (vm/modules.h).
**
**   tide_luac OUT CHUNKNAME IN.lua
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"

static int write_out(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  return fwrite(p, 1, n, (FILE *)ud) != n;
}

/* The whole of the file at path, malloced; NULL on failure. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long n;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
    *len = fread(buf, 1, (size_t)n, f);
    if (*len != (size_t)n) {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  lua_State *L;
  FILE *f;
  char *src;
  size_t len = 0;
  int st, bad;
  if (argc != 4) {
    fprintf(stderr, "usage: tide_luac OUT CHUNKNAME IN.lua\n");
    return 2;
  }
  if (strncmp(lua_ident, TIDE_LUA_IDENT, strlen(TIDE_LUA_IDENT)) != 0) {
    fprintf(stderr, "tide_luac: liblua is not %s (lua.h): %s\n",
            LUA_RELEASE, lua_ident);
    return 1;
  }
  src = slurp(argv[3], &len);
  if (!src) {
    fprintf(stderr, "tide_luac: cannot read %s\n", argv[3]);
    return 1;
  }
  L = luaL_newstate();
  if (!L) {
    free(src);
    return 1;
  }
  st = luaL_loadbufferx(L, src, len, argv[2], "t");
  free(src);
  if (st != LUA_OK) {
    fprintf(stderr, "tide_luac: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  f = fopen(argv[1], "wb");
  if (!f) {
    fprintf(stderr, "tide_luac: cannot write %s\n", argv[1]);
    lua_close(L);
    return 1;
  }
  bad = lua_dump(L, write_out, f, 0);
  bad |= fclose(f) != 0;
  lua_close(L);
  if (bad) {
    fprintf(stderr, "tide_luac: writing %s failed\n", argv[1]);
    remove(argv[1]);
    return 1;
  }
  return 0;
}
