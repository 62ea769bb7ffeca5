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
** loop; otherwise it uses the host's initialised loop, which must outlive
** the runtime (tide_runtime_close closes only the handles tide made, and
** never the loop itself).  Several runtimes may share one host loop.
** The new lua_State has the standard libraries, the `tide` global and the
** `async`/`await` globals, and `require "tide.<module>"` finds every stdlib
** module.  Nothing runs until the host runs the loop.
** Returns NULL when memory runs out or the loop cannot be initialised.
** The caller owns the runtime and frees it with tide_runtime_close. */
TIDE_API tide_runtime_t *tide_runtime_new(uv_loop_t *loop);

/* Cancel every task and let their cleanup run (their `<close>` variables
** and pcall handlers see ECANCELED), close every handle tide opened, close
** the lua_State and, if owned, the loop; then free the runtime.  Safe with
** tasks still running or waiting (in tide's own waits or in a host's async
** C function: its cancel hook runs).  With a host loop, close callbacks of
** host handles closed by cancel hooks have run when this returns, and
** thread-pool requests still in flight are finished by the host's next
** uv_run (their callbacks see a detached wait and only free memory).
** Closing runs the loop a few times without blocking, so host callbacks
** that are due on a shared loop may run meanwhile.
** Unretrieved task errors are reported on stderr.  Must not be called from
** inside a task or a callback of this runtime's loop; rt may be NULL. */
TIDE_API void tide_runtime_close(tide_runtime_t *rt);

/* The runtime's lua_State (the main thread) and loop.  Both stay owned by
** the runtime and are valid until tide_runtime_close.  The host may push
** and call on the lua_State between loop runs (not while a task runs). */
TIDE_API lua_State *tide_runtime_lua(tide_runtime_t *rt);
TIDE_API uv_loop_t *tide_runtime_loop(tide_runtime_t *rt);

/* The runtime a lua_State (any of its threads) belongs to.  L must be a
** state made by tide_runtime_new or one tide was loaded into. */
TIDE_API tide_runtime_t *tide_runtime_from(lua_State *L);

/* How tide_runtime_run drives the loop; the same meanings as uv_run_mode. */
typedef enum {
  TIDE_RUN_DEFAULT = 0, /* until no task is ready and nothing keeps the
                           loop alive (or a uv_stop) */
  TIDE_RUN_ONCE,        /* one loop iteration, blocking for I/O if needed */
  TIDE_RUN_NOWAIT       /* one loop iteration without blocking */
} tide_run_mode;

/* Resume ready tasks and run the loop once (ONCE, NOWAIT) or until it has
** nothing left (DEFAULT).  Returns non-zero when more work remains (a task
** is ready, or the loop is alive), as uv_run does.  Errors of tasks never
** propagate here: they stay in their Task objects (see tide_task_outcome).
** Must not be called from inside a task or a callback of the same loop.
**
** With a host-owned loop the host may instead call uv_run itself: tide's
** scheduler runs from its own prepare/check handles, which do not keep the
** loop alive; an idle handle does while tasks are ready. */
TIDE_API int tide_runtime_run(tide_runtime_t *rt, tide_run_mode mode);

/* For hosts with a main loop of their own.  tide_runtime_alive: non-zero
** when running the loop would do something (a task is ready, or the loop
** has active referenced handles or requests - on a shared loop, the
** host's own count too).  tide_runtime_ntasks: how many tasks are not
** finished yet (running, ready, waiting or not started); a non-zero count
** while tide_runtime_alive is 0 means those tasks wait for something only
** the host can wake.  tide_runtime_timeout: how many milliseconds the host
** may sleep before it must run the loop again (0: now, -1: no timer is
** due), to combine with uv_backend_fd(tide_runtime_loop(rt)) in the host's
** own poll. */
TIDE_API int tide_runtime_alive(tide_runtime_t *rt);
TIDE_API size_t tide_runtime_ntasks(tide_runtime_t *rt);
TIDE_API int tide_runtime_timeout(tide_runtime_t *rt);

/* ------------------------------------------------------------------------
** Tasks
** --------------------------------------------------------------------- */

/* Load the Lua file `path` (or the string `code`, named `chunkname`; NULL
** names it after the code) and spawn it as a task that receives the
** `nargs` values on top of the main thread's stack as `...`.  On success
** pops the arguments, pushes the Task object and returns LUA_OK; on a load
** error pops the arguments, pushes the message and returns its status
** (LUA_ERRSYNTAX, LUA_ERRFILE, LUA_ERRMEM).  The task runs when the loop
** next runs; its errors stay in the Task object. [-nargs, +1, m] */
TIDE_API int tide_spawn_file(tide_runtime_t *rt, const char *path, int nargs);
TIDE_API int tide_spawn_string(tide_runtime_t *rt, const char *code,
                               const char *chunkname, int nargs);

/* Run to completion, the way lua_pcall runs a function: spawn the function
** below the `nargs` arguments on top of the main thread's stack (or the
** chunk loaded from `path` / `code`) as a task and drive the loop until
** that task finishes.  Other tasks run meanwhile and are left as they are
** when it returns (run the loop on to let them finish, or close the
** runtime to cancel them).  On success pushes the task's results adjusted
** to `nresults` (LUA_MULTRET: all of them) and returns LUA_OK.  On failure
** pushes one error value and returns its status: LUA_ERRSYNTAX/LUA_ERRFILE
** for a chunk that does not load, LUA_ERRRUN when the task raised, was
** cancelled, or waits on something nothing can wake any more (it is then
** cancelled).  A raised tide.Error carries its `traceback` field; a string
** error comes back with the task's traceback appended (as lua.c prints
** it).  tide_error_text makes either printable.  Must not be called from
** inside a task or while tide_run or tide.run is running on this runtime
** (it then returns LUA_ERRRUN with a message).
** [-(nargs+1), +(nresults|1), m] for tide_run;
** [-nargs, +(nresults|1), m] for the other two. */
TIDE_API int tide_run(tide_runtime_t *rt, int nargs, int nresults);
TIDE_API int tide_run_file(tide_runtime_t *rt, const char *path, int nargs,
                           int nresults);
TIDE_API int tide_run_string(tide_runtime_t *rt, const char *code,
                             const char *chunkname, int nargs, int nresults);

/* Spawn the function below the `nargs` arguments on top of L's stack as a
** new task; pops them and pushes the Task object.  Works from any thread of
** the runtime, inside a task or not; the task first runs when the loop (or
** the drain after the current task yields) gets to it.  The returned record
** lives as long as the Task object: keep that object (or a registry ref to
** it) if you keep the pointer after the task finished. [-(nargs+1), +1, m]
*/
TIDE_API tide_task_t *tide_task_spawn(lua_State *L, int nargs);

/* Task status.  Lua's task.status shows PENDING as "pending", READY and
** WAITING as "waiting", and the others by their names. */
typedef enum {
  TIDE_TASK_PENDING = 0, /* spawned, has not run yet */
  TIDE_TASK_READY,       /* woken, will resume at the top of the loop */
  TIDE_TASK_RUNNING,
  TIDE_TASK_WAITING,     /* suspended on a wait */
  TIDE_TASK_DONE,        /* returned; results kept in the Task object */
  TIDE_TASK_FAILED,      /* raised an error */
  TIDE_TASK_CANCELLED    /* finished with an ECANCELED error */
} tide_task_status;

/* The status of a task record (never fails). */
TIDE_API tide_task_status tide_task_status_of(const tide_task_t *t);

/* For the Task object at idx: push a finished task's outcome, its results
** (returning their count) or, for a failed or cancelled task, its error
** value (returning -1), marking the error as retrieved so it is not
** reported as lost.  For an unfinished task pushes nothing and returns -2.
** Raises if the value at idx is not a Task. [-0, +n, e] */
TIDE_API int tide_task_outcome(lua_State *L, int idx);

/* Request cancellation of a task, as task:cancel(msg) does (msg may be
** NULL; it is copied).  A waiting task has its wait's cancel hook run at
** once and is resumed with ECANCELED at the top of the loop; a task that
** has not started never runs; a running task, or one whose non-droppable
** wait already completed, gets ECANCELED at its next await point.  Does
** nothing on a finished task.  Runs no Lua, so it may be called from a
** libuv callback of the runtime's loop. */
TIDE_API void tide_task_cancel(tide_task_t *t, const char *msg);

/* The task record of the Task argument at idx; raises a "bad argument"
** error naming `tide.Task` otherwise. [-0, +0, v] */
TIDE_API tide_task_t *tide_task_check(lua_State *L, int idx);

/* Push the Task object of an unfinished task record (finished tasks are
** only reachable through their objects). [-0, +1, -] */
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
**   3. Start the libuv (or host) operation.  If it fails to start, free
**      the request and raise (tide_error_raise) instead of yielding.
**   4. `return tide_wait_yield(L, &req->wait, "mod.op");`
**
** Data the operation reads outside Lua (a buffer used by a thread-pool
** job) must be copied into the request or pinned with luaL_ref: after a
** cancel the task unwinds and its stack values may be collected while the
** operation still runs.  Values needed only by the resume function are
** safe on the stack: the yielded C frame stays there until it resumes.
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
** waits, or the runtime is closed, the cancel hook runs, exactly once, with
** the wait already detached (w->task == NULL).  It may run from
** tide_task_cancel, from a libuv callback (a deadline's timer) or from
** tide_runtime_close, so it must not call into Lua.  It must stop the
** operation, after which the task is resumed with an ECANCELED or
** ETIMEDOUT error and the resume function is never called.  The hook
** decides who frees the request: if it can stop the operation
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

/* A wait: embedded in the binding's request (or the task's own, see
** tide_task_self_wait); filled by tide_wait_init and tide_wait_yield.  Read
** `task` (NULL once detached) and `data`; leave the rest to tide. */
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

/* Initialise a wait before each use: hooks, the binding's `data`
** pointer and flags (0 or TIDE_WAIT_DROPPABLE).  Does not allocate. */
TIDE_API void tide_wait_init(tide_wait_t *w, tide_cancel_fn cancel,
                             tide_resume_fn resume, void *data,
                             unsigned flags);

/* Step 1 above.  Returns the running task; raises (a plain error for
** misuse, a tide.Error for a pending cancel or expired deadline)
** otherwise.  `op` names the operation in those errors. [-0, +0, e] */
TIDE_API tide_task_t *tide_async_check(lua_State *L, const char *op);

/* Suspend the running task on `w` (step 4).  Call as
** `return tide_wait_yield(L, w, what);` - it does not return normally:
** the C function continues in the wait's resume function.  `what` says
** what is awaited in tide.dump() and names the op of an ETIMEDOUT error;
** it must outlive the wait (use a string literal).  Only after a
** successful tide_async_check in the same call. [-0, +?, e] */
TIDE_API int tide_wait_yield(lua_State *L, tide_wait_t *w, const char *what);

/* From a callback on the runtime's loop thread: the operation is
** complete; schedule the task (it resumes at the top of the loop, in FIFO
** order).  Does nothing on a detached wait or a wait already woken.  Runs
** no Lua.  From another thread, signal a uv_async_t and wake from its
** callback. */
TIDE_API void tide_wait_wake(tide_wait_t *w);

/* A FIFO list of waits, for waiter lists (queues, locks, events).  A wait
** is in at most one list.  Pushing/removing is O(1); removing a wait that
** is in no list does nothing, so cancel hooks can always call it.
** Zero-initialise a tide_waitq_t before use.  The list does not wake
** anyone: pop, then tide_wait_wake. */
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

/* Push a new error object with the given code ("ENOENT", "EPROTO", ...;
** required) and message (NULL: the code).  `op` and `path` may be NULL.
** [-0, +1, m] */
TIDE_API void tide_error_push(lua_State *L, const char *code, const char *op,
                              const char *path, const char *message);

/* Raise an error object for a negative libuv error number: code
** uv_err_name(uverr), message uv_strerror(uverr).  Call as
** `return tide_error_raise(L, r, "mod.op", path);`. [-0, +0, v] */
TIDE_API int tide_error_raise(lua_State *L, int uverr, const char *op,
                              const char *path);

/* Raise an error object with a tide code and a message formatted as
** lua_pushfstring does. [-0, +0, v] */
TIDE_API int tide_error_raisef(lua_State *L, const char *code, const char *op,
                               const char *fmt, ...);

/* Is the value at idx a tide.Error?  If so, and code != NULL, is its code
** equal to `code`? [-0, +0, -] */
TIDE_API int tide_error_is(lua_State *L, int idx, const char *code);

/* Push a printable text for any error value at idx and return it: for a
** tide.Error, "op: path: CODE: message" followed by its traceback; for a
** string or number, itself; otherwise its __tostring, or a description of
** its type.  The string is owned by Lua and valid while it stays on the
** stack. [-0, +1, e] */
TIDE_API const char *tide_error_text(lua_State *L, int idx);

/* ------------------------------------------------------------------------
** Modules
** --------------------------------------------------------------------- */

/* Make `require(name)` in this runtime call `open` (a luaopen_* style
** function that pushes the module's value), through package.preload, so
** loading is lazy and per runtime.  Replaces an earlier registration of
** the same name. [-0, +0, m] */
TIDE_API void tide_module_register(tide_runtime_t *rt, const char *name,
                                   lua_CFunction open);

/* Make `require(name)` return a new table holding the functions of
** `funcs` (a luaL_Reg array ending with {NULL, NULL}), built at the first
** require.  `funcs` is not copied: it must outlive the runtime (a static
** array).  The functions may be async C functions. [-0, +0, m] */
TIDE_API void tide_module_register_lib(tide_runtime_t *rt, const char *name,
                                       const luaL_Reg *funcs);

/* Set the global `name` to the C function `fn`. [-0, +0, m] */
TIDE_API void tide_function_register(tide_runtime_t *rt, const char *name,
                                     lua_CFunction fn);

/* Lua's entry point, so that `require "tide"` works from a stock lua5.4
** host (package.cpath finding libtide.so under the name tide.so): it makes
** that lua_State a runtime with an owned loop when it is not one already,
** sets the `tide`, `async` and `await` globals and returns the tide table.
** The host then drives everything with tide.run(fn); the runtime is
** closed when the host closes its lua_State. */
TIDE_API int luaopen_tide(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_H */
