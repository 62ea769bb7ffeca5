/*
** http_client.c: tide._http_client, the C half of tide.http_client.  It
** drives libcurl's multi interface from the tide loop: curl tells us which
** sockets to watch (CURLMOPT_SOCKETFUNCTION, one malloced uv_poll_t per
** socket) and when to call it back (CURLMOPT_TIMERFUNCTION, one uv_timer_t),
** and libuv callbacks hand the events to curl_multi_socket_action.  curl's
** own callbacks (socket, timer, header, write) run inside that call, so they
** only copy bytes into C buffers and wake tasks; Lua values are made later,
** on the task's own stack.
**
** Each runtime has one client (a userdata anchored in the module's
** upvalues): the multi handle with its connection cache, the poll handles,
** the timer, a pool of idle easy handles, and the list of live transfers.
** A transfer (xfer_t, malloced) belongs to the task waiting for it, or, for
** a streamed response, to its tide.HttpStream userdata.  Cancelling the
** task removes the easy handle from the multi at once, so no curl callback
** can reach a freed transfer.
**
** libcurl is loaded with dlopen on the first request, not linked: its
** shared-library dependencies cost several milliseconds at startup, which
** every `tide` run would pay (see docs/http_client.md for the numbers).
*/
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_wire.h"

#define CLIENT_MT "tide.HttpClient"
#define STREAM_MT "tide.HttpStream"
#define POOL_MAX 256             /* idle easy handles kept for reuse */
#define STREAM_HIGH (256 * 1024) /* pause a stream with this much unread */
#define STREAM_LOW (64 * 1024)   /* ... and resume it below this */
#define DEFAULT_MAX_REDIRS 20L
#define STR_(x) #x
#define STR(x) STR_(x)
#define VERSION_DOTTED    \
  STR(TIDE_VERSION_MAJOR) \
  "." STR(TIDE_VERSION_MINOR) "." STR(TIDE_VERSION_PATCH)
#define USER_AGENT "tide/" VERSION_DOTTED

/* ---- libcurl, loaded on first use ---------------------------------------- */

static struct {
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  CURLcode (*easy_pause)(CURL *, int);
  const char *(*easy_strerror)(CURLcode);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_cleanup)(CURLM *);
  CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  curl_version_info_data *(*version_info)(CURLversion);
} cu;

static uv_once_t cu_once = UV_ONCE_INIT;
static char cu_error[512]; /* empty when libcurl loaded fine */

#define CU_SYM(field, name)                                      \
  do {                                                           \
    *(void **)&cu.field = dlsym(h, name);                        \
    if (!cu.field) {                                             \
      snprintf(cu_error, sizeof cu_error, "%s not found", name); \
      return;                                                    \
    }                                                            \
  } while (0)

/* Runs once per process (uv_once), so several runtimes in several threads
** share one loaded library and one curl_global_init. */
static void cu_load(void) {
  void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!h) h = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(cu_error, sizeof cu_error,
             "cannot load libcurl (install libcurl4): %s", dlerror());
    return;
  }
  CU_SYM(global_init, "curl_global_init");
  CU_SYM(easy_init, "curl_easy_init");
  CU_SYM(easy_cleanup, "curl_easy_cleanup");
  CU_SYM(easy_reset, "curl_easy_reset");
  CU_SYM(easy_setopt, "curl_easy_setopt");
  CU_SYM(easy_getinfo, "curl_easy_getinfo");
  CU_SYM(easy_pause, "curl_easy_pause");
  CU_SYM(easy_strerror, "curl_easy_strerror");
  CU_SYM(multi_init, "curl_multi_init");
  CU_SYM(multi_cleanup, "curl_multi_cleanup");
  CU_SYM(multi_setopt, "curl_multi_setopt");
  CU_SYM(multi_add_handle, "curl_multi_add_handle");
  CU_SYM(multi_remove_handle, "curl_multi_remove_handle");
  CU_SYM(multi_socket_action, "curl_multi_socket_action");
  CU_SYM(multi_info_read, "curl_multi_info_read");
  CU_SYM(multi_assign, "curl_multi_assign");
  CU_SYM(slist_append, "curl_slist_append");
  CU_SYM(slist_free_all, "curl_slist_free_all");
  CU_SYM(version_info, "curl_version_info");
  if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    snprintf(cu_error, sizeof cu_error, "curl_global_init failed");
}

/* ---- records ------------------------------------------------------------- */

typedef struct client client_t;
typedef struct xfer xfer_t;
typedef struct stream stream_t;

typedef struct {
  char *data;
  size_t len, off, cap; /* bytes [off, len) are unread */
} buf_t;

/* One watched socket.  Malloced; freed only in its close callback. */
typedef struct sock {
  uv_poll_t poll;
  client_t *c;
  curl_socket_t fd;
  int want;  /* what curl watches (0: curl forgot it) */
  int armed; /* what the poll handle watches (0: stopped) */
  int owned; /* opened by on_open_socket: a connection's
                socket, closed through on_close_socket */
  struct sock *prev, *next;
} sock_t;

struct client {
  uv_loop_t *loop;
  CURLM *multi;      /* made on the first request */
  uv_timer_t *timer; /* malloced; freed in its close callback */
  sock_t *socks;     /* every poll handle, watched or kept idle */
  sock_t **byfd;     /* the same, indexed by socket */
  size_t nbyfd;
  xfer_t *xfers; /* every transfer not yet freed */
  CURL *pool[POOL_MAX];
  int npool;
  int nwaiting;   /* tasks waiting on a transfer: while > 0 the
                     poll handles and the timer keep the loop alive */
  int ntransfers; /* transfers in the multi */
  int closed;
  lua_Integer nrequests;
};

struct xfer {
  tide_wait_t wait; /* the request: until done, or headers if stream */
  client_t *c;      /* NULL once the client closed */
  CURL *easy;
  struct curl_slist *hdrs;
  xfer_t *prev, *next;
  stream_t *owner;  /* the HttpStream userdata owning a streamed one */
  buf_t body, head; /* the body (or unread stream bytes), the header
                       block of the last response */
  char errbuf[CURL_ERROR_SIZE];
  CURLcode result;
  long status, version, oserr;
  curl_off_t max_size; /* body limit (max_size option), 0: none */
  curl_off_t received; /* body bytes received so far */
  char *url;           /* effective URL, malloced */
  unsigned stream : 1, follow : 1, dirty : 1, in_multi : 1, done : 1,
      headers_done : 1, paused : 1, held : 1, nomem : 1, toobig : 1;
};

/* A streamed response's handle on its transfer.  The read wait lives here,
** not in the transfer, because a reader must still find it after close()
** freed the transfer (the reader keeps this userdata on its stack). */
struct stream {
  xfer_t *x; /* NULL once closed */
  tide_wait_t rwait;
  int rheld; /* the reader counts in nwaiting */
};

/* ---- buffers ------------------------------------------------------------- */

static int buf_add(buf_t *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    char *d;
    if (b->off > 0 && b->len - b->off + n <= b->cap) {
      /* Enough room once the read part is dropped. */
      memmove(b->data, b->data + b->off, b->len - b->off);
      b->len -= b->off;
      b->off = 0;
    } else {
      while (cap < b->len + n) cap *= 2;
      d = realloc(b->data, cap);
      if (!d) return -1;
      b->data = d;
      b->cap = cap;
    }
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static void buf_free(buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* ---- keeping the loop alive ---------------------------------------------- */

/* The poll handles and the timer keep the loop alive only while some task
** waits on a transfer, so an idle connection in the cache, or a streamed
** response nobody reads, never keeps the process from exiting. */
static void client_refs(client_t *c, int on) {
  sock_t *s;
  for (s = c->socks; s; s = s->next) {
    if (on)
      uv_ref((uv_handle_t *)&s->poll);
    else
      uv_unref((uv_handle_t *)&s->poll);
  }
  if (c->timer) {
    if (on)
      uv_ref((uv_handle_t *)c->timer);
    else
      uv_unref((uv_handle_t *)c->timer);
  }
}

static void client_hold(client_t *c) {
  if (c->nwaiting++ == 0) client_refs(c, 1);
}

static void client_release(client_t *c) {
  if (--c->nwaiting == 0) client_refs(c, 0);
}

static void xfer_hold(xfer_t *x) {
  if (!x->held && x->c) {
    x->held = 1;
    client_hold(x->c);
  }
}

static void xfer_unhold(xfer_t *x) {
  if (x->held) {
    x->held = 0;
    if (x->c) client_release(x->c);
  }
}

static void stream_unhold(stream_t *s) {
  if (s->rheld) {
    s->rheld = 0;
    if (s->x && s->x->c) client_release(s->x->c);
  }
}

/* ---- transfers ----------------------------------------------------------- */

static int on_close_socket(void *ud, curl_socket_t fd);
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose,
                                    struct curl_sockaddr *a);

/* Options every pooled easy handle carries; a request changes the others
** and marks the transfer dirty when it sets one a plain GET does not. */
static void easy_baseline(client_t *c, CURL *e) {
  cu.easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  cu.easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)c);
  cu.easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  cu.easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)c);
  cu.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  cu.easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  cu.easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  cu.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  cu.easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  cu.easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
}

static CURL *easy_get(client_t *c) {
  CURL *e;
  if (c->npool > 0) return c->pool[--c->npool];
  e = cu.easy_init();
  if (e) easy_baseline(c, e);
  return e;
}

static void easy_put(client_t *c, CURL *e, int dirty) {
  if (c && !c->closed && c->npool < POOL_MAX) {
    if (dirty) {
      cu.easy_reset(e);
      easy_baseline(c, e);
    }
    c->pool[c->npool++] = e;
  } else {
    cu.easy_cleanup(e);
  }
}

/* Take the transfer out of the multi (if it is there); no curl callback
** can see it afterwards. */
static void xfer_detach(xfer_t *x) {
  if (x->in_multi) {
    x->in_multi = 0;
    x->c->ntransfers--;
    cu.multi_remove_handle(x->c->multi, x->easy);
  }
}

/* Free a transfer that nothing refers to any more. */
static void xfer_free(xfer_t *x) {
  client_t *c = x->c;
  xfer_unhold(x);
  if (c) {
    xfer_detach(x);
    if (x->prev)
      x->prev->next = x->next;
    else
      c->xfers = x->next;
    if (x->next) x->next->prev = x->prev;
  }
  if (x->easy) easy_put(c, x->easy, x->dirty || x->stream);
  if (x->hdrs) cu.slist_free_all(x->hdrs);
  buf_free(&x->body);
  buf_free(&x->head);
  free(x->url);
  free(x);
}

/* The response headers are complete: a streamed transfer's request can
** return now. */
static void headers_ready(xfer_t *x) {
  x->headers_done = 1;
  cu.easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->stream && x->wait.task) {
    xfer_unhold(x);
    tide_wait_wake(&x->wait);
  }
}

static void wake_reader(xfer_t *x) {
  stream_t *s = x->owner;
  if (s && s->rwait.task) {
    stream_unhold(s);
    tide_wait_wake(&s->rwait);
  }
}

/* CURLOPT_HEADERFUNCTION: keep the header block of the latest response (a
** redirect or an interim 1xx starts a new one). */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  /* runs inside curl_multi_socket_action; touches only x */
  xfer_t *x = (xfer_t *)ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) x->head.len = 0;
  if (buf_add(&x->head, p, len) != 0) {
    x->nomem = 1;
    return 0;
  }
  if (len <= 2 && (p[0] == '\r' || p[0] == '\n') && !x->headers_done) {
    long code = 0;
    char *loc = NULL;
    cu.easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 100 && code < 200) return len;
    if (x->follow && code >= 300 && code < 400) {
      cu.easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &loc);
      if (loc) return len; /* curl will follow it */
    }
    headers_ready(x);
  }
  return len;
}

/* CURLOPT_WRITEFUNCTION: collect body bytes.  A stream with enough unread
** bytes pauses the transfer; curl keeps this chunk and hands it over again
** once read() unpauses it. */
static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  /* runs inside curl_multi_socket_action or curl_easy_pause */
  xfer_t *x = (xfer_t *)ud;
  size_t len = size * n;
  if (!x->headers_done) headers_ready(x);
  if (x->stream && x->body.len - x->body.off >= STREAM_HIGH) {
    x->paused = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  x->received += (curl_off_t)len;
  if (x->max_size && x->received > x->max_size) {
    x->toobig = 1;
    return 0;
  }
  if (buf_add(&x->body, p, len) != 0) {
    x->nomem = 1;
    return 0;
  }
  if (x->stream) wake_reader(x);
  return len;
}

/* Collect finished transfers: record the outcome, take them out of the
** multi, wake whoever waits. */
static void check_done(client_t *c) {
  CURLMsg *m;
  int left;
  while ((m = cu.multi_info_read(c->multi, &left)) != NULL) {
    xfer_t *x = NULL;
    char *url = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    cu.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (!x) continue;
    x->result = m->data.result;
    x->done = 1;
    cu.easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    cu.easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &x->version);
    cu.easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &x->oserr);
    if (cu.easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK &&
        url && !x->url)
      x->url = strdup(url);
    xfer_detach(x);
    x->headers_done = 1;
    if (x->wait.task) {
      xfer_unhold(x);
      tide_wait_wake(&x->wait);
    }
    wake_reader(x);
  }
}

/* ---- libuv <-> curl ------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events);

/* Arm the poll handle for `events` unless it already is: uv_poll_start
** re-registers the fd with epoll every time. */
static void sock_arm(sock_t *s, int events) {
  if (s->armed == events && uv_is_active((uv_handle_t *)&s->poll)) return;
  s->armed = events;
  if (events)
    uv_poll_start(&s->poll, events, on_poll);
  else
    uv_poll_stop(&s->poll);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  /* owns nothing; the sock is freed only by its close callback */
  sock_t *s = (sock_t *)h->data;
  client_t *c = s->c;
  int flags = 0, running;
  if (!s->want) {
    /* An idle connection in curl's cache, left armed to save syscalls:
    ** curl checks it before reuse, so just stop watching. */
    sock_arm(s, 0);
    return;
  }
  if (status < 0) {
    /* libuv saw POLLERR (a reset, usually) and stopped the handle.  Let
    ** curl read the socket, so it reports the data that came before the
    ** reset, or the real error, instead of a bare "poll error". */
    flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    s->armed = 0;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  cu.multi_socket_action(c->multi, s->fd, flags, &running);
  if (status < 0 && !uv_is_closing((uv_handle_t *)&s->poll) && s->want)
    sock_arm(s, s->want);
  check_done(c);
}

static void on_timeout(uv_timer_t *h) {
  /* owns nothing; the client is in h->data */
  client_t *c = (client_t *)h->data;
  int running;
  cu.multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

static void free_sock(uv_handle_t *h) {
  /* owns the sock: malloced by on_socket */
  free(h->data);
}

static void free_timer(uv_handle_t *h) {
  /* owns the timer: malloced by client_multi */
  free(h);
}

/* Close a sock's poll handle (idempotent); the record is freed by the
** close callback, so curl may still pass it to on_socket until then. */
static void sock_close(client_t *c, sock_t *s) {
  if (uv_is_closing((uv_handle_t *)&s->poll)) return;
  if (s->prev)
    s->prev->next = s->next;
  else
    c->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->fd >= 0 && (size_t)s->fd < c->nbyfd && c->byfd[s->fd] == s)
    c->byfd[s->fd] = NULL;
  uv_close((uv_handle_t *)&s->poll, free_sock);
}

/* The sock kept for fd, or NULL. */
static sock_t *sock_find(client_t *c, curl_socket_t fd) {
  return fd >= 0 && (size_t)fd < c->nbyfd ? c->byfd[fd] : NULL;
}

/* Make a sock for fd and index it.  NULL when memory runs out. */
static sock_t *sock_new(client_t *c, curl_socket_t fd) {
  sock_t *s;
  if ((size_t)fd >= c->nbyfd) {
    size_t n = c->nbyfd ? c->nbyfd : 64;
    sock_t **a;
    while (n <= (size_t)fd) n *= 2;
    a = (sock_t **)realloc(c->byfd, n * sizeof *a);
    if (!a) return NULL;
    memset(a + c->nbyfd, 0, (n - c->nbyfd) * sizeof *a);
    c->byfd = a;
    c->nbyfd = n;
  }
  s = (sock_t *)malloc(sizeof *s);
  if (!s) return NULL;
  if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  s->poll.data = s;
  s->c = c;
  s->fd = fd;
  s->want = s->armed = s->owned = 0;
  s->prev = NULL;
  s->next = c->socks;
  if (c->socks) c->socks->prev = s;
  c->socks = s;
  c->byfd[fd] = s;
  if (c->nwaiting == 0) uv_unref((uv_handle_t *)&s->poll);
  return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch, rewatch or forget a socket.  When curl
** forgets a connection's socket (the connection goes back to its cache),
** the poll handle is stopped but kept, and on_close_socket closes it with
** the socket.  Other sockets (the threaded resolver's) are closed by curl
** itself: their handle goes at once. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sp) {
  /* runs inside curl; owns the sock records it creates */
  client_t *c = (client_t *)ud;
  sock_t *s = (sock_t *)sp;
  int events = 0;
  (void)e;
  /* A closing record's socket is gone; curl may mean a new socket that
  ** got the same number. */
  if (s && uv_is_closing((uv_handle_t *)&s->poll)) s = NULL;
  if (!s) s = sock_find(c, fd);
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      s->want = 0;
      /* Stop watching even a socket curl keeps: curl may close it without
      ** calling on_close_socket (it does on some failed connections), and
      ** a poll handle left armed on a closed fd makes libuv abort when it
      ** next registers it with epoll (EBADF). */
      if (!s->owned)
        sock_close(c, s);
      else
        sock_arm(s, 0);
    }
    return 0;
  }
  if (!s) {
    if (!(s = sock_new(c, fd))) return -1;
  }
  if (s != sp) cu.multi_assign(c->multi, fd, s);
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  s->want = events;
  sock_arm(s, events);
  return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: open a connection's socket.  A record left
** for the same fd number belonged to a file that is gone; drop it before
** indexing the new socket. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose,
                                    struct curl_sockaddr *a) {
  /* runs inside curl; the new sock belongs to the client */
  client_t *c = (client_t *)ud;
  curl_socket_t fd;
  sock_t *s;
  (void)purpose;
  fd = socket(a->family, a->socktype, a->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  if ((s = sock_find(c, fd)) != NULL) sock_close(c, s);
  if (!(s = sock_new(c, fd))) {
    close(fd);
    return CURL_SOCKET_BAD;
  }
  s->owned = 1;
  return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl closes a connection's socket.  Close
** our poll handle first (libuv drops the fd from epoll in uv_close), then
** the socket. */
static int on_close_socket(void *ud, curl_socket_t fd) {
  /* runs inside curl; frees the sock through its close callback */
  client_t *c = (client_t *)ud;
  sock_t *s = sock_find(c, fd);
  if (s) sock_close(c, s);
  return close(fd);
}

/* CURLMOPT_TIMERFUNCTION: curl wants on_timeout after ms (-1: never). */
static int on_timer(CURLM *m, long ms, void *ud) {
  /* runs inside curl; the timer belongs to the client */
  client_t *c = (client_t *)ud;
  (void)m;
  if (ms < 0)
    uv_timer_stop(c->timer);
  else
    uv_timer_start(c->timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

/* Make the multi handle and the timer on the first request.  [-0, +0, e] */
static void client_multi(lua_State *L, client_t *c) {
  if (c->multi) return;
  uv_once(&cu_once, cu_load);
  if (cu_error[0]) luaL_error(L, "tide.http_client: %s", cu_error);
  c->timer = (uv_timer_t *)malloc(sizeof *c->timer);
  if (!c->timer) luaL_error(L, "not enough memory");
  c->multi = cu.multi_init();
  if (!c->multi) {
    free(c->timer);
    c->timer = NULL;
    luaL_error(L, "tide.http_client: curl_multi_init failed");
  }
  uv_timer_init(c->loop, c->timer);
  c->timer->data = c;
  if (c->nwaiting == 0) uv_unref((uv_handle_t *)c->timer);
  cu.multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  cu.multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  cu.multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  cu.multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  /* curl's default cache holds 4 connections per easy handle in the
  ** multi, which drops kept-alive connections whenever few requests are
  ** in flight; keep as many as the pool of easy handles. */
  cu.multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)POOL_MAX);
}

/* close()/__gc of the client: runs when the runtime closes its lua_State,
** after every task was cancelled.  Streams still open keep their transfer
** record (their own close frees it) but lose the easy handle. */
static int client_close(lua_State *L) {
  client_t *c = (client_t *)luaL_checkudata(L, 1, CLIENT_MT);
  xfer_t *x, *next;
  if (c->closed) return 0;
  c->closed = 1;
  if (!c->multi) return 0;
  for (x = c->xfers; x; x = next) {
    next = x->next;
    xfer_unhold(x);
    if (x->owner) stream_unhold(x->owner);
    xfer_detach(x);
    cu.easy_cleanup(x->easy);
    x->easy = NULL;
    x->c = NULL;
    x->prev = x->next = NULL;
    if (!x->done) {
      x->done = 1;
      x->result = CURLE_ABORTED_BY_CALLBACK;
    }
    if (x->wait.task) tide_wait_wake(&x->wait);
    if (x->owner) wake_reader(x);
    if (!x->owner && !x->wait.task) xfer_free(x);
  }
  c->xfers = NULL;
  while (c->npool > 0) cu.easy_cleanup(c->pool[--c->npool]);
  cu.multi_cleanup(c->multi);
  c->multi = NULL;
  while (c->socks) sock_close(c, c->socks);
  free(c->byfd);
  c->byfd = NULL;
  c->nbyfd = 0;
  uv_close((uv_handle_t *)c->timer, free_timer);
  c->timer = NULL;
  return 0;
}

/* ---- errors -------------------------------------------------------------- */

/* The tide error code for a failed transfer.  TLS failures split in two:
** ECERT when the peer's certificate (or our CA file) is the problem, ETLS
** for the handshake and everything else TLS. */
static const char *curl_code_name(xfer_t *x) {
  switch (x->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return "ENOTFOUND";
    case CURLE_COULDNT_CONNECT:
      if (x->oserr > 0) return uv_err_name(-(int)x->oserr);
      return "ECONNREFUSED";
    case CURLE_OPERATION_TIMEDOUT:
      return "ETIMEDOUT";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
      return "ECERT";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return "ETLS";
    case CURLE_TOO_MANY_REDIRECTS:
      return "EREDIRECT";
    case CURLE_GOT_NOTHING:
      return "ECONNRESET";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      /* Without an errno, curl's receive errors are parse errors (a bad
      ** chunk size, for one). */
      if (x->oserr > 0) return uv_err_name(-(int)x->oserr);
      return "EPROTO";
    case CURLE_OUT_OF_MEMORY:
      /* curl 7.88 also reports an oversized response header this way. */
      return "EPROTO";
    case CURLE_WRITE_ERROR:
      return x->toobig ? "EMSGSIZE" : x->nomem ? "ENOMEM" : "EIO";
    case CURLE_FILESIZE_EXCEEDED:
      return "EMSGSIZE";
    case CURLE_ABORTED_BY_CALLBACK:
      return "ECLOSED";
    case CURLE_UNSUPPORTED_PROTOCOL: /* HTTP/0.9, or a redirect to ftp: */
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_RANGE_ERROR:
    case CURLE_URL_MALFORMAT:
      return "EPROTO";
    default:
      return "EIO";
  }
}

/* Push the error of a failed transfer. [-0, +1, m] */
static void push_error(lua_State *L, xfer_t *x, const char *url) {
  const char *msg;
  if (x->result == CURLE_ABORTED_BY_CALLBACK)
    msg = "the client was closed";
  else if (x->nomem)
    msg = "not enough memory for the response";
  else if (x->toobig || x->result == CURLE_FILESIZE_EXCEEDED) {
    msg = lua_pushfstring(L,
                          "response body larger than max_size (%I "
                          "bytes)",
                          (lua_Integer)x->max_size);
    tide_error_push(L, curl_code_name(x), "http.request", url, msg);
    lua_remove(L, -2);
    return;
  } else if (x->result == CURLE_OUT_OF_MEMORY)
    msg = "response header too large (or out of memory)";
  else if (x->errbuf[0])
    msg = x->errbuf;
  else
    msg = cu.easy_strerror(x->result);
  tide_error_push(L, curl_code_name(x), "http.request", url, msg);
}

/* ---- request ------------------------------------------------------------- */

static const char *version_name(long v) {
  switch (v) {
    case CURL_HTTP_VERSION_1_0:
      return "1.0";
    case CURL_HTTP_VERSION_2_0:
      return "2";
    case CURL_HTTP_VERSION_3:
      return "3";
    default:
      return "1.1";
  }
}

/* Push what the Lua layer turns into a Response: status, body (nil for a
** stream), raw header block, HTTP version, effective URL. [-0, +5, m] */
static void push_response(lua_State *L, xfer_t *x, int with_body) {
  lua_pushinteger(L, x->status);
  if (with_body)
    lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len);
  else
    lua_pushnil(L);
  lua_pushlstring(L, x->head.data ? x->head.data : "", x->head.len);
  lua_pushstring(L, version_name(x->version));
  if (x->url)
    lua_pushstring(L, x->url);
  else
    lua_pushvalue(L, 1);
}

static int request_resume(lua_State *L, tide_wait_t *w) {
  xfer_t *x = (xfer_t *)w->data;
  stream_t *s;
  x->wait.task = NULL;
  if (x->done && x->result != CURLE_OK) {
    push_error(L, x, lua_tostring(L, 1));
    xfer_free(x);
    return lua_error(L);
  }
  if (!x->stream) {
    push_response(L, x, 1);
    xfer_free(x);
    return 5;
  }
  if (!x->url) {
    char *url = NULL;
    if (x->easy &&
        cu.easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK &&
        url)
      x->url = strdup(url);
  }
  if (x->easy) cu.easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &x->version);
  /* The stream takes the transfer over before anything else can raise a
  ** memory error. */
  s = (stream_t *)lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->x = x;
  x->owner = s;
  luaL_setmetatable(L, STREAM_MT);
  push_response(L, x, 0);
  lua_rotate(L, -6, -1);
  return 6;
}

static void request_cancel(tide_wait_t *w) {
  /* the task is gone: stop the transfer now, curl will not call back */
  xfer_free((xfer_t *)w->data);
}

/* Collects the request headers into a curl_slist. */
typedef struct {
  lua_State *L;
  struct curl_slist *list;
  int has_expect;
} hdrlist_t;

/* Append "name: value" (curl's "name;" for an empty value); non-zero when
** memory runs out. */
static int add_header(void *ud, const char *name, size_t nlen, const char *v,
                      size_t vlen) {
  hdrlist_t *hl = (hdrlist_t *)ud;
  struct curl_slist *l;
  if (nlen == 6 && strncasecmp(name, "expect", 6) == 0) hl->has_expect = 1;
  lua_pushfstring(hl->L, vlen ? "%s: %s" : "%s;", name, v);
  l = cu.slist_append(hl->list, lua_tostring(hl->L, -1));
  lua_pop(hl->L, 1);
  if (!l) return 1;
  hl->list = l;
  return 0;
}

/* Build the request header list from the table at idx (name -> string, or
** name -> list of strings for a repeated header); the checks are shared
** with the plain-HTTP path (tide__http_each_header).  Adds "Expect:" when a
** body is sent, so curl never waits for a 100 Continue that old servers
** do not send.  Returns NULL for no headers. */
static struct curl_slist *build_headers(lua_State *L, int idx, int has_body) {
  hdrlist_t hl;
  int oom = 0;
  hl.L = L;
  hl.list = NULL;
  hl.has_expect = 0;
  if (idx) oom = tide__http_each_header(L, idx, add_header, &hl);
  if (!oom && has_body && !hl.has_expect) {
    struct curl_slist *l = cu.slist_append(hl.list, "Expect:");
    if (l)
      hl.list = l;
    else
      oom = 1;
  }
  if (oom) {
    if (hl.list) cu.slist_free_all(hl.list);
    luaL_error(L, "not enough memory");
  }
  return hl.list;
}

/* Options of a request, read from the opts table. */
typedef struct {
  int headers;    /* stack index of the headers table, or 0 */
  double timeout; /* seconds; 0 = none */
  long max_redirs;
  lua_Integer max_size; /* bytes; 0 = no limit */
  const char *cafile;
  int follow, verify, stream;
} opts_t;

static int opt_field(lua_State *L, int idx, const char *k, int type,
                     const char *tname) {
  int t = lua_getfield(L, idx, k);
  if (t != LUA_TNIL && t != type)
    luaL_error(L, "bad option '%s' to 'request' (%s expected, got %s)", k,
               tname, luaL_typename(L, -1));
  return t != LUA_TNIL;
}

static void read_opts(lua_State *L, int idx, opts_t *o) {
  memset(o, 0, sizeof *o);
  o->follow = o->verify = 1;
  o->max_redirs = DEFAULT_MAX_REDIRS;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (opt_field(L, idx, "headers", LUA_TTABLE, "table"))
    o->headers = lua_gettop(L); /* stays on the stack */
  else
    lua_pop(L, 1);
  if (opt_field(L, idx, "timeout", LUA_TNUMBER, "number")) {
    o->timeout = lua_tonumber(L, -1);
    if (!(o->timeout >= 0))
      luaL_error(L, "bad option 'timeout' to 'request' (must be >= 0)");
  }
  lua_pop(L, 1);
  if (opt_field(L, idx, "max_redirects", LUA_TNUMBER, "number")) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
      luaL_error(L,
                 "bad option 'max_redirects' to 'request' (must be a "
                 "non-negative integer)");
    o->max_redirs = (long)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  if (opt_field(L, idx, "max_size", LUA_TNUMBER, "number")) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      luaL_error(L,
                 "bad option 'max_size' to 'request' (must be a "
                 "positive integer)");
    o->max_size = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  if (opt_field(L, idx, "cafile", LUA_TSTRING, "string"))
    o->cafile = lua_tostring(L, -1); /* the opts table keeps it alive */
  lua_pop(L, 1);
  if (opt_field(L, idx, "follow", LUA_TBOOLEAN, "boolean"))
    o->follow = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (opt_field(L, idx, "verify", LUA_TBOOLEAN, "boolean"))
    o->verify = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (opt_field(L, idx, "stream", LUA_TBOOLEAN, "boolean"))
    o->stream = lua_toboolean(L, -1);
  lua_pop(L, 1);
}

/* _opts(opts) -> headers, timeout, max_redirects, max_size, follow,
** stream: the options checked and defaulted as request() does, for the
** plain-HTTP path in http_client.lua. [-0, +6, v] */
static int http_opts(lua_State *L) {
  opts_t o;
  read_opts(L, 1, &o);
  if (o.headers)
    lua_pushvalue(L, o.headers);
  else
    lua_pushnil(L);
  lua_pushnumber(L, o.timeout);
  lua_pushinteger(L, o.max_redirs);
  lua_pushinteger(L, o.max_size);
  lua_pushboolean(L, o.follow);
  lua_pushboolean(L, o.stream);
  return 6;
}

static int has_http_scheme(const char *url) {
  return strncasecmp(url, "http://", 7) == 0 ||
         strncasecmp(url, "https://", 8) == 0;
}

/* request(url, method, body, opts) -> status, body, head, version, url
** [, stream].  The Lua layer wraps the results into a Response.
** [-0, +5|6, e] */
static int http_request(lua_State *L) {
  client_t *c = (client_t *)lua_touserdata(L, lua_upvalueindex(1));
  size_t mlen, blen = 0;
  const char *url = luaL_checkstring(L, 1);
  const char *method = luaL_optlstring(L, 2, "GET", &mlen);
  const char *body = luaL_optlstring(L, 3, NULL, &blen);
  opts_t o;
  xfer_t *x;
  CURL *e;
  struct curl_slist *hdrs;
  int is_get, is_head, is_post;
  if (!has_http_scheme(url))
    luaL_argerror(L, 1, "URL must start with http:// or https://");
  if (!tide__http_is_token(method, mlen))
    luaL_argerror(L, 2, "invalid HTTP method");
  read_opts(L, 4, &o);
  tide_async_check(L, "http.request");
  if (c->closed) luaL_error(L, "http client is closed");
  client_multi(L, c);
  /* Header errors are raised before anything is allocated. */
  hdrs = build_headers(L, o.headers, body != NULL);
  x = (xfer_t *)calloc(1, sizeof *x);
  if (!x) {
    if (hdrs) cu.slist_free_all(hdrs);
    return luaL_error(L, "not enough memory");
  }
  x->c = c;
  x->stream = o.stream;
  x->follow = o.follow;
  x->hdrs = hdrs;
  e = easy_get(c);
  if (!e) {
    xfer_free(x);
    return luaL_error(L, "not enough memory");
  }
  x->easy = e;
  cu.easy_setopt(e, CURLOPT_URL, url);
  cu.easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
  cu.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  cu.easy_setopt(e, CURLOPT_WRITEDATA, (void *)x);
  cu.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  cu.easy_setopt(e, CURLOPT_HEADERDATA, (void *)x);
  cu.easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  cu.easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)o.follow);
  cu.easy_setopt(e, CURLOPT_MAXREDIRS, o.max_redirs);
  cu.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o.timeout * 1000 + 0.5));
  cu.easy_setopt(e, CURLOPT_SSL_VERIFYPEER, (long)o.verify);
  cu.easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o.verify ? 2L : 0L);
  if (o.timeout > 0 && o.timeout < 0.001)
    cu.easy_setopt(e, CURLOPT_TIMEOUT_MS, 1L);
  if (o.cafile) {
    cu.easy_setopt(e, CURLOPT_CAINFO, o.cafile);
    x->dirty = 1;
  }
  if (o.max_size) {
    /* curl refuses at once a Content-Length over the limit; on_write
    ** counts the bytes of bodies without one. */
    x->max_size = (curl_off_t)o.max_size;
    cu.easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, x->max_size);
    x->dirty = 1;
  }
  if (x->hdrs) {
    cu.easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    x->dirty = 1;
  }
  is_get = mlen == 3 && memcmp(method, "GET", 3) == 0;
  is_head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
  is_post = mlen == 4 && memcmp(method, "POST", 4) == 0;
  if (body || is_post) {
    cu.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    cu.easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body ? body : "");
    if (!is_post) cu.easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    x->dirty = 1;
  } else if (is_head) {
    cu.easy_setopt(e, CURLOPT_NOBODY, 1L);
    x->dirty = 1;
  } else if (!is_get) {
    cu.easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    x->dirty = 1;
  }
  if (cu.multi_add_handle(c->multi, e) != CURLM_OK) {
    xfer_free(x);
    return luaL_error(L, "http.request: curl_multi_add_handle failed");
  }
  x->in_multi = 1;
  c->ntransfers++;
  c->nrequests++;
  x->next = c->xfers;
  if (c->xfers) c->xfers->prev = x;
  c->xfers = x;
  tide_wait_init(&x->wait, request_cancel, request_resume, x, 0);
  /* Start the transfer now rather than from the timer curl just asked
  ** for: the request goes out while this task's siblings still run, so
  ** the server works in parallel with them.  This is not inside a curl
  ** callback, so calling curl here is allowed; if it already finished
  ** (a refused connection, a response already there), skip the wait. */
  {
    int running;
    cu.multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
  }
  if (x->done || (x->stream && x->headers_done))
    return request_resume(L, &x->wait);
  xfer_hold(x);
  return tide_wait_yield(L, &x->wait, "http.request");
}

/* ---- streamed responses -------------------------------------------------- */

static stream_t *check_stream(lua_State *L) {
  return (stream_t *)luaL_checkudata(L, 1, STREAM_MT);
}

/* Push up to n unread bytes (n == 0: all of them) and resume a paused
** transfer once the reader has caught up.  Returns 0 when nothing is
** buffered. [-0, +(0|1), m] */
static int stream_take(lua_State *L, xfer_t *x, lua_Integer n) {
  size_t avail = x->body.len - x->body.off;
  if (avail == 0) return 0;
  if (n > 0 && (size_t)n < avail) avail = (size_t)n;
  lua_pushlstring(L, x->body.data + x->body.off, avail);
  x->body.off += avail;
  if (x->body.off == x->body.len) x->body.off = x->body.len = 0;
  if (x->paused && x->in_multi && x->body.len - x->body.off < STREAM_LOW) {
    /* curl may hand over the chunk it kept right here, in on_write. */
    x->paused = 0;
    cu.easy_pause(x->easy, CURLPAUSE_CONT);
  }
  return 1;
}

/* One attempt at read(n): 1 with a result pushed, or 0 to wait.
** [-0, +(0|1), v] */
static int stream_step(lua_State *L, stream_t *s) {
  lua_Integer n = luaL_optinteger(L, 2, 0);
  xfer_t *x = s->x;
  if (!x)
    return tide_error_raisef(L, "ECLOSED", "http.read",
                             "the response was closed while reading");
  if (stream_take(L, x, n)) return 1;
  if (!x->done) return 0;
  if (x->result != CURLE_OK) {
    push_error(L, x, x->url);
    return lua_error(L);
  }
  lua_pushnil(L);
  return 1;
}

static int read_resume(lua_State *L, tide_wait_t *w);

static void read_cancel(tide_wait_t *w) {
  /* the reader went away; the transfer stays with the stream */
  stream_unhold((stream_t *)w->data);
}

static int read_wait(lua_State *L, stream_t *s) {
  tide_wait_init(&s->rwait, read_cancel, read_resume, s, TIDE_WAIT_DROPPABLE);
  if (s->x->c) {
    s->rheld = 1;
    client_hold(s->x->c);
  }
  return tide_wait_yield(L, &s->rwait, "http.read");
}

static int read_resume(lua_State *L, tide_wait_t *w) {
  stream_t *s = (stream_t *)w->data;
  w->task = NULL;
  if (stream_step(L, s)) return 1;
  /* Another task took the bytes this wake was for: wait again. */
  tide_async_check(L, "http.read");
  return read_wait(L, s);
}

/* stream:read([n]) -> up to n bytes (all buffered bytes without n), or nil
** at the end of the body; raises the transfer's error if it failed. */
static int stream_read(lua_State *L) {
  stream_t *s = check_stream(L);
  lua_Integer n = luaL_optinteger(L, 2, 0);
  if (n < 0) luaL_argerror(L, 2, "must be positive");
  if (!s->x) return luaL_error(L, "response stream is closed");
  if (s->rwait.task)
    return luaL_error(L, "another task is reading this response");
  lua_settop(L, 2);
  if (stream_step(L, s)) return 1;
  tide_async_check(L, "http.read");
  return read_wait(L, s);
}

/* close(), __close and __gc: stop the transfer (closing its connection if
** it was not finished) and free it.  A task blocked in read() gets
** ECLOSED. */
static int stream_close(lua_State *L) {
  stream_t *s = check_stream(L);
  xfer_t *x = s->x;
  if (!x) return 0;
  stream_unhold(s);
  s->x = NULL;
  x->owner = NULL;
  if (s->rwait.task) tide_wait_wake(&s->rwait);
  xfer_free(x);
  return 0;
}

/* stream:_buffered() -> bytes received but not read yet (for tests of the
** back-pressure). */
static int stream_buffered(lua_State *L) {
  stream_t *s = check_stream(L);
  lua_pushinteger(L, s->x ? (lua_Integer)(s->x->body.len - s->x->body.off) : 0);
  return 1;
}

/* ---- the module ---------------------------------------------------------- */

/* _stats() -> {transfers=, sockets=, pooled=, waiting=, live=, requests=}:
** what the client holds right now, for tests that check nothing is left
** behind. */
static int http_stats(lua_State *L) {
  client_t *c = (client_t *)lua_touserdata(L, lua_upvalueindex(1));
  sock_t *s;
  xfer_t *x;
  int nsocks = 0, nlive = 0;
  for (s = c->socks; s; s = s->next) nsocks++;
  for (x = c->xfers; x; x = x->next) nlive++;
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, c->ntransfers);
  lua_setfield(L, -2, "transfers");
  lua_pushinteger(L, nsocks);
  lua_setfield(L, -2, "sockets");
  lua_pushinteger(L, c->npool);
  lua_setfield(L, -2, "pooled");
  lua_pushinteger(L, c->nwaiting);
  lua_setfield(L, -2, "waiting");
  lua_pushinteger(L, nlive);
  lua_setfield(L, -2, "live");
  lua_pushinteger(L, c->nrequests);
  lua_setfield(L, -2, "requests");
  return 1;
}

/* curl_version() -> the libcurl version string (loads libcurl). */
static int http_curl_version(lua_State *L) {
  uv_once(&cu_once, cu_load);
  if (cu_error[0]) return luaL_error(L, "tide.http_client: %s", cu_error);
  lua_pushstring(L, cu.version_info(CURLVERSION_NOW)->version);
  return 1;
}

static const luaL_Reg http_funcs[] = {{"request", http_request},
                                      {"_opts", http_opts},
                                      {"_stats", http_stats},
                                      {"curl_version", http_curl_version},
                                      {NULL, NULL}};

static const luaL_Reg stream_methods[] = {{"read", stream_read},
                                          {"close", stream_close},
                                          {"_buffered", stream_buffered},
                                          {NULL, NULL}};

int luaopen_tide_http_client(lua_State *L) {
  tide_runtime_t *rt = tide_runtime_from(L);
  client_t *c;
  if (!rt) return luaL_error(L, "tide.http_client needs a tide runtime");
  if (luaL_newmetatable(L, STREAM_MT)) {
    luaL_newlib(L, stream_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, stream_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, stream_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, CLIENT_MT)) {
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  c = (client_t *)lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  c->loop = tide_runtime_loop(rt);
  luaL_setmetatable(L, CLIENT_MT);
  luaL_setfuncs(L, http_funcs, 1);
  return 1;
}
