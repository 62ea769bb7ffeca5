/*
** sigint.c: what Ctrl-C does in the `tide` command.  One uv_signal_t for
** SIGINT, unref'd so it never keeps the loop alive, cancels
** rt->interrupt_target (the main task by default, the statement being run at
** the REPL), so `<close>` handlers and pcall cleanup run.  A second Ctrl-C
** while that cancel is still being handled, or a Ctrl-C when there is
** nothing to cancel, exits at once with status 130 (128 + SIGINT, what a
** shell reports).  This default stands aside while tide.signal has a
** watcher on SIGINT (rt->sigint_users > 0), and while interrupt_target is
** anything but the main task: whoever moved it (the REPL, which points it
** at the statement being run and has its own SIGINT handling) owns Ctrl-C
** then.  This file owns the handle; it is freed in its close callback
** from tide__sigint_close.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static void on_sigint(uv_signal_t *h, int signum) {
  /* owns nothing; the runtime is in h->data */
  tide_runtime_t *rt = (tide_runtime_t *)h->data;
  tide_task_t *t = rt->interrupt_target;
  (void)signum;
  if (rt->sigint_users > 0 || !t || t != rt->main) return;
  if (t->status >= TIDE_TASK_DONE ||
      (rt->sigint_cancelled == t->id && rt->sigint_cancelled != 0)) {
    /* _exit, not exit: libuv's destructor joins the thread pool, which a
    ** worker blocked in a slow read would hold up. */
    fflush(NULL);
    _exit(128 + SIGINT);
  }
  rt->sigint_cancelled = t->id;
  rt->interrupted = 1;
  tide__task_interrupt(t, TIDE_WAKE_CANCELLED);
}

void tide__sigint_install(tide_runtime_t *rt) {
  if (rt->sigint) return;
  rt->sigint = malloc(sizeof *rt->sigint);
  if (!rt->sigint) return;
  uv_signal_init(rt->loop, rt->sigint);
  rt->sigint->data = rt;
  uv_signal_start(rt->sigint, on_sigint, SIGINT);
  uv_unref((uv_handle_t *)rt->sigint);
}

static void free_sigint(uv_handle_t *h) {
  /* owns h, malloced by tide__sigint_install */
  free(h);
}

void tide__sigint_close(tide_runtime_t *rt) {
  if (!rt->sigint) return;
  uv_close((uv_handle_t *)rt->sigint, free_sigint);
  rt->sigint = NULL;
}
