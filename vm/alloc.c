/*
** alloc.c: the allocator of the Lua states tide creates.  Lua passes the
** old size of every block it frees or resizes, so small blocks need no
** header: they are carved from slabs and recycled through one free
** list per 16-byte size class.  Tasks make this pay twice over: every spawn
** allocates a Task and (for the first tasks) a coroutine, every finished
** task frees them, and glibc's malloc, whose per-thread cache holds only 7
** blocks of a size, sorts the rest through its bins; and every block
** malloc gives out carries 8 to 16 bytes of header and padding, on each of
** a sleeping task's five or so blocks.  Blocks over ALLOC_MAX go to
** malloc.  This file owns the slabs; they go back to the system when the
** state is closed, not before: freed small blocks wait in their lists for
** the next block of their size, as they would in most mallocs' bins.
**
** Sanitizer builds use plain malloc instead, so AddressSanitizer still
** sees every Lua object on its own.
*/
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../runtime/internal.h"

#define ALLOC_GRAIN 16
#define ALLOC_MAX 1024
#define ALLOC_CLASSES (ALLOC_MAX / ALLOC_GRAIN)
#define SLAB_SIZE (64 * 1024)
#define HUGE_SIZE (2 * 1024 * 1024)
#define SMALL_SLABS 64 /* slabs from malloc before huge ones */

typedef struct slab {
  struct slab *next;
  size_t size;  /* SLAB_SIZE (malloced) or HUGE_SIZE (mapped) */
} slab_t;

struct tide_alloc {
  void *free[ALLOC_CLASSES];  /* class i: blocks of (i + 1) * 16 bytes */
  char *bump, *bump_end;      /* the uncarved rest of the newest slab */
  slab_t *slabs;
  int nslabs;
};

/* A new slab.  Past SMALL_SLABS (4 MiB) a state is holding many objects
** (100,000 sleeping tasks take 140 MiB), so slabs grow to 2 MiB, mapped
** with MAP_POPULATE: the kernel fills in all their pages in one call
** instead of taking a page fault on each 4 KiB as they are first touched,
** which was a third of the time it took to start 100,000 tasks.
** (Transparent huge pages were faster still when the kernel had free huge
** pages, and several times slower when it first had to compact memory.)
** Small programs never get there, so they pay nothing in start-up time or
** RSS. */
static slab_t *new_slab(tide_alloc_t *a) {
  slab_t *s = NULL;
  if (a->nslabs >= SMALL_SLABS) {
    void *p = mmap(NULL, HUGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p != MAP_FAILED) {
      s = (slab_t *)p;
      s->size = HUGE_SIZE;
    }
  }
  if (!s) {
    s = malloc(SLAB_SIZE);
    if (!s) return NULL;
    s->size = SLAB_SIZE;
  }
  s->next = a->slabs;
  a->slabs = s;
  a->nslabs++;
  return s;
}

static size_t class_of(size_t n) { return (n - 1) / ALLOC_GRAIN; }

/* A block of class c, or NULL when the system has no memory left. */
static void *take(tide_alloc_t *a, size_t c) {
  void *p = a->free[c];
  size_t size = (c + 1) * ALLOC_GRAIN;
  slab_t *s;
  if (p) {
    a->free[c] = *(void **)p;
    return p;
  }
  if ((size_t)(a->bump_end - a->bump) < size) {
    /* Give the slab's tail to the lists before starting a new one. */
    while ((size_t)(a->bump_end - a->bump) >= ALLOC_GRAIN) {
      size_t rest = (size_t)(a->bump_end - a->bump); /* a multiple of 16 */
      size_t rc = class_of(rest < ALLOC_MAX ? rest : ALLOC_MAX);
      *(void **)a->bump = a->free[rc];
      a->free[rc] = a->bump;
      a->bump += (rc + 1) * ALLOC_GRAIN;
    }
    s = new_slab(a);
    if (!s) return NULL;
    /* The slab header takes one grain, keeping blocks 16-byte aligned. */
    a->bump = (char *)s + ALLOC_GRAIN;
    a->bump_end = (char *)s + s->size;
  }
  p = a->bump;
  a->bump += size;
  return p;
}

static void give(tide_alloc_t *a, void *p, size_t size) {
  size_t c = class_of(size);
  *(void **)p = a->free[c];
  a->free[c] = p;
}

/* The lua_Alloc: ptr's old size is osize whenever ptr is not NULL. */
static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  tide_alloc_t *a = (tide_alloc_t *)ud;
  void *p;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    if (ptr) {
      if (osize <= ALLOC_MAX) give(a, ptr, osize);
      else free(ptr);
    }
    return NULL;
  }
  if (osize > ALLOC_MAX && nsize > ALLOC_MAX) return realloc(ptr, nsize);
  if (ptr && osize <= ALLOC_MAX && nsize <= ALLOC_MAX &&
      class_of(osize) == class_of(nsize))
    return ptr;
  p = nsize <= ALLOC_MAX ? take(a, class_of(nsize)) : malloc(nsize);
  if (!p) {
    /* Lua counts on a shrink never failing; the old block is big enough.
    ** (A malloced block kept this way is later taken for a class block:
    ** it is never handed back to malloc, which costs its memory only in a
    ** process that already ran out of it.) */
    return (ptr && nsize <= osize) ? ptr : NULL;
  }
  if (ptr) {
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    if (osize <= ALLOC_MAX) give(a, ptr, osize);
    else free(ptr);
  }
  return p;
}

/* The sanitizer builds' allocator: what luaL_newstate would use. */
static void *plain_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

lua_Alloc tide__alloc_new(tide_alloc_t **out) {
#ifdef TIDE_PLAIN_ALLOC
  (void)pool_alloc;
  *out = NULL;
  return plain_alloc;
#else
  (void)plain_alloc;
  *out = calloc(1, sizeof **out);
  return *out ? pool_alloc : plain_alloc;
#endif
}

void tide__alloc_free(tide_alloc_t *a) {
  slab_t *s, *next;
  if (!a) return;
  for (s = a->slabs; s; s = next) {
    next = s->next;
    if (s->size == SLAB_SIZE) free(s);
    else munmap(s, s->size);
  }
  free(a);
}
