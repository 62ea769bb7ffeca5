/*
** tide.h: the public API of the tide async runtime for Lua 5.4.
**
** A host creates a runtime (a lua_State plus a libuv loop and a scheduler),
** runs Lua code in it as tasks, and drives the loop.  The same header
** documents the suspend/resume protocol that every async binding in tide
** uses, so a host can write async C functions exactly the way the standard
** library does.
**
** Thread rules: a runtime, its lua_State and its loop belong to the thread
** that created the runtime.  Nothing here may be called from another thread;
** work done in libuv's thread pool must report back through libuv (its
** after-work callback, or a uv_async_t) and wake tasks from there.
**
** There is no global state: several runtimes may live in one process.
*/
#ifndef TIDE_H
#define TIDE_H

#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TIDE_VERSION_MAJOR 0
#define TIDE_VERSION_MINOR 1
#define TIDE_VERSION_PATCH 0
#define TIDE_VERSION "tide 0.1.0"

#if defined(__GNUC__)
#define TIDE_API __attribute__((visibility("default")))
#else
#define TIDE_API
#endif

typedef struct tide_runtime tide_runtime_t;
typedef struct tide_task tide_task_t;
typedef struct tide_wait tide_wait_t;

/* ------------------------------------------------------------------------
** Runtimes
** --------------------------------------------------------------------- */

/* Create a runtime.  With loop == NULL the runtime creates and owns its
** loop; otherwise it uses the host's loop, which must outlive the runtime
** (tide_runtime_close closes only the handles tide made).  The new lua_State
** has the standard libraries, the `tide` global and the `async`/`await`
** globals, and `require "tide.<module>"` finds every stdlib module.
** Returns NULL when memory runs out.  Free with tide_runtime_close. */
TIDE_API tide_runtime_t *tide_runtime_new(uv_loop_t *loop);

/* Cancel every task, let them run their cleanup, close every handle tide
** opened, close the lua_State and (if owned) the loop, and free the
** runtime.  Safe to call with tasks still running.  Must not be called from
** inside a task. */
TIDE_API void tide_runtime_close(tide_runtime_t *rt);

/* The runtime's lua_State (the main thread) and loop.  Both stay owned by
** the runtime. */
TIDE_API lua_State *tide_runtime_lua(tide_runtime_t *rt);
TIDE_API uv_loop_t *tide_runtime_loop(tide_runtime_t *rt);

/* The runtime a lua_State (any of its threads) belongs to, or NULL. */
TIDE_API tide_runtime_t *tide_runtime_from(lua_State *L);

/* How tide_runtime_run drives the loop; the same meanings as uv_run_mode. */
typedef enum {
  TIDE_RUN_DEFAULT = 0, /* until no task is ready and nothing keeps the
                           loop alive */
  TIDE_RUN_ONCE,        /* one loop iteration, blocking for I/O if needed */
  TIDE_RUN_NOWAIT       /* one loop iteration without blocking */
} tide_run_mode;

/* Run ready tasks and the loop.  Returns non-zero when more work remains
** (as uv_run does).  With a host-owned loop the host may instead call
** uv_run itself: tide's scheduler runs from its own prepare/check handles. */
TIDE_API int tide_runtime_run(tide_runtime_t *rt, tide_run_mode mode);

/* Load the Lua file `path` (or the string `code`, named `chunkname`) and
** spawn it as a task that receives the `nargs` values on top of the main
** thread's stack as `...`.  On success pushes the Task object and returns
** LUA_OK; on a load error pushes the message and returns its status.  The
** task runs when the loop next runs. [-nargs, +1, -] */
TIDE_API int tide_spawn_file(tide_runtime_t *rt, const char *path, int nargs);
TIDE_API int tide_spawn_string(tide_runtime_t *rt, const char *code,
                               const char *chunkname, int nargs);

/* Spawn the function below the `nargs` arguments on top of L's stack as a
** new task, pops them and pushes the Task object.  Works from any thread of
** the runtime, inside a task or not. [-(nargs+1), +1, m] */
TIDE_API tide_task_t *tide_task_spawn(lua_State *L, int nargs);

/* Task status, as in Lua's task.status. */
typedef enum {
  TIDE_TASK_PENDING = 0, /* spawned, has not run yet */
  TIDE_TASK_READY,       /* woken, will resume at the top of the loop */
  TIDE_TASK_RUNNING,
  TIDE_TASK_WAITING,     /* suspended on a wait */
  TIDE_TASK_DONE,
  TIDE_TASK_FAILED,
  TIDE_TASK_CANCELLED
} tide_task_status;

TIDE_API tide_task_status tide_task_status_of(const tide_task_t *t);

/* For the Task object at idx: push a finished task's outcome, its results
** (returning their count) or, for a failed or cancelled task, its error
** value (returning -1), marking the error as retrieved.  For an unfinished
** task pushes nothing and returns -2. [-0, +n, m] */
TIDE_API int tide_task_outcome(lua_State *L, int idx);

/* Request cancellation of a task; see task:cancel in the docs. */
TIDE_API void tide_task_cancel(tide_task_t *t, const char *msg);

/* Check a Task argument / push the Task object of a task record. */
TIDE_API tide_task_t *tide_task_check(lua_State *L, int idx);
TIDE_API void tide_task_push(lua_State *L, tide_task_t *t);

/* The task that is running now (also from inside a coroutine the task
** resumed), or NULL outside tasks. */
TIDE_API tide_task_t *tide_task_current(lua_State *L);

/* ------------------------------------------------------------------------
** The suspend/resume protocol (async C functions)
**
** An async C function, called from a task, does this:
**
**   1. Check its arguments, then call tide_async_check(L, "mod.op"): it
**      raises unless L can suspend the running task (inside a task, not
**      under a non-yieldable C boundary such as `require` or a `__gc`), and
**      raises ECANCELED/ETIMEDOUT at once if a cancel or an expired
**      deadline is pending.  Nothing has been started yet, so nothing leaks.
**   2. Allocate its request with malloc (never inside a userdata: the GC
**      may collect the userdata while libuv still owns the memory), embed a
**      tide_wait_t in it, and tide_wait_init it with a cancel hook and a
**      resume function.
**   3. Start the libuv (or host) operation.
**   4. `return tide_wait_yield(L, &req->wait, "mod.op");`
**
** When the operation completes, its callback records the outcome in the
** request and calls tide_wait_wake(&req->wait) - or, if the wait was
** detached by a cancel (req->wait.task == NULL), only frees the request.
** Callbacks never call into Lua.  The scheduler later resumes the task at
** the top of the loop, and the wait's resume function runs on the task's
** own stack, inside the C function that yielded (its arguments are still on
** the stack): it pushes the results and returns their count, or raises an
** error.  It also frees the request, which is no longer in use.
**
** If the task is cancelled, or a tide.timeout deadline expires while it
** waits, the cancel hook runs first.  The hook must stop the operation and
** detach it from the task, after which the task is resumed with an
** ECANCELED or ETIMEDOUT error and the resume function is not called.  The
** hook decides who frees the request: if it can stop the operation
** synchronously (uv_timer_stop, leaving a waiter list) it frees it at once;
** if a callback will still come (uv_cancel on a work request, closing a
** handle), it leaves the request to that callback, which sees
** wait.task == NULL.  tide_wait_wake on a detached wait does nothing.
**
** A wake is final: once tide_wait_wake ran, a later cancel is delivered at
** the task's next await point instead (so a completed operation's result,
** such as an item taken from a queue, is never lost), unless the wait was
** initialised with TIDE_WAIT_DROPPABLE, meaning its result may be discarded.
** --------------------------------------------------------------------- */

typedef void (*tide_cancel_fn)(tide_wait_t *w);
typedef int (*tide_resume_fn)(lua_State *L, tide_wait_t *w);

/* Wait flags. */
#define TIDE_WAIT_DROPPABLE 1u /* a woken, not yet resumed wait may be
                                  cancelled: its result can be discarded */

struct tide_wait {
  tide_task_t *task;      /* the waiting task; NULL once detached */
  tide_cancel_fn cancel;  /* stop + detach; may be NULL for waits that
                             need no cleanup */
  tide_resume_fn resume;  /* push results on the task's stack; may be NULL
                             (no results) */
  void *data;             /* the binding's own pointer */
  tide_wait_t *prev, *next; /* links while in a tide_waitq_t */
  const char *what;       /* what is awaited, for tide.dump() */
  unsigned flags;
  int in_queue;           /* non-zero while linked in a tide_waitq_t */
};

/* Initialise a wait before use. */
TIDE_API void tide_wait_init(tide_wait_t *w, tide_cancel_fn cancel,
                             tide_resume_fn resume, void *data,
                             unsigned flags);

/* Step 1 above.  Returns the running task.  [-0, +0, e] */
TIDE_API tide_task_t *tide_async_check(lua_State *L, const char *op);

/* Suspend the running task on `w` (step 4).  Call as
** `return tide_wait_yield(L, w, what);` - it does not return normally.
** `what` must outlive the wait (use a string literal). */
TIDE_API int tide_wait_yield(lua_State *L, tide_wait_t *w, const char *what);

/* From a callback: the operation is complete; schedule the task.  Does
** nothing on a detached wait or a wait already woken. */
TIDE_API void tide_wait_wake(tide_wait_t *w);

/* A FIFO list of waits, for waiter lists (queues, locks, events).  A wait
** is in at most one list.  Pushing/removing is O(1). */
typedef struct tide_waitq {
  tide_wait_t *head, *tail;
} tide_waitq_t;

TIDE_API void tide_waitq_push(tide_waitq_t *q, tide_wait_t *w);
TIDE_API void tide_waitq_remove(tide_waitq_t *q, tide_wait_t *w);
TIDE_API tide_wait_t *tide_waitq_pop(tide_waitq_t *q); /* NULL if empty */

/* The wait embedded in every task, for waits that never outlive the
** suspension (waiter lists, timers of the runtime itself): using it costs no
** allocation.  Do not use it for libuv requests, which may outlive a
** cancelled task. */
TIDE_API tide_wait_t *tide_task_self_wait(tide_task_t *t);

/* ------------------------------------------------------------------------
** Errors
**
** Operational failures raise a tide.Error table: {code=, message=, op=,
** path=?, traceback=?}; tostring gives "op: path: CODE: message".  Codes are
** libuv's error names (ENOENT, ECONNREFUSED, ...) or tide's own: ECANCELED,
** ETIMEDOUT, EAGAIN, ECLOSED, EPROTO, EINVAL.
** --------------------------------------------------------------------- */

/* Push a new error object.  `op` and `path` may be NULL. [-0, +1, m] */
TIDE_API void tide_error_push(lua_State *L, const char *code, const char *op,
                              const char *path, const char *message);

/* Push an error object for a libuv error number (uv_err_name/uv_strerror)
** and raise it. [-0, +0, v] */
TIDE_API int tide_error_raise(lua_State *L, int uverr, const char *op,
                              const char *path);

/* Raise an error object with a tide code and a formatted message.
** [-0, +0, v] */
TIDE_API int tide_error_raisef(lua_State *L, const char *code, const char *op,
                               const char *fmt, ...);

/* Is the value at idx a tide.Error?  If so, and code != NULL, is its code
** equal to `code`? */
TIDE_API int tide_error_is(lua_State *L, int idx, const char *code);

/* ------------------------------------------------------------------------
** Modules
** --------------------------------------------------------------------- */

/* Make `require(name)` call `open` in this runtime (package.preload). */
TIDE_API void tide_module_register(tide_runtime_t *rt, const char *name,
                                   lua_CFunction open);

/* Lua's entry point, so that `require "tide"` works from a stock lua5.4
** host; it creates a runtime on that lua_State when none exists. */
TIDE_API int luaopen_tide(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_H */
