/*
** check.h: the assertion macros of the C tests.  Each test is its own
** process (one CTest entry per file), so a failed check prints where and
** why and exits with status 1; nothing is shared between tests.  Also a few
** helpers every embedding test needs: running Lua snippets on a runtime's
** main thread and counting the handles left on a loop.
*/
#ifndef TIDE_TEST_CHECK_H
#define TIDE_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tide.h>

#define CHECK_FAIL_(fmt, ...)                                             \
  do {                                                                    \
    fprintf(stderr, "%s:%d: check failed: " fmt "\n", __FILE__, __LINE__, \
            __VA_ARGS__);                                                 \
    exit(1);                                                              \
  } while (0)

#define ASSERT(cond)                       \
  do {                                     \
    if (!(cond)) CHECK_FAIL_("%s", #cond); \
  } while (0)

#define ASSERT_EQ(a, b)                                                   \
  do {                                                                    \
    long long a_ = (long long)(a), b_ = (long long)(b);                   \
    if (a_ != b_) CHECK_FAIL_("%s == %s (%lld != %lld)", #a, #b, a_, b_); \
  } while (0)

#define ASSERT_NE(a, b)                                            \
  do {                                                             \
    long long a_ = (long long)(a), b_ = (long long)(b);            \
    if (a_ == b_) CHECK_FAIL_("%s != %s (both %lld)", #a, #b, a_); \
  } while (0)

#define ASSERT_STREQ(a, b)                                                 \
  do {                                                                     \
    const char *a_ = (a), *b_ = (b);                                       \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                 \
      CHECK_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, a_ ? a_ : "NULL", \
                  b_ ? b_ : "NULL");                                       \
  } while (0)

/* Does the string a contain b? */
#define ASSERT_CONTAINS(a, b)                                     \
  do {                                                            \
    const char *a_ = (a), *b_ = (b);                              \
    if (!a_ || !strstr(a_, b_))                                   \
      CHECK_FAIL_("%s contains %s (\"%s\" lacks \"%s\")", #a, #b, \
                  a_ ? a_ : "NULL", b_);                          \
  } while (0)

/* Run a Lua snippet on the runtime's main thread (not as a task) and fail
** the test if it raises.  Leaves the stack as it found it. */
static inline void lua_ok(tide_runtime_t *rt, const char *code) {
  lua_State *L = tide_runtime_lua(rt);
  int top = lua_gettop(L);
  if (luaL_dostring(L, code) != LUA_OK)
    CHECK_FAIL_("lua: %s: %s", code, lua_tostring(L, -1));
  lua_settop(L, top);
}

/* Evaluate a Lua expression on the main thread and return it as an
** integer. */
static inline long long lua_int(tide_runtime_t *rt, const char *expr) {
  lua_State *L = tide_runtime_lua(rt);
  long long v;
  lua_pushfstring(L, "return %s", expr);
  if (luaL_loadstring(L, lua_tostring(L, -1)) != LUA_OK ||
      lua_pcall(L, 0, 1, 0) != LUA_OK)
    CHECK_FAIL_("lua: %s: %s", expr, lua_tostring(L, -1));
  v = (long long)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return v;
}

static void count_handle_(uv_handle_t *h, void *arg) {
  (void)h;
  (*(int *)arg)++;
}

/* How many handles the loop still holds (active or not). */
static inline int loop_handles(uv_loop_t *loop) {
  int n = 0;
  uv_walk(loop, count_handle_, &n);
  return n;
}

#endif
