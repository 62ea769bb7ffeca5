/*
** stream.c: the tide.Stream type (see stream.h for the contract).  A
** stream record lives in its Lua userdata and owns a malloc'ed, connected
** libuv stream handle, one read buffer and the accounting of its write
** queue.  Write requests are malloc'ed with a copy of their data and free
** themselves in their callbacks; the handle is freed only by its close
** callback.  Callbacks reach the record through handle->data, which close
** clears, so a callback that comes after close (a queued write, the
** background flush of a graceful close) touches only its own memory.
**
** Every read method is written as a function that looks at the buffer and,
** when it needs more, suspends with itself as the continuation: on resume
** it runs again from the top with its arguments still on the stack.  The
** C API hands the same mechanism to other modules (the HTTP server).
*/
#define _GNU_SOURCE /* memmem */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "stream.h"
#include "../vm/compat.h"

#define INITIAL_BUF (16 * 1024) /* first read buffer of a stream */
#define MIN_READ (4 * 1024)     /* smallest space offered to one read */
#define KEEP_BUF (64 * 1024)    /* larger buffers are freed when empty */

enum { KIND_TCP, KIND_PIPE, KIND_TTY };

typedef struct lingering lingering_t;

struct tide_stream {
  uv_stream_t *h;         /* NULL once closed */
  lingering_t *lingering; /* the runtime's list of lingering closes */
  tide_runtime_t *rt;
  char *buf; /* read buffer: data at buf+pos, len bytes */
  size_t cap, pos, len;
  size_t read_ahead, high_water, max_line;
  size_t queued;      /* bytes in uv_write requests */
  uint64_t linger_ms; /* flush time allowed after close */
  /* the one waiting reader and what it waits for */
  tide_wait_t *reader;
  lua_CFunction again;
  size_t need;           /* wake once len >= need ... */
  const char *sep;       /* ... or once sep is in the buffer */
  size_t seplen, scan;   /* scan: bytes known not to start a match */
  tide_waitq_t writers;  /* tasks waiting for queued <= high_water */
  tide_waitq_t flushers; /* tasks waiting for queued == 0 */
  struct shutreq *shutting; /* the shutdown() in flight, if any */
  int rstatus;           /* 0, UV_EOF or a libuv error */
  int werr;              /* first failed write */
  uint8_t kind;
  uint8_t armed;   /* a read operation happened: read ahead */
  uint8_t reading; /* uv_read_start is in effect */
  uint8_t shut;    /* shutdown() was called: no more writes */
};

/* A queued write: the request and its own copy of the data. */
typedef struct {
  uv_write_t req;
  size_t len;
  char data[];
} wreq_t;

/* A shutdown() in flight; lives until its callback. */
typedef struct flush_rec linger_t;
typedef struct shutreq {
  uv_shutdown_t req;
  tide_wait_t wait;
  tide_stream_t *s; /* valid while a task waits (it holds it) */
  linger_t *lg;     /* the stream was closed before the shutdown ended */
  int status;
} shutreq_t;

static void on_close_free(uv_handle_t *h) {
  /* owns h: the stream handed it over; nobody else refers to it now */
  free(h);
}

/* ---- reading ------------------------------------------------------------- */

static void update_reading(tide_stream_t *s);

static void on_alloc(uv_handle_t *hh, size_t suggested, uv_buf_t *out) {
  /* owns nothing; gives libuv the free tail of the read buffer */
  tide_stream_t *s = (tide_stream_t *)hh->data;
  size_t tail;
  (void)suggested;
  out->base = NULL;
  out->len = 0;
  if (!s) return; /* libuv reports UV_ENOBUFS and we stop */
  if (s->len == 0) s->pos = 0;
  tail = s->cap - s->pos - s->len;
  if (tail < MIN_READ) {
    size_t room = s->cap - s->len;
    if (s->pos > 0 && room >= MIN_READ && room >= s->cap / 4) {
      /* Cheaper to slide the data back than to grow. */
      memmove(s->buf, s->buf + s->pos, s->len);
      s->pos = 0;
    } else {
      size_t cap = s->cap ? s->cap * 2 : INITIAL_BUF;
      char *nb;
      while (cap - s->len < MIN_READ) cap *= 2;
      nb = (char *)malloc(cap);
      if (!nb) return;
      if (s->len) memcpy(nb, s->buf + s->pos, s->len);
      free(s->buf);
      s->buf = nb;
      s->cap = cap;
      s->pos = 0;
    }
  }
  out->base = s->buf + s->pos + s->len;
  out->len = s->cap - s->pos - s->len;
}

/* Is the sep the reader waits for in the buffer?  Searches only what was
** not searched before. */
static int sep_found(tide_stream_t *s) {
  const char *p;
  if (s->len < s->seplen) return 0;
  /* Only now: before the first read the buffer is NULL, and NULL + 0 is
  ** undefined behaviour (UBSan aborts on it). */
  p = s->buf + s->pos;
  if (memmem(p + s->scan, s->len - s->scan, s->sep, s->seplen)) return 1;
  s->scan = s->len - s->seplen + 1;
  return 0;
}

/* Has the waiting reader got what it waits for (or a final status)? */
static int reader_satisfied(tide_stream_t *s) {
  return s->rstatus != 0 || s->len >= s->need || (s->sep && sep_found(s));
}

static void on_read(uv_stream_t *hh, ssize_t n, const uv_buf_t *b) {
  /* owns nothing; the bytes are already in the stream's buffer */
  tide_stream_t *s = (tide_stream_t *)hh->data;
  (void)b;
  if (!s || n == 0) return;
  if (n > 0) {
    s->len += (size_t)n;
  } else {
    s->rstatus = (int)n;
    if (s->reading) uv_read_stop(hh);
    s->reading = 0;
  }
  if (s->reader) {
    if (!reader_satisfied(s)) return; /* it needs more: keep reading */
    tide_wait_wake(s->reader);
  }
  /* Nobody needs more than what is buffered: past the read-ahead mark,
  ** leave the rest to the kernel (and TCP flow control). */
  if (s->len >= s->read_ahead && s->reading) {
    uv_read_stop(hh);
    s->reading = 0;
  }
}

/* Read from the kernel exactly while someone wants the bytes: a waiting
** reader, or read-ahead below the mark once reading was asked for. */
static void update_reading(tide_stream_t *s) {
  int want = s->h && s->armed && s->rstatus == 0 &&
             (s->reader || s->len < s->read_ahead);
  if (want && !s->reading) {
    int r = uv_read_start(s->h, on_alloc, on_read);
    if (r < 0)
      s->rstatus = r;
    else
      s->reading = 1;
  } else if (!want && s->reading) {
    uv_read_stop(s->h);
    s->reading = 0;
  }
}

const char *tide_stream_buffered(tide_stream_t *s, size_t *len) {
  if (!s->armed && s->h) {
    s->armed = 1;
    update_reading(s);
  }
  *len = s->len;
  return s->buf ? s->buf + s->pos : "";
}

/* Drop n bytes from the front; an emptied large buffer is freed, and
** reading resumes if the buffer fell below the read-ahead mark. */
void tide_stream_consume(tide_stream_t *s, size_t n) {
  if (n > s->len) n = s->len;
  s->pos += n;
  s->len -= n;
  s->scan = 0;
  if (s->len == 0) {
    s->pos = 0;
    if (s->cap > KEEP_BUF) {
      /* A large transfer grew the buffer; do not keep it for an idle
      ** connection. */
      free(s->buf);
      s->buf = NULL;
      s->cap = 0;
    }
  }
  update_reading(s);
}

int tide_stream_read_status(const tide_stream_t *s) {
  if (!s->h) return TIDE_STREAM_CLOSED;
  return s->rstatus;
}

/* [-0, +0, v] */
int tide_stream_raise_status(lua_State *L, int status, const char *op) {
  if (status == TIDE_STREAM_CLOSED)
    return tide_error_raisef(L, "ECLOSED", op, "stream is closed");
  if (status == UV_EOF)
    return tide_error_raisef(L, "EPROTO", op, "unexpected end of stream");
  return tide_error_raise(L, status, op, NULL);
}

/* Cancel hook of a reader: forget it; the buffer keeps what arrived. */
static void reader_cancel(tide_wait_t *w) {
  tide_stream_t *s = (tide_stream_t *)w->data;
  if (s->reader == w) {
    s->reader = NULL;
    s->sep = NULL;
    update_reading(s);
  }
}

/* Resume of a reader: run the continuation on the task's stack. */
static int reader_resume(lua_State *L, tide_wait_t *w) {
  tide_stream_t *s = (tide_stream_t *)w->data;
  lua_CFunction again = s->again;
  if (s->reader == w) {
    s->reader = NULL;
    s->sep = NULL;
  }
  if (!s->h) return tide_stream_raise_status(L, TIDE_STREAM_CLOSED, NULL);
  /* Reading is re-evaluated when `again` consumes or waits; if it does
  ** neither, on_read stops at the next chunk over the read-ahead mark. */
  return again(L);
}

/* Suspend until `need` bytes or `sep` are buffered (or EOF, error, close),
** then return again(L). */
static int wait_read(lua_State *L, tide_stream_t *s, size_t need,
                     const char *sep, size_t seplen, lua_CFunction again,
                     const char *what) {
  tide_task_t *t;
  tide_wait_t *w;
  if (s->reader)
    return luaL_error(L, "%s: another task is reading this stream", what);
  t = tide_async_check(L, what);
  w = tide_task_self_wait(t);
  /* Not droppable: the reader pointer must be cleared by the resume or
  ** the cancel hook, never left behind. */
  tide_wait_init(w, reader_cancel, reader_resume, s, 0);
  s->reader = w;
  s->again = again;
  s->need = need;
  s->sep = sep;
  s->seplen = seplen;
  s->scan = 0;
  s->armed = 1;
  update_reading(s);
  if (reader_satisfied(s)) {
    /* Data or a failure arrived in the meantime (uv_read_start can fail
    ** at once): no need to suspend. */
    s->reader = NULL;
    s->sep = NULL;
    return again(L);
  }
  return tide_wait_yield(L, w, what);
}

/* The public form of wait_read: a byte count only.  [-0, +0, e] */
int tide_stream_wait_read(lua_State *L, tide_stream_t *s, size_t need,
                          lua_CFunction again, const char *what) {
  if (!s->h) return tide_stream_raise_status(L, TIDE_STREAM_CLOSED, what);
  if (s->rstatus != 0 || s->len >= need) return again(L);
  return wait_read(L, s, need, NULL, 0, again, what);
}

/* ---- writing ------------------------------------------------------------- */

static void wake_all(tide_waitq_t *q) {
  tide_wait_t *w;
  while ((w = tide_waitq_pop(q)) != NULL) tide_wait_wake(w);
}

/* Wake the writers whose condition holds: back-pressure waiters once the
** queue is at most the high-water mark, flushers once it is empty, all of
** them on a write error or close. */
static void wake_writers(tide_stream_t *s) {
  int failed = s->werr || !s->h;
  if (failed || s->queued <= s->high_water) wake_all(&s->writers);
  if (failed || s->queued == 0) wake_all(&s->flushers);
}

static void on_write(uv_write_t *req, int status) {
  /* owns req and its copy of the data; the stream may be closed */
  wreq_t *wr = (wreq_t *)req;
  tide_stream_t *s = (tide_stream_t *)req->handle->data;
  if (s) {
    s->queued -= wr->len;
    if (status < 0 && !s->werr) s->werr = status;
    if (s->writers.head || s->flushers.head) wake_writers(s);
  }
  free(wr);
}

/* Queue bufs: uv_try_write first when nothing is queued (order is kept
** because libuv refuses a try-write behind queued data), then one
** uv_write of a single copy of the rest, owned by its request. */
int tide_stream_writev(tide_stream_t *s, const uv_buf_t *bufs, unsigned nbufs) {
  size_t total = 0, done = 0, off;
  unsigned i;
  wreq_t *wr;
  uv_buf_t b;
  int r;
  if (!s->h) return TIDE_STREAM_CLOSED;
  if (s->werr) return s->werr;
  if (s->shut) return UV_EPIPE;
  for (i = 0; i < nbufs; i++) total += bufs[i].len;
  if (total == 0) return 0;
  if (total > UINT32_MAX) return UV_E2BIG; /* a uv_buf_t's length */
  if (s->queued == 0) {
    /* The fast path: most writes go straight into the kernel. */
    r = uv_try_write(s->h, bufs, nbufs);
    if (r >= 0) {
      done = (size_t)r;
      if (done == total) return 0;
    } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
      s->werr = r;
      return r;
    }
  }
  wr = (wreq_t *)malloc(sizeof *wr + (total - done));
  if (!wr) return UV_ENOMEM;
  wr->len = total - done;
  /* Copy what the kernel did not take. */
  off = 0;
  for (i = 0; i < nbufs; i++) {
    size_t l = bufs[i].len;
    if (done >= l) {
      done -= l;
      continue;
    }
    memcpy(wr->data + off, bufs[i].base + done, l - done);
    off += l - done;
    done = 0;
  }
  b = uv_buf_init(wr->data, (unsigned)wr->len);
  r = uv_write(&wr->req, s->h, &b, 1, on_write);
  if (r < 0) {
    free(wr);
    s->werr = r;
    return r;
  }
  s->queued += wr->len;
  return 0;
}

int tide_stream_write(tide_stream_t *s, const char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  return tide_stream_writev(s, &b, 1);
}

size_t tide_stream_write_queued(const tide_stream_t *s) {
  return s->queued;
}

/* Cancel hooks of writers: leave the waiter list (the data stays queued).
** The waits are the tasks' own, so there is nothing to free. */
static void writer_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((tide_stream_t *)w->data)->writers, w);
}

static void flusher_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((tide_stream_t *)w->data)->flushers, w);
}

/* Resume of a writer: the continuation was left on top of the stack. */
static int writer_resume(lua_State *L, tide_wait_t *w) {
  tide_stream_t *s = (tide_stream_t *)w->data;
  lua_CFunction again = lua_tocfunction(L, -1);
  lua_pop(L, 1);
  if (!s->h) return tide_stream_raise_status(L, TIDE_STREAM_CLOSED, NULL);
  if (s->werr) return tide_error_raise(L, s->werr, "stream.write", NULL);
  return again(L);
}

/* See stream.h.  [-0, +1 while waiting (the continuation), e] */
int tide_stream_wait_write(lua_State *L, tide_stream_t *s, int flush,
                           lua_CFunction again, const char *what) {
  tide_task_t *t;
  tide_wait_t *w;
  if (!s->h) return tide_stream_raise_status(L, TIDE_STREAM_CLOSED, what);
  if (s->werr) return tide_error_raise(L, s->werr, what, NULL);
  if (s->queued == 0 || (!flush && s->queued <= s->high_water)) return again(L);
  t = tide_async_check(L, what);
  w = tide_task_self_wait(t);
  /* Several tasks may wait, each with its own continuation: keep it on
  ** the waiting task's stack rather than in the stream. */
  lua_pushcfunction(L, again);
  tide_wait_init(w, flush ? flusher_cancel : writer_cancel, writer_resume, s,
                 0);
  tide_waitq_push(flush ? &s->flushers : &s->writers, w);
  return tide_wait_yield(L, w, what);
}

/* ---- life cycle ---------------------------------------------------------- */

/* A closed stream whose queued data is still being flushed.  Two libuv
** users hold it: the shutdown request (its callback always comes: on
** completion, or with UV_ECANCELED once the handle is closed) and the
** timer (until its close callback); the last one frees it.  Lingering
** records are listed per runtime so that closing the runtime can close
** them with their own callbacks, instead of the loop's teardown closing the
** handles without freeing them. */
struct lingering {
  linger_t *head;
};

struct flush_rec {
  uv_shutdown_t req; /* unused when a shutdown() was already in flight */
  uv_timer_t timer;
  uv_stream_t *h;    /* the handle being flushed */
  linger_t *prev, *next;
  lingering_t *owner; /* NULL once unlisted */
  int refs;
};

#define LINGERING_KEY "tide.stream.lingering"

/* Take a lingering record out of its runtime's list. */
static void linger_unlist(linger_t *lg) {
  if (!lg->owner) return;
  if (lg->prev)
    lg->prev->next = lg->next;
  else
    lg->owner->head = lg->next;
  if (lg->next) lg->next->prev = lg->prev;
  lg->owner = NULL;
}

/* One of the record's two libuv users is done; the last frees it. */
static void linger_unref(linger_t *lg) {
  if (--lg->refs == 0) free(lg);
}

static void on_linger_timer_closed(uv_handle_t *th) {
  /* owns one reference to the linger record */
  linger_unref(tide_container_of(th, linger_t, timer));
}

static void on_linger_timeout(uv_timer_t *th) {
  /* owns nothing; a peer that does not read may not hold the socket
  ** forever: close it, which cancels the shutdown */
  linger_t *lg = tide_container_of(th, linger_t, timer);
  uv_handle_t *hh = (uv_handle_t *)lg->h;
  if (!uv_is_closing(hh)) uv_close(hh, on_close_free);
}

/* The shutdown of a lingering stream ended (flushed, or cancelled by the
** close of the handle): close the handle and the timer. */
static void linger_done(linger_t *lg) {
  /* owns one reference to the linger record; the stream record is gone
  ** and the handle is ours to close */
  uv_handle_t *hh = (uv_handle_t *)lg->h;
  linger_unlist(lg);
  if (!uv_is_closing(hh)) uv_close(hh, on_close_free);
  if (!uv_is_closing((uv_handle_t *)&lg->timer))
    uv_close((uv_handle_t *)&lg->timer, on_linger_timer_closed);
  linger_unref(lg);
}

static void on_linger_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  linger_done((linger_t *)req);
}

/* __gc of the runtime's list of lingering streams (the Lua state is
** closing): give up on the flushes. */
static int lingering__gc(lua_State *L) {
  lingering_t *ls = (lingering_t *)lua_touserdata(L, 1);
  while (ls->head) {
    linger_t *lg = ls->head;
    uv_handle_t *hh = (uv_handle_t *)lg->h;
    linger_unlist(lg);
    if (!uv_is_closing(hh)) uv_close(hh, on_close_free);
    if (!uv_is_closing((uv_handle_t *)&lg->timer))
      uv_close((uv_handle_t *)&lg->timer, on_linger_timer_closed);
  }
  return 0;
}

/* The runtime's list of lingering streams, made on first use.
** [-0, +0, m] */
static lingering_t *lingering_of(lua_State *L) {
  lingering_t *ls;
  if (lua_getfield(L, LUA_REGISTRYINDEX, LINGERING_KEY) == LUA_TUSERDATA) {
    ls = (lingering_t *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return ls;
  }
  lua_pop(L, 1);
  ls = (lingering_t *)lua_newuserdatauv(L, sizeof *ls, 0);
  ls->head = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, lingering__gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, LINGERING_KEY);
  return ls;
}

/* Close (see stream.h): stop reading, free the buffer, wake the waiting
** tasks, and either close the handle or, with data queued, let it flush
** under the linger timer.  Runs no Lua, so __gc may call it. */
void tide_stream_close(tide_stream_t *s) {
  uv_stream_t *hh = s->h;
  if (!hh) return;
  if (s->reading) uv_read_stop(hh);
  s->reading = 0;
  s->h = NULL;
  hh->data = NULL;
  free(s->buf);
  s->buf = NULL;
  s->cap = s->pos = s->len = 0;
  /* Tasks waiting on the stream get ECLOSED; during runtime teardown they
  ** were cancelled already and must not be touched. */
  if (!s->rt->closing) {
    if (s->reader) tide_wait_wake(s->reader);
    wake_all(&s->writers);
    wake_all(&s->flushers);
  }
  if (s->queued > 0 && (!s->shut || s->shutting) && !s->rt->closing) {
    /* Flush what is queued, then close: uv_shutdown completes after the
    ** queued writes, or the linger timer gives up on the peer.  A
    ** shutdown() still in flight (its task was cancelled, or it still
    ** waits) is that shutdown already: its callback ends the linger, as
    ** libuv allows only one. */
    linger_t *lg = (linger_t *)malloc(sizeof *lg);
    if (lg && (s->shutting ||
               uv_shutdown(&lg->req, hh, on_linger_shutdown) == 0)) {
      if (s->shutting) s->shutting->lg = lg;
      lg->h = hh;
      lg->refs = 2;
      lg->prev = NULL;
      lg->owner = s->lingering;
      lg->next = s->lingering->head;
      if (lg->next) lg->next->prev = lg;
      s->lingering->head = lg;
      uv_timer_init(hh->loop, &lg->timer);
      uv_timer_start(&lg->timer, on_linger_timeout, s->linger_ms, 0);
      return;
    }
    free(lg);
  }
  uv_close((uv_handle_t *)hh, on_close_free);
}

/* Create the userdata (in protected mode: the handle must not leak if
** this raises).  [-0, +1, m] */
static int new_ud(lua_State *L) {
  tide_stream_t *s =
      (tide_stream_t *)lua_newuserdatauv(L, sizeof(tide_stream_t), 0);
  memset(s, 0, sizeof *s);
  s->lingering = lingering_of(L);
  if (luaL_getmetatable(L, TIDE_STREAM_MT) == LUA_TNIL) {
    lua_pop(L, 1);
    tide_stream_open(L);
    luaL_getmetatable(L, TIDE_STREAM_MT);
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* Wrap a connected handle in a new Stream (see stream.h).  [-0, +1, m] */
tide_stream_t *tide_stream_new(lua_State *L, uv_stream_t *handle) {
  tide_stream_t *s;
  lua_pushcfunction(L, new_ud);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    handle->data = NULL;
    uv_close((uv_handle_t *)handle, on_close_free);
    lua_error(L);
  }
  s = (tide_stream_t *)lua_touserdata(L, -1);
  s->h = handle;
  s->rt = tide__rt(L);
  s->read_ahead = TIDE_STREAM_READ_AHEAD;
  s->high_water = TIDE_STREAM_HIGH_WATER;
  s->max_line = TIDE_STREAM_MAX_LINE;
  s->linger_ms = TIDE_STREAM_LINGER_MS;
  s->kind = handle->type == UV_TCP   ? KIND_TCP
            : handle->type == UV_TTY ? KIND_TTY
                                     : KIND_PIPE;
  handle->data = s;
  return s;
}

tide_stream_t *tide_stream_to(lua_State *L, int idx) {
  return (tide_stream_t *)luaL_testudata(L, idx, TIDE_STREAM_MT);
}

tide_stream_t *tide_stream_check(lua_State *L, int idx, const char *op) {
  tide_stream_t *s = (tide_stream_t *)luaL_checkudata(L, idx, TIDE_STREAM_MT);
  if (tide_unlikely(!s->h)) tide_stream_raise_status(L, TIDE_STREAM_CLOSED, op);
  return s;
}

uv_stream_t *tide_stream_handle(tide_stream_t *s) {
  return s->h;
}
int tide_stream_closed(const tide_stream_t *s) {
  return s->h == NULL;
}

void tide_stream_set_limits(tide_stream_t *s, size_t read_ahead,
                            size_t high_water, size_t max_line) {
  if (read_ahead) s->read_ahead = read_ahead;
  if (high_water) s->high_water = high_water;
  if (max_line) s->max_line = max_line;
  if (s->h) update_reading(s);
  if (s->writers.head || s->flushers.head) wake_writers(s);
}

void tide_stream_set_linger(tide_stream_t *s, uint64_t ms) {
  s->linger_ms = ms;
}

/* Push the peer's or local address.  [-0, +1|+2, m] */
int tide_stream_push_addr(lua_State *L, tide_stream_t *s, int peer) {
  int r;
  if (!s->h) {
    r = UV_EBADF;
  } else if (s->kind == KIND_TCP) {
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    char host[INET6_ADDRSTRLEN];
    r = peer
            ? uv_tcp_getpeername((uv_tcp_t *)s->h, (struct sockaddr *)&ss, &len)
            : uv_tcp_getsockname((uv_tcp_t *)s->h, (struct sockaddr *)&ss,
                                 &len);
    if (r == 0) {
      if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof host);
        lua_pushstring(L, host);
        lua_pushinteger(L, ntohs(a->sin6_port));
      } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof host);
        lua_pushstring(L, host);
        lua_pushinteger(L, ntohs(a->sin_port));
      }
      return 2;
    }
  } else if (s->kind == KIND_PIPE) {
    char path[1024];
    size_t len = sizeof path;
    r = peer ? uv_pipe_getpeername((uv_pipe_t *)s->h, path, &len)
             : uv_pipe_getsockname((uv_pipe_t *)s->h, path, &len);
    if (r == 0) {
      lua_pushlstring(L, path, len);
      return 1;
    }
  } else {
    r = UV_ENOTSOCK;
  }
  lua_pushnil(L);
  lua_pushstring(L, uv_err_name(r));
  return 2;
}

/* ---- Lua methods --------------------------------------------------------- */

#define S(L) tide_stream_check(L, 1, NULL)

/* Push the first n buffered bytes as a string and consume them. */
static void take(lua_State *L, tide_stream_t *s, size_t n, size_t drop) {
  lua_pushlstring(L, s->buf ? s->buf + s->pos : "", n);
  tide_stream_consume(s, n + drop);
}

/* s:read([n]) -> up to n bytes (default: what is buffered, at most
** TIDE_STREAM_MAX_READ), or nil at end of stream. */
static int stream_read(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "stream.read");
  lua_Integer n = luaL_optinteger(L, 2, TIDE_STREAM_MAX_READ);
  luaL_argcheck(L, n > 0, 2, "must be positive");
  if (s->len > 0) {
    take(L, s, s->len < (size_t)n ? s->len : (size_t)n, 0);
    return 1;
  }
  if (s->rstatus == UV_EOF) {
    lua_pushnil(L);
    return 1;
  }
  if (s->rstatus) return tide_error_raise(L, s->rstatus, "stream.read", NULL);
  return wait_read(L, s, 1, NULL, 0, stream_read, "stream.read");
}

/* Raise EPROTO for an early end of stream, carrying the bytes that did
** arrive in the error's `partial` field (they are consumed). */
static int raise_partial(lua_State *L, tide_stream_t *s, const char *op,
                         const char *msg) {
  tide_error_push(L, "EPROTO", op, NULL, msg);
  take(L, s, s->len, 0);
  lua_setfield(L, -2, "partial");
  return lua_error(L);
}

/* s:read_exactly(n) -> exactly n bytes; EPROTO on an early end. */
static int stream_read_exactly(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "stream.read_exactly");
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "must not be negative");
  if (s->len >= (size_t)n) {
    take(L, s, (size_t)n, 0);
    return 1;
  }
  if (s->rstatus == UV_EOF)
    return raise_partial(L, s, "stream.read_exactly",
                         "end of stream before all bytes arrived");
  if (s->rstatus)
    return tide_error_raise(L, s->rstatus, "stream.read_exactly", NULL);
  return wait_read(L, s, (size_t)n, NULL, 0, stream_read_exactly,
                   "stream.read_exactly");
}

/* The shared body of read_line and read_until: find sep within max bytes.
** Returns 1 with the result pushed, 0 when it must wait, or raises. */
static int until(lua_State *L, tide_stream_t *s, const char *sep, size_t seplen,
                 size_t max, int line, const char *op) {
  const char *p = s->buf ? s->buf + s->pos : "";
  const char *hit = s->len >= seplen ? memmem(p, s->len, sep, seplen) : NULL;
  if (hit) {
    size_t n = (size_t)(hit - p), keep = n;
    if (n > max) goto too_long;
    if (line && keep > 0 && p[keep - 1] == '\r') keep--;
    take(L, s, keep, n - keep + seplen);
    return 1;
  }
  if (s->len >= max + seplen) goto too_long;
  if (s->rstatus == UV_EOF) {
    if (s->len == 0) {
      lua_pushnil(L);
      return 1;
    }
    if (line) {
      /* Like io.read("l"): the last line may lack its terminator. */
      take(L, s, s->len, 0);
      return 1;
    }
    return raise_partial(L, s, op, "end of stream before the separator");
  }
  if (s->rstatus) return tide_error_raise(L, s->rstatus, op, NULL);
  return 0;
too_long:
  return tide_error_raisef(L, "EPROTO", op, "%s longer than %d bytes",
                           line ? "line" : "data before the separator",
                           (int)max);
}

/* s:read_line() -> the next line without its "\n" (and a "\r" before it),
** or nil at end of stream. */
static int stream_read_line(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "stream.read_line");
  if (until(L, s, "\n", 1, s->max_line, 1, "stream.read_line")) return 1;
  return wait_read(L, s, s->max_line + 1, "\n", 1, stream_read_line,
                   "stream.read_line");
}

/* s:read_until(sep [, max]) -> the bytes before sep (sep is consumed), or
** nil at end of stream; EPROTO if more than max bytes come before sep or
** the stream ends in the middle. */
static int stream_read_until(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "stream.read_until");
  size_t seplen;
  const char *sep = luaL_checklstring(L, 2, &seplen);
  lua_Integer max = luaL_optinteger(L, 3, (lua_Integer)s->max_line);
  luaL_argcheck(L, seplen > 0, 2, "empty separator");
  luaL_argcheck(L, max >= 0, 3, "must not be negative");
  if (until(L, s, sep, seplen, (size_t)max, 0, "stream.read_until")) return 1;
  return wait_read(L, s, (size_t)max + seplen, sep, seplen, stream_read_until,
                   "stream.read_until");
}

/* The iterator of s:chunks(n): read(s, n), ignoring the loop's control
** value.  Upvalue 1 is n. */
static int chunks_iter(lua_State *L) {
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  return stream_read(L);
}

/* s:chunks([n]) -> iterator over read(n) until end of stream, for
** `for chunk in s:chunks() do ... end`.  [-0, +2, e] */
static int stream_chunks(lua_State *L) {
  lua_Integer n;
  S(L);
  n = luaL_optinteger(L, 2, TIDE_STREAM_MAX_READ);
  luaL_argcheck(L, n > 0, 2, "must be positive");
  lua_pushinteger(L, n);
  lua_pushcclosure(L, chunks_iter, 1);
  lua_pushvalue(L, 1);
  return 2;
}

/* s:lines() -> iterator over read_line() until end of stream (read_line
** ignores the loop's control value).  [-0, +2, e] */
static int stream_lines(lua_State *L) {
  S(L);
  lua_pushcfunction(L, stream_read_line);
  lua_pushvalue(L, 1);
  return 2;
}

static int return_self(lua_State *L) {
  lua_settop(L, 1);
  return 1;
}

/* s:write(data) -> s; suspends while the queue is over the high-water
** mark.  The data is queued before any wait, so a cancelled write still
** goes out. */
static int stream_write(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "stream.write");
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int r = tide_stream_write(s, data, len);
  if (r < 0) return tide_error_raise(L, r, "stream.write", NULL);
  if (s->queued <= s->high_water) return return_self(L);
  return tide_stream_wait_write(L, s, 0, return_self, "stream.write");
}

/* s:flush() -> s once every queued byte went to the kernel. */
static int stream_flush(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "stream.flush");
  return tide_stream_wait_write(L, s, 1, return_self, "stream.flush");
}

static void shutdown_cancel(tide_wait_t *w) {
  /* the shutdown cannot be stopped: its callback frees the request */
  (void)w;
}

static int shutdown_resume(lua_State *L, tide_wait_t *w) {
  shutreq_t *sr = (shutreq_t *)w->data;
  tide_stream_t *s = sr->s;
  int st = sr->status;
  free(sr);
  if (!s->h)
    return tide_stream_raise_status(L, TIDE_STREAM_CLOSED, "stream.shutdown");
  if (st < 0) return tide_error_raise(L, st, "stream.shutdown", NULL);
  return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  /* owns req unless a task still waits for it */
  shutreq_t *sr = (shutreq_t *)req;
  tide_stream_t *s = (tide_stream_t *)req->handle->data;
  if (s) s->shutting = NULL; /* the stream is still open */
  if (sr->lg) linger_done(sr->lg);
  if (!sr->wait.task) {
    free(sr);
    return;
  }
  sr->status = status;
  tide_wait_wake(&sr->wait);
}

/* s:shutdown(): send EOF to the peer once the queued data is out; reading
** goes on. */
static int stream_shutdown(lua_State *L) {
  tide_stream_t *s = tide_stream_check(L, 1, "stream.shutdown");
  shutreq_t *sr;
  int r;
  if (s->shut) return 0;
  tide_async_check(L, "stream.shutdown");
  sr = (shutreq_t *)malloc(sizeof *sr);
  if (!sr) return tide_error_raise(L, UV_ENOMEM, "stream.shutdown", NULL);
  r = uv_shutdown(&sr->req, s->h, on_shutdown);
  if (r < 0) {
    free(sr);
    return tide_error_raise(L, r, "stream.shutdown", NULL);
  }
  s->shut = 1;
  s->shutting = sr;
  sr->s = s;
  sr->lg = NULL;
  sr->status = 0;
  tide_wait_init(&sr->wait, shutdown_cancel, shutdown_resume, sr, 0);
  return tide_wait_yield(L, &sr->wait, "stream.shutdown");
}

/* close(), __close and __gc. */
static int stream_close(lua_State *L) {
  tide_stream_t *s = (tide_stream_t *)luaL_checkudata(L, 1, TIDE_STREAM_MT);
  tide_stream_close(s);
  return 0;
}

static int stream_closed(lua_State *L) {
  tide_stream_t *s = (tide_stream_t *)luaL_checkudata(L, 1, TIDE_STREAM_MT);
  lua_pushboolean(L, s->h == NULL);
  return 1;
}

static int stream_peer(lua_State *L) {
  return tide_stream_push_addr(L, S(L), 1);
}

static int stream_local(lua_State *L) {
  return tide_stream_push_addr(L, S(L), 0);
}

/* The TCP handle of s, or an argument error.  [-0, +0, v] */
static uv_tcp_t *check_tcp(lua_State *L, tide_stream_t *s) {
  if (s->kind != KIND_TCP) luaL_argerror(L, 1, "not a TCP stream");
  return (uv_tcp_t *)s->h;
}

/* s:nodelay([on=true]) */
static int stream_nodelay(lua_State *L) {
  tide_stream_t *s = S(L);
  int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  int r = uv_tcp_nodelay(check_tcp(L, s), on);
  if (r < 0) return tide_error_raise(L, r, "stream.nodelay", NULL);
  return return_self(L);
}

/* s:keepalive([on=true [, delay=60]]) */
static int stream_keepalive(lua_State *L) {
  tide_stream_t *s = S(L);
  int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  lua_Integer delay = luaL_optinteger(L, 3, 60);
  int r;
  luaL_argcheck(L, delay > 0, 3, "must be positive");
  r = uv_tcp_keepalive(check_tcp(L, s), on, (unsigned)delay);
  if (r < 0) return tide_error_raise(L, r, "stream.keepalive", NULL);
  return return_self(L);
}

/* Field k of the limits table at 2: a positive integer, or 0 when
** absent.  [-0, +0, v] */
static size_t opt_size(lua_State *L, const char *k) {
  lua_Integer v;
  if (lua_getfield(L, 2, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tointeger(L, -1);
  if (v <= 0) luaL_error(L, "bad limit '%s' (positive integer expected)", k);
  lua_pop(L, 1);
  return (size_t)v;
}

/* s:limits{read_ahead=, high_water=, max_line=, linger=} -> s */
static int stream_limits(lua_State *L) {
  tide_stream_t *s = S(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lua_getfield(L, 2, "linger") != LUA_TNIL) {
    lua_Number secs = lua_tonumber(L, -1);
    if (!(secs >= 0 && secs < 1e9))
      luaL_error(L, "bad limit 'linger' (seconds expected)");
    tide_stream_set_linger(s, (uint64_t)(secs * 1000));
  }
  lua_pop(L, 1);
  tide_stream_set_limits(s, opt_size(L, "read_ahead"),
                         opt_size(L, "high_water"), opt_size(L, "max_line"));
  return return_self(L);
}

static int stream__tostring(lua_State *L) {
  tide_stream_t *s = (tide_stream_t *)luaL_checkudata(L, 1, TIDE_STREAM_MT);
  static const char *const kinds[] = {"tcp", "pipe", "tty"};
  lua_pushfstring(L, "tide.Stream (%s%s)", kinds[s->kind],
                  s->h ? "" : ", closed");
  return 1;
}

static const luaL_Reg stream_methods[] = {
    {"read", stream_read},           {"read_exactly", stream_read_exactly},
    {"read_line", stream_read_line}, {"read_until", stream_read_until},
    {"chunks", stream_chunks},       {"lines", stream_lines},
    {"write", stream_write},         {"flush", stream_flush},
    {"shutdown", stream_shutdown},   {"close", stream_close},
    {"closed", stream_closed},       {"peer", stream_peer},
    {"local_addr", stream_local},    {"local", stream_local},
    {"nodelay", stream_nodelay},     {"keepalive", stream_keepalive},
    {"limits", stream_limits},       {NULL, NULL},
};

static const luaL_Reg stream_meta[] = {{"__gc", stream_close},
                                       {"__close", stream_close},
                                       {"__tostring", stream__tostring},
                                       {NULL, NULL}};

void tide_stream_open(lua_State *L) {
  struct sigaction sa;
  if (!luaL_newmetatable(L, TIDE_STREAM_MT)) {
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, stream_meta, 0);
  luaL_newlib(L, stream_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  /* A write to a socket the peer closed must fail with EPIPE, not kill
  ** the process: libuv leaves SIGPIPE alone, so ignore it unless the host
  ** installed a handler of its own. */
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}
