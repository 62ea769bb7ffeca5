/*
** stream.h: the Stream type shared by tide.net (TCP and Unix sockets),
** tide.process (pipes to child processes) and the HTTP server.
**
** A Stream wraps one connected libuv stream (uv_tcp_t, uv_pipe_t or
** uv_tty_t) and gives it a read buffer and a write queue:
**
** - Reads are buffered.  The stream reads from the kernel while a task
**   waits for data or while fewer than `read_ahead` bytes are buffered, and
**   stops otherwise, so a peer that sends faster than the program consumes
**   is held back by TCP flow control instead of by memory.  Reading starts
**   with the first read operation (a stream that is only written to, such
**   as a child's stdin, never reads).
** - Writes go out at once with uv_try_write when nothing is queued; what
**   the kernel does not take is copied and queued with uv_write.  A writer
**   suspends while more than `high_water` bytes are queued (back-pressure);
**   a write error is remembered and raised by the next write.
** - close() is graceful: queued writes are flushed in the background
**   (uv_shutdown, then uv_close), so `s:write(x); s:close()` delivers x,
**   unless the peer takes longer than TIDE_STREAM_LINGER_MS to accept it.
**   Reading stops at once.  Tasks waiting on the stream get ECLOSED.
**
** Lua methods of a "tide.Stream" userdata: read(n), read_exactly(n),
** read_line(), read_until(sep, max), chunks(n), lines(), write(data),
** flush(), shutdown(), close() (also __close and __gc), closed(), peer(),
** local_addr(), nodelay(on), keepalive(on, delay), limits{...}.  See
** docs/net.md.
**
** The C functions below let C code (the HTTP server) work on the buffers
** directly: parse the buffered bytes in place, consume what it used, queue
** C buffers for writing, and suspend the running task until more data
** arrives or the write queue drains, without making Lua strings.
**
** Lifetimes: the stream record lives in the userdata; the libuv handle is
** malloc'ed and freed only by its close callback; write requests own a copy
** of their data and are freed in their callbacks.  A tide_stream_t pointer
** is valid while the userdata is reachable (for example on the stack of
** the running function); after close it stays valid but every operation
** reports ECLOSED.  The async functions below need the stream's userdata
** on the waiting task's stack (an argument of the function that waits is
** the usual place), so the stream outlives the wait.
*/
#ifndef TIDE_STREAM_H
#define TIDE_STREAM_H

#include "tide.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TIDE_STREAM_MT "tide.Stream"

/* Default limits; change them per stream with tide_stream_set_limits or
** stream:limits{} from Lua. */
/* bytes buffered ahead of a reader before reading stops */
#define TIDE_STREAM_READ_AHEAD (64 * 1024)
/* queued bytes above which a writer suspends */
#define TIDE_STREAM_HIGH_WATER (64 * 1024)
/* the read_line / read_until cap */
#define TIDE_STREAM_MAX_LINE (64 * 1024)
/* the largest chunk read(n) returns */
#define TIDE_STREAM_MAX_READ (1024 * 1024)
/* how long a closed stream may take to flush its queued data */
#define TIDE_STREAM_LINGER_MS 30000

/* Read status values besides 0 (open) and UV_EOF / negative libuv
** errors. */
#define TIDE_STREAM_CLOSED (-0x7e11) /* closed by this side */

typedef struct tide_stream tide_stream_t;

/* Push a new Stream userdata that takes ownership of `handle`: an
** initialised, connected uv_tcp_t, uv_pipe_t or uv_tty_t allocated with
** malloc, whose `data` field the stream now uses.  From here the stream
** closes the handle and frees it (with free) in the close callback, also
** when this function raises a memory error.  Must run on the runtime's
** thread, but need not run in a task.  [-0, +1, m] */
TIDE_API tide_stream_t *tide_stream_new(lua_State *L, uv_stream_t *handle);

/* The stream at idx, or raise a "bad argument" error (idx not a Stream) or
** ECLOSED (closed).  [-0, +0, v] */
TIDE_API tide_stream_t *tide_stream_check(lua_State *L, int idx,
                                          const char *op);

/* The stream at idx, or NULL if it is not a Stream (open or closed).
** [-0, +0, -] */
TIDE_API tide_stream_t *tide_stream_to(lua_State *L, int idx);

/* The libuv handle, or NULL once the stream is closed.  Do not close or
** free it; setting options on it (uv_tcp_nodelay, ...) is fine. */
TIDE_API uv_stream_t *tide_stream_handle(tide_stream_t *s);

/* Non-zero once the stream is closed. */
TIDE_API int tide_stream_closed(const tide_stream_t *s);

/* Close the stream: the same as stream:close() (graceful, idempotent).
** Wakes waiting tasks with ECLOSED.  Runs no Lua. */
TIDE_API void tide_stream_close(tide_stream_t *s);

/* Limits: 0 keeps the current value. */
TIDE_API void tide_stream_set_limits(tide_stream_t *s, size_t read_ahead,
                                     size_t high_water, size_t max_line);

/* How long close() may keep flushing queued data before it gives up on
** the peer and closes anyway (default TIDE_STREAM_LINGER_MS). */
TIDE_API void tide_stream_set_linger(tide_stream_t *s, uint64_t ms);

/* ---- reading ------------------------------------------------------------ */

/* The buffered, unconsumed bytes: returns a pointer to them and stores
** their count in *len.  The pointer is valid until the next consume, wait
** or close.  Calling this also starts reading (read-ahead).  */
TIDE_API const char *tide_stream_buffered(tide_stream_t *s, size_t *len);

/* Drop the first n buffered bytes (n <= the buffered count). */
TIDE_API void tide_stream_consume(tide_stream_t *s, size_t n);

/* What follows the buffered bytes: 0 (more may come), UV_EOF (the peer
** finished sending), a negative libuv error (ECONNRESET, ...), or
** TIDE_STREAM_CLOSED. */
TIDE_API int tide_stream_read_status(const tide_stream_t *s);

/* Raise the tide.Error for a non-zero read status (ECLOSED for
** TIDE_STREAM_CLOSED, EOF as EPROTO "unexpected end of stream").
** [-0, +0, v] */
TIDE_API int tide_stream_raise_status(lua_State *L, int status, const char *op);

/* Async: suspend the running task until at least `need` bytes are
** buffered, or the read status becomes non-zero (EOF, error), then call
** `again(L)` on the task's stack, with the stack as it was, and return its
** results.  If the condition already holds, `again` is called at once.
** Call as `return tide_stream_wait_read(L, s, need, again, "http.read");`
** from a lua_CFunction `again` itself may be (it is the usual pattern:
** the function parses what is buffered and waits for more when it needs
** it).  Raises ECLOSED if the stream is or gets closed, and the usual
** errors of tide_async_check.  One task may wait to read at a time; a
** second raises an error.  Cancellation leaves the buffer as it was. */
TIDE_API int tide_stream_wait_read(lua_State *L, tide_stream_t *s, size_t need,
                                   lua_CFunction again, const char *what);

/* ---- writing ------------------------------------------------------------ */

/* Queue bytes for writing without suspending: tries uv_try_write first and
** copies only what the kernel did not take.  Returns 0, or a negative
** libuv error: the error of an earlier queued write (EPIPE, ECONNRESET,
** ...), or TIDE_STREAM_CLOSED.  The caller's buffers may be reused at once.
*/
TIDE_API int tide_stream_write(tide_stream_t *s, const char *data, size_t len);
TIDE_API int tide_stream_writev(tide_stream_t *s, const uv_buf_t *bufs,
                                unsigned nbufs);

/* Bytes queued and not yet handed to the kernel. */
TIDE_API size_t tide_stream_write_queued(const tide_stream_t *s);

/* Async: suspend the running task until at most `high_water` bytes are
** queued (flush == 0: back-pressure) or until nothing is queued (flush !=
** 0), then call `again(L)` as tide_stream_wait_read does (at once if the
** condition holds).  Raises the pending write error, or ECLOSED.  Several
** tasks may wait.  Cancelling the wait does not unqueue the data. */
TIDE_API int tide_stream_wait_write(lua_State *L, tide_stream_t *s, int flush,
                                    lua_CFunction again, const char *what);

/* Push the peer's / local address of a TCP stream as host, port (two
** values) or a Unix socket's path (one value); pushes nil and the error
** name on failure.  Returns the number of values pushed.  [-0, +n, m] */
TIDE_API int tide_stream_push_addr(lua_State *L, tide_stream_t *s, int peer);

/* Register the tide.Stream metatable (done by tide_stream_new too).
** [-0, +0, m] */
TIDE_API void tide_stream_open(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
