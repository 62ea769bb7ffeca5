/*
** test_runtime.c: creating, driving and closing runtimes.  Covers an owned
** loop, a host-owned loop the host runs itself with uv_run, two runtimes
** side by side (each with its own loop, and both on one host loop), and
** driving with TIDE_RUN_ONCE / TIDE_RUN_NOWAIT plus the alive, ntasks and
** timeout queries a host with its own main loop uses.
*/
#include "check.h"
#include "hostfns.h"

/* An owned loop: the basics of a runtime and its accessors. */
static void test_owned_loop(void) {
  tide_runtime_t *rt = tide_runtime_new(NULL);
  lua_State *L;
  ASSERT(rt != NULL);
  L = tide_runtime_lua(rt);
  ASSERT(L != NULL);
  ASSERT(tide_runtime_loop(rt) != NULL);
  ASSERT(tide_runtime_from(L) == rt);
  /* the globals a script expects */
  ASSERT_EQ(lua_int(rt,
                    "(type(tide) == 'table' and type(async) == "
                    "'function' and type(await) == 'function') "
                    "and 1 or 0"),
            1);
  ASSERT_EQ(lua_int(rt, "require('tide') == tide and 1 or 0"), 1);
  /* a new thread knows its runtime too */
  lua_newthread(L);
  ASSERT(tide_runtime_from(lua_tothread(L, -1)) == rt);
  lua_pop(L, 1);
  /* nothing to do yet */
  ASSERT_EQ(tide_runtime_ntasks(rt), 0);
  ASSERT_EQ(tide_runtime_alive(rt), 0);
  ASSERT_EQ(tide_runtime_run(rt, TIDE_RUN_DEFAULT), 0);
  /* a task that sleeps runs to the end under DEFAULT */
  ASSERT_EQ(tide_spawn_string(rt,
                              "result = 0; tide.sleep(0.001); "
                              "result = 42",
                              "=t", 0),
            LUA_OK);
  lua_pop(L, 1);
  ASSERT_EQ(tide_runtime_ntasks(rt), 1);
  ASSERT_EQ(tide_runtime_alive(rt), 1);
  ASSERT_EQ(tide_runtime_run(rt, TIDE_RUN_DEFAULT), 0);
  ASSERT_EQ(lua_int(rt, "result"), 42);
  ASSERT_EQ(tide_runtime_ntasks(rt), 0);
  tide_runtime_close(rt);
  tide_runtime_close(NULL); /* allowed, does nothing */
}

/* The host owns the loop and calls uv_run itself; tide's scheduler runs
** from its prepare/check handles.  Closing the runtime leaves the loop with
** no handle of tide's, so the host can close it. */
static void test_host_loop(void) {
  uv_loop_t loop;
  tide_runtime_t *rt;
  lua_State *L;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  rt = tide_runtime_new(&loop);
  ASSERT(rt != NULL);
  ASSERT(tide_runtime_loop(rt) == &loop);
  L = tide_runtime_lua(rt);
  hf_register(rt);
  ASSERT_EQ(
      tide_spawn_string(
          rt,
          "local host = require 'host'\n"
          "local t = tide.spawn(function() tide.sleep(0.002) return 5 end)\n"
          "total = host.after(1, 10) + host.work(100) + t:await()",
          "=host", 0),
      LUA_OK);
  lua_pop(L, 1);
  /* tide's scheduler handles do not keep the host's loop alive by
  ** themselves, but ready tasks and pending work do */
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(lua_int(rt, "total"), 10 + 5050 + 5);
  ASSERT_EQ(tide_runtime_ntasks(rt), 0);
  ASSERT_EQ(uv_loop_alive(&loop), 0);
  tide_runtime_close(rt);
  ASSERT_EQ(loop_handles(&loop), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  ASSERT_EQ(hf.started, hf.freed);
}

/* Two runtimes with their own loops, driven in turns: no shared state. */
static void test_two_runtimes(void) {
  tide_runtime_t *a = tide_runtime_new(NULL), *b = tide_runtime_new(NULL);
  int rounds = 0;
  ASSERT(a && b && a != b);
  ASSERT(tide_runtime_loop(a) != tide_runtime_loop(b));
  lua_ok(a, "name = 'a'");
  lua_ok(b, "name = 'b'");
  ASSERT_EQ(lua_int(a, "name == 'a' and 1 or 0"), 1);
  ASSERT_EQ(lua_int(b, "name == 'b' and 1 or 0"), 1);
  /* tasks in both, each counting with sleep(0) steps */
  lua_ok(a,
         "n = 0; tide.spawn(function() for i = 1, 50 do n = n + 1 "
         "tide.sleep(0) end end)");
  lua_ok(b,
         "n = 0; tide.spawn(function() for i = 1, 30 do n = n + 1 "
         "tide.sleep(0.0001) end end)");
  while (tide_runtime_alive(a) || tide_runtime_alive(b)) {
    tide_runtime_run(a, TIDE_RUN_NOWAIT);
    tide_runtime_run(b, TIDE_RUN_NOWAIT);
    ASSERT(++rounds < 1000000);
  }
  ASSERT_EQ(lua_int(a, "n"), 50);
  ASSERT_EQ(lua_int(b, "n"), 30);
  /* closing one leaves the other working */
  tide_runtime_close(a);
  lua_ok(b, "tide.spawn(function() tide.sleep(0.001) n = -1 end)");
  tide_runtime_run(b, TIDE_RUN_DEFAULT);
  ASSERT_EQ(lua_int(b, "n"), -1);
  tide_runtime_close(b);
}

/* Two runtimes on one host loop: each scheduler only resumes its own
** tasks, and one uv_run serves both. */
static void test_two_on_one_loop(void) {
  uv_loop_t loop;
  tide_runtime_t *a, *b;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  a = tide_runtime_new(&loop);
  b = tide_runtime_new(&loop);
  ASSERT(a && b);
  hf_register(a);
  hf_register(b);
  lua_ok(a,
         "log = {}; for i = 1, 3 do tide.spawn(function() "
         "local v = require('host').after(i, i) log[#log + 1] = v end) end");
  lua_ok(b,
         "log = {}; for i = 1, 3 do tide.spawn(function() "
         "tide.sleep(i / 1000) log[#log + 1] = 10 * i end) end");
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(lua_int(a, "#log * 100 + log[1] + log[2] + log[3]"), 306);
  ASSERT_EQ(lua_int(b, "#log * 100 + log[1] + log[2] + log[3]"), 360);
  tide_runtime_close(b);
  /* a still works on the shared loop after b is gone */
  lua_ok(a, "tide.spawn(function() tide.sleep(0.001) log = {1} end)");
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(lua_int(a, "#log"), 1);
  tide_runtime_close(a);
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* A host with its own main loop: it asks how long it may sleep, runs one
** non-blocking iteration at a time, and knows when tide is done. */
static void test_nowait_driving(void) {
  tide_runtime_t *rt = tide_runtime_new(NULL);
  int iterations = 0, timeout;
  lua_State *L = tide_runtime_lua(rt);
  ASSERT_EQ(tide_spawn_string(rt,
                              "steps = 0 for i = 1, 3 do "
                              "tide.sleep(0.005) steps = steps + 1 end",
                              "=steps", 0),
            LUA_OK);
  lua_pop(L, 1);
  /* a spawned task is ready: the host must not sleep */
  ASSERT_EQ(tide_runtime_timeout(rt), 0);
  ASSERT_EQ(tide_runtime_run(rt, TIDE_RUN_NOWAIT), 1);
  /* now it sleeps on a timer: the host may wait up to ~5 ms */
  timeout = tide_runtime_timeout(rt);
  ASSERT(timeout >= 0 && timeout <= 5);
  while (tide_runtime_alive(rt)) {
    timeout = tide_runtime_timeout(rt);
    ASSERT(timeout >= 0);
    if (timeout > 0) uv_sleep((unsigned)timeout);
    tide_runtime_run(rt, TIDE_RUN_NOWAIT);
    ASSERT(++iterations < 100000);
  }
  ASSERT_EQ(lua_int(rt, "steps"), 3);
  ASSERT_EQ(tide_runtime_ntasks(rt), 0);
  ASSERT_EQ(tide_runtime_timeout(rt), -1);
  tide_runtime_close(rt);
}

/* TIDE_RUN_ONCE blocks for I/O (here a timer and a pool job) and returns
** after one iteration; the return value says whether to call again. */
static void test_run_once(void) {
  tide_runtime_t *rt = tide_runtime_new(NULL);
  int calls = 0;
  hf_register(rt);
  lua_ok(rt,
         "got = {}; tide.spawn(function() local h = require 'host' "
         "got[1] = h.after(2, 'x') got[2] = h.work(10) end)");
  while (tide_runtime_run(rt, TIDE_RUN_ONCE)) ASSERT(++calls < 10000);
  /* How many iterations that took depends on timing; what holds is that
  ** a zero return means everything is done, and that ONCE on an idle
  ** runtime returns at once instead of blocking. */
  ASSERT_EQ(lua_int(rt, "got[1] == 'x' and got[2]"), 55);
  ASSERT_EQ(tide_runtime_alive(rt), 0);
  ASSERT_EQ(tide_runtime_run(rt, TIDE_RUN_ONCE), 0);
  tide_runtime_close(rt);
}

int main(void) {
  test_owned_loop();
  test_host_loop();
  test_two_runtimes();
  test_two_on_one_loop();
  test_nowait_driving();
  test_run_once();
  ASSERT_EQ(hf.started, hf.freed);
  puts("test_runtime: ok");
  return 0;
}
