/*
** repl.c: the terminal half of the REPL, the module tide._repl that
** stdlib/repl.lua drives.  While the REPL is open it owns stdin, Ctrl-C and
** the prompt line:
**
** - stdin is watched by a uv_poll_t, so the loop (and every task) keeps
**   running while the prompt waits.  On a terminal, GNU readline is driven
**   through its callback interface (line editing, history kept in
**   ~/.tide_history, completion of globals and fields); otherwise lines are
**   cut from a buffer and no prompt is printed, so the REPL can be scripted.
**   Reading a line is an ordinary wait of the calling task.
** - Ctrl-C: a uv_signal_t cancels rt->interrupt_target, the
**   statement being run, or clears the line at the prompt.  A CPU-bound
**   statement never lets the loop see that signal, so a raw SIGINT handler,
**   chained in front of libuv's, arms a count hook (lua_sethook is safe in a
**   signal handler) that raises ECANCELED inside the running task.  The
**   engine's default handler (runtime/sigint.c) stands aside while the
**   target is not the main task, which the REPL ensures, and both stand
**   aside for statements while tide.signal watches SIGINT.
** - Output written while the prompt is shown goes above it: the prompt and
**   the half-typed line are cleared, the text written, and the line drawn
**   again.
**
** There is one terminal and one SIGINT per process, so there is at most one
** open REPL (the_repl), whatever the number of runtimes.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/internal.h"

#if defined(__has_include)
#if __has_include(<readline/readline.h>)
#define TIDE_HAVE_READLINE 1
#include <readline/history.h>
#include <readline/readline.h>
#endif
#endif

#define REPL_MT "tide.Repl"
#define HISTORY_MAX 1000
/* Instructions a task other than the statement may run after a Ctrl-C
** before it counts as the busy loop that keeps the loop from seeing it. */
#define STUCK_COUNT (1 << 20)

enum { READ_NONE = 0, READ_LINE, READ_EOF, READ_INTR };

typedef struct repl {
  tide_runtime_t *rt;
  lua_State *L;    /* the main thread, for completion */
  uv_poll_t *poll; /* stdin; NULL when it cannot be polled (a
                      regular file), then reads are synchronous */
  uv_signal_t *sigint;
  uv_signal_t *sigwinch;
  int polling;
  int use_rl;  /* readline on a terminal */
  int prompts; /* print prompts without readline */
  int closed;
  tide_task_t *reader; /* the task waiting for a line */
  int prompt_on;       /* readline's handler installed */
  int outcome;         /* READ_* for the reader */
  char *line;          /* the line read (malloced) */
  char *buf;           /* input not yet cut into lines */
  size_t blen, bcap;
  int eof;
  struct sigaction chained; /* the SIGINT handler we pass signals to */
  int chaining;
  volatile sig_atomic_t sigs; /* SIGINTs seen by the raw handler */
  sig_atomic_t consumed;      /* ... of which the hook acted on */
  sig_atomic_t handled;       /* ... and the loop has seen */
  uint64_t stuck_id;          /* a background task the hook interrupted */
  tide_task_t *saved_target;
  char *history; /* history file, or NULL */
} repl_t;

static repl_t *the_repl;

/* ---- reading stdin --------------------------------------------------- */

static void on_stdin(uv_poll_t *h, int status, int events);

static void poll_start(repl_t *r) {
  if (r->poll && !r->polling) {
    uv_poll_start(r->poll, UV_READABLE, on_stdin);
    r->polling = 1;
  }
}

static void poll_stop(repl_t *r) {
  if (r->poll && r->polling) {
    uv_poll_stop(r->poll);
    r->polling = 0;
  }
}

/* Deliver the outcome to the waiting task (if any) and stop watching
** stdin until the next read. */
static void finish_read(repl_t *r, int outcome, char *line) {
  poll_stop(r);
  free(r->line);
  r->outcome = outcome;
  r->line = line;
  if (r->reader) tide_wait_wake(tide_task_self_wait(r->reader));
}

/* Cut the next line out of the buffer, if a whole one is there (or the
** input ended).  Returns 1 with r->outcome set, or 0. */
static int take_line(repl_t *r) {
  char *nl = r->blen ? memchr(r->buf, '\n', r->blen) : NULL;
  size_t len, used;
  char *line;
  if (!nl && !r->eof) return 0;
  if (!nl && r->blen == 0) {
    free(r->line);
    r->line = NULL;
    r->outcome = READ_EOF;
    return 1;
  }
  len = nl ? (size_t)(nl - r->buf) : r->blen;
  used = nl ? len + 1 : len;
  line = malloc(len + 1);
  if (!line) abort();
  memcpy(line, r->buf, len);
  line[len] = '\0';
  if (len > 0 && line[len - 1] == '\r') line[len - 1] = '\0';
  memmove(r->buf, r->buf + used, r->blen - used);
  r->blen -= used;
  free(r->line);
  r->line = line;
  r->outcome = READ_LINE;
  return 1;
}

/* Read what stdin has into the buffer; sets r->eof at its end. */
static void read_some(repl_t *r) {
  ssize_t n;
  if (r->bcap - r->blen < 4096) {
    size_t cap = r->bcap ? r->bcap * 2 : 8192;
    char *nb = realloc(r->buf, cap);
    if (!nb) abort();
    r->buf = nb;
    r->bcap = cap;
  }
  do {
    n = read(0, r->buf + r->blen, r->bcap - r->blen);
  } while (n < 0 && errno == EINTR);
  if (n > 0)
    r->blen += (size_t)n;
  else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
    r->eof = 1;
}

#ifdef TIDE_HAVE_READLINE
/* Is there input readline has not read yet? */
static int input_pending(void) {
  struct pollfd p;
  p.fd = 0;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) > 0;
}

/* readline's line handler; runs inside rl_callback_read_char.  It takes
** ownership of `line` (NULL at Ctrl-D on an empty line). */
static void on_rl_line(char *line) {
  repl_t *r = the_repl;
  rl_callback_handler_remove();
  if (!r) {
    free(line);
    return;
  }
  r->prompt_on = 0;
  if (!line) fputs("\n", stdout);
  fflush(stdout);
  finish_read(r, line ? READ_LINE : READ_EOF, line);
}
#endif

static void on_stdin(uv_poll_t *h, int status, int events) {
  /* owns nothing; the REPL record is in h->data */
  repl_t *r = (repl_t *)h->data;
  (void)events;
  if (status < 0) {
    r->eof = 1;
    if (r->use_rl) {
      finish_read(r, READ_EOF, NULL);
    } else if (take_line(r)) {
      char *line = r->line;
      r->line = NULL;
      finish_read(r, r->outcome, line);
    }
    return;
  }
#ifdef TIDE_HAVE_READLINE
  if (r->use_rl) {
    /* readline reads a byte per call: feed it what is there, but stop at
    ** a finished line, since the rest is typed ahead for the next
    ** prompt. */
    int n = 0;
    while (r->prompt_on && r->outcome == READ_NONE && n++ < 4096) {
      rl_callback_read_char();
      if (!input_pending()) break;
    }
    return;
  }
#endif
  read_some(r);
  if (take_line(r)) {
    char *line = r->line;
    r->line = NULL;
    finish_read(r, r->outcome, line);
  }
}

/* ---- the read wait ------------------------------------------------------ */

static void read_cancel(tide_wait_t *w) {
  repl_t *r = (repl_t *)w->data;
  poll_stop(r);
#ifdef TIDE_HAVE_READLINE
  if (r->prompt_on) {
    rl_callback_handler_remove();
    r->prompt_on = 0;
    fputs("\n", stdout);
    fflush(stdout);
  }
#endif
  r->reader = NULL;
  r->outcome = READ_NONE;
}

/* Push what the read got: the line, nil at the end of input, or false
** when Ctrl-C cleared the line. [-0, +1, m] */
static int push_outcome(lua_State *L, repl_t *r) {
  int outcome = r->outcome;
  r->outcome = READ_NONE;
  if (outcome == READ_LINE) {
    lua_pushstring(L, r->line ? r->line : "");
    free(r->line);
    r->line = NULL;
  } else if (outcome == READ_INTR) {
    lua_pushboolean(L, 0);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static int read_resume(lua_State *L, tide_wait_t *w) {
  repl_t *r = (repl_t *)w->data;
  r->reader = NULL;
  return push_outcome(L, r);
}

static repl_t *check_repl(lua_State *L) {
  repl_t *r = (repl_t *)luaL_checkudata(L, 1, REPL_MT);
  if (r->closed) luaL_error(L, "the REPL is closed");
  return r;
}

/* repl:readline([prompt]) -> line, or nil at the end of input, or false
** when Ctrl-C cleared the line.  Waits without blocking the loop. */
static int repl_readline(lua_State *L) {
  repl_t *r = check_repl(L);
  const char *prompt = luaL_optstring(L, 2, "> ");
  tide_task_t *t;
  lua_settop(L, 2);
  if (r->reader) return luaL_error(L, "the REPL is already reading");
  if (!r->use_rl && take_line(r)) return push_outcome(L, r);
  t = tide_async_check(L, "repl.readline");
  r->outcome = READ_NONE;
  if (!r->use_rl && !r->poll) {
    /* a regular file never blocks */
    while (!take_line(r)) read_some(r);
    return push_outcome(L, r);
  }
#ifdef TIDE_HAVE_READLINE
  if (r->use_rl) {
    rl_callback_handler_install(prompt, on_rl_line);
    r->prompt_on = 1;
  }
#endif
  if (!r->use_rl && r->prompts) {
    fputs(prompt, stdout);
    fflush(stdout);
  }
  r->reader = t;
  tide_wait_init(tide_task_self_wait(t), read_cancel, read_resume, r, 0);
  poll_start(r);
  return tide_wait_yield(L, tide_task_self_wait(t), "stdin");
}

/* ---- output above the prompt ---------------------------------------- */

/* Write s to f; while the prompt is shown, above it: clear the prompt and
** the line being typed, write, and draw them again below. */
static void write_above(repl_t *r, FILE *f, const char *s, size_t len) {
#ifdef TIDE_HAVE_READLINE
  if (!r->closed && r->prompt_on) {
    rl_clear_visible_line();
    fflush(rl_outstream); /* its escape codes go out before s */
    fwrite(s, 1, len, f);
    /* the prompt needs a line of its own */
    if (len > 0 && s[len - 1] != '\n') fputc('\n', f);
    fflush(f);
    rl_on_new_line();
    rl_redisplay();
    return;
  }
#endif
  (void)r;
  fwrite(s, 1, len, f);
  fflush(f);
}

/* repl:write(fd, s): write s to stdout (1) or stderr (2), above the prompt
** while it is shown. */
static int repl_write(lua_State *L) {
  repl_t *r = (repl_t *)luaL_checkudata(L, 1, REPL_MT);
  int fd = (int)luaL_checkinteger(L, 2);
  size_t len;
  const char *s = luaL_checklstring(L, 3, &len);
  write_above(r, fd == 2 ? stderr : stdout, s, len);
  return 0;
}

/* ---- Ctrl-C ------------------------------------------------------------ */

/* While a statement runs the terminal echoes ^C itself, without a line
** end: start the error message on a line of its own. */
static void end_echo(repl_t *r) {
  if (r->use_rl || r->prompts) {
    fputs("\n", stdout);
    fflush(stdout);
  }
}

/* Runs inside the task that was running when Ctrl-C came, if the loop has
** not seen the signal since: that task is the statement or keeps the loop
** busy.  Raise ECANCELED there. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  repl_t *r = the_repl;
  tide_task_t *t;
  tide_nest_t *n;
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (!r || r->handled == r->sigs) return;
  t = r->rt->current;
  if (!t) return;
  /* L must be the task's thread or a coroutine it is running */
  n = r->rt->nest;
  while (n && n->co != L) n = n->up;
  if (t->L != L && !n) return;
  r->consumed = r->sigs;
  if (t != r->rt->interrupt_target) r->stuck_id = t->id;
  if (!r->prompt_on) end_echo(r);
  /* cancel too, so a loop that swallows the error with pcall meets
  ** ECANCELED again at its next await */
  tide_task_cancel(t, "interrupted");
  tide_error_push(L, "ECANCELED", NULL, NULL, "task cancelled: interrupted");
  lua_error(L);
}

static void raw_sigint(int sig, siginfo_t *info, void *uctx) {
  int saved_errno = errno;
  repl_t *r = the_repl;
  if (r) {
    tide_task_t *t = r->rt->current;
    r->sigs++;
    /* while tide.signal watches SIGINT, Ctrl-C is a message for it */
    if (t && r->rt->sigint_users == 0) {
      /* hooks are per thread: hook the one running, the innermost
      ** coroutine the task resumed if any */
      lua_State *running = r->rt->nest ? r->rt->nest->co : t->L;
      if (t == r->rt->interrupt_target)
        lua_sethook(running, interrupt_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
      else
        lua_sethook(running, interrupt_hook, LUA_MASKCOUNT, STUCK_COUNT);
    }
    /* pass it on to libuv, which wakes the loop */
    if (r->chaining) {
      if (r->chained.sa_flags & SA_SIGINFO)
        r->chained.sa_sigaction(sig, info, uctx);
      else if (r->chained.sa_handler != SIG_DFL &&
               r->chained.sa_handler != SIG_IGN)
        r->chained.sa_handler(sig);
    }
  }
  errno = saved_errno;
}

/* Ctrl-C at the prompt: show ^C after the line and forget it.  The ^C
** goes out before readline gives the terminal back, which ends in a
** carriage return. */
static void drop_line(repl_t *r) {
#ifdef TIDE_HAVE_READLINE
  rl_point = rl_end;
  rl_redisplay();
  fputs("^C\n", stdout);
  fflush(stdout);
  rl_free_line_state();
  rl_callback_sigcleanup();
  rl_callback_handler_remove();
#endif
  r->prompt_on = 0;
}

static void on_sigint(uv_signal_t *h, int signum) {
  /* owns nothing; the REPL record is in h->data */
  repl_t *r = (repl_t *)h->data;
  tide_task_t *target = r->rt->interrupt_target;
  int acted = r->chaining && r->consumed == r->sigs;
  (void)signum;
  r->handled = r->sigs;
  if (r->stuck_id) {
    char msg[96];
    snprintf(msg, sizeof msg,
             "tide: interrupted task %llu, which kept the loop busy\n",
             (unsigned long long)r->stuck_id);
    r->stuck_id = 0;
    write_above(r, stderr, msg, strlen(msg));
  }
  if (acted) return; /* the hook already interrupted the statement */
  if (r->reader) {
    /* at the prompt: drop the line (and any unfinished chunk) */
    if (r->prompt_on) {
      drop_line(r);
    } else if (r->prompts) {
      fputs("\n", stdout);
      fflush(stdout);
    }
    finish_read(r, READ_INTR, NULL);
  } else if (target && r->rt->sigint_users == 0) {
    end_echo(r);
    tide_task_cancel(target, "interrupted");
  }
}

#ifdef TIDE_HAVE_READLINE
static void on_sigwinch(uv_signal_t *h, int signum) {
  /* owns nothing; the REPL record is in h->data */
  repl_t *r = (repl_t *)h->data;
  (void)signum;
  /* redraw the prompt for the new width; without a prompt shown, only
  ** note the size (results are pretty-printed to it) */
  if (r->prompt_on)
    rl_resize_terminal();
  else
    rl_reset_screen_size();
}
#endif

/* repl:set_target(task|nil): the task Ctrl-C cancels (the statement). */
static int repl_set_target(lua_State *L) {
  repl_t *r = check_repl(L);
  r->rt->interrupt_target =
      lua_isnoneornil(L, 2) ? NULL : tide_task_check(L, 2);
  return 0;
}

/* ---- completion -------------------------------------------------------- */

static const char *const keywords[] = {
    "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
    "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
    "repeat",   "return", "then", "true", "until",  "while", NULL};

/* The table of fields a value offers: itself if a table, then what its
** metatable's __index offers (a table, or the methods table that a C
** __index closure keeps as its first upvalue, as Task does).  Pushes up
** to `max` tables, returns how many. */
static int field_sources(lua_State *L, int idx, int max) {
  int n = 0, depth;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushvalue(L, idx);
    n++;
  }
  lua_pushvalue(L, idx); /* the value whose metatable comes next */
  for (depth = 0; depth < 8 && n < max; depth++) {
    if (!lua_getmetatable(L, -1)) break;
    lua_getfield(L, -1, "__index"); /* cur mt index */
    lua_replace(L, -3);
    lua_pop(L, 1);
    if (lua_iscfunction(L, -1)) {
      if (lua_getupvalue(L, -1, 1) == NULL) lua_pushnil(L);
      lua_remove(L, -2);
    }
    if (lua_type(L, -1) != LUA_TTABLE) break;
    lua_pushvalue(L, -1); /* one stays as a source */
    n++;
  }
  lua_pop(L, 1);
  return n;
}

/* Look `name` up in the value at idx without running Lua code: raw gets
** through the __index chain.  A REPL global of a stdlib module that is not
** loaded yet is required (a stdlib module loads without suspending and
** runs no user code).  Pushes the value or nil. */
static void field_get(lua_State *L, int idx, const char *name, size_t len,
                      int is_global) {
  int n, i, base;
  idx = lua_absindex(L, idx);
  base = lua_gettop(L);
  n = field_sources(L, idx, 8);
  for (i = 0; i < n; i++) {
    lua_pushlstring(L, name, len);
    if (lua_rawget(L, base + 1 + i) != LUA_TNIL) {
      lua_replace(L, base + 1);
      lua_settop(L, base + 1);
      return;
    }
    lua_pop(L, 1);
  }
  lua_settop(L, base);
  if (is_global &&
      lua_getfield(L, LUA_REGISTRYINDEX, "tide.repl.lazy") == LUA_TTABLE) {
    lua_pushlstring(L, name, len);
    if (lua_rawget(L, -2) == LUA_TSTRING) {
      lua_getglobal(L, "require");
      lua_insert(L, -2);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushnil(L);
      }
    }
    lua_remove(L, -2);
    return;
  }
  lua_settop(L, base);
  lua_pushnil(L);
}

static int is_ident_char(char c) {
  return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z');
}

static int is_ident(const char *s, size_t len) {
  size_t i;
  if (len == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < len; i++)
    if (!is_ident_char(s[i])) return 0;
  return 1;
}

/* Add `prefix .. key` to the result list at `out` (a set at out+1 keeps
** them unique), with "(" after functions. */
static void add_candidate(lua_State *L, int out, const char *prefix,
                          size_t plen, int keyidx, int is_func) {
  lua_pushlstring(L, prefix, plen);
  lua_pushvalue(L, keyidx);
  if (is_func) lua_pushliteral(L, "(");
  lua_concat(L, is_func ? 3 : 2);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, out + 1) != LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_pushboolean(L, 1);
  lua_rawset(L, out + 1);
  lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
}

/* collect(text) -> sorted list of completions of text: a global name, or
** fields after the last '.' or ':' (methods only after ':').  Protected:
** called under lua_pcall. */
static int collect(lua_State *L) {
  size_t len, plen, i;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *sep = NULL, *part, *p;
  int out, obj, n, k, methods = 0;
  for (p = text; p < text + len; p++)
    if (*p == '.' || *p == ':') sep = p;
  lua_settop(L, 1);
  lua_newtable(L);
  out = 2;
  lua_newtable(L); /* 3: seen set */
  if (sep) {
    const char *seg = text, *q;
    methods = *sep == ':';
    lua_pushglobaltable(L);
    for (q = text; q <= sep; q++) {
      if (q == sep || *q == '.' || *q == ':') {
        /* a:b.c is no expression */
        if ((*q == ':' && q != sep) || !is_ident(seg, (size_t)(q - seg)))
          goto none;
        field_get(L, -1, seg, (size_t)(q - seg), seg == text);
        lua_remove(L, -2);
        if (lua_isnil(L, -1)) goto none;
        seg = q + 1;
      }
    }
    part = sep + 1;
    plen = (size_t)(sep + 1 - text);
  } else {
    lua_pushglobaltable(L);
    part = text;
    plen = 0;
  }
  obj = lua_gettop(L);
  n = field_sources(L, obj, 8);
  for (k = 0; k < n; k++) {
    int src = obj + 1 + k;
    lua_pushnil(L);
    while (lua_next(L, src)) {
      size_t kl;
      const char *key;
      if (lua_type(L, -2) == LUA_TSTRING) {
        key = lua_tolstring(L, -2, &kl);
        if (is_ident(key, kl) && kl >= len - plen &&
            memcmp(key, part, len - plen) == 0 &&
            (!methods || lua_type(L, -1) == LUA_TFUNCTION))
          add_candidate(L, out, text, plen, lua_gettop(L) - 1,
                        lua_type(L, -1) == LUA_TFUNCTION);
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, obj);
  if (!sep) {
    /* keywords and the REPL's lazily loaded module globals */
    for (i = 0; keywords[i]; i++) {
      if (strncmp(keywords[i], part, len) == 0) {
        lua_pushstring(L, keywords[i]);
        add_candidate(L, out, "", 0, lua_gettop(L), 0);
        lua_pop(L, 1);
      }
    }
    if (lua_getfield(L, LUA_REGISTRYINDEX, "tide.repl.lazy") == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        size_t kl;
        const char *key = lua_tolstring(L, -2, &kl);
        lua_pop(L, 1);
        if (key && kl >= len && memcmp(key, part, len) == 0)
          add_candidate(L, out, "", 0, lua_gettop(L), 0);
      }
    }
  }
  lua_settop(L, out);
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, out);
  lua_call(L, 1, 0);
none:
  lua_settop(L, out);
  return 1;
}

/* repl.complete(text) -> list: what Tab offers for text. */
static int repl_complete(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  return collect(L);
}

#ifdef TIDE_HAVE_READLINE
static char *dupstr(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* readline's completion entry: the candidates for the word before the
** cursor, in readline's format (the common prefix, the matches, NULL).
** Runs inside rl_callback_read_char, from the stdin callback; it reads
** Lua tables raw under lua_pcall on the main thread, which no task is
** using then. */
static char **complete_word(const char *text, int start, int end) {
  repl_t *r = the_repl;
  lua_State *L;
  char **m = NULL;
  int top;
  size_t n, i, common = 0;
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* no file names */
  rl_completion_append_character = '\0';
  if (!r) return NULL;
  L = r->L;
  top = lua_gettop(L);
  lua_pushcfunction(L, collect);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1) ||
      (n = lua_rawlen(L, -1)) == 0) {
    lua_settop(L, top);
    return NULL;
  }
  m = calloc(n + 2, sizeof *m);
  if (!m) goto done;
  for (i = 0; i < n; i++) {
    size_t len;
    const char *s;
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    s = lua_tolstring(L, -1, &len);
    m[i + 1] = dupstr(s, len);
    lua_pop(L, 1);
    if (!m[i + 1]) goto fail;
    if (i == 0) {
      common = len;
    } else {
      size_t j = 0;
      while (j < common && m[1][j] == m[i + 1][j]) j++;
      common = j;
    }
  }
  if (n == 1) {
    m[0] = m[1];
    m[1] = NULL;
  } else {
    m[0] = dupstr(m[1], common);
    if (!m[0]) goto fail;
  }
  goto done;
fail:
  for (i = 0; i <= n; i++) free(m[i]);
  free(m);
  m = NULL;
done:
  lua_settop(L, top);
  return m;
}
#endif

/* ---- history --------------------------------------------------------- */

/* repl:add_history(line): remember a non-empty entry (not twice in a row)
** and append it to the history file at once, so a crash keeps it. */
static int repl_add_history(lua_State *L) {
  repl_t *r = check_repl(L);
  const char *line = luaL_checkstring(L, 2);
#ifdef TIDE_HAVE_READLINE
  HIST_ENTRY *last;
  if (!r->use_rl || line[0] == '\0') return 0;
  last = history_length > 0 ? history_get(history_base + history_length - 1)
                            : NULL;
  if (last && strcmp(last->line, line) == 0) return 0;
  add_history(line);
  if (r->history) append_history(1, r->history);
#else
  (void)r;
  (void)line;
#endif
  return 0;
}

/* ---- open / close ----------------------------------------------------- */

static void free_handle(uv_handle_t *h) {
  /* owns h: malloced by repl_open */
  free(h);
}

#ifdef TIDE_HAVE_READLINE
/* tide.exit() or os.exit() while the prompt is shown: give the terminal
** back in the state readline found it. */
static void repl_atexit(void) {
  if (the_repl && the_repl->prompt_on) {
    rl_callback_handler_remove();
    the_repl->prompt_on = 0;
    fputs("\n", stdout);
    fflush(stdout);
  }
}
#endif

/* close(), __close and __gc: stop reading, give SIGINT and the terminal
** back, and save the history.  Idempotent. */
static int repl_close(lua_State *L) {
  repl_t *r = (repl_t *)luaL_checkudata(L, 1, REPL_MT);
  if (r->closed) return 0;
  r->closed = 1;
  if (r->reader) finish_read(r, READ_EOF, NULL); /* it reads nil */
#ifdef TIDE_HAVE_READLINE
  if (r->prompt_on) {
    rl_callback_handler_remove();
    r->prompt_on = 0;
  }
  if (r->use_rl && r->history) history_truncate_file(r->history, HISTORY_MAX);
#endif
  if (r->chaining) {
    struct sigaction cur;
    if (sigaction(SIGINT, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
        cur.sa_sigaction == raw_sigint)
      sigaction(SIGINT, &r->chained, NULL);
    r->chaining = 0;
  }
  if (the_repl == r) the_repl = NULL;
  if (r->poll) uv_close((uv_handle_t *)r->poll, free_handle);
  if (r->sigint) uv_close((uv_handle_t *)r->sigint, free_handle);
  if (r->sigwinch) uv_close((uv_handle_t *)r->sigwinch, free_handle);
  r->poll = NULL;
  r->sigint = r->sigwinch = NULL;
  r->rt->interrupt_target = r->saved_target;
  free(r->buf);
  free(r->line);
  free(r->history);
  r->buf = r->line = r->history = NULL;
  return 0;
}

static char *history_path(void) {
  const char *env = getenv("TIDE_HISTORY"), *home;
  char *p;
  size_t n;
  if (env) return env[0] ? strdup(env) : NULL;
  home = getenv("HOME");
  if (!home || !home[0]) return NULL;
  n = strlen(home) + sizeof "/.tide_history";
  p = malloc(n);
  if (p) snprintf(p, n, "%s/.tide_history", home);
  return p;
}

/* open([{tty=}]) -> Repl.  tty defaults to whether stdin and stdout are
** terminals; with tty false no prompt or escape code is printed. */
static int repl_open(lua_State *L) {
  tide_runtime_t *rt = tide__rt(L);
  repl_t *r;
  int tty = isatty(0) && isatty(1), flags;
  struct sigaction sa;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "tty") != LUA_TNIL) tty = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (the_repl) return luaL_error(L, "a REPL is already open");
  r = (repl_t *)lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->closed = 1; /* until set up, so __gc does nothing */
  luaL_setmetatable(L, REPL_MT);
  r->rt = rt;
  r->L = rt->L;
  r->saved_target = rt->interrupt_target;
  rt->interrupt_target = NULL; /* at the prompt Ctrl-C cancels nothing */
  /* stdin: uv_poll_init makes the descriptor non-blocking, which the
  ** shell shares with us; put its flags back, reads only happen when it
  ** is readable anyway.  A regular file cannot be polled. */
  flags = fcntl(0, F_GETFL);
  r->poll = malloc(sizeof *r->poll);
  if (!r->poll) return luaL_error(L, "not enough memory");
  if (uv_poll_init(rt->loop, r->poll, 0) != 0) {
    free(r->poll);
    r->poll = NULL;
  } else {
    r->poll->data = r;
  }
  if (flags != -1) fcntl(0, F_SETFL, flags);
  r->sigint = malloc(sizeof *r->sigint);
  if (!r->sigint) abort();
  uv_signal_init(rt->loop, r->sigint);
  r->sigint->data = r;
  /* Kept referenced: a statement waiting on what nothing else can end (a
  ** future nobody sets) must leave the REPL waiting for Ctrl-C, not make
  ** the loop run dry. */
  uv_signal_start(r->sigint, on_sigint, SIGINT);
  /* Chain a raw handler in front of libuv's (installed just now, or
  ** earlier by another watcher of SIGINT) for CPU-bound statements. */
  if (sigaction(SIGINT, NULL, &r->chained) == 0) {
    sa = r->chained;
    sa.sa_sigaction = raw_sigint;
    sa.sa_flags = (r->chained.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
    if (sigaction(SIGINT, &sa, NULL) == 0) r->chaining = 1;
  }
#ifdef TIDE_HAVE_READLINE
  r->use_rl = tty && r->poll != NULL;
  if (r->use_rl) {
    static int once;
    rl_readline_name = "tide";
    rl_catch_signals = 0; /* SIGINT is ours, through libuv */
    rl_catch_sigwinch = 0;
    rl_attempted_completion_function = complete_word;
    rl_completer_word_break_characters =
        (char *)" \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]}";
    rl_instream = stdin;
    rl_outstream = stdout;
    using_history();
    stifle_history(HISTORY_MAX);
    r->history = history_path();
    if (r->history && read_history(r->history) == ENOENT)
      write_history(r->history); /* append_history needs the file */
    if (!once) {
      once = 1;
      atexit(repl_atexit);
    }
    r->sigwinch = malloc(sizeof *r->sigwinch);
    if (!r->sigwinch) abort();
    uv_signal_init(rt->loop, r->sigwinch);
    r->sigwinch->data = r;
    uv_signal_start(r->sigwinch, on_sigwinch, SIGWINCH);
    uv_unref((uv_handle_t *)r->sigwinch);
  }
#endif
  r->prompts = tty && !r->use_rl;
  r->closed = 0;
  the_repl = r;
  return 1;
}

/* repl:width() -> the terminal's width in columns (80 without one). */
static int repl_width(lua_State *L) {
  repl_t *r = check_repl(L);
  int rows = 0, cols = 0;
#ifdef TIDE_HAVE_READLINE
  if (r->use_rl) rl_get_screen_size(&rows, &cols);
#else
  (void)r;
#endif
  (void)rows;
  lua_pushinteger(L, cols > 0 ? cols : 80);
  return 1;
}

static int repl_is_tty(lua_State *L) {
  repl_t *r = check_repl(L);
  lua_pushboolean(L, r->use_rl || r->prompts);
  return 1;
}

static const luaL_Reg repl_methods[] = {{"readline", repl_readline},
                                        {"write", repl_write},
                                        {"add_history", repl_add_history},
                                        {"set_target", repl_set_target},
                                        {"is_tty", repl_is_tty},
                                        {"width", repl_width},
                                        {"close", repl_close},
                                        {NULL, NULL}};

static const luaL_Reg repl_funcs[] = {
    {"open", repl_open}, {"complete", repl_complete}, {NULL, NULL}};

/* luaopen for "tide._repl" (registered by the CLI). */
int tide__repl_open(lua_State *L) {
  if (luaL_newmetatable(L, REPL_MT)) {
    luaL_newlib(L, repl_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, repl_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, repl_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, repl_funcs);
  return 1;
}
