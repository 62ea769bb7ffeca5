/*
** test_close.c: closing a runtime with tasks still running.  Every kind of
** wait must be cancelled with its cleanup run (pcall handlers and `<close>`
** variables see ECANCELED), the cancel hooks of host waits must run once,
** every request must be freed, and with a host loop the loop must be left
** with no handle of tide's so the host can close it.
*/
#include "check.h"
#include "hostfns.h"

static int cleanups;

/* cleaned(): called by the scripts' cleanup code. */
static int cleaned(lua_State *L) {
  (void)L;
  cleanups++;
  return 0;
}

/* Tasks in every kind of wait, plus one never started and one ready. */
static const char *busy_script =
    "local host = require 'host'\n"
    "local function guarded(fn, ...)\n"
    "  local guard <close> = setmetatable({}, {__close = function(_, e)\n"
    "    if tide.is_error(e, 'ECANCELED') then cleaned() end end})\n"
    "  return fn(...)\n"
    "end\n"
    "tide.spawn(guarded, tide.sleep, 60)\n"
    "tide.spawn(guarded, host.after, 60000)\n"
    "tide.spawn(guarded, host.work, 1000)\n"
    "tide.spawn(guarded, tide.future().await, tide.future())\n"
    "tide.spawn(guarded, tide.timeout, 60, host.after, 60000)\n"
    "tide.spawn(guarded, coroutine.wrap(function() host.after(60000) end))\n"
    "tide.spawn(guarded, host.in_thread, 60000)\n"
    "tide.spawn(function()\n"
    "  local ok, e = pcall(host.after, 60000)\n"
    "  if tide.is_error(e, 'ECANCELED') then cleaned() end\n"
    "end)\n"
    "local t = tide.spawn(guarded, tide.sleep, 60)\n"
    "tide.spawn(function() t:await() end)\n"
    /* a task that refuses to stop: it waits again after each cancel */
    "tide.spawn(function() while true do pcall(host.after, 60000) end end)\n";

/* The C waits in busy_script: after, work, timeout+after, wrap+after,
** in_thread, pcall+after, and the stubborn one. */
static void start_busy(tide_runtime_t *rt) {
  tide_function_register(rt, "cleaned", cleaned);
  hf_register(rt);
  /* hold the pool job until the close starts */
  ASSERT_EQ(uv_sem_init(&hf.gate, 0), 0);
  hf.gated = 1;
  lua_ok(rt, busy_script);
  /* let them all reach their waits */
  tide_runtime_run(rt, TIDE_RUN_NOWAIT);
  /* spawned, never run */
  lua_ok(rt, "tide.spawn(function() never_ran = false end)");
  ASSERT_EQ(tide_runtime_ntasks(rt), 12);
  uv_sem_post(&hf.gate);
}

static void end_busy(void) {
  hf.gated = 0;
  uv_sem_destroy(&hf.gate);
}

static void test_owned_loop(void) {
  tide_runtime_t *rt = tide_runtime_new(NULL);
  int hooks = hf.hooks;
  cleanups = 0;
  start_busy(rt);
  tide_runtime_close(rt);
  /* all eight guarded tasks and the pcall one cleaned up; the awaiter of
  ** `t` was cancelled too */
  ASSERT_EQ(cleanups, 9);
  ASSERT(hf.hooks >= hooks + 7);
  ASSERT_EQ(hf.resumes, 0);
  /* the work job's callback may come after the hook: the owned loop is
  ** run until it can be closed, so it has come by now */
  ASSERT_EQ(hf.freed, hf.started);
  end_busy();
}

static void test_host_loop(void) {
  uv_loop_t loop;
  tide_runtime_t *rt;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  rt = tide_runtime_new(&loop);
  cleanups = 0;
  start_busy(rt);
  tide_runtime_close(rt);
  ASSERT_EQ(cleanups, 9);
  /* a pool job still in flight is finished by the host's next run */
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(hf.freed, hf.started);
  ASSERT_EQ(loop_handles(&loop), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  end_busy();
}

/* A host handle on the shared loop survives the runtime's close. */
static void on_host_timer(uv_timer_t *h) {
  *(int *)h->data = 1;
}

static void test_host_handles_survive(void) {
  uv_loop_t loop;
  uv_timer_t timer;
  tide_runtime_t *rt;
  int fired = 0;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  uv_timer_init(&loop, &timer);
  timer.data = &fired;
  uv_timer_start(&timer, on_host_timer, 1, 0);
  rt = tide_runtime_new(&loop);
  lua_ok(rt, "tide.spawn(tide.sleep, 60)");
  tide_runtime_run(rt, TIDE_RUN_NOWAIT);
  tide_runtime_close(rt);
  ASSERT_EQ(loop_handles(&loop), 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(fired, 1);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* Closing right after spawning, before the loop ever ran, and closing a
** runtime whose tasks are woken but not yet resumed. */
static void test_close_early(void) {
  tide_runtime_t *rt = tide_runtime_new(NULL);
  lua_ok(rt, "for i = 1, 100 do tide.spawn(function() ran = true end) end");
  tide_runtime_close(rt);
  rt = tide_runtime_new(NULL);
  hf_register(rt);
  lua_ok(rt, "for i = 1, 10 do tide.spawn(require('host').after, 0) end");
  tide_runtime_run(rt, TIDE_RUN_NOWAIT);
  tide_runtime_close(rt);
  ASSERT_EQ(hf.freed, hf.started);
}

int main(void) {
  test_owned_loop();
  test_host_loop();
  test_host_handles_survive();
  test_close_early();
  puts("test_close: ok");
  return 0;
}
