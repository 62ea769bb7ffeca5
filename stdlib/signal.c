/*
** signal.c: the C half of tide.signal.  A Watcher is a userdata pointing at
** a malloced context that owns a uv_signal_t and counts the deliveries no
** task has taken yet (libuv callbacks cannot call Lua, so deliveries wait
** as a count); a task takes them one at a time with next().  The context is
** freed in the handle's close callback.  A watcher on SIGINT counts in
** rt->sigint_users, which makes the engine's default Ctrl-C handling
** (runtime/sigint.c) stand aside while it exists.
*/
#include <stdlib.h>

#include "internal.h"
#include "signames.h"

#define SIGWATCH_MT "tide.SignalWatcher"

typedef struct {
  uv_signal_t handle;
  tide_runtime_t *rt;
  tide_wait_t *waiter;  /* the task blocked in next(), if any */
  unsigned pending;     /* deliveries not taken yet */
  int signum;
} sctx_t;

typedef struct {
  sctx_t *ctx;  /* NULL once closed */
} sigwatch_t;

static void sctx_free(uv_handle_t *h) {
  /* owns the context the handle is embedded in */
  free(h->data);
}

static void on_signal(uv_signal_t *h, int signum) {
  /* owns nothing; counts the delivery and wakes the waiter */
  sctx_t *c = (sctx_t *)h->data;
  (void)signum;
  c->pending++;
  if (c->waiter) tide_wait_wake(c->waiter);
}

/* close(), __close and __gc. */
static int sigwatch_close(lua_State *L) {
  sigwatch_t *u = (sigwatch_t *)luaL_checkudata(L, 1, SIGWATCH_MT);
  sctx_t *c = u->ctx;
  if (c) {
    u->ctx = NULL;
    if (c->signum == SIGINT) c->rt->sigint_users--;
    if (c->waiter) {
      tide_wait_wake(c->waiter);
      c->waiter = NULL;
    }
    uv_close((uv_handle_t *)&c->handle, sctx_free);
  }
  return 0;
}

static void sigwatch_cancel(tide_wait_t *w) {
  ((sctx_t *)w->data)->waiter = NULL;
}

/* Take one delivery: push the signal's name. */
static int take(lua_State *L, sctx_t *c) {
  const char *name = tide_signame(c->signum);
  c->pending--;
  if (name) lua_pushstring(L, name);
  else lua_pushinteger(L, c->signum);
  return 1;
}

static int sigwatch_resume(lua_State *L, tide_wait_t *w) {
  sigwatch_t *u = (sigwatch_t *)lua_touserdata(L, 1);
  (void)w;
  if (!u->ctx || u->ctx->pending == 0) {  /* closed while waiting */
    lua_pushnil(L);
    return 1;
  }
  u->ctx->waiter = NULL;
  return take(L, u->ctx);
}

/* watcher:next() -> the signal's name when it arrives (at once if it
** arrived since the last call), or nil once the watcher is closed. */
static int sigwatch_next(lua_State *L) {
  sigwatch_t *u = (sigwatch_t *)luaL_checkudata(L, 1, SIGWATCH_MT);
  sctx_t *c = u->ctx;
  tide_task_t *t;
  lua_settop(L, 1);
  if (!c) {
    lua_pushnil(L);
    return 1;
  }
  if (c->waiter) return luaL_error(L, "signal watcher is already waited on");
  t = tide_async_check(L, "signal.wait");
  if (c->pending > 0) return take(L, c);
  /* Droppable: nothing is taken until the resume, so a cancel between the
  ** wake and the resume loses no delivery. */
  tide_wait_init(&t->self, sigwatch_cancel, sigwatch_resume, c,
                 TIDE_WAIT_DROPPABLE);
  c->waiter = &t->self;
  return tide_wait_yield(L, &t->self, "signal");
}

/* watch(sig, keepalive) -> watcher.  With keepalive false the handle does
** not keep the loop alive (signal.on, like Node.js's signal listeners). */
static int signal_watch(lua_State *L) {
  int signum = tide_checksignal(L, 1);
  int keep = lua_toboolean(L, 2);
  tide_runtime_t *rt = tide__rt(L);
  sigwatch_t *u;
  sctx_t *c;
  int r;
  if (signum == SIGKILL || signum == SIGSTOP)
    return luaL_argerror(L, 1, "KILL and STOP cannot be caught");
  u = (sigwatch_t *)lua_newuserdatauv(L, sizeof *u, 0);
  u->ctx = NULL;
  luaL_setmetatable(L, SIGWATCH_MT);
  if (!(c = calloc(1, sizeof *c))) return luaL_error(L, "not enough memory");
  c->rt = rt;
  c->signum = signum;
  uv_signal_init(rt->loop, &c->handle);
  c->handle.data = c;
  if ((r = uv_signal_start(&c->handle, on_signal, signum)) < 0) {
    uv_close((uv_handle_t *)&c->handle, sctx_free);
    return tide_error_raise(L, r, "signal.watch", NULL);
  }
  if (!keep) uv_unref((uv_handle_t *)&c->handle);
  if (signum == SIGINT) rt->sigint_users++;
  u->ctx = c;
  return 1;
}

/* kill(pid, sig): send a signal to a process. */
static int signal_kill(lua_State *L) {
  int pid = (int)luaL_checkinteger(L, 1);
  int signum = lua_isnoneornil(L, 2) ? SIGTERM : tide_checksignal(L, 2);
  int r = uv_kill(pid, signum);
  if (r < 0) return tide_error_raise(L, r, "signal.kill", NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* name(sig) -> "TERM" for 15 or "SIGTERM"; number(sig) -> 15. */
static int signal_name(lua_State *L) {
  const char *n = tide_signame(tide_checksignal(L, 1));
  if (n) lua_pushstring(L, n);
  else lua_pushnil(L);
  return 1;
}

static int signal_number(lua_State *L) {
  lua_pushinteger(L, tide_checksignal(L, 1));
  return 1;
}

static const luaL_Reg sigwatch_methods[] = {
  {"next", sigwatch_next},
  {"close", sigwatch_close},
  {NULL, NULL}
};

static const luaL_Reg signal_funcs[] = {
  {"watch", signal_watch},
  {"kill", signal_kill},
  {"name", signal_name},
  {"number", signal_number},
  {NULL, NULL}
};

int luaopen_tide_signal(lua_State *L) {
  if (luaL_newmetatable(L, SIGWATCH_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, sigwatch_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, sigwatch_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, sigwatch_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, signal_funcs);
  return 1;
}
