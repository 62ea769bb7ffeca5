/*
** process.c: the C half of tide.process - child processes on uv_spawn.
**
** run(): one malloced record owns the uv_process_t, the three pipes, a
** timer and the captured output.  Both output pipes are read to their end
** while the input is written, so a child that fills one pipe while we wait
** on the other cannot deadlock.  The record is freed when its last handle
** is closed and the task no longer needs it (a reference count).
**
** spawn(): a Process userdata points at a malloced child record (the
** uv_process_t and a grace timer); its pipes are tide.Streams (the type in
** runtime/stream.h), which own their own handles.
**
** Killing, for both: a cancelled wait (task cancel, a tide.timeout
** deadline, run's own timeout) sends SIGTERM, then SIGKILL when the grace
** period ends.  The process handle stays open until libuv has reaped the
** child, so nothing is left as a zombie; only then are the handles closed.
** Records still alive when the runtime closes are closed from the __gc of
** a registry sentinel (see "live records").
*/
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "signames.h"
#include "stream.h"

#define PROCESS_MT "tide.Process"
#define DEFAULT_GRACE 5.0  /* seconds between SIGTERM and SIGKILL */
#define OUT_CHUNK (64 * 1024)

/* ---- building uv_process_options_t ------------------------------------- */

/* Fill `o` from cmd (slot 1), args (slot 2, a list or nil) and the options
** table at `oi` (env=, cwd=, clear_env=).  The strings stay anchored in a
** table pushed on the stack, so the caller must keep the stack until
** uv_spawn returns.  [-0, +1, e] */
static void build_options(lua_State *L, uv_process_options_t *o, int oi) {
  int nargs = 0, i, n = 0, tbl;
  char **argv, **envp = NULL;
  memset(o, 0, sizeof *o);
  o->file = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    nargs = (int)luaL_len(L, 2);
  }
  if (!lua_isnoneornil(L, oi)) luaL_checktype(L, oi, LUA_TTABLE);
  lua_newtable(L);  /* anchors for the strings below */
  tbl = lua_gettop(L);
  argv = (char **)lua_newuserdatauv(L, (size_t)(nargs + 2) * sizeof *argv,
                                    0);
  lua_rawseti(L, tbl, 1);
  argv[0] = (char *)o->file;
  for (i = 1; i <= nargs; i++) {
    lua_rawgeti(L, 2, i);
    if (!lua_isstring(L, -1))
      luaL_argerror(L, 2, lua_pushfstring(L, "item %d is not a string", i));
    argv[i] = (char *)lua_tostring(L, -1);
    lua_rawseti(L, tbl, i + 1);
  }
  argv[nargs + 1] = NULL;
  o->args = argv;
  if (lua_isnoneornil(L, oi)) return;
  if (lua_getfield(L, oi, "cwd") != LUA_TNIL) {
    if (!lua_isstring(L, -1)) luaL_argerror(L, oi, "'cwd' must be a string");
    o->cwd = lua_tostring(L, -1);
    lua_rawseti(L, tbl, nargs + 2);
  } else {
    lua_pop(L, 1);
  }
  if (lua_getfield(L, oi, "env") != LUA_TNIL) {
    /* env is merged over the current environment (false removes a name),
    ** unless clear_env is set: the merged table is built here. */
    int env = lua_gettop(L), merged;
    extern char **environ;
    if (!lua_istable(L, env)) luaL_argerror(L, oi, "'env' must be a table");
    lua_newtable(L);
    merged = lua_gettop(L);
    lua_getfield(L, oi, "clear_env");
    if (!lua_toboolean(L, -1)) {
      char **e;
      for (e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        lua_pushlstring(L, *e, (size_t)(eq - *e));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, merged);
      }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, env)) {
      if (lua_type(L, -2) != LUA_TSTRING ||
          !(lua_isstring(L, -1) || lua_isboolean(L, -1)) ||
          (lua_isboolean(L, -1) && lua_toboolean(L, -1)))
        luaL_argerror(L, oi, "'env' maps names to strings (or false)");
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      if (lua_isboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
      }
      lua_rawset(L, merged);
    }
    lua_pushnil(L);
    while (lua_next(L, merged)) n++, lua_pop(L, 1);
    envp = (char **)lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *envp, 0);
    lua_rawseti(L, tbl, nargs + 3);
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, merged)) {
      envp[i] = (char *)lua_pushfstring(L, "%s=%s", lua_tostring(L, -2),
                                        lua_tostring(L, -1));
      lua_rawseti(L, tbl, nargs + 4 + i);
      i++;
      lua_pop(L, 1);
    }
    envp[i] = NULL;
    o->env = envp;
    lua_settop(L, tbl);
  } else {
    lua_pop(L, 1);
  }
}

static double opt_number(lua_State *L, int oi, const char *k, double def) {
  double v = def;
  if (lua_istable(L, oi)) {
    if (lua_getfield(L, oi, k) != LUA_TNIL) {
      if (!lua_isnumber(L, -1))
        luaL_argerror(L, oi, lua_pushfstring(L, "'%s' must be a number", k));
      v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
  }
  return v;
}

static uint64_t to_ms(double s) {
  return s <= 0 ? 0 : (uint64_t)(s * 1000.0 + 0.5);
}

/* Push code, signal name for an exit: code is nil when a signal ended the
** child. [-0, +2, m] */
static void push_exit(lua_State *L, int64_t code, int sig) {
  if (sig) {
    const char *name = tide_signame(sig);
    lua_pushnil(L);
    if (name) lua_pushstring(L, name);
    else lua_pushinteger(L, sig);
  } else {
    lua_pushinteger(L, (lua_Integer)code);
    lua_pushnil(L);
  }
}

/* ---- live records -------------------------------------------------------- */

/* Every run and child record is on a per-runtime list while it lives, so
** that closing the runtime can close the handles of children that are
** still running: the engine closes leftover handles without their
** callbacks, which would leak the records.  The list head lives in a
** registry userdata whose __gc runs during lua_close. */
typedef struct node node_t;
typedef struct {
  node_t *head;
} registry_t;

struct node {
  node_t *prev, *next;
  registry_t *owner;             /* NULL once the runtime closed */
  void (*abandon)(node_t *n);    /* close every handle of the record */
};

#define REGISTRY_KEY "tide.process.records"

static void node_link(lua_State *L, node_t *n, void (*abandon)(node_t *)) {
  registry_t *reg;
  lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
  reg = (registry_t *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  n->abandon = abandon;
  n->owner = reg;
  n->prev = NULL;
  n->next = reg ? reg->head : NULL;
  if (n->next) n->next->prev = n;
  if (reg) reg->head = n;
}

static void node_unlink(node_t *n) {
  if (!n->owner) return;
  if (n->prev) n->prev->next = n->next;
  else n->owner->head = n->next;
  if (n->next) n->next->prev = n->prev;
  n->owner = NULL;
}

/* __gc of the registry (the runtime is closing): close what still runs. */
static int registry__gc(lua_State *L) {
  registry_t *reg = (registry_t *)lua_touserdata(L, 1);
  while (reg->head) {
    node_t *n = reg->head;
    node_unlink(n);
    n->abandon(n);
  }
  return 0;
}

static void close_if_open(uv_handle_t *h, uv_close_cb cb) {
  if (!uv_is_closing(h)) uv_close(h, cb);
}

/* ---- run ----------------------------------------------------------------- */

typedef struct {
  char *data;
  size_t len, cap;
} obuf_t;

typedef struct {
  node_t node;
  tide_wait_t wait;
  int task_ref;      /* the task still holds its reference */
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_write_t wreq;
  char *input;
  size_t input_len;
  obuf_t ob[2];      /* stdout, stderr */
  int reading[2];    /* the pipe is still being read */
  int refs;          /* handles not yet closed + 1 while a task owns it */
  int exited, sig;
  int64_t code;
  int timed_out;     /* run's own timeout expired */
  int killing;       /* SIGTERM sent; the timer now ends the grace */
  int finished;      /* every handle is closing */
  int error;         /* a pipe error */
  double grace;
} run_t;

static void run_unref(run_t *r) {
  if (--r->refs > 0) return;
  node_unlink(&r->node);
  free(r->input);
  free(r->ob[0].data);
  free(r->ob[1].data);
  free(r);
}

/* The task lets go of the record (after its resume, or on cancel). */
static void run_drop_task(run_t *r) {
  if (!r->task_ref) return;
  r->task_ref = 0;
  run_unref(r);
}

static void run_closed(uv_handle_t *h) {
  /* owns one reference of the record */
  run_unref((run_t *)h->data);
}

static void run_close_pipe(uv_pipe_t *p) {
  if (!uv_is_closing((uv_handle_t *)p))
    uv_close((uv_handle_t *)p, run_closed);
}

/* The child exited and both outputs ended (or were abandoned): close
** everything and wake the task. */
static void run_check_done(run_t *r) {
  if (r->finished || !r->exited || r->reading[0] || r->reading[1]) return;
  r->finished = 1;
  run_close_pipe(&r->in);
  run_close_pipe(&r->out);
  run_close_pipe(&r->err);
  uv_close((uv_handle_t *)&r->timer, run_closed);
  uv_close((uv_handle_t *)&r->proc, run_closed);
  tide_wait_wake(&r->wait);
}

/* The runtime is closing: close every handle (the callbacks free the
** record); the task, if any, will never resume. */
static void run_abandon(node_t *n) {
  run_t *r = (run_t *)n;
  r->finished = 1;
  /* uv_close never calls back at once, so r stays valid until the task's
  ** reference, dropped last, is let go. */
  close_if_open((uv_handle_t *)&r->in, run_closed);
  close_if_open((uv_handle_t *)&r->out, run_closed);
  close_if_open((uv_handle_t *)&r->err, run_closed);
  close_if_open((uv_handle_t *)&r->timer, run_closed);
  close_if_open((uv_handle_t *)&r->proc, run_closed);
  run_drop_task(r);
}

static void run_on_timer(uv_timer_t *t) {
  /* owns nothing: the timeout expired, or the grace period did */
  run_t *r = (run_t *)t->data;
  if (r->exited) return;
  if (!r->killing) {
    r->timed_out = 1;
    r->killing = 1;
    uv_process_kill(&r->proc, SIGTERM);
    uv_timer_start(&r->timer, run_on_timer, to_ms(r->grace), 0);
  } else {
    uv_process_kill(&r->proc, SIGKILL);
  }
}

static void run_kill(run_t *r) {
  if (r->exited || r->killing) return;
  r->killing = 1;
  uv_process_kill(&r->proc, SIGTERM);
  uv_timer_start(&r->timer, run_on_timer, to_ms(r->grace), 0);
}

static void run_on_exit(uv_process_t *p, int64_t status, int sig) {
  /* owns nothing; libuv has reaped the child */
  run_t *r = (run_t *)p->data;
  r->exited = 1;
  r->code = status;
  r->sig = sig;
  uv_timer_stop(&r->timer);
  if (r->killing) {
    /* A killed child's own children may hold the pipes open: stop
    ** waiting for their end. */
    r->reading[0] = r->reading[1] = 0;
  }
  run_check_done(r);
}

static void run_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  /* owns nothing; grows the output buffer of the pipe */
  run_t *r = (run_t *)h->data;
  obuf_t *b = &r->ob[h == (uv_handle_t *)&r->out ? 0 : 1];
  (void)hint;
  if (b->cap - b->len < OUT_CHUNK) {
    size_t cap = b->cap ? b->cap * 2 : OUT_CHUNK * 2;
    char *n = realloc(b->data, cap);
    if (!n) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    b->data = n;
    b->cap = cap;
  }
  *buf = uv_buf_init(b->data + b->len, (unsigned)(b->cap - b->len));
}

static void run_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  /* owns nothing; the bytes are already in the output buffer */
  run_t *r = (run_t *)s->data;
  int i = s == (uv_stream_t *)&r->out ? 0 : 1;
  (void)buf;
  if (n > 0) {
    r->ob[i].len += (size_t)n;
    return;
  }
  if (n == 0) return;
  if (n != UV_EOF && !r->error) r->error = (int)n;
  uv_read_stop(s);
  r->reading[i] = 0;
  run_check_done(r);
}

static void run_on_write(uv_write_t *w, int status) {
  /* owns nothing; a child that exits without reading its input gives
  ** EPIPE here, which is not an error of run */
  run_t *r = (run_t *)w->data;
  (void)status;
  run_close_pipe(&r->in);
}

static void run_cancel(tide_wait_t *w) {
  run_t *r = (run_t *)w->data;
  run_kill(r);
  if (r->exited) {
    /* Only the output was still awaited (a grandchild may hold the
    ** pipes): nobody wants it now. */
    r->reading[0] = r->reading[1] = 0;
    run_check_done(r);
  }
  /* The task gives up its reference; the handles keep the record. */
  run_drop_task(r);
}

static int run_resume(lua_State *L, tide_wait_t *w) {
  run_t *r = (run_t *)w->data;
  if (r->timed_out) {
    double t = opt_number(L, 3, "timeout", 0);
    run_drop_task(r);
    tide_error_push(L, "ETIMEDOUT", "process.run", lua_tostring(L, 1),
                    lua_pushfstring(L, "killed after %f s", t));
    return lua_error(L);
  }
  if (r->error) {
    int e = r->error;
    run_drop_task(r);
    return tide_error_raise(L, e, "process.run", lua_tostring(L, 1));
  }
  lua_createtable(L, 0, 4);
  push_exit(L, r->code, r->sig);
  lua_setfield(L, -3, "signal");
  lua_setfield(L, -2, "code");
  lua_pushlstring(L, r->ob[0].data ? r->ob[0].data : "", r->ob[0].len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, r->ob[1].data ? r->ob[1].data : "", r->ob[1].len);
  lua_setfield(L, -2, "stderr");
  run_drop_task(r);
  return 1;
}

/* process.run(cmd [, args [, opts]]) -> {code=, signal=, stdout=, stderr=}
** opts: input=, env=, clear_env=, cwd=, timeout=, grace=. */
static int process_run(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  const char *input = NULL;
  size_t input_len = 0;
  double timeout, grace;
  run_t *r;
  int e;
  build_options(L, &o, 3);
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "input");
    if (!lua_isnil(L, -1)) {
      if (!lua_isstring(L, -1))
        luaL_argerror(L, 3, "'input' must be a string");
      input = lua_tolstring(L, -1, &input_len);
    }
    lua_pop(L, 1);  /* still anchored by the options table */
  }
  timeout = opt_number(L, 3, "timeout", 0);
  grace = opt_number(L, 3, "grace", DEFAULT_GRACE);
  tide_async_check(L, "process.run");
  if (!(r = calloc(1, sizeof *r))) return luaL_error(L, "not enough memory");
  if (input_len > 0) {
    if (!(r->input = malloc(input_len))) {
      free(r);
      return luaL_error(L, "not enough memory");
    }
    memcpy(r->input, input, input_len);
    r->input_len = input_len;
  }
  r->grace = grace;
  uv_pipe_init(rt->loop, &r->in, 0);
  uv_pipe_init(rt->loop, &r->out, 0);
  uv_pipe_init(rt->loop, &r->err, 0);
  uv_timer_init(rt->loop, &r->timer);
  r->in.data = r->out.data = r->err.data = r->timer.data = r->proc.data = r;
  r->wreq.data = r;
  r->refs = 5 + 1;  /* four handles and the process, plus the task */
  r->task_ref = 1;
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&r->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&r->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&r->err;
  o.stdio = stdio;
  o.stdio_count = 3;
  o.exit_cb = run_on_exit;
  if ((e = uv_spawn(rt->loop, &r->proc, &o)) < 0) {
    /* The handles were initialised: close them all; the last close frees
    ** the record. */
    r->refs--;
    r->task_ref = 0;
    r->finished = 1;
    run_close_pipe(&r->in);
    run_close_pipe(&r->out);
    run_close_pipe(&r->err);
    uv_close((uv_handle_t *)&r->timer, run_closed);
    uv_close((uv_handle_t *)&r->proc, run_closed);
    return tide_error_raise(L, e, "process.run", o.file);
  }
  r->reading[0] = r->reading[1] = 1;
  uv_read_start((uv_stream_t *)&r->out, run_alloc, run_on_read);
  uv_read_start((uv_stream_t *)&r->err, run_alloc, run_on_read);
  if (r->input_len > 0) {
    uv_buf_t b = uv_buf_init(r->input, (unsigned)r->input_len);
    if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, run_on_write) < 0)
      run_close_pipe(&r->in);
  } else {
    run_close_pipe(&r->in);  /* the child reads EOF */
  }
  if (timeout > 0) uv_timer_start(&r->timer, run_on_timer, to_ms(timeout), 0);
  node_link(L, &r->node, run_abandon);
  tide_wait_init(&r->wait, run_cancel, run_resume, r, 0);
  return tide_wait_yield(L, &r->wait, "process.run");
}

/* ---- spawn and Process --------------------------------------------------- */

typedef struct {
  node_t node;
  uv_process_t proc;
  uv_timer_t timer;   /* the grace period of a kill */
  tide_waitq_t waiters;
  int refs;           /* two handles + the userdata */
  int exited, sig, killing;
  int64_t code;
  int pid;
  double grace;
} child_t;

typedef struct {
  child_t *c;
} process_t;

/* Uservalues of a Process: its three streams (or false) and its name. */
enum { PUV_STDIN = 1, PUV_STDOUT, PUV_STDERR, PUV_CMD, PUV_N = PUV_CMD };

static void child_unref(child_t *c) {
  if (--c->refs > 0) return;
  node_unlink(&c->node);
  free(c);
}

static void child_closed(uv_handle_t *h) {
  /* owns one reference of the child record */
  child_unref((child_t *)h->data);
}

static void child_on_exit(uv_process_t *p, int64_t status, int sig) {
  /* owns nothing; libuv has reaped the child, so the handles can go */
  child_t *c = (child_t *)p->data;
  tide_wait_t *w;
  c->exited = 1;
  c->code = status;
  c->sig = sig;
  uv_close((uv_handle_t *)&c->timer, child_closed);
  uv_close((uv_handle_t *)&c->proc, child_closed);
  while ((w = tide_waitq_pop(&c->waiters)) != NULL) tide_wait_wake(w);
}

/* The runtime is closing: close the handles of a child that still runs
** (it is left running, as a collected Process leaves it). */
static void child_abandon(node_t *n) {
  child_t *c = (child_t *)n;
  close_if_open((uv_handle_t *)&c->timer, child_closed);
  close_if_open((uv_handle_t *)&c->proc, child_closed);
}

static void child_on_grace(uv_timer_t *t) {
  /* owns nothing: the grace period after SIGTERM ended */
  child_t *c = (child_t *)t->data;
  if (!c->exited) uv_process_kill(&c->proc, SIGKILL);
}

/* SIGTERM now, SIGKILL when the grace period ends. */
static void child_terminate(child_t *c) {
  if (c->exited || c->killing) return;
  c->killing = 1;
  uv_process_kill(&c->proc, SIGTERM);
  uv_timer_start(&c->timer, child_on_grace, to_ms(c->grace), 0);
}

static process_t *check_process(lua_State *L) {
  return (process_t *)luaL_checkudata(L, 1, PROCESS_MT);
}

/* The child record of the Process at 1.  After __gc let it go, another
** finalizer may still reach the Process: raise rather than crash. */
static child_t *check_child(lua_State *L) {
  process_t *p = check_process(L);
  if (!p->c) luaL_error(L, "attempt to use a finalized Process");
  return p->c;
}

static void wait_cancel(tide_wait_t *w) {
  child_t *c = (child_t *)w->data;
  tide_waitq_remove(&c->waiters, w);
  /* A task that stops waiting for its child takes the child with it. */
  child_terminate(c);
}

static int wait_resume(lua_State *L, tide_wait_t *w) {
  child_t *c = (child_t *)w->data;
  push_exit(L, c->code, c->sig);
  return 2;
}

/* p:wait() -> code, signal (code is nil when a signal ended the child).
** Cancelling the waiting task kills the child. */
static int process_wait(lua_State *L) {
  child_t *c = check_child(L);
  tide_task_t *t;
  lua_settop(L, 1);
  if (c->exited) return wait_resume(L, &(tide_wait_t){.data = c});
  t = tide_async_check(L, "process.wait");
  tide_wait_init(&t->self, wait_cancel, wait_resume, c, TIDE_WAIT_DROPPABLE);
  tide_waitq_push(&c->waiters, &t->self);
  return tide_wait_yield(L, &t->self, "process");
}

/* p:kill([sig]) -> true; signals the child ("TERM" by default).  Killing
** a child that already exited raises ESRCH. */
static int process_kill(lua_State *L) {
  child_t *c = check_child(L);
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : tide_checksignal(L, 2);
  int r;
  if (c->exited)
    return tide_error_raise(L, UV_ESRCH, "process.kill", NULL);
  if ((r = uv_process_kill(&c->proc, sig)) < 0)
    return tide_error_raise(L, r, "process.kill", NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* Close the streams of the Process at slot 1. */
static void close_streams(lua_State *L) {
  int i;
  for (i = PUV_STDIN; i <= PUV_STDERR; i++) {
    tide_stream_t *s;
    lua_getiuservalue(L, 1, i);
    if ((s = tide_stream_to(L, -1)) != NULL) tide_stream_close(s);
    lua_pop(L, 1);
  }
}

/* p:close() and <close>: close the pipes and terminate the child if it
** still runs (SIGTERM, SIGKILL after the grace period); it is reaped in
** the background.  Idempotent. */
static int process_close(lua_State *L) {
  process_t *p = check_process(L);
  close_streams(L);
  if (p->c) child_terminate(p->c); /* NULL after __gc: nothing to do */
  return 0;
}

/* __gc differs from close on purpose: a Process nobody references any
** more leaves its child running (as Python and Node.js do), so a
** collection never kills a program; the child is still reaped when it
** exits, because the process handle stays open until then. */
static int process__gc(lua_State *L) {
  process_t *p = check_process(L);
  if (p->c) {
    child_unref(p->c);
    p->c = NULL;
  }
  return 0;
}

static int process__index(lua_State *L) {
  process_t *p = check_process(L);
  const char *k = lua_tostring(L, 2);
  if (k) {
    if (strcmp(k, "pid") == 0) {
      lua_pushinteger(L, check_child(L)->pid);
      return 1;
    }
    if (strcmp(k, "stdin") == 0 || strcmp(k, "stdout") == 0 ||
        strcmp(k, "stderr") == 0) {
      int i = k[3] == 'i' ? PUV_STDIN : k[3] == 'o' ? PUV_STDOUT : PUV_STDERR;
      if (lua_getiuservalue(L, 1, i) == LUA_TBOOLEAN) lua_pushnil(L);
      return 1;
    }
    if (strcmp(k, "code") == 0 || strcmp(k, "signal") == 0) {
      check_child(L);
      if (!p->c->exited) {
        lua_pushnil(L);
        return 1;
      }
      push_exit(L, p->c->code, p->c->sig);
      if (k[0] == 'c') lua_pop(L, 1);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int process__tostring(lua_State *L) {
  process_t *p = check_process(L);
  if (!p->c) {
    lua_pushliteral(L, "Process (finalized)");
    return 1;
  }
  lua_getiuservalue(L, 1, PUV_CMD);
  lua_pushfstring(L, "Process %d (%s) %s", p->c->pid, lua_tostring(L, -1),
                  p->c->exited ? "exited" : "running");
  return 1;
}

/* "pipe" (default), "inherit" or "null" for stdio slot fd. */
static int stdio_mode(lua_State *L, int oi, const char *k) {
  static const char *const modes[] = {"pipe", "inherit", "null", NULL};
  int m = 0;
  if (lua_istable(L, oi)) {
    lua_getfield(L, oi, k);
    if (!lua_isnil(L, -1)) {
      const char *s = lua_tostring(L, -1);
      for (m = 0; modes[m] && (!s || strcmp(s, modes[m]) != 0); m++) {}
      if (!modes[m])
        luaL_argerror(L, oi, lua_pushfstring(L, "'%s' must be \"pipe\", "
                                             "\"inherit\" or \"null\"", k));
    }
    lua_pop(L, 1);
  }
  return m;
}

static void free_pipe(uv_handle_t *h) {
  /* owns h, a pipe malloced by process_spawn that never got a Stream */
  free(h);
}

/* process.spawn(cmd [, args [, opts]]) -> Process with stdin, stdout,
** stderr (Streams, unless opts.stdin/stdout/stderr is "inherit" or
** "null"), pid, wait(), kill(sig), close().  opts also takes env=,
** clear_env=, cwd=, grace=. */
static int process_spawn(lua_State *L) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  tide_runtime_t *rt = tide__rt(L);
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  uv_pipe_t *pipes[3] = {NULL, NULL, NULL};
  process_t *p;
  child_t *c;
  int i, e, mode[3], ud;
  double grace = opt_number(L, 3, "grace", DEFAULT_GRACE);
  for (i = 0; i < 3; i++) mode[i] = stdio_mode(L, 3, names[i]);
  build_options(L, &o, 3);
  p = (process_t *)lua_newuserdatauv(L, sizeof *p, PUV_N);
  p->c = NULL;
  ud = lua_gettop(L);
  if (!(c = calloc(1, sizeof *c))) return luaL_error(L, "not enough memory");
  for (i = 0; i < 3; i++) {
    if (mode[i] == 0) {
      if (!(pipes[i] = malloc(sizeof *pipes[i]))) {
        while (i-- > 0) free(pipes[i]);
        free(c);
        return luaL_error(L, "not enough memory");
      }
      uv_pipe_init(rt->loop, pipes[i], 0);
      stdio[i].flags = UV_CREATE_PIPE |
                       (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
      stdio[i].data.stream = (uv_stream_t *)pipes[i];
    } else if (mode[i] == 1) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    } else {
      stdio[i].flags = UV_IGNORE;
    }
  }
  o.stdio = stdio;
  o.stdio_count = 3;
  o.exit_cb = child_on_exit;
  c->grace = grace;
  c->proc.data = c->timer.data = c;
  uv_timer_init(rt->loop, &c->timer);
  if ((e = uv_spawn(rt->loop, &c->proc, &o)) < 0) {
    for (i = 0; i < 3; i++)
      if (pipes[i]) uv_close((uv_handle_t *)pipes[i], free_pipe);
    c->refs = 2;
    uv_close((uv_handle_t *)&c->timer, child_closed);
    uv_close((uv_handle_t *)&c->proc, child_closed);
    return tide_error_raise(L, e, "process.spawn", o.file);
  }
  c->pid = c->proc.pid;
  c->refs = 3;
  node_link(L, &c->node, child_abandon);
  p->c = c;
  luaL_setmetatable(L, PROCESS_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, ud, PUV_CMD);
  /* Wrap the pipes last: each tide_stream_new owns its handle even when
  ** it raises, and the Process already owns the child. */
  for (i = 0; i < 3; i++) {
    if (pipes[i]) {
      uv_pipe_t *h = pipes[i];
      pipes[i] = NULL;
      tide_stream_new(L, (uv_stream_t *)h);
    } else {
      lua_pushboolean(L, 0);
    }
    lua_setiuservalue(L, ud, PUV_STDIN + i);
  }
  lua_settop(L, ud);
  return 1;
}

/* process.pid() -> this process's id. */
static int process_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_os_getpid());
  return 1;
}

/* process.kill(pid [, sig]) -> true */
static int process_killpid(lua_State *L) {
  int pid = (int)luaL_checkinteger(L, 1);
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : tide_checksignal(L, 2);
  int r = uv_kill(pid, sig);
  if (r < 0) return tide_error_raise(L, r, "process.kill", NULL);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg process_methods[] = {
  {"wait", process_wait},
  {"kill", process_kill},
  {"close", process_close},
  {NULL, NULL}
};

static const luaL_Reg process_funcs[] = {
  {"run", process_run},
  {"spawn", process_spawn},
  {"pid", process_pid},
  {"kill", process_killpid},
  {NULL, NULL}
};

int luaopen_tide_process(lua_State *L) {
  if (luaL_newmetatable(L, PROCESS_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, process_methods, 0);
    lua_pushcclosure(L, process__index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, process__gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, process_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, process__tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY) == LUA_TNIL) {
    registry_t *reg = (registry_t *)lua_newuserdatauv(L, sizeof *reg, 0);
    reg->head = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, registry__gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
  }
  lua_pop(L, 1);
  tide_stream_open(L);
  luaL_newlib(L, process_funcs);
  return 1;
}
