/*
** loop.c: the runtime record and the scheduler.  A runtime owns (or
** borrows) a libuv loop and owns the ready queue: tasks woken by callbacks
** are queued here and resumed from the prepare and check handles, at the top
** of a loop iteration, never from inside another task's stack.  An idle
** handle is active exactly while tasks are ready, so libuv neither blocks
** in poll nor lets the loop end while work is queued.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../vm/compat.h"

/* How many resumes one drain may do beyond the tasks that were ready when
** it started.  Draining in batches keeps a sleep(0) ping-pong from paying a
** poll syscall per switch, while I/O still gets its turn often. */
#define DRAIN_BUDGET 4096

tide_runtime_t *tide__rt(lua_State *L) {
  tide_runtime_t **p = *(tide_runtime_t ***)lua_getextraspace(L);
  return p ? *p : NULL;
}

tide_runtime_t *tide_runtime_from(lua_State *L) {
  return L ? tide__rt(L) : NULL;
}

lua_State *tide_runtime_lua(tide_runtime_t *rt) { return rt->L; }
uv_loop_t *tide_runtime_loop(tide_runtime_t *rt) { return rt->loop; }

uint64_t tide__loop_now(tide_runtime_t *rt) {
  uv_update_time(rt->loop);
  return uv_now(rt->loop);
}

/* The idle handle never runs a callback of consequence: being active is
** its job.  libuv requires a callback, so give it one that does nothing. */
static void on_idle(uv_idle_t *h) { (void)h; }

void tide__keepalive_update(tide_runtime_t *rt) {
  if (rt->ready_head) {
    if (!uv_is_active((uv_handle_t *)rt->idle))
      uv_idle_start(rt->idle, on_idle);
  } else if (uv_is_active((uv_handle_t *)rt->idle)) {
    uv_idle_stop(rt->idle);
  }
}

void tide__ready_push(tide_runtime_t *rt, tide_task_t *t) {
  t->next_ready = NULL;
  if (rt->ready_tail) rt->ready_tail->next_ready = t;
  else rt->ready_head = t;
  rt->ready_tail = t;
  rt->nready++;
  if (rt->nready == 1 && !rt->draining && rt->idle &&
      !uv_is_active((uv_handle_t *)rt->idle))
    uv_idle_start(rt->idle, on_idle);
}

/* Resume ready tasks, in FIFO order, until the queue is empty or the
** budget is spent. */
void tide__drain(tide_runtime_t *rt) {
  size_t budget;
  if (rt->draining || rt->current) return;
  rt->draining = 1;
  budget = rt->nready + DRAIN_BUDGET;
  /* Keep the anchor and pool tables on the main thread's stack for the
  ** whole drain: starting and finishing tasks index them constantly. */
  lua_checkstack(rt->L, TIDE__DRAIN_SLOTS + 2);
  lua_rawgeti(rt->L, LUA_REGISTRYINDEX, rt->anchors);
  rt->stack_anchors = lua_gettop(rt->L);
  lua_rawgeti(rt->L, LUA_REGISTRYINDEX, rt->pool);
  rt->stack_pool = lua_gettop(rt->L);
  while (rt->ready_head && budget-- > 0) {
    tide_task_t *t = rt->ready_head;
    rt->ready_head = t->next_ready;
    if (!rt->ready_head) rt->ready_tail = NULL;
    rt->nready--;
    t->next_ready = NULL;
    tide__task_resume(t);
  }
  lua_settop(rt->L, rt->stack_anchors - 1);
  rt->stack_anchors = rt->stack_pool = 0;
  rt->draining = 0;
  tide__keepalive_update(rt);
}

static void on_prepare(uv_prepare_t *h) {
  /* owns nothing; the runtime is in h->data */
  tide__drain((tide_runtime_t *)h->data);
}

static void on_check(uv_check_t *h) {
  /* owns nothing; the runtime is in h->data */
  tide__drain((tide_runtime_t *)h->data);
}

static void free_handle(uv_handle_t *h) {
  /* owns h: it was malloced by tide_runtime_new */
  free(h);
}

tide_runtime_t *tide__runtime_create(lua_State *L, uv_loop_t *loop) {
  tide_runtime_t *rt = calloc(1, sizeof *rt);
  if (!rt) return NULL;
  rt->L = L;
  if (loop) {
    rt->loop = loop;
  } else {
    if (uv_loop_init(&rt->own_loop_storage) != 0) {
      free(rt);
      return NULL;
    }
    rt->loop = &rt->own_loop_storage;
    rt->own_loop = 1;
  }
  rt->prepare = malloc(sizeof *rt->prepare);
  rt->check = malloc(sizeof *rt->check);
  rt->idle = malloc(sizeof *rt->idle);
  rt->timer = malloc(sizeof *rt->timer);
  if (!rt->prepare || !rt->check || !rt->idle || !rt->timer) abort();
  uv_prepare_init(rt->loop, rt->prepare);
  uv_check_init(rt->loop, rt->check);
  uv_idle_init(rt->loop, rt->idle);
  uv_timer_init(rt->loop, rt->timer);
  rt->prepare->data = rt->check->data = rt->idle->data = rt;
  rt->timer->data = rt;
  uv_prepare_start(rt->prepare, on_prepare);
  uv_check_start(rt->check, on_check);
  /* The scheduler's own handles must not keep the loop alive: only ready
  ** tasks (the idle handle), timers and I/O do. */
  uv_unref((uv_handle_t *)rt->prepare);
  uv_unref((uv_handle_t *)rt->check);
  rt->self = rt;
  /* New threads copy the main thread's extra space, so the main thread
  ** must carry the pointer even when L is a coroutine (require "tide"
  ** called from one in a stock Lua host). */
  *(void **)lua_getextraspace(L) = rt;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  *(void **)lua_getextraspace(lua_tothread(L, -1)) = rt;
  lua_pop(L, 1);
  return rt;
}

int tide_runtime_run(tide_runtime_t *rt, tide_run_mode mode) {
  int r;
  uv_run_mode m = mode == TIDE_RUN_ONCE ? UV_RUN_ONCE
                : mode == TIDE_RUN_NOWAIT ? UV_RUN_NOWAIT : UV_RUN_DEFAULT;
  tide__drain(rt);
  r = uv_run(rt->loop, m);
  return r || rt->ready_head != NULL;
}

/* Close callback for the teardown walk. */
static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Shutdown in the order the style guide gives: cancel tasks and let them
** finish, close tide's handles, run the loop until it can be closed, then
** close Lua (whose finalizers may still report unretrieved errors). */
int tide__runtime_destroy(tide_runtime_t *rt, int close_lua) {
  int rounds, unretrieved;
  rt->closing = 1;
  for (rounds = 0; rounds < 8 && (rt->live || rt->ready_head); rounds++) {
    tide__cancel_all(rt);
    tide__drain(rt);
    uv_run(rt->loop, UV_RUN_NOWAIT);
  }
  /* Tasks that waited again after every cancel are not resumed any more,
  ** but their waits' cancel hooks still run, so the operations they
  ** started are stopped and freed before Lua and the loop go away. */
  tide__cancel_all(rt);
  tide__timers_close(rt);
  tide__sigint_close(rt);
  if (close_lua) {
    lua_close(rt->L);
    rt->L = NULL;
    tide__alloc_free(rt->alloc);
    rt->alloc = NULL;
  }
  uv_close((uv_handle_t *)rt->prepare, free_handle);
  uv_close((uv_handle_t *)rt->check, free_handle);
  uv_close((uv_handle_t *)rt->idle, free_handle);
  uv_close((uv_handle_t *)rt->timer, free_handle);
  if (rt->own_loop) {
    /* Close what modules left open (their close callbacks free them). */
    uv_run(rt->loop, UV_RUN_NOWAIT);
    uv_walk(rt->loop, walk_close, NULL);
    /* Block (rather than spin) until thread-pool jobs that could not be
    ** cancelled come back and the closing handles are done. */
    while (uv_loop_close(rt->loop) == UV_EBUSY)
      uv_run(rt->loop, UV_RUN_ONCE);
  } else {
    uv_run(rt->loop, UV_RUN_NOWAIT);
  }
  unretrieved = rt->unretrieved;
  free(rt->heap);
  free(rt->anchor_free);
  free(rt);
  return unretrieved;
}
