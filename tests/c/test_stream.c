/*
** test_stream.c: the C API of the Stream type (runtime/stream.h), used the
** way the HTTP server uses it: async C functions that parse the read
** buffer in place and suspend with themselves as the continuation, and
** that queue C buffers with back-pressure.  A Lua script drives them over
** real loopback connections; the runtime is closed at the end, which hangs
** (and the test times out) if a handle was left open.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "check.h"
#include "../../runtime/stream.h"

/* count_lines(stream, lines, bytes) -> lines, bytes at end of stream.
** The counts travel in stack slots 2 and 3, so the function can run again
** from the top after each wait. */
static int count_lines(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "test.count_lines");
  lua_Integer lines = luaL_optinteger(L, 2, 0);
  lua_Integer bytes = luaL_optinteger(L, 3, 0);
  size_t len;
  const char *p, *nl;
  int st;
  lua_settop(L, 3);
  for (;;) {
    p = tide_stream_buffered(s, &len);
    nl = memchr(p, '\n', len);
    if (!nl) break;
    lines++;
    bytes += nl - p;
    tide_stream_consume(s, (size_t)(nl - p) + 1);
  }
  st = tide_stream_read_status(s);
  if (st == UV_EOF) {
    lua_pushinteger(L, lines);
    lua_pushinteger(L, bytes);
    return 2;
  }
  if (st != 0) return tide_stream_raise_status(L, st, "test.count_lines");
  lua_pushinteger(L, lines);
  lua_replace(L, 2);
  lua_pushinteger(L, bytes);
  lua_replace(L, 3);
  /* One more byte than is buffered: wake at the next chunk. */
  return tide_stream_wait_read(L, s, len + 1, count_lines, "test.read");
}

static int flushed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tide_stream_write_queued(
                         tide_stream_check(L, 1, "test.flushed")));
  return 1;
}

/* write_blob(stream, n): write n bytes of 'b' from C in 16 KiB pieces,
** waiting whenever the queue is over the high-water mark, then flush.
** Slot 2 holds what is left to write. */
static int write_blob(lua_State *L) {
  static char piece[16 * 1024];
  tide_stream_t *s = tide_stream_check(L, 1, "test.write_blob");
  lua_Integer left = luaL_checkinteger(L, 2);
  lua_settop(L, 2);
  memset(piece, 'b', sizeof piece);
  while (left > 0) {
    size_t n = left < (lua_Integer)sizeof piece ? (size_t)left : sizeof piece;
    uv_buf_t bufs[2];
    int r;
    /* writev with two buffers, to cover the copy of a partial write */
    bufs[0] = uv_buf_init(piece, (unsigned)(n / 2));
    bufs[1] = uv_buf_init(piece + n / 2, (unsigned)(n - n / 2));
    r = tide_stream_writev(s, bufs, 2);
    if (r < 0) return tide_error_raise(L, r, "test.write_blob", NULL);
    left -= (lua_Integer)n;
    if (tide_stream_write_queued(s) > 64 * 1024) {
      lua_pushinteger(L, left);
      lua_replace(L, 2);
      return tide_stream_wait_write(L, s, 0, write_blob, "test.write");
    }
  }
  return tide_stream_wait_write(L, s, 1, flushed, "test.flush");
}

static int open_test(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"count_lines", count_lines}, {"write_blob", write_blob}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}

static const char *script =
    "local net = require 'tide.net'\n"
    "local t = require 'streamtest'\n"
    "local got, srv, srv2 = tide.future()\n"
    "local ok, err = pcall(function()\n"
    "srv = net.listen{port = 0, handler = function(s)\n"
    "  got:set(t.count_lines(s))\n"
    "end}\n"
    "local c = net.connect('127.0.0.1', srv.port)\n"
    "-- lines arrive cut in odd places, with pauses in between\n"
    "for _, piece in ipairs{'one\\ntw', 'o\\n', 'thr', 'ee\\nfour', '\\n'} do\n"
    "  c:write(piece)\n"
    "  tide.sleep(0.01)\n"
    "end\n"
    "c:close()\n"
    "local lines, bytes = tide.timeout(10, got.await, got)\n"
    "assert(lines == 4, 'lines ' .. tostring(lines))\n"
    "assert(bytes == 15, 'bytes ' .. tostring(bytes))\n"
    "-- C writes with back-pressure against a slow reader\n"
    "local total = tide.future()\n"
    "srv2 = net.listen{port = 0, handler = function(s)\n"
    "  local n = 0\n"
    "  tide.sleep(0.05)\n"
    "  while true do\n"
    "    local d = s:read()\n"
    "    if not d then break end\n"
    "    assert(not d:find('[^b]'))\n"
    "    n = n + #d\n"
    "  end\n"
    "  total:set(n)\n"
    "end}\n"
    "local w = net.connect('127.0.0.1', srv2.port)\n"
    "assert(t.write_blob(w, 3 * 1024 * 1024 + 5) == 0)\n"
    "w:close()\n"
    "assert(tide.timeout(10, total.await, total) == 3 * 1024 * 1024 + 5)\n"
    "-- a closed stream is refused\n"
    "local ok2, err2 = pcall(t.count_lines, w)\n"
    "assert(not ok2 and err2.code == 'ECLOSED')\n"
    "end)\n"
    "-- close the servers whatever happened, so the loop can end\n"
    "if srv then srv:close() end\n"
    "if srv2 then srv2:close() end\n"
    "if not ok then error(err, 0) end\n"
    "done = true\n";

/* A runtime closed while a closed stream still flushes to a peer that
** does not read: closing must free the lingering socket and its timer
** (ASan's leak check and the loop's close would notice otherwise).  The
** peer is a plain listening socket that never accepts, so nothing in the
** runtime can end the flush early. */
static const char *linger_script =
    "local net = require 'tide.net'\n"
    "local c = net.connect('127.0.0.1', peer_port)\n"
    "c:limits{high_water = 64 * 1024 * 1024}\n"
    "c:write(string.rep('z', 48 * 1024 * 1024))\n"
    "c:close()\n"
    "lingering = true\n";

/* With a loop of the test's own, so that after tide_runtime_close the
** test can see that no handle of tide's is left on it. */
static void close_while_lingering(void) {
  uv_loop_t loop;
  tide_runtime_t *rt;
  lua_State *L;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  int i, st, fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(uv_loop_init(&loop), 0);
  rt = tide_runtime_new(&loop);
  ASSERT(rt != NULL);
  L = tide_runtime_lua(rt);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  lua_pushinteger(L, ntohs(a.sin_port));
  lua_setglobal(L, "peer_port");
  ASSERT_EQ(tide_spawn_string(rt, linger_script, "=linger", 0), LUA_OK);
  lua_settop(L, 0);
  for (i = 0, st = 0; i < 1000 && !st; i++) {
    tide_runtime_run(rt, TIDE_RUN_ONCE);
    st = (int)lua_int(rt, "lingering and 1 or 0");
  }
  ASSERT(st);
  tide_runtime_close(rt);
  /* Nothing of tide's may stay on the host's loop: not the socket still
  ** flushing, nor its linger timer (which would keep this loop busy for
  ** half a minute). */
  uv_run(&loop, UV_RUN_NOWAIT);
  ASSERT_EQ(loop_handles(&loop), 0);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  close(fd);
}

int main(void) {
  tide_runtime_t *rt = tide_runtime_new(NULL);
  lua_State *L;
  int n;
  ASSERT(rt != NULL);
  L = tide_runtime_lua(rt);
  tide_module_register(rt, "streamtest", open_test);
  ASSERT_EQ(tide_spawn_string(rt, script, "=test_stream", 0), LUA_OK);
  tide_runtime_run(rt, TIDE_RUN_DEFAULT);
  n = tide_task_outcome(L, -1);
  if (n < 0) CHECK_FAIL_("script failed: %s", luaL_tolstring(L, -1, NULL));
  lua_settop(L, 0);
  ASSERT_EQ(lua_int(rt, "done and 1 or 0"), 1);
  tide_runtime_close(rt);
  close_while_lingering();
  return 0;
}
