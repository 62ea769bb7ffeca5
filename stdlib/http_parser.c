/*
** http_parser.c: the HTTP/1.1 message parser (module tide.http_parser).
** It drives Debian's http-parser over a buffer it owns, copying each
** message head into an arena (so the buffer may move), pausing after the
** head so a body is read only when asked for, pausing after each message
** so pipelined requests wait their turn, and turning limits and malformed
** input into the 4xx status the server answers with.  The server
** (stdlib/http_server.c) runs the same core on its connections in request
** mode; the HTTP client's plain-HTTP path (stdlib/http_fast.c) runs it in
** response mode, where every head pauses (the client looks at each status
** line, skipping 1xx) and bodies are always collected.  The Parser object
** here exposes the request mode to Lua for tests and for code that parses
** HTTP from other sources.
*/
#include <stdlib.h>
#include <string.h>

#include "http_wire.h"

#define PARSER_MT "tide.http.Parser"

/* ---- limits -------------------------------------------------------------- */

static const limits_t default_limits = {16384, 1024 * 1024, 1024, 10.0, 15.0};

static double opt_number(lua_State *L, int t, const char *k, double def) {
  double v;
  if (lua_getfield(L, t, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  if (!lua_isnumber(L, -1))
    luaL_error(L, "bad limit '%s' (number expected, got %s)", k,
               luaL_typename(L, -1));
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v > 0)) luaL_error(L, "bad limit '%s' (must be positive)", k);
  return v;
}

/* Read a limits table at index t (or nil) into *lim. [-0, +0, v] */
void tide__rp_limits(lua_State *L, int t, limits_t *lim) {
  *lim = default_limits;
  if (t == 0 || lua_isnoneornil(L, t)) return;
  luaL_checktype(L, t, LUA_TTABLE);
  lim->header_bytes =
      (size_t)opt_number(L, t, "header_bytes", (double)lim->header_bytes);
  lim->body_bytes =
      (size_t)opt_number(L, t, "body_bytes", (double)lim->body_bytes);
  lim->connections = (int)opt_number(L, t, "connections", lim->connections);
  lim->header_timeout = opt_number(L, t, "header_timeout", lim->header_timeout);
  lim->idle_timeout = opt_number(L, t, "idle_timeout", lim->idle_timeout);
}

/* ---- the request parser core --------------------------------------------- */

int tide__grow(char **buf, size_t *cap, size_t need) {
  size_t n = *cap ? *cap : 256;
  char *p;
  if (need <= *cap) return 0;
  while (n < need) n *= 2;
  p = realloc(*buf, n);
  if (!p) return -1;
  *buf = p;
  *cap = n;
  return 0;
}

static int rp_fail(rp_t *rp, int status, const char *msg) {
  if (!rp->err_status) {
    rp->err_status = status;
    rp->err_msg = msg;
  }
  return -1;
}

/* Append parsed head bytes to the arena, lower-casing header names. */
static int arena_add(rp_t *rp, const char *at, size_t n, int lower) {
  size_t i;
  if (rp->alen + n > rp->lim.header_bytes)
    return rp_fail(rp, 431,
                   rp->response ? "response header too large"
                                : "request header fields too large");
  if (tide__grow(&rp->arena, &rp->acap, rp->alen + n) < 0)
    return rp_fail(rp, 500, "out of memory");
  if (lower) {
    for (i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)at[i];
      rp->arena[rp->alen + i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
  } else {
    memcpy(rp->arena + rp->alen, at, n);
  }
  rp->alen += n;
  return 0;
}

static int on_message_begin(http_parser *hp) {
  rp_t *rp = (rp_t *)hp;
  rp->state = RP_HEAD;
  rp->alen = rp->url_len = 0;
  rp->nhdrs = 0;
  rp->last_was_value = 1;
  rp->blen = rp->body_seen = 0;
  /* A client wants every response body; a server reads one on demand. */
  rp->body_mode = rp->response ? BODY_COLLECT : BODY_HOLD;
  rp->keep_alive = rp->expect_continue = rp->has_body = 0;
  return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n) {
  rp_t *rp = (rp_t *)hp;
  rp->url_len += n;
  return arena_add(rp, at, n, 0);
}

/* RFC 9110 token characters. */
static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') ||
         (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int on_header_field(http_parser *hp, const char *at, size_t n) {
  rp_t *rp = (rp_t *)hp;
  size_t i;
  if (rp->last_was_value) {
    if (rp->nhdrs == rp->hcap) {
      int cap = rp->hcap ? rp->hcap * 2 : 16;
      hdr_t *h = realloc(rp->hdrs, (size_t)cap * sizeof *h);
      if (!h) return rp_fail(rp, 500, "out of memory");
      rp->hdrs = h;
      rp->hcap = cap;
    }
    rp->hdrs[rp->nhdrs].name = (uint32_t)rp->alen;
    rp->hdrs[rp->nhdrs].nlen = 0;
    rp->hdrs[rp->nhdrs].value = (uint32_t)rp->alen;
    rp->hdrs[rp->nhdrs].vlen = 0;
    rp->nhdrs++;
    rp->last_was_value = 0;
  }
  rp->hdrs[rp->nhdrs - 1].nlen += (uint32_t)n;
  /* RFC 9112: a server must reject whitespace between a field name and its
  ** colon (http-parser lets it through), and names are tokens. */
  for (i = 0; i < n; i++)
    if (!is_tchar((unsigned char)at[i]))
      return rp_fail(rp, 400, "invalid character in header name");
  return arena_add(rp, at, n, 1);
}

static int on_header_value(http_parser *hp, const char *at, size_t n) {
  rp_t *rp = (rp_t *)hp;
  hdr_t *h = &rp->hdrs[rp->nhdrs - 1];
  if (!rp->last_was_value) {
    h->value = (uint32_t)rp->alen;
    rp->last_was_value = 1;
  }
  h->vlen += (uint32_t)n;
  return arena_add(rp, at, n, 0);
}

int tide__ieq(const char *a, size_t n, const char *lit) {
  size_t i;
  if (strlen(lit) != n) return 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)a[i];
    if ((ch >= 'A' && ch <= 'Z' ? ch + 32 : ch) != (unsigned char)lit[i])
      return 0;
  }
  return 1;
}

/* The head is complete: record what the server needs.  With a body, pause
** so the body stays in the buffer until someone asks for it; without one,
** parsing runs on to the end of the message (one pause per request, not
** two). */
static int on_headers_complete(http_parser *hp) {
  rp_t *rp = (rp_t *)hp;
  int i;
  /* http-parser takes any digit; HTTP/1.x framing is all we speak. */
  if (hp->http_major != 1)
    return rp_fail(rp, 505, "HTTP version not supported");
  rp->state = RP_BODY;
  rp->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
  rp->head_ready = 1;
  if (rp->response) {
    /* Every response head pauses, bodiless or not, so the client sees
    ** each status line (and skips 1xx ones).  A response to HEAD, and
    ** a 1xx, 204 or 304 response, has no body whatever its headers say
    ** (RFC 9112, 6.3; http-parser believes a Content-Length there): 1
    ** tells http-parser so. */
    unsigned st = hp->status_code;
    http_parser_pause(hp, 1);
    return rp->skip_body || st / 100 == 1 || st == 204 || st == 304;
  }
  rp->has_body = (hp->flags & F_CHUNKED) ||
                 (hp->content_length > 0 && hp->content_length != ULLONG_MAX);
  if (hp->http_major == 1 && hp->http_minor >= 1) {
    for (i = 0; i < rp->nhdrs; i++) {
      hdr_t *h = &rp->hdrs[i];
      if (h->nlen == 6 && memcmp(rp->arena + h->name, "expect", 6) == 0 &&
          tide__ieq(rp->arena + h->value, h->vlen, "100-continue"))
        rp->expect_continue = 1;
    }
  }
  if (rp->has_body) http_parser_pause(hp, 1);
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n) {
  rp_t *rp = (rp_t *)hp;
  rp->body_seen += n;
  if (rp->body_seen > rp->lim.body_bytes)
    return rp_fail(rp, 413, "request body too large");
  if (rp->body_mode == BODY_COLLECT) {
    if (tide__grow(&rp->body, &rp->bcap, rp->blen + n) < 0)
      return rp_fail(rp, 500, "out of memory");
    memcpy(rp->body + rp->blen, at, n);
    rp->blen += n;
  }
  return 0;
}

static int on_message_complete(http_parser *hp) {
  rp_t *rp = (rp_t *)hp;
  rp->state = RP_DONE;
  http_parser_pause(hp, 1);
  return 0;
}

static const http_parser_settings rp_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void tide__rp_init(rp_t *rp, const limits_t *lim) {
  memset(rp, 0, sizeof *rp);
  http_parser_init(&rp->hp, HTTP_REQUEST);
  rp->lim = *lim;
  rp->state = RP_IDLE;
}

void tide__rp_init_response(rp_t *rp, size_t header_bytes, int skip_body) {
  char *arena = rp->arena, *body = rp->body;
  hdr_t *hdrs = rp->hdrs;
  size_t acap = rp->acap, bcap = rp->bcap;
  int hcap = rp->hcap;
  /* Keep the buffers, unless a large body grew one: a kept-alive
  ** connection parses many responses, and sits idle between them. */
  if (bcap > 64 * 1024) {
    free(body);
    body = NULL;
    bcap = 0;
  }
  memset(rp, 0, sizeof *rp);
  http_parser_init(&rp->hp, HTTP_RESPONSE);
  rp->arena = arena;
  rp->acap = acap;
  rp->body = body;
  rp->bcap = bcap;
  rp->hdrs = hdrs;
  rp->hcap = hcap;
  rp->lim = default_limits;
  rp->lim.header_bytes = header_bytes;
  rp->lim.body_bytes = SIZE_MAX; /* the client applies max_size itself */
  rp->response = 1;
  rp->skip_body = skip_body ? 1 : 0;
  rp->state = RP_IDLE;
}

void tide__rp_free(rp_t *rp) {
  free(rp->arena);
  free(rp->hdrs);
  free(rp->body);
  rp->arena = rp->body = NULL;
  rp->hdrs = NULL;
}

void tide__rp_input(rp_t *rp, const char *data, size_t len) {
  rp->in = data;
  rp->off = 0;
  rp->len = len;
}

/* http-parser's own cap on a head (80 KiB, compiled into the library and
** only changeable process-wide) is below the 100 KiB that curl, and so the
** client, allows.  In response mode the rp's own head_bytes limit applies
** instead: feed at most 64 KiB per call and clear the library's count
** (nread, used only for that cap) before each. */
static size_t exec_response(rp_t *rp, size_t avail) {
  size_t done = 0;
  while (done < avail) {
    size_t step = avail - done > 65536 ? 65536 : avail - done, k;
    rp->hp.nread = 0;
    k = http_parser_execute(&rp->hp, &rp_settings, rp->in + rp->off + done,
                            step);
    done += k;
    if (k < step || HTTP_PARSER_ERRNO(&rp->hp) != HPE_OK) break;
  }
  return done;
}

/* Run the parser over the input view until it pauses (head or message
** complete), runs out of input, or fails.  eof: the peer has finished
** sending.  Returns STEP_OK, STEP_MORE or STEP_ERROR. */
int tide__rp_exec(rp_t *rp, int eof) {
  size_t avail = rp->len - rp->off, n;
  enum http_errno e;
  if (rp->state == RP_ERROR) return STEP_ERROR;
  if (HTTP_PARSER_ERRNO(&rp->hp) == HPE_PAUSED) http_parser_pause(&rp->hp, 0);
  if (avail > 0) {
    int was_head = rp->state == RP_IDLE || rp->state == RP_HEAD;
    n = rp->response ? exec_response(rp, avail)
                     : http_parser_execute(&rp->hp, &rp_settings,
                                           rp->in + rp->off, avail);
    rp->off += n;
    if (was_head) {
      /* The parser paused at the end of a head, so everything consumed
      ** from an idle or head state belongs to the current head. */
      rp->head_bytes += n;
      if (rp->head_bytes > rp->lim.header_bytes)
        rp_fail(rp, 431,
                rp->response ? "response header too large"
                             : "request header fields too large");
      if (rp->state != RP_IDLE && rp->state != RP_HEAD) rp->head_bytes = 0;
    }
  }
  /* The end of the input counts once everything before it is consumed,
  ** also when that happened just now: otherwise a caller that fed the
  ** last bytes and the end together would be told to wait for more. */
  if (eof && rp->off == rp->len && HTTP_PARSER_ERRNO(&rp->hp) == HPE_OK) {
    http_parser_execute(&rp->hp, &rp_settings, NULL, 0);
    if (rp->state == RP_HEAD || rp->state == RP_BODY)
      rp_fail(rp, 400,
              rp->response ? "response truncated" : "request truncated");
  }
  e = HTTP_PARSER_ERRNO(&rp->hp);
  if ((e != HPE_OK && e != HPE_PAUSED) || rp->err_status) {
    rp_fail(rp, 400, http_errno_description(e));
    /* A head that completes in this call and fails right after (a bad
    ** Transfer-Encoding) is a head error. */
    rp->err_in_body = rp->state == RP_BODY && !rp->head_ready;
    rp->state = RP_ERROR;
    return STEP_ERROR;
  }
  return (e == HPE_PAUSED) ? STEP_OK : STEP_MORE;
}

/* Advance to the next request head, discarding the unread body of the
** previous one.  STEP_OK: a head is ready (state RP_BODY).  STEP_MORE with
** state RP_IDLE means no byte of a new request is buffered. */
int tide__rp_next_head(rp_t *rp, int eof) {
  for (;;) {
    int r;
    switch (rp->state) {
      case RP_ERROR:
        return STEP_ERROR;
      case RP_DONE:
        rp->state = RP_IDLE;
        continue;
      case RP_BODY:
        rp->body_mode = BODY_DISCARD;
        r = tide__rp_exec(rp, eof);
        if (r != STEP_OK) return r;
        continue;
      default:
        rp->head_ready = 0;
        r = tide__rp_exec(rp, eof);
        if (r == STEP_ERROR) return r;
        if (!rp->head_ready) {
          if (r == STEP_OK) continue;
          /* Out of input; a clean EOF between requests is no error. */
          return STEP_MORE;
        }
        rp->head_ready = 0;
        if (rp->hp.content_length != ULLONG_MAX &&
            !(rp->hp.flags & F_CHUNKED) &&
            rp->hp.content_length > rp->lim.body_bytes) {
          rp_fail(rp, 413, "request body too large");
          rp->state = RP_ERROR;
          return STEP_ERROR;
        }
        return STEP_OK;
    }
  }
}

/* Collect the body of the current request.  STEP_OK: complete. */
int tide__rp_read_body(rp_t *rp, int eof) {
  if (rp->state == RP_DONE) return STEP_OK;
  if (rp->state != RP_BODY) return STEP_ERROR;
  rp->body_mode = BODY_COLLECT;
  for (;;) {
    int r = tide__rp_exec(rp, eof);
    if (r != STEP_OK) return r;
    if (rp->state == RP_DONE) return STEP_OK;
  }
}

/* ---- building the req table ---------------------------------------------- */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Push the percent-decoded s[0..n), '+' as space. [-0, +1, m] */
static void push_decoded(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  size_t i;
  if (!memchr(s, '%', n) && !memchr(s, '+', n)) {
    lua_pushlstring(L, s, n);
    return;
  }
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    int h1, h2;
    if (s[i] == '+') {
      luaL_addchar(&b, ' ');
    } else if (s[i] == '%' && i + 2 < n &&
               (h1 = hexval((unsigned char)s[i + 1])) >= 0 &&
               (h2 = hexval((unsigned char)s[i + 2])) >= 0) {
      luaL_addchar(&b, (char)(h1 * 16 + h2));
      i += 2;
    } else {
      luaL_addchar(&b, s[i]);
    }
  }
  luaL_pushresult(&b);
}

/* Push the decoded query table of q[0..n).  A key given more than once
** maps to a list of its values, in order. [-0, +1, m] */
static void push_query(lua_State *L, const char *q, size_t n) {
  const char *p = q, *end = q + n;
  lua_createtable(L, 0, 4);
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    if (stop > p) {
      push_decoded(L, p, (size_t)((eq ? eq : stop) - p));
      if (eq)
        push_decoded(L, eq + 1, (size_t)(stop - eq - 1));
      else
        lua_pushliteral(L, "");
      lua_pushvalue(L, -2);
      switch (lua_rawget(L, -4)) {
        case LUA_TNIL:
          lua_pop(L, 1);
          lua_rawset(L, -3);
          break;
        case LUA_TTABLE: /* already a list */
          lua_insert(L, -2);
          lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
          lua_pop(L, 2);
          break;
        default:
          lua_createtable(L, 2, 0);
          lua_insert(L, -2);
          lua_rawseti(L, -2, 1);
          lua_insert(L, -2);
          lua_rawseti(L, -2, 2);
          lua_rawset(L, -3);
          break;
      }
    }
    p = stop + 1;
  }
}

/* Push the req table of the head in rp: method, path, query (when the URL
** has one), headers (names in lower case; repeated names joined with
** ", ").  With `extra`, also version and keep_alive (for the Parser
** object). [-0, +1, m] */
void tide__rp_push_request(lua_State *L, rp_t *rp, int flags) {
  const char *url = rp->arena, *path = url, *q = NULL;
  size_t plen = rp->url_len, qlen = 0;
  lua_createtable(L, 0, (flags & RP_PUSH_EXTRA) ? 7 : 3);
  lua_pushstring(L, http_method_str((enum http_method)rp->hp.method));
  lua_setfield(L, -2, "method");
  if (plen > 0 && url[0] != '/' && url[0] != '*' &&
      rp->hp.method != HTTP_CONNECT) {
    /* absolute-form: http://host/path?query */
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, plen, 0, &u) == 0) {
      if (u.field_set & (1 << UF_PATH)) {
        path = url + u.field_data[UF_PATH].off;
        plen = u.field_data[UF_PATH].len;
      } else {
        path = "/";
        plen = 1;
      }
      if (u.field_set & (1 << UF_QUERY)) {
        q = url + u.field_data[UF_QUERY].off;
        qlen = u.field_data[UF_QUERY].len;
      }
    }
  } else {
    const char *mark = memchr(url, '?', plen);
    const char *hash = memchr(url, '#', plen);
    if (hash) plen = (size_t)(hash - url);
    if (mark && mark < url + plen) {
      q = mark + 1;
      qlen = plen - (size_t)(q - url);
      plen = (size_t)(mark - url);
    }
  }
  lua_pushlstring(L, path, plen);
  lua_setfield(L, -2, "path");
  if (q) {
    push_query(L, q, qlen);
    lua_setfield(L, -2, "query");
  }
  if (flags & RP_PUSH_HEADERS) {
    tide__rp_push_headers(L, rp);
    lua_setfield(L, -2, "headers");
  }
  if (flags & RP_PUSH_EXTRA) {
    lua_pushfstring(L, "%d.%d", (int)rp->hp.http_major, (int)rp->hp.http_minor);
    lua_setfield(L, -2, "version");
    lua_pushboolean(L, rp->keep_alive);
    lua_setfield(L, -2, "keep_alive");
    lua_pushboolean(L, rp->expect_continue);
    lua_setfield(L, -2, "expect_continue");
  }
}

/* Push the headers table of the current head: names in lower case,
** repeated names joined with ", ". [-0, +1, m] */
void tide__rp_push_headers(lua_State *L, rp_t *rp) {
  int i;
  lua_createtable(L, 0, rp->nhdrs);
  for (i = 0; i < rp->nhdrs; i++) {
    hdr_t *h = &rp->hdrs[i];
    const char *v = rp->arena + h->value;
    size_t vlen = h->vlen;
    /* http-parser leaves trailing blanks in values */
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
    lua_pushlstring(L, rp->arena + h->name, h->nlen);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, v, vlen);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, v, vlen);
    }
    lua_rawset(L, -3);
  }
}

/* Raise the parser's protocol error: EPROTO with the HTTP status the
** server answers with in the `status` field. [-0, +0, v] */
int tide__rp_raise(lua_State *L, rp_t *rp, const char *op) {
  tide_error_push(L, "EPROTO", op, NULL,
                  rp->err_msg ? rp->err_msg : "malformed request");
  lua_pushinteger(L, rp->err_status ? rp->err_status : 400);
  lua_setfield(L, -2, "status");
  return lua_error(L);
}

/* ---- the Parser object (unit-level access to the core) ------------------- */

typedef struct {
  rp_t rp;
  char *buf; /* fed, not yet parsed */
  size_t len, cap;
  int eof;
} parser_ud;

/* Point the parser at the buffered bytes / drop what it consumed. */
static void parser_begin(parser_ud *p) {
  tide__rp_input(&p->rp, p->buf, p->len);
}

static void parser_end(parser_ud *p) {
  size_t used = p->rp.off;
  if (used > 0) {
    memmove(p->buf, p->buf + used, p->len - used);
    p->len -= used;
  }
  tide__rp_input(&p->rp, NULL, 0);
}

static parser_ud *check_parser(lua_State *L) {
  return (parser_ud *)luaL_checkudata(L, 1, PARSER_MT);
}

/* http_server.parser([limits]) -> Parser */
static int hs_parser(lua_State *L) {
  limits_t lim;
  parser_ud *p;
  tide__rp_limits(L, 1, &lim);
  p = (parser_ud *)lua_newuserdatauv(L, sizeof *p, 0);
  tide__rp_init(&p->rp, &lim);
  p->buf = NULL;
  p->len = p->cap = 0;
  p->eof = 0;
  luaL_setmetatable(L, PARSER_MT);
  return 1;
}

/* p:feed(data) appends bytes; p:feed(nil) marks the end of input. */
static int parser_feed(lua_State *L) {
  parser_ud *p = check_parser(L);
  size_t n;
  const char *s;
  if (lua_isnoneornil(L, 2)) {
    p->eof = 1;
    return 0;
  }
  s = luaL_checklstring(L, 2, &n);
  if (n == 0) return 0; /* p->buf may still be NULL: no NULL + 0 */
  if (tide__grow(&p->buf, &p->cap, p->len + n) < 0)
    return luaL_error(L, "out of memory");
  memcpy(p->buf + p->len, s, n);
  p->len += n;
  return 0;
}

/* p:next() -> the next request head, or nil when more input is needed;
** raises EPROTO (with `status`) on malformed input. */
static int parser_next(lua_State *L) {
  parser_ud *p = check_parser(L);
  int r;
  parser_begin(p);
  r = tide__rp_next_head(&p->rp, p->eof);
  parser_end(p);
  if (r == STEP_ERROR) return tide__rp_raise(L, &p->rp, "http.parse");
  if (r == STEP_MORE) return 0;
  tide__rp_push_request(L, &p->rp, RP_PUSH_HEADERS | RP_PUSH_EXTRA);
  return 1;
}

/* p:body() -> the whole body of the current request, or nil while more
** input is needed. */
static int parser_body(lua_State *L) {
  parser_ud *p = check_parser(L);
  int r;
  parser_begin(p);
  r = tide__rp_read_body(&p->rp, p->eof);
  parser_end(p);
  if (r == STEP_ERROR) {
    if (!p->rp.err_status) return luaL_error(L, "no request to read a body of");
    return tide__rp_raise(L, &p->rp, "http.parse");
  }
  if (r == STEP_MORE) return 0;
  lua_pushlstring(L, p->rp.body ? p->rp.body : "", p->rp.blen);
  return 1;
}

/* p:buffered() -> bytes received and not parsed yet */
static int parser_buffered(lua_State *L) {
  parser_ud *p = check_parser(L);
  lua_pushinteger(L, (lua_Integer)p->len);
  return 1;
}

static int parser__gc(lua_State *L) {
  parser_ud *p = (parser_ud *)luaL_checkudata(L, 1, PARSER_MT);
  tide__rp_free(&p->rp);
  free(p->buf);
  p->buf = NULL;
  p->len = p->cap = 0;
  return 0;
}

static const luaL_Reg parser_methods[] = {{"feed", parser_feed},
                                          {"next", parser_next},
                                          {"body", parser_body},
                                          {"buffered", parser_buffered},
                                          {NULL, NULL}};

static const luaL_Reg parser_funcs[] = {{"new", hs_parser}, {NULL, NULL}};

int luaopen_tide_http_parser(lua_State *L) {
  if (luaL_newmetatable(L, PARSER_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, parser_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, parser__gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, parser__gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, parser_funcs);
  return 1;
}
