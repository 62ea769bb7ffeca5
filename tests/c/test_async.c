/*
** test_async.c: async C functions written with the suspend/resume protocol
** of tide.h (see hostfns.h): resumed with values and with errors, from the
** thread pool, inside user coroutines, refused outside a task or where the
** task cannot yield, and cancelled - by the host, by another task, by a
** tide.timeout deadline and between the wake and the resume - with the
** cancel hook run exactly once, no resume afterwards, and every request
** freed.
*/
#include "check.h"
#include "hostfns.h"

static tide_runtime_t *rt;
static lua_State *L;

/* Run Lua code as a task to completion; fail the test on an error. */
static void run(const char *code) {
  int top = lua_gettop(L);
  if (tide_run_string(rt, code, "=test", 0, 0) != LUA_OK)
    CHECK_FAIL_("task failed: %s", tide_error_text(L, -1));
  lua_settop(L, top);
}

static void test_values(void) {
  run("local host = require 'host'\n"
      "assert(host.after(1, 'v') == 'v')\n"
      "assert(host.after(0) == 'ok')\n"
      "assert(host.work(1000) == 500500)\n"
      /* several at once, in different tasks */
      "local a = tide.spawn(host.after, 3, 'a')\n"
      "local b = tide.spawn(host.work, 10)\n"
      "local c = tide.spawn(host.after, 1, 'c')\n"
      "local x, y, z = tide.gather(a, b, c)\n"
      "assert(x == 'a' and y == 55 and z == 'c')\n"
      /* inside a user coroutine the whole task suspends */
      "local gen = coroutine.wrap(function()\n"
      "  coroutine.yield(host.after(1, 'g1'))\n"
      "  coroutine.yield(host.work(3))\n"
      "end)\n"
      "assert(gen() == 'g1' and gen() == 6)\n"
      /* work done by a thread of the host's own */
      "assert(host.in_thread(2) == 2)\n"
      "local t1 = tide.spawn(host.in_thread, 3)\n"
      "local t2 = tide.spawn(host.in_thread, 1)\n"
      "assert(select('#', tide.gather(t1, t2)) == 2)\n");
  ASSERT_EQ(hf.hooks, 0);
  ASSERT_EQ(hf.resumes, hf.started);
  ASSERT_EQ(hf.freed, hf.started);
}

static void test_errors(void) {
  run("local host = require 'host'\n"
      "local ok, err = pcall(host.fail_after, 1, 'EPROTO')\n"
      "assert(not ok and tide.is_error(err, 'EPROTO'), tostring(err))\n"
      "assert(err.op == 'host.fail_after')\n"
      "assert(tostring(err):find('failed on purpose', 1, true))\n"
      "-- a bad argument is an ordinary error naming the argument\n"
      "local ok2, e2 = pcall(host.after, 'soon')\n"
      "assert(not ok2 and e2:find('bad argument #1', 1, true), e2)\n");
  /* an error left unhandled fails the task; the host sees it */
  ASSERT_EQ(tide_run_string(rt, "require('host').fail_after(1, 'ENOENT')",
                            "=fails", 0, 0),
            LUA_ERRRUN);
  ASSERT(tide_error_is(L, -1, "ENOENT"));
  ASSERT_CONTAINS(tide_error_text(L, -1), "host.fail_after: ENOENT");
  lua_pop(L, 2);
  ASSERT_EQ(hf.freed, hf.started);
}

/* Not in a task, or where the task cannot yield: refused before anything
** is started. */
static void test_refused(void) {
  int started = hf.started;
  ASSERT_NE(luaL_dostring(L, "return require('host').after(1)"), LUA_OK);
  ASSERT_CONTAINS(lua_tostring(L, -1), "not inside a task");
  lua_pop(L, 1);
  run("local host = require 'host'\n"
      "local ok, err = pcall(string.gsub, 'a', 'a', function()\n"
      "  return host.after(1) end)\n"
      "assert(not ok and err:find('cannot suspend here', 1, true), err)\n");
  ASSERT_EQ(hf.started, started);
}

/* Spawn `code` as a task, run the loop until it waits, and return it
** (its Task object stays at the top of the stack). */
static tide_task_t *spawn_waiting(const char *code) {
  tide_task_t *t;
  ASSERT_EQ(tide_spawn_string(rt, code, "=waiter", 0), LUA_OK);
  t = tide_task_check(L, -1);
  while (tide_task_status_of(t) == TIDE_TASK_PENDING ||
         tide_task_status_of(t) == TIDE_TASK_READY)
    tide_runtime_run(rt, TIDE_RUN_NOWAIT);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_WAITING);
  return t;
}

/* The host cancels a task waiting on a timer: the hook runs once, the
** resume function never, and the task ends with ECANCELED carrying the
** message. */
static void test_cancel_timer(void) {
  int hooks = hf.hooks, resumes = hf.resumes;
  tide_task_t *t = spawn_waiting("require('host').after(60000) done = 1");
  tide_task_cancel(t, "host says stop");
  ASSERT_EQ(hf.hooks, hooks + 1);
  tide_task_cancel(t, "again"); /* already being cancelled: no new hook */
  ASSERT_EQ(hf.hooks, hooks + 1);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT); /* returns at once: no timer */
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_CANCELLED);
  ASSERT_EQ(hf.resumes, resumes);
  ASSERT_EQ(tide_task_outcome(L, -1), -1);
  ASSERT(tide_error_is(L, -1, "ECANCELED"));
  ASSERT_CONTAINS(tide_error_text(L, -1), "host says stop");
  lua_pop(L, 3);
  ASSERT_EQ(lua_int(rt, "done or 0"), 0);
  ASSERT_EQ(hf.freed, hf.started);
  ASSERT_EQ(tide_runtime_alive(rt), 0);
  /* a finished task ignores cancel */
  tide_task_cancel(t, NULL);
  ASSERT_EQ(hf.hooks, hooks + 1);
}

/* Cancelling a thread-pool job: uv_cancel in the hook, and the after-work
** callback, which always comes, frees the request. */
static void test_cancel_work(void) {
  int hooks = hf.hooks, resumes = hf.resumes, late = hf.late;
  tide_task_t *t;
  ASSERT_EQ(uv_sem_init(&hf.gate, 0), 0);
  hf.gated = 1;
  t = spawn_waiting("require('host').work(100000)");
  tide_task_cancel(t, NULL);
  ASSERT_EQ(hf.hooks, hooks + 1);
  uv_sem_post(&hf.gate);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_CANCELLED);
  ASSERT_EQ(hf.late, late + 1);
  ASSERT_EQ(hf.resumes, resumes);
  ASSERT_EQ(hf.freed, hf.started);
  hf.gated = 0;
  uv_sem_destroy(&hf.gate);
  lua_pop(L, 1);
}

/* Cancelled from Lua by another task, and by a deadline. */
static void test_cancel_from_lua(void) {
  int hooks = hf.hooks, resumes = hf.resumes;
  run("local host = require 'host'\n"
      "local t = tide.spawn(host.after, 60000)\n"
      "tide.sleep(0)\n"
      "assert(t.status == 'waiting')\n"
      "t:cancel('bye')\n"
      "local ok, err = pcall(t.await, t)\n"
      "assert(not ok and tide.is_error(err, 'ECANCELED'))\n"
      "assert(t:cancelled())\n"
      "local ok2, e2 = pcall(tide.timeout, 0.002, host.after, 60000)\n"
      "assert(not ok2 and tide.is_error(e2, 'ETIMEDOUT'), tostring(e2))\n"
      "local ok3, e3 = pcall(tide.wait_for, function()\n"
      "  return host.work(1000) end, 10)\n"
      "assert(ok3 and e3 == 500500)\n");
  ASSERT_EQ(hf.hooks, hooks + 2);
  ASSERT_EQ(hf.resumes, resumes + 1);
  /* a host thread is stopped and joined by the hook */
  run("local host = require 'host'\n"
      "local ok, e = pcall(tide.timeout, 0.002, host.in_thread, 60000)\n"
      "assert(not ok and tide.is_error(e, 'ETIMEDOUT'), tostring(e))\n");
  ASSERT_EQ(hf.hooks, hooks + 3);
  ASSERT_EQ(hf.resumes, resumes + 1);
  ASSERT_EQ(hf.freed, hf.started);
}

/* A cancel that is already pending when the async function is called
** raises at tide_async_check: nothing is started. */
static void test_cancel_pending(void) {
  int started = hf.started;
  run("local host = require 'host'\n"
      "local t = tide.spawn(function()\n"
      "  tide.current():cancel('early')\n"
      "  host.after(1)\n"
      "  reached = true\n"
      "end)\n"
      "local ok, err = pcall(t.await, t)\n"
      "assert(not ok and tide.is_error(err, 'ECANCELED'))\n"
      "assert(not reached)\n");
  ASSERT_EQ(hf.started, started);
}

/* Cancelled after the operation completed but before the task resumed:
** the wait was not droppable, so the result is delivered and the cancel
** comes at the next await point. */
static tide_task_t *wake_target;
static void cancel_on_wake(timer_req_t *r) {
  (void)r;
  ASSERT_EQ(tide_task_status_of(wake_target), TIDE_TASK_READY);
  tide_task_cancel(wake_target, "late");
}

static void test_cancel_after_wake(void) {
  int hooks = hf.hooks;
  ASSERT_EQ(tide_spawn_string(rt,
                              "got = require('host').after(1, 'kept') "
                              "tide.sleep(60) got = 'past the sleep'",
                              "=kept", 0),
            LUA_OK);
  wake_target = tide_task_check(L, -1);
  hf.on_wake = cancel_on_wake;
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  hf.on_wake = NULL;
  ASSERT_EQ(hf.hooks, hooks); /* the completed wait had nothing to stop */
  ASSERT_EQ(lua_int(rt, "got == 'kept' and 1 or 0"), 1);
  ASSERT_EQ(tide_task_status_of(wake_target), TIDE_TASK_CANCELLED);
  ASSERT_EQ(hf.freed, hf.started);
  lua_pop(L, 1);
}

int main(void) {
  rt = tide_runtime_new(NULL);
  ASSERT(rt != NULL);
  L = tide_runtime_lua(rt);
  hf_register(rt);
  test_values();
  test_errors();
  test_refused();
  test_cancel_timer();
  test_cancel_work();
  test_cancel_from_lua();
  test_cancel_pending();
  test_cancel_after_wake();
  ASSERT_EQ(lua_gettop(L), 0);
  tide_runtime_close(rt);
  ASSERT_EQ(hf.freed, hf.started);
  puts("test_async: ok");
  return 0;
}
