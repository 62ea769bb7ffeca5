/*
** embed.c: the parts of the public API that exist for hosts rather than for
** the engine itself - running a chunk or a function as a task to
** completion from C (tide_run*), asking whether a runtime has work left
** (for hosts that drive the loop themselves), registering C functions and
** module tables, and turning any error value into printable text with its
** traceback.  It owns no state of its own: everything lives in the runtime
** record (runtime/internal.h) and the Lua registry.
*/
#include <string.h>

#include "internal.h"
#include "../vm/compat.h"

/* ---- running a task to completion --------------------------------------- */

/* Replace the error of the failed task whose userdata is at ud (already
** pushed on top of L) with something that carries a traceback: a
** tide.Error has one already (task.c adds it when the error escapes the
** task); a string gets the traceback task.c kept for it (in the THREAD
** uservalue of a finished task) appended, as lua.c's message handler does.
** Other values are left alone. [-1, +1, m] */
static void add_traceback(lua_State *L, int ud) {
  if (lua_type(L, -1) != LUA_TSTRING) return;
  if (lua_getiuservalue(L, ud, TASK_UV_THREAD) != LUA_TSTRING) {
    lua_pop(L, 1);
    return;
  }
  lua_pushliteral(L, "\n");
  lua_insert(L, -2);
  lua_concat(L, 3);
}

int tide_run(tide_runtime_t *rt, int nargs, int nresults) {
  lua_State *L = rt->L;
  tide_task_t *t;
  int ud, base, n;
  if (rt->current || rt->running || rt->closing) {
    lua_pop(L, nargs + 1);
    lua_pushstring(L, rt->closing ? "tide_run: the runtime is closing"
                                  : "tide_run: a loop is already running");
    return LUA_ERRRUN;
  }
  base = lua_gettop(L) - nargs - 1; /* results go above this */
  t = tide_task_spawn(L, nargs);
  ud = lua_gettop(L);
  rt->running = 1;
  rt->run_target = t;
  /* finish() stops the loop when the target task ends, so a host loop
  ** with handles of its own does not keep us here. */
  while (t->status < TIDE_TASK_DONE) {
    tide_runtime_run(rt, TIDE_RUN_DEFAULT);
    if (t->status < TIDE_TASK_DONE && !rt->ready_head &&
        !uv_loop_alive(rt->loop))
      break;
  }
  rt->run_target = NULL;
  rt->running = 0;
  if (t->status < TIDE_TASK_DONE) {
    /* Deadlock: nothing can wake it.  Cancel it so its cleanup runs and
    ** it does not linger, then report. */
    tide_task_cancel(t, "nothing is left that could wake it");
    tide__drain(rt);
    if (t->status >= TIDE_TASK_DONE) t->retrieved = 1;
    lua_settop(L, base);
    lua_pushliteral(L,
                    "tide_run: the task is waiting and nothing is left "
                    "that could wake it");
    return LUA_ERRRUN;
  }
  n = tide__task_outcome_at(L, ud, t);
  if (n < 0) {
    add_traceback(L, ud);
    lua_remove(L, ud);
    return LUA_ERRRUN;
  }
  lua_remove(L, ud);
  if (nresults != LUA_MULTRET) lua_settop(L, base + nresults);
  return LUA_OK;
}

int tide_run_file(tide_runtime_t *rt, const char *path, int nargs,
                  int nresults) {
  lua_State *L = rt->L;
  int st = luaL_loadfile(L, path);
  if (st != LUA_OK) {
    lua_insert(L, -(nargs + 1)); /* keep only the message */
    lua_pop(L, nargs);
    return st;
  }
  lua_insert(L, -(nargs + 1));
  return tide_run(rt, nargs, nresults);
}

int tide_run_string(tide_runtime_t *rt, const char *code, const char *chunkname,
                    int nargs, int nresults) {
  lua_State *L = rt->L;
  int st = luaL_loadbufferx(L, code, strlen(code), chunkname ? chunkname : code,
                            "t");
  if (st != LUA_OK) {
    lua_insert(L, -(nargs + 1));
    lua_pop(L, nargs);
    return st;
  }
  lua_insert(L, -(nargs + 1));
  return tide_run(rt, nargs, nresults);
}

/* ---- state for host-driven loops ---------------------------------------- */

int tide_runtime_alive(tide_runtime_t *rt) {
  return rt->ready_head != NULL || uv_loop_alive(rt->loop);
}

size_t tide_runtime_ntasks(tide_runtime_t *rt) {
  return rt->nlive;
}

int tide_runtime_timeout(tide_runtime_t *rt) {
  /* libuv reports 0 both when something must run now (the idle handle is
  ** active while tasks are ready) and when the loop has nothing at all;
  ** the second means no deadline. */
  if (rt->ready_head) return 0;
  if (!uv_loop_alive(rt->loop)) return -1;
  return uv_backend_timeout(rt->loop);
}

/* ---- registering C code -------------------------------------------------- */

void tide_function_register(tide_runtime_t *rt, const char *name,
                            lua_CFunction fn) {
  lua_pushcfunction(rt->L, fn);
  lua_setglobal(rt->L, name);
}

/* package.preload loader for tide_module_register_lib: upvalue 1 is the
** host's luaL_Reg array. [-0, +1, m] */
static int open_lib(lua_State *L) {
  const luaL_Reg *funcs =
      (const luaL_Reg *)lua_touserdata(L, lua_upvalueindex(1));
  lua_newtable(L);
  luaL_setfuncs(L, funcs, 0);
  return 1;
}

void tide_module_register_lib(tide_runtime_t *rt, const char *name,
                              const luaL_Reg *funcs) {
  lua_State *L = rt->L;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushlightuserdata(L, (void *)funcs);
  lua_pushcclosure(L, open_lib, 1);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

/* ---- errors as text -------------------------------------------------------
 */

const char *tide_error_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (tide_error_is(L, idx, NULL)) {
    luaL_tolstring(L, idx, NULL);
    if (lua_getfield(L, idx, "traceback") == LUA_TSTRING) {
      lua_pushliteral(L, "\n");
      lua_insert(L, -2);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
    }
    return lua_tostring(L, -1);
  }
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  if (luaL_callmeta(L, idx, "__tostring")) {
    if (lua_type(L, -1) == LUA_TSTRING) return lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return lua_pushfstring(L, "(error object is a %s value)",
                         luaL_typename(L, idx));
}
