/*
** pretty.c: the value pretty-printer behind tide.pretty(v, opts) and
** tide.pp(...), which the REPL uses to show results.  Strings are quoted
** and escaped, tables are shown as Lua constructors (inline when they fit
** the width, indented one entry per line otherwise), a table met again
** while it is being printed is marked as a cycle and its first appearance
** gets a label, and depth, entry count and string length are cut with a
** note of what was left out.  Other values go through tostring, so Tasks
** show their status.  The output is built in a buffer owned by a userdata
** box on the Lua stack, so an error half-way (a failing __tostring, memory)
** frees it through the box's __gc.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/internal.h"

#define BOX_MT "tide.PrettyBuffer"
#define MAX_PATH 64
#define MAX_MARKS (2 * MAX_PATH + 8)

typedef struct {
  char *b;
  size_t n, cap;
} buf_t;

/* A table being printed: enclosing tables, for cycle detection. */
typedef struct {
  const void *ptr;
  size_t open; /* buffer offset of its opening brace */
  int label;   /* 0 until a cycle back to it is found */
} frame_t;

/* A point to come back to when an inline attempt does not fit.  Marks
** nest (an attempt inside a block inside an attempt) and live on a stack,
** so a label inserted before them can shift them. */
typedef struct {
  size_t n, line_start;
  int nlabels;
} mark_t;

typedef struct {
  lua_State *L;
  buf_t *out;
  int indent, maxdepth, width, use_tostring;
  lua_Integer maxitems, maxstring;
  frame_t path[MAX_PATH];
  int depth;
  int nlabels;
  size_t line_start; /* offset after the last newline */
  mark_t marks[MAX_MARKS];
  int nmarks;
} pp_t;

/* ---- the buffer ----------------------------------------------------- */

static int box_gc(lua_State *L) {
  buf_t *b = (buf_t *)luaL_checkudata(L, 1, BOX_MT);
  free(b->b);
  b->b = NULL;
  b->n = b->cap = 0;
  return 0;
}

/* Push a new empty buffer box. [-0, +1, m] */
static buf_t *box_new(lua_State *L) {
  buf_t *b = (buf_t *)lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

static void reserve(pp_t *p, size_t extra) {
  buf_t *b = p->out;
  if (b->n + extra > b->cap) {
    size_t cap = b->cap ? b->cap : 128;
    char *nb;
    while (cap < b->n + extra) cap *= 2;
    nb = (char *)realloc(b->b, cap);
    if (!nb) luaL_error(p->L, "tide.pretty: not enough memory");
    b->b = nb;
    b->cap = cap;
  }
}

static void add(pp_t *p, const char *s, size_t len) {
  reserve(p, len);
  memcpy(p->out->b + p->out->n, s, len);
  p->out->n += len;
}

static void adds(pp_t *p, const char *s) {
  add(p, s, strlen(s));
}

static void addc(pp_t *p, char c) {
  add(p, &c, 1);
}

static void mark(pp_t *p) {
  mark_t *m;
  if (p->nmarks == MAX_MARKS) luaL_error(p->L, "tide.pretty: nesting too deep");
  m = &p->marks[p->nmarks++];
  m->n = p->out->n;
  m->line_start = p->line_start;
  m->nlabels = p->nlabels;
}

/* The attempt fitted: keep what it printed. */
static void commit(pp_t *p) {
  p->nmarks--;
}

/* Throw away what the attempt printed.  Labels it gave to tables inside
** it go too; labels of enclosing tables (still being printed) stay. */
static void rollback(pp_t *p) {
  mark_t *m = &p->marks[--p->nmarks];
  int d;
  p->out->n = m->n;
  p->line_start = m->line_start;
  p->nlabels = m->nlabels;
  for (d = 0; d < p->depth; d++)
    if (p->path[d].label > p->nlabels) p->nlabels = p->path[d].label;
}

/* Insert s at offset `at` (a label before an opening brace), moving
** every recorded offset past it. */
static void insert(pp_t *p, size_t at, const char *s) {
  size_t len = strlen(s);
  int i;
  reserve(p, len);
  memmove(p->out->b + at + len, p->out->b + at, p->out->n - at);
  memcpy(p->out->b + at, s, len);
  p->out->n += len;
  if (p->line_start > at) p->line_start += len;
  for (i = 0; i < p->depth; i++)
    if (p->path[i].open > at) p->path[i].open += len;
  for (i = 0; i < p->nmarks; i++) {
    if (p->marks[i].n > at) p->marks[i].n += len;
    if (p->marks[i].line_start > at) p->marks[i].line_start += len;
  }
}

static void newline(pp_t *p, int level) {
  int i;
  addc(p, '\n');
  p->line_start = p->out->n;
  for (i = 0; i < level * p->indent; i++) addc(p, ' ');
}

static size_t column(pp_t *p) {
  return p->out->n - p->line_start;
}

/* ---- scalars --------------------------------------------------------- */

static void add_string(pp_t *p, const char *s, size_t len) {
  size_t i, shown = len;
  char tmp[8];
  if (p->maxstring >= 0 && (lua_Integer)len > p->maxstring)
    shown = (size_t)p->maxstring;
  addc(p, '"');
  for (i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"':
        adds(p, "\\\"");
        break;
      case '\\':
        adds(p, "\\\\");
        break;
      case '\n':
        adds(p, "\\n");
        break;
      case '\r':
        adds(p, "\\r");
        break;
      case '\t':
        adds(p, "\\t");
        break;
      case '\a':
        adds(p, "\\a");
        break;
      case '\b':
        adds(p, "\\b");
        break;
      case '\f':
        adds(p, "\\f");
        break;
      case '\v':
        adds(p, "\\v");
        break;
      default:
        if (c < 32 || c == 127) {
          /* \ddd with three digits, so a following digit cannot join it */
          tmp[0] = '\\';
          tmp[1] = (char)('0' + c / 100);
          tmp[2] = (char)('0' + c / 10 % 10);
          tmp[3] = (char)('0' + c % 10);
          add(p, tmp, 4);
        } else {
          addc(p, (char)c);
        }
    }
  }
  addc(p, '"');
  if (shown < len) {
    lua_pushfstring(p->L, "...(%I more bytes)", (lua_Integer)(len - shown));
    adds(p, lua_tostring(p->L, -1));
    lua_pop(p->L, 1);
  }
}

static int is_identifier(const char *s, size_t len) {
  static const char *const reserved[] = {
      "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
      "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
      "repeat",   "return", "then", "true", "until",  "while", NULL};
  size_t i;
  int k;
  if (len == 0 || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')))
    return 0;
  for (i = 1; i < len; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= '0' && c <= '9') ||
          ((c | 32) >= 'a' && (c | 32) <= 'z')))
      return 0;
  }
  for (k = 0; reserved[k]; k++)
    if (strcmp(s, reserved[k]) == 0) return 0;
  return 1;
}

/* tostring(v) without failing: a __tostring that raises gives
** "<type: address>" instead. [-0, +0, m] */
static int safe_tostring_k(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

static void add_tostring(pp_t *p, int idx) {
  lua_State *L = p->L;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, safe_tostring_k);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx));
  }
  adds(p, lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* Functions show where they were defined, which says more than an
** address. */
static void add_function(pp_t *p, int idx) {
  lua_State *L = p->L;
  lua_Debug ar;
  lua_pushvalue(L, idx);
  lua_getinfo(L, ">S", &ar);
  if (ar.what[0] == 'C')
    lua_pushfstring(L, "<function: builtin: %p>", lua_topointer(L, idx));
  else
    lua_pushfstring(L, "<function %s:%d>", ar.short_src, ar.linedefined);
  adds(p, lua_tostring(L, -1));
  lua_pop(L, 1);
}

static int has_tostring(lua_State *L, int idx) {
  int r = luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL;
  if (r) lua_pop(L, 1);
  return r;
}

/* ---- tables ---------------------------------------------------------- */

/* A key of the hash part, for sorting: numbers first (by value), then
** strings (by bytes), then the rest (by type name). */
typedef struct {
  int rank;
  lua_Number num;
  const char *str;
  size_t len;
  int slot; /* index in the keys table */
} pkey_t;

/* Compare strings in natural order: runs of digits compare by value, so
** key2 comes before key10. */
static int natural_cmp(const char *a, size_t na, const char *b, size_t nb) {
  size_t i = 0, j = 0;
  while (i < na && j < nb) {
    unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[j];
    if (ca >= '0' && ca <= '9' && cb >= '0' && cb <= '9') {
      size_t si, sj, li, lj;
      while (i < na && a[i] == '0') i++;
      while (j < nb && b[j] == '0') j++;
      for (si = i; i < na && a[i] >= '0' && a[i] <= '9'; i++) {
      }
      for (sj = j; j < nb && b[j] >= '0' && b[j] <= '9'; j++) {
      }
      li = i - si;
      lj = j - sj;
      if (li != lj) return li < lj ? -1 : 1;
      if (li) {
        int c = memcmp(a + si, b + sj, li);
        if (c) return c;
      }
      continue;
    }
    if (ca != cb) return ca < cb ? -1 : 1;
    i++;
    j++;
  }
  if (i < na) return 1;
  if (j < nb) return -1;
  return 0;
}

static int key_cmp(const void *a, const void *b) {
  const pkey_t *x = (const pkey_t *)a, *y = (const pkey_t *)b;
  if (x->rank != y->rank) return x->rank - y->rank;
  if (x->rank == 0) {
    if (x->num != y->num) return x->num < y->num ? -1 : 1;
  } else if (x->str && y->str) {
    int c = natural_cmp(x->str, x->len, y->str, y->len);
    if (c) return c;
  }
  return x->slot - y->slot;
}

static int render(pp_t *p, int idx, int level, int inl);

static void add_key(pp_t *p, int kidx) {
  lua_State *L = p->L;
  size_t len;
  if (lua_type(L, kidx) == LUA_TSTRING) {
    const char *s = lua_tolstring(L, kidx, &len);
    if (is_identifier(s, len)) {
      add(p, s, len);
    } else {
      addc(p, '[');
      add_string(p, s, len);
      addc(p, ']');
    }
  } else if (lua_type(L, kidx) == LUA_TNUMBER ||
             lua_type(L, kidx) == LUA_TBOOLEAN) {
    addc(p, '[');
    add_tostring(p, kidx);
    addc(p, ']');
  } else {
    /* Table and other keys by identity: printing them in full would make
    ** keys longer than their values. */
    addc(p, '[');
    addc(p, '<');
    add_tostring(p, kidx);
    addc(p, '>');
    addc(p, ']');
  }
  adds(p, " = ");
}

/* Would the inline form still fit on the current line? */
static int fits(pp_t *p, int inl) {
  return !inl || (int)column(p) <= p->width;
}

/* Print the table at idx.  inl: only on one line, giving up (returning 0)
** once past the width. */
static int render_table(pp_t *p, int idx, int level, int inl) {
  lua_State *L = p->L;
  lua_Integer narr = 0, nhash = 0, total, shown, i;
  pkey_t *keys = NULL;
  int keystbl, top = lua_gettop(L), d, k;
  const void *ptr = lua_topointer(L, idx);
  /* a cycle: the table is one of those being printed */
  for (d = 0; d < p->depth; d++) {
    if (p->path[d].ptr == ptr) {
      char lab[32];
      if (!p->path[d].label) {
        p->path[d].label = ++p->nlabels;
        snprintf(lab, sizeof lab, "<%d>", p->path[d].label);
        insert(p, p->path[d].open, lab);
      }
      snprintf(lab, sizeof lab, "<cycle %d>", p->path[d].label);
      adds(p, lab);
      return fits(p, inl);
    }
  }
  if (p->use_tostring && has_tostring(L, idx)) {
    addc(p, '<');
    add_tostring(p, idx);
    addc(p, '>');
    return fits(p, inl);
  }
  /* the array part: 1..n without holes */
  while (lua_rawgeti(L, idx, narr + 1) != LUA_TNIL) {
    lua_pop(L, 1);
    narr++;
  }
  lua_pop(L, 1);
  /* the other keys, collected in a list on the stack, then sorted */
  lua_newtable(L);
  keystbl = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) {
      lua_Integer ik = lua_tointeger(L, -1);
      if (ik >= 1 && ik <= narr) continue;
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, keystbl, ++nhash);
  }
  total = narr + nhash;
  if (total == 0) {
    lua_settop(L, top);
    adds(p, "{}");
    return fits(p, inl);
  }
  if (level >= p->maxdepth || p->depth >= MAX_PATH) {
    lua_settop(L, top);
    adds(p, "{...}");
    return fits(p, inl);
  }
  if (nhash > 0) {
    keys = (pkey_t *)lua_newuserdatauv(L, (size_t)nhash * sizeof *keys, 0);
    for (i = 0; i < nhash; i++) {
      pkey_t *kk = &keys[i];
      int t = lua_rawgeti(L, keystbl, i + 1);
      memset(kk, 0, sizeof *kk);
      kk->slot = (int)(i + 1);
      if (t == LUA_TNUMBER) {
        kk->rank = 0;
        kk->num = lua_tonumber(L, -1);
      } else if (t == LUA_TSTRING) {
        kk->rank = 1;
        kk->str = lua_tolstring(L, -1, &kk->len); /* anchored in keystbl */
      } else {
        kk->rank = 2;
        kk->str = lua_typename(L, t);
        kk->len = strlen(kk->str);
      }
      lua_pop(L, 1);
    }
    qsort(keys, (size_t)nhash, sizeof *keys, key_cmp);
  }
  shown = total < p->maxitems ? total : p->maxitems;
  luaL_checkstack(L, 8, "tide.pretty: nesting too deep");
  p->path[p->depth].ptr = ptr;
  p->path[p->depth].open = p->out->n;
  p->path[p->depth].label = 0;
  p->depth++;
  addc(p, '{');
  for (i = 0; i < shown; i++) {
    int last = i + 1 == total;
    if (inl) {
      if (i > 0) adds(p, ", ");
    } else if (i < narr) {
      /* array items share lines while they fit, like a paragraph */
      if (i == 0) {
        newline(p, level + 1);
      } else {
        mark(p);
        addc(p, ' ');
        lua_rawgeti(L, idx, i + 1);
        k = render(p, -1, level + 1, 1);
        lua_pop(L, 1);
        if (k && column(p) < (size_t)p->width) {
          commit(p);
          if (!last || shown < total) addc(p, ',');
          continue;
        }
        rollback(p);
        newline(p, level + 1);
      }
    } else {
      newline(p, level + 1);
    }
    if (i < narr) {
      lua_rawgeti(L, idx, i + 1);
    } else {
      lua_rawgeti(L, keystbl, keys[i - narr].slot);
      add_key(p, lua_gettop(L));
      lua_pushvalue(L, -1);
      lua_rawget(L, idx);
      lua_remove(L, -2);
    }
    k = render(p, -1, level + 1, inl);
    lua_pop(L, 1);
    if (!k) goto toolong;
    if (!inl && (!last || shown < total)) addc(p, ',');
  }
  if (shown < total) {
    lua_pushfstring(L, "...(%I more)", total - shown);
    if (!inl)
      newline(p, level + 1);
    else if (shown > 0)
      adds(p, ", ");
    adds(p, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (!inl) newline(p, level);
  addc(p, '}');
  p->depth--;
  lua_settop(L, top);
  return fits(p, inl);
toolong:
  p->depth--;
  lua_settop(L, top);
  return 0;
}

/* Print the value at idx; returns 0 when inl and it did not fit. */
static int render(pp_t *p, int idx, int level, int inl) {
  lua_State *L = p->L;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      add_string(p, s, len);
      return fits(p, inl);
    }
    case LUA_TTABLE:
      if (inl) return render_table(p, idx, level, 1);
      /* one line if it fits, else one entry per line */
      mark(p);
      if (render_table(p, idx, level, 1)) {
        commit(p);
        return 1;
      }
      rollback(p);
      return render_table(p, idx, level, 0);
    case LUA_TFUNCTION:
      add_function(p, idx);
      return fits(p, inl);
    case LUA_TUSERDATA:
    case LUA_TTHREAD:
    case LUA_TLIGHTUSERDATA:
      addc(p, '<');
      add_tostring(p, idx);
      addc(p, '>');
      return fits(p, inl);
    default:
      add_tostring(p, idx);
      return fits(p, inl);
  }
}

/* A count option, clamped to 0..INT_MAX (math.huge means no limit). */
static int opt_int(lua_State *L, int opts, const char *name, int def) {
  int v = def;
  if (opts && lua_getfield(L, opts, name) != LUA_TNIL) {
    lua_Number n = lua_tonumber(L, -1);
    if (lua_isnumber(L, -1) && n == n) {
      v = n >= (lua_Number)INT_MAX ? INT_MAX : n <= 0 ? 0 : (int)n;
    } else {
      luaL_error(L, "bad option '%s' to 'pretty' (number expected, got %s)",
                 name, luaL_typename(L, -1));
    }
  }
  if (opts) lua_pop(L, 1);
  return v;
}

/* tide.pretty(v [, opts]) -> string.  opts: indent (2), depth (6), items
** (100), width (80), string (4000 bytes shown), tostring (true: use a
** table's __tostring). */
static int pretty(lua_State *L) {
  pp_t p;
  int opts = 0;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    opts = 2;
  }
  memset(&p, 0, sizeof p);
  p.L = L;
  p.indent = opt_int(L, opts, "indent", 2);
  p.maxdepth = opt_int(L, opts, "depth", 6);
  p.maxitems = opt_int(L, opts, "items", 100);
  p.width = opt_int(L, opts, "width", 80);
  p.maxstring = opt_int(L, opts, "string", 4000);
  p.use_tostring = 1;
  if (opts) {
    lua_getfield(L, opts, "tostring");
    if (lua_isboolean(L, -1)) p.use_tostring = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (p.indent > 16) p.indent = 16;
  lua_settop(L, 2);
  p.out = box_new(L); /* index 3 */
  render(&p, 1, 0, 0);
  lua_pushlstring(L, p.out->b ? p.out->b : "", p.out->n);
  return 1;
}

/* tide.pp(...): print each value pretty, through the global print (so the
** REPL can keep it above its prompt). */
static int pp(lua_State *L) {
  int i, n = lua_gettop(L);
  luaL_checkstack(L, n + 4, "too many values");
  lua_getglobal(L, "print");
  for (i = 1; i <= n; i++) {
    lua_pushcfunction(L, pretty);
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
  }
  lua_call(L, n, 0);
  return 0;
}

/* Add pretty and pp to the table at tbl. [-0, +0, m] */
void tide__pretty_fields(lua_State *L, int tbl) {
  tbl = lua_absindex(L, tbl);
  lua_pushcfunction(L, pretty);
  lua_setfield(L, tbl, "pretty");
  lua_pushcfunction(L, pp);
  lua_setfield(L, tbl, "pp");
}
