/*
** http_fast.c: the plain-HTTP/1.1 path of tide.http_client (module
** tide.http_fast; only stdlib/http_client.lua uses it).  libcurl does a lot
** of work per transfer that a kept-alive `http://` request does not need,
** so requests that need nothing curl is for (TLS, HTTP/2, proxies) go over
** a tide Stream (runtime/stream.c) instead: the request head is built here,
** written with one writev, and the response is parsed in place in the
** stream's read buffer by the shared http-parser core (stdlib/http_parser.c
** in response mode), bodies decoded with zlib as they arrive.
**
** A connection (a "tide.HttpConn" userdata) owns its parser state, its
** inflate stream and its decoded-body buffer; its first user value is the
** Stream it talks over, so the stream is on the waiting task's stack through
** the connection argument, as tide_stream_wait_read requires.  The Lua layer
** owns the pool (which connections are idle, for which host and port), the
** connecting, redirects, timeouts and retries; this file owns one exchange:
** send a request, read its response.
**
** An idle connection must not keep the process alive, but a task waiting on
** one must: the stream's handle is unreferenced except while a call of this
** file waits on it.  The module's upvalue counts open connections and
** requests for http._stats().
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "http_wire.h"
#include "stream.h"

#define CONN_MT "tide.HttpConn"
/* curl's limit on a response's header block, kept so both paths agree */
#define HEAD_MAX (100 * 1024)
#define INFLATE_CHUNK (16 * 1024)
#define STR_(x) #x
#define STR(x) STR_(x)
#define USER_AGENT                                                     \
  "tide/" STR(TIDE_VERSION_MAJOR) "." STR(TIDE_VERSION_MINOR) "." STR( \
      TIDE_VERSION_PATCH)

/* Flags of an exchange, from the Lua layer. */
#define XF_HEAD 1   /* the request is HEAD: the response has no body */
#define XF_STREAM 2 /* return at the head; the body is read with read() */

enum { PH_IDLE, PH_HEAD, PH_BODY, PH_DONE };

typedef struct {
  lua_Integer open;     /* connections not yet closed */
  lua_Integer held;     /* connections a task waits on */
  lua_Integer requests; /* exchanges started */
} stats_t;

typedef struct {
  rp_t rp;
  stats_t *st;
  int phase;   /* PH_* */
  int flags;   /* XF_* of the current exchange */
  size_t hoff; /* head bytes parsed, still in the stream's buffer */
  char *head;  /* the header block of the final response */
  size_t hlen, hcap;
  z_stream z; /* inflate state, when zinit */
  char *out;  /* decoded bytes [ooff, olen) not taken yet */
  size_t olen, ooff, ocap;
  size_t idoff;         /* identity bodies: rp.body[idoff, blen) not taken */
  lua_Integer received; /* decoded body bytes of this response */
  lua_Integer max_size; /* 0: no limit */
  unsigned zinit : 1, zlib : 1, zend : 1, held : 1, closed : 1;
} conn_t;

/* ---- header validation, shared with the curl path ----------------------- */

int tide__http_is_token(const char *s, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch)) return 0;
  }
  return 1;
}

static int is_field_value(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
  return 1;
}

static void check_value(lua_State *L, const char *name, int vidx) {
  size_t vlen;
  const char *v;
  if (lua_type(L, vidx) != LUA_TSTRING && lua_type(L, vidx) != LUA_TNUMBER)
    luaL_error(L,
               "bad option 'headers' to 'request' (value of '%s' must "
               "be a string, got %s)",
               name, luaL_typename(L, vidx));
  v = lua_tolstring(L, vidx, &vlen);
  if (!is_field_value(v, vlen))
    luaL_error(L,
               "bad option 'headers' to 'request' (value of '%s' "
               "contains CR, LF or NUL)",
               name);
}

/* Walk the headers of the table at idx (name -> value, or name -> list of
** values for a repeated header): from pass `from` to pass 1.  Pass 0
** checks them all (names must be tokens, values strings or numbers without
** CR, LF or NUL), pass 1 calls fn on each; fn returns non-zero to stop (out
** of memory), and the walk returns that value.  [-0, +0, v] */
static int walk_headers(lua_State *L, int idx, tide_header_fn fn, void *ud,
                        int from) {
  int pass, stop = 0;
  for (pass = from; pass < 2 && !stop; pass++) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t nlen, vlen;
      const char *name, *v;
      if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L,
                   "bad option 'headers' to 'request' (names must be "
                   "strings)");
      name = lua_tolstring(L, -2, &nlen);
      if (!tide__http_is_token(name, nlen))
        luaL_error(L,
                   "bad option 'headers' to 'request' (invalid header "
                   "name '%s')",
                   name);
      if (lua_istable(L, -1)) {
        lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
        for (i = 1; i <= n && !stop; i++) {
          lua_rawgeti(L, -1, i);
          if (pass == 0) {
            check_value(L, name, lua_gettop(L));
          } else {
            v = lua_tolstring(L, -1, &vlen);
            stop = fn(ud, name, nlen, v, vlen);
          }
          lua_pop(L, 1);
        }
      } else if (pass == 0) {
        check_value(L, name, lua_gettop(L));
      } else {
        v = lua_tolstring(L, -1, &vlen);
        stop = fn(ud, name, nlen, v, vlen);
      }
      lua_pop(L, 1);
      if (stop) {
        lua_pop(L, 1);
        break;
      }
    }
  }
  return stop;
}

/* Call fn for each header of the table at idx after checking all of
** them, so that fn runs only once nothing can raise a usage error.
** [-0, +0, v] */
int tide__http_each_header(lua_State *L, int idx, tide_header_fn fn,
                           void *ud) {
  return walk_headers(L, idx, fn, ud, 0);
}

/* ---- building a request head --------------------------------------------- */

/* The defaults a user header of the same name replaces. */
enum { D_HOST, D_UA, D_ACCEPT, D_AE, D_CLEN, D_CTYPE, D_N };
static const char *const default_names[D_N] = {
    "host",           "user-agent",  "accept", "accept-encoding",
    "content-length", "content-type"};

/* The head is built twice by the same code: once counting (out == NULL),
** once writing into a buffer of exactly that size.  The caller's headers
** are walked with lua_next, which pushes above a luaL_Buffer's box, so the
** buffer must never grow (move its box) while they are written. */
typedef struct {
  char *out;
  size_t n;
  int given[D_N];
} headb_t;

static void put(headb_t *hb, const char *s, size_t n) {
  if (hb->out) memcpy(hb->out + hb->n, s, n);
  hb->n += n;
}

static void put_str(headb_t *hb, const char *s) { put(hb, s, strlen(s)); }

static int note_header(void *ud, const char *name, size_t nlen, const char *v,
                       size_t vlen) {
  headb_t *hb = (headb_t *)ud;
  int i;
  (void)v;
  (void)vlen;
  for (i = 0; i < D_N; i++)
    if (tide__ieq(name, nlen, default_names[i])) hb->given[i] = 1;
  return 0;
}

static int add_header(void *ud, const char *name, size_t nlen, const char *v,
                      size_t vlen) {
  headb_t *hb = (headb_t *)ud;
  put(hb, name, nlen);
  put(hb, ": ", 2);
  put(hb, v, vlen);
  put(hb, "\r\n", 2);
  return 0;
}

typedef struct {
  const char *method, *target, *host;
  size_t mlen, tlen, hlen;
  int has_headers, has_body;
  lua_Integer blen;
} headreq_t;

/* Count or write (see headb_t) the head of rq; L's index 4 holds the
** caller's headers when rq->has_headers. */
static void build_head(lua_State *L, const headreq_t *rq, headb_t *hb) {
  hb->n = 0;
  put(hb, rq->method, rq->mlen);
  put(hb, " ", 1);
  put(hb, rq->target, rq->tlen);
  put_str(hb, " HTTP/1.1\r\n");
  if (!hb->given[D_HOST]) {
    put_str(hb, "Host: ");
    put(hb, rq->host, rq->hlen);
    put_str(hb, "\r\n");
  }
  if (!hb->given[D_UA]) put_str(hb, "User-Agent: " USER_AGENT "\r\n");
  if (!hb->given[D_ACCEPT]) put_str(hb, "Accept: */*\r\n");
  if (!hb->given[D_AE]) put_str(hb, "Accept-Encoding: gzip, deflate\r\n");
  /* checked by fast_head's first walk */
  if (rq->has_headers) walk_headers(L, 4, add_header, hb, 1);
  if (rq->has_body) {
    if (!hb->given[D_CLEN]) {
      char line[64];
      snprintf(line, sizeof line, "Content-Length: %lld\r\n",
               (long long)rq->blen);
      put_str(hb, line);
    }
    if (!hb->given[D_CTYPE])
      put_str(hb, "Content-Type: application/x-www-form-urlencoded\r\n");
  }
  put_str(hb, "\r\n");
}

/* head(method, target, host, headers|nil, body_len|nil) -> the request head
** as a string: the request line, Host, User-Agent, Accept,
** Accept-Encoding, the caller's headers (which replace a default of the
** same name), and Content-Length and a default Content-Type when a body
** goes with it.  Checks that the caller is a task that can suspend, so a
** request fails before it connects anywhere.  [-0, +1, e] */
static int fast_head(lua_State *L) {
  headreq_t rq;
  luaL_Buffer b;
  headb_t hb;
  size_t total;
  rq.method = luaL_checklstring(L, 1, &rq.mlen);
  rq.target = luaL_checklstring(L, 2, &rq.tlen);
  rq.host = luaL_checklstring(L, 3, &rq.hlen);
  rq.has_headers = lua_istable(L, 4);
  rq.has_body = !lua_isnoneornil(L, 5);
  rq.blen = rq.has_body ? luaL_checkinteger(L, 5) : 0;
  if (!tide__http_is_token(rq.method, rq.mlen))
    luaL_error(L, "bad argument #1 to 'request' (invalid HTTP method)");
  lua_settop(L, 5);
  memset(&hb, 0, sizeof hb);
  if (rq.has_headers) tide__http_each_header(L, 4, note_header, &hb);
  tide_async_check(L, "http.request");
  build_head(L, &rq, &hb);
  total = hb.n;
  hb.out = luaL_buffinitsize(L, &b, total);
  build_head(L, &rq, &hb);
  luaL_pushresultsize(&b, total);
  return 1;
}

/* ---- connections --------------------------------------------------------- */

static conn_t *check_conn(lua_State *L) {
  return (conn_t *)luaL_checkudata(L, 1, CONN_MT);
}

/* Push the connection's stream (user value 1) and return it; NULL once
** the connection is closed.  [-0, +1, -] */
static tide_stream_t *push_stream(lua_State *L, int idx, conn_t *c) {
  lua_getiuservalue(L, idx, 1);
  if (c->closed) return NULL;
  return tide_stream_to(L, -1);
}

/* Let the stream's handle keep the loop alive (a task waits on it) or not
** (it is idle, or its response waits for a reader). */
static void conn_hold(conn_t *c, tide_stream_t *s, int on) {
  uv_stream_t *h = s ? tide_stream_handle(s) : NULL;
  if (on == (int)c->held) return;
  c->held = on ? 1 : 0;
  c->st->held += on ? 1 : -1;
  if (!h) return;
  if (on)
    uv_ref((uv_handle_t *)h);
  else
    uv_unref((uv_handle_t *)h);
}

/* Free what the connection holds and close its stream; idempotent.  The
** stream's own close is graceful, and no byte is queued by then unless a
** request is being abandoned, which is what close is for. */
static void conn_close(conn_t *c, tide_stream_t *s) {
  if (c->closed) return;
  conn_hold(c, s, 0);
  c->closed = 1;
  c->st->open--;
  if (s) tide_stream_close(s);
  tide__rp_free(&c->rp);
  if (c->zinit) inflateEnd(&c->z);
  c->zinit = 0;
  free(c->head);
  free(c->out);
  c->head = c->out = NULL;
  c->hlen = c->hcap = c->olen = c->ooff = c->ocap = 0;
}

/* conn(stream) -> HttpConn, taking the connected stream over. */
static int fast_conn(lua_State *L) {
  stats_t *st = (stats_t *)lua_touserdata(L, lua_upvalueindex(1));
  tide_stream_t *s = tide_stream_check(L, 1, "http.request");
  uv_stream_t *h = tide_stream_handle(s);
  conn_t *c = (conn_t *)lua_newuserdatauv(L, sizeof *c, 2);
  memset(c, 0, sizeof *c);
  c->st = st;
  luaL_setmetatable(L, CONN_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  /* The counters must outlive every connection's __gc. */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setiuservalue(L, -2, 2);
  st->open++;
  if (h->type == UV_TCP) uv_tcp_nodelay((uv_tcp_t *)h, 1);
  uv_unref((uv_handle_t *)h);
  return 1;
}

/* ---- body decoding ------------------------------------------------------- */

/* Is the response's Content-Encoding one zlib decodes (gzip, deflate)?
** Anything else is passed through as it came, as curl does for encodings
** it was not asked to decode. */
static int wants_inflate(rp_t *rp) {
  int i;
  for (i = 0; i < rp->nhdrs; i++) {
    hdr_t *h = &rp->hdrs[i];
    const char *v = rp->arena + h->value;
    size_t n = h->vlen;
    if (!tide__ieq(rp->arena + h->name, h->nlen, "content-encoding")) continue;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return tide__ieq(v, n, "gzip") || tide__ieq(v, n, "x-gzip") ||
           tide__ieq(v, n, "deflate");
  }
  return 0;
}

/* Inflate what the parser collected into c->out.  Returns 0, or -1 when
** the data is not gzip/zlib (or memory runs out). */
static int inflate_body(conn_t *c) {
  rp_t *rp = &c->rp;
  int r;
  if (rp->blen == 0) return 0;
  if (!c->zinit) {
    memset(&c->z, 0, sizeof c->z);
    /* 15 + 32: a zlib or a gzip header, detected; "deflate" is zlib. */
    if (inflateInit2(&c->z, 15 + 32) != Z_OK) return -1;
    c->zinit = 1;
  }
  c->z.next_in = (Bytef *)rp->body;
  c->z.avail_in = (uInt)rp->blen;
  while (c->z.avail_in > 0 && !c->zend) {
    size_t before;
    if (c->ooff > 0 && c->ooff == c->olen) c->ooff = c->olen = 0;
    if (tide__grow(&c->out, &c->ocap, c->olen + INFLATE_CHUNK) < 0) return -1;
    c->z.next_out = (Bytef *)(c->out + c->olen);
    c->z.avail_out = (uInt)(c->ocap - c->olen);
    before = c->z.avail_out;
    r = inflate(&c->z, Z_NO_FLUSH);
    c->olen += before - c->z.avail_out;
    c->received += (lua_Integer)(before - c->z.avail_out);
    if (r == Z_STREAM_END) {
      c->zend = 1; /* anything after the stream is ignored, as curl does */
    } else if (r != Z_OK && r != Z_BUF_ERROR) {
      return -1;
    }
    /* A limit that holds against a decompression bomb, not only later. */
    if (c->max_size && c->received > c->max_size) break;
  }
  rp->blen = 0;
  return 0;
}

/* Move the body bytes the last parse collected to where read() takes them
** from, decoding them on the way.  -1: undecodable. */
static int take_body(conn_t *c) {
  if (c->zlib) return inflate_body(c);
  c->received = (lua_Integer)c->rp.body_seen;
  return 0;
}

/* The decoded bytes not taken yet. */
static const char *body_avail(conn_t *c, size_t *n) {
  if (c->zlib) {
    *n = c->olen - c->ooff;
    return c->out ? c->out + c->ooff : "";
  }
  *n = c->rp.blen - c->idoff;
  return c->rp.body ? c->rp.body + c->idoff : "";
}

static void body_drop(conn_t *c, size_t n) {
  if (c->zlib) {
    c->ooff += n;
    if (c->ooff == c->olen) c->ooff = c->olen = 0;
  } else {
    c->idoff += n;
    if (c->idoff == c->rp.blen) c->idoff = c->rp.blen = 0;
  }
}

/* ---- one exchange -------------------------------------------------------- */

/* Raise a protocol or transfer error of the connection's exchange: the
** connection is dropped by the Lua layer.  [-0, +0, v] */
static int fail(lua_State *L, conn_t *c, tide_stream_t *s, const char *code,
                const char *msg) {
  conn_hold(c, s, 0);
  tide_error_push(L, code, "http.request", lua_tostring(L, 2), msg);
  return lua_error(L);
}

static int fail_size(lua_State *L, conn_t *c, tide_stream_t *s) {
  const char *msg = lua_pushfstring(
      L, "response body larger than max_size (%I bytes)", c->max_size);
  return fail(L, c, s, "EMSGSIZE", msg);
}

static int fail_parse(lua_State *L, conn_t *c, tide_stream_t *s) {
  return fail(L, c, s, "EPROTO",
              c->rp.err_msg ? c->rp.err_msg : "malformed response");
}

/* Raise what ended the stream early: EPROTO for a clean end (a short
** body), the socket's error otherwise.  [-0, +0, v] */
static int fail_status(lua_State *L, conn_t *c, tide_stream_t *s, int st) {
  if (st == UV_EOF || st == TIDE_STREAM_CLOSED)
    return fail(L, c, s, st == UV_EOF ? "EPROTO" : "ECLOSED",
                st == UV_EOF ? "the connection closed before the response "
                               "ended"
                             : "the connection was closed");
  return fail(L, c, s, uv_err_name(st), uv_strerror(st));
}

static int wait_more(lua_State *L, conn_t *c, tide_stream_t *s, size_t need,
                     lua_CFunction again, const char *what) {
  conn_hold(c, s, 1);
  return tide_stream_wait_read(L, s, need, again, what);
}

/* The head of the final response is complete: keep a copy of its bytes,
** drop them from the stream, and set up the body.  0, or -1 for memory. */
static int head_done(conn_t *c, tide_stream_t *s, const char *buf) {
  rp_t *rp = &c->rp;
  if (tide__grow(&c->head, &c->hcap, c->hoff + 1) < 0) return -1;
  memcpy(c->head, buf, c->hoff);
  c->hlen = c->hoff;
  tide_stream_consume(s, c->hoff);
  c->hoff = 0;
  c->phase = PH_BODY;
  c->zlib = !(c->flags & XF_HEAD) && wants_inflate(rp);
  c->zend = 0;
  if (c->zinit) inflateReset(&c->z);
  return 0;
}

/* Push the results of a response: status, body (nil for a stream), the
** header block, the version, keep-alive. [-0, +5, m] */
static int push_result(lua_State *L, conn_t *c, int with_body) {
  lua_pushinteger(L, c->rp.hp.status_code);
  if (with_body) {
    size_t n;
    const char *p = body_avail(c, &n);
    lua_pushlstring(L, p, n);
    body_drop(c, n);
  } else {
    lua_pushnil(L);
  }
  lua_pushlstring(L, c->head ? c->head : "", c->hlen);
  lua_pushfstring(L, "%d.%d", (int)c->rp.hp.http_major,
                  (int)c->rp.hp.http_minor);
  lua_pushboolean(L, c->rp.keep_alive);
  return 5;
}

/* Parse what the stream holds of the body; 1 when the body is complete.
** Raises on a malformed or oversized body. */
static int body_step(lua_State *L, conn_t *c, tide_stream_t *s) {
  size_t len;
  const char *buf = tide_stream_buffered(s, &len);
  int st = tide_stream_read_status(s), r;
  tide__rp_input(&c->rp, buf, len);
  r = tide__rp_exec(&c->rp, st == UV_EOF);
  tide_stream_consume(s, c->rp.off);
  tide__rp_input(&c->rp, NULL, 0);
  if (r == STEP_ERROR) fail_parse(L, c, s);
  if (take_body(c) < 0)
    fail(L, c, s, "EPROTO", "the body does not decode (bad gzip/deflate)");
  if (c->max_size && c->received > c->max_size) fail_size(L, c, s);
  if (c->rp.state == RP_DONE) {
    if (c->zlib && !c->zend && c->rp.body_seen > 0)
      fail(L, c, s, "EPROTO", "the compressed body ends early");
    c->phase = PH_DONE;
    return 1;
  }
  if (st != 0) fail_status(L, c, s, st);
  return 0;
}

static int exchange_step(lua_State *L);

/* The body of a non-streamed response: read on until it is complete. */
static int exchange_body(lua_State *L, conn_t *c, tide_stream_t *s) {
  if (!body_step(L, c, s)) {
    size_t len;
    tide_stream_buffered(s, &len);
    return wait_more(L, c, s, len + 1, exchange_step, "http.request");
  }
  conn_hold(c, s, 0);
  return push_result(L, c, 1);
}

/* The continuation of exchange: parse the head (skipping 1xx responses),
** then the body unless the response is streamed.  Stack: conn, url, head,
** body, flags, max_size, stream. */
static int exchange_step(lua_State *L) {
  conn_t *c = (conn_t *)lua_touserdata(L, 1);
  tide_stream_t *s = tide_stream_to(L, 7);
  if (c->closed || tide_stream_closed(s))
    return fail_status(L, c, s, TIDE_STREAM_CLOSED);
  while (c->phase == PH_HEAD) {
    size_t len;
    const char *buf = tide_stream_buffered(s, &len);
    int st = tide_stream_read_status(s), r;
    tide__rp_input(&c->rp, buf + c->hoff, len - c->hoff);
    r = tide__rp_exec(&c->rp, st == UV_EOF);
    c->hoff += c->rp.off;
    tide__rp_input(&c->rp, NULL, 0);
    if (r == STEP_ERROR) return fail_parse(L, c, s);
    if (r == STEP_OK && c->rp.state == RP_DONE) {
      /* An interim (1xx) response ended: the final one follows. */
      tide_stream_consume(s, c->hoff);
      c->hoff = 0;
      c->rp.state = RP_IDLE;
      continue;
    }
    if (r == STEP_OK && c->rp.state == RP_BODY) {
      unsigned status = c->rp.hp.status_code;
      unsigned long long clen = c->rp.hp.content_length;
      if (status >= 100 && status < 200 && status != 101) continue;
      if (head_done(c, s, buf) < 0)
        return fail(L, c, s, "ENOMEM", "not enough memory for the response");
      /* A Content-Length over max_size is refused at once, as curl does;
      ** bodies without one are counted as they arrive. */
      if (c->max_size && !(c->flags & XF_HEAD) && clen != ULLONG_MAX &&
          status != 204 && status != 304 &&
          clen > (unsigned long long)c->max_size)
        return fail_size(L, c, s);
      break;
    }
    if (st != 0) {
      /* Nothing at all came back: the Lua layer retries a reused
      ** connection (the server closed it while it was idle) or reports
      ** ECONNRESET, as curl does. */
      if (len == 0 && c->rp.state == RP_IDLE && st != TIDE_STREAM_CLOSED) {
        conn_hold(c, s, 0);
        lua_pushnil(L);
        lua_pushstring(L, st == UV_EOF ? "ECONNRESET" : uv_err_name(st));
        return 2;
      }
      return fail_status(L, c, s, st);
    }
    return wait_more(L, c, s, len + 1, exchange_step, "http.request");
  }
  if (c->flags & XF_STREAM) {
    conn_hold(c, s, 0);
    return push_result(L, c, 0);
  }
  return exchange_body(L, c, s);
}

/* exchange(conn, url, head, body|nil, flags, max_size) -> status, body,
** header block, version, keep_alive; or nil, code when the connection
** ended before any byte of a response came back (the caller decides on a
** retry).  With XF_STREAM, body is nil and read() gets it.  Raises
** tide.Errors (op http.request, path url) for everything else; the
** connection is then unusable and the caller closes it.  [-0, +5|2, e] */
static int fast_exchange(lua_State *L) {
  conn_t *c = check_conn(L);
  size_t hlen, blen = 0;
  const char *head = luaL_checklstring(L, 3, &hlen);
  const char *body = luaL_optlstring(L, 4, NULL, &blen);
  int flags = (int)luaL_checkinteger(L, 5);
  lua_Integer max_size = luaL_optinteger(L, 6, 0);
  tide_stream_t *s;
  uv_buf_t bufs[2];
  int r;
  luaL_checkstring(L, 2);
  lua_settop(L, 6);
  s = push_stream(L, 1, c);
  if (!s) return luaL_error(L, "http connection is closed");
  tide_async_check(L, "http.request");
  tide__rp_init_response(&c->rp, HEAD_MAX, flags & XF_HEAD);
  c->phase = PH_HEAD;
  c->flags = flags;
  c->hoff = c->hlen = c->idoff = 0;
  c->olen = c->ooff = 0;
  c->received = 0;
  c->max_size = max_size;
  c->st->requests++;
  bufs[0] = uv_buf_init((char *)head, (unsigned)hlen);
  bufs[1] = uv_buf_init((char *)(body ? body : ""), (unsigned)blen);
  r = tide_stream_writev(s, bufs, body && blen ? 2 : 1);
  if (r < 0 && r != TIDE_STREAM_CLOSED) {
    /* An earlier write failed: the peer went away while idle. */
    lua_pushnil(L);
    lua_pushstring(L, uv_err_name(r));
    return 2;
  }
  return exchange_step(L);
}

/* ---- streamed bodies ----------------------------------------------------- */

/* One attempt at read: push up to n bytes, nil at the end, or wait.
** Stack: conn, url, n, stream. */
static int read_step(lua_State *L) {
  conn_t *c = (conn_t *)lua_touserdata(L, 1);
  lua_Integer n = lua_tointeger(L, 3);
  tide_stream_t *s = tide_stream_to(L, 4);
  for (;;) {
    size_t avail;
    const char *p = body_avail(c, &avail);
    if (avail > 0) {
      if (n > 0 && (size_t)n < avail) avail = (size_t)n;
      conn_hold(c, s, 0);
      lua_pushlstring(L, p, avail);
      body_drop(c, avail);
      return 1;
    }
    if (c->phase == PH_DONE) {
      conn_hold(c, s, 0);
      lua_pushnil(L);
      lua_pushboolean(L, c->rp.keep_alive);
      return 2;
    }
    if (c->closed || tide_stream_closed(s))
      return fail_status(L, c, s, TIDE_STREAM_CLOSED);
    if (!body_step(L, c, s)) {
      body_avail(c, &avail);
      if (avail == 0) {
        size_t len;
        tide_stream_buffered(s, &len);
        return wait_more(L, c, s, len + 1, read_step, "http.read");
      }
    }
  }
}

/* read(conn, url, n) -> up to n bytes of a streamed body (n == 0: what is
** there), or nil, keep_alive at its end.  [-0, +1|2, e] */
static int fast_read(lua_State *L) {
  conn_t *c = check_conn(L);
  tide_stream_t *s;
  luaL_checkstring(L, 2);
  luaL_checkinteger(L, 3);
  lua_settop(L, 3);
  s = push_stream(L, 1, c);
  if (!s) return luaL_error(L, "response stream is closed");
  if (c->phase != PH_BODY && c->phase != PH_DONE)
    return luaL_error(L, "no response body to read");
  return read_step(L);
}

/* ---- the pool's view ----------------------------------------------------- */

/* idle(conn) -> true if the connection can wait in the pool for another
** request: its response was read to the end, the server keeps it open, and
** nothing arrived since.  It then stops keeping the process alive. */
static int fast_idle(lua_State *L) {
  conn_t *c = check_conn(L);
  tide_stream_t *s = push_stream(L, 1, c);
  size_t len = 0;
  int ok = s && c->phase == PH_DONE && c->rp.keep_alive &&
           !tide_stream_closed(s) && tide_stream_read_status(s) == 0;
  if (ok) tide_stream_buffered(s, &len);
  ok = ok && len == 0;
  if (ok) conn_hold(c, s, 0);
  lua_pushboolean(L, ok);
  return 1;
}

/* close(conn): close the connection and its stream (idempotent). */
static int fast_close(lua_State *L) {
  conn_t *c = check_conn(L);
  tide_stream_t *s = push_stream(L, 1, c);
  conn_close(c, s);
  return 0;
}

/* unhold(conn): a task stopped waiting on the connection without this
** file knowing (its read was cancelled). */
static int fast_unhold(lua_State *L) {
  conn_t *c = check_conn(L);
  tide_stream_t *s = push_stream(L, 1, c);
  conn_hold(c, s, 0);
  return 0;
}

/* buffered(conn) -> body bytes received and not read yet, raw or decoded
** (for the back-pressure spec). */
static int fast_buffered(lua_State *L) {
  conn_t *c = check_conn(L);
  tide_stream_t *s = push_stream(L, 1, c);
  size_t a = 0, b = 0;
  if (s && !c->closed) {
    body_avail(c, &a);
    tide_stream_buffered(s, &b);
  }
  lua_pushinteger(L, (lua_Integer)(a + b));
  return 1;
}

static int conn__gc(lua_State *L) {
  conn_t *c = (conn_t *)luaL_checkudata(L, 1, CONN_MT);
  /* The stream may have been finalized first; it closes itself. */
  conn_close(c, NULL);
  return 0;
}

/* stats() -> open, held, requests */
static int fast_stats(lua_State *L) {
  stats_t *st = (stats_t *)lua_touserdata(L, lua_upvalueindex(1));
  lua_pushinteger(L, st->open);
  lua_pushinteger(L, st->held);
  lua_pushinteger(L, st->requests);
  return 3;
}

static const luaL_Reg fast_funcs[] = {
    {"head", fast_head},         {"conn", fast_conn},
    {"exchange", fast_exchange}, {"read", fast_read},
    {"idle", fast_idle},         {"close", fast_close},
    {"unhold", fast_unhold},     {"buffered", fast_buffered},
    {"stats", fast_stats},       {NULL, NULL}};

int luaopen_tide_http_fast(lua_State *L) {
  stats_t *st;
  if (luaL_newmetatable(L, CONN_MT)) {
    lua_pushcfunction(L, conn__gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 10);
  st = (stats_t *)lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  luaL_setfuncs(L, fast_funcs, 1);
  lua_pushinteger(L, XF_HEAD);
  lua_setfield(L, -2, "HEAD");
  lua_pushinteger(L, XF_STREAM);
  lua_setfield(L, -2, "STREAM");
  return 1;
}
