/*
** internal.h: the engine's own structures, shared by runtime/, vm/ and
** stdlib/ but not by hosts.  The runtime record owns the loop, the ready
** queue, the timer heap and the registry anchors of live tasks; the task
** record owns its coroutine and its one embedded wait and timer.
*/
#ifndef TIDE_INTERNAL_H
#define TIDE_INTERNAL_H

#include <stdint.h>
#include "tide.h"

#define TIDE_TASK_MT "tide.Task"
#define TIDE_FAILED_TASK_MT "tide.Task(failed)" /* see tide__task_open */
#define TIDE_ERROR_MT "tide.Error"

/* A node of the runtime's timer heap.  Sleeps and deadlines use nodes
** embedded in their owners, so a sleeping task costs no libuv handle. */
typedef struct tide_timer tide_timer_t;
struct tide_timer {
  uint64_t due;   /* loop time in ms */
  int index;      /* position in the heap, -1 when not armed */
  void (*fire)(tide_timer_t *tm);
};

/* A heap slot: the node's key (its due time, and a sequence number for FIFO
** order among equal deadlines) and the node. */
typedef struct tide_heapent {
  uint64_t due, seq;
  tide_timer_t *tm;
} tide_heapent_t;

/* A tide.timeout scope on a task's stack of deadlines. */
typedef struct tide_deadline tide_deadline_t;
struct tide_deadline {
  tide_timer_t timer;
  tide_task_t *task;
  tide_deadline_t *up;
  double seconds;
  int expired;
  int active;
};

/* Internal wait flags (the public ones are in tide.h). */
#define TIDE__WAIT_WATCH 0x100u  /* a Watch link: notify, do not wake */
#define TIDE__WAIT_SHIELD 0x200u /* await that does not cancel its target */

/* Why a waiting task was resumed. */
enum { TIDE_WAKE_OK = 0, TIDE_WAKE_CANCELLED, TIDE_WAKE_TIMEDOUT };

struct tide_task {
  tide_runtime_t *rt;       /* must stay first: see struct tide_runtime */
  lua_State *L;             /* the coroutine; anchored in uservalue 1 */
  tide_task_t *next_ready;  /* ready-queue link */
  tide_task_t *prev_live, *next_live; /* list of unfinished tasks */
  tide_wait_t *wait;        /* the wait it is suspended on */
  tide_wait_t self;         /* embedded wait for runtime-internal waits */
  tide_timer_t sleep;       /* embedded timer for tide.sleep */
  tide_waitq_t awaiters;    /* waits of those awaiting this task */
  tide_deadline_t *deadlines; /* innermost tide.timeout scope */
  uint64_t id;
  int ref;                  /* anchor while unfinished, else LUA_NOREF */
  int narg;                 /* arguments for the first resume */
  int nres;                 /* number of results once done */
  uint8_t status;           /* tide_task_status */
  uint8_t wake;             /* TIDE_WAKE_* for the pending resume */
  uint8_t cancel_pending;   /* deliver ECANCELED at the next await */
  uint8_t retrieved;        /* someone saw the error */
  uint8_t reported;         /* the unretrieved error was printed */
  uint8_t is_main;          /* the CLI's main task */
  uint8_t pinned;           /* RESULT holds its arguments */
  int cancel_msg;           /* registry ref of the cancel message or
                               LUA_NOREF */
  int where_line;           /* spawn line (TIDE_DEBUG), or -1 */
  const char *what;         /* what the task waits (or last waited) on,
                               for errors raised after its wait was
                               interrupted */
};

/* Uservalue slots of a Task userdata.  A pending task has no coroutine
** yet: SRC holds its function and RESULT its argument(s) (one value, or a
** table when there are several), so tasks that are spawned in bulk cost no
** coroutine until they run.  (In debug mode SRC is the spawning function
** instead, and THREAD holds the task's function until it starts.)  While
** it runs THREAD is the coroutine, and RESULT still pins the arguments,
** which the coroutine received anyway: clearing the slot would cost every
** spawn a write.  Once finished, RESULT holds the result(s) or the error,
** and THREAD the traceback of a plain (non tide.Error) error. */
enum { TASK_UV_THREAD = 1, TASK_UV_RESULT, TASK_UV_SRC,
       TASK_NUV = TASK_UV_SRC };

/* A frame of the chain of user coroutines a task is running through
** (coroutine.resume inside a task); lives on the C stack while in use. */
typedef struct tide_nest tide_nest_t;
struct tide_nest {
  lua_State *from;  /* the thread that called coroutine.resume */
  lua_State *co;    /* the coroutine it resumed: the innermost frame's is
                       the thread running now (the REPL's Ctrl-C hooks
                       it) */
  tide_nest_t *up;
};

/* The accounting behind TIDE_MEMORY_LIMIT (vm/state.c): the allocator it
** wraps, the limit in bytes (0: none) and the bytes Lua holds. */
typedef struct tide_memlimit {
  lua_Alloc f;
  void *ud;
  size_t limit, used;
} tide_memlimit_t;

typedef struct tide_alloc tide_alloc_t; /* vm/alloc.c */

/* Every thread's LUA_EXTRASPACE holds a pointer to a record whose first
** field is the runtime: the runtime itself (its `self`), or, for the
** coroutine of a started task, that task.  So the runtime is two loads
** away from any lua_State, and a task's coroutine is recognisable. */
struct tide_runtime {
  tide_runtime_t *self;     /* must stay first: see above */
  lua_State *L;
  uv_loop_t *loop;
  uv_loop_t own_loop_storage;
  int own_loop;
  int closing;
  uv_prepare_t *prepare;    /* drain the ready queue before polling */
  uv_check_t *check;        /* ... and after I/O callbacks */
  uv_idle_t *idle;          /* keeps poll from blocking while tasks are
                               ready */
  uv_timer_t *timer;        /* the one libuv timer behind the heap */
  tide_task_t *ready_head, *ready_tail;
  size_t nready;
  tide_task_t *live;        /* unfinished tasks */
  size_t nlive;
  tide_task_t *current;     /* the task being resumed */
  tide_nest_t *nest;        /* user coroutines running inside current */
  tide_heapent_t *heap;
  size_t nheap, heapcap;
  uint64_t timer_seq;
  uint64_t next_id;
  int draining;
  int running;              /* inside tide.run */
  int anchors;              /* registry ref: table of live tasks */
  int *anchor_free;         /* free slots of the anchor table */
  int nanchor_free, anchor_cap, anchor_top;
  int task_mt_ref;          /* registry ref of the Task metatable */
  int failed_mt_ref;        /* ... and of its twin with a __gc */
  const void *task_mt;      /* their addresses, for fast checks */
  const void *failed_mt;
  int pool;                 /* registry ref: table of reusable threads */
  int stack_anchors;        /* while draining: stack indices of the anchor */
  int stack_pool;           /* and pool tables on rt->L, else 0 */
  int debug;                /* TIDE_DEBUG: record exact spawn lines */
  int npool;
  int names;                /* registry ref: weak table task -> name */
  int busy;                 /* registry ref: weak set of coroutines
                               suspended under a task */
  int unretrieved;          /* unretrieved task errors reported */
  int main_failed;
  int exit_code;
  tide_task_t *main;        /* the CLI's main task, if any */
  tide_task_t *run_target;  /* the task tide.run waits for */
  tide_task_t *interrupt_target; /* cancelled by Ctrl-C (SIGINT): the main
                               task by default, the statement being run
                               at the REPL */
  uv_signal_t *sigint;      /* the default Ctrl-C handler (CLI), or NULL */
  int sigint_users;         /* tide.signal watchers on SIGINT: while any
                               exists, Ctrl-C is theirs */
  uint64_t sigint_cancelled; /* id of the task the last Ctrl-C cancelled */
  int interrupted;          /* a Ctrl-C cancelled a task */
  tide_memlimit_t mem;      /* TIDE_MEMORY_LIMIT; lives here, not in Lua,
                               because lua_close still allocates */
  tide_alloc_t *alloc;      /* the state's allocator, when tide made the
                               state (vm/alloc.c); freed after lua_close */
};

/* Free stack slots tide__drain reserves on rt->L for starting and
** finishing tasks. */
#define TIDE__DRAIN_SLOTS 16

/* runtime/loop.c */
tide_runtime_t *tide__rt(lua_State *L);
void tide__ready_push(tide_runtime_t *rt, tide_task_t *t);
void tide__drain(tide_runtime_t *rt);
void tide__keepalive_update(tide_runtime_t *rt);
uint64_t tide__loop_now(tide_runtime_t *rt);

/* runtime/timer.c */
void tide__timer_start(tide_runtime_t *rt, tide_timer_t *tm, double secs);
void tide__timer_stop(tide_runtime_t *rt, tide_timer_t *tm);
void tide__timer_init(tide_timer_t *tm, void (*fire)(tide_timer_t *));
void tide__timers_run(tide_runtime_t *rt);
int tide__timers_close(tide_runtime_t *rt);

/* runtime/task.c */
void tide__task_resume(tide_task_t *t);
tide_task_t *tide__task_spawn(lua_State *L, int nargs, int from_spawn);
void tide__task_interrupt(tide_task_t *t, int why);
tide_task_t *tide__suspend_check(lua_State *L, const char *op);
int tide__task_outcome_at(lua_State *L, int idx, tide_task_t *t);
tide_task_t *tide__task_test(lua_State *L, int idx);
tide_task_t *tide__task_of_thread(lua_State *co);
int tide__task_await(lua_State *L, tide_task_t *t, int shield);
int tide__yield_ready(lua_State *L, tide_task_t *t);
const char *tide__status_name(int status);
int tide__task_push_name(lua_State *L, int idx, tide_task_t *t);
void tide__task_open(lua_State *L);
void tide__cancel_all(tide_runtime_t *rt);

/* runtime/sigint.c */
void tide__sigint_install(tide_runtime_t *rt);
void tide__sigint_close(tide_runtime_t *rt);

/* runtime/core.c */
int tide__open_core(lua_State *L);
void tide__coroutine_patch(lua_State *L);
void tide__deadline_fire(tide_timer_t *tm);

/* vm/error.c */
void tide__error_open(lua_State *L);
void tide__error_cancelled(lua_State *L, tide_task_t *t);
void tide__error_add_traceback(lua_State *L, int idx, lua_State *co);

void tide__error_fields(lua_State *L, int tbl);

/* vm/pretty.c: tide.pretty and tide.pp */
void tide__pretty_fields(lua_State *L, int tbl);

/* runtime/loop.c (life cycle) */
tide_runtime_t *tide__runtime_create(lua_State *L, uv_loop_t *loop);
int tide__runtime_destroy(tide_runtime_t *rt, int close_lua);

/* vm/alloc.c: the allocator of the states tide creates.  Returns the
** lua_Alloc to give lua_newstate, with its user data in *a (NULL for the
** plain malloc allocator); tide__alloc_free(*a) after lua_close. */
lua_Alloc tide__alloc_new(tide_alloc_t **a);
void tide__alloc_free(tide_alloc_t *a);

/* vm/state.c */
void tide__preload_stdlib(lua_State *L);

/* vm/compat.h has the Lua version shims. */

#endif
