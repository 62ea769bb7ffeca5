/*
** timer.c: the runtime's timer heap.  Every sleep and every tide.timeout
** deadline is a node in one 4-ary min-heap ordered by (due, seq), behind a
** single libuv timer armed for the earliest node.  Nodes are embedded in
** their owners (the task, the deadline scope), so 100,000 sleeping tasks
** cost 100,000 heap slots and no libuv handle each.
*/
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* The heap is 4-ary and holds each node's key next to its pointer, as Go's
** timer heap does: popping 100,000 due sleepers from a binary heap of
** pointers missed the cache at each of its 17 levels, in task records
** spread over the Lua heap.  Now a pop walks about 8 levels, comparing
** four adjacent keys at each. */
#define ARITY 4
static int before(const tide_heapent_t *a, const tide_heapent_t *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(tide_runtime_t *rt, size_t i, tide_heapent_t e) {
  rt->heap[i] = e;
  e.tm->index = (int)i;
}

static void sift_up(tide_runtime_t *rt, size_t i) {
  tide_heapent_t e = rt->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / ARITY;
    if (!before(&e, &rt->heap[parent])) break;
    heap_set(rt, i, rt->heap[parent]);
    i = parent;
  }
  heap_set(rt, i, e);
}

static void sift_down(tide_runtime_t *rt, size_t i) {
  tide_heapent_t e = rt->heap[i];
  size_t n = rt->nheap;
  for (;;) {
    size_t c = ARITY * i + 1, end = c + ARITY, m = i;
    const tide_heapent_t *best = &e;
    if (end > n) end = n;
    for (; c < end; c++)
      if (before(&rt->heap[c], best)) { m = c; best = &rt->heap[c]; }
    if (m == i) break;
    heap_set(rt, i, *best);
    i = m;
  }
  heap_set(rt, i, e);
}

static void on_timer(uv_timer_t *h) {
  /* owns nothing: the heap's nodes belong to tasks and deadline scopes */
  tide__timers_run((tide_runtime_t *)h->data);
}

/* Point the libuv timer at the earliest node, or stop it. */
static void rearm(tide_runtime_t *rt) {
  if (rt->nheap == 0) {
    uv_timer_stop(rt->timer);
    return;
  } else {
    uint64_t now = uv_now(rt->loop);
    uint64_t due = rt->heap[0].due;
    uv_timer_start(rt->timer, on_timer, due > now ? due - now : 0, 0);
  }
}

/* Take tm out of the heap; says whether it was the earliest. */
static int heap_remove(tide_runtime_t *rt, tide_timer_t *tm) {
  size_t i = (size_t)tm->index;
  tm->index = -1;
  rt->nheap--;
  if (i < rt->nheap) {
    tide_heapent_t last = rt->heap[rt->nheap];
    heap_set(rt, i, last);
    if (i > 0 && before(&last, &rt->heap[(i - 1) / ARITY])) sift_up(rt, i);
    else sift_down(rt, i);
  }
  return i == 0;
}

void tide__timer_init(tide_timer_t *tm, void (*fire)(tide_timer_t *)) {
  tm->due = 0;
  tm->index = -1;
  tm->fire = fire;
}

void tide__timer_start(tide_runtime_t *rt, tide_timer_t *tm, double secs) {
  tide_heapent_t e;
  double ms = ceil(secs * 1000.0);
  int was_top = tm->index >= 0 && heap_remove(rt, tm);
  if (!(ms >= 0)) ms = 0;
  if (ms > 9.0e15) ms = 9.0e15;
  tm->due = tide__loop_now(rt) + (uint64_t)ms;
  if (rt->nheap == rt->heapcap) {
    size_t cap = rt->heapcap ? rt->heapcap * 2 : 64;
    tide_heapent_t *h = realloc(rt->heap, cap * sizeof *h);
    if (!h) abort();
    rt->heap = h;
    rt->heapcap = cap;
  }
  e.due = tm->due;
  e.seq = rt->timer_seq++;
  e.tm = tm;
  heap_set(rt, rt->nheap++, e);
  sift_up(rt, rt->nheap - 1);
  if (was_top || rt->heap[0].tm == tm) rearm(rt);
}

void tide__timer_stop(tide_runtime_t *rt, tide_timer_t *tm) {
  if (tm->index >= 0 && heap_remove(rt, tm)) rearm(rt);
}

/* Fire every node that is due, then re-arm once.  Firing only wakes tasks
** or marks deadlines; no Lua runs here. */
void tide__timers_run(tide_runtime_t *rt) {
  uint64_t now = uv_now(rt->loop);
  while (rt->nheap > 0 && rt->heap[0].due <= now) {
    tide_timer_t *tm = rt->heap[0].tm;
    heap_remove(rt, tm);
    tm->fire(tm);
  }
  rearm(rt);
}

int tide__timers_close(tide_runtime_t *rt) {
  while (rt->nheap > 0) tide__timer_stop(rt, rt->heap[0].tm);
  return 0;
}
