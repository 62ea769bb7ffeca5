/*
** signames.h: signal names for tide.signal and tide.process.  Names are
** given without the SIG prefix ("INT", "TERM"); the prefix is accepted on
** input, and so is a plain signal number.
*/
#ifndef TIDE_SIGNAMES_H
#define TIDE_SIGNAMES_H

#include <signal.h>
#include <string.h>
#include <lauxlib.h>

static const struct { const char *name; int num; } tide_signals[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL},
  {"TRAP", SIGTRAP}, {"ABRT", SIGABRT}, {"BUS", SIGBUS}, {"FPE", SIGFPE},
  {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
  {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
  {"TERM", SIGTERM}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},
  {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
  {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU},
  {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
  {"WINCH", SIGWINCH}, {"IO", SIGIO}, {"SYS", SIGSYS},
  {NULL, 0}
};

/* The name of signal `num` ("TERM"), or NULL. */
static inline const char *tide_signame(int num) {
  int i;
  for (i = 0; tide_signals[i].name; i++)
    if (tide_signals[i].num == num) return tide_signals[i].name;
  return NULL;
}

/* The signal number of the name or number at idx; raises an argument
** error naming the argument when it is not a signal. */
static inline int tide_checksignal(lua_State *L, int idx) {
  const char *s;
  int i;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0 && n < 65, idx, "invalid signal number");
    return (int)n;
  }
  s = luaL_checkstring(L, idx);
  if (strncmp(s, "SIG", 3) == 0) s += 3;
  for (i = 0; tide_signals[i].name; i++)
    if (strcmp(tide_signals[i].name, s) == 0) return tide_signals[i].num;
  return luaL_argerror(L, idx,
                       lua_pushfstring(L, "unknown signal '%s'", s));
}

#endif
