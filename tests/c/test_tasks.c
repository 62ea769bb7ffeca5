/*
** test_tasks.c: tasks from C and C code registered in a runtime.  Spawning
** C and Lua functions with arguments, the status life cycle, outcomes,
** cancelling from C, the current task, registering functions and modules,
** and a waiter-list primitive (a gate) built on tide_waitq_t and the
** task's own wait, droppable or not.
*/
#include "check.h"

static tide_runtime_t *rt;
static lua_State *L;

/* ---- a gate: tasks wait until the host opens it --------------------- */

static tide_waitq_t gate;
static int gate_passed;
static unsigned gate_flags;

static void gate_cancel(tide_wait_t *w) {
  tide_waitq_remove(&gate, w);
}

static int gate_resume(lua_State *L1, tide_wait_t *w) {
  (void)w;
  gate_passed++;
  lua_pushliteral(L1, "through");
  return 1;
}

/* gate_wait(): an async C function on the task's own wait; it never
** outlives the suspension, so no allocation is needed. */
static int gate_wait(lua_State *L1) {
  tide_task_t *t = tide_async_check(L1, "gate.wait");
  tide_wait_t *w = tide_task_self_wait(t);
  tide_wait_init(w, gate_cancel, gate_resume, NULL, gate_flags);
  tide_waitq_push(&gate, w);
  return tide_wait_yield(L1, w, "gate");
}

/* Open the gate for n waiters, first come first served. */
static int gate_open(int n) {
  int woken = 0;
  tide_wait_t *w;
  while (woken < n && (w = tide_waitq_pop(&gate)) != NULL) {
    tide_wait_wake(w);
    woken++;
  }
  return woken;
}

/* ---- C functions run as tasks ---------------------------------------- */

static int add_task(lua_State *L1) {
  lua_Integer a = luaL_checkinteger(L1, 1), b = luaL_checkinteger(L1, 2);
  lua_pushinteger(L1, a + b);
  lua_pushboolean(L1, tide_task_current(L1) != NULL);
  return 2;
}

static int whoami(lua_State *L1) {
  tide_task_t *t = tide_task_current(L1);
  if (!t)
    lua_pushnil(L1);
  else
    tide_task_push(L1, t);
  return 1;
}

static int luaopen_answers(lua_State *L1) {
  lua_newtable(L1);
  lua_pushinteger(L1, 42);
  lua_setfield(L1, -2, "answer");
  lua_pushstring(L1, lua_tostring(L1, 1)); /* require passes the name */
  lua_setfield(L1, -2, "name");
  return 1;
}

static const luaL_Reg gate_lib[] = {
    {"wait", gate_wait}, {"whoami", whoami}, {NULL, NULL}};

static void test_spawn_c(void) {
  tide_task_t *t;
  lua_pushcfunction(L, add_task);
  lua_pushinteger(L, 40);
  lua_pushinteger(L, 2);
  t = tide_task_spawn(L, 2);
  ASSERT_EQ(lua_gettop(L), 1);
  ASSERT(tide_task_check(L, 1) == t);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_PENDING);
  ASSERT_EQ(tide_task_outcome(L, 1), -2);
  ASSERT(tide_task_current(L) == NULL);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_DONE);
  ASSERT_EQ(tide_task_outcome(L, 1), 2);
  ASSERT_EQ(lua_tointeger(L, -2), 42);
  ASSERT(lua_toboolean(L, -1));
  lua_settop(L, 0);
  /* a bad argument fails the task, not the host */
  lua_pushcfunction(L, add_task);
  lua_pushliteral(L, "x");
  t = tide_task_spawn(L, 1);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_FAILED);
  ASSERT_EQ(tide_task_outcome(L, 1), -1);
  ASSERT_CONTAINS(lua_tostring(L, -1), "bad argument #1");
  lua_settop(L, 0);
}

static int check_not_task(lua_State *L1) {
  tide_task_check(L1, 1);
  return 0;
}

static void test_check(void) {
  lua_pushcfunction(L, check_not_task);
  lua_pushinteger(L, 1);
  ASSERT_NE(lua_pcall(L, 1, 0, 0), LUA_OK);
  ASSERT_CONTAINS(lua_tostring(L, -1), "tide.Task expected");
  lua_pop(L, 1);
}

static void test_registering(void) {
  tide_function_register(rt, "whoami", whoami);
  tide_module_register(rt, "answers", luaopen_answers);
  tide_module_register_lib(rt, "gate", gate_lib);
  ASSERT_EQ(lua_int(rt, "require('answers').answer"), 42);
  ASSERT_EQ(lua_int(rt, "require('answers').name == 'answers' and 1"), 1);
  ASSERT_EQ(lua_int(rt, "require('answers') == require('answers') and 1"), 1);
  ASSERT_EQ(lua_int(rt, "whoami() == nil and 1"), 1);
  ASSERT_EQ(tide_run_string(
                rt,
                "local me = whoami()\n"
                "assert(me == tide.current() and me.status == 'running')\n"
                "assert(require('gate').whoami() == me)\n"
                "return me.id",
                "=who", 0, 1),
            LUA_OK);
  ASSERT(lua_tointeger(L, -1) > 0);
  lua_pop(L, 1);
  /* registering again replaces, for states that did not require yet */
  tide_module_register(rt, "answers2", luaopen_answers);
  ASSERT_EQ(lua_int(rt, "require('answers2').answer"), 42);
}

/* The gate: FIFO, cancellable (the task leaves the list), visible in
** tide.dump. */
static void test_gate(void) {
  tide_task_t *a, *b, *c;
  gate_flags = 0;
  lua_ok(rt, "order = {}");
  ASSERT_EQ(tide_spawn_string(rt,
                              "local v = require('gate').wait() "
                              "order[#order + 1] = 'a' return v",
                              "=a", 0),
            LUA_OK);
  ASSERT_EQ(tide_spawn_string(rt,
                              "require('gate').wait() "
                              "order[#order + 1] = 'b'",
                              "=b", 0),
            LUA_OK);
  ASSERT_EQ(tide_spawn_string(rt,
                              "require('gate').wait() "
                              "order[#order + 1] = 'c'",
                              "=c", 0),
            LUA_OK);
  a = tide_task_check(L, 1);
  b = tide_task_check(L, 2);
  c = tide_task_check(L, 3);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT); /* all wait: returns */
  ASSERT_EQ(tide_task_status_of(a), TIDE_TASK_WAITING);
  ASSERT_EQ(tide_runtime_ntasks(rt), 3);
  ASSERT_EQ(tide_runtime_alive(rt), 0);
  ASSERT_EQ(lua_int(rt, "select(2, tide.dump():gsub('waiting on gate', ''))"),
            3);
  tide_task_cancel(b, NULL); /* b leaves the list */
  ASSERT_EQ(gate_open(5), 2);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(tide_task_status_of(b), TIDE_TASK_CANCELLED);
  ASSERT_EQ(tide_task_status_of(c), TIDE_TASK_DONE);
  ASSERT_EQ(tide_task_outcome(L, 1), 1);
  ASSERT_STREQ(lua_tostring(L, -1), "through");
  ASSERT_EQ(lua_int(rt,
                    "#order == 2 and order[1] == 'a' and "
                    "order[2] == 'c' and 1"),
            1);
  ASSERT(gate.head == NULL && gate.tail == NULL);
  lua_settop(L, 0);
}

/* Woken but not resumed, then cancelled: a droppable wait loses its
** result (the task gets ECANCELED); a normal one delivers it and the
** cancel comes at the next await. */
static void test_droppable(void) {
  tide_task_t *t;
  int passed;
  gate_flags = TIDE_WAIT_DROPPABLE;
  ASSERT_EQ(
      tide_spawn_string(rt, "require('gate').wait() dropped = false", "=d", 0),
      LUA_OK);
  t = tide_task_check(L, -1);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  passed = gate_passed;
  ASSERT_EQ(gate_open(1), 1);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_READY);
  tide_task_cancel(t, NULL);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_CANCELLED);
  ASSERT_EQ(gate_passed, passed); /* resume function not run */
  ASSERT_EQ(lua_int(rt, "dropped == nil and 1"), 1);
  lua_settop(L, 0);
  gate_flags = 0;
  ASSERT_EQ(tide_spawn_string(rt,
                              "require('gate').wait() kept = true "
                              "tide.sleep(0)",
                              "=k", 0),
            LUA_OK);
  t = tide_task_check(L, -1);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(gate_open(1), 1);
  tide_task_cancel(t, NULL);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_CANCELLED);
  ASSERT_EQ(gate_passed, passed + 1);
  ASSERT_EQ(lua_int(rt, "kept and 1"), 1);
  lua_settop(L, 0);
}

/* Spawning from inside a task with the C API; the child runs once the
** parent yields. */
static int spawn_child(lua_State *L1) {
  luaL_checktype(L1, 1, LUA_TFUNCTION);
  lua_settop(L1, 1);
  tide_task_spawn(L1, 0);
  return 1;
}

static void test_spawn_inside(void) {
  tide_function_register(rt, "spawn_child", spawn_child);
  ASSERT_EQ(
      tide_run_string(
          rt,
          "local ran = false\n"
          "local t = spawn_child(function() ran = true return 'child' end)\n"
          "assert(not ran and t.status == 'pending')\n"
          "return t:await()",
          "=parent", 0, 1),
      LUA_OK);
  ASSERT_STREQ(lua_tostring(L, -1), "child");
  lua_pop(L, 1);
}

int main(void) {
  rt = tide_runtime_new(NULL);
  ASSERT(rt != NULL);
  L = tide_runtime_lua(rt);
  test_spawn_c();
  test_check();
  test_registering();
  test_gate();
  test_droppable();
  test_spawn_inside();
  ASSERT_EQ(lua_gettop(L), 0);
  tide_runtime_close(rt);
  puts("test_tasks: ok");
  return 0;
}
