/*
** http_server.c: the C half of tide.http's HTTP/1.1 server (module
** tide.http_server).  It owns the listening socket (a Listener: a malloced
** uv_tcp_t, freed in its close callback once no connection refers to it),
** the connection limit, graceful close, and one Conn per accepted
** connection: a userdata holding the request parser (stdlib/http_parser.c)
** over the connection's tide.Stream, the header/idle deadline, and the
** response serialiser (status line, a cached Date header, Content-Length or
** chunked framing, keep-alive decisions).  The Lua half (stdlib/http.lua)
** runs one task per connection that loops recv -> handler -> respond.
**
** The parser runs in place over the Stream's read buffer, on the
** connection's task, inside recv() and body(); libuv callbacks only buffer
** bytes and wake the task.  Responses go out with one uv_try_write when the
** socket takes them.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "internal.h"
#include "stream.h"
#include "http_wire.h"
#include "../vm/compat.h"

#define LISTENER_MT "tide.http.Listener"
#define CONN_MT "tide.http.Conn"

/* ---- response serialisation ---------------------------------------------- */

/* Reason phrases of the statuses handlers commonly send (RFC 9110). */
static const struct {
  int status;
  const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

static const char *reason(int status) {
  size_t i;
  for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].status == status) return reasons[i].text;
  return "Unknown";
}

/* A growable output buffer for response heads. */
typedef struct {
  char *p;
  size_t len, cap;
} obuf_t;

static void ob_grow(lua_State *L, obuf_t *b, size_t n) {
  if (tide__grow(&b->p, &b->cap, b->len + n) < 0)
    luaL_error(L, "out of memory");
}

static inline void ob_add(lua_State *L, obuf_t *b, const char *s, size_t n) {
  if (b->len + n > b->cap) ob_grow(L, b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

#define ob_lit(L, b, s) ob_add((L), (b), "" s, sizeof(s) - 1)

static void ob_str(lua_State *L, obuf_t *b, const char *s) {
  ob_add(L, b, s, strlen(s));
}

/* Decimal digits without printf: this runs for every response. */
static void ob_uint(lua_State *L, obuf_t *b, unsigned long long v) {
  char tmp[24];
  char *p = tmp + sizeof tmp;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  ob_add(L, b, p, (size_t)(tmp + sizeof tmp - p));
}

/* The Date header value, rebuilt at most once per second of loop time. */
typedef struct {
  uint64_t sec;
  char text[32];
} date_cache_t;

static const char *http_date(date_cache_t *d, uv_loop_t *loop) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
  uint64_t sec = uv_now(loop) / 1000 + 1;
  if (sec != d->sec) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(d->text, sizeof d->text, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    d->sec = sec;
  }
  return d->text;
}

/* Does a header name or value carry bytes that would split the response? */
static int bad_header_text(const char *s, size_t n, int is_name) {
  size_t i;
  if (is_name && n == 0) return 1;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\r' || ch == '\n' || ch == 0) return 1;
    if (is_name && (ch <= ' ' || ch == ':' || ch >= 127)) return 1;
  }
  return 0;
}

/* ---- listener and connections -------------------------------------------- */

typedef struct listener listener_t;
typedef struct conn conn_t;

struct listener {
  uv_tcp_t tcp; /* the listening handle; this record is malloced
                   and freed once the handle is closed and no
                   connection refers to it */
  tide_runtime_t *rt;
  limits_t lim;
  tide_wait_t *waiter; /* the task blocked in accept() */
  int pending;         /* libuv holds an accepted fd for us */
  int accept_err;
  int closed, handle_closed;
  int nconns;
  conn_t *conns; /* open connections */
  date_cache_t date;
};

/* What the conn's deadline guards. */
enum { TK_NONE, TK_IDLE, TK_HEAD, TK_BODY, TK_WRITE };

/* Wait names.  The deadline interrupts its task only while the task still
** waits under one of these (compared by address). */
static const char WHAT_RECV[] = "http.recv";
static const char WHAT_BODY[] = "http.body";
static const char WHAT_WRITE[] = "http.write";

/* A connection; lives in the Conn userdata, whose uservalue keeps its
** Stream alive. */
struct conn {
  rp_t rp;
  tide_stream_t *s; /* NULL once closed */
  listener_t *srv;  /* NULL once unlinked */
  conn_t *prev, *next;
  tide_runtime_t *rt;
  tide_timer_t timer;      /* idle, header, body or write deadline */
  tide_task_t *timer_task; /* the task the deadline interrupts */
  int timer_kind;
  int werr;
  int in_response; /* a request was handed out and its response is
                      not complete */
  int keep;        /* keep the connection after this response */
  int head_only;   /* HEAD request: no body bytes */
  int http10;
  int chunked; /* streaming a chunked body */
  int continue_sent;
  int draining; /* the listener is closing */
  int closed;
  uint64_t due;      /* loop time (ms) the current head must be
                        complete by; 0 while no byte of it came */
  uint64_t deadline; /* loop time (ms) the armed deadline expires */
  obuf_t out;        /* the response head being built */
};

typedef struct {
  listener_t *l;
} listener_ud;

/* Uservalues of a Conn userdata. */
enum {
  CONN_UV_STREAM = 1,
  CONN_UV_REQ,
  CONN_UV_META,
  CONN_UV_REMOTE,
  CONN_NUV = 4
};

/* The deadline expired.  An expired head gets its 408 here; the task is
** interrupted with ETIMEDOUT if it still waits where the deadline was set.
** Runs no Lua. */
static void timer_fire(tide_timer_t *tm) {
  conn_t *c = tide_container_of(tm, conn_t, timer);
  tide_task_t *t = c->timer_task;
  const char *what = c->timer_kind == TK_WRITE  ? WHAT_WRITE
                     : c->timer_kind == TK_BODY ? WHAT_BODY
                                                : WHAT_RECV;
  uint64_t now = uv_now(c->rt->loop);
  if (!c->s || c->timer_kind == TK_NONE) return;
  if (now < c->deadline) {
    /* The deadline moved since the node was armed: sleep again. */
    tide__timer_start(c->rt, &c->timer, (double)(c->deadline - now) / 1000.0);
    return;
  }
  c->timer_task = NULL;
  if (c->timer_kind == TK_HEAD) {
    static const char resp[] =
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n"
        "Content-Length: 16\r\nConnection: close\r\n\r\nRequest Timeout\n";
    tide_stream_write(c->s, resp, sizeof resp - 1);
  }
  c->keep = 0;
  if (t && t->status == TIDE_TASK_WAITING && t->wait && t->wait->what == what)
    tide__task_interrupt(t, TIDE_WAKE_TIMEDOUT);
}

/* Deadlines are lazy: arming moves c->deadline and starts the heap node
** only when it is not running or would fire too late; stopping only
** forgets the kind.  A node that fires early re-arms itself.  So a
** keep-alive request costs a few stores, not a heap insert and removal. */
static void timer_arm(lua_State *L, conn_t *c, int kind, double secs) {
  uint64_t due = uv_now(c->rt->loop) + (uint64_t)(secs * 1000.0);
  c->timer_kind = kind;
  c->timer_task = tide_task_current(L);
  c->deadline = due;
  /* The node's due time comes from a fresher clock than uv_now: allow it
  ** to be late by a little before restarting it. */
  if (c->timer.index < 0 || c->timer.due > due + 50)
    tide__timer_start(c->rt, &c->timer, secs);
}

static void timer_stop(conn_t *c) {
  c->timer_task = NULL;
  c->timer_kind = TK_NONE;
}

static void listener_maybe_free(listener_t *l) {
  if (l->handle_closed && !l->conns) free(l);
}

/* Take the conn out of its listener's list and count. */
static void conn_unlink(conn_t *c) {
  listener_t *l = c->srv;
  if (!l) return;
  if (c->prev)
    c->prev->next = c->next;
  else
    l->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->srv = NULL;
  l->nconns--;
  /* A slot is free: an accept() waiting for capacity may go on. */
  if (l->waiter && l->pending) {
    tide_wait_t *w = l->waiter;
    l->waiter = NULL;
    tide_wait_wake(w);
  }
  listener_maybe_free(l);
}

/* close(), __close and __gc: stop the deadline, leave the listener, close
** the Stream (which flushes queued output in the background). */
static void conn_close_now(conn_t *c) {
  if (c->closed) return;
  c->closed = 1;
  timer_stop(c);
  if (c->timer.index >= 0) tide__timer_stop(c->rt, &c->timer);
  conn_unlink(c);
  if (c->s) tide_stream_close(c->s);
  c->s = NULL;
  tide__rp_free(&c->rp);
  free(c->out.p);
  c->out.p = NULL;
  c->out.len = c->out.cap = 0;
}

/* The Conn at index 1.  Conn methods carry the metatable as upvalue 1,
** which is cheaper to compare than luaL_checkudata's registry lookup on a
** path taken twice per request. */
static conn_t *to_conn(lua_State *L) {
  conn_t *c = (conn_t *)lua_touserdata(L, 1);
  int ok =
      c && lua_getmetatable(L, 1) && lua_rawequal(L, -1, lua_upvalueindex(1));
  if (c && ok) lua_pop(L, 1);
  if (!ok) luaL_typeerror(L, 1, CONN_MT);
  return c;
}

static conn_t *check_conn(lua_State *L, int idx) {
  conn_t *c = to_conn(L);
  (void)idx;
  if (c->closed) luaL_error(L, "attempt to use a closed connection");
  return c;
}

/* Queue output on the Stream; a failure is remembered and ends the
** connection after this response. */
static void conn_write(conn_t *c, uv_buf_t *bufs, unsigned nbufs) {
  int r;
  if (!c->s || c->werr) return;
  r = tide_stream_writev(c->s, bufs, nbufs);
  if (r < 0) {
    c->werr = r;
    c->keep = 0;
  }
}

/* The Date value: the listener's cache, shared by its connections (an open
** conn is always linked to its listener, which outlives it). */
static const char *conn_date(conn_t *c) {
  return http_date(&c->srv->date, c->rt->loop);
}

/* A short error response, sent before closing (400, 408, 413, 431). */
static void conn_send_error(conn_t *c, int status) {
  char head[256];
  const char *why = reason(status);
  uv_buf_t b;
  int n;
  c->keep = 0;
  if (!c->s) return;
  n = snprintf(head, sizeof head,
               "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain"
               "\r\nContent-Length: %u\r\nConnection: close\r\n\r\n%s\n",
               status, why, conn_date(c), (unsigned)strlen(why) + 1, why);
  b = uv_buf_init(head, (unsigned)n);
  conn_write(c, &b, 1);
}

/* ---- Conn: recv ---------------------------------------------------------- */

/* Push the req table for the head now in the conn's parser; it becomes the
** conn's current request. [-0, +1, m] */
static int conn_push_request(lua_State *L, conn_t *c) {
  rp_t *rp = &c->rp;
  tide__rp_push_request(L, rp, 0); /* headers are lazy: req__index */
  lua_getiuservalue(L, 1, CONN_UV_META);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, CONN_UV_REQ);
  c->in_response = 1;
  c->due = 0;
  c->keep = rp->keep_alive && !c->draining;
  c->head_only = rp->hp.method == HTTP_HEAD;
  c->http10 = !(rp->hp.http_major == 1 && rp->hp.http_minor >= 1);
  c->continue_sent = 0;
  c->chunked = 0;
  return 1;
}

/* The body of recv(), run at the call and whenever bytes arrive: parse
** what is buffered; hand out a head, answer a bad one, or wait for more
** under the idle or header deadline. */
static int recv_again(lua_State *L) {
  conn_t *c = (conn_t *)lua_touserdata(L, 1);
  tide_stream_t *s = c->s;
  rp_t *rp = &c->rp;
  const char *data;
  size_t len, left;
  int st, r, idle;
  uint64_t now;
  timer_stop(c);
  /* A response left unfinished, or one that said "close", ends the
  ** connection; so do socket errors. */
  if (!s || c->in_response || !c->keep || c->werr) return 0;
  data = tide_stream_buffered(s, &len);
  st = tide_stream_read_status(s);
  tide__rp_input(rp, data, len);
  r = tide__rp_next_head(rp, st != 0);
  left = len - rp->off;
  tide_stream_consume(s, rp->off);
  tide__rp_input(rp, NULL, 0);
  if (r == STEP_OK) return conn_push_request(L, c);
  if (r == STEP_ERROR) {
    /* A bad or oversized body the handler left unread belongs to a
    ** request that has its response already: just close. */
    if (rp->err_in_body)
      c->keep = 0;
    else
      conn_send_error(c, rp->err_status ? rp->err_status : 400);
    return 0;
  }
  /* Idle: not one byte of a next request, not even the blank lines a
  ** client may send between requests (which must not keep a connection
  ** open past the header deadline either). */
  idle = rp->state == RP_IDLE && left == 0 && rp->head_bytes == 0;
  if (st != 0) {
    if (!idle && st == UV_EOF) conn_send_error(c, 400);
    return 0;
  }
  if (idle) {
    if (c->draining) return 0;
    c->due = 0;
    timer_arm(L, c, TK_IDLE, rp->lim.idle_timeout);
  } else {
    now = uv_now(c->rt->loop);
    if (!c->due) c->due = now + (uint64_t)(rp->lim.header_timeout * 1000.0);
    if (c->due <= now) {
      conn_send_error(c, 408);
      return 0;
    }
    timer_arm(L, c, TK_HEAD, (double)(c->due - now) / 1000.0);
  }
  return tide_stream_wait_read(L, s, left + 1, recv_again, WHAT_RECV);
}

/* conn:recv() -> the next request (a req table), or nil when the
** connection is done: the peer closed it, a malformed request was answered
** with a 4xx, or the last response closed it.  Raises ETIMEDOUT when the
** idle or header deadline passes (a late head was answered with 408), and
** ECLOSED when the server closed the idle connection. */
static int conn_recv(lua_State *L) {
  conn_t *c = to_conn(L);
  lua_settop(L, 1);
  if (c->closed) return 0;
  return recv_again(L);
}

/* ---- req:body() ---------------------------------------------------------- */

static int body_again(lua_State *L) {
  conn_t *c = (conn_t *)lua_touserdata(L, lua_upvalueindex(1));
  tide_stream_t *s = c->s;
  rp_t *rp = &c->rp;
  const char *data;
  size_t len, left;
  int st, r;
  timer_stop(c);
  if (!s)
    return tide_error_raisef(L, "ECLOSED", "http.body", "connection closed");
  if (rp->state == RP_BODY && rp->expect_continue && !c->continue_sent) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
    c->continue_sent = 1;
    conn_write(c, &b, 1);
  }
  data = tide_stream_buffered(s, &len);
  st = tide_stream_read_status(s);
  tide__rp_input(rp, data, len);
  r = tide__rp_read_body(rp, st != 0);
  left = len - rp->off;
  tide_stream_consume(s, rp->off);
  tide__rp_input(rp, NULL, 0);
  if (r == STEP_OK) {
    lua_pushlstring(L, rp->body ? rp->body : "", rp->blen);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, 1, (void *)WHAT_BODY); /* cached on the req table */
    return 1;
  }
  c->keep = 0;
  if (r == STEP_ERROR) return tide__rp_raise(L, rp, "http.body");
  if (st != 0) return tide_stream_raise_status(L, st, "http.body");
  c->keep = 1;
  timer_arm(L, c, TK_BODY, rp->lim.idle_timeout);
  return tide_stream_wait_read(L, s, left + 1, body_again, WHAT_BODY);
}

/* req:body() -> the request body as a string (read on first call).
** Upvalue 1: the Conn. */
static int req_body(lua_State *L) {
  conn_t *c = (conn_t *)lua_touserdata(L, lua_upvalueindex(1));
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (lua_rawgetp(L, 1, (void *)WHAT_BODY) == LUA_TSTRING) return 1;
  lua_pop(L, 1);
  if (c->closed)
    return tide_error_raisef(L, "ECLOSED", "http.body", "connection closed");
  lua_getiuservalue(L, lua_upvalueindex(1), CONN_UV_REQ);
  if (!lua_rawequal(L, 1, -1))
    return luaL_error(L,
                      "req:body(): the response to this request was "
                      "already sent");
  lua_pop(L, 1);
  return body_again(L);
}

/* Format the peer address as "ip:port" ("[ip]:port" for IPv6).
** [-0, +1, m] */
static void push_peer(lua_State *L, conn_t *c) {
  int n = c->s ? tide_stream_push_addr(L, c->s, 1) : 0;
  if (n == 2 && lua_type(L, -2) == LUA_TSTRING) {
    const char *ip = lua_tostring(L, -2);
    if (strchr(ip, ':'))
      lua_pushfstring(L, "[%s]:%d", ip, (int)lua_tointeger(L, -1));
    else
      lua_pushfstring(L, "%s:%d", ip, (int)lua_tointeger(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, n);
  lua_pushnil(L);
}

/* __index of req tables: the body method and the lazy fields: headers,
** query (when the URL has none), remote.  Making them only when asked
** saves a table per request for handlers that never look.  Upvalue 1: the
** Conn; 2: the body function. */
static int req__index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (strcmp(k, "body") == 0) {
    lua_pushvalue(L, lua_upvalueindex(2));
    return 1;
  }
  if (strcmp(k, "query") == 0) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "query");
    return 1;
  }
  if (strcmp(k, "headers") == 0) {
    /* Built on first use from the parser's copy of the head, which lasts
    ** until the response is complete. */
    conn_t *c = (conn_t *)lua_touserdata(L, lua_upvalueindex(1));
    lua_getiuservalue(L, lua_upvalueindex(1), CONN_UV_REQ);
    if (c->closed || !c->in_response || !lua_rawequal(L, 1, -1))
      return luaL_error(L,
                        "req.headers: read the headers before the "
                        "response is sent (this request is finished)");
    tide__rp_push_headers(L, &c->rp);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "headers");
    return 1;
  }
  if (strcmp(k, "remote") == 0) {
    conn_t *c = (conn_t *)lua_touserdata(L, lua_upvalueindex(1));
    if (lua_getiuservalue(L, lua_upvalueindex(1), CONN_UV_REMOTE) == LUA_TNIL) {
      lua_pop(L, 1);
      push_peer(L, c);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, lua_upvalueindex(1), CONN_UV_REMOTE);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "remote");
    return 1;
  }
  return 0;
}

/* ---- Conn: responses ----------------------------------------------------- */

static int drain_again(lua_State *L) {
  timer_stop((conn_t *)lua_touserdata(L, 1));
  return 0;
}

/* After queueing output: wait while the Stream holds more than its high
** water mark, under the idle deadline.  Raises a write error. */
static int maybe_drain(lua_State *L, conn_t *c) {
  if (!c->s) return 0;
  if (c->werr) return tide_error_raise(L, c->werr, WHAT_WRITE, NULL);
  if (tide_stream_write_queued(c->s) <= TIDE_STREAM_HIGH_WATER) return 0;
  lua_settop(L, 1);
  timer_arm(L, c, TK_WRITE, c->rp.lim.idle_timeout);
  return tide_stream_wait_write(L, c->s, 0, drain_again, WHAT_WRITE);
}
/* Append one user header line, checking it cannot split the response.
** Returns 1 if it was Content-Type. */
static int add_header(lua_State *L, obuf_t *ob, const char *name, size_t nlen,
                      int vidx) {
  size_t vlen;
  const char *v;
  int t = lua_type(L, vidx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "bad response header '%s' (string expected, got %s)", name,
               luaL_typename(L, vidx));
  lua_pushvalue(L, vidx);
  v = lua_tolstring(L, -1, &vlen);
  if (bad_header_text(v, vlen, 0))
    luaL_error(L, "bad response header '%s' (value has CR, LF or NUL)", name);
  ob_add(L, ob, name, nlen);
  ob_lit(L, ob, ": ");
  ob_add(L, ob, v, vlen);
  ob_lit(L, ob, "\r\n");
  lua_pop(L, 1);
  return tide__ieq(name, nlen, "content-type");
}

/* conn:respond(res) sends the response `res` returned by a handler: a
** string (200, text/plain) or {status=, headers=, body=} with a string
** body, no body, or an iterator function body.  Returns true when the
** caller must now stream the iterator's chunks with write_chunk and end
** with end_chunks; otherwise the response is complete.  Raises a plain Lua
** error for a malformed response (before writing anything). */
static int conn_respond(lua_State *L) {
  conn_t *c = check_conn(L, 1);
  obuf_t *ob = &c->out;
  int status = 200, stream = 0, has_ctype = 0, no_body, send_body;
  const char *body = NULL;
  size_t blen = 0;
  uv_buf_t bufs[2];
  if (!c->in_response) return luaL_error(L, "no request to respond to");
  lua_settop(L, 2);
  ob->len = 0;
  switch (lua_type(L, 2)) {
    case LUA_TSTRING:
      body = lua_tolstring(L, 2, &blen);
      break;
    case LUA_TTABLE:
      if (lua_getfield(L, 2, "status") != LUA_TNIL) {
        int isnum;
        lua_Integer s = lua_tointegerx(L, -1, &isnum);
        if (!isnum || s < 100 || s > 999)
          return luaL_error(L,
                            "bad response status (an integer from 100 "
                            "to 999 expected)");
        status = (int)s;
      }
      switch (lua_getfield(L, 2, "body")) { /* 4 */
        case LUA_TNIL:
          break;
        case LUA_TSTRING:
          body = lua_tolstring(L, 4, &blen);
          break;
        case LUA_TNUMBER:
          body = lua_tolstring(L, 4, &blen);
          break;
        case LUA_TFUNCTION:
          stream = 1;
          break;
        default:
          return luaL_error(L,
                            "bad response body (string or function "
                            "expected, got %s)",
                            luaL_typename(L, 4));
      }
      break;
    default:
      return luaL_error(L, "bad response (string or table expected, got %s)",
                        luaL_typename(L, 2));
  }
  no_body = status < 200 || status == 204 || status == 304;
  /* An unread body the client will only send after "100 Continue" cannot
  ** be skipped: close after answering. */
  if (c->rp.state == RP_BODY && c->rp.has_body && c->rp.expect_continue &&
      !c->continue_sent)
    c->keep = 0;
  if (stream && c->http10) c->keep = 0;
  if (c->draining) c->keep = 0;
  if (status == 200) {
    ob_lit(L, ob, "HTTP/1.1 200 OK");
  } else {
    ob_lit(L, ob, "HTTP/1.1 ");
    ob_uint(L, ob, (unsigned long long)status);
    ob_lit(L, ob, " ");
    ob_str(L, ob, reason(status));
  }
  ob_lit(L, ob, "\r\nDate: ");
  ob_str(L, ob, conn_date(c));
  ob_lit(L, ob, "\r\n");
  if (lua_type(L, 2) == LUA_TTABLE) {
    int ht = lua_getfield(L, 2, "headers"); /* 5 */
    if (ht == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, 5)) {
        size_t nlen;
        const char *name;
        if (lua_type(L, -2) != LUA_TSTRING)
          return luaL_error(L,
                            "bad response header name (string expected, "
                            "got %s)",
                            luaL_typename(L, -2));
        name = lua_tolstring(L, -2, &nlen);
        if (bad_header_text(name, nlen, 1))
          return luaL_error(L, "bad response header name '%s'", name);
        if (tide__ieq(name, nlen, "content-length") ||
            tide__ieq(name, nlen, "transfer-encoding") ||
            tide__ieq(name, nlen, "date")) {
          /* framing and Date are the server's business */
        } else if (tide__ieq(name, nlen, "connection")) {
          const char *v = lua_tostring(L, -1);
          if (v && tide__ieq(v, strlen(v), "close")) c->keep = 0;
        } else if (lua_type(L, -1) == LUA_TTABLE) {
          int i, n = (int)luaL_len(L, -1);
          for (i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            has_ctype |= add_header(L, ob, name, nlen, lua_gettop(L));
            lua_pop(L, 1);
          }
        } else {
          has_ctype |= add_header(L, ob, name, nlen, lua_gettop(L));
        }
        lua_pop(L, 1);
      }
    } else if (ht != LUA_TNIL) {
      return luaL_error(L, "bad response headers (table expected, got %s)",
                        luaL_typename(L, 5));
    }
  }
  if (!no_body) {
    if (!has_ctype && (stream || blen > 0))
      ob_lit(L, ob, "Content-Type: text/plain\r\n");
    if (stream) {
      if (!c->http10) ob_lit(L, ob, "Transfer-Encoding: chunked\r\n");
    } else {
      ob_lit(L, ob, "Content-Length: ");
      ob_uint(L, ob, (unsigned long long)blen);
      ob_lit(L, ob, "\r\n");
    }
  }
  if (!c->keep)
    ob_lit(L, ob, "Connection: close\r\n");
  else if (c->http10)
    ob_lit(L, ob, "Connection: keep-alive\r\n");
  ob_lit(L, ob, "\r\n");
  send_body = !no_body && !c->head_only;
  bufs[0] = uv_buf_init(ob->p, (unsigned)ob->len);
  bufs[1] = uv_buf_init((char *)body, (unsigned)blen);
  conn_write(c, bufs, (send_body && blen > 0) ? 2 : 1);
  if (stream && send_body) {
    c->chunked = !c->http10;
    lua_pushboolean(L, 1);
    return 1;
  }
  c->in_response = 0;
  return maybe_drain(L, c);
}

/* conn:write_chunk(data): one piece of a streamed body. */
static int conn_write_chunk(lua_State *L) {
  conn_t *c = check_conn(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (!c->in_response) return luaL_error(L, "no response is being streamed");
  if (n == 0) return 0;
  if (c->chunked) {
    char size[24];
    uv_buf_t b[3];
    int k = snprintf(size, sizeof size, "%zx\r\n", n);
    b[0] = uv_buf_init(size, (unsigned)k);
    b[1] = uv_buf_init((char *)s, (unsigned)n);
    b[2] = uv_buf_init((char *)"\r\n", 2);
    conn_write(c, b, 3);
  } else {
    uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);
    conn_write(c, &b, 1);
  }
  return maybe_drain(L, c);
}

/* conn:end_chunks(): finish a streamed body. */
static int conn_end_chunks(lua_State *L) {
  conn_t *c = check_conn(L, 1);
  if (!c->in_response) return luaL_error(L, "no response is being streamed");
  if (c->chunked) {
    uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
    conn_write(c, &b, 1);
  }
  c->chunked = 0;
  c->in_response = 0;
  return maybe_drain(L, c);
}

/* conn:fail(status): answer the current request with a short error
** response if nothing was sent for it yet, and mark the connection for
** closing.  Returns true if the response was sent. */
static int conn_fail(lua_State *L) {
  conn_t *c = check_conn(L, 1);
  int status = (int)luaL_optinteger(L, 2, 500);
  int sent = 0;
  luaL_argcheck(L, status >= 400 && status <= 599, 2, "4xx or 5xx expected");
  if (c->in_response && !c->chunked) {
    conn_send_error(c, status);
    sent = 1;
  }
  c->in_response = 0;
  c->keep = 0;
  lua_pushboolean(L, sent);
  return 1;
}

/* ---- Conn: closing ------------------------------------------------------- */

static int conn_close(lua_State *L) {
  conn_close_now(to_conn(L));
  return 0;
}

/* conn:abort(): close at once, dropping queued output (a peer that stopped
** reading, a failed write). */
static int conn_abort(lua_State *L) {
  conn_t *c = to_conn(L);
  if (c->s) tide_stream_set_linger(c->s, 0);
  conn_close_now(c);
  return 0;
}

/* conn:closing() -> true when no further request will be read. */
static int conn_closing(lua_State *L) {
  conn_t *c = to_conn(L);
  lua_pushboolean(L, c->closed || !c->keep || c->werr);
  return 1;
}

/* conn:stream() -> the connection's Stream (for the lingering close). */
static int conn_stream(lua_State *L) {
  to_conn(L);
  lua_getiuservalue(L, 1, CONN_UV_STREAM);
  return 1;
}

static const luaL_Reg conn_methods[] = {{"recv", conn_recv},
                                        {"respond", conn_respond},
                                        {"write_chunk", conn_write_chunk},
                                        {"end_chunks", conn_end_chunks},
                                        {"fail", conn_fail},
                                        {"closing", conn_closing},
                                        {"stream", conn_stream},
                                        {"close", conn_close},
                                        {"abort", conn_abort},
                                        {NULL, NULL}};

/* ---- Listener ------------------------------------------------------------ */

static void listener_closed_cb(uv_handle_t *h) {
  /* owns the listener record once no conn refers to it */
  listener_t *l = (listener_t *)h;
  l->handle_closed = 1;
  listener_maybe_free(l);
}

static void tcp_free_cb(uv_handle_t *h) {
  /* owns h: a connection that could not be accepted */
  free(h);
}

static void on_connection(uv_stream_t *server, int status) {
  /* owns nothing: libuv holds the accepted fd until accept() takes it */
  listener_t *l = (listener_t *)server;
  if (status < 0)
    l->accept_err = status;
  else
    l->pending = 1;
  if (l->waiter && (status < 0 || l->nconns < l->lim.connections)) {
    tide_wait_t *w = l->waiter;
    l->waiter = NULL;
    tide_wait_wake(w);
  }
}

static void accept_cancel(tide_wait_t *w) {
  ((listener_t *)w->data)->waiter = NULL;
}

/* Wrap an accepted handle: a Stream, and the Conn that owns it and the
** req metatable of its requests.  [-0, +1, m] */
static void push_conn(lua_State *L, listener_t *l, uv_tcp_t *h) {
  tide_stream_t *s = tide_stream_new(L, (uv_stream_t *)h);
  conn_t *c = (conn_t *)lua_newuserdatauv(L, sizeof *c, CONN_NUV);
  int ud = lua_gettop(L);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CONN_MT);
  lua_insert(L, -2);
  lua_setiuservalue(L, ud - 1, CONN_UV_STREAM);
  ud--;
  tide__rp_init(&c->rp, &l->lim);
  c->s = s;
  /* A closed conn may flush its last response for as long as the peer may
  ** stall a read, not the Stream's default. */
  tide_stream_set_linger(s, (uint64_t)(l->lim.idle_timeout * 1000.0));
  c->rt = l->rt;
  c->keep = 1;
  tide__timer_init(&c->timer, timer_fire);
  c->srv = l;
  c->next = l->conns;
  if (l->conns) l->conns->prev = c;
  l->conns = c;
  l->nconns++;
  lua_createtable(L, 0, 1); /* the req metatable */
  lua_pushvalue(L, ud);
  lua_pushvalue(L, ud);
  lua_pushcclosure(L, req_body, 1);
  lua_pushcclosure(L, req__index, 2);
  lua_setfield(L, -2, "__index");
  lua_setiuservalue(L, ud, CONN_UV_META);
}

static int accept_resume(lua_State *L, tide_wait_t *w);

static int accept_step(lua_State *L) {
  listener_ud *u = (listener_ud *)lua_touserdata(L, 1);
  listener_t *l = u->l;
  tide_wait_t *w;
  for (;;) {
    uv_tcp_t *h;
    int r;
    if (!l) return 0;
    if (l->accept_err) {
      r = l->accept_err;
      l->accept_err = 0;
      return tide_error_raise(L, r, "http.accept", NULL);
    }
    if (!l->pending || l->nconns >= l->lim.connections) break;
    h = (uv_tcp_t *)malloc(sizeof *h);
    if (!h) return tide_error_raise(L, UV_ENOMEM, "http.accept", NULL);
    uv_tcp_init(l->tcp.loop, h);
    l->pending = 0;
    r = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)h);
    if (r < 0) {
      uv_close((uv_handle_t *)h, tcp_free_cb);
      continue;
    }
    uv_tcp_nodelay(h, 1);
    push_conn(L, l, h);
    return 1;
  }
  w = tide_task_self_wait(tide_task_current(L));
  tide_wait_init(w, accept_cancel, accept_resume, l, TIDE_WAIT_DROPPABLE);
  l->waiter = w;
  return tide_wait_yield(L, w, "http.accept");
}

static int accept_resume(lua_State *L, tide_wait_t *w) {
  (void)w;
  return accept_step(L);
}

/* listener:accept() -> the next Conn, or nil once the listener is closed.
** Waits while the connection limit is reached. */
static int listener_accept(lua_State *L) {
  listener_ud *u = (listener_ud *)luaL_checkudata(L, 1, LISTENER_MT);
  lua_settop(L, 1);
  if (!u->l) return 0;
  tide_async_check(L, "http.accept");
  return accept_step(L);
}

/* Close the listening socket.  Idle connections (waiting for a request)
** close now; busy ones after their current response. */
static void listener_close_now(listener_ud *u) {
  listener_t *l = u->l;
  conn_t *c, *next;
  if (!l) return;
  u->l = NULL;
  l->closed = 1;
  if (l->waiter) {
    tide_wait_t *w = l->waiter;
    l->waiter = NULL;
    tide_wait_wake(w);
  }
  for (c = l->conns; c; c = next) {
    next = c->next;
    c->draining = 1;
    if (c->timer_kind == TK_IDLE && c->s) {
      /* Its task waits for a request that may never come: closing the
      ** stream wakes it (ECLOSED) and it ends. */
      timer_stop(c);
      tide_stream_close(c->s);
    }
  }
  uv_close((uv_handle_t *)&l->tcp, listener_closed_cb);
}

static int listener_close(lua_State *L) {
  listener_close_now((listener_ud *)luaL_checkudata(L, 1, LISTENER_MT));
  return 0;
}

/* listener:port() -> the bound port */
static int listener_port(lua_State *L) {
  listener_ud *u = (listener_ud *)luaL_checkudata(L, 1, LISTENER_MT);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (!u->l) return luaL_error(L, "listener is closed");
  if (uv_tcp_getsockname(&u->l->tcp, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  lua_pushinteger(L, ntohs(ss.ss_family == AF_INET6
                               ? ((struct sockaddr_in6 *)&ss)->sin6_port
                               : ((struct sockaddr_in *)&ss)->sin_port));
  return 1;
}

/* listener:connections() -> the number of open connections */
static int listener_connections(lua_State *L) {
  listener_ud *u = (listener_ud *)luaL_checkudata(L, 1, LISTENER_MT);
  lua_pushinteger(L, u->l ? u->l->nconns : 0);
  return 1;
}

static const luaL_Reg listener_methods[] = {
    {"accept", listener_accept},
    {"close", listener_close},
    {"port", listener_port},
    {"connections", listener_connections},
    {NULL, NULL}};

/* Raise a libuv error about an address. [-0, +0, v] */
static int raise_addr(lua_State *L, int err, const char *op, const char *host,
                      int port) {
  tide_error_push(L, uv_err_name(err), op, NULL, uv_strerror(err));
  lua_pushfstring(L, "%s:%d", host, port);
  lua_setfield(L, -2, "addr");
  return lua_error(L);
}

/* http_server.listen(host, port [, {backlog=, reuseport=, limits=}])
** -> Listener.  host is a literal IPv4/IPv6 address or "localhost". */
static int hs_listen(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  int backlog = 511, reuseport = 0, r;
  struct sockaddr_storage ss;
  limits_t lim;
  listener_t *l;
  listener_ud *u;
  tide_runtime_t *rt = tide__rt(L);
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "port out of range");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "backlog") != LUA_TNIL)
      backlog = (int)luaL_checkinteger(L, -1);
    lua_getfield(L, 3, "reuseport");
    reuseport = lua_toboolean(L, -1);
    lua_getfield(L, 3, "limits");
    tide__rp_limits(L, lua_gettop(L), &lim);
    lua_settop(L, 3);
  } else {
    tide__rp_limits(L, 0, &lim);
  }
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  else if (strcmp(host, "*") == 0)
    host = "0.0.0.0";
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
    return luaL_argerror(L, 1, "an IP address or \"localhost\" expected");
  /* The userdata first, so a memory error cannot leak the record. */
  u = (listener_ud *)lua_newuserdatauv(L, sizeof *u, 0);
  u->l = NULL;
  luaL_setmetatable(L, LISTENER_MT);
  l = (listener_t *)calloc(1, sizeof *l);
  if (!l) return tide_error_raise(L, UV_ENOMEM, "http.listen", NULL);
  l->rt = rt;
  l->lim = lim;
  r = uv_tcp_init_ex(rt->loop, &l->tcp, ss.ss_family);
  if (r < 0) {
    free(l);
    return raise_addr(L, r, "http.listen", host, (int)port);
  }
  if (reuseport) {
    /* libuv 1.44 has no UV_TCP_REUSEPORT: set it on the fresh socket. */
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0)
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&l->tcp, backlog, on_connection);
  if (r < 0) {
    uv_close((uv_handle_t *)&l->tcp, listener_closed_cb);
    return raise_addr(L, r, "http.listen", host, (int)port);
  }
  u->l = l;
  return 1;
}

/* ---- the module ---------------------------------------------------------- */

static int conn__gc(lua_State *L) {
  conn_close_now(to_conn(L));
  return 0;
}

static int listener__gc(lua_State *L) {
  listener_close_now((listener_ud *)luaL_checkudata(L, 1, LISTENER_MT));
  return 0;
}

/* Make a metatable whose methods, __gc and __close have the metatable as
** upvalue 1 (see to_conn). */
static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction gc) {
  if (luaL_newmetatable(L, name)) {
    lua_newtable(L);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, gc, 1);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, gc, 1);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
}

static const luaL_Reg hs_funcs[] = {{"listen", hs_listen}, {NULL, NULL}};

int luaopen_tide_http_server(lua_State *L) {
  tide_stream_open(L);
  new_type(L, CONN_MT, conn_methods, conn__gc);
  new_type(L, LISTENER_MT, listener_methods, listener__gc);
  luaL_newlib(L, hs_funcs);
  return 1;
}
