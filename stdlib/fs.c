/*
** fs.c: the C half of tide.fs.  Every piece of file work is a job run in
** libuv's thread pool with uv_queue_work, and a job does a whole operation
** (open, fstat, read everything, close for read_file; temp file, write,
** fsync, rename for an atomic write_file; a whole tree for a recursive
** remove) with plain POSIX calls in the worker, so a small file costs one
** thread-pool round trip instead of one per syscall.  This file owns the
** jobs (malloced, freed in their after-work callback or by the resume
** function that consumed them), and the File type with its read buffer.
** fs.watch lives in fswatch.c.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "compat.h"

#define FILE_MT "tide.File"

#define CHUNK (64 * 1024)  /* read-ahead of a buffered File read */
#define MAXNUM 200          /* longest numeral "n" reads, as in liolib */

enum {
  OP_READ_FILE, OP_WRITE_FILE, OP_STAT, OP_LSTAT, OP_EXISTS, OP_LIST,
  OP_MKDIR, OP_REMOVE, OP_RENAME, OP_COPY, OP_MKDTEMP, OP_OPEN,
  OP_FREAD, OP_FREAD_ALL, OP_FWRITE, OP_FSYNC, OP_FSIZE
};

/* Job flags. */
#define F_APPEND 1
#define F_ATOMIC 2
#define F_PARENTS 4
#define F_RECURSIVE 8
#define F_SEEKABLE 16

typedef struct file file_t;

/* One thread-pool job.  The worker reads only the job; the loop thread
** touches it only before submission and after the after-work callback. */
typedef struct {
  uv_work_t work;
  tide_wait_t wait;
  int op;
  int err;           /* 0 or a negative libuv error */
  int err_path2;     /* the error is about path2 */
  int flags;
  int mode;
  int fd;
  int64_t off;
  char *path, *path2;
  char *buf;         /* data to write, or data read */
  size_t len, cap;
  struct stat st;
  char **names;      /* OP_LIST */
  size_t nnames;
  file_t *file;      /* the File it works on, while that File is open */
  const char *opname;
} job_t;

struct file {
  int fd;            /* -1 once closed */
  int flags;         /* F_APPEND, F_SEEKABLE */
  int readable, writable;
  int eof;           /* the current read met the end of the file */
  int64_t pos;       /* fd offset of the byte after the buffer */
  char *rbuf;        /* read-ahead: bytes [rstart, rend) are unread */
  size_t rstart, rend, rcap;
  job_t *job;        /* the job in flight on this File, if any */
  int rfirst, rlast; /* stack slots of the formats of the read in progress */
};

/* ---- jobs: allocation, the worker, the callbacks ----------------------- */

static void job_free(job_t *j) {
  size_t i;
  free(j->path);
  free(j->path2);
  free(j->buf);
  for (i = 0; i < j->nnames; i++) free(j->names[i]);
  free(j->names);
  free(j);
}

/* A new job for `op`, or a memory error. [-0, +0, m] */
static job_t *job_new(lua_State *L, int op, const char *opname,
                      const char *path, const char *path2) {
  job_t *j = calloc(1, sizeof *j);
  if (!j) goto oom;
  j->op = op;
  j->opname = opname;
  j->fd = -1;
  if (path && !(j->path = strdup(path))) goto oom;
  if (path2 && !(j->path2 = strdup(path2))) goto oom;
  return j;
oom:
  if (j) job_free(j);
  luaL_error(L, "not enough memory");
  return NULL;
}

static int sys_err(void) { return uv_translate_sys_error(errno); }

/* Write all of buf (at off when off >= 0).  Returns 0 or a libuv error. */
static int write_all(int fd, const char *buf, size_t len, int64_t off) {
  while (len > 0) {
    ssize_t n = off >= 0 ? pwrite(fd, buf, len, off) : write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_err();
    }
    buf += n;
    len -= (size_t)n;
    if (off >= 0) off += n;
  }
  return 0;
}

/* Read from fd (at *off when off != NULL) until EOF into j->buf. */
static int read_all(job_t *j, int fd, int64_t *off, size_t hint) {
  j->cap = hint + 1;
  if (j->cap < 4096) j->cap = 4096;
  if (!(j->buf = malloc(j->cap))) return UV_ENOMEM;
  for (;;) {
    ssize_t n;
    if (j->len == j->cap) {
      char *nb = realloc(j->buf, j->cap * 2);
      if (!nb) return UV_ENOMEM;
      j->buf = nb;
      j->cap *= 2;
    }
    n = off ? pread(fd, j->buf + j->len, j->cap - j->len, *off)
            : read(fd, j->buf + j->len, j->cap - j->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_err();
    }
    if (n == 0) return 0;
    j->len += (size_t)n;
    if (off) *off += n;
  }
}

static void w_read_file(job_t *j) {
  struct stat st;
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    j->err = sys_err();
    return;
  }
  if (fstat(fd, &st) < 0) j->err = sys_err();
  else if (S_ISDIR(st.st_mode)) j->err = UV_EISDIR;
  else j->err = read_all(j, fd, NULL, S_ISREG(st.st_mode) ?
                                      (size_t)st.st_size : 0);
  close(fd);
}

/* fsync the directory that holds path, so a rename into it is durable. */
static void sync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  int fd;
  if (!slash) dir = strdup(".");
  else if (slash == path) dir = strdup("/");
  else dir = strndup(path, (size_t)(slash - path));
  if (!dir) return;
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* Atomic write: a temporary file next to the target (so rename cannot
** cross file systems), written, fsynced, given the target's mode, then
** renamed over the target. */
static void w_write_atomic(job_t *j) {
  size_t plen = strlen(j->path);
  char *tmp = malloc(plen + 40);
  struct stat st;
  int fd = -1, tries, err;
  if (!tmp) {
    j->err = UV_ENOMEM;
    return;
  }
  for (tries = 0; tries < 100; tries++) {
    snprintf(tmp, plen + 40, "%s.tmp-%ld-%llx", j->path, (long)getpid(),
             (unsigned long long)(uv_hrtime() + (uint64_t)tries * 7919u));
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) {
    j->err = sys_err();
    free(tmp);
    return;
  }
  err = write_all(fd, j->buf, j->len, -1);
  if (!err && stat(j->path, &st) == 0 && fchmod(fd, st.st_mode & 07777) < 0)
    err = sys_err();
  if (!err && fsync(fd) < 0) err = sys_err();
  if (close(fd) < 0 && !err) err = sys_err();
  if (!err && rename(tmp, j->path) < 0) err = sys_err();
  if (err) unlink(tmp);
  else sync_parent(j->path);
  j->err = err;
  free(tmp);
}

static void w_write_file(job_t *j) {
  int fd, err;
  if (j->flags & F_ATOMIC) {
    w_write_atomic(j);
    return;
  }
  fd = open(j->path, O_WRONLY | O_CREAT | O_CLOEXEC |
                     ((j->flags & F_APPEND) ? O_APPEND : O_TRUNC), 0666);
  if (fd < 0) {
    j->err = sys_err();
    return;
  }
  err = write_all(fd, j->buf, j->len, -1);
  if (close(fd) < 0 && !err) err = sys_err();
  j->err = err;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void w_list(job_t *j) {
  DIR *d = opendir(j->path);
  struct dirent *e;
  size_t cap = 0;
  if (!d) {
    j->err = sys_err();
    return;
  }
  for (;;) {
    errno = 0;
    if (!(e = readdir(d))) {
      if (errno) j->err = sys_err();
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (j->nnames == cap) {
      char **n = realloc(j->names, (cap ? cap * 2 : 16) * sizeof *n);
      if (!n) {
        j->err = UV_ENOMEM;
        break;
      }
      j->names = n;
      cap = cap ? cap * 2 : 16;
    }
    if (!(j->names[j->nnames] = strdup(e->d_name))) {
      j->err = UV_ENOMEM;
      break;
    }
    j->nnames++;
  }
  closedir(d);
  if (j->nnames > 1)
    qsort(j->names, j->nnames, sizeof *j->names, cmp_names);
}

static void w_mkdir(job_t *j) {
  char *p, *s;
  struct stat st;
  if (!(j->flags & F_PARENTS)) {
    if (mkdir(j->path, (mode_t)j->mode) < 0) j->err = sys_err();
    return;
  }
  /* mkdir -p: create each missing component; existing directories are
  ** fine, anything else in the way is an error. */
  if (!(p = strdup(j->path))) {
    j->err = UV_ENOMEM;
    return;
  }
  for (s = p + 1;; s++) {
    int last = (*s == '\0');
    if (*s != '/' && !last) continue;
    *s = '\0';
    if (mkdir(p, (mode_t)j->mode) < 0) {
      int e = errno;
      if (e != EEXIST || stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
        j->err = e == EEXIST ? UV_ENOTDIR : uv_translate_sys_error(e);
        if (last && e == EEXIST) j->err = UV_EEXIST;
        break;
      }
    }
    if (last) break;
    *s = '/';
    while (s[1] == '/') s++;
  }
  free(p);
}

/* Remove the contents of the directory open at dfd (which this call owns)
** without following symbolic links: every entry is looked at with lstat
** semantics relative to dfd, links are unlinked, directories are opened
** with O_NOFOLLOW, so no link can lead the walk out of the tree. */
static int remove_tree(int dfd) {
  DIR *d = fdopendir(dfd);
  struct dirent *e;
  int err = 0;
  if (!d) {
    err = sys_err();
    close(dfd);
    return err;
  }
  while (!err) {
    struct stat st;
    errno = 0;
    if (!(e = readdir(d))) {
      if (errno) err = sys_err();
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT) err = sys_err();
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), e->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        err = sys_err();
        break;
      }
      err = remove_tree(sub);
      if (!err && unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
        err = sys_err();
    } else if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT) {
      err = sys_err();
    }
  }
  closedir(d);
  return err;
}

static void w_remove(job_t *j) {
  struct stat st;
  if (lstat(j->path, &st) < 0) {
    j->err = sys_err();
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(j->path) < 0) j->err = sys_err();
    return;
  }
  if (j->flags & F_RECURSIVE) {
    int dfd = open(j->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
      j->err = sys_err();
      return;
    }
    if ((j->err = remove_tree(dfd)) != 0) return;
  }
  if (rmdir(j->path) < 0) j->err = sys_err();
}

static void w_copy(job_t *j) {
  struct stat st;
  int in, out, err = 0;
  if ((in = open(j->path, O_RDONLY | O_CLOEXEC)) < 0) {
    j->err = sys_err();
    return;
  }
  if (fstat(in, &st) < 0 || S_ISDIR(st.st_mode)) {
    j->err = S_ISDIR(st.st_mode) ? UV_EISDIR : sys_err();
    close(in);
    return;
  }
  out = open(j->path2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
             st.st_mode & 07777);
  if (out < 0) {
    j->err = sys_err();
    j->err_path2 = 1;
    close(in);
    return;
  }
  /* copy_file_range lets the kernel copy (or share extents); fall back to
  ** read/write where it is not supported. */
  for (;;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n > 0) continue;
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
        errno != EOPNOTSUPP) {
      err = sys_err();
      break;
    }
    {
      char buf[CHUNK];
      for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          err = sys_err();
          break;
        }
        if (r == 0) break;
        if ((err = write_all(out, buf, (size_t)r, -1)) != 0) {
          j->err_path2 = 1;
          break;
        }
      }
    }
    break;
  }
  close(in);
  if (close(out) < 0 && !err) {
    err = sys_err();
    j->err_path2 = 1;
  }
  j->err = err;
}

static void w_fread(job_t *j) {
  ssize_t n;
  if (!(j->buf = malloc(j->cap))) {
    j->err = UV_ENOMEM;
    return;
  }
  do {
    n = (j->flags & F_SEEKABLE) ? pread(j->fd, j->buf, j->cap, j->off)
                                : read(j->fd, j->buf, j->cap);
  } while (n < 0 && errno == EINTR);
  if (n < 0) j->err = sys_err();
  else j->len = (size_t)n;
}

static void w_fwrite(job_t *j) {
  if ((j->flags & F_APPEND) || !(j->flags & F_SEEKABLE)) {
    j->err = write_all(j->fd, j->buf, j->len, -1);
    if ((j->flags & F_SEEKABLE) &&
        (j->off = lseek(j->fd, 0, SEEK_CUR)) < 0)
      j->err = sys_err();
  } else {
    j->err = write_all(j->fd, j->buf, j->len, j->off);
    j->off += (int64_t)j->len;
  }
}

/* The worker: runs in the thread pool; touches only the job. */
static void work_cb(uv_work_t *w) {
  job_t *j = tide_container_of(w, job_t, work);
  switch (j->op) {
    case OP_READ_FILE: w_read_file(j); break;
    case OP_WRITE_FILE: w_write_file(j); break;
    case OP_STAT:
    case OP_EXISTS:
      if (stat(j->path, &j->st) < 0) j->err = sys_err();
      break;
    case OP_LSTAT:
      if (lstat(j->path, &j->st) < 0) j->err = sys_err();
      break;
    case OP_LIST: w_list(j); break;
    case OP_MKDIR: w_mkdir(j); break;
    case OP_REMOVE: w_remove(j); break;
    case OP_RENAME:
      if (rename(j->path, j->path2) < 0) j->err = sys_err();
      break;
    case OP_COPY: w_copy(j); break;
    case OP_MKDTEMP:
      if (!mkdtemp(j->path)) j->err = sys_err();
      break;
    case OP_OPEN:
      j->fd = open(j->path, j->flags | O_CLOEXEC, 0666);
      if (j->fd < 0) j->err = sys_err();
      else if (fstat(j->fd, &j->st) < 0) j->err = sys_err();
      break;
    case OP_FREAD: w_fread(j); break;
    case OP_FREAD_ALL: {
      struct stat st;
      size_t hint = 0;
      if ((j->flags & F_SEEKABLE) && fstat(j->fd, &st) == 0 &&
          st.st_size > j->off)
        hint = (size_t)(st.st_size - j->off);
      j->err = read_all(j, j->fd, (j->flags & F_SEEKABLE) ? &j->off : NULL,
                        hint);
      break;
    }
    case OP_FWRITE: w_fwrite(j); break;
    case OP_FSYNC:
      if (fsync(j->fd) < 0) j->err = sys_err();
      break;
    case OP_FSIZE:
      if (fstat(j->fd, &j->st) < 0) j->err = sys_err();
      break;
  }
}

/* owns the job; its task may have been cancelled (wait.task == NULL), in
** which case nobody will consume the result: free it here, closing a
** descriptor that a cancelled open made or that a closed File left. */
static void after_cb(uv_work_t *w, int status) {
  job_t *j = tide_container_of(w, job_t, work);
  if (status == UV_ECANCELED) j->err = UV_ECANCELED;
  if (j->wait.task) {
    tide_wait_wake(&j->wait);
    return;
  }
  if (j->file) j->file->job = NULL;
  else if (j->op == OP_OPEN || j->op >= OP_FREAD) {
    /* A cancelled open's new descriptor, or the descriptor of a File
    ** closed while this job used it: nobody else owns it now. */
    if (j->fd >= 0) close(j->fd);
  }
  job_free(j);
}

/* Cancel hook: try to take the job off the pool's queue; if it already
** runs, it finishes and after_cb frees it, seeing the detached wait. */
static void job_cancel(tide_wait_t *w) {
  job_t *j = (job_t *)w->data;
  if (uv_cancel((uv_req_t *)&j->work) == 0 && j->file) {
    /* Taken off the queue: the job will never touch the descriptor, so
    ** the File is free now rather than when after_cb comes, and the
    ** descriptor stays the File's (after_cb must not close it). */
    j->file->job = NULL;
    j->file = NULL;
    j->fd = -1;
  }
}

/* Submit the job and suspend the task on it. */
static int job_start(lua_State *L, job_t *j, tide_resume_fn resume) {
  tide_runtime_t *rt = tide__rt(L);
  int r;
  tide_wait_init(&j->wait, job_cancel, resume, j, 0);
  r = uv_queue_work(rt->loop, &j->work, work_cb, after_cb);
  if (r < 0) {
    job_free(j);
    return tide_error_raise(L, r, j->opname, NULL);
  }
  return tide_wait_yield(L, &j->wait, j->opname);
}

/* Raise the job's error (freeing the job first). [-0, +0, v] */
static int job_raise(lua_State *L, job_t *j) {
  tide_error_push(L, uv_err_name(j->err), j->opname,
                  j->err_path2 ? j->path2 : j->path, uv_strerror(j->err));
  job_free(j);
  return lua_error(L);
}

/* ---- path functions ------------------------------------------------------ */

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "link";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "char";
  if (S_ISBLK(m)) return "block";
  return "unknown";
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, struct timespec ts) {
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

/* Push the stat table. [-0, +1, m] */
static void push_stat(lua_State *L, const struct stat *st) {
  lua_createtable(L, 0, 12);
  set_int(L, "size", (lua_Integer)st->st_size);
  lua_pushstring(L, type_name(st->st_mode));
  lua_setfield(L, -2, "type");
  set_int(L, "mode", (lua_Integer)(st->st_mode & 07777));
  set_time(L, "mtime", st->st_mtim);
  set_time(L, "atime", st->st_atim);
  set_time(L, "ctime", st->st_ctim);
  set_int(L, "ino", (lua_Integer)st->st_ino);
  set_int(L, "dev", (lua_Integer)st->st_dev);
  set_int(L, "nlink", (lua_Integer)st->st_nlink);
  set_int(L, "uid", (lua_Integer)st->st_uid);
  set_int(L, "gid", (lua_Integer)st->st_gid);
  set_int(L, "blocks", (lua_Integer)st->st_blocks);
}

/* Resume of the path functions: push the job's result. */
static int path_resume(lua_State *L, tide_wait_t *w) {
  job_t *j = (job_t *)w->data;
  size_t i;
  if (j->op == OP_EXISTS) {
    lua_pushboolean(L, j->err == 0);
    job_free(j);
    return 1;
  }
  if (j->err) return job_raise(L, j);
  switch (j->op) {
    case OP_READ_FILE:
      lua_pushlstring(L, j->buf ? j->buf : "", j->len);
      break;
    case OP_STAT:
    case OP_LSTAT:
      push_stat(L, &j->st);
      break;
    case OP_LIST:
      lua_createtable(L, (int)j->nnames, 0);
      for (i = 0; i < j->nnames; i++) {
        lua_pushstring(L, j->names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      break;
    case OP_MKDTEMP:
      lua_pushstring(L, j->path);
      break;
    default:
      lua_pushboolean(L, 1);
      break;
  }
  job_free(j);
  return 1;
}

static int opt_flag(lua_State *L, int idx, const char *k) {
  int v;
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, k);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Start a path job: check, allocate, submit, yield. */
static int path_job(lua_State *L, int op, const char *opname,
                    const char *path, const char *path2, int flags) {
  job_t *j;
  tide_async_check(L, opname);
  j = job_new(L, op, opname, path, path2);
  j->flags = flags;
  j->mode = 0777;
  return job_start(L, j, path_resume);
}

/* fs.read_file(path) -> string */
static int fs_read_file(lua_State *L) {
  return path_job(L, OP_READ_FILE, "fs.read_file", luaL_checkstring(L, 1),
                  NULL, 0);
}

/* fs.write_file(path, data, {append=, atomic=}) -> true */
static int fs_write_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int flags = (opt_flag(L, 3, "append") ? F_APPEND : 0) |
              (opt_flag(L, 3, "atomic") ? F_ATOMIC : 0);
  job_t *j;
  if ((flags & F_APPEND) && (flags & F_ATOMIC))
    return luaL_argerror(L, 3, "'append' and 'atomic' exclude each other");
  tide_async_check(L, "fs.write_file");
  j = job_new(L, OP_WRITE_FILE, "fs.write_file", path, NULL);
  j->flags = flags;
  if (len > 0) {
    if (!(j->buf = malloc(len))) {
      job_free(j);
      return luaL_error(L, "not enough memory");
    }
    memcpy(j->buf, data, len);
  }
  j->len = len;
  return job_start(L, j, path_resume);
}

static int fs_stat(lua_State *L) {
  return path_job(L, OP_STAT, "fs.stat", luaL_checkstring(L, 1), NULL, 0);
}

static int fs_lstat(lua_State *L) {
  return path_job(L, OP_LSTAT, "fs.lstat", luaL_checkstring(L, 1), NULL, 0);
}

static int fs_exists(lua_State *L) {
  return path_job(L, OP_EXISTS, "fs.exists", luaL_checkstring(L, 1), NULL,
                  0);
}

static int fs_list(lua_State *L) {
  return path_job(L, OP_LIST, "fs.list", luaL_checkstring(L, 1), NULL, 0);
}

/* fs.mkdir(path, {parents=, mode=}) */
static int fs_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int mode = 0777;
  job_t *j;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "mode") != LUA_TNIL) {
      if (!lua_isinteger(L, -1))
        return luaL_argerror(L, 2, "'mode' must be an integer");
      mode = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
  }
  tide_async_check(L, "fs.mkdir");
  j = job_new(L, OP_MKDIR, "fs.mkdir", path, NULL);
  j->flags = opt_flag(L, 2, "parents") ? F_PARENTS : 0;
  j->mode = mode;
  return job_start(L, j, path_resume);
}

static int fs_remove(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return path_job(L, OP_REMOVE, "fs.remove", path, NULL,
                  opt_flag(L, 2, "recursive") ? F_RECURSIVE : 0);
}

static int fs_rename(lua_State *L) {
  const char *from = luaL_checkstring(L, 1);
  const char *to = luaL_checkstring(L, 2);
  return path_job(L, OP_RENAME, "fs.rename", from, to, 0);
}

static int fs_copy(lua_State *L) {
  const char *from = luaL_checkstring(L, 1);
  const char *to = luaL_checkstring(L, 2);
  return path_job(L, OP_COPY, "fs.copy", from, to, 0);
}

#define MKDTEMP_TEMPLATE_TAIL "XX" "XX" "XX"

/* fs.mkdtemp([prefix]) -> path of a new directory, prefix + 6 random
** characters; the default prefix is $TMPDIR/tide- (or /tmp/tide-). */
static int fs_mkdtemp(lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, NULL);
  if (!prefix) {
    const char *tmp = getenv("TMPDIR");
    prefix = lua_pushfstring(L, "%s/tide-", tmp && *tmp ? tmp : "/tmp");
  }
  /* mkdtemp(3) wants the template to end in six X characters. */
  lua_pushfstring(L, "%s%s", prefix, MKDTEMP_TEMPLATE_TAIL);
  return path_job(L, OP_MKDTEMP, "fs.mkdtemp", lua_tostring(L, -1), NULL,
                  0);
}

/* ---- File ---------------------------------------------------------------- */

static file_t *check_file(lua_State *L) {
  file_t *f = (file_t *)luaL_checkudata(L, 1, FILE_MT);
  if (f->fd < 0) luaL_error(L, "attempt to use a closed file");
  if (f->job)
    luaL_error(L, "file is in use by another operation (one operation at a "
               "time per File)");
  return f;
}

/* Close the descriptor; shared by close, __close and __gc, idempotent.  A
** job still using the descriptor (its task was cancelled) takes it over
** and closes it when it finishes, so the number is never reused under it. */
static void file_release(file_t *f) {
  if (f->fd >= 0) {
    if (f->job) {
      f->job->file = NULL;
      f->job->fd = f->fd;
      f->job = NULL;
    } else {
      close(f->fd);
    }
    f->fd = -1;
  }
  free(f->rbuf);
  f->rbuf = NULL;
  f->rstart = f->rend = f->rcap = 0;
}

static int file_close(lua_State *L) {
  file_t *f = (file_t *)luaL_checkudata(L, 1, FILE_MT);
  file_release(f);
  lua_pushboolean(L, 1);
  return 1;
}

static int file__tostring(lua_State *L) {
  file_t *f = (file_t *)luaL_checkudata(L, 1, FILE_MT);
  lua_getiuservalue(L, 1, 1);
  if (f->fd < 0) lua_pushliteral(L, "File (closed)");
  else lua_pushfstring(L, "File (%s)", lua_tostring(L, -1));
  return 1;
}

/* Raise a File job's error, with the File's path (uservalue 1). */
static int file_raise(lua_State *L, job_t *j) {
  lua_getiuservalue(L, 1, 1);
  tide_error_push(L, uv_err_name(j->err), j->opname, lua_tostring(L, -1),
                  uv_strerror(j->err));
  job_free(j);
  return lua_error(L);
}

/* A job on an open File: the File's descriptor, linked both ways. */
static job_t *file_job(lua_State *L, file_t *f, int op, const char *opname) {
  job_t *j = job_new(L, op, opname, NULL, NULL);
  j->fd = f->fd;
  j->file = f;
  j->flags = f->flags;
  f->job = j;
  return j;
}

/* The job came back on the task's stack: unlink it from the File.  If
** another task closed the File meanwhile, the job was handed the
** descriptor (file_release): close it and raise ECLOSED. */
static job_t *file_job_done(lua_State *L, tide_wait_t *w) {
  job_t *j = (job_t *)w->data;
  file_t *f = (file_t *)lua_touserdata(L, 1);
  if (!j->file) {
    const char *op = j->opname;
    if (j->fd >= 0) close(j->fd);
    job_free(j);
    tide_error_raisef(L, "ECLOSED", op, "the file was closed meanwhile");
  }
  if (f && f->job == j) f->job = NULL;
  j->file = NULL;
  return j;
}

static int open_resume(lua_State *L, tide_wait_t *w) {
  job_t *j = (job_t *)w->data;
  file_t *f;
  int flags = j->flags;
  if (j->err) {
    if (j->fd >= 0) close(j->fd);
    return job_raise(L, j);
  }
  f = (file_t *)lua_newuserdatauv(L, sizeof *f, 1);
  memset(f, 0, sizeof *f);
  f->fd = j->fd;
  f->readable = (flags & O_ACCMODE) != O_WRONLY;
  f->writable = (flags & O_ACCMODE) != O_RDONLY;
  f->flags = ((flags & O_APPEND) ? F_APPEND : 0) |
             ((S_ISREG(j->st.st_mode) || S_ISBLK(j->st.st_mode))
                  ? F_SEEKABLE : 0);
  luaL_setmetatable(L, FILE_MT);
  lua_pushstring(L, j->path);
  lua_setiuservalue(L, -2, 1);
  job_free(j);
  return 1;
}

/* fs.open(path [, mode]) -> File; the modes of io.open. */
static int fs_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  const char *m = mode;
  int flags;
  job_t *j;
  switch (*m++) {
    case 'r': flags = O_RDONLY; break;
    case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
    default: return luaL_argerror(L, 2, "invalid mode");
  }
  if (*m == '+') {
    m++;
    flags = (flags & ~O_ACCMODE) | O_RDWR;
  }
  if (*m == 'b') m++;
  if (*m == 'x' && (flags & O_TRUNC)) {
    m++;
    flags |= O_EXCL;
  }
  if (*m != '\0') return luaL_argerror(L, 2, "invalid mode");
  tide_async_check(L, "fs.open");
  j = job_new(L, OP_OPEN, "fs.open", path, NULL);
  j->flags = flags;
  return job_start(L, j, open_resume);
}

/* -- buffered reading -- */

static size_t avail(const file_t *f) { return f->rend - f->rstart; }

/* Drop the read-ahead: the fd offset goes back to the logical position. */
static void drop_buffer(file_t *f) {
  if (f->flags & F_SEEKABLE) f->pos -= (int64_t)avail(f);
  f->rstart = f->rend = 0;
}

static int push_bytes(lua_State *L, file_t *f, size_t n) {
  lua_pushlstring(L, f->rbuf + f->rstart, n);
  f->rstart += n;
  return 1;
}

static int test2(file_t *f, const char *set) {
  if (f->rstart < f->rend &&
      (f->rbuf[f->rstart] == set[0] || f->rbuf[f->rstart] == set[1])) {
    f->rstart++;
    return 1;
  }
  return 0;
}

static int readdigits(file_t *f, int hex, char *b, int *n) {
  int count = 0;
  while (f->rstart < f->rend && *n < MAXNUM) {
    int c = (unsigned char)f->rbuf[f->rstart];
    if (!(hex ? (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                    (c >= 'A' && c <= 'F')
              : (c >= '0' && c <= '9')))
      break;
    b[(*n)++] = (char)c;
    f->rstart++;
    count++;
  }
  return count;
}

/* The "n" format over the buffer, as liolib's read_number does over a
** FILE: the buffer holds MAXNUM bytes or the rest of the file. */
static void read_number(lua_State *L, file_t *f) {
  char b[MAXNUM + 1];
  int n = 0, count = 0, hex = 0;
  char dp = localeconv()->decimal_point[0];
  char dps[2] = {dp, '.'};
  size_t s = f->rstart;
  if (test2(f, "-+")) b[n++] = f->rbuf[s];
  if (test2(f, "00")) {
    b[n++] = '0';
    if (test2(f, "xX")) {
      b[n++] = f->rbuf[f->rstart - 1];
      hex = 1;
    } else {
      count = 1;
    }
  }
  count += readdigits(f, hex, b, &n);
  if (test2(f, dps)) {
    b[n++] = f->rbuf[f->rstart - 1];
    count += readdigits(f, hex, b, &n);
  }
  if (count > 0 && test2(f, hex ? "pP" : "eE")) {
    b[n++] = f->rbuf[f->rstart - 1];
    if (test2(f, "-+")) b[n++] = f->rbuf[f->rstart - 1];
    readdigits(f, 0, b, &n);
  }
  b[n] = '\0';
  if (!lua_stringtonumber(L, b)) lua_pushnil(L);
}

/* Try the format at stack slot i with what is buffered.  Returns 0 when it
** pushed its result, or the number of bytes still wanted (a fill), or
** SIZE_MAX for "read everything". */
static size_t try_format(lua_State *L, file_t *f, int i) {
  size_t have = avail(f);
  if (lua_type(L, i) == LUA_TNUMBER) {
    size_t want = (size_t)luaL_checkinteger(L, i);
    if (have >= want && (want > 0 || have > 0)) return push_bytes(L, f, want),
                                                       0;
    if (f->eof) {
      if (have > 0) push_bytes(L, f, have);
      else lua_pushnil(L);
      return 0;
    }
    return want > have ? want - have : 1;
  } else {
    const char *p = luaL_checkstring(L, i);
    if (*p == '*') p++;  /* accept Lua 5.1's "*l" */
    switch (*p) {
      case 'l':
      case 'L': {
        char *nl = have ? memchr(f->rbuf + f->rstart, '\n', have) : NULL;
        if (nl) {
          size_t len = (size_t)(nl - (f->rbuf + f->rstart));
          lua_pushlstring(L, f->rbuf + f->rstart, len + (*p == 'L'));
          f->rstart += len + 1;
          return 0;
        }
        if (f->eof) {
          if (have > 0) push_bytes(L, f, have);
          else lua_pushnil(L);
          return 0;
        }
        return CHUNK;
      }
      case 'a':
        if (f->eof) {
          push_bytes(L, f, have);
          return 0;
        }
        return SIZE_MAX;
      case 'n':
        while (f->rstart < f->rend &&
               strchr(" \t\n\v\f\r", f->rbuf[f->rstart]) &&
               f->rbuf[f->rstart] != '\0')
          f->rstart++;
        have = avail(f);
        if (have == 0 && f->eof) {
          lua_pushnil(L);
          return 0;
        }
        if (have <= MAXNUM && !f->eof) return MAXNUM + 1 - have;
        read_number(L, f);
        return 0;
      default:
        return (size_t)luaL_argerror(L, i, "invalid format");
    }
  }
}

static int read_step(lua_State *L, file_t *f);

/* A fill or read-everything job came back: append its bytes. */
static int read_resume(lua_State *L, tide_wait_t *w) {
  job_t *j = file_job_done(L, w);
  file_t *f = (file_t *)lua_touserdata(L, 1);
  if (j->err) return file_raise(L, j);
  if (j->op == OP_FREAD_ALL || j->len == 0) f->eof = 1;
  if (f->flags & F_SEEKABLE) f->pos += (int64_t)j->len;
  if (j->len > 0) {
    if (f->rstart == f->rend) f->rstart = f->rend = 0;
    if (f->rcap - f->rend < j->len) {
      size_t keep = avail(f), cap = f->rcap ? f->rcap : CHUNK;
      if (f->rstart > 0) {
        memmove(f->rbuf, f->rbuf + f->rstart, keep);
        f->rstart = 0;
        f->rend = keep;
      }
      while (cap - keep < j->len) cap *= 2;
      if (cap != f->rcap) {
        char *nb = realloc(f->rbuf, cap);
        if (!nb) {
          job_free(j);
          return luaL_error(L, "not enough memory");
        }
        f->rbuf = nb;
        f->rcap = cap;
      }
    }
    memcpy(f->rbuf + f->rend, j->buf, j->len);
    f->rend += j->len;
  }
  job_free(j);
  return read_step(L, f);
}

/* Serve the formats in slots [rfirst, rlast] in order; the results pile
** up above them.  Yields for a fill whenever the buffer runs short and
** continues in read_resume. */
static int read_step(lua_State *L, file_t *f) {
  for (;;) {
    int done = lua_gettop(L) - f->rlast;
    int i = f->rfirst + done;
    size_t want;
    job_t *j;
    if (i > f->rlast) return done;
    if (done > 0 && lua_isnil(L, -1)) return done;  /* io stops at a fail */
    luaL_checkstack(L, 2, "too many formats");
    if ((want = try_format(L, f, i)) == 0) continue;
    j = file_job(L, f, want == SIZE_MAX ? OP_FREAD_ALL : OP_FREAD,
                 "file:read");
    j->off = f->pos;
    j->cap = want > CHUNK ? want : CHUNK;
    return job_start(L, j, read_resume);
  }
}

/* Read formats in slots [first, last] of the File at slot 1. */
static int read_begin(lua_State *L, file_t *f, int first, int last) {
  if (!f->readable) return tide_error_raise(L, UV_EBADF, "file:read", NULL);
  f->rfirst = first;
  f->rlast = last;
  f->eof = 0;
  /* Every read is a cancellation point, even one the buffer serves. */
  tide_async_check(L, "file:read");
  return read_step(L, f);
}

/* file:read(...) -> one value per format ("l" when none is given). */
static int file_read(lua_State *L) {
  file_t *f = check_file(L);
  if (lua_gettop(L) == 1) lua_pushliteral(L, "l");
  return read_begin(L, f, 2, lua_gettop(L));
}

/* The iterator of file:lines(...): upvalue 1 is the File, the others are
** the formats. */
static int lines_iter(lua_State *L) {
  int i, n = (int)lua_tointeger(L, lua_upvalueindex(1));
  file_t *f;
  lua_settop(L, 0);
  luaL_checkstack(L, n + 2, "too many formats");
  for (i = 0; i <= n; i++) lua_pushvalue(L, lua_upvalueindex(i + 2));
  f = (file_t *)lua_touserdata(L, 1);
  if (f->fd < 0) return luaL_error(L, "file is already closed");
  f = check_file(L);
  if (n == 0) lua_pushliteral(L, "l");
  return read_begin(L, f, 2, lua_gettop(L));
}

/* file:lines(...) -> iterator; the file stays open after the loop. */
static int file_lines(lua_State *L) {
  int n = lua_gettop(L) - 1;
  check_file(L);
  luaL_argcheck(L, n <= 250, 252, "too many arguments");
  lua_pushinteger(L, n);
  lua_insert(L, 1);
  lua_pushcclosure(L, lines_iter, n + 2);
  return 1;
}

/* Resume of write, sync and seek("end"). */
static int file_resume(lua_State *L, tide_wait_t *w) {
  job_t *j = file_job_done(L, w);
  file_t *f = (file_t *)lua_touserdata(L, 1);
  int64_t pos;
  if (j->err) return file_raise(L, j);
  switch (j->op) {
    case OP_FWRITE:
      if (f->flags & F_SEEKABLE) f->pos = j->off;
      lua_pushvalue(L, 1);
      break;
    case OP_FSIZE:
      pos = (int64_t)j->st.st_size + (int64_t)luaL_optinteger(L, 3, 0);
      if (pos < 0) {
        j->err = UV_EINVAL;
        return file_raise(L, j);
      }
      f->pos = pos;
      f->rstart = f->rend = 0;
      lua_pushinteger(L, (lua_Integer)pos);
      break;
    default:
      lua_pushboolean(L, 1);
      break;
  }
  job_free(j);
  return 1;
}

/* file:write(...) -> file.  The arguments are written by one job. */
static int file_write(lua_State *L) {
  file_t *f = check_file(L);
  int i, n = lua_gettop(L);
  size_t total = 0, len;
  job_t *j;
  for (i = 2; i <= n; i++) {
    luaL_checklstring(L, i, &len);
    total += len;
  }
  if (!f->writable) return tide_error_raise(L, UV_EBADF, "file:write", NULL);
  tide_async_check(L, "file:write");
  if (total == 0) {
    lua_settop(L, 1);
    return 1;
  }
  j = file_job(L, f, OP_FWRITE, "file:write");
  if (!(j->buf = malloc(total))) {
    f->job = NULL;
    job_free(j);
    return luaL_error(L, "not enough memory");
  }
  for (i = 2; i <= n; i++) {
    const char *s = lua_tolstring(L, i, &len);
    memcpy(j->buf + j->len, s, len);
    j->len += len;
  }
  /* Writing after reading: the position is where the reader stopped. */
  drop_buffer(f);
  j->off = f->pos;
  lua_settop(L, 1);
  return job_start(L, j, file_resume);
}

/* file:seek([whence [, offset]]) -> position, as in io. */
static int file_seek(lua_State *L) {
  static const char *const modes[] = {"set", "cur", "end", NULL};
  file_t *f = check_file(L);
  int op = luaL_checkoption(L, 2, "cur", modes);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  int64_t pos;
  job_t *j;
  if (!(f->flags & F_SEEKABLE))
    return tide_error_raise(L, UV_ESPIPE, "file:seek", NULL);
  if (op == 2) {
    tide_async_check(L, "file:seek");
    lua_settop(L, 3);
    j = file_job(L, f, OP_FSIZE, "file:seek");
    return job_start(L, j, file_resume);
  }
  pos = (op == 0 ? 0 : f->pos - (int64_t)avail(f)) + (int64_t)off;
  if (pos < 0) return tide_error_raise(L, UV_EINVAL, "file:seek", NULL);
  if (pos != f->pos - (int64_t)avail(f) || op == 0) {
    f->pos = pos;
    f->rstart = f->rend = 0;
  }
  lua_pushinteger(L, (lua_Integer)pos);
  return 1;
}

/* file:sync(): fsync. */
static int file_sync(lua_State *L) {
  file_t *f = check_file(L);
  tide_async_check(L, "file:sync");
  lua_settop(L, 1);
  return job_start(L, file_job(L, f, OP_FSYNC, "file:sync"), file_resume);
}

/* ---- the module ---------------------------------------------------------- */

static const luaL_Reg fs_funcs[] = {
  {"read_file", fs_read_file},
  {"write_file", fs_write_file},
  {"open", fs_open},
  {"stat", fs_stat},
  {"lstat", fs_lstat},
  {"exists", fs_exists},
  {"list", fs_list},
  {"mkdir", fs_mkdir},
  {"remove", fs_remove},
  {"rename", fs_rename},
  {"copy", fs_copy},
  {"mkdtemp", fs_mkdtemp},
  {NULL, NULL}
};

static const luaL_Reg file_methods[] = {
  {"read", file_read},
  {"lines", file_lines},
  {"write", file_write},
  {"seek", file_seek},
  {"sync", file_sync},
  {"close", file_close},
  {NULL, NULL}
};

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction release, lua_CFunction tostr) {
  if (luaL_newmetatable(L, name)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__close");
    if (tostr) {
      lua_pushcfunction(L, tostr);
      lua_setfield(L, -2, "__tostring");
    }
  }
  lua_pop(L, 1);
}

int luaopen_tide_fs(lua_State *L) {
  new_type(L, FILE_MT, file_methods, file_close, file__tostring);
  luaL_newlib(L, fs_funcs);
  return 1;
}
