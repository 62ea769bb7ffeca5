/*
** fswatch.c: fs.watch, change events of a file or directory from a
** uv_fs_event_t.  A Watcher userdata points at a malloced context that owns
** the handle and the queue of events not read yet (libuv callbacks cannot
** call Lua, so events wait in C memory until a task takes them); the
** context is freed in the handle's close callback.  tide.fs re-exports
** watch from here.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WATCHER_MT "tide.Watcher"
#define MAX_EVENTS 4096  /* events kept while nobody reads; later ones are
                            dropped */

typedef struct event {
  struct event *next;
  char *name;
  int events;
} event_t;

/* Malloced; owns the handle and the events not yet read.  Freed in the
** handle's close callback. */
typedef struct {
  uv_fs_event_t handle;
  event_t *head, *tail;
  size_t count;
  tide_wait_t *waiter;  /* the task blocked in next(), if any */
  int err;              /* an error the callback reported */
} wctx_t;

typedef struct {
  wctx_t *ctx;  /* NULL once closed */
} watcher_t;

static void wctx_free(uv_handle_t *h) {
  /* owns the context the handle is embedded in */
  wctx_t *c = (wctx_t *)h->data;
  while (c->head) {
    event_t *e = c->head;
    c->head = e->next;
    free(e->name);
    free(e);
  }
  free(c);
}

static void on_fs_event(uv_fs_event_t *h, const char *name, int events,
                        int status) {
  /* owns nothing; queues the event and wakes the reader */
  wctx_t *c = (wctx_t *)h->data;
  if (status < 0) {
    c->err = status;
  } else if (c->count < MAX_EVENTS) {
    event_t *e = calloc(1, sizeof *e);
    if (!e) return;
    e->events = events;
    e->name = name ? strdup(name) : NULL;
    if (c->tail) c->tail->next = e;
    else c->head = e;
    c->tail = e;
    c->count++;
  }
  if (c->waiter) tide_wait_wake(c->waiter);
}

static int watcher_close(lua_State *L) {
  watcher_t *w = (watcher_t *)luaL_checkudata(L, 1, WATCHER_MT);
  wctx_t *c = w->ctx;
  if (c) {
    w->ctx = NULL;
    if (c->waiter) {
      tide_wait_wake(c->waiter);
      c->waiter = NULL;
    }
    uv_close((uv_handle_t *)&c->handle, wctx_free);
  }
  return 0;
}

/* Push the next event of c, or raise its error. [-0, +1, e] */
static int watcher_pop(lua_State *L, wctx_t *c) {
  event_t *e = c->head;
  if (!e) {
    int err = c->err;
    c->err = 0;
    return tide_error_raise(L, err, "fs.watch",
                            (lua_getiuservalue(L, 1, 1),
                             lua_tostring(L, -1)));
  }
  c->head = e->next;
  if (!c->head) c->tail = NULL;
  c->count--;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, (e->events & UV_RENAME) ? "rename" : "change");
  lua_setfield(L, -2, "event");
  if (e->name) {
    lua_pushstring(L, e->name);
    lua_setfield(L, -2, "name");
  }
  lua_getiuservalue(L, 1, 1);
  lua_setfield(L, -2, "path");
  free(e->name);
  free(e);
  return 1;
}

static void watcher_cancel(tide_wait_t *w) {
  ((wctx_t *)w->data)->waiter = NULL;
}

static int watcher_resume(lua_State *L, tide_wait_t *w) {
  watcher_t *u = (watcher_t *)lua_touserdata(L, 1);
  (void)w;
  if (!u->ctx) {  /* closed while waiting */
    lua_pushnil(L);
    return 1;
  }
  u->ctx->waiter = NULL;
  return watcher_pop(L, u->ctx);
}

/* watcher:next() -> event table, or nil once closed.  Also __call, so the
** watcher is its own iterator. */
static int watcher_next(lua_State *L) {
  watcher_t *u = (watcher_t *)luaL_checkudata(L, 1, WATCHER_MT);
  wctx_t *c = u->ctx;
  tide_task_t *t;
  lua_settop(L, 1);
  if (!c) {
    lua_pushnil(L);
    return 1;
  }
  if (c->head || c->err) return watcher_pop(L, c);
  if (c->waiter) return luaL_error(L, "watcher is already being waited on");
  t = tide_async_check(L, "fs.watch");
  tide_wait_init(&t->self, watcher_cancel, watcher_resume, c,
                 TIDE_WAIT_DROPPABLE);
  c->waiter = &t->self;
  return tide_wait_yield(L, &t->self, "fs.watch");
}

/* fs.watch(path) -> watcher, nil, nil, watcher: for a generic for, which
** closes the watcher when the loop is left. */
static int fs_watch(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  tide_runtime_t *rt = tide__rt(L);
  watcher_t *u;
  wctx_t *c;
  int r;
  u = (watcher_t *)lua_newuserdatauv(L, sizeof *u, 1);
  u->ctx = NULL;
  luaL_setmetatable(L, WATCHER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (!(c = calloc(1, sizeof *c))) return luaL_error(L, "not enough memory");
  uv_fs_event_init(rt->loop, &c->handle);
  c->handle.data = c;
  r = uv_fs_event_start(&c->handle, on_fs_event, path, 0);
  if (r < 0) {
    uv_close((uv_handle_t *)&c->handle, wctx_free);
    return tide_error_raise(L, r, "fs.watch", path);
  }
  u->ctx = c;
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, -3);
  return 4;
}

static const luaL_Reg watcher_methods[] = {
  {"next", watcher_next},
  {"close", watcher_close},
  {NULL, NULL}
};

int luaopen_tide_fswatch(lua_State *L) {
  if (luaL_newmetatable(L, WATCHER_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, watcher_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, watcher_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, watcher_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, watcher_next);
    lua_setfield(L, -2, "__call");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, fs_watch);
  lua_setfield(L, -2, "watch");
  return 1;
}
