/*
** queue.c: tide.queue, asyncio's Queue family for tide tasks: FIFO, LIFO
** and priority queues, bounded or not, with waiting getters and putters,
** task_done/join accounting and close.  The state of a queue is a
** userdata that owns its waiter lists (the engine's tide_waitq_t, linking
** the waiting tasks' embedded waits) and, in uservalues, its items, the
** priority queue's insertion numbers and its `less` function.
**
** The Queue object itself is a table with metatable "tide.Queue": its
** per-item methods (put, get, put_nowait, get_nowait) are C closures bound
** to the state and stored in the table, the others come from the metatable.
** A bound closure finds its method without going through a metatable and
** needs no type check beyond comparing `self`, which makes a put or get
** about a fifth cheaper than a userdata method; they run once per item.
**
** Items never wait anywhere but in the queue or in a waiter's own stack.
** A getter that finds the queue empty suspends with [state] on its stack;
** a put hands the item straight to the first such getter by pushing it on
** that stack.  A putter that finds the queue full suspends with [state,
** item]; a get that frees a slot moves the first putter's item into the
** queue and pops it from the putter's stack.  Either way the wake is final
** (the waits are not droppable): a cancel that arrives between the hand-off
** and the resume is delivered at the task's next await point, so an item
** is never lost and a cancelled waiter never holds a slot.  The waiter's
** stack height after the resume tells whether the hand-off happened or the
** queue was closed under it.
**
** The common case, a put with room or a get with items, runs without
** suspending and without allocating: FIFO items sit in a ring, laid over
** the uservalues of the queue itself when it is bounded and small (the
** usual case; one API call less per item) or else over the array part of
** a preallocated table.
*/
#include <limits.h>
#include <string.h>

#include "tide.h"
#include "compat.h"

#define QUEUE_MT "tide.Queue"
#define STATE_MT "tide.QueueState"

/* Bound closures have the state as upvalue 1 and the object as upvalue 2;
** the functions of the metatable have the two metatables as upvalues. */
#define QS lua_upvalueindex(1)
#define QOBJ lua_upvalueindex(2)

/* The key of the state in the object table. */
static const char state_key = 0;

enum { Q_FIFO, Q_LIFO, Q_PRIO };

/* Uservalue slots: the items (ring, stack or heap; nil for an inline
** ring), the priority heap's insertion numbers, the priority `less`
** function (or nil).  An inline ring follows, from RING_UV. */
enum { UV_ITEMS = 1, UV_SEQS, UV_LESS, Q_NUV = UV_LESS };

/* Ring capacity allocated up front for a bounded queue; larger bounds grow
** by doubling, like unbounded queues. */
#define RING_PREALLOC 1024
#define RING_MIN 16

/* A bounded FIFO queue up to this size keeps its items in uservalues of
** the queue itself rather than in a table: a put or get then costs one
** API call less, and they run once per item. */
#define INLINE_MAX 1024
#define RING_UV (Q_NUV + 1)

typedef struct queue {
  tide_waitq_t getters; /* waits of tasks in get() on an empty queue */
  tide_waitq_t putters; /* waits of tasks in put() on a full queue */
  tide_waitq_t joiners; /* waits of tasks in join() */
  lua_Integer maxsize;  /* 0: unbounded */
  lua_Integer n;        /* items in the queue */
  lua_Integer head;     /* FIFO: ring offset of the oldest item */
  lua_Integer cap;      /* FIFO: ring size (array part of the items) */
  lua_Integer unfinished; /* items put and not yet task_done()'d */
  lua_Integer seq;      /* priority: insertion counter, for stability */
  int kind;
  int closed;
  int inline_ring;      /* FIFO items are uservalues RING_UV + 0..cap-1 */
} queue_t;

static int put_resume(lua_State *L, tide_wait_t *w);

/* For the functions of the metatable: check that argument 1 is a Queue
** and replace it on the stack by its state, which the helpers below expect
** at index 1.  Upvalue 1 is the object metatable, upvalue 2 the state's.
** [-0, +0, v] */
static queue_t *check_queue(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    int ok = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (ok) {
      queue_t *q;
      lua_rawgetp(L, 1, &state_key);
      q = (queue_t *)lua_touserdata(L, -1);
      /* The key can be found with pairs(): check what it holds. */
      if (q && lua_getmetatable(L, -1) &&
          lua_rawequal(L, -1, lua_upvalueindex(2))) {
        lua_pop(L, 1);
        lua_replace(L, 1);
        return q;
      }
      luaL_argerror(L, 1, "invalid tide.Queue (its state was replaced)");
    }
  }
  luaL_typeerror(L, 1, QUEUE_MT);
  return NULL;
}

/* For the bound closures: check that `self` is the queue they belong to.
** [-0, +0, v] */
static queue_t *bound_queue(lua_State *L) {
  if (tide_unlikely(!lua_rawequal(L, 1, QOBJ)))
    luaL_typeerror(L, 1, QUEUE_MT);
  return (queue_t *)lua_touserdata(L, QS);
}

/* A bound closure leaving its fast path: put the state at index 1, where
** the helpers below (and a suspended waiter's stack) have it. */
static void use_state(lua_State *L) {
  lua_pushvalue(L, QS);
  lua_replace(L, 1);
}

static int raise_closed(lua_State *L, const char *op) {
  return tide_error_raisef(L, "ECLOSED", op, "queue is closed");
}

/* ---- FIFO ring ----------------------------------------------------------- */

/* Double the ring (bounded queues up to maxsize), unrolling it so the
** oldest item is at 1.  The state is at index qi; the items table is at
** stack index it and is replaced there. [-0, +0, m] */
static void ring_grow(lua_State *L, queue_t *q, int qi, int it) {
  lua_Integer cap = q->cap * 2, i;
  it = lua_absindex(L, it);
  if (q->maxsize > 0 && cap > q->maxsize) cap = q->maxsize;
  if (cap > INT_MAX) luaL_error(L, "queue too large");
  lua_createtable(L, (int)cap, 0);
  for (i = 0; i < q->n; i++) {
    lua_Integer at = q->head + i;
    if (at >= q->cap) at -= q->cap;
    lua_rawgeti(L, it, at + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, qi, UV_ITEMS);
  lua_replace(L, it);
  q->head = 0;
  q->cap = cap;
}

/* Append the value on top to the ring of the state at qi: its uservalues,
** or the table at it (an absolute index, or -2). [-1, +0, m] */
static void ring_push(lua_State *L, queue_t *q, int qi, int it) {
  lua_Integer at;
  if (q->inline_ring) {
    at = q->head + q->n;
    if (at >= q->cap) at -= q->cap;
    lua_setiuservalue(L, qi, (int)at + RING_UV);
    q->n++;
    return;
  }
  if (tide_unlikely(q->n == q->cap)) ring_grow(L, q, qi, it);
  at = q->head + q->n;
  if (at >= q->cap) at -= q->cap;
  lua_rawseti(L, it, at + 1);
  q->n++;
}

/* Remove the oldest item from the ring of the state at qi (its
** uservalues, or the table at it: an absolute index, or -1) and push it.
** [-0, +1, -] */
static void ring_shift(lua_State *L, queue_t *q, int qi, int it) {
  lua_Integer at = q->head + 1;
  if (q->inline_ring) {
    lua_getiuservalue(L, qi, (int)q->head + RING_UV);
    lua_pushnil(L);
    lua_setiuservalue(L, qi, (int)q->head + RING_UV);
    if (++q->head == q->cap) q->head = 0;
    q->n--;
    return;
  }
  lua_rawgeti(L, it, at);
  lua_pushnil(L);
  /* An existing array slot: clearing it allocates nothing. */
  lua_rawseti(L, it < 0 ? it - 2 : it, at);
  if (++q->head == q->cap) q->head = 0;
  q->n--;
}

/* ---- priority heap --------------------------------------------------------
** A binary min-heap in items[1..n], with the insertion number of each item
** at the same index of the seqs table: among items that `less` does not
** order, the older comes first.  Both operations make every comparison
** before they change anything, so an error raised by `less` leaves the
** heap as it was.
*/

typedef struct {
  lua_State *L;
  int items, seqs, less; /* stack indices; less is 0 for the `<` default */
} heap_t;

/* Push the heap's tables and comparator. [-0, +3, -] */
static void heap_open(lua_State *L, heap_t *h, int it) {
  h->L = L;
  h->items = it;
  lua_getiuservalue(L, 1, UV_SEQS);
  h->seqs = lua_gettop(L);
  h->less = lua_getiuservalue(L, 1, UV_LESS) == LUA_TNIL ? 0
                                                         : lua_gettop(L);
}

static int heap_less(heap_t *h, int a, int b) {
  lua_State *L = h->L;
  int r;
  if (!h->less) return lua_compare(L, a, b, LUA_OPLT);
  lua_pushvalue(L, h->less);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_call(L, 2, 1);
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* Does the item at stack index a (inserted as sa) come before the item at
** b (sb)? */
static int heap_before(heap_t *h, int a, lua_Integer sa, int b,
                       lua_Integer sb) {
  if (heap_less(h, a, b)) return 1;
  if (heap_less(h, b, a)) return 0;
  return sa < sb;
}

static lua_Integer seq_at(lua_State *L, heap_t *h, lua_Integer i) {
  lua_Integer s;
  lua_rawgeti(L, h->seqs, i);
  s = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return s;
}

/* Copy entry `from` of the heap to `to` (item and insertion number). */
static void heap_move(lua_State *L, heap_t *h, lua_Integer from,
                      lua_Integer to) {
  lua_rawgeti(L, h->items, from);
  lua_rawseti(L, h->items, to);
  lua_rawgeti(L, h->seqs, from);
  lua_rawseti(L, h->seqs, to);
}

/* Insert the value on top. [-1, +0, e] */
static void heap_push(lua_State *L, queue_t *q, int it) {
  heap_t h;
  int x = lua_gettop(L);
  lua_Integer pos = q->n + 1, p, s = ++q->seq;
  heap_open(L, &h, it);
  /* Fill slot n+1 first: growing the tables may fail, and then nothing
  ** else has changed (a value past n is ignored and overwritten later). */
  lua_pushvalue(L, x);
  lua_rawseti(L, h.items, pos);
  lua_pushinteger(L, s);
  lua_rawseti(L, h.seqs, pos);
  while (pos > 1) {
    lua_Integer parent = pos / 2;
    int before;
    lua_rawgeti(L, h.items, parent);
    before = heap_before(&h, x, s, lua_gettop(L), seq_at(L, &h, parent));
    lua_pop(L, 1);
    if (!before) break;
    pos = parent;
  }
  /* Every comparison succeeded: shift the ancestors down and place x. */
  for (p = q->n + 1; p > pos; p /= 2) heap_move(L, &h, p / 2, p);
  lua_pushvalue(L, x);
  lua_rawseti(L, h.items, pos);
  lua_pushinteger(L, s);
  lua_rawseti(L, h.seqs, pos);
  q->n++;
  lua_settop(L, x - 1);
}

/* Remove the first item and push it. [-0, +1, e] */
static void heap_pop(lua_State *L, queue_t *q, int it) {
  heap_t h;
  lua_Integer n = q->n, m = n - 1, pos = 1, sx, path[64];
  int depth = 0, i, res, x;
  heap_open(L, &h, it);
  lua_rawgeti(L, it, 1);
  res = lua_gettop(L);
  lua_rawgeti(L, it, n);  /* the last item sinks from the root */
  x = lua_gettop(L);
  sx = seq_at(L, &h, n);
  for (;;) {
    lua_Integer c = 2 * pos, sc;
    int vc;
    if (c > m) break;
    lua_rawgeti(L, it, c);
    vc = lua_gettop(L);
    sc = seq_at(L, &h, c);
    if (c + 1 <= m) {
      lua_Integer sr;
      lua_rawgeti(L, it, c + 1);
      sr = seq_at(L, &h, c + 1);
      if (heap_before(&h, vc + 1, sr, vc, sc)) {
        lua_replace(L, vc);
        c++;
        sc = sr;
      } else {
        lua_pop(L, 1);
      }
    }
    i = heap_before(&h, vc, sc, x, sx);
    lua_pop(L, 1);
    if (!i) break;
    path[depth++] = pos = c;
  }
  /* Every comparison succeeded: move the path up and drop slot n. */
  pos = 1;
  for (i = 0; i < depth; i++) {
    heap_move(L, &h, path[i], pos);
    pos = path[i];
  }
  if (m > 0) {
    lua_pushvalue(L, x);
    lua_rawseti(L, it, pos);
    lua_pushinteger(L, sx);
    lua_rawseti(L, h.seqs, pos);
  }
  lua_pushnil(L);
  lua_rawseti(L, it, n);
  lua_pushnil(L);
  lua_rawseti(L, h.seqs, n);
  q->n = m;
  lua_settop(L, res);
}

/* ---- storage for any kind ------------------------------------------------ */

/* Add the value on top of the stack to the items table at it; the state is
** at index 1, as for every function below. [-1, +0, e] */
static void store(lua_State *L, queue_t *q, int it) {
  switch (q->kind) {
    case Q_FIFO:
      ring_push(L, q, 1, it);
      break;
    case Q_LIFO:
      lua_rawseti(L, it, q->n + 1);
      q->n++;
      break;
    default:
      heap_push(L, q, it);
      break;
  }
}

/* Remove the next item to hand out and push it. [-0, +1, e] */
static void take(lua_State *L, queue_t *q, int it) {
  switch (q->kind) {
    case Q_FIFO:
      ring_shift(L, q, 1, it);
      break;
    case Q_LIFO:
      lua_rawgeti(L, it, q->n);
      lua_pushnil(L);
      lua_rawseti(L, it, q->n);
      q->n--;
      break;
    default:
      heap_pop(L, q, it);
      break;
  }
}

/* ---- waiting ------------------------------------------------------------- */

/* Cancel hook of a getter or putter: leave the waiter list.  w->data is the
** waiting coroutine, suspended inside get/put with the state at index 1;
** reading a slot of a suspended stack runs no Lua and allocates nothing.
** A putter's item stays on its own stack and goes with the unwinding. */
static void waiter_cancel(tide_wait_t *w) {
  lua_State *wl = (lua_State *)w->data;
  queue_t *q = (queue_t *)lua_touserdata(wl, 1);
  tide_waitq_remove(w->resume == put_resume ? &q->putters : &q->getters, w);
}

/* Hand the value on top of L to the first waiting getter, which suspended
** with [state] on its stack and finds [state, item] when it resumes. */
static void give_to_getter(lua_State *L, queue_t *q) {
  tide_wait_t *w = q->getters.head;
  lua_State *gl = (lua_State *)w->data;
  if (!lua_checkstack(gl, 1)) luaL_error(L, "queue.put: stack overflow");
  tide_waitq_remove(&q->getters, w);
  lua_xmove(L, gl, 1);
  q->unfinished++;
  tide_wait_wake(w);
}

/* Push a copy of the first waiting putter's item (top of its stack). */
static void peek_putter(lua_State *L, queue_t *q) {
  lua_State *pl = (lua_State *)q->putters.head->data;
  if (!lua_checkstack(pl, 1)) luaL_error(L, "queue.get: stack overflow");
  lua_pushvalue(pl, 2);
  lua_xmove(pl, L, 1);
}

/* The first putter's item is now in the queue: pop it from the putter's
** stack (which tells put_resume it succeeded) and wake the putter. */
static void release_putter(queue_t *q) {
  tide_wait_t *w = tide_waitq_pop(&q->putters);
  lua_settop((lua_State *)w->data, 1);
  q->unfinished++;
  tide_wait_wake(w);
}

/* The first putter's item cannot enter the queue (`less` raised on it):
** move the error on top of L to the putter's stack, where put_resume
** raises it, and wake the putter. */
static void reject_putter(lua_State *L, queue_t *q) {
  tide_wait_t *w = q->putters.head;
  lua_State *pl = (lua_State *)w->data;
  if (!lua_checkstack(pl, 1)) lua_error(L);
  tide_waitq_remove(&q->putters, w);
  lua_xmove(L, pl, 1);
  tide_wait_wake(w);
}

/* Protected heap insert for refill: [state, item]. */
static int protected_heap_push(lua_State *L) {
  queue_t *q = (queue_t *)lua_touserdata(L, 1);
  lua_getiuservalue(L, 1, UV_ITEMS);
  lua_insert(L, 2);
  heap_push(L, q, 2);
  return 0;
}

/* Remove the next item and push it; if a putter waits for room, its item
** takes the freed slot.  The queue is not empty. [-0, +1, e] */
static void dequeue(lua_State *L, queue_t *q) {
  int it;
  lua_getiuservalue(L, 1, UV_ITEMS);
  it = lua_gettop(L);
  take(L, q, it);  /* may raise (a priority `less`): nothing has changed */
  if (!q->putters.head) return;
  if (q->kind != Q_PRIO) {
    /* Cannot fail: the freed slot is reused. */
    peek_putter(L, q);
    store(L, q, it);
    release_putter(q);
    return;
  }
  /* `less` may raise on the putter's item: that error is the putter's,
  ** not this getter's, so insert in protected mode and hand a failure to
  ** the putter; the next putter may then have the slot. */
  while (q->putters.head && (q->maxsize == 0 || q->n < q->maxsize)) {
    lua_pushcfunction(L, protected_heap_push);
    lua_pushvalue(L, 1);
    peek_putter(L, q);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) release_putter(q);
    else reject_putter(L, q);
  }
}

/* Add the item at index 2: to the first waiting getter, else to the
** queue.  The caller checked there is room or a getter. [-0, +0, e] */
static void enqueue(lua_State *L, queue_t *q) {
  lua_settop(L, 2);
  if (q->getters.head) {
    give_to_getter(L, q);
    return;
  }
  lua_getiuservalue(L, 1, UV_ITEMS);
  lua_pushvalue(L, 2);
  store(L, q, 3);
  q->unfinished++;
}

/* Resume of a getter: an item was handed over ([state, item]), or the
** queue was closed while it waited ([state]). */
static int get_resume(lua_State *L, tide_wait_t *w) {
  (void)w;
  if (lua_gettop(L) >= 2) return 1;
  return raise_closed(L, "queue.get");
}

/* The same for the q:iter() iterator, which ends the loop instead. */
static int iter_resume(lua_State *L, tide_wait_t *w) {
  (void)w;
  if (lua_gettop(L) >= 2) return 1;
  lua_pushnil(L);
  return 1;
}

/* Resume of a putter: its item was taken ([state]), the queue was closed
** while it waited ([state, item]), or a priority queue's `less` raised on
** the item ([state, item, error]). */
static int put_resume(lua_State *L, tide_wait_t *w) {
  (void)w;
  switch (lua_gettop(L)) {
    case 1: return 0;
    case 2: return raise_closed(L, "queue.put");
    default: return lua_error(L);
  }
}

/* Suspend the running task as a getter or putter of q (its state is at
** index 1); the waiting coroutine is the wait's data (see waiter_cancel). */
static int suspend(lua_State *L, tide_waitq_t *list, tide_resume_fn resume,
                   int keep, const char *op) {
  tide_wait_t *w = tide_task_self_wait(tide_async_check(L, op));
  lua_settop(L, keep);
  tide_wait_init(w, waiter_cancel, resume, L, 0);
  tide_waitq_push(list, w);
  return tide_wait_yield(L, w, op);
}

/* ---- methods ------------------------------------------------------------- */

/* q:put(item): add item, waiting while the queue is full.  Bound. */
static int queue_put(lua_State *L) {
  queue_t *q = bound_queue(L);
  if (tide_unlikely(lua_type(L, 2) <= LUA_TNIL))
    return luaL_argerror(L, 2, "nil cannot be put in a queue");
  if (tide_unlikely(q->closed)) return raise_closed(L, "queue.put");
  if (q->kind == Q_FIFO && !q->getters.head &&
      (q->n < q->maxsize || q->maxsize == 0)) {
    /* The hot path: room in the ring. */
    if (!q->inline_ring) lua_getiuservalue(L, QS, UV_ITEMS);
    lua_pushvalue(L, 2);
    ring_push(L, q, QS, -2);
    q->unfinished++;
    return 0;
  }
  use_state(L);
  if (q->getters.head || q->maxsize == 0 || q->n < q->maxsize) {
    enqueue(L, q);
    return 0;
  }
  return suspend(L, &q->putters, put_resume, 2, "queue.put");
}

/* Push the next item of a non-empty queue; shared by get and the
** iterator.  [-0, +1, e] */
static int take_now(lua_State *L, queue_t *q) {
  if (q->kind == Q_FIFO && !q->putters.head) {
    /* The hot path: no putter to refill from. */
    if (!q->inline_ring) lua_getiuservalue(L, QS, UV_ITEMS);
    ring_shift(L, q, QS, -1);
    return 1;
  }
  use_state(L);
  dequeue(L, q);
  return 1;
}

/* q:get() -> item, waiting while the queue is empty; ECLOSED once the
** queue is closed and drained.  Bound. */
static int queue_get(lua_State *L) {
  queue_t *q = bound_queue(L);
  if (q->n > 0) return take_now(L, q);
  if (q->closed) return raise_closed(L, "queue.get");
  use_state(L);
  return suspend(L, &q->getters, get_resume, 1, "queue.get");
}

/* q:put_nowait(item): add item or raise EAGAIN when full.  Bound. */
static int queue_put_nowait(lua_State *L) {
  queue_t *q = bound_queue(L);
  if (lua_type(L, 2) <= LUA_TNIL)
    return luaL_argerror(L, 2, "nil cannot be put in a queue");
  if (q->closed) return raise_closed(L, "queue.put_nowait");
  if (!q->getters.head && q->maxsize > 0 && q->n >= q->maxsize)
    return tide_error_raisef(L, "EAGAIN", "queue.put_nowait",
                             "queue is full");
  use_state(L);
  enqueue(L, q);
  return 0;
}

/* q:get_nowait() -> item, or raise EAGAIN when empty (ECLOSED when closed
** and drained).  Bound. */
static int queue_get_nowait(lua_State *L) {
  queue_t *q = bound_queue(L);
  if (q->n > 0) {
    use_state(L);
    dequeue(L, q);
    return 1;
  }
  if (q->closed) return raise_closed(L, "queue.get_nowait");
  return tide_error_raisef(L, "EAGAIN", "queue.get_nowait",
                           "queue is empty");
}

/* The generic-for iterator of q:iter(): the next item, waiting for one, or
** nil once the queue is closed and drained.  Bound. */
static int queue_iter_next(lua_State *L) {
  queue_t *q = bound_queue(L);
  if (q->n > 0) return take_now(L, q);
  if (q->closed) {
    lua_pushnil(L);
    return 1;
  }
  use_state(L);
  return suspend(L, &q->getters, iter_resume, 1, "queue.get");
}

/* q:iter() -> iterator, q, nil: `for item in q:iter() do ... end`. */
static int queue_iter(lua_State *L) {
  lua_settop(L, 1);
  lua_pushvalue(L, 1);       /* the object, at 2 */
  check_queue(L);            /* the state, at 1 */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, queue_iter_next, 2);
  lua_pushvalue(L, 2);
  lua_pushnil(L);
  return 3;
}

static int queue_size(lua_State *L) {
  lua_pushinteger(L, check_queue(L)->n);
  return 1;
}

static int queue_empty(lua_State *L) {
  lua_pushboolean(L, check_queue(L)->n == 0);
  return 1;
}

static int queue_full(lua_State *L) {
  queue_t *q = check_queue(L);
  lua_pushboolean(L, q->maxsize > 0 && q->n >= q->maxsize);
  return 1;
}

static int queue_maxsize(lua_State *L) {
  lua_pushinteger(L, check_queue(L)->maxsize);
  return 1;
}

static int queue_is_closed(lua_State *L) {
  lua_pushboolean(L, check_queue(L)->closed);
  return 1;
}

static void wake_all(tide_waitq_t *list) {
  tide_wait_t *w;
  while ((w = tide_waitq_pop(list)) != NULL) tide_wait_wake(w);
}

/* q:task_done(): one item taken earlier is fully processed. */
static int queue_task_done(lua_State *L) {
  queue_t *q = check_queue(L);
  if (q->unfinished <= 0)
    return luaL_error(L, "queue:task_done() called more times than items "
                      "were put");
  if (--q->unfinished == 0) wake_all(&q->joiners);
  return 0;
}

static void join_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((queue_t *)w->data)->joiners, w);
}

/* q:join(): wait until every item put has been task_done()'d. */
static int queue_join(lua_State *L) {
  queue_t *q = check_queue(L);
  tide_wait_t *w;
  if (q->unfinished == 0) return 0;
  w = tide_task_self_wait(tide_async_check(L, "queue.join"));
  /* Nothing is handed over: the wake may be dropped by a cancel. */
  tide_wait_init(w, join_cancel, NULL, q, TIDE_WAIT_DROPPABLE);
  tide_waitq_push(&q->joiners, w);
  return tide_wait_yield(L, w, "queue.join");
}

/* q:close() (also __close): putters raise ECLOSED from now on, getters
** drain what is left and then raise ECLOSED.  Idempotent. */
static int queue_close(lua_State *L) {
  queue_t *q = check_queue(L);
  if (q->closed) return 0;
  q->closed = 1;
  /* Getters only wait on an empty queue, so all of them are done; waiting
  ** putters keep their items. */
  wake_all(&q->getters);
  wake_all(&q->putters);
  return 0;
}

static int queue__tostring(lua_State *L) {
  queue_t *q = check_queue(L);
  static const char *const kinds[] = {"Queue", "LifoQueue", "PriorityQueue"};
  if (q->maxsize > 0)
    lua_pushfstring(L, "%s (%I/%I)%s", kinds[q->kind], (LUAI_UACINT)q->n,
                    (LUAI_UACINT)q->maxsize, q->closed ? " closed" : "");
  else
    lua_pushfstring(L, "%s (%I)%s", kinds[q->kind], (LUAI_UACINT)q->n,
                    q->closed ? " closed" : "");
  return 1;
}

/* ---- constructors -------------------------------------------------------- */

/* The per-item methods, bound to each queue (see the file comment). */
static const luaL_Reg bound_methods[] = {
  {"put", queue_put},
  {"get", queue_get},
  {"put_nowait", queue_put_nowait},
  {"get_nowait", queue_get_nowait},
  {NULL, NULL}
};

/* Make a queue of the given kind; maxsize <= 0 means unbounded.  Upvalues:
** the object and state metatables. [-0, +1, m] */
static int new_queue(lua_State *L, int kind) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  lua_Integer cap;
  const luaL_Reg *m;
  queue_t *q;
  int inl;
  if (kind == Q_PRIO && !lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  if (maxsize < 0) maxsize = 0;
  cap = maxsize > 0 && maxsize <= RING_PREALLOC ? maxsize : RING_MIN;
  if (maxsize > RING_PREALLOC) cap = RING_PREALLOC;
  inl = kind == Q_FIFO && maxsize > 0 && maxsize <= INLINE_MAX;
  q = (queue_t *)lua_newuserdatauv(L, sizeof *q,
                                   Q_NUV + (inl ? (int)maxsize : 0));
  memset(q, 0, sizeof *q);                       /* state at 3 */
  q->inline_ring = inl;
  q->kind = kind;
  q->maxsize = maxsize;
  q->cap = cap;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, 3);
  if (!inl) {
    lua_createtable(L, (int)cap, 0);
    lua_setiuservalue(L, 3, UV_ITEMS);
  }
  if (kind == Q_PRIO) {
    lua_createtable(L, (int)cap, 0);
    lua_setiuservalue(L, 3, UV_SEQS);
    if (lua_isfunction(L, 2)) {
      lua_pushvalue(L, 2);
      lua_setiuservalue(L, 3, UV_LESS);
    }
  }
  lua_createtable(L, 0, 5);                      /* object at 4 */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 4);
  lua_pushvalue(L, 3);
  lua_rawsetp(L, 4, &state_key);
  for (m = bound_methods; m->name; m++) {
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 4);
    lua_pushcclosure(L, m->func, 2);
    lua_setfield(L, 4, m->name);
  }
  return 1;
}

static int queue_new(lua_State *L) { return new_queue(L, Q_FIFO); }
static int queue_lifo(lua_State *L) { return new_queue(L, Q_LIFO); }
static int queue_priority(lua_State *L) { return new_queue(L, Q_PRIO); }

static const luaL_Reg queue_methods[] = {
  {"iter", queue_iter},
  {"size", queue_size},
  {"empty", queue_empty},
  {"full", queue_full},
  {"maxsize", queue_maxsize},
  {"closed", queue_is_closed},
  {"task_done", queue_task_done},
  {"join", queue_join},
  {"close", queue_close},
  {NULL, NULL}
};

static const luaL_Reg queue_meta[] = {
  {"__len", queue_size},
  {"__close", queue_close},
  {"__tostring", queue__tostring},
  {NULL, NULL}
};

static const luaL_Reg queue_funcs[] = {
  {"new", queue_new},
  {"lifo", queue_lifo},
  {"priority", queue_priority},
  {NULL, NULL}
};

/* Register funcs into the table on top, with the object and state
** metatables (at mt and st) as upvalues. [-0, +0, m] */
static void set_funcs(lua_State *L, int mt, int st, const luaL_Reg *funcs) {
  lua_pushvalue(L, mt);
  lua_pushvalue(L, st);
  luaL_setfuncs(L, funcs, 2);
}

int luaopen_tide_queue(lua_State *L) {
  lua_settop(L, 0);                              /* drop require's args */
  luaL_newmetatable(L, QUEUE_MT);                /* 1: object metatable */
  luaL_newmetatable(L, STATE_MT);                /* 2: state metatable */
  lua_createtable(L, 0, sizeof queue_methods / sizeof *queue_methods);
  set_funcs(L, 1, 2, queue_methods);
  lua_setfield(L, 1, "__index");
  lua_pushvalue(L, 1);
  set_funcs(L, 1, 2, queue_meta);
  lua_pop(L, 1);
  lua_newtable(L);                               /* the module */
  set_funcs(L, 1, 2, queue_funcs);
  return 1;
}
