/*
** hostfns.h: async C functions the embedding tests expose to Lua, written
** the way a host writes them with the suspend/resume protocol of tide.h.
** `after(ms [, value])` completes after a libuv timer with `value`;
** `fail_after(ms, code)` raises a tide.Error with that code after a timer;
** `work(n)` sums 1..n in libuv's thread pool; `in_thread(ms)` waits for a
** thread of the host's own that reports through a uv_async_t.  Counters let the
** tests check that cancel hooks run exactly once, that a cancelled wait is
** never resumed and that every request is freed.
*/
#ifndef TIDE_TEST_HOSTFNS_H
#define TIDE_TEST_HOSTFNS_H

#include <stdlib.h>
#include <tide.h>

typedef struct timer_req timer_req_t;

static struct {
  int started; /* requests allocated */
  int freed;   /* requests freed */
  int hooks;   /* cancel hooks run */
  int resumes; /* resume functions run */
  int late;    /* callbacks that found their wait detached */
  /* Called by the timer callback right after it woke the task, so a test
  ** can act between the wake and the resume. */
  void (*on_wake)(timer_req_t *r);
  /* When gated, pool jobs block until the test posts the semaphore, so a
  ** test can cancel a job that is certainly still in flight. */
  int gated;
  uv_sem_t gate;
} hf;

/* ---- timer-based ---------------------------------------------------- */

struct timer_req {
  tide_wait_t wait;  /* first: the wait protocol's record */
  uv_timer_t *timer; /* malloced; freed in its close callback */
  const char *code;  /* error code to raise, or NULL for success */
};

static void hf_free_handle(uv_handle_t *h) {
  /* owns h: malloced by start_timer */
  free(h);
}

static void hf_free_timer_req(timer_req_t *r) {
  uv_close((uv_handle_t *)r->timer, hf_free_handle);
  free(r);
  hf.freed++;
}

static void hf_on_timer(uv_timer_t *h) {
  /* the request stays owned by the wait: the resume function frees it */
  timer_req_t *r = (timer_req_t *)h->data;
  tide_wait_wake(&r->wait);
  if (hf.on_wake) hf.on_wake(r);
}

/* Cancel hook: the timer stops synchronously, so free everything now. */
static void hf_timer_cancel(tide_wait_t *w) {
  timer_req_t *r = (timer_req_t *)w->data;
  hf.hooks++;
  uv_timer_stop(r->timer);
  hf_free_timer_req(r);
}

/* Runs on the task's stack; the arguments of after() are still there. */
static int hf_timer_resume(lua_State *L, tide_wait_t *w) {
  timer_req_t *r = (timer_req_t *)w->data;
  const char *code = r->code;
  hf.resumes++;
  hf_free_timer_req(r);
  if (code)
    return tide_error_raisef(L, code, "host.fail_after", "failed on purpose");
  if (lua_gettop(L) >= 2)
    lua_pushvalue(L, 2);
  else
    lua_pushliteral(L, "ok");
  return 1;
}

static int hf_start_timer(lua_State *L, const char *code, const char *op) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  tide_runtime_t *rt = tide_runtime_from(L);
  timer_req_t *r;
  tide_async_check(L, op);
  r = (timer_req_t *)malloc(sizeof *r);
  if (r) r->timer = (uv_timer_t *)malloc(sizeof *r->timer);
  if (!r || !r->timer) {
    free(r);
    return luaL_error(L, "out of memory");
  }
  hf.started++;
  r->code = code;
  tide_wait_init(&r->wait, hf_timer_cancel, hf_timer_resume, r, 0);
  uv_timer_init(tide_runtime_loop(rt), r->timer);
  r->timer->data = r;
  uv_timer_start(r->timer, hf_on_timer, (uint64_t)(ms < 0 ? 0 : ms), 0);
  return tide_wait_yield(L, &r->wait, op);
}

static int hf_after(lua_State *L) {
  return hf_start_timer(L, NULL, "host.after");
}

static int hf_fail_after(lua_State *L) {
  /* The code string is pinned by the stack slot of argument 2 for as long
  ** as the task waits: the C function's frame stays on the task's stack. */
  const char *code = luaL_checkstring(L, 2);
  return hf_start_timer(L, code, "host.fail_after");
}

/* ---- thread pool ---------------------------------------------------- */

typedef struct {
  tide_wait_t wait;
  uv_work_t work; /* the request is inside the malloced block */
  long long n, sum;
  int status; /* of the after-work callback */
} work_req_t;

static void hf_work(uv_work_t *w) {
  /* runs in a pool thread: touches only its own request */
  work_req_t *r = (work_req_t *)w->data;
  long long i, s = 0;
  if (hf.gated) uv_sem_wait(&hf.gate);
  for (i = 1; i <= r->n; i++) s += i;
  r->sum = s;
}

static void hf_after_work(uv_work_t *w, int status) {
  /* owns the request if its task was cancelled (wait detached) */
  work_req_t *r = (work_req_t *)w->data;
  if (r->wait.task == NULL) {
    hf.late++;
    hf.freed++;
    free(r);
    return;
  }
  r->status = status;
  tide_wait_wake(&r->wait);
}

/* Cancel hook: uv_cancel may fail if the job already runs; either way the
** after-work callback still comes and frees the request. */
static void hf_work_cancel(tide_wait_t *w) {
  work_req_t *r = (work_req_t *)w->data;
  hf.hooks++;
  uv_cancel((uv_req_t *)&r->work);
}

static int hf_work_resume(lua_State *L, tide_wait_t *w) {
  work_req_t *r = (work_req_t *)w->data;
  long long sum = r->sum;
  int status = r->status;
  hf.resumes++;
  hf.freed++;
  free(r);
  if (status < 0) return tide_error_raise(L, status, "host.work", NULL);
  lua_pushinteger(L, (lua_Integer)sum);
  return 1;
}

static int hf_work_fn(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  tide_runtime_t *rt = tide_runtime_from(L);
  work_req_t *r;
  int e;
  tide_async_check(L, "host.work");
  r = (work_req_t *)malloc(sizeof *r);
  if (!r) return luaL_error(L, "out of memory");
  r->n = n;
  r->sum = 0;
  r->status = 0;
  r->work.data = r;
  tide_wait_init(&r->wait, hf_work_cancel, hf_work_resume, r, 0);
  e = uv_queue_work(tide_runtime_loop(rt), &r->work, hf_work, hf_after_work);
  if (e < 0) {
    free(r);
    return tide_error_raise(L, e, "host.work", NULL);
  }
  hf.started++;
  return tide_wait_yield(L, &r->wait, "host.work");
}

/* ---- a host thread ---------------------------------------------------- */

/* The host's own thread does the work and reports through a uv_async_t,
** the one libuv handle another thread may signal; the async callback, on
** the loop thread, wakes the task. */
typedef struct {
  tide_wait_t wait;
  uv_async_t *async; /* malloced; freed in its close callback */
  uv_thread_t thread;
  unsigned ms;
  int result;
  int stop;        /* set by the cancel hook; read by the thread */
  uv_mutex_t lock; /* guards result and stop */
} thread_req_t;

static void hf_thread_main(void *arg) {
  /* runs in the host thread: touches only its request, under its lock */
  thread_req_t *r = (thread_req_t *)arg;
  unsigned slept = 0;
  int stop = 0;
  while (slept < r->ms && !stop) {
    uv_sleep(1);
    slept++;
    uv_mutex_lock(&r->lock);
    stop = r->stop;
    uv_mutex_unlock(&r->lock);
  }
  uv_mutex_lock(&r->lock);
  r->result = (int)slept;
  uv_mutex_unlock(&r->lock);
  if (!stop) uv_async_send(r->async);
}

static void hf_thread_free(thread_req_t *r) {
  uv_thread_join(&r->thread);
  uv_close((uv_handle_t *)r->async, hf_free_handle);
  uv_mutex_destroy(&r->lock);
  free(r);
  hf.freed++;
}

static void hf_on_async(uv_async_t *h) {
  /* the request stays owned by the wait; the resume function frees it */
  thread_req_t *r = (thread_req_t *)h->data;
  tide_wait_wake(&r->wait);
}

/* Cancel hook: tell the thread to stop and wait for it (it checks every
** millisecond); after that nothing can call back, so free now.  Closing
** the async handle drops a signal the thread may already have sent. */
static void hf_thread_cancel(tide_wait_t *w) {
  thread_req_t *r = (thread_req_t *)w->data;
  hf.hooks++;
  uv_mutex_lock(&r->lock);
  r->stop = 1;
  uv_mutex_unlock(&r->lock);
  hf_thread_free(r);
}

static int hf_thread_resume(lua_State *L, tide_wait_t *w) {
  thread_req_t *r = (thread_req_t *)w->data;
  int result;
  hf.resumes++;
  uv_mutex_lock(&r->lock);
  result = r->result;
  uv_mutex_unlock(&r->lock);
  hf_thread_free(r);
  lua_pushinteger(L, result);
  return 1;
}

/* in_thread(ms) -> ms: a host thread sleeps ms milliseconds. */
static int hf_in_thread(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  thread_req_t *r;
  luaL_argcheck(L, ms >= 0, 1, "negative time");
  tide_async_check(L, "host.in_thread");
  r = (thread_req_t *)calloc(1, sizeof *r);
  if (r) r->async = (uv_async_t *)malloc(sizeof *r->async);
  if (!r || !r->async) {
    free(r);
    return luaL_error(L, "out of memory");
  }
  r->ms = (unsigned)ms;
  uv_mutex_init(&r->lock);
  uv_async_init(tide_runtime_loop(tide_runtime_from(L)), r->async, hf_on_async);
  r->async->data = r;
  tide_wait_init(&r->wait, hf_thread_cancel, hf_thread_resume, r, 0);
  if (uv_thread_create(&r->thread, hf_thread_main, r) != 0) {
    uv_close((uv_handle_t *)r->async, hf_free_handle);
    uv_mutex_destroy(&r->lock);
    free(r);
    return luaL_error(L, "cannot start a thread");
  }
  hf.started++;
  return tide_wait_yield(L, &r->wait, "host.in_thread");
}

static const luaL_Reg hf_funcs[] = {{"after", hf_after},
                                    {"fail_after", hf_fail_after},
                                    {"work", hf_work_fn},
                                    {"in_thread", hf_in_thread},
                                    {NULL, NULL}};

/* Make `require "host"` give the functions above. */
static inline void hf_register(tide_runtime_t *rt) {
  tide_module_register_lib(rt, "host", hf_funcs);
}

#endif
