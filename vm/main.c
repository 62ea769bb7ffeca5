/*
** main.c: the `tide` command.  It takes the options of Lua's own `lua`
** (so busted's --lua= and shebang lines can use tide in its place), builds
** a runtime, and runs LUA_INIT, -e, -l, the script and the prompt inside the
** main task, so async calls work at the top level.  It owns the process
** exit status: 1 when the main task failed or an unretrieved task error was
** reported, as `lua` returns 1 on an uncaught error.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "../runtime/internal.h"

int tide__repl_open(lua_State *L); /* vm/repl.c */

#define LUA_INIT_VAR "LUA_INIT"
#define LUA_INITVARVERSION LUA_INIT_VAR LUA_VERSUFFIX

static const char *progname = "tide";

static void print_usage(const char *badoption) {
  if (badoption) {
    if (badoption[1] == 'e' || badoption[1] == 'l')
      fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
    else
      fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
  }
  fprintf(badoption ? stderr : stdout,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  -h --help show this help\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "Every chunk runs as a task: tide.sleep and other async calls\n"
          "work at the top level.\n",
          progname);
  fflush(badoption ? stderr : stdout);
}

static void print_version(void) {
  printf("%s (%s, libuv %s)\n", TIDE_VERSION, LUA_RELEASE,
         uv_version_string());
  fflush(stdout);
}

/* Bits of the options seen, as in lua.c. */
#define has_error 1
#define has_i 2
#define has_v 4
#define has_e 8
#define has_E 16
#define has_h 32

/* Scan the options; returns the flags and sets *first to the script's
** index (or argc), as lua.c's collectargs does. */
static int collectargs(char **argv, int *first) {
  int args = 0, i;
  if (argv[0] != NULL) {
    if (argv[0][0]) progname = argv[0];
  } else {
    *first = -1;
    return 0;
  }
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    switch (argv[i][1]) {
      case '-':
        if (strcmp(argv[i], "--help") == 0) return args | has_h;
        if (argv[i][2] != '\0') return has_error;
        *first = i + 1;
        return args;
      case '\0':
        return args;
      case 'E':
        if (argv[i][2] != '\0') return has_error;
        args |= has_E;
        break;
      case 'W':
        if (argv[i][2] != '\0') return has_error;
        break;
      case 'h':
        if (argv[i][2] != '\0') return has_error;
        return args | has_h;
      case 'i':
        args |= has_i; /* fallthrough: -i implies -v */
        /* FALLTHROUGH */
      case 'v':
        if (argv[i][2] != '\0') return has_error;
        args |= has_v;
        break;
      case 'e':
        args |= has_e; /* FALLTHROUGH */
      case 'l':
        if (argv[i][2] == '\0') {
          i++;
          if (argv[i] == NULL || argv[i][0] == '-') return has_error;
        }
        break;
      default:
        return has_error;
    }
  }
  *first = i;
  return args;
}

/* The `arg` table: script at 0, its arguments at 1.., the interpreter and
** options at negative indices. [-0, +0, m] */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  if (script == argc) script = 0;
  narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Message of an uncaught error, with a traceback, for stderr. */
static const char *error_text(lua_State *L, int idx, const char *tb) {
  const char *msg;
  idx = lua_absindex(L, idx);
  if (tide_error_is(L, idx, NULL)) {
    lua_getfield(L, idx, "traceback");
    msg = luaL_tolstring(L, idx, NULL);
    if (lua_isstring(L, -2))
      msg = lua_pushfstring(L, "%s\n%s", msg, lua_tostring(L, -2));
    return msg;
  }
  msg = lua_tostring(L, idx);
  if (msg == NULL) {
    if (luaL_callmeta(L, idx, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, idx));
  }
  if (tb) msg = lua_pushfstring(L, "%s\n%s", msg, tb);
  return msg;
}

static void report_error(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

/* The main task's steps, in lua.c's order: LUA_INIT, -e/-l/-W in the
** order given, the script, then the prompt.  Each chunk is called with
** lua_callk so it may suspend the task; main_k continues with the next
** step when it returns. */
typedef struct {
  int argc;
  char **argv;
  int args;
  int script;
  int step;   /* 0: LUA_INIT, 1..script-1: options, script, then prompt */
  int done;
  int repl;   /* the REPL was started: when it returns, the process ends */
} cli_t;

/* -l [g=]mod: require cannot yield, so a plain call is right. */
static void dolibrary(lua_State *L, char *globname) {
  char *modname = strchr(globname, '=');
  if (modname == NULL) {
    modname = globname;
    globname = (char *)luaL_gsub(L, modname, ".", "_");
  } else {
    *modname = '\0';
    modname++;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  lua_call(L, 1, 1);
  lua_setglobal(L, globname);
}

static void checkload(lua_State *L, int status) {
  if (status != LUA_OK) lua_error(L);
}

static int pushargs(lua_State *L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

/* Push the next chunk to call and its arguments; returns the number of
** arguments, or -1 when every step is done. */
static int next_chunk(lua_State *L, cli_t *c) {
  char **argv = c->argv;
  while (c->step <= c->script + 1) {
    int i = c->step++;
    if (i == 0) {
      const char *name = "=" LUA_INITVARVERSION, *init;
      if (c->args & has_E) continue;
      init = getenv(name + 1);
      if (init == NULL) {
        name = "=" LUA_INIT_VAR;
        init = getenv(name + 1);
      }
      if (init == NULL) continue;
      if (init[0] == '@') checkload(L, luaL_loadfile(L, init + 1));
      else checkload(L, luaL_loadbuffer(L, init, strlen(init), name));
      return 0;
    } else if (i < c->script) {
      int option = argv[i][1];
      char *extra;
      if (argv[i][0] != '-') continue;
      if (option == 'W') {
        lua_warning(L, "@on", 0);
        continue;
      }
      if (option != 'e' && option != 'l') continue;
      extra = argv[i] + 2;
      if (*extra == '\0') extra = argv[++c->step - 1];
      if (option == 'l') {
        dolibrary(L, extra);
        continue;
      }
      checkload(L, luaL_loadbuffer(L, extra, strlen(extra),
                                   "=(command line)"));
      return 0;
    } else if (i == c->script) {
      const char *fname;
      if (c->script >= c->argc) continue;
      fname = argv[c->script];
      if (strcmp(fname, "-") == 0 && strcmp(argv[c->script - 1], "--") != 0)
        fname = NULL;
      checkload(L, luaL_loadfile(L, fname));
      return pushargs(L);
    } else {
      int repl = 0;
      if (c->args & has_i) repl = 1;
      else if (c->script == c->argc && !(c->args & (has_e | has_v))) {
        if (isatty(0)) {
          print_version();
          repl = 1;
        } else {
          checkload(L, luaL_loadfile(L, NULL));
          return 0;
        }
      }
      if (!repl) continue;
      c->repl = 1;
      lua_getglobal(L, "require");
      lua_pushliteral(L, "tide.repl");
      lua_call(L, 1, 1);
      lua_getfield(L, -1, "run");
      lua_remove(L, -2);
      return 0;
    }
  }
  return -1;
}

static int main_k(lua_State *L, int status, lua_KContext ctx) {
  cli_t *c = (cli_t *)ctx;
  int n;
  (void)status;
  lua_settop(L, 0);
  while ((n = next_chunk(L, c)) >= 0) {
    lua_callk(L, n, 0, ctx, main_k);
    lua_settop(L, 0);
  }
  /* After the REPL, main() ends the process even if handles are still
  ** active: wake it from uv_run. */
  if (c->repl) uv_stop(tide_runtime_loop(tide_runtime_from(L)));
  return 0;
}

static int main_task(lua_State *L) {
  cli_t *c = (cli_t *)lua_touserdata(L, lua_upvalueindex(1));
  if (c->args & has_v) print_version();
  return main_k(L, LUA_OK, (lua_KContext)c);
}

int main(int argc, char **argv) {
  cli_t c;
  tide_runtime_t *rt;
  lua_State *L;
  tide_task_t *t;
  int status = EXIT_SUCCESS, ud;
  memset(&c, 0, sizeof c);
  c.argc = argc;
  c.argv = argv;
  c.script = argc;
  c.args = collectargs(argv, &c.script);
  if (c.args & has_error) {
    print_usage(argv[c.script]);
    return EXIT_FAILURE;
  }
  if (c.args & has_h) {
    print_usage(NULL);
    return EXIT_SUCCESS;
  }
  if (c.script < 0) c.script = argc;
  rt = tide_runtime_new(NULL);
  if (!rt) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n",
            progname);
    return EXIT_FAILURE;
  }
  L = tide_runtime_lua(rt);
  tide_module_register(rt, "tide._repl", tide__repl_open);
  createargtable(L, argv, argc, c.script);
  if (c.args & has_E) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  lua_pushlightuserdata(L, &c);
  lua_pushcclosure(L, main_task, 1);
  t = tide_task_spawn(L, 0);
  t->is_main = 1;
  rt->main = t;
  /* Ctrl-C cancels the main task (so its cleanup runs); a second one
  ** exits at once. */
  rt->interrupt_target = t;
  tide__sigint_install(rt);
  ud = lua_gettop(L);
  lua_pushliteral(L, "main");
  lua_setfield(L, ud, "name");
  /* Run until the main task failed, or it returned and nothing keeps the
  ** loop alive (the Node.js rule). */
  for (;;) {
    tide_runtime_run(rt, TIDE_RUN_DEFAULT);
    if (t->status == TIDE_TASK_FAILED || t->status == TIDE_TASK_CANCELLED)
      break;
    /* Leaving the REPL ends the process: what it left running was
    ** cancelled, and handles left open are closed by the teardown. */
    if (c.repl && t->status == TIDE_TASK_DONE) break;
    if (!rt->ready_head && !uv_loop_alive(tide_runtime_loop(rt))) break;
  }
  if (t->status == TIDE_TASK_FAILED || t->status == TIDE_TASK_CANCELLED) {
    t->retrieved = 1;
    lua_getiuservalue(L, ud, TASK_UV_RESULT);
    lua_getiuservalue(L, ud, TASK_UV_THREAD);
    report_error(error_text(L, -2, lua_tostring(L, -1)));
    status = rt->interrupted && t->status == TIDE_TASK_CANCELLED
                 ? 130 : EXIT_FAILURE;
  } else if (t->status != TIDE_TASK_DONE) {
    report_error("the main task is waiting and nothing is left that could "
                 "wake it");
    status = EXIT_FAILURE;
  }
  lua_settop(L, 0);
  rt->main = NULL;
  rt->interrupt_target = NULL;
  /* Closing Lua runs the finalizers that report failed tasks nobody
  ** awaited; such a report makes the exit status 1. */
  if (tide__runtime_destroy(rt, 1) > 0) status = EXIT_FAILURE;
  fflush(stdout);
  return status;
}
