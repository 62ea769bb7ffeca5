/*
** error.c: tide.Error, the one error object every module raises for
** operational failures.  It is a table {code=, message=, op=, path=?,
** traceback=?} with a shared metatable whose __tostring gives
** "op: path: CODE: message"; this file owns that metatable and the helpers
** that build and raise such errors, so no module formats errors by hand.
*/
#include <stdarg.h>
#include <string.h>

#include "../runtime/internal.h"

void tide_error_push(lua_State *L, const char *code, const char *op,
                     const char *path, const char *message) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, message ? message : code);
  lua_setfield(L, -2, "message");
  if (op) {
    lua_pushstring(L, op);
    lua_setfield(L, -2, "op");
  }
  if (path) {
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
  }
  luaL_setmetatable(L, TIDE_ERROR_MT);
}

int tide_error_raise(lua_State *L, int uverr, const char *op,
                     const char *path) {
  tide_error_push(L, uv_err_name(uverr), op, path, uv_strerror(uverr));
  return lua_error(L);
}

int tide_error_raisef(lua_State *L, const char *code, const char *op,
                      const char *fmt, ...) {
  const char *msg;
  va_list ap;
  va_start(ap, fmt);
  msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  tide_error_push(L, code, op, NULL, msg);
  return lua_error(L);
}

int tide_error_is(lua_State *L, int idx, const char *code) {
  int ok;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, TIDE_ERROR_MT);
  ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (ok && code) {
    const char *c;
    lua_getfield(L, idx, "code");
    c = lua_tostring(L, -1);
    ok = c && strcmp(c, code) == 0;
    lua_pop(L, 1);
  }
  return ok;
}

/* Push the ECANCELED error of a task, with its cancel message.
** [-0, +1, m] */
void tide__error_cancelled(lua_State *L, tide_task_t *t) {
  const char *msg = "task cancelled";
  if (t && t->cancel_msg != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->cancel_msg);
    msg = lua_pushfstring(L, "task cancelled: %s", lua_tostring(L, -1));
    lua_remove(L, -2);
    tide_error_push(L, "ECANCELED", NULL, NULL, msg);
    lua_remove(L, -2);
    return;
  }
  tide_error_push(L, "ECANCELED", NULL, NULL, msg);
}

/* Give the error object at idx (if it is a tide.Error without one) the
** traceback of the coroutine it escaped from. [-0, +0, m] */
void tide__error_add_traceback(lua_State *L, int idx, lua_State *co) {
  idx = lua_absindex(L, idx);
  if (!tide_error_is(L, idx, NULL)) return;
  if (lua_getfield(L, idx, "traceback") != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  luaL_traceback(L, co, NULL, 0);
  lua_setfield(L, idx, "traceback");
}

/* __tostring: "op: path: CODE: message", leaving out absent parts and a
** message that only repeats the code. */
static int error__tostring(lua_State *L) {
  luaL_Buffer b;
  const char *code, *msg;
  /* code and message go on the stack before the buffer: a luaL_Buffer
  ** must stay on top while it grows. */
  lua_settop(L, 1);
  lua_getfield(L, 1, "code");
  code = lua_tostring(L, -1);
  lua_getfield(L, 1, "message");
  msg = lua_tostring(L, -1);
  luaL_buffinit(L, &b);
  if (lua_getfield(L, 1, "op") == LUA_TSTRING) {
    luaL_addvalue(&b);
    luaL_addstring(&b, ": ");
  } else {
    lua_pop(L, 1);
  }
  if (lua_getfield(L, 1, "path") == LUA_TSTRING) {
    luaL_addvalue(&b);
    luaL_addstring(&b, ": ");
  } else if (lua_type(L, -1) == LUA_TNIL) {
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "addr") == LUA_TSTRING) {
      luaL_addvalue(&b);
      luaL_addstring(&b, ": ");
    } else {
      lua_pop(L, 1);
    }
  } else {
    lua_pop(L, 1);
  }
  luaL_addstring(&b, code ? code : "ERROR");
  if (msg && (!code || strcmp(msg, code) != 0)) {
    luaL_addstring(&b, ": ");
    luaL_addstring(&b, msg);
  }
  luaL_pushresult(&b);
  return 1;
}

/* tide.error(code, message [, fields]) -> a new error object, so Lua code
** can raise errors of the same shape: error(tide.error("EPROTO", "bad")). */
static int error_new(lua_State *L) {
  const char *code = luaL_checkstring(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  tide_error_push(L, code, NULL, NULL, msg);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_settable(L, -4);
    }
  }
  return 1;
}

/* tide.is_error(v [, code]) -> boolean */
static int error_is(lua_State *L) {
  lua_pushboolean(L, tide_error_is(L, 1, luaL_optstring(L, 2, NULL)));
  return 1;
}

void tide__error_open(lua_State *L) {
  if (luaL_newmetatable(L, TIDE_ERROR_MT)) {
    lua_pushcfunction(L, error__tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "tide.Error");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
}

/* Fields of the core table that belong to errors. [-0, +0, m] */
void tide__error_fields(lua_State *L, int tbl) {
  tbl = lua_absindex(L, tbl);
  lua_pushcfunction(L, error_new);
  lua_setfield(L, tbl, "error");
  lua_pushcfunction(L, error_is);
  lua_setfield(L, tbl, "is_error");
}
