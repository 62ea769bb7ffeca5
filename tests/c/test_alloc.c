/*
** test_alloc.c: the allocator of the states tide creates (vm/alloc.c),
** reached the way Lua reaches it, through lua_getallocf.  Random blocks
** from 1 byte to 4 KiB are allocated, filled with a pattern, resized
** across size classes and across the 1 KiB line where blocks go to malloc,
** checked, and freed, many times over; then the runtime runs Lua code that
** churns strings and tables, and closes.  Under valgrind (make valgrind)
** this also shows that the slabs are returned and nothing is leaked.
*/
#include <stdint.h>

#include "check.h"

#define NBLOCKS 4096
#define ROUNDS 20

typedef struct {
  unsigned char *p;
  size_t size;
  unsigned char seed;
} block_t;

static uint32_t rng = 12345;

static uint32_t next_rand(void) {
  rng = rng * 1103515245u + 12345u;
  return rng >> 8;
}

/* Sizes weighted towards the small classes, as Lua's are. */
static size_t random_size(void) {
  switch (next_rand() % 4) {
    case 0: return 1 + next_rand() % 64;
    case 1: return 1 + next_rand() % 1024;
    case 2: return 1000 + next_rand() % 50; /* around the 1 KiB line */
    default: return 1 + next_rand() % 4096;
  }
}

static void fill(block_t *b, size_t from) {
  size_t i;
  for (i = from; i < b->size; i++) b->p[i] = (unsigned char)(b->seed + i);
}

static void check(const block_t *b, size_t upto) {
  size_t i;
  for (i = 0; i < upto && i < b->size; i++)
    ASSERT_EQ(b->p[i], (unsigned char)(b->seed + i));
}

int main(void) {
  static block_t blocks[NBLOCKS];
  tide_runtime_t *rt = tide_runtime_new(NULL);
  lua_State *L;
  lua_Alloc f;
  void *ud;
  int round, i;
  ASSERT(rt != NULL);
  L = tide_runtime_lua(rt);
  f = lua_getallocf(L, &ud);

  for (round = 0; round < ROUNDS; round++) {
    for (i = 0; i < NBLOCKS; i++) {
      block_t *b = &blocks[i];
      size_t nsize = random_size();
      if (!b->p) {
        b->p = f(ud, NULL, LUA_TTABLE, nsize); /* osize: the object type */
        ASSERT(b->p != NULL);
        ASSERT_EQ((uintptr_t)b->p % 8, 0);
        b->size = nsize;
        b->seed = (unsigned char)next_rand();
        fill(b, 0);
      } else if (next_rand() % 3 == 0) {
        check(b, b->size);
        ASSERT(f(ud, b->p, b->size, 0) == NULL);
        b->p = NULL;
      } else {
        unsigned char *p = f(ud, b->p, b->size, nsize);
        ASSERT(p != NULL);
        b->p = p;
        check(b, nsize < b->size ? nsize : b->size);
        if (nsize > b->size) {
          size_t old = b->size;
          b->size = nsize;
          fill(b, old);
        } else {
          b->size = nsize;
        }
      }
    }
  }
  for (i = 0; i < NBLOCKS; i++) {
    if (blocks[i].p) {
      check(&blocks[i], blocks[i].size);
      f(ud, blocks[i].p, blocks[i].size, 0);
    }
  }

  /* Lua's own use of it: strings and tables of every size, collected. */
  ASSERT_EQ(luaL_dostring(L,
    "local keep = {}\n"
    "for i = 1, 20000 do\n"
    "  local s = string.rep('x', i % 3000)\n"
    "  local t = {}\n"
    "  for j = 1, i % 40 do t[j] = s end\n"
    "  keep[i % 500] = t\n"
    "end\n"
    "collectgarbage()\n"
    "assert(#keep[499][1] == 19999 % 3000)\n"), LUA_OK);
  tide_runtime_close(rt);
  return 0;
}
