/*
** net.c: the C half of tide.net (`tide._net`): name resolution with
** uv_getaddrinfo, outgoing TCP and Unix-socket connections (trying each
** resolved address in turn), listening servers that accept connections
** into Streams, and UDP sockets.  stdlib/net.lua builds the friendly API
** (options tables, timeouts, one task per connection) on top.
**
** Ownership: every libuv handle is malloc'ed and freed by its close
** callback; every request is malloc'ed and freed by its callback or by the
** resume function that runs after it.  A server keeps the connections it
** accepted but nobody took yet (at most PENDING_MAX; beyond that libuv
** leaves them in the kernel's backlog) and closes them when it closes.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "stream.h"
#include "../vm/compat.h"

#define SERVER_MT "tide.Server"
#define UDP_MT "tide.UDP"
#define PENDING_MAX 64
#define UDP_BUF (64 * 1024)

static void on_close_free(uv_handle_t *h) {
  /* owns h; nothing else refers to it */
  free(h);
}

/* Parse an IP literal (v4 or v6) into ss.  Returns 0 or a libuv error. */
static int parse_ip(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}

/* Push the host and port of a socket address; returns 2. [-0, +2, m] */
static int push_sockaddr(lua_State *L, const struct sockaddr *sa) {
  char host[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, host, sizeof host);
    lua_pushstring(L, host);
    lua_pushinteger(L, ntohs(a->sin6_port));
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, host, sizeof host);
    lua_pushstring(L, host);
    lua_pushinteger(L, ntohs(a->sin_port));
  }
  return 2;
}

/* Raise a tide.Error for uverr with an `addr` field ("host:port" or a
** path). */
static int raise_addr(lua_State *L, int uverr, const char *op,
                      const char *addr) {
  tide_error_push(L, uv_err_name(uverr), op, NULL, uv_strerror(uverr));
  if (addr) {
    lua_pushstring(L, addr);
    lua_setfield(L, -2, "addr");
  }
  return lua_error(L);
}

/* A port number argument (0-65535).  [-0, +0, v] */
static int check_port(lua_State *L, int idx) {
  lua_Integer port = luaL_checkinteger(L, idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port out of range");
  return (int)port;
}

/* ---- resolve ------------------------------------------------------------- */

typedef struct {
  uv_getaddrinfo_t req;
  tide_wait_t wait;
  struct addrinfo *res;
  int status;
} gai_t;

static void gai_cancel(tide_wait_t *w) {
  /* the callback still comes (UV_EAI_CANCELED or a result) and frees */
  gai_t *g = (gai_t *)w->data;
  uv_cancel((uv_req_t *)&g->req);
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  /* owns req and res; its task may have been cancelled */
  gai_t *g = (gai_t *)req;
  if (!g->wait.task) {
    if (res) uv_freeaddrinfo(res);
    free(g);
    return;
  }
  g->status = status;
  g->res = res;
  tide_wait_wake(&g->wait);
}

/* Resume of resolve: push the list of distinct addresses. */
static int gai_resume(lua_State *L, tide_wait_t *w) {
  gai_t *g = (gai_t *)w->data;
  struct addrinfo *ai, *res = g->res;
  int status = g->status, n = 0;
  free(g);
  if (status < 0) {
    if (res) uv_freeaddrinfo(res);
    return raise_addr(L, status, "net.resolve", lua_tostring(L, 1));
  }
  lua_newtable(L); /* list */
  lua_newtable(L); /* seen */
  for (ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    push_sockaddr(L, ai->ai_addr);
    lua_pop(L, 1); /* the port */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, -4);
    lua_rawseti(L, -3, ++n);
  }
  lua_pop(L, 1);
  uv_freeaddrinfo(res);
  return 1;
}

/* resolve(host [, family]) -> {"addr", ...}; family is "inet", "inet6" or
** nil for both. */
static int net_resolve(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  const char *fam = luaL_optstring(L, 2, NULL);
  struct addrinfo hints;
  tide_task_t *t;
  gai_t *g;
  int r;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (!fam)
    hints.ai_family = AF_UNSPEC;
  else if (strcmp(fam, "inet") == 0)
    hints.ai_family = AF_INET;
  else if (strcmp(fam, "inet6") == 0)
    hints.ai_family = AF_INET6;
  else
    return luaL_argerror(L, 2, "\"inet\" or \"inet6\" expected");
  t = tide_async_check(L, "net.resolve");
  (void)t;
  g = (gai_t *)calloc(1, sizeof *g);
  if (!g) return tide_error_raise(L, UV_ENOMEM, "net.resolve", host);
  r = uv_getaddrinfo(tide_runtime_loop(tide_runtime_from(L)), &g->req, on_gai,
                     host, NULL, &hints);
  if (r < 0) {
    free(g);
    return raise_addr(L, r, "net.resolve", host);
  }
  tide_wait_init(&g->wait, gai_cancel, gai_resume, g, 0);
  return tide_wait_yield(L, &g->wait, "net.resolve");
}

/* ---- connect ------------------------------------------------------------- */

/* One connect operation: resolve (unless the host is a literal), then try
** each address until one connects.  All of it runs in callbacks; the task
** wakes once, with a connected handle or the last error. */
typedef struct {
  tide_wait_t wait;
  uv_getaddrinfo_t gai;
  uv_connect_t conn;
  uv_loop_t *loop;
  struct addrinfo *res, *cur; /* resolved list and the next to try */
  uv_stream_t *h;             /* the attempt in flight, or the winner */
  int status;
  int resolving;
} conn_t;

/* Free a connect operation and its resolved addresses. */
static void conn_free(conn_t *c) {
  if (c->res) uv_freeaddrinfo(c->res);
  free(c);
}

static void on_connect(uv_connect_t *req, int status);

/* Start connecting to the next address; wakes the task when none is
** left.  Runs in callbacks and in connect itself. */
static void conn_next(conn_t *c) {
  while (c->cur) {
    struct addrinfo *ai = c->cur;
    uv_tcp_t *tcp;
    int r;
    c->cur = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    tcp = (uv_tcp_t *)malloc(sizeof *tcp);
    if (!tcp) {
      c->status = UV_ENOMEM;
      break;
    }
    uv_tcp_init(c->loop, tcp);
    r = uv_tcp_connect(&c->conn, tcp, ai->ai_addr, on_connect);
    if (r == 0) {
      c->h = (uv_stream_t *)tcp;
      return;
    }
    c->status = r;
    uv_close((uv_handle_t *)tcp, on_close_free);
  }
  tide_wait_wake(&c->wait);
}

static void on_connect(uv_connect_t *req, int status) {
  /* owns req's conn_t if the task was cancelled; the hook closed the
  ** handle then, and its close callback frees it */
  conn_t *c = tide_container_of(req, conn_t, conn);
  if (!c->wait.task) {
    conn_free(c);
    return;
  }
  if (status == 0) {
    c->status = 0;
    tide_wait_wake(&c->wait);
    return;
  }
  c->status = status;
  uv_close((uv_handle_t *)c->h, on_close_free);
  c->h = NULL;
  conn_next(c);
}

static void on_conn_resolved(uv_getaddrinfo_t *req, int status,
                             struct addrinfo *res) {
  /* owns res, and the conn_t if its task was cancelled */
  conn_t *c = tide_container_of(req, conn_t, gai);
  c->resolving = 0;
  c->res = res;
  if (!c->wait.task) {
    conn_free(c);
    return;
  }
  if (status < 0) {
    c->status = status;
    tide_wait_wake(&c->wait);
    return;
  }
  c->cur = res;
  c->status = UV_EAI_NONAME;
  conn_next(c);
}

static void conn_cancel(tide_wait_t *w) {
  /* a callback still comes for the operation in flight and frees c */
  conn_t *c = (conn_t *)w->data;
  if (c->resolving) {
    uv_cancel((uv_req_t *)&c->gai);
  } else if (c->h) {
    /* on_connect runs with UV_ECANCELED before the close callback */
    uv_close((uv_handle_t *)c->h, on_close_free);
    c->h = NULL;
  }
  /* A waiting connect always has a resolve or an attempt in flight: when
  ** the last attempt fails the task is woken, and woken waits are not
  ** cancelled through this hook. */
}

/* Resume: the task owns c again.  Push the Stream or raise. */
static int conn_resume(lua_State *L, tide_wait_t *w) {
  conn_t *c = (conn_t *)w->data;
  uv_stream_t *h = c->status == 0 ? c->h : NULL;
  int status = c->status;
  tide_stream_t *s;
  conn_free(c);
  if (!h) {
    const char *addr = lua_isstring(L, 2)
                           ? lua_pushfstring(L, "%s:%s", lua_tostring(L, 1),
                                             lua_tostring(L, 2))
                           : lua_tostring(L, 1);
    return raise_addr(L, status, "net.connect", addr);
  }
  s = tide_stream_new(L, h);
  if (h->type == UV_TCP) uv_tcp_nodelay((uv_tcp_t *)h, 1);
  (void)s;
  return 1;
}

/* Allocate a connect operation with its wait.  [-0, +0, v] */
static conn_t *conn_new(lua_State *L) {
  conn_t *c = (conn_t *)calloc(1, sizeof *c);
  if (!c) tide_error_raise(L, UV_ENOMEM, "net.connect", NULL);
  c->loop = tide_runtime_loop(tide_runtime_from(L));
  tide_wait_init(&c->wait, conn_cancel, conn_resume, c, 0);
  return c;
}

/* connect_tcp(host, port) -> Stream */
static int net_connect_tcp(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = check_port(L, 2);
  struct sockaddr_storage ss;
  conn_t *c;
  int r;
  lua_settop(L, 2);
  tide_async_check(L, "net.connect");
  c = conn_new(L);
  if (parse_ip(host, port, &ss) == 0) {
    /* A literal needs no trip through the thread pool. */
    uv_tcp_t *tcp = (uv_tcp_t *)malloc(sizeof *tcp);
    if (!tcp) {
      free(c);
      return tide_error_raise(L, UV_ENOMEM, "net.connect", NULL);
    }
    uv_tcp_init(c->loop, tcp);
    r = uv_tcp_connect(&c->conn, tcp, (struct sockaddr *)&ss, on_connect);
    if (r < 0) {
      uv_close((uv_handle_t *)tcp, on_close_free);
      free(c);
      return raise_addr(L, r, "net.connect",
                        lua_pushfstring(L, "%s:%d", host, port));
    }
    c->h = (uv_stream_t *)tcp;
  } else {
    struct addrinfo hints;
    char svc[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(svc, sizeof svc, "%d", port);
    r = uv_getaddrinfo(c->loop, &c->gai, on_conn_resolved, host, svc, &hints);
    if (r < 0) {
      free(c);
      return raise_addr(L, r, "net.connect",
                        lua_pushfstring(L, "%s:%d", host, port));
    }
    c->resolving = 1;
  }
  return tide_wait_yield(L, &c->wait, "net.connect");
}

/* connect_pipe(path) -> Stream */
static int net_connect_pipe(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_pipe_t *p;
  conn_t *c;
  lua_settop(L, 1);
  tide_async_check(L, "net.connect");
  c = conn_new(L);
  p = (uv_pipe_t *)malloc(sizeof *p);
  if (!p) {
    free(c);
    return tide_error_raise(L, UV_ENOMEM, "net.connect", path);
  }
  uv_pipe_init(c->loop, p, 0);
  /* Errors arrive through on_connect, like for TCP. */
  uv_pipe_connect(&c->conn, p, path, on_connect);
  c->h = (uv_stream_t *)p;
  return tide_wait_yield(L, &c->wait, "net.connect");
}

/* ---- servers ------------------------------------------------------------- */

typedef struct {
  uv_stream_t *h; /* listening handle; NULL once closed */
  tide_runtime_t *rt;
  tide_wait_t *acceptor;             /* the task waiting in accept() */
  uv_stream_t *pending[PENDING_MAX]; /* accepted, not yet taken (a ring) */
  int head, npending;
  int backlogged; /* a connection waits in the kernel */
  int err;        /* a listen error to report */
} server_t;

/* Accept one connection from the kernel into the pending ring. */
static void server_accept_one(server_t *sv) {
  uv_stream_t *c;
  int r;
  if (sv->h->type == UV_TCP) {
    c = (uv_stream_t *)malloc(sizeof(uv_tcp_t));
    if (c) uv_tcp_init(sv->h->loop, (uv_tcp_t *)c);
  } else {
    c = (uv_stream_t *)malloc(sizeof(uv_pipe_t));
    if (c) uv_pipe_init(sv->h->loop, (uv_pipe_t *)c, 0);
  }
  if (!c) {
    sv->err = UV_ENOMEM;
    return;
  }
  r = uv_accept(sv->h, c);
  if (r < 0) {
    uv_close((uv_handle_t *)c, on_close_free);
    if (r != UV_EAGAIN) sv->err = r;
    return;
  }
  sv->pending[(sv->head + sv->npending) % PENDING_MAX] = c;
  sv->npending++;
}

static void on_connection(uv_stream_t *h, int status) {
  /* owns nothing; queues the connection for the acceptor task */
  server_t *sv = (server_t *)h->data;
  if (!sv) return;
  if (status < 0) {
    sv->err = status;
  } else if (sv->npending < PENDING_MAX) {
    server_accept_one(sv);
  } else {
    /* Leaving it in the kernel makes libuv stop polling until the next
    ** uv_accept: the backlog is the back-pressure. */
    sv->backlogged = 1;
  }
  if (sv->acceptor) tide_wait_wake(sv->acceptor);
}

static server_t *check_server(lua_State *L) {
  return (server_t *)luaL_checkudata(L, 1, SERVER_MT);
}

static void acceptor_cancel(tide_wait_t *w) {
  server_t *sv = (server_t *)w->data;
  if (sv->acceptor == w) sv->acceptor = NULL;
}

static int server_accept(lua_State *L);

static int acceptor_resume(lua_State *L, tide_wait_t *w) {
  server_t *sv = (server_t *)w->data;
  if (sv->acceptor == w) sv->acceptor = NULL;
  return server_accept(L);
}

/* server:accept() -> Stream, or nil once the server is closed. */
static int server_accept(lua_State *L) {
  server_t *sv = check_server(L);
  tide_task_t *t;
  if (sv->npending > 0) {
    uv_stream_t *c = sv->pending[sv->head];
    sv->head = (sv->head + 1) % PENDING_MAX;
    sv->npending--;
    if (sv->backlogged && sv->h) {
      sv->backlogged = 0;
      server_accept_one(sv);
    }
    tide_stream_new(L, c);
    if (c->type == UV_TCP) uv_tcp_nodelay((uv_tcp_t *)c, 1);
    return 1;
  }
  if (!sv->h) {
    lua_pushnil(L);
    return 1;
  }
  if (sv->err) {
    int e = sv->err;
    sv->err = 0;
    return tide_error_raise(L, e, "server.accept", NULL);
  }
  if (sv->acceptor)
    return luaL_error(L, "server.accept: another task is accepting");
  t = tide_async_check(L, "server.accept");
  sv->acceptor = tide_task_self_wait(t);
  tide_wait_init(sv->acceptor, acceptor_cancel, acceptor_resume, sv, 0);
  return tide_wait_yield(L, sv->acceptor, "server.accept");
}

/* close(), __close, __gc: stop listening, drop connections not taken. */
static int server_close(lua_State *L) {
  server_t *sv = check_server(L);
  if (!sv->h) return 0;
  sv->h->data = NULL;
  uv_close((uv_handle_t *)sv->h, on_close_free);
  sv->h = NULL;
  while (sv->npending > 0) {
    uv_close((uv_handle_t *)sv->pending[sv->head], on_close_free);
    sv->head = (sv->head + 1) % PENDING_MAX;
    sv->npending--;
  }
  if (sv->acceptor && !sv->rt->closing) tide_wait_wake(sv->acceptor);
  return 0;
}

/* server:port() -> the bound port (TCP) */
static int server_port(lua_State *L) {
  server_t *sv = check_server(L);
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  if (!sv->h || sv->h->type != UV_TCP) return 0;
  if (uv_tcp_getsockname((uv_tcp_t *)sv->h, (struct sockaddr *)&ss, &len))
    return 0;
  push_sockaddr(L, (struct sockaddr *)&ss);
  return 1;
}

static int server_closed(lua_State *L) {
  lua_pushboolean(L, check_server(L)->h == NULL);
  return 1;
}

static int server__tostring(lua_State *L) {
  server_t *sv = check_server(L);
  lua_pushfstring(L, "tide.Server (%s)", sv->h ? "listening" : "closed");
  return 1;
}

/* Push a new server userdata for handle h (bound, not listening yet);
** takes ownership of h. [-0, +1, m] */
static server_t *server_push(lua_State *L, uv_stream_t *h) {
  server_t *sv = (server_t *)lua_newuserdatauv(L, sizeof *sv, 0);
  memset(sv, 0, sizeof *sv);
  luaL_setmetatable(L, SERVER_MT);
  sv->h = h;
  sv->rt = tide_runtime_from(L);
  h->data = sv;
  return sv;
}

/* listen_tcp(host, port, backlog) -> server (host must be an IP literal) */
static int net_listen_tcp(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = check_port(L, 2);
  int backlog = (int)luaL_optinteger(L, 3, 511);
  struct sockaddr_storage ss;
  uv_tcp_t *tcp;
  server_t *sv;
  int r;
  if (parse_ip(host, port, &ss) != 0)
    return luaL_argerror(L, 1, "IP address expected");
  tcp = (uv_tcp_t *)malloc(sizeof *tcp);
  if (!tcp) return tide_error_raise(L, UV_ENOMEM, "net.listen", NULL);
  uv_tcp_init(tide_runtime_loop(tide_runtime_from(L)), tcp);
  sv = server_push(L, (uv_stream_t *)tcp);
  r = uv_tcp_bind(tcp, (struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)tcp, backlog, on_connection);
  if (r < 0) {
    lua_pushcfunction(L, server_close);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
    (void)sv;
    return raise_addr(L, r, "net.listen",
                      lua_pushfstring(L, "%s:%d", host, port));
  }
  return 1;
}

/* listen_pipe(path, backlog) -> server */
static int net_listen_pipe(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int backlog = (int)luaL_optinteger(L, 2, 511);
  uv_pipe_t *p = (uv_pipe_t *)malloc(sizeof *p);
  int r;
  if (!p) return tide_error_raise(L, UV_ENOMEM, "net.listen", path);
  uv_pipe_init(tide_runtime_loop(tide_runtime_from(L)), p, 0);
  server_push(L, (uv_stream_t *)p);
  r = uv_pipe_bind(p, path);
  if (r == 0) r = uv_listen((uv_stream_t *)p, backlog, on_connection);
  if (r < 0) {
    lua_pushcfunction(L, server_close);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
    return raise_addr(L, r, "net.listen", path);
  }
  return 1;
}

static const luaL_Reg server_methods[] = {{"accept", server_accept},
                                          {"close", server_close},
                                          {"closed", server_closed},
                                          {"port", server_port},
                                          {NULL, NULL}};

static const luaL_Reg server_meta[] = {{"__gc", server_close},
                                       {"__close", server_close},
                                       {"__tostring", server__tostring},
                                       {NULL, NULL}};

/* ---- UDP ----------------------------------------------------------------- */

typedef struct {
  uv_udp_t *h; /* NULL once closed */
  tide_runtime_t *rt;
  tide_wait_t *reader;
  char *buf; /* one datagram, UDP_BUF bytes */
  size_t len;
  struct sockaddr_storage from;
  int have; /* a datagram is in buf */
  int err;
} udp_t;

/* The open UDP socket at 1, or raise.  [-0, +0, v] */
static udp_t *check_udp(lua_State *L) {
  udp_t *u = (udp_t *)luaL_checkudata(L, 1, UDP_MT);
  if (!u->h) tide_error_raisef(L, "ECLOSED", "udp", "socket is closed");
  return u;
}

static void on_udp_alloc(uv_handle_t *h, size_t sz, uv_buf_t *out) {
  /* owns nothing; hands out the socket's one datagram buffer */
  udp_t *u = (udp_t *)h->data;
  (void)sz;
  if (u && u->buf && !u->have) {
    out->base = u->buf;
    out->len = UDP_BUF;
  } else {
    out->base = NULL;
    out->len = 0;
  }
}

static void on_udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                        const struct sockaddr *addr, unsigned flags) {
  /* owns nothing; keeps one datagram and stops receiving */
  udp_t *u = (udp_t *)h->data;
  (void)b;
  (void)flags;
  if (!u || (n == 0 && !addr)) return;
  if (n < 0) {
    u->err = (int)n;
  } else {
    u->len = (size_t)n;
    memcpy(&u->from, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    u->have = 1;
  }
  uv_udp_recv_stop(h);
  if (u->reader) tide_wait_wake(u->reader);
}

static void udp_reader_cancel(tide_wait_t *w) {
  udp_t *u = (udp_t *)w->data;
  if (u->reader == w) u->reader = NULL;
  if (u->h) uv_udp_recv_stop(u->h);
}

static int udp_recv(lua_State *L);

static int udp_reader_resume(lua_State *L, tide_wait_t *w) {
  udp_t *u = (udp_t *)w->data;
  if (u->reader == w) u->reader = NULL;
  return udp_recv(L);
}

/* u:recv() -> data, host, port */
static int udp_recv(lua_State *L) {
  udp_t *u = check_udp(L);
  tide_task_t *t;
  int r;
  if (u->have) {
    u->have = 0;
    lua_pushlstring(L, u->buf, u->len);
    return 1 + push_sockaddr(L, (struct sockaddr *)&u->from);
  }
  if (u->err) {
    int e = u->err;
    u->err = 0;
    return tide_error_raise(L, e, "udp.recv", NULL);
  }
  if (u->reader) return luaL_error(L, "udp.recv: another task is receiving");
  t = tide_async_check(L, "udp.recv");
  if (!u->buf && !(u->buf = (char *)malloc(UDP_BUF)))
    return tide_error_raise(L, UV_ENOMEM, "udp.recv", NULL);
  r = uv_udp_recv_start(u->h, on_udp_alloc, on_udp_recv);
  if (r < 0) return tide_error_raise(L, r, "udp.recv", NULL);
  u->reader = tide_task_self_wait(t);
  tide_wait_init(u->reader, udp_reader_cancel, udp_reader_resume, u, 0);
  return tide_wait_yield(L, u->reader, "udp.recv");
}

typedef struct {
  uv_udp_send_t req;
  char data[];
} udpsend_t;

static void on_udp_send(uv_udp_send_t *req, int status) {
  /* owns req and its copy of the datagram */
  (void)status;
  free(req);
}

/* u:send(data, host, port): host must be an IP literal (net.lua resolves
** names).  Does not wait: a datagram the kernel cannot take at once is
** copied and sent when the socket is writable. */
static int udp_send(lua_State *L) {
  udp_t *u = check_udp(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *host = luaL_checkstring(L, 3);
  int port = check_port(L, 4);
  struct sockaddr_storage ss;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  udpsend_t *sr;
  int r;
  if (parse_ip(host, port, &ss) != 0)
    return luaL_argerror(L, 3, "IP address expected");
  r = uv_udp_try_send(u->h, &b, 1, (struct sockaddr *)&ss);
  if (r >= 0) return 0;
  if (r != UV_EAGAIN)
    return raise_addr(L, r, "udp.send",
                      lua_pushfstring(L, "%s:%d", host, port));
  sr = (udpsend_t *)malloc(sizeof *sr + len);
  if (!sr) return tide_error_raise(L, UV_ENOMEM, "udp.send", NULL);
  memcpy(sr->data, data, len);
  b = uv_buf_init(sr->data, (unsigned)len);
  r = uv_udp_send(&sr->req, u->h, &b, 1, (struct sockaddr *)&ss, on_udp_send);
  if (r < 0) {
    free(sr);
    return tide_error_raise(L, r, "udp.send", NULL);
  }
  return 0;
}

/* close(), __close, __gc */
static int udp_close(lua_State *L) {
  udp_t *u = (udp_t *)luaL_checkudata(L, 1, UDP_MT);
  if (!u->h) return 0;
  uv_udp_recv_stop(u->h);
  u->h->data = NULL;
  uv_close((uv_handle_t *)u->h, on_close_free);
  u->h = NULL;
  free(u->buf);
  u->buf = NULL;
  if (u->reader && !u->rt->closing) tide_wait_wake(u->reader);
  return 0;
}

/* u:local_addr() -> host, port */
static int udp_local(lua_State *L) {
  udp_t *u = check_udp(L);
  struct sockaddr_storage ss;
  int len = (int)sizeof ss, r;
  r = uv_udp_getsockname(u->h, (struct sockaddr *)&ss, &len);
  if (r < 0) return tide_error_raise(L, r, "udp.local_addr", NULL);
  return push_sockaddr(L, (struct sockaddr *)&ss);
}

static int udp_closed(lua_State *L) {
  udp_t *u = (udp_t *)luaL_checkudata(L, 1, UDP_MT);
  lua_pushboolean(L, u->h == NULL);
  return 1;
}

static int udp__tostring(lua_State *L) {
  udp_t *u = (udp_t *)luaL_checkudata(L, 1, UDP_MT);
  lua_pushfstring(L, "tide.UDP (%s)", u->h ? "open" : "closed");
  return 1;
}

/* udp([host, port]) -> UDP socket, bound when host is given (IP
** literal). */
static int net_udp(lua_State *L) {
  const char *host = luaL_optstring(L, 1, NULL);
  int port = lua_isnoneornil(L, 2) ? 0 : check_port(L, 2);
  struct sockaddr_storage ss;
  udp_t *u;
  int r;
  if (host && parse_ip(host, port, &ss) != 0)
    return luaL_argerror(L, 1, "IP address expected");
  u = (udp_t *)lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, UDP_MT);
  u->rt = tide_runtime_from(L);
  u->h = (uv_udp_t *)malloc(sizeof *u->h);
  if (!u->h) return tide_error_raise(L, UV_ENOMEM, "net.udp", NULL);
  uv_udp_init(tide_runtime_loop(u->rt), u->h);
  u->h->data = u;
  if (host) {
    r = uv_udp_bind(u->h, (struct sockaddr *)&ss, 0);
    if (r < 0) {
      lua_pushcfunction(L, udp_close);
      lua_pushvalue(L, -2);
      lua_call(L, 1, 0);
      return raise_addr(L, r, "net.udp",
                        lua_pushfstring(L, "%s:%d", host, port));
    }
  }
  return 1;
}

static const luaL_Reg udp_methods[] = {
    {"send", udp_send},     {"recv", udp_recv},        {"close", udp_close},
    {"closed", udp_closed}, {"local_addr", udp_local}, {NULL, NULL}};

static const luaL_Reg udp_meta[] = {{"__gc", udp_close},
                                    {"__close", udp_close},
                                    {"__tostring", udp__tostring},
                                    {NULL, NULL}};

/* is_ip(s) -> "inet" | "inet6" | nil */
static int net_is_ip(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  struct sockaddr_in a4;
  struct sockaddr_in6 a6;
  if (uv_ip4_addr(s, 0, &a4) == 0)
    lua_pushliteral(L, "inet");
  else if (uv_ip6_addr(s, 0, &a6) == 0)
    lua_pushliteral(L, "inet6");
  else
    lua_pushnil(L);
  return 1;
}

static void count_handle(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) (*(lua_Integer *)arg)++;
}

/* _handles() -> number of open (not closing) handles on the loop, for
** tests that check an operation left nothing behind. */
static int net_handles(lua_State *L) {
  lua_Integer n = 0;
  uv_walk(tide_runtime_loop(tide_runtime_from(L)), count_handle, &n);
  lua_pushinteger(L, n);
  return 1;
}

static const luaL_Reg net_funcs[] = {{"_handles", net_handles},
                                     {"resolve", net_resolve},
                                     {"connect_tcp", net_connect_tcp},
                                     {"connect_pipe", net_connect_pipe},
                                     {"listen_tcp", net_listen_tcp},
                                     {"listen_pipe", net_listen_pipe},
                                     {"udp", net_udp},
                                     {"is_ip", net_is_ip},
                                     {NULL, NULL}};

/* Register a metatable with its metamethods and an __index table of
** methods.  [-0, +0, m] */
static void new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                      const luaL_Reg *methods) {
  if (luaL_newmetatable(L, name)) {
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

int luaopen_tide_net(lua_State *L) {
  tide_stream_open(L);
  new_class(L, SERVER_MT, server_meta, server_methods);
  new_class(L, UDP_MT, udp_meta, udp_methods);
  luaL_newlib(L, net_funcs);
  return 1;
}
