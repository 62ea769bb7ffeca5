/*
** state.c: making a lua_State into a tide runtime.  It opens the standard
** libraries, creates the runtime record and the registry tables the engine
** anchors tasks in, patches the coroutine library, lists every stdlib
** module in package.preload (Lua modules are compiled into the binary as
** bytecode, with their source as a fallback, and loaded lazily, with chunk
** names pointing at their real files),
** and sets the `tide`, `async` and `await` globals.  It also owns the public
** create/close/spawn-a-chunk entry points.
*/
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "../runtime/internal.h"
#include "compat.h"
#include "modules.h"

/* Whether the liblua this process runs is the release that compiled the
** embedded bytecode (see vm/modules.h).  TIDE_NO_BYTECODE=1 says no. */
static int bytecode_usable(void) {
  const char *off = getenv("TIDE_NO_BYTECODE");
  if (off && *off && strcmp(off, "0") != 0) return 0;
  return strncmp(lua_ident, TIDE_LUA_IDENT, sizeof TIDE_LUA_IDENT - 1) == 0;
}

/* package.preload loader for an embedded Lua module: upvalue 1 is the
** index into tide__modules.  Loading bytecode skips parsing the source,
** which was about 40% of tide's start-up. [-0, +1, e] */
static int load_embedded(lua_State *L) {
  const tide_module_t *m =
      &tide__modules[lua_tointeger(L, lua_upvalueindex(1))];
  int st = LUA_ERRSYNTAX, top = lua_gettop(L);
  if (bytecode_usable())
    st = luaL_loadbufferx(L, m->bc, m->bclen, m->chunk, "b");
  if (st != LUA_OK) {
    lua_settop(L, top);
    st = luaL_loadbufferx(L, m->src, m->len, m->chunk, "t");
  }
  if (st != LUA_OK) return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

void tide_module_register(tide_runtime_t *rt, const char *name,
                          lua_CFunction open) {
  lua_State *L = rt->L;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

void tide__preload_stdlib(lua_State *L) {
  int i;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (i = 0; tide__modules[i].name; i++) {
    const tide_module_t *m = &tide__modules[i];
    if (m->open) {
      lua_pushcfunction(L, m->open);
    } else {
      lua_pushinteger(L, i);
      lua_pushcclosure(L, load_embedded, 1);
    }
    lua_setfield(L, -2, m->name);
  }
  lua_pushcfunction(L, tide__open_core);
  lua_setfield(L, -2, "tide._core");
  lua_pop(L, 1);
}

static int new_ref_table(lua_State *L, const char *mode) {
  lua_newtable(L);
  if (mode) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Turn L into a runtime on `loop` (NULL: own one).  Opens the tide table
** and globals.  Returns NULL if the loop cannot be made. */
static tide_runtime_t *setup(lua_State *L, uv_loop_t *loop) {
  tide_runtime_t *rt = tide__runtime_create(L, loop);
  if (!rt) return NULL;
  {
    const char *dbg = getenv("TIDE_DEBUG");
    rt->debug = dbg && *dbg && strcmp(dbg, "0") != 0;
  }
  rt->anchors = new_ref_table(L, NULL);
  rt->pool = new_ref_table(L, NULL);
  rt->busy = new_ref_table(L, "k");
  rt->names = new_ref_table(L, "k");
  lua_pushlightuserdata(L, rt);
  lua_setfield(L, LUA_REGISTRYINDEX, "tide.runtime");
  tide__error_open(L);
  tide__task_open(L);
  tide__coroutine_patch(L);
  tide__preload_stdlib(L);
  return rt;
}

/* Set the globals tide, async and await from the tide table on top of
** the stack, which stays there.  [-0, +0, m] */
static void set_globals(lua_State *L) {
  lua_pushvalue(L, -1);
  lua_setglobal(L, "tide");
  lua_getfield(L, -1, "async");
  lua_setglobal(L, "async");
  lua_getfield(L, -1, "await");
  lua_setglobal(L, "await");
}

/* Require "tide" and set the globals.  [-0, +0, e] */
static int open_globals(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "tide");
  lua_call(L, 1, 1);
  set_globals(L);
  lua_pop(L, 1);
  return 0;
}

/* The allocator used when TIDE_MEMORY_LIMIT is set: it refuses to grow
** Lua's memory beyond the limit while a task runs, so the task that asked
** gets Lua's "not enough memory" error (after Lua's emergency collection)
** and can be failed like any other.  Outside tasks - the scheduler storing
** a task's outcome, waking awaiters, closing the state - allocations are
** never refused: there no protected call would catch the error and the
** whole runtime would panic instead. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  tide_runtime_t *rt = (tide_runtime_t *)ud;
  tide_memlimit_t *m = &rt->mem;
  size_t old = ptr ? osize : 0;
  void *p;
  if (nsize > old && m->used - old + nsize > m->limit && rt->current)
    return NULL;
  p = m->f(m->ud, ptr, osize, nsize);
  if (p || nsize == 0) m->used = m->used - old + nsize;
  return p;
}

/* TIDE_MEMORY_LIMIT=<bytes>[k|m|g]: cap the memory Lua code may use.  A
** test hook for out-of-memory handling, and a guard for embedders who run
** untrusted scripts.  The state's own start-up is not counted against it. */
static void memory_limit(tide_runtime_t *rt) {
  const char *s = getenv("TIDE_MEMORY_LIMIT");
  char *end;
  double v;
  if (!s || !*s) return;
  v = strtod(s, &end);
  switch (*end) {
    case 'k': case 'K': v *= 1024.0; break;
    case 'm': case 'M': v *= 1024.0 * 1024.0; break;
    case 'g': case 'G': v *= 1024.0 * 1024.0 * 1024.0; break;
    default: break;
  }
  if (!(v > 0)) return;
  rt->mem.f = lua_getallocf(rt->L, &rt->mem.ud);
  rt->mem.limit = (size_t)v;
  rt->mem.used = (size_t)lua_gc(rt->L, LUA_GCCOUNT) * 1024 +
                 (size_t)lua_gc(rt->L, LUA_GCCOUNTB);
  lua_setallocf(rt->L, limited_alloc, rt);
}

/* What luaL_newstate installs, which tide cannot use because it picks
** the allocator: a panic handler, and warnings that start off and are
** switched by the "@on"/"@off" control messages (lua -W sends "@on"). */
static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  lua_writestringerror("PANIC: unprotected error in call to Lua API (%s)\n",
                       msg ? msg : "error object is not a string");
  return 0;
}

static void warn_off(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);

/* Handle a control message; 1 if msg was one. */
static int warn_control(lua_State *L, const char *msg, int tocont) {
  if (tocont || msg[0] != '@') return 0;
  if (strcmp(msg + 1, "off") == 0) lua_setwarnf(L, warn_off, L);
  else if (strcmp(msg + 1, "on") == 0) lua_setwarnf(L, warn_on, L);
  return 1;
}

static void warn_off(void *ud, const char *msg, int tocont) {
  warn_control((lua_State *)ud, msg, tocont);
}

/* A later piece of a warning: no prefix, a newline after the last. */
static void warn_more(void *ud, const char *msg, int tocont) {
  lua_State *L = (lua_State *)ud;
  lua_writestringerror("%s", msg);
  if (tocont) {
    lua_setwarnf(L, warn_more, L);
  } else {
    lua_writestringerror("%s", "\n");
    lua_setwarnf(L, warn_on, L);
  }
}

static void warn_on(void *ud, const char *msg, int tocont) {
  if (warn_control((lua_State *)ud, msg, tocont)) return;
  lua_writestringerror("%s", "Lua warning: ");
  warn_more(ud, msg, tocont);
}

tide_runtime_t *tide_runtime_new(uv_loop_t *loop) {
  tide_alloc_t *a;
  lua_Alloc f = tide__alloc_new(&a);
  lua_State *L = lua_newstate(f, a);
  tide_runtime_t *rt;
  if (!L) {
    tide__alloc_free(a);
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_off, L);
  luaL_openlibs(L);
  rt = setup(L, loop);
  if (!rt) {
    lua_close(L);
    tide__alloc_free(a);
    return NULL;
  }
  rt->alloc = a;
  lua_pushcfunction(L, open_globals);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    tide__runtime_destroy(rt, 1);
    return NULL;
  }
  memory_limit(rt);
  return rt;
}

void tide_runtime_close(tide_runtime_t *rt) {
  if (rt) tide__runtime_destroy(rt, 1);
}

int tide_spawn_file(tide_runtime_t *rt, const char *path, int nargs) {
  lua_State *L = rt->L;
  int st = luaL_loadfile(L, path);
  if (st != LUA_OK) {
    lua_insert(L, -(nargs + 1));  /* keep only the message */
    lua_pop(L, nargs);
    return st;
  }
  lua_insert(L, -(nargs + 1));
  tide_task_spawn(L, nargs);
  return LUA_OK;
}

int tide_spawn_string(tide_runtime_t *rt, const char *code,
                      const char *chunkname, int nargs) {
  lua_State *L = rt->L;
  int st = luaL_loadbufferx(L, code, strlen(code),
                            chunkname ? chunkname : code, "t");
  if (st != LUA_OK) {
    lua_insert(L, -(nargs + 1));  /* keep only the message */
    lua_pop(L, nargs);
    return st;
  }
  lua_insert(L, -(nargs + 1));
  tide_task_spawn(L, nargs);
  return LUA_OK;
}

/* When tide is loaded into a stock Lua host, the runtime is torn down when
** that host closes its state: this sentinel's finalizer does it. */
static int host_runtime_gc(lua_State *L) {
  tide_runtime_t **p = (tide_runtime_t **)lua_touserdata(L, 1);
  if (*p) {
    (*p)->closing = 1;
    tide__runtime_destroy(*p, 0);
    *p = NULL;
  }
  return 0;
}

int luaopen_tide(lua_State *L) {
  tide_runtime_t *rt;
  /* A stock host never initialises the extra space, so look in the
  ** registry to know whether this state is a runtime already. */
  lua_getfield(L, LUA_REGISTRYINDEX, "tide.runtime");
  rt = (tide_runtime_t *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!rt) {
    tide_runtime_t **p;
    rt = setup(L, NULL);
    if (!rt) return luaL_error(L, "tide: cannot create an event loop");
    p = (tide_runtime_t **)lua_newuserdatauv(L, sizeof *p, 0);
    *p = rt;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, host_runtime_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "tide.host_runtime");
  }
  /* The Lua half of the tide table. */
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_getfield(L, -1, "tide");
  lua_remove(L, -2);
  lua_pushliteral(L, "tide");
  lua_call(L, 1, 1);
  set_globals(L);
  return 1;
}
