/*
** sync.c: the C half of tide.sync (`tide._sync`): Lock, Semaphore (plain
** and bounded), Event, the waiter list that Condition is built on, and the
** Guard objects that acquire() returns.  Each primitive is a userdata that
** owns one waiter list of the engine (tide_waitq_t over the waiting tasks'
** embedded waits); stdlib/sync.lua adds Condition and Barrier on top.
**
** A release hands the lock or the permit directly to the first waiter, so
** waiters are served first come, first served and nobody can barge in
** between the release and the waiter's resume.  Those waits are not
** droppable: once woken, the waiter owns the lock or the permit, and a
** cancel that arrives before it resumes is delivered at its next await
** point, where its guard releases what it holds.  A waiter cancelled before
** the hand-off simply leaves the list and takes nothing.
**
** A Guard releases what its acquire() took, once: guard:release() and
** `<close>` share one idempotent function.  A lock guard also remembers
** which acquisition it belongs to, so it does nothing if the lock was
** released some other way meanwhile (lock:release(), Condition.wait).
** Guards have no __gc: a program may drop the guard and call
** lock:release() itself, and a collector-driven release would then free a
** lock somebody else holds by then.
*/
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "compat.h"

/* Every function of this file has these metatables as upvalues, so type
** checks and guard creation need no registry lookup. */
enum { MT_LOCK = 1, MT_SEM, MT_BSEM, MT_EVENT, MT_WAITLIST, MT_GUARD,
       NMT = MT_GUARD };

static const char *const mt_names[] = {
  NULL, "tide.Lock", "tide.Semaphore", "tide.BoundedSemaphore",
  "tide.Event", "tide.WaitList", "tide.Guard"
};

typedef struct {
  tide_waitq_t waiters;
  uint64_t holder;  /* id of the acquisition holding the lock, 0 if none */
  uint64_t ids;     /* last acquisition id handed out */
  int locked;
} lock_t;

typedef struct {
  tide_waitq_t waiters;
  lua_Integer value;
  lua_Integer bound;  /* BoundedSemaphore: the initial value; else 0 */
} semaphore_t;

typedef struct {
  tide_waitq_t waiters;
  int set;
} event_t;

typedef struct {
  tide_waitq_t waiters;
} waitlist_t;

enum { GUARD_LOCK, GUARD_SEM };

typedef struct {
  uint64_t id;  /* lock guards: the acquisition they release */
  int kind;
  int done;
} guard_t;

/* Is the value at idx a userdata with metatable upvalue `mt`? */
static void *test_type(lua_State *L, int idx, int mt) {
  void *p = lua_touserdata(L, idx);
  int ok;
  if (!p || !lua_getmetatable(L, idx)) return NULL;
  ok = lua_rawequal(L, -1, lua_upvalueindex(mt));
  lua_pop(L, 1);
  return ok ? p : NULL;
}

static void *check_type(lua_State *L, int idx, int mt) {
  void *p = test_type(L, idx, mt);
  if (tide_unlikely(!p)) luaL_typeerror(L, idx, mt_names[mt]);
  return p;
}

/* Make a primitive of metatable mt with `size` zeroed bytes. [-0, +1, m] */
static void *new_object(lua_State *L, size_t size, int mt) {
  void *p = lua_newuserdatauv(L, size, 0);
  memset(p, 0, size);
  lua_pushvalue(L, lua_upvalueindex(mt));
  lua_setmetatable(L, -2);
  return p;
}

/* Push a guard for the primitive at index 1. [-0, +1, m] */
static int push_guard(lua_State *L, int kind, uint64_t id) {
  guard_t *g = (guard_t *)lua_newuserdatauv(L, sizeof *g, 1);
  g->id = id;
  g->kind = kind;
  g->done = 0;
  lua_pushvalue(L, lua_upvalueindex(MT_GUARD));
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static void wake_all(tide_waitq_t *list) {
  tide_wait_t *w;
  while ((w = tide_waitq_pop(list)) != NULL) tide_wait_wake(w);
}

/* ---- Lock ---------------------------------------------------------------- */

static int lock_new(lua_State *L) {
  new_object(L, sizeof(lock_t), MT_LOCK);
  return 1;
}

/* Release l: hand it to the first waiter, or unlock it. */
static void lock_unlock(lock_t *l) {
  tide_wait_t *w = tide_waitq_pop(&l->waiters);
  if (w) {
    l->holder = ++l->ids;  /* stays locked: the waiter owns it now */
    tide_wait_wake(w);
  } else {
    l->locked = 0;
    l->holder = 0;
  }
}

static void lock_wait_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((lock_t *)w->data)->waiters, w);
}

/* Resume of acquire(): the lock was handed over; give its guard. */
static int lock_acquired(lua_State *L, tide_wait_t *w) {
  return push_guard(L, GUARD_LOCK, ((lock_t *)w->data)->holder);
}

/* lock:acquire() -> guard, waiting while another task holds the lock. */
static int lock_acquire(lua_State *L) {
  lock_t *l = (lock_t *)check_type(L, 1, MT_LOCK);
  tide_wait_t *w;
  lua_settop(L, 1);
  if (!l->locked) {
    l->locked = 1;
    l->holder = ++l->ids;
    return push_guard(L, GUARD_LOCK, l->holder);
  }
  w = tide_task_self_wait(tide_async_check(L, "Lock:acquire"));
  tide_wait_init(w, lock_wait_cancel, lock_acquired, l, 0);
  tide_waitq_push(&l->waiters, w);
  return tide_wait_yield(L, w, "lock");
}

/* lock:release(): release the lock, whoever acquired it (as asyncio). */
static int lock_release(lua_State *L) {
  lock_t *l = (lock_t *)check_type(L, 1, MT_LOCK);
  if (!l->locked) return luaL_error(L, "Lock:release: lock is not acquired");
  lock_unlock(l);
  return 0;
}

static int lock_locked(lua_State *L) {
  lua_pushboolean(L, ((lock_t *)check_type(L, 1, MT_LOCK))->locked);
  return 1;
}

/* lock:_release_for_wait() -> id: Condition.wait releases the lock and
** keeps the id of the acquisition, to restore it with _reacquire so the
** caller's guard still releases the lock afterwards. */
static int lock_release_for_wait(lua_State *L) {
  lock_t *l = (lock_t *)check_type(L, 1, MT_LOCK);
  uint64_t id = l->holder;
  if (!l->locked) return luaL_error(L, "Condition:wait: lock is not acquired");
  lock_unlock(l);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static int lock_reacquired(lua_State *L, tide_wait_t *w) {
  ((lock_t *)w->data)->holder = (uint64_t)lua_tointeger(L, 2);
  return 0;
}

/* lock:_reacquire(id): acquire the lock again for acquisition id.  Unlike
** acquire() it starts even when a cancel or an expired deadline is pending
** (they are delivered afterwards): Condition.wait must return holding the
** lock however its wait ended, as asyncio's does.  A new interrupt while it
** waits still raises, and the caller tries again. */
static int lock_reacquire(lua_State *L) {
  lock_t *l = (lock_t *)check_type(L, 1, MT_LOCK);
  lua_Integer id = luaL_checkinteger(L, 2);
  tide_wait_t *w;
  lua_settop(L, 2);
  if (!l->locked) {
    l->locked = 1;
    l->holder = (uint64_t)id;
    return 0;
  }
  w = tide_task_self_wait(tide__suspend_check(L, "Condition:wait"));
  tide_wait_init(w, lock_wait_cancel, lock_reacquired, l, 0);
  tide_waitq_push(&l->waiters, w);
  return tide_wait_yield(L, w, "lock");
}

static int lock__tostring(lua_State *L) {
  lock_t *l = (lock_t *)check_type(L, 1, MT_LOCK);
  lua_pushstring(L, l->locked ? "Lock (locked)" : "Lock (unlocked)");
  return 1;
}

/* ---- Semaphore and BoundedSemaphore -------------------------------------- */

static semaphore_t *check_sem(lua_State *L) {
  semaphore_t *s = (semaphore_t *)test_type(L, 1, MT_SEM);
  if (!s) s = (semaphore_t *)check_type(L, 1, MT_BSEM);
  return s;
}

/* semaphore(value, bounded) */
static int sem_new(lua_State *L) {
  lua_Integer value = luaL_optinteger(L, 1, 1);
  int bounded = lua_toboolean(L, 2);
  semaphore_t *s;
  luaL_argcheck(L, value >= 0, 1, "initial value must be >= 0");
  s = (semaphore_t *)new_object(L, sizeof(semaphore_t),
                                bounded ? MT_BSEM : MT_SEM);
  s->value = value;
  s->bound = bounded ? value : 0;
  return 1;
}

/* Give one permit back: to the first waiter, or to the counter. */
static void sem_give(lua_State *L, semaphore_t *s) {
  tide_wait_t *w = tide_waitq_pop(&s->waiters);
  if (w) {
    tide_wait_wake(w);
    return;
  }
  if (s->bound > 0 && s->value >= s->bound)
    luaL_error(L, "BoundedSemaphore:release: released too many times");
  s->value++;
}

static void sem_wait_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((semaphore_t *)w->data)->waiters, w);
}

static int sem_acquired(lua_State *L, tide_wait_t *w) {
  (void)w;
  return push_guard(L, GUARD_SEM, 0);
}

/* sem:acquire() -> guard, waiting while no permit is left. */
static int sem_acquire(lua_State *L) {
  semaphore_t *s = check_sem(L);
  tide_wait_t *w;
  lua_settop(L, 1);
  if (s->value > 0) {
    s->value--;
    return push_guard(L, GUARD_SEM, 0);
  }
  w = tide_task_self_wait(tide_async_check(L, "Semaphore:acquire"));
  tide_wait_init(w, sem_wait_cancel, sem_acquired, s, 0);
  tide_waitq_push(&s->waiters, w);
  return tide_wait_yield(L, w, "semaphore");
}

static int sem_release(lua_State *L) {
  sem_give(L, check_sem(L));
  return 0;
}

static int sem_locked(lua_State *L) {
  lua_pushboolean(L, check_sem(L)->value == 0);
  return 1;
}

static int sem_value(lua_State *L) {
  lua_pushinteger(L, check_sem(L)->value);
  return 1;
}

static int sem__tostring(lua_State *L) {
  semaphore_t *s = check_sem(L);
  lua_pushfstring(L, "%s (value %I)",
                  s->bound > 0 ? "BoundedSemaphore" : "Semaphore",
                  (LUAI_UACINT)s->value);
  return 1;
}

/* ---- Event --------------------------------------------------------------- */

static int event_new(lua_State *L) {
  new_object(L, sizeof(event_t), MT_EVENT);
  return 1;
}

static int event_set(lua_State *L) {
  event_t *e = (event_t *)check_type(L, 1, MT_EVENT);
  e->set = 1;
  wake_all(&e->waiters);
  return 0;
}

static int event_clear(lua_State *L) {
  ((event_t *)check_type(L, 1, MT_EVENT))->set = 0;
  return 0;
}

static int event_is_set(lua_State *L) {
  lua_pushboolean(L, ((event_t *)check_type(L, 1, MT_EVENT))->set);
  return 1;
}

static void event_wait_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((event_t *)w->data)->waiters, w);
}

static int push_true(lua_State *L, tide_wait_t *w) {
  (void)w;
  lua_pushboolean(L, 1);
  return 1;
}

/* event:wait() -> true once the event is set.  Nothing is handed over, so
** a cancel may drop a wake that has not been resumed yet. */
static int event_wait(lua_State *L) {
  event_t *e = (event_t *)check_type(L, 1, MT_EVENT);
  tide_wait_t *w;
  if (e->set) {
    lua_pushboolean(L, 1);
    return 1;
  }
  w = tide_task_self_wait(tide_async_check(L, "Event:wait"));
  tide_wait_init(w, event_wait_cancel, push_true, e, TIDE_WAIT_DROPPABLE);
  tide_waitq_push(&e->waiters, w);
  return tide_wait_yield(L, w, "event");
}

static int event__tostring(lua_State *L) {
  event_t *e = (event_t *)check_type(L, 1, MT_EVENT);
  lua_pushstring(L, e->set ? "Event (set)" : "Event (clear)");
  return 1;
}

/* ---- WaitList (for Condition) -------------------------------------------- */

static int waitlist_new(lua_State *L) {
  new_object(L, sizeof(waitlist_t), MT_WAITLIST);
  return 1;
}

static void waitlist_cancel(tide_wait_t *w) {
  tide_waitq_remove(&((waitlist_t *)w->data)->waiters, w);
}

/* list:wait(): suspend until notified.  A notification is handed to one
** waiter: it is not droppable, so a cancelled waiter never swallows it. */
static int waitlist_wait(lua_State *L) {
  waitlist_t *wl = (waitlist_t *)check_type(L, 1, MT_WAITLIST);
  tide_wait_t *w = tide_task_self_wait(tide_async_check(L, "Condition:wait"));
  lua_settop(L, 1);
  tide_wait_init(w, waitlist_cancel, NULL, wl, 0);
  tide_waitq_push(&wl->waiters, w);
  return tide_wait_yield(L, w, "condition");
}

/* list:notify([n]) -> count: wake up to n (default 1) waiters, oldest
** first; n may be math.huge. */
static int waitlist_notify(lua_State *L) {
  waitlist_t *wl = (waitlist_t *)check_type(L, 1, MT_WAITLIST);
  lua_Number n = luaL_optnumber(L, 2, 1);
  lua_Integer count = 0;
  tide_wait_t *w;
  while (count < n && (w = tide_waitq_pop(&wl->waiters)) != NULL) {
    tide_wait_wake(w);
    count++;
  }
  lua_pushinteger(L, count);
  return 1;
}

/* list:count() -> number of waiting tasks */
static int waitlist_count(lua_State *L) {
  waitlist_t *wl = (waitlist_t *)check_type(L, 1, MT_WAITLIST);
  lua_Integer n = 0;
  tide_wait_t *w;
  for (w = wl->waiters.head; w; w = w->next) n++;
  lua_pushinteger(L, n);
  return 1;
}

/* ---- Guard --------------------------------------------------------------- */

/* guard:release(), also __close: release what the acquire took, once. */
static int guard_release(lua_State *L) {
  guard_t *g = (guard_t *)check_type(L, 1, MT_GUARD);
  if (g->done) return 0;
  g->done = 1;
  lua_getiuservalue(L, 1, 1);
  if (g->kind == GUARD_LOCK) {
    lock_t *l = (lock_t *)lua_touserdata(L, -1);
    if (l->locked && l->holder == g->id) lock_unlock(l);
  } else {
    sem_give(L, (semaphore_t *)lua_touserdata(L, -1));
  }
  return 0;
}

static int guard_released(lua_State *L) {
  lua_pushboolean(L, ((guard_t *)check_type(L, 1, MT_GUARD))->done);
  return 1;
}

static int guard__tostring(lua_State *L) {
  guard_t *g = (guard_t *)check_type(L, 1, MT_GUARD);
  lua_pushfstring(L, "Guard (%s)", g->done ? "released" : "held");
  return 1;
}

/* ---- the module ---------------------------------------------------------- */

typedef struct {
  int mt;
  const luaL_Reg *methods;
  const luaL_Reg *meta;  /* metamethods */
} type_def;

static const luaL_Reg lock_methods[] = {
  {"acquire", lock_acquire},
  {"release", lock_release},
  {"locked", lock_locked},
  {"_release_for_wait", lock_release_for_wait},
  {"_reacquire", lock_reacquire},
  {NULL, NULL}
};

static const luaL_Reg sem_methods[] = {
  {"acquire", sem_acquire},
  {"release", sem_release},
  {"locked", sem_locked},
  {"value", sem_value},
  {NULL, NULL}
};

static const luaL_Reg event_methods[] = {
  {"set", event_set},
  {"clear", event_clear},
  {"is_set", event_is_set},
  {"wait", event_wait},
  {NULL, NULL}
};

static const luaL_Reg waitlist_methods[] = {
  {"wait", waitlist_wait},
  {"notify", waitlist_notify},
  {"count", waitlist_count},
  {NULL, NULL}
};

static const luaL_Reg guard_methods[] = {
  {"release", guard_release},
  {"released", guard_released},
  {NULL, NULL}
};

static const luaL_Reg lock_meta[] = {
  {"__tostring", lock__tostring},
  {NULL, NULL}
};

static const luaL_Reg sem_meta[] = {
  {"__tostring", sem__tostring},
  {NULL, NULL}
};

static const luaL_Reg event_meta[] = {
  {"__tostring", event__tostring},
  {NULL, NULL}
};

static const luaL_Reg guard_meta[] = {
  {"__tostring", guard__tostring},
  {"__close", guard_release},
  {NULL, NULL}
};

static const luaL_Reg no_meta[] = {
  {NULL, NULL}
};

static const type_def types[] = {
  {MT_LOCK, lock_methods, lock_meta},
  {MT_SEM, sem_methods, sem_meta},
  {MT_BSEM, sem_methods, sem_meta},
  {MT_EVENT, event_methods, event_meta},
  {MT_WAITLIST, waitlist_methods, no_meta},
  {MT_GUARD, guard_methods, guard_meta},
  {0, NULL, NULL}
};

static const luaL_Reg sync_funcs[] = {
  {"lock", lock_new},
  {"semaphore", sem_new},
  {"event", event_new},
  {"waitlist", waitlist_new},
  {NULL, NULL}
};

/* Register funcs into the table at idx, each with the NMT metatables as
** upvalues. [-0, +0, m] */
static void set_funcs(lua_State *L, int idx, const luaL_Reg *funcs) {
  int i;
  lua_pushvalue(L, idx);
  for (i = MT_LOCK; i <= NMT; i++) luaL_getmetatable(L, mt_names[i]);
  luaL_setfuncs(L, funcs, NMT);
  lua_pop(L, 1);
}

int luaopen_tide_sync(lua_State *L) {
  const type_def *t;
  for (t = types; t->mt; t++) {
    luaL_newmetatable(L, mt_names[t->mt]);
    lua_pop(L, 1);
  }
  for (t = types; t->mt; t++) {
    luaL_getmetatable(L, mt_names[t->mt]);
    lua_newtable(L);
    set_funcs(L, -1, t->methods);
    lua_setfield(L, -2, "__index");
    set_funcs(L, -1, t->meta);
    lua_pop(L, 1);
  }
  lua_newtable(L);
  set_funcs(L, -1, sync_funcs);
  return 1;
}
