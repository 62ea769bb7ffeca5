/*
** fuzz_lua.c: the one libFuzzer harness behind every fuzz target.  Each
** target is this file compiled with TIDE_FUZZ_DRIVER naming a Lua driver
** script (tests/fuzz/drivers/<target>.lua).  For every input the harness
** creates a fresh runtime, spawns the driver as a task with the input bytes
** as its one argument, runs the loop until the driver ends and then until
** nothing keeps it alive, and aborts - which libFuzzer records as a crash,
** with the input saved - when the driver task did not end successfully.
** Drivers raise only when an invariant breaks, so a failed driver is a bug
** in tide.  A driver still
** waiting when the loop has nothing left is a lost wake-up, also a bug; a
** driver that never lets the loop end is a hang, caught by libFuzzer's
** -timeout.  Closing the runtime after every input lets LeakSanitizer see
** anything an input left behind.  Only the public API (tide.h) is used.
*/
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"

#ifndef TIDE_FUZZ_DRIVER
#error "compile with -DTIDE_FUZZ_DRIVER=\"path/to/driver.lua\""
#endif
#ifndef TIDE_FUZZ_CHUNK
#define TIDE_FUZZ_CHUNK "@" TIDE_FUZZ_DRIVER
#endif

/* The driver's source, read once: parsing it per input is cheap, reading
** the file per input is not. */
static char *driver_src;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  FILE *f = fopen(TIDE_FUZZ_DRIVER, "rb");
  long n;
  (void)argc;
  (void)argv;
  if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
    fprintf(stderr, "fuzz: cannot read %s\n", TIDE_FUZZ_DRIVER);
    exit(2);
  }
  rewind(f);
  driver_src = malloc((size_t)n + 1);
  if (!driver_src || fread(driver_src, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "fuzz: cannot read %s\n", TIDE_FUZZ_DRIVER);
    exit(2);
  }
  driver_src[n] = '\0';
  fclose(f);
  /* Drivers that talk to peers may write to a socket the peer has closed;
  ** that must be an EPIPE error in the task, as it is in the CLI. */
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

/* Print why the driver task did not succeed and abort. */
static void fail(lua_State *L, const char *why) {
  fprintf(stderr, "fuzz: %s\n", why);
  if (lua_gettop(L) > 0) {
    const char *msg = luaL_tolstring(L, -1, NULL);
    fprintf(stderr, "%s\n", msg);
    if (lua_istable(L, -2)) {
      lua_getfield(L, -2, "traceback");
      if (lua_isstring(L, -1)) fprintf(stderr, "%s\n", lua_tostring(L, -1));
    }
  }
  fflush(stderr);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tide_runtime_t *rt = tide_runtime_new(NULL);
  lua_State *L;
  tide_task_t *t;
  int more, top;
  if (!rt) abort();
  L = tide_runtime_lua(rt);
  lua_pushlstring(L, (const char *)data, size);
  if (tide_spawn_string(rt, driver_src, TIDE_FUZZ_CHUNK, 1) != LUA_OK)
    fail(L, "the driver does not load");
  t = tide_task_check(L, -1);
  top = lua_gettop(L);
  /* One iteration at a time until the driver ends, so that a driver that
  ** fails while its servers still keep the loop alive is reported at once
  ** instead of looking like a hang. */
  more = 1;
  while (more && tide_task_status_of(t) < TIDE_TASK_DONE)
    more = tide_runtime_run(rt, TIDE_RUN_ONCE);
  switch (tide_task_status_of(t)) {
    case TIDE_TASK_DONE:
      break;
    case TIDE_TASK_FAILED:
    case TIDE_TASK_CANCELLED:
      if (tide_task_outcome(L, top) != -1) lua_pushnil(L);
      fail(L, "the driver raised (an invariant broke)");
      break;
    default:
      lua_settop(L, 0);
      fail(L, "the driver is still waiting and nothing is left to wake it");
  }
  /* Whatever the driver left running must end by itself (drivers close
  ** what they open); if it does not, libFuzzer reports a hang. */
  while (tide_runtime_run(rt, TIDE_RUN_DEFAULT)) {
  }
  lua_settop(L, 0);
  tide_runtime_close(rt);
  return 0;
}
