/*
** host.c: a small C program that embeds tide.  It owns a libuv loop, makes
** a tide runtime on it, and gives Lua a `host` module with two async C
** functions written with tide's suspend/resume protocol:
**
**   host.delay(ms, value) -> value     completes after a libuv timer
**   host.checksum(data)   -> integer   FNV-1a of data, in the thread pool
**
** Then it runs a script as a task to completion, prints its results or its
** error with a traceback, lets background tasks finish, and closes
** everything.  Usage: embed-host script.lua [args...]
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tide.h>

/* ---- host.delay: a libuv timer ----------------------------------------- */

typedef struct {
  tide_wait_t wait;  /* the task's wait; detached (task == NULL) on cancel */
  uv_timer_t *timer; /* malloced apart: freed only in its close callback */
} delay_req_t;

static void free_handle(uv_handle_t *h) {
  /* owns h */
  free(h);
}

static void delay_free(delay_req_t *r) {
  uv_close((uv_handle_t *)r->timer, free_handle);
  free(r);
}

static void on_delay(uv_timer_t *h) {
  /* the request stays owned by the wait; the resume function frees it */
  delay_req_t *r = (delay_req_t *)h->data;
  tide_wait_wake(&r->wait);
}

/* Cancel hook (task cancelled or its tide.timeout expired): a timer stops
** synchronously, so nothing will call back and the request goes now. */
static void delay_cancel(tide_wait_t *w) {
  delay_req_t *r = (delay_req_t *)w->data;
  uv_timer_stop(r->timer);
  delay_free(r);
}

/* Runs on the task's stack, inside host.delay: its arguments are still
** there, so the value to return is argument 2. */
static int delay_resume(lua_State *L, tide_wait_t *w) {
  delay_free((delay_req_t *)w->data);
  lua_settop(L, 2);
  return 1;
}

static int host_delay(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  delay_req_t *r;
  if (ms < 0)
    return tide_error_raisef(L, "EINVAL", "host.delay", "negative delay %d",
                             (int)ms);
  tide_async_check(L, "host.delay"); /* raises before anything starts */
  r = malloc(sizeof *r);
  if (r) r->timer = malloc(sizeof *r->timer);
  if (!r || !r->timer) {
    free(r);
    return luaL_error(L, "out of memory");
  }
  tide_wait_init(&r->wait, delay_cancel, delay_resume, r, 0);
  uv_timer_init(tide_runtime_loop(tide_runtime_from(L)), r->timer);
  r->timer->data = r;
  uv_timer_start(r->timer, on_delay, (uint64_t)ms, 0);
  return tide_wait_yield(L, &r->wait, "host.delay");
}

/* ---- host.checksum: a thread-pool job ----------------------------------- */

typedef struct {
  tide_wait_t wait;
  uv_work_t work; /* inside the malloced request, never in a userdata */
  int status;     /* of the after-work callback */
  uint64_t hash;
  size_t len;
  char data[]; /* a copy: the Lua string may be collected if the task
                  is cancelled while the pool thread still reads */
} sum_req_t;

static void sum_work(uv_work_t *w) {
  /* runs in a pool thread: touches only its own request, never Lua */
  sum_req_t *r = (sum_req_t *)w->data;
  uint64_t h = 1469598103934665603ull;
  size_t i;
  for (i = 0; i < r->len; i++) {
    h ^= (unsigned char)r->data[i];
    h *= 1099511628211ull;
  }
  r->hash = h;
}

static void sum_done(uv_work_t *w, int status) {
  /* owns the request if its task was cancelled (wait detached) */
  sum_req_t *r = (sum_req_t *)w->data;
  if (r->wait.task == NULL) {
    free(r);
    return;
  }
  r->status = status;
  tide_wait_wake(&r->wait);
}

/* Cancel hook: uv_cancel succeeds only if the job has not started; either
** way sum_done still runs, sees the detached wait and frees. */
static void sum_cancel(tide_wait_t *w) {
  uv_cancel((uv_req_t *)&((sum_req_t *)w->data)->work);
}

static int sum_resume(lua_State *L, tide_wait_t *w) {
  sum_req_t *r = (sum_req_t *)w->data;
  int status = r->status;
  uint64_t hash = r->hash;
  free(r);
  if (status < 0) return tide_error_raise(L, status, "host.checksum", NULL);
  lua_pushinteger(L, (lua_Integer)hash);
  return 1;
}

static int host_checksum(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  sum_req_t *r;
  int e;
  tide_async_check(L, "host.checksum");
  r = malloc(sizeof *r + len);
  if (!r) return luaL_error(L, "out of memory");
  memcpy(r->data, s, len);
  r->len = len;
  r->status = 0;
  r->work.data = r;
  tide_wait_init(&r->wait, sum_cancel, sum_resume, r, 0);
  e = uv_queue_work(tide_runtime_loop(tide_runtime_from(L)), &r->work, sum_work,
                    sum_done);
  if (e < 0) {
    free(r);
    return tide_error_raise(L, e, "host.checksum", NULL);
  }
  return tide_wait_yield(L, &r->wait, "host.checksum");
}

static const luaL_Reg host_funcs[] = {
    {"delay", host_delay}, {"checksum", host_checksum}, {NULL, NULL}};

/* ---- main -----------------------------------------------------------------
 */

int main(int argc, char **argv) {
  uv_loop_t loop;
  tide_runtime_t *rt;
  lua_State *L;
  int i, n, st, status = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua [args...]\n", argv[0]);
    return 2;
  }
  /* The host owns the loop; tide only adds its handles to it. */
  if (uv_loop_init(&loop) != 0) return 1;
  rt = tide_runtime_new(&loop);
  if (!rt) {
    fprintf(stderr, "embed-host: cannot create the runtime\n");
    return 1;
  }
  L = tide_runtime_lua(rt);
  tide_module_register_lib(rt, "host", host_funcs);
  /* The script gets the remaining arguments as `...`. */
  for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
  st = tide_run_file(rt, argv[1], argc - 2, LUA_MULTRET);
  if (st == LUA_OK) {
    n = lua_gettop(L);
    printf("script returned %d value(s):", n);
    for (i = 1; i <= n; i++) printf(" %s", luaL_tolstring(L, i, NULL));
    printf("\n");
  } else {
    fprintf(stderr, "embed-host: %s\n", tide_error_text(L, -1));
    status = 1;
  }
  lua_settop(L, 0);
  /* Tasks the script left running finish on the host's own loop. */
  printf("background tasks: %zu\n", tide_runtime_ntasks(rt));
  fflush(stdout);
  uv_run(&loop, UV_RUN_DEFAULT);
  tide_runtime_close(rt);
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "embed-host: handles left on the loop\n");
    status = 1;
  }
  return status;
}
