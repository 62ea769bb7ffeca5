/*
** task.c: tasks and the suspend/resume protocol.  A task is a Task
** userdata holding the C record, with its coroutine in a uservalue; it is
** anchored in the runtime's anchor table from spawn until it finishes.  This
** file owns the task life cycle (spawn, resume, finish, cancel, interrupt),
** the one shared continuation every wait returns through, waiter lists,
** and the reporting of errors nobody retrieved.  Finished coroutines that
** returned normally go back to a pool and carry the next task.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../vm/compat.h"

#define POOL_MAX 256

/* ---- waiter lists ---------------------------------------------------- */

void tide_waitq_push(tide_waitq_t *q, tide_wait_t *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail) q->tail->next = w;
  else q->head = w;
  q->tail = w;
  w->in_queue = 1;
}

void tide_waitq_remove(tide_waitq_t *q, tide_wait_t *w) {
  if (!w->in_queue) return;
  if (w->prev) w->prev->next = w->next;
  else q->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else q->tail = w->prev;
  w->prev = w->next = NULL;
  w->in_queue = 0;
}

tide_wait_t *tide_waitq_pop(tide_waitq_t *q) {
  tide_wait_t *w = q->head;
  if (w) tide_waitq_remove(q, w);
  return w;
}

/* ---- the wait protocol ------------------------------------------------- */

void tide_wait_init(tide_wait_t *w, tide_cancel_fn cancel,
                    tide_resume_fn resume, void *data, unsigned flags) {
  w->task = NULL;
  w->cancel = cancel;
  w->resume = resume;
  w->data = data;
  w->prev = w->next = NULL;
  w->what = NULL;
  w->flags = flags;
  w->in_queue = 0;
}

tide_wait_t *tide_task_self_wait(tide_task_t *t) { return &t->self; }

tide_task_t *tide_task_current(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  return rt ? rt->current : NULL;
}

/* The first half of tide_async_check: raise unless L can suspend the
** running task, but deliver no pending cancel or expired deadline.  A wait
** that must complete before an interrupt is reported (re-acquiring the lock
** of a Condition after its wait was cancelled) starts with this. */
tide_task_t *tide__suspend_check(lua_State *L, const char *op) {
  tide_runtime_t *rt = tide__rt(L);
  tide_task_t *t = rt ? rt->current : NULL;
  tide_nest_t *n;
  if (tide_unlikely(!t))
    luaL_error(L, "%s: not inside a task (start one with tide.run or "
               "tide.spawn)", op);
  if (tide_unlikely(!lua_isyieldable(L))) goto noyield;
  for (n = rt->nest; n; n = n->up)
    if (!lua_isyieldable(n->from)) goto noyield;
  return t;
noyield:
  luaL_error(L, "%s: cannot suspend here (inside require, a __gc "
             "metamethod, or a C function that cannot yield)", op);
  return NULL;
}

tide_task_t *tide_async_check(lua_State *L, const char *op) {
  tide_task_t *t = tide__suspend_check(L, op);
  tide_deadline_t *d;
  if (tide_unlikely(t->cancel_pending)) {
    t->cancel_pending = 0;
    tide__error_cancelled(L, t);
    lua_error(L);
  }
  for (d = t->deadlines; d; d = d->up) {
    if (tide_unlikely(d->expired)) {
      tide_error_push(L, "ETIMEDOUT", op, NULL, "deadline expired");
      lua_error(L);
    }
  }
  return t;
}

/* The one continuation every wait returns through: the task was resumed
** by the scheduler; deliver the outcome on its own stack. */
static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  tide_task_t *t = (tide_task_t *)ctx;
  tide_wait_t *w = t->wait;
  (void)status;
  t->wait = NULL;
  switch (t->wake) {
    case TIDE_WAKE_OK:
      return (w && w->resume) ? w->resume(L, w) : 0;
    case TIDE_WAKE_CANCELLED:
      tide__error_cancelled(L, t);
      return lua_error(L);
    default:
      tide_error_push(L, "ETIMEDOUT", t->what, NULL,
                      "deadline expired");
      return lua_error(L);
  }
}

/* Mark the running task as suspended on w; the caller yields. */
static void suspend_on(tide_task_t *t, tide_wait_t *w, const char *what) {
  w->task = t;
  w->what = what;
  t->what = what;
  t->wait = w;
  t->wake = TIDE_WAKE_OK;
  t->status = TIDE_TASK_WAITING;
}

int tide_wait_yield(lua_State *L, tide_wait_t *w, const char *what) {
  tide_task_t *t = tide__rt(L)->current;
  suspend_on(t, w, what);
  return lua_yieldk(L, 0, (lua_KContext)t, wait_k);
}

/* Suspend and wake at once: the task goes to the back of the ready queue
** (sleep(0)). */
int tide__yield_ready(lua_State *L, tide_task_t *t) {
  suspend_on(t, &t->self, "sleep");
  t->self.cancel = NULL;
  t->self.resume = NULL;
  t->self.flags = TIDE_WAIT_DROPPABLE;
  t->status = TIDE_TASK_READY;
  tide__ready_push(t->rt, t);
  return lua_yieldk(L, 0, (lua_KContext)t, wait_k);
}

void tide_wait_wake(tide_wait_t *w) {
  tide_task_t *t = w->task;
  if (!t || t->wait != w || t->status != TIDE_TASK_WAITING) return;
  t->status = TIDE_TASK_READY;
  t->wake = TIDE_WAKE_OK;
  tide__ready_push(t->rt, t);
}

/* ---- spawning ---------------------------------------------------------- */

/* Anchor the Task userdata on top of L in the anchor table, so the GC
** keeps an unfinished task alive however the program drops it.  Slots are
** managed here rather than with luaL_ref: it is the spawn hot path. */
static void anchor(lua_State *L, tide_runtime_t *rt, tide_task_t *t,
                   int anchors) {
  int slot;
  if (rt->nanchor_free > 0) {
    slot = rt->anchor_free[--rt->nanchor_free];
  } else {
    slot = ++rt->anchor_top;
  }
  if (anchors) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, anchors, slot);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, slot);
    lua_pop(L, 1);
  }
  t->ref = slot;
}

static void unanchor(lua_State *L, tide_runtime_t *rt, tide_task_t *t) {
  if (rt->nanchor_free == rt->anchor_cap) {
    int cap = rt->anchor_cap ? rt->anchor_cap * 2 : 256;
    int *f = realloc(rt->anchor_free, (size_t)cap * sizeof *f);
    if (!f) abort();
    rt->anchor_free = f;
    rt->anchor_cap = cap;
  }
  if (L == rt->L && rt->stack_anchors) {
    lua_pushnil(L);
    lua_rawseti(L, rt->stack_anchors, t->ref);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
    lua_pushnil(L);
    lua_rawseti(L, -2, t->ref);
    lua_pop(L, 1);
  }
  rt->anchor_free[rt->nanchor_free++] = t->ref;
  t->ref = LUA_NOREF;
}

/* Take a coroutine from the pool or make one, on rt->L while draining.
** [-0, +1, m] */
static lua_State *get_thread(lua_State *L, tide_runtime_t *rt) {
  if (rt->npool > 0) {
    /* The slot keeps its reference until a finished coroutine overwrites
    ** it: clearing it would cost a table write per spawn, and the
    ** coroutine is in use (so alive) meanwhile. */
    lua_rawgeti(L, rt->stack_pool, rt->npool--);
    return lua_tothread(L, -1);
  }
  return lua_newthread(L);
}

tide_task_t *tide_task_spawn(lua_State *L, int nargs) {
  return tide__task_spawn(L, nargs, 0);
}

/* tide_task_spawn, or with from_spawn, tide.spawn's version: its upvalues
** 1 and 2 are the anchor table and the Task metatable, and the function
** and arguments stay below the new Task. */
tide_task_t *tide__task_spawn(lua_State *L, int nargs, int from_spawn) {
  int anchors = from_spawn ? lua_upvalueindex(1) : 0;
  tide_runtime_t *rt = tide__rt(L);
  tide_task_t *t;
  lua_Debug ar;
  int base = lua_gettop(L) - nargs; /* index of the function */
  /* tide.spawn is a C function, so it has LUA_MINSTACK free slots. */
  if (!anchors) luaL_checkstack(L, 4, NULL);
  t = (tide_task_t *)lua_newuserdatauv(L, sizeof *t, TASK_NUV);
  memset(t, 0, sizeof *t);
  t->rt = rt;
  t->cancel_msg = LUA_NOREF;
  t->sleep.index = -1;
  if (anchors) lua_pushvalue(L, lua_upvalueindex(2));
  else lua_rawgeti(L, LUA_REGISTRYINDEX, rt->task_mt_ref);
  lua_setmetatable(L, -2);
  /* The function and its arguments wait in the uservalues until the task
  ** first runs. */
  if (nargs == 1) {
    lua_pushvalue(L, base + 1);
    lua_setiuservalue(L, -2, TASK_UV_RESULT);
  } else if (nargs > 1) {
    int i;
    lua_createtable(L, nargs, 0);
    for (i = 1; i <= nargs; i++) {
      lua_pushvalue(L, base + i);
      lua_rawseti(L, -2, i);
    }
    lua_setiuservalue(L, -2, TASK_UV_RESULT);
  }
  /* Where it was spawned.  Finding the caller's current line costs about
  ** as much as the rest of a spawn, so, as asyncio does, only debug mode
  ** (TIDE_DEBUG=1) records it; otherwise the task's function stands for
  ** its origin (reports show where that function is defined). */
  if (rt->debug && lua_getstack(L, 1, &ar) && lua_getinfo(L, "lf", &ar)) {
    t->where_line = ar.currentline;
    lua_setiuservalue(L, -2, TASK_UV_SRC); /* the spawning function */
    lua_pushvalue(L, base);
    lua_setiuservalue(L, -2, TASK_UV_THREAD);
  } else {
    t->where_line = -1;
    lua_pushvalue(L, base);
    lua_setiuservalue(L, -2, TASK_UV_SRC); /* the task's function */
  }
  if (!anchors) {              /* tide.spawn just returns the top */
    lua_copy(L, -1, base);     /* [ud args... ud] */
    lua_settop(L, base);       /* [ud] */
  }
  t->narg = nargs;
  t->pinned = nargs > 0;
  anchor(L, rt, t, anchors);
  t->id = ++rt->next_id;
  t->status = TIDE_TASK_PENDING;
  t->next_live = rt->live;
  if (rt->live) rt->live->prev_live = t;
  rt->live = t;
  rt->nlive++;
  tide__ready_push(rt, t);
  return t;
}

/* Give a pending task its coroutine, with the function and arguments on
** it, just before its first resume; leaves the Task userdata on rt->L for
** finish(), as many tasks finish in their first run.  Runs on rt->L while
** draining, which reserved TIDE__DRAIN_SLOTS free slots: start() and
** finish() check the stack only beyond that, as they run once per task. */
static void start(tide_task_t *t) {
  tide_runtime_t *rt = t->rt;
  lua_State *L = rt->L;
  lua_State *co;
  int n = t->narg;
  if (n > TIDE__DRAIN_SLOTS - 4)
    luaL_checkstack(L, n + 4, "too many arguments");
  lua_rawgeti(L, rt->stack_anchors, t->ref);            /* ud */
  if (t->where_line >= 0) { /* debug mode: the function is in THREAD */
    lua_getiuservalue(L, -1, TASK_UV_THREAD);           /* ud fn */
    co = get_thread(L, rt);                             /* ud fn co */
    lua_setiuservalue(L, -3, TASK_UV_THREAD);           /* ud fn */
  } else {
    co = get_thread(L, rt);                             /* ud co */
    lua_setiuservalue(L, -2, TASK_UV_THREAD);           /* ud */
    lua_getiuservalue(L, -1, TASK_UV_SRC);              /* ud fn */
  }
  t->L = co;
  *(void **)lua_getextraspace(co) = t;
  if (n == 1) {
    lua_getiuservalue(L, -2, TASK_UV_RESULT);           /* ud fn arg */
  } else if (n > 1) {
    int i;
    lua_getiuservalue(L, -2, TASK_UV_RESULT);
    for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(n + 1));                            /* ud fn args */
  }
  /* A clean coroutine has LUA_MINSTACK free slots. */
  if (n >= LUA_MINSTACK) luaL_checkstack(co, n + 1, "too many arguments");
  lua_xmove(L, co, n + 1);                              /* ud */
}

void tide_task_push(lua_State *L, tide_task_t *t) {
  if (L == t->rt->L && t->rt->stack_anchors) {
    lua_rawgeti(L, t->rt->stack_anchors, t->ref);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->rt->anchors);
  lua_rawgeti(L, -1, t->ref);
  lua_remove(L, -2);
}

/* The task at idx, or NULL: one metatable pointer comparison, cheaper
** than luaL_testudata's registry lookup by name. */
tide_task_t *tide__task_test(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  if (p && lua_getmetatable(L, idx)) {
    const void *mt = lua_topointer(L, -1);
    tide_runtime_t *rt = tide__rt(L);
    lua_pop(L, 1);
    if (mt == rt->task_mt || mt == rt->failed_mt) return (tide_task_t *)p;
  }
  return NULL;
}

/* The task whose coroutine co is, or NULL for any other thread. */
tide_task_t *tide__task_of_thread(lua_State *co) {
  void *p = *(void **)lua_getextraspace(co);
  tide_runtime_t *rt = p ? *(tide_runtime_t **)p : NULL;
  return (rt && p != (void *)rt) ? (tide_task_t *)p : NULL;
}

tide_task_t *tide_task_check(lua_State *L, int idx) {
  tide_task_t *t = tide__task_test(L, idx);
  if (!t) luaL_typeerror(L, idx, TIDE_TASK_MT);
  return t;
}

tide_task_status tide_task_status_of(const tide_task_t *t) {
  return (tide_task_status)t->status;
}

/* ---- finishing ---------------------------------------------------------- */

static int is_finished(const tide_task_t *t) {
  return t->status >= TIDE_TASK_DONE;
}

void tide__watch_notify(tide_wait_t *w, tide_task_t *done);

/* Wake everyone awaiting t. */
static void wake_awaiters(tide_task_t *t) {
  tide_wait_t *w;
  while ((w = tide_waitq_pop(&t->awaiters)) != NULL) {
    if (w->flags & TIDE__WAIT_WATCH) tide__watch_notify(w, t);
    else tide_wait_wake(w);
  }
}

static void finish_common(tide_task_t *t);

/* Keep the clean coroutine of the finished task whose userdata is at ud
** for the next spawn, and drop the task's reference to it. */
static void pool_thread(tide_runtime_t *rt, lua_State *L, lua_State *co,
                        int ud) {
  *(void **)lua_getextraspace(co) = rt;
  if (rt->npool < POOL_MAX && !rt->closing) {
    lua_getiuservalue(L, ud, TASK_UV_THREAD);
    lua_rawseti(L, rt->stack_pool, ++rt->npool);
  }
  lua_pushnil(L);
  lua_setiuservalue(L, ud, TASK_UV_THREAD);
}

/* The task's function returned (st == LUA_OK, nres results on co) or
** raised (error value on top of co).  Store the outcome in the Task
** userdata, release the coroutine, unanchor, and wake the awaiters.  The
** userdata is on top of rt->L if have_ud (and popped), else looked up. */
static void finish(tide_task_t *t, int st, int nres, int have_ud) {
  tide_runtime_t *rt = t->rt;
  lua_State *L = rt->L;
  lua_State *co = t->L;
  if (nres > TIDE__DRAIN_SLOTS - 4)
    luaL_checkstack(L, nres + 4, "too many results");
  if (!have_ud) lua_rawgeti(L, rt->stack_anchors, t->ref); /* ud */
  if (st == LUA_OK) {
    t->nres = nres;
    if (nres == 1) {
      lua_xmove(co, L, 1);
      lua_setiuservalue(L, -2, TASK_UV_RESULT);
    } else if (nres > 1) {
      int i;
      lua_createtable(L, nres, 0);
      lua_xmove(co, L, nres);
      for (i = nres; i >= 1; i--) lua_rawseti(L, -(i + 1), i);
      lua_setiuservalue(L, -2, TASK_UV_RESULT);
    } else if (t->pinned) {
      lua_pushnil(L); /* release the arguments */
      lua_setiuservalue(L, -2, TASK_UV_RESULT);
    }
    t->status = TIDE_TASK_DONE;
    /* The coroutine is clean again: pool it for the next spawn. */
    lua_settop(co, 0);
    pool_thread(rt, L, co, lua_gettop(L));
  } else {
    int rst;
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);                          /* ud err */
    tide__error_add_traceback(L, -1, co);
    /* Keep the traceback of a plain error for reports. */
    if (!tide_error_is(L, -1, NULL)) luaL_traceback(L, co, NULL, 0);
    else lua_pushnil(L);                          /* ud err tb */
    /* Close the task's pending to-be-closed variables, as a return would
    ** have; an error in a __close replaces the task's error.  The
    ** coroutine stays referenced by the userdata meanwhile. */
    rst = tide_closethread(co, L);
    if (rst != LUA_OK && lua_gettop(co) > 0) {
      lua_xmove(co, L, 1);
      lua_replace(L, -3);
    }
    lua_settop(co, 0);
    pool_thread(rt, L, co, lua_gettop(L) - 2);
    lua_setiuservalue(L, -3, TASK_UV_THREAD);     /* ud err */
    t->status = tide_error_is(L, -1, "ECANCELED") ? TIDE_TASK_CANCELLED
                                                   : TIDE_TASK_FAILED;
    lua_setiuservalue(L, -2, TASK_UV_RESULT);     /* ud */
    if (t->status == TIDE_TASK_FAILED) {
      /* Only a failed task needs the finalizer that reports an error
      ** nobody retrieved.  Marking every Task for finalization would cost
      ** each spawn a trip through the GC's finalizer list and a cycle's
      ** delay before its memory is freed. */
      lua_rawgeti(L, LUA_REGISTRYINDEX, rt->failed_mt_ref);
      lua_setmetatable(L, -2);
    }
  }
  lua_pop(L, 1);
  t->L = NULL;
  finish_common(t);
}

/* What every finish does once the outcome is stored: unlink, wake the
** awaiters, unanchor. */
static void finish_common(tide_task_t *t) {
  tide_runtime_t *rt = t->rt;
  lua_State *L = rt->L;
  if (t->cancel_msg != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->cancel_msg);
    t->cancel_msg = LUA_NOREF;
  }
  /* unlink from the live list */
  if (t->prev_live) t->prev_live->next_live = t->next_live;
  else rt->live = t->next_live;
  if (t->next_live) t->next_live->prev_live = t->prev_live;
  t->prev_live = t->next_live = NULL;
  rt->nlive--;
  wake_awaiters(t);
  if (t == rt->run_target ||
      (t == rt->main && t->status != TIDE_TASK_DONE))
    uv_stop(rt->loop);
  /* Unanchor last: from here the GC may collect the userdata. */
  unanchor(L, rt, t);
}

/* Finish a task that never ran because it was cancelled first. */
static void finish_unstarted(tide_task_t *t) {
  lua_State *L = t->rt->L;
  tide_task_push(L, t);
  lua_pushnil(L);
  lua_setiuservalue(L, -2, TASK_UV_THREAD);
  tide__error_cancelled(L, t);
  lua_setiuservalue(L, -2, TASK_UV_RESULT);
  lua_pop(L, 1);
  t->status = TIDE_TASK_CANCELLED;
  finish_common(t);
}

void tide__task_resume(tide_task_t *t) {
  tide_runtime_t *rt = t->rt;
  int st, nres = 0, first;
  if (t->status == TIDE_TASK_PENDING && t->cancel_pending) {
    finish_unstarted(t);
    return;
  }
  if (t->status != TIDE_TASK_PENDING && t->status != TIDE_TASK_READY)
    return;
  first = t->status == TIDE_TASK_PENDING;
  if (first) start(t);
  t->status = TIDE_TASK_RUNNING;
  rt->current = t;
  st = lua_resume(t->L, rt->L, t->narg, &nres);
  rt->current = NULL;
  rt->nest = NULL;
  t->narg = 0;
  if (st == LUA_YIELD) {
    if (first) lua_pop(rt->L, 1); /* start's userdata */
    if (nres > 0) lua_pop(t->L, nres);
    if (t->status == TIDE_TASK_RUNNING) {
      /* A bare coroutine.yield() in the task body: treat it as sleep(0).
      ** The resume returns straight into the body, with no wait_k to
      ** deliver t->wake, so the wait is not droppable: a cancel arriving
      ** meanwhile stays pending for the next await point. */
      t->status = TIDE_TASK_READY;
      tide_wait_init(&t->self, NULL, NULL, NULL, 0);
      t->self.task = t;
      t->wait = &t->self;
      t->wake = TIDE_WAKE_OK;
      tide__ready_push(rt, t);
    }
    return;
  }
  finish(t, st, nres, first);
}

/* ---- cancellation -------------------------------------------------------- */

/* Interrupt t's current wait with ECANCELED or ETIMEDOUT.  Runs no Lua:
** callers include timer callbacks.  A running task, or a woken task whose
** result must not be dropped, gets the cancel at its next await point. */
void tide__task_interrupt(tide_task_t *t, int why) {
  tide_wait_t *w;
  switch (t->status) {
    case TIDE_TASK_PENDING:
      if (why == TIDE_WAKE_CANCELLED) t->cancel_pending = 1;
      return;
    case TIDE_TASK_RUNNING:
      if (why == TIDE_WAKE_CANCELLED) t->cancel_pending = 1;
      return;
    case TIDE_TASK_READY:
      w = t->wait;
      if (!w || (w->flags & TIDE_WAIT_DROPPABLE)) {
        t->wake = (uint8_t)why;
        t->wait = NULL;
        if (w) w->task = NULL;
      } else if (why == TIDE_WAKE_CANCELLED) {
        t->cancel_pending = 1;
      }
      return;
    case TIDE_TASK_WAITING:
      w = t->wait;
      t->wake = (uint8_t)why;
      t->status = TIDE_TASK_READY;
      t->wait = NULL;
      if (w) {
        /* Detach before the hook: a hook may free the request that
        ** embeds w (tide.h allows it), so w is not touched after. */
        w->task = NULL;
        if (w->cancel) w->cancel(w);
      }
      tide__ready_push(t->rt, t);
      return;
    default:
      return;
  }
}

void tide_task_cancel(tide_task_t *t, const char *msg) {
  lua_State *L = t->rt->L;
  if (is_finished(t)) return;
  if (msg && t->cancel_msg == LUA_NOREF && L) {
    lua_pushstring(L, msg);
    t->cancel_msg = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  tide__task_interrupt(t, TIDE_WAKE_CANCELLED);
}

void tide__cancel_all(tide_runtime_t *rt) {
  tide_task_t *t, *next;
  for (t = rt->live; t; t = next) {
    next = t->next_live;
    if (t != rt->current) tide__task_interrupt(t, TIDE_WAKE_CANCELLED);
  }
}

/* ---- outcomes and reports ------------------------------------------------ */

/* Push the outcome of the finished task whose userdata is at idx: results
** (returns their count) or the error (returns -1). [-0, +n, m] */
int tide__task_outcome_at(lua_State *L, int idx, tide_task_t *t) {
  if (idx < 0) idx = lua_absindex(L, idx);
  if (t->status == TIDE_TASK_DONE) {
    int i, n = t->nres;
    if (n == 0) return 0;
    lua_getiuservalue(L, idx, TASK_UV_RESULT);
    if (n == 1) return 1;
    luaL_checkstack(L, n, "too many results");
    for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(n + 1));
    return n;
  }
  t->retrieved = 1;
  lua_getiuservalue(L, idx, TASK_UV_RESULT);
  return -1;
}

const char *tide__status_name(int status) {
  switch (status) {
    case TIDE_TASK_PENDING: return "pending";
    case TIDE_TASK_RUNNING: return "running";
    case TIDE_TASK_READY:
    case TIDE_TASK_WAITING: return "waiting";
    case TIDE_TASK_DONE: return "done";
    case TIDE_TASK_FAILED: return "failed";
    default: return "cancelled";
  }
}

/* Push the name of the task at idx ("task-<id>" unless set).
** [-0, +1, m] */
int tide__task_push_name(lua_State *L, int idx, tide_task_t *t) {
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->rt->names);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TSTRING) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 2);
  lua_pushfstring(L, "task-%d", (int)t->id);
  return 1;
}

/* Push "source:line" of where the task at idx was spawned, or nil. */
static void push_where(lua_State *L, int idx, tide_task_t *t) {
  idx = lua_absindex(L, idx);
  if (lua_getiuservalue(L, idx, TASK_UV_SRC) == LUA_TFUNCTION) {
    lua_Debug ar;
    lua_getinfo(L, ">S", &ar);
    if (t->where_line >= 0)
      lua_pushfstring(L, "spawned at %s:%d", ar.short_src, t->where_line);
    else if (ar.linedefined > 0)
      lua_pushfstring(L, "function at %s:%d", ar.short_src, ar.linedefined);
    else
      lua_pushfstring(L, "function in %s", ar.short_src);
  } else {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* Print a failed task's error that nobody retrieved to stderr. */
static void report(lua_State *L, int idx, tide_task_t *t) {
  const char *msg, *tb = NULL;
  idx = lua_absindex(L, idx);
  if (t->reported || t->retrieved || t->status != TIDE_TASK_FAILED) return;
  t->reported = 1;
  t->rt->unretrieved++;
  lua_getiuservalue(L, idx, TASK_UV_RESULT);
  msg = luaL_tolstring(L, -1, NULL);
  if (tide_error_is(L, -2, NULL)) {
    lua_getfield(L, -2, "traceback");
    tb = lua_tostring(L, -1);
  } else {
    lua_getiuservalue(L, idx, TASK_UV_THREAD);
    tb = lua_tostring(L, -1);
  }
  tide__task_push_name(L, idx, t);
  push_where(L, idx, t);
  fprintf(stderr, "tide: error in %s (%s) was never retrieved:"
          "\n%s\n%s\n", lua_tostring(L, -2),
          lua_isnil(L, -1) ? "?" : lua_tostring(L, -1), msg,
          tb ? tb : "");
  fflush(stderr);
  lua_settop(L, idx);
}

/* ---- the Task type ------------------------------------------------------- */

static int task_await(lua_State *L);

static void await_cancel(tide_wait_t *w) {
  tide_task_t *target = (tide_task_t *)w->data;
  tide_waitq_remove(&target->awaiters, w);
  /* asyncio's rule: cancelling the awaiter cancels what it awaits, unless
  ** the await is shielded. */
  if (!(w->flags & TIDE__WAIT_SHIELD))
    tide__task_interrupt(target, TIDE_WAKE_CANCELLED);
}

static int await_resume(lua_State *L, tide_wait_t *w) {
  tide_task_t *target = (tide_task_t *)w->data;
  int n = tide__task_outcome_at(L, 1, target);
  if (n < 0) return lua_error(L);
  return n;
}

/* Await the task t at index 1 (shielded or not). */
int tide__task_await(lua_State *L, tide_task_t *t, int shield) {
  tide_task_t *me;
  tide_wait_t *w;
  if (lua_gettop(L) != 1) lua_settop(L, 1);
  if (is_finished(t)) {
    int n = tide__task_outcome_at(L, 1, t);
    if (n < 0) return lua_error(L);
    return n;
  }
  me = tide_async_check(L, "tide.await");
  if (me == t) return luaL_error(L, "a task cannot await itself");
  w = &me->self;
  tide_wait_init(w, await_cancel, await_resume, t,
                 TIDE_WAIT_DROPPABLE | (shield ? TIDE__WAIT_SHIELD : 0));
  tide_waitq_push(&t->awaiters, w);
  return tide_wait_yield(L, w, "await");
}

static int task_await(lua_State *L) {
  return tide__task_await(L, tide_task_check(L, 1), 0);
}

int tide_task_outcome(lua_State *L, int idx) {
  tide_task_t *t = tide_task_check(L, idx);
  if (!is_finished(t)) return -2;
  return tide__task_outcome_at(L, idx, t);
}

static int task_cancel(lua_State *L) {
  tide_task_t *t = tide_task_check(L, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  int was = !is_finished(t);
  tide_task_cancel(t, msg);
  lua_pushboolean(L, was);
  return 1;
}

static int task_done(lua_State *L) {
  lua_pushboolean(L, is_finished(tide_task_check(L, 1)));
  return 1;
}

static int task_cancelled(lua_State *L) {
  lua_pushboolean(L, tide_task_check(L, 1)->status == TIDE_TASK_CANCELLED);
  return 1;
}

static int task_result(lua_State *L) {
  tide_task_t *t = tide_task_check(L, 1);
  int n;
  if (!is_finished(t))
    return tide_error_raisef(L, "EAGAIN", "task:result", "task %s is %s",
                             lua_tostring(L,
                                          (tide__task_push_name(L, 1, t), -1)),
                             tide__status_name(t->status));
  n = tide__task_outcome_at(L, 1, t);
  if (n < 0) return lua_error(L);
  return n;
}

static int task__index(lua_State *L) {
  tide_task_t *t = tide_task_check(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k) {
    if (strcmp(k, "status") == 0) {
      lua_pushstring(L, tide__status_name(t->status));
      return 1;
    }
    if (strcmp(k, "name") == 0) return tide__task_push_name(L, 1, t);
    if (strcmp(k, "id") == 0) {
      lua_pushinteger(L, (lua_Integer)t->id);
      return 1;
    }
    if (strcmp(k, "where") == 0) {
      push_where(L, 1, t);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int task__newindex(lua_State *L) {
  tide_task_check(L, 1);
  if (strcmp(luaL_checkstring(L, 2), "name") != 0)
    return luaL_error(L, "Task field '%s' is read-only", lua_tostring(L, 2));
  luaL_checkstring(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, tide_task_check(L, 1)->rt->names);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int task__tostring(lua_State *L) {
  tide_task_t *t = tide_task_check(L, 1);
  lua_getfield(L, 1, "name");
  lua_pushfstring(L, "Task %d (%s) %s", (int)t->id, lua_tostring(L, -1),
                  tide__status_name(t->status));
  return 1;
}

static int task__gc(lua_State *L) {
  tide_task_t *t = (tide_task_t *)lua_touserdata(L, 1);
  if (t->status == TIDE_TASK_FAILED && !t->retrieved) report(L, 1, t);
  return 0;
}

static const luaL_Reg task_methods[] = {
  {"await", task_await},
  {"cancel", task_cancel},
  {"done", task_done},
  {"cancelled", task_cancelled},
  {"result", task_result},
  {NULL, NULL}
};

/* Two metatables: "tide.Task" for every task, and a twin with a __gc
** that finish() gives a task when it fails (see there). */
void tide__task_open(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  if (luaL_newmetatable(L, TIDE_TASK_MT)) {
    luaL_newlib(L, task_methods);
    lua_pushcclosure(L, task__index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, task__newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, task__tostring);
    lua_setfield(L, -2, "__tostring");
  }
  if (luaL_getmetatable(L, TIDE_FAILED_TASK_MT) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
    lua_pushcfunction(L, task__gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, TIDE_FAILED_TASK_MT);
  }
  rt->failed_mt = lua_topointer(L, -1);
  rt->failed_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rt->task_mt = lua_topointer(L, -1);
  rt->task_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}
