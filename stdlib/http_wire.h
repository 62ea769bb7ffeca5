/*
** http_wire.h: the HTTP/1.1 request parser shared by the Parser object
** (stdlib/http_parser.c, which implements it) and the server
** (stdlib/http_server.c).  An rp_t wraps Debian's http-parser over an input
** buffer it owns: heads are copied into its arena as they are parsed, bodies
** are read only on demand, and limits turn into 4xx statuses.
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
  unsigned err_in_body : 1; /* the error is in a body, not a head */
  int err_status;           /* 400, 413, 431 when state == RP_ERROR */
  const char *err_msg;
} rp_t;

/* Read a limits table at index t (or nil: the defaults) into *lim.
** [-0, +0, v] */
void tide__rp_limits(lua_State *L, int t, limits_t *lim);

void tide__rp_init(rp_t *rp, const limits_t *lim);
void tide__rp_free(rp_t *rp); /* frees the buffers, not rp */
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

#endif
