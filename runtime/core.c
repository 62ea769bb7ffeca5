/*
** core.c: the C half of the `tide` table - sleep, spawn, await, futures,
** deadlines, the watch primitive that gather/race/wait/group are built on,
** introspection, tide.run - and the patched coroutine library that lets a
** runtime wait inside a user coroutine suspend the whole task.  The Lua half
** (stdlib/tide.lua) builds the combinators on these primitives.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../vm/compat.h"

#define FUTURE_MT "tide.Future"
#define WATCH_MT "tide.Watch"
#define DEADLINE_MT "tide.Deadline"

/* ---- sleep -------------------------------------------------------------- */

static void sleep_fire(tide_timer_t *tm) {
  tide_task_t *t = tide_container_of(tm, tide_task_t, sleep);
  tide_wait_wake(&t->self);
}

static void sleep_cancel(tide_wait_t *w) {
  tide_task_t *t = (tide_task_t *)w->data;
  tide__timer_stop(t->rt, &t->sleep);
}

static int core_sleep(lua_State *L) {
  double s = luaL_optnumber(L, 1, 0);
  tide_task_t *t = tide_async_check(L, "tide.sleep");
  if (s <= 0 || s != s) return tide__yield_ready(L, t);
  tide_wait_init(&t->self, sleep_cancel, NULL, t, TIDE_WAIT_DROPPABLE);
  t->sleep.fire = sleep_fire;
  tide__timer_start(t->rt, &t->sleep, s);
  return tide_wait_yield(L, &t->self, "sleep");
}

/* ---- spawn / await ------------------------------------------------------- */

/* spawn(fn, ...); upvalues 1 and 2 are the runtime's anchor table and
** the Task metatable, which saves each spawn two registry lookups. */
static int core_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  tide__task_spawn(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int future_await(lua_State *L);

static int core_await(lua_State *L) {
  tide_task_t *t = tide__task_test(L, 1);
  if (t) return tide__task_await(L, t, 0);
  if (luaL_testudata(L, 1, FUTURE_MT)) return future_await(L);
  return luaL_typeerror(L, 1, "Task or Future");
}

static int core_shield(lua_State *L) {
  return tide__task_await(L, tide_task_check(L, 1), 1);
}

/* ---- futures ------------------------------------------------------------ */

typedef struct {
  tide_waitq_t waiters;
  int state;  /* 0 pending, 1 set, 2 failed */
  int nvals;
} future_t;

/* uservalue 1: the value (one) or a table of values (several) or the
** error. */

static int core_future(lua_State *L) {
  future_t *f = (future_t *)lua_newuserdatauv(L, sizeof *f, 1);
  memset(f, 0, sizeof *f);
  luaL_setmetatable(L, FUTURE_MT);
  return 1;
}

static future_t *check_future(lua_State *L) {
  return (future_t *)luaL_checkudata(L, 1, FUTURE_MT);
}

static void future_wake_all(future_t *f) {
  tide_wait_t *w;
  while ((w = tide_waitq_pop(&f->waiters)) != NULL) tide_wait_wake(w);
}

static int future_set(lua_State *L) {
  future_t *f = check_future(L);
  int i, n = lua_gettop(L) - 1;
  if (f->state) return luaL_error(L, "future already resolved");
  if (n == 1) {
    lua_setiuservalue(L, 1, 1);
  } else if (n > 1) {
    lua_createtable(L, n, 0);
    lua_insert(L, 2);
    for (i = n; i >= 1; i--) lua_rawseti(L, 2, i);
    lua_setiuservalue(L, 1, 1);
  }
  f->nvals = n;
  f->state = 1;
  future_wake_all(f);
  return 0;
}

static int future_fail(lua_State *L) {
  future_t *f = check_future(L);
  luaL_checkany(L, 2);
  if (f->state) return luaL_error(L, "future already resolved");
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  f->state = 2;
  future_wake_all(f);
  return 0;
}

static int future_push(lua_State *L, future_t *f) {
  int i;
  lua_getiuservalue(L, 1, 1);
  if (f->state == 2) return lua_error(L);
  if (f->nvals <= 1) return f->nvals == 1 ? 1 : (lua_pop(L, 1), 0);
  luaL_checkstack(L, f->nvals, "too many values");
  for (i = 1; i <= f->nvals; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -(f->nvals + 1));
  return f->nvals;
}

static void future_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((future_t *)w->data)->waiters, w);
}

static int future_resume(lua_State *L, tide_wait_t *w) {
  return future_push(L, (future_t *)w->data);
}

static int future_await(lua_State *L) {
  future_t *f = check_future(L);
  tide_task_t *t;
  lua_settop(L, 1);
  if (f->state) return future_push(L, f);
  t = tide_async_check(L, "future:await");
  tide_wait_init(&t->self, future_cancel, future_resume, f,
                 TIDE_WAIT_DROPPABLE);
  tide_waitq_push(&f->waiters, &t->self);
  return tide_wait_yield(L, &t->self, "future");
}

static int future_done(lua_State *L) {
  lua_pushboolean(L, check_future(L)->state != 0);
  return 1;
}

static int future__tostring(lua_State *L) {
  static const char *const st[] = {"pending", "set", "failed"};
  lua_pushfstring(L, "Future (%s)", st[check_future(L)->state]);
  return 1;
}

static const luaL_Reg future_methods[] = {
  {"set", future_set},
  {"fail", future_fail},
  {"await", future_await},
  {"done", future_done},
  {NULL, NULL}
};

/* ---- watch: wait for any of several tasks ------------------------------- */

/* A Watch collects tasks as they finish, in finishing order.  Each watched
** unfinished task holds one malloced link in its awaiters list; the
** userdata's uservalue table maps lightuserdata(record) -> Task, which
** keeps finished tasks alive until next() hands them out. */
typedef struct watch watch_t;
typedef struct {
  tide_wait_t w;  /* flags TIDE__WAIT_WATCH; data = watch */
  tide_task_t *target;
  watch_t *watch;
} watch_link_t;

struct watch {
  tide_wait_t *waiter;    /* the task blocked in next(), if any */
  tide_task_t **done;     /* FIFO ring of finished tasks */
  size_t head, count, cap;
  watch_link_t **links;   /* pending links */
  size_t nlinks, linkcap;
  tide_task_t *trip;      /* cancelled when a watched task fails (the body
                             of a tide.group), while armed */
  int tripped;
  int closed;
};

static void watch_push_done(watch_t *wt, tide_task_t *t) {
  if (wt->count == wt->cap) {
    size_t i, cap = wt->cap ? wt->cap * 2 : 8;
    tide_task_t **d = malloc(cap * sizeof *d);
    if (!d) abort();
    for (i = 0; i < wt->count; i++) d[i] = wt->done[(wt->head + i) % wt->cap];
    free(wt->done);
    wt->done = d;
    wt->head = 0;
    wt->cap = cap;
  }
  wt->done[(wt->head + wt->count++) % wt->cap] = t;
}

static void watch_drop_link(watch_t *wt, watch_link_t *l) {
  size_t i;
  for (i = 0; i < wt->nlinks; i++) {
    if (wt->links[i] == l) {
      wt->links[i] = wt->links[--wt->nlinks];
      break;
    }
  }
  free(l);
}

/* Called by task.c when a watched task finishes; runs no Lua. */
void tide__watch_notify(tide_wait_t *w, tide_task_t *done) {
  watch_link_t *l = (watch_link_t *)w;
  watch_t *wt = l->watch;
  watch_drop_link(wt, l);
  watch_push_done(wt, done);
  if (wt->trip && !wt->tripped && done->status == TIDE_TASK_FAILED) {
    wt->tripped = 1;
    tide__task_interrupt(wt->trip, TIDE_WAKE_CANCELLED);
  }
  if (wt->waiter) tide_wait_wake(wt->waiter);
}

static watch_t *check_watch(lua_State *L) {
  watch_t *wt = (watch_t *)luaL_checkudata(L, 1, WATCH_MT);
  if (wt->closed) luaL_error(L, "watch is closed");
  return wt;
}

static int core_watch(lua_State *L) {
  watch_t *wt = (watch_t *)lua_newuserdatauv(L, sizeof *wt, 2);
  memset(wt, 0, sizeof *wt);
  luaL_setmetatable(L, WATCH_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* watch:add(task) */
static int watch_add(lua_State *L) {
  watch_t *wt = check_watch(L);
  tide_task_t *t = tide_task_check(L, 2);
  lua_getiuservalue(L, 1, 1);
  lua_pushlightuserdata(L, t);
  if (lua_rawget(L, -2) != LUA_TNIL) return 0; /* already watched */
  lua_pop(L, 1);
  lua_pushlightuserdata(L, t);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  if (t->status >= TIDE_TASK_DONE) {
    watch_push_done(wt, t);
  } else {
    watch_link_t *l = malloc(sizeof *l);
    if (!l) return luaL_error(L, "out of memory");
    tide_wait_init(&l->w, NULL, NULL, wt, TIDE__WAIT_WATCH);
    l->target = t;
    l->watch = wt;
    if (wt->nlinks == wt->linkcap) {
      size_t cap = wt->linkcap ? wt->linkcap * 2 : 8;
      watch_link_t **n = realloc(wt->links, cap * sizeof *n);
      if (!n) {
        free(l);
        return luaL_error(L, "out of memory");
      }
      wt->links = n;
      wt->linkcap = cap;
    }
    wt->links[wt->nlinks++] = l;
    tide_waitq_push(&t->awaiters, &l->w);
  }
  return 0;
}

/* Pop the next finished task onto the stack (uservalue table at -1). */
static int watch_pop(lua_State *L, watch_t *wt) {
  tide_task_t *t = wt->done[wt->head];
  wt->head = (wt->head + 1) % wt->cap;
  wt->count--;
  lua_getiuservalue(L, 1, 1);
  lua_pushlightuserdata(L, t);
  lua_rawget(L, -2);
  lua_pushlightuserdata(L, t);
  lua_pushnil(L);
  lua_rawset(L, -4);
  return 1;
}

static void watch_wait_cancel(tide_wait_t *w) {
  ((watch_t *)w->data)->waiter = NULL;
}

static int watch_resume(lua_State *L, tide_wait_t *w) {
  watch_t *wt = (watch_t *)w->data;
  wt->waiter = NULL;
  if (wt->count == 0) {  /* closed while waiting */
    lua_pushnil(L);
    return 1;
  }
  return watch_pop(L, wt);
}

/* watch:next() -> the next task to finish, or nil when none is left. */
static int watch_next(lua_State *L) {
  watch_t *wt = check_watch(L);
  tide_task_t *t;
  lua_settop(L, 1);
  if (wt->count > 0) return watch_pop(L, wt);
  if (wt->nlinks == 0) {
    lua_pushnil(L);
    return 1;
  }
  t = tide_async_check(L, "tide.wait");
  tide_wait_init(&t->self, watch_wait_cancel, watch_resume, wt,
                 TIDE_WAIT_DROPPABLE);
  wt->waiter = &t->self;
  return tide_wait_yield(L, &t->self, "tasks");
}

/* watch:arm(task): cancel task (once) as soon as a watched task fails.
** The task must outlive the arming: tide.group arms the task running its
** body and disarms before the body's frame ends. */
static int watch_arm(lua_State *L) {
  watch_t *wt = check_watch(L);
  wt->trip = tide_task_check(L, 2);
  wt->tripped = 0;
  /* The arming can outlive the task (a group body suspended by a plain
  ** coroutine.yield in a coroutine another task keeps): uservalue 2 holds
  ** the Task so a later failure never cancels a collected task record. */
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 2);
  return 0;
}

/* watch:disarm() -> whether a failure cancelled the armed task.  A cancel
** still pending on it (it had not awaited since) is withdrawn. */
static int watch_disarm(lua_State *L) {
  watch_t *wt = check_watch(L);
  if (wt->trip && wt->tripped) wt->trip->cancel_pending = 0;
  wt->trip = NULL;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 2);
  lua_pushboolean(L, wt->tripped);
  return 1;
}

/* watch:pending() -> number of watched tasks not finished yet */
static int watch_pending(lua_State *L) {
  watch_t *wt = check_watch(L);
  lua_pushinteger(L, (lua_Integer)wt->nlinks);
  return 1;
}

static int watch_close(lua_State *L) {
  watch_t *wt = (watch_t *)luaL_checkudata(L, 1, WATCH_MT);
  size_t i;
  if (wt->closed) return 0;
  wt->closed = 1;
  wt->trip = NULL;
  for (i = 0; i < wt->nlinks; i++) {
    tide_waitq_remove(&wt->links[i]->target->awaiters, &wt->links[i]->w);
    free(wt->links[i]);
  }
  free(wt->links);
  free(wt->done);
  wt->links = NULL;
  wt->done = NULL;
  wt->nlinks = wt->count = 0;
  if (wt->waiter) tide_wait_wake(wt->waiter);
  return 0;
}

static const luaL_Reg watch_methods[] = {
  {"add", watch_add},
  {"next", watch_next},
  {"pending", watch_pending},
  {"arm", watch_arm},
  {"disarm", watch_disarm},
  {"close", watch_close},
  {NULL, NULL}
};

/* ---- deadlines (tide.timeout scopes) ------------------------------------ */

void tide__deadline_fire(tide_timer_t *tm) {
  tide_deadline_t *d = tide_container_of(tm, tide_deadline_t, timer);
  d->expired = 1;
  tide__task_interrupt(d->task, TIDE_WAKE_TIMEDOUT);
}

/* tide._deadline(seconds) -> scope; opened on the running task. */
static int core_deadline(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  tide_runtime_t *rt = tide__rt(L);
  tide_task_t *t = rt->current;
  tide_deadline_t *d;
  if (!t) return luaL_error(L, "tide.timeout: not inside a task");
  d = (tide_deadline_t *)lua_newuserdatauv(L, sizeof *d, 1);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, DEADLINE_MT);
  /* The scope can outlive the task (left open in a suspended coroutine
  ** that another task keeps): it holds the Task, so its timer and its
  ** close never reach a collected task record. */
  tide_task_push(L, t);
  lua_setiuservalue(L, -2, 1);
  tide__timer_init(&d->timer, tide__deadline_fire);
  d->task = t;
  d->seconds = s;
  d->up = t->deadlines;
  d->active = 1;
  t->deadlines = d;
  if (s <= 0) d->expired = 1;
  else tide__timer_start(rt, &d->timer, s);
  return 1;
}

/* scope:close() -> expired: stop the timer and leave the task's stack. */
static int deadline_close(lua_State *L) {
  tide_deadline_t *d = (tide_deadline_t *)luaL_checkudata(L, 1, DEADLINE_MT);
  if (d->active) {
    tide_deadline_t **p;
    d->active = 0;
    tide__timer_stop(d->task->rt, &d->timer);
    for (p = &d->task->deadlines; *p; p = &(*p)->up) {
      if (*p == d) {
        *p = d->up;
        break;
      }
    }
  }
  lua_pushboolean(L, d->expired);
  return 1;
}

/* ---- introspection ------------------------------------------------------ */

static int core_current(lua_State *L) {
  tide_task_t *t = tide_task_current(L);
  if (!t) lua_pushnil(L);
  else tide_task_push(L, t);
  return 1;
}

static int core_tasks(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  tide_task_t *t;
  int i = 0;
  lua_createtable(L, (int)rt->nlive, 0);
  for (t = rt->live; t; t = t->next_live) {
    tide_task_push(L, t);
    lua_rawseti(L, -2, ++i);
  }
  /* oldest first */
  for (int a = 1, b = i; a < b; a++, b--) {
    lua_rawgeti(L, -1, a);
    lua_rawgeti(L, -2, b);
    lua_rawseti(L, -3, a);
    lua_rawseti(L, -2, b);
  }
  return 1;
}

static int core_dump(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  tide_task_t *t;
  luaL_Buffer b;
  int n = 0;
  lua_settop(L, 0);
  core_tasks(L);  /* 1: the list, to keep the order stable */
  luaL_buffinit(L, &b);
  /* Each task's text is made into one string, and the values made on the
  ** way are dropped, before it goes into the buffer: a luaL_Buffer's box
  ** must be just under the value added. */
  for (n = 1; lua_rawgeti(L, 1, n) != LUA_TNIL; n++) {
    int ud = lua_gettop(L), parts = 1;
    t = tide_task_check(L, ud);
    lua_getfield(L, ud, "name");
    lua_getfield(L, ud, "where");
    lua_pushfstring(L, "Task %d (%s) %s", (int)t->id, lua_tostring(L, ud + 1),
                    tide__status_name(t->status));
    if (t->status == TIDE_TASK_WAITING && t->wait && t->wait->what) {
      lua_pushfstring(L, " on %s", t->wait->what);
      parts++;
    }
    if (!lua_isnil(L, ud + 2)) {
      lua_pushfstring(L, ", %s", lua_tostring(L, ud + 2));
      parts++;
    }
    lua_pushliteral(L, "\n");
    parts++;
    if (t != rt->current && t->status != TIDE_TASK_PENDING) {
      luaL_traceback(L, t->L, NULL, 0);
      lua_pushliteral(L, "\n");
      parts += 2;
    }
    lua_concat(L, parts);
    lua_replace(L, ud);
    lua_settop(L, ud);
    luaL_addvalue(&b);
  }
  lua_pop(L, 1); /* the nil that ended the list */
  luaL_pushresult(&b);
  return 1;
}

static void count_handle(uv_handle_t *h, void *arg) {
  if (uv_is_active(h) && uv_has_ref(h)) (*(int *)arg)++;
}

/* tide._stats() -> {tasks=, ready=, timers=, handles=, requests=}: what is
** alive, for tests that check a cancel left nothing behind.  `handles`
** counts active, referenced libuv handles other than tide's own timer and
** idle handle. */
static int core_stats(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  int handles = 0;
  uv_walk(rt->loop, count_handle, &handles);
  if (uv_is_active((uv_handle_t *)rt->timer)) handles--;
  if (uv_is_active((uv_handle_t *)rt->idle)) handles--;
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)rt->nlive);
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, (lua_Integer)rt->nready);
  lua_setfield(L, -2, "ready");
  lua_pushinteger(L, (lua_Integer)rt->nheap);
  lua_setfield(L, -2, "timers");
  lua_pushinteger(L, handles);
  lua_setfield(L, -2, "handles");
  lua_pushinteger(L, (lua_Integer)rt->loop->active_reqs.count);
  lua_setfield(L, -2, "requests");
  return 1;
}

static int core_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

static int core_exit(lua_State *L) {
  int code;
  if (lua_isboolean(L, 1)) code = lua_toboolean(L, 1) ? 0 : 1;
  else code = (int)luaL_optinteger(L, 1, 0);
  fflush(NULL);
  exit(code);
  return 0;
}

/* tide.run(fn, ...): run a loop until fn's task finishes, then cancel what
** is left (as asyncio.run does) and return fn's results. */
static int core_run(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  tide_task_t *t;
  int n, ud;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (rt->current || rt->running)
    return luaL_error(L, "tide.run: a loop is already running");
  t = tide_task_spawn(L, lua_gettop(L) - 1);
  ud = lua_gettop(L);
  rt->running = 1;
  rt->run_target = t;
  while (t->status < TIDE_TASK_DONE) {
    uv_run(rt->loop, UV_RUN_DEFAULT);
    if (t->status < TIDE_TASK_DONE && !rt->ready_head &&
        !uv_loop_alive(rt->loop))
      break;
  }
  rt->run_target = NULL;
  /* Cancel the rest and let their cleanup run. */
  for (n = 0; n < 8 && rt->live; n++) {
    tide__cancel_all(rt);
    if (t->status < TIDE_TASK_DONE) break;
    uv_run(rt->loop, UV_RUN_NOWAIT);
  }
  rt->running = 0;
  if (t->status < TIDE_TASK_DONE) {
    tide__cancel_all(rt);
    uv_run(rt->loop, UV_RUN_NOWAIT);
    return luaL_error(L, "tide.run: the task is waiting and nothing is left "
                      "that could wake it");
  }
  n = tide__task_outcome_at(L, ud, t);
  if (n < 0) return lua_error(L);
  return n;
}

/* ---- coroutines inside tasks -------------------------------------------- */

/* Mark co as suspended under a task wait (or clear the mark), so another
** task cannot resume it from under its owner. */
static void set_busy(lua_State *L, lua_State *co, int on) {
  tide_runtime_t *rt = tide__rt(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->busy);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  if (on) lua_pushboolean(L, 1);
  else lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int is_busy(lua_State *L, lua_State *co) {
  tide_runtime_t *rt = tide__rt(L);
  int r;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->busy);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  r = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return r;
}

static int co_step(lua_State *L, lua_State *co, int narg, int wrap);

static int co_k(lua_State *L, int status, lua_KContext ctx) {
  lua_State *co = lua_tothread(L, ctx ? lua_upvalueindex(1) : 1);
  (void)status;
  set_busy(L, co, 0);
  lua_settop(L, ctx ? 0 : 1);
  return co_step(L, co, 0, (int)ctx);
}

/* Resume co with narg values from L.  A runtime wait inside co (the task
** left the running state) suspends L too, through co_k, and resumes co when
** the task is resumed.  Otherwise behave like Lua's resume/wrap. */
static int co_step(lua_State *L, lua_State *co, int narg, int wrap) {
  tide_runtime_t *rt = tide__rt(L);
  tide_nest_t frame;
  int st, nres;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    goto fail;
  }
  lua_xmove(L, co, narg);
  frame.from = L;
  frame.co = co;
  frame.up = rt ? rt->nest : NULL;
  if (rt) rt->nest = &frame;
  st = lua_resume(co, L, narg, &nres);
  if (rt) rt->nest = frame.up;
  if (st == LUA_YIELD && rt && rt->current &&
      rt->current->status != TIDE_TASK_RUNNING) {
    lua_pop(co, nres);
    set_busy(L, co, 1);
    return lua_yieldk(L, 0, (lua_KContext)wrap, co_k);
  }
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      goto fail;
    }
    if (!wrap) lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + (wrap ? 0 : 1);
  }
  lua_xmove(co, L, 1);
  if (wrap) {
    int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD) {
      stat = tide_closethread(co, L);
      lua_pop(co, lua_gettop(co));
    }
    if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  goto fail_value;
fail:
  if (wrap) return lua_error(L);
fail_value:
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

static lua_State *check_co(lua_State *L, int idx) {
  lua_State *co = lua_tothread(L, idx);
  luaL_argexpected(L, co, idx, "coroutine");
  return co;
}

static int co_resume(lua_State *L) {
  lua_State *co = check_co(L, 1);
  if (tide__task_of_thread(co)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume the coroutine of a task (the "
                    "scheduler resumes it)");
    return 2;
  }
  if (is_busy(L, co)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume non-suspended coroutine");
    return 2;
  }
  return co_step(L, co, lua_gettop(L) - 1, 0);
}

static int co_auxwrap(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  if (is_busy(L, co)) return luaL_error(L, "cannot resume non-suspended "
                                        "coroutine");
  return co_step(L, co, lua_gettop(L), 1);
}

static int co_wrap(lua_State *L) {
  lua_State *co;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, co_auxwrap, 1);
  return 1;
}

static int co_status(lua_State *L) {
  lua_State *co = check_co(L, 1);
  if (is_busy(L, co)) {
    lua_pushliteral(L, "normal");
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

/* coroutine.close would kill a suspended task behind the scheduler's
** back: refuse task coroutines, pass everything else on. */
static int co_close(lua_State *L) {
  lua_State *co = check_co(L, 1);
  if (tide__task_of_thread(co) || is_busy(L, co))
    return luaL_error(L, "cannot close the coroutine of a task; cancel the "
                      "task instead");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

void tide__coroutine_patch(lua_State *L) {
  if (lua_getglobal(L, "coroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pushcfunction(L, co_resume);
  lua_setfield(L, -2, "resume");
  lua_pushcfunction(L, co_wrap);
  lua_setfield(L, -2, "wrap");
  lua_getfield(L, -1, "status");
  lua_pushcclosure(L, co_status, 1);
  lua_setfield(L, -2, "status");
  lua_getfield(L, -1, "close");
  lua_pushcclosure(L, co_close, 1);
  lua_setfield(L, -2, "close");
  lua_pop(L, 1);
}

/* ---- the module ----------------------------------------------------------- */

static const luaL_Reg core_funcs[] = {
  {"sleep", core_sleep},
  {"await", core_await},
  {"shield", core_shield},
  {"future", core_future},
  {"current", core_current},
  {"tasks", core_tasks},
  {"dump", core_dump},
  {"now", core_now},
  {"run", core_run},
  {"exit", core_exit},
  {"_watch", core_watch},
  {"_deadline", core_deadline},
  {"_stats", core_stats},
  {NULL, NULL}
};

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction gc, lua_CFunction tostr) {
  if (luaL_newmetatable(L, name)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    if (gc) {
      lua_pushcfunction(L, gc);
      lua_setfield(L, -2, "__gc");
      lua_pushcfunction(L, gc);
      lua_setfield(L, -2, "__close");
    }
    if (tostr) {
      lua_pushcfunction(L, tostr);
      lua_setfield(L, -2, "__tostring");
    }
  }
  lua_pop(L, 1);
}

static const luaL_Reg deadline_methods[] = {
  {"close", deadline_close},
  {NULL, NULL}
};

/* luaopen for "tide._core": the C primitives. */
int tide__open_core(lua_State *L) {
  new_type(L, FUTURE_MT, future_methods, NULL, future__tostring);
  new_type(L, WATCH_MT, watch_methods, watch_close, NULL);
  new_type(L, DEADLINE_MT, deadline_methods, deadline_close, NULL);
  luaL_newlib(L, core_funcs);
  lua_rawgeti(L, LUA_REGISTRYINDEX, tide__rt(L)->anchors);
  lua_rawgeti(L, LUA_REGISTRYINDEX, tide__rt(L)->task_mt_ref);
  lua_pushcclosure(L, core_spawn, 2);
  lua_setfield(L, -2, "spawn");
  tide__error_fields(L, -1);
  tide__pretty_fields(L, -1);
  return 1;
}
