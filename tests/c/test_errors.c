/*
** test_errors.c: errors reaching the host.  Scripts run with tide_run*,
** failing tasks read with tide_task_outcome, load errors, the deadlock
** case, and the error helpers (tide_error_push/raise/raisef/is/text).  The
** host must get a message it can print, with a traceback that names the
** script's lines.
*/
#include "check.h"

static tide_runtime_t *rt;
static lua_State *L;

static const char *script_path = "tests/c/fixtures/fails.lua";

/* A string error comes back with the task's traceback appended. */
static void test_string_error(void) {
  int st = tide_run_string(rt,
                           "local function inner() error('boom') end\n"
                           "local function outer() tide.sleep(0) inner() end\n"
                           "outer()\n",
                           "=script", 0, 0);
  ASSERT_EQ(st, LUA_ERRRUN);
  ASSERT_CONTAINS(lua_tostring(L, -1), "script:1: boom");
  ASSERT_CONTAINS(lua_tostring(L, -1), "stack traceback:");
  ASSERT_CONTAINS(lua_tostring(L, -1), "in upvalue 'inner'");
  ASSERT_CONTAINS(lua_tostring(L, -1), "script:2:");
  ASSERT_STREQ(tide_error_text(L, -1), lua_tostring(L, -2));
  lua_pop(L, 2);
}

/* A tide.Error keeps its fields and gets a traceback field. */
static void test_tide_error(void) {
  int st = tide_run_string(
      rt,
      "local function f() error(tide.error('EPROTO', 'bad frame', "
      "{op = 'proto.read'})) end\n"
      "f()\n",
      "=proto", 0, 0);
  ASSERT_EQ(st, LUA_ERRRUN);
  ASSERT(tide_error_is(L, -1, "EPROTO"));
  ASSERT(!tide_error_is(L, -1, "ENOENT"));
  lua_getfield(L, -1, "traceback");
  ASSERT_CONTAINS(lua_tostring(L, -1), "proto:1:");
  lua_pop(L, 1);
  ASSERT_CONTAINS(tide_error_text(L, -1),
                  "proto.read: EPROTO: bad frame\nstack traceback:");
  lua_pop(L, 2);
}

/* Other error values come back as they are. */
static void test_other_values(void) {
  ASSERT_EQ(tide_run_string(rt, "error({answer = 42})", "=t", 0, 0),
            LUA_ERRRUN);
  ASSERT(lua_istable(L, -1));
  lua_getfield(L, -1, "answer");
  ASSERT_EQ(lua_tointeger(L, -1), 42);
  lua_pop(L, 1);
  ASSERT_CONTAINS(tide_error_text(L, -1), "error object is a table value");
  lua_pop(L, 2);
  ASSERT_EQ(tide_run_string(rt,
                            "error(setmetatable({}, {__tostring = "
                            "function() return 'custom' end}))",
                            "=t", 0, 0),
            LUA_ERRRUN);
  ASSERT_STREQ(tide_error_text(L, -1), "custom");
  lua_pop(L, 2);
  ASSERT_EQ(tide_run_string(rt, "error(7, 0)", "=t", 0, 0), LUA_ERRRUN);
  ASSERT_STREQ(tide_error_text(L, -1), "7");
  lua_pop(L, 2);
}

static void test_load_errors(void) {
  ASSERT_EQ(tide_run_string(rt, "return +", "=bad", 0, 0), LUA_ERRSYNTAX);
  ASSERT_CONTAINS(lua_tostring(L, -1), "bad:1:");
  lua_pop(L, 1);
  ASSERT_EQ(tide_run_file(rt, "/nonexistent/x.lua", 0, 0), LUA_ERRFILE);
  ASSERT_CONTAINS(lua_tostring(L, -1), "/nonexistent/x.lua");
  lua_pop(L, 1);
  /* arguments are popped on a load error too */
  lua_pushinteger(L, 1);
  lua_pushinteger(L, 2);
  ASSERT_EQ(tide_spawn_string(rt, "return +", "=bad", 2), LUA_ERRSYNTAX);
  ASSERT_EQ(lua_gettop(L), 1);
  lua_pop(L, 1);
  lua_pushinteger(L, 1);
  ASSERT_EQ(tide_spawn_file(rt, "/nonexistent/x.lua", 1), LUA_ERRFILE);
  ASSERT_EQ(lua_gettop(L), 1);
  lua_pop(L, 1);
}

/* A script file with arguments and several results; then one that fails,
** whose traceback names the file. */
static void test_files(void) {
  lua_pushinteger(L, 20);
  lua_pushinteger(L, 22);
  ASSERT_EQ(tide_run_string(rt,
                            "local a, b = ... tide.sleep(0.001) "
                            "return a + b, 'x', nil",
                            "=sum", 2, LUA_MULTRET),
            LUA_OK);
  ASSERT_EQ(lua_gettop(L), 3);
  ASSERT_EQ(lua_tointeger(L, 1), 42);
  ASSERT_STREQ(lua_tostring(L, 2), "x");
  ASSERT(lua_isnil(L, 3));
  lua_settop(L, 0);
  /* nresults adjusts like lua_pcall */
  ASSERT_EQ(tide_run_string(rt, "return 1, 2, 3", "=n", 0, 1), LUA_OK);
  ASSERT_EQ(lua_gettop(L), 1);
  ASSERT_EQ(lua_tointeger(L, 1), 1);
  lua_settop(L, 0);
  ASSERT_EQ(tide_run_string(rt, "return 1", "=n", 0, 3), LUA_OK);
  ASSERT_EQ(lua_gettop(L), 3);
  ASSERT(lua_isnil(L, 3));
  lua_settop(L, 0);
  lua_pushliteral(L, "hello");
  ASSERT_EQ(tide_run_file(rt, script_path, 1, 0), LUA_ERRRUN);
  ASSERT_CONTAINS(lua_tostring(L, -1), "fails.lua:5: failing with hello");
  ASSERT_CONTAINS(lua_tostring(L, -1), "fails.lua:8:");
  ASSERT_EQ(lua_gettop(L), 1);
  lua_settop(L, 0);
  /* tide_run with a C-pushed function */
  ASSERT_EQ(luaL_loadstring(L, "return select('#', ...), ..."), LUA_OK);
  lua_pushboolean(L, 1);
  ASSERT_EQ(tide_run(rt, 1, 2), LUA_OK);
  ASSERT_EQ(lua_gettop(L), 2);
  ASSERT_EQ(lua_tointeger(L, 1), 1);
  ASSERT(lua_toboolean(L, 2));
  lua_settop(L, 0);
}

/* A spawned task's failure stays in its Task object; reading it there
** counts as retrieving it, so nothing is reported at close. */
static void test_spawned_failure(void) {
  tide_task_t *t;
  ASSERT_EQ(tide_spawn_string(rt, "tide.sleep(0) error('later')", "=bg", 0),
            LUA_OK);
  t = tide_task_check(L, -1);
  ASSERT_EQ(tide_task_outcome(L, -1), -2);
  ASSERT_EQ(lua_gettop(L), 1);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  ASSERT_EQ(tide_task_status_of(t), TIDE_TASK_FAILED);
  ASSERT_EQ(tide_task_outcome(L, -1), -1);
  ASSERT_CONTAINS(lua_tostring(L, -1), "bg:1: later");
  lua_settop(L, 0);
}

/* A task waiting for something nothing can wake: tide_run reports it and
** cancels the task instead of hanging. */
static void test_deadlock(void) {
  ASSERT_EQ(tide_run_string(rt,
                            "local ok, e = pcall(tide.future().await, "
                            "tide.future()) cleaned = tide.is_error(e, "
                            "'ECANCELED') error(e)",
                            "=stuck", 0, 0),
            LUA_ERRRUN);
  ASSERT_CONTAINS(lua_tostring(L, -1), "nothing is left that could wake it");
  lua_pop(L, 1);
  ASSERT_EQ(lua_int(rt, "cleaned and 1 or 0"), 1);
  ASSERT_EQ(tide_runtime_ntasks(rt), 0);
}

/* tide_run refuses to nest inside a task or inside tide.run. */
static int nested_run(lua_State *L1) {
  tide_runtime_t *r = tide_runtime_from(L1);
  lua_State *M = tide_runtime_lua(r);
  int st = tide_run_string(r, "return 1", "=inner", 0, 0);
  lua_pushboolean(L1, st == LUA_ERRRUN);
  lua_pushstring(L1, lua_tostring(M, -1));
  lua_pop(M, 1);
  return 2;
}

static void test_nesting(void) {
  tide_function_register(rt, "nested_run", nested_run);
  ASSERT_EQ(tide_run_string(rt,
                            "local refused, msg = nested_run()\n"
                            "assert(refused and msg:find('already running'))"
                            "\nlocal ok, e = pcall(tide.run, function() end)\n"
                            "assert(not ok and e:find('already running'))\n",
                            "=nest", 0, 0),
            LUA_OK);
}

/* The error helpers a C function uses. */
static int raise_uv(lua_State *L1) {
  return tide_error_raise(L1, UV_ENOENT, "host.open", "/x");
}
static int raise_fmt(lua_State *L1) {
  return tide_error_raisef(L1, "EINVAL", "host.set", "level %d out of %s", 7,
                           "range");
}

static void test_helpers(void) {
  tide_error_push(L, "ECLOSED", NULL, NULL, NULL);
  ASSERT(tide_error_is(L, -1, "ECLOSED"));
  ASSERT_STREQ(tide_error_text(L, -1), "ECLOSED");
  lua_pop(L, 2);
  tide_error_push(L, "EAGAIN", "q.get", "/queue", "would block");
  ASSERT_STREQ(tide_error_text(L, -1), "q.get: /queue: EAGAIN: would block");
  lua_pop(L, 2);
  lua_pushliteral(L, "plain");
  ASSERT(!tide_error_is(L, -1, NULL));
  lua_pop(L, 1);
  lua_pushcfunction(L, raise_uv);
  ASSERT_NE(lua_pcall(L, 0, 0, 0), LUA_OK);
  ASSERT(tide_error_is(L, -1, "ENOENT"));
  ASSERT_STREQ(tide_error_text(L, -1),
               "host.open: /x: ENOENT: no such file or directory");
  lua_pop(L, 2);
  lua_pushcfunction(L, raise_fmt);
  ASSERT_NE(lua_pcall(L, 0, 0, 0), LUA_OK);
  ASSERT(tide_error_is(L, -1, "EINVAL"));
  ASSERT_STREQ(tide_error_text(L, -1),
               "host.set: EINVAL: level 7 out of range");
  lua_pop(L, 2);
}

int main(void) {
  rt = tide_runtime_new(NULL);
  ASSERT(rt != NULL);
  L = tide_runtime_lua(rt);
  test_string_error();
  test_tide_error();
  test_other_values();
  test_load_errors();
  test_files();
  test_spawned_failure();
  test_deadlock();
  test_nesting();
  test_helpers();
  ASSERT_EQ(lua_gettop(L), 0);
  tide_runtime_close(rt);
  puts("test_errors: ok");
  return 0;
}
