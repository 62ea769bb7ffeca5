/*
** luac.c: the build's Lua compiler.  It compiles each stdlib module with
** the liblua the build links, debug information kept, so tide loads its
** modules as bytecode instead of parsing their source at every startup.
** With --probe it dumps the probe chunk of vm/modules.h, which the runtime
** compiles too and compares before it trusts the embedded bytecode.
**
**   tide_luac OUT CHUNKNAME IN.lua
**   tide_luac --probe OUT
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
  int probe = argc == 3 && strcmp(argv[1], "--probe") == 0;
  const char *out = argv[probe ? 2 : 1];
  lua_State *L;
  FILE *f;
  int st, bad;
  if (!probe && argc != 4) {
    fprintf(stderr, "usage: tide_luac OUT CHUNKNAME IN.lua | --probe OUT\n");
    return 2;
  }
  L = luaL_newstate();
  if (!L) return 1;
  if (probe) {
    st = luaL_loadbufferx(L, TIDE_BC_PROBE, strlen(TIDE_BC_PROBE),
                          TIDE_BC_PROBE_NAME, "t");
  } else {
    size_t len = 0;
    char *src = slurp(argv[3], &len);
    if (!src) {
      fprintf(stderr, "tide_luac: cannot read %s\n", argv[3]);
      lua_close(L);
      return 1;
    }
    st = luaL_loadbufferx(L, src, len, argv[2], "t");
    free(src);
  }
  if (st != LUA_OK) {
    fprintf(stderr, "tide_luac: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  f = fopen(out, "wb");
  if (!f) {
    fprintf(stderr, "tide_luac: cannot write %s\n", out);
    lua_close(L);
    return 1;
  }
  bad = lua_dump(L, write_out, f, probe);
  bad |= fclose(f) != 0;
  lua_close(L);
  if (bad) {
    fprintf(stderr, "tide_luac: writing %s failed\n", out);
    remove(out);
    return 1;
  }
  return 0;
}
