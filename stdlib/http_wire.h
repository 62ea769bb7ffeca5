/*
** http_wire.h: the HTTP/1.1 message parser shared by the Parser object
** (stdlib/http_parser.c, which implements it), the server
** (stdlib/http_server.c, requests) and the client's plain-HTTP path
** (stdlib/http_fast.c, responses).  An rp_t wraps Debian's http-parser over
** an input buffer it owns: heads are copied into its arena as they are
** parsed, bodies are read only on demand, and limits turn into 4xx
** statuses.
*/
#ifndef TIDE_HTTP_WIRE_H
#define TIDE_HTTP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "tide.h"

typedef struct {
  size_t header_bytes;   /* request line and headers */
  size_t body_bytes;     /* one request body */
  int connections;       /* open connections per listener */
  double header_timeout; /* from the first byte of a head to its end */
  double idle_timeout;   /* waiting for a request, or between body reads */
} limits_t;

/* Parser states, body modes and step results. */
enum { RP_IDLE, RP_HEAD, RP_BODY, RP_DONE, RP_ERROR };
enum { BODY_HOLD, BODY_COLLECT, BODY_DISCARD };
enum { STEP_MORE, STEP_OK, STEP_ERROR };

typedef struct {
  uint32_t name, nlen, value, vlen;
} hdr_t;

/* One parser per connection (or Parser object).  The head is copied into
** `arena` as it is parsed, so the input may move or go away between
** calls. */
typedef struct {
  http_parser hp;
  limits_t lim;
  const char *in; /* the input view of one call: in[0..len),
                     in[0..off) parsed */
  size_t off, len;
  int state;     /* RP_* */
  int body_mode; /* BODY_* */
  char *arena;   /* url and headers of the current head */
  size_t alen, acap;
  size_t url_len;
  hdr_t *hdrs;
  int nhdrs, hcap;
  int last_was_value;
  size_t head_bytes; /* wire bytes of the head so far */
  char *body;        /* collected body */
  size_t blen, bcap;
  size_t body_seen; /* body bytes seen, collected or not */
  unsigned keep_alive : 1, expect_continue : 1, has_body : 1;
  unsigned head_ready : 1;  /* a head completed during this call */
  unsigned response : 1;    /* parses responses (the client) */
  unsigned skip_body : 1;   /* the response answers a HEAD request */
  unsigned err_in_body : 1; /* the error is in a body, not a head */
  int err_status;           /* 400, 413, 431 when state == RP_ERROR */
  const char *err_msg;
} rp_t;

/* Read a limits table at index t (or nil: the defaults) into *lim.
** [-0, +0, v] */
void tide__rp_limits(lua_State *L, int t, limits_t *lim);

void tide__rp_init(rp_t *rp, const limits_t *lim);
void tide__rp_free(rp_t *rp); /* frees the buffers, not rp */
/* (Re)start rp as a parser of one response, keeping its buffers (zeroed
** memory counts as none): heads over header_bytes fail, every head pauses,
** bodies are collected into rp->body, and skip_body says the request was
** HEAD. */
void tide__rp_init_response(rp_t *rp, size_t header_bytes, int skip_body);
/* Run the parser over the input view until it pauses (a head or a message
** is complete: STEP_OK), needs more input (STEP_MORE) or fails
** (STEP_ERROR).  eof: the peer sends nothing more. */
int tide__rp_exec(rp_t *rp, int eof);
/* Set the bytes the next calls parse; afterwards rp->off says how many
** of them were used (the caller drops those). */
void tide__rp_input(rp_t *rp, const char *data, size_t len);

/* Advance to the next request head, discarding the unread body of the
** previous one.  STEP_OK: a head is ready (state RP_BODY).  STEP_MORE with
** state RP_IDLE means no byte of a new request is buffered.  eof: the peer
** sends nothing more. */
int tide__rp_next_head(rp_t *rp, int eof);

/* Collect the body of the current request.  STEP_OK: complete. */
int tide__rp_read_body(rp_t *rp, int eof);

/* Push the req table of the current head: method, path, query (when the
** URL has one), and with RP_PUSH_HEADERS its headers, with RP_PUSH_EXTRA
** version, keep_alive and expect_continue. [-0, +1, m] */
#define RP_PUSH_HEADERS 1
#define RP_PUSH_EXTRA 2
void tide__rp_push_request(lua_State *L, rp_t *rp, int flags);

/* Push the headers table of the current head (names in lower case,
** repeated names joined with ", "). [-0, +1, m] */
void tide__rp_push_headers(lua_State *L, rp_t *rp);

/* Raise the parser's protocol error (EPROTO, with `status`). [-0, +0, v] */
int tide__rp_raise(lua_State *L, rp_t *rp, const char *op);

/* Grow a malloced buffer to hold `need` bytes; -1 when memory runs out. */
int tide__grow(char **buf, size_t *cap, size_t need);

/* Does a[0..n) equal the lower-case literal, ignoring ASCII case? */
int tide__ieq(const char *a, size_t n, const char *lit);

/* ---- request headers, shared by both client paths ------------------------ */

/* Is s[0..n) an HTTP token (a method or a header name)? */
int tide__http_is_token(const char *s, size_t n);

typedef int (*tide_header_fn)(void *ud, const char *name, size_t nlen,
                              const char *value, size_t vlen);

/* Check every header of the options table at idx (raising the usage error
** of a bad name or value), then call fn for each; fn returns non-zero to
** stop, and the walk returns that.  [-0, +0, v] */
int tide__http_each_header(lua_State *L, int idx, tide_header_fn fn, void *ud);

#endif
