/* Config templating, the subset of Tera that mirrord configs use:
 *   {{ key }}                         the session key
 *   {{ git_branch }}                  MIRRORD_BRANCH_NAME, else the checked-out branch
 *   {{ get_env(name="X") }}           a variable; an error when unset
 *   {{ get_env(name="X", default="y") }}
 *   {{ expr | default(value="x") }}   x when expr is unknown
 *   {# comment #}                     removed
 * Anything else ({% if %}, other filters) is an error that names the line,
 * rather than text passed through silently. */
#include "cli/config_internal.h"
#include "common/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

struct out {
	char *buf;
	size_t len, cap;
	bool overflow;
};

static void out_add(struct out *o, const char *s, size_t n)
{
	if (o->len + n > CONFIG_MAX_FILE) {
		o->overflow = true;
		return;
	}
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->buf = xrealloc(o->buf, o->cap);
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* A tiny tokenizer over one expression. */
struct lex {
	const char *s;
	size_t i, len;
};

static void skip_ws(struct lex *l)
{
	while (l->i < l->len && strchr(" \t\r\n", l->s[l->i]))
		l->i++;
}

static bool ident(struct lex *l, char *buf, size_t cap)
{
	size_t n = 0;

	skip_ws(l);
	while (l->i < l->len && (l->s[l->i] == '_' || (l->s[l->i] >= 'a' && l->s[l->i] <= 'z') ||
	                         (l->s[l->i] >= 'A' && l->s[l->i] <= 'Z') ||
	                         (n && l->s[l->i] >= '0' && l->s[l->i] <= '9'))) {
		if (n + 1 >= cap) {
			buf[n] = '\0';
			return false;
		}
		buf[n++] = l->s[l->i++];
	}
	buf[n] = '\0';
	return n > 0;
}

static bool punct(struct lex *l, char c)
{
	skip_ws(l);
	if (l->i < l->len && l->s[l->i] == c) {
		l->i++;
		return true;
	}
	return false;
}

/* "..." or '...' or `...`; Tera has no escapes in these. Returns malloc'd. */
static char *string_lit(struct lex *l)
{
	char q;
	size_t start;

	skip_ws(l);
	if (l->i >= l->len || !strchr("\"'`", l->s[l->i]))
		return NULL;
	q = l->s[l->i++];
	start = l->i;
	while (l->i < l->len && l->s[l->i] != q)
		l->i++;
	if (l->i >= l->len)
		return NULL;
	return xstrndup(l->s + start, l->i++ - start);
}

/* name="value", ... up to ')'. Only the names in `names` are allowed. */
static int kwargs(struct lex *l, const char *const *names, char **vals, size_t n, char **ret_err)
{
	if (!punct(l, '(')) {
		*ret_err = xstrdup("expected \"(\"");
		return -EINVAL;
	}
	if (punct(l, ')'))
		return 0;
	for (;;) {
		char name[32];
		size_t k;
		char *v;

		if (!ident(l, name, sizeof(name)) || !punct(l, '=')) {
			*ret_err = xstrdup("expected name=\"value\"");
			return -EINVAL;
		}
		for (k = 0; k < n && strcmp(names[k], name) != 0; k++)
			;
		if (k == n) {
			*ret_err = xasprintf("unknown argument \"%s\"", name);
			return -EINVAL;
		}
		v = string_lit(l);
		if (!v) {
			*ret_err = xasprintf("argument \"%s\" needs a quoted string", name);
			return -EINVAL;
		}
		free(vals[k]);
		vals[k] = v;
		if (punct(l, ')'))
			return 0;
		if (!punct(l, ',')) {
			*ret_err = xstrdup("expected \",\" or \")\"");
			return -EINVAL;
		}
	}
}

char *config_git_branch(void *data)
{
	int pfd[2];
	pid_t pid;
	char buf[256];
	size_t n = 0;
	ssize_t r;
	int status;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return NULL;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return NULL;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		dup2(pfd[1], 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		execlp("git", "git", "rev-parse", "--abbrev-ref", "HEAD", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (n < sizeof(buf) - 1 && (r = read(pfd[0], buf + n, sizeof(buf) - 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += (size_t)r;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return NULL;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	/* "HEAD" is git's answer for a detached checkout: no branch. */
	if (!n || strcmp(buf, "HEAD") == 0)
		return NULL;
	return xstrdup(buf);
}

/* Evaluate one {{ }} expression. *ret is malloc'd on success. */
static int eval(const char *expr, size_t len, const struct config_template_ctx *ctx, char **ret,
                char **ret_err)
{
	struct lex l = {expr, 0, len};
	char name[64];
	_cleanup_free_ char *val = NULL;
	_cleanup_free_ char *unknown = NULL; /* why val is unknown */

	if (!ident(&l, name, sizeof(name))) {
		*ret_err = xstrdup("expected key, git_branch or get_env(...)");
		return -EINVAL;
	}
	if (strcmp(name, "key") == 0) {
		val = ctx->key ? xstrdup(ctx->key) : NULL;
		if (!val)
			unknown = xstrdup("no session key");
	} else if (strcmp(name, "git_branch") == 0) {
		const char *b = ctx->getenv(ctx->data, "MIRRORD_BRANCH_NAME");
		if (b && *b)
			val = xstrdup(b);
		else if (ctx->git_branch)
			val = ctx->git_branch(ctx->data);
		if (!val)
			unknown = xstrdup("git_branch is unknown (no MIRRORD_BRANCH_NAME and no "
			                  "checked-out git branch)");
	} else if (strcmp(name, "get_env") == 0) {
		static const char *const names[] = {"name", "default"};
		char *args[2] = {NULL, NULL};
		int e = kwargs(&l, names, args, 2, ret_err);
		_cleanup_free_ char *vname = args[0], *vdef = args[1];
		if (e < 0)
			return e;
		if (!vname) {
			*ret_err = xstrdup("get_env needs name=\"VARIABLE\"");
			return -EINVAL;
		}
		const char *v = ctx->getenv(ctx->data, vname);
		if (v)
			val = xstrdup(v);
		else if (vdef)
			val = TAKE_PTR(vdef);
		else
			unknown =
			        xasprintf("environment variable \"%s\" is not set and get_env has "
			                  "no default",
			                  vname);
	} else {
		*ret_err = xasprintf("unknown variable or function \"%s\" (supported: key, "
		                     "git_branch, get_env)",
		                     name);
		return -EINVAL;
	}
	/* Filters: only default(value="..."). */
	while (punct(&l, '|')) {
		static const char *const names[] = {"value"};
		char *args[1] = {NULL};
		char fname[32];
		if (!ident(&l, fname, sizeof(fname)) || strcmp(fname, "default") != 0) {
			*ret_err =
			        xasprintf("unsupported filter \"%s\" (supported: default)", fname);
			return -EINVAL;
		}
		if (kwargs(&l, names, args, 1, ret_err) < 0)
			return -EINVAL;
		if (!args[0]) {
			*ret_err = xstrdup("default needs value=\"...\"");
			return -EINVAL;
		}
		if (!val) {
			val = args[0];
			free(TAKE_PTR(unknown));
		} else {
			free(args[0]);
		}
	}
	skip_ws(&l);
	if (l.i != l.len) {
		*ret_err = xasprintf("unexpected \"%.*s\"", (int)(l.len - l.i), l.s + l.i);
		return -EINVAL;
	}
	if (!val) {
		*ret_err = TAKE_PTR(unknown);
		return -EINVAL;
	}
	*ret = TAKE_PTR(val);
	return 0;
}

static unsigned line_of(const char *text, size_t pos, unsigned *col)
{
	unsigned line = 1;
	size_t bol = 0;

	for (size_t i = 0; i < pos; i++)
		if (text[i] == '\n') {
			line++;
			bol = i + 1;
		}
	*col = (unsigned)(pos - bol + 1);
	return line;
}

int config_render(const char *text, size_t len, const struct config_template_ctx *ctx,
                  const char *name, char **ret, size_t *ret_len, struct config_errors *errs)
{
	struct out o = {0};
	size_t i = 0;
	int ret_e = 0;

	out_add(&o, "", 0);
	while (i < len) {
		const char *open = NULL;
		size_t j;

		for (j = i; j + 1 < len; j++)
			if (text[j] == '{' &&
			    (text[j + 1] == '{' || text[j + 1] == '%' || text[j + 1] == '#')) {
				open = text + j;
				break;
			}
		if (!open) {
			out_add(&o, text + i, len - i);
			break;
		}
		out_add(&o, text + i, j - i);
		char kind = open[1];
		const char closer[3] = {kind == '{' ? '}' : kind, '}', '\0'};
		const char *end = memmem(open + 2, len - j - 2, closer, 2);
		unsigned line, col;
		line = line_of(text, j, &col);
		if (!end) {
			config_errors_add(errs, NULL, name, line, col, NULL,
			                  "template: \"{%c\" is not closed by \"%s\"", kind,
			                  closer);
			ret_e = -EINVAL;
			break;
		}
		size_t elen = (size_t)(end - (open + 2));
		i = (size_t)(end - text) + 2;
		if (kind == '#')
			continue;
		if (kind == '%') {
			config_errors_add(errs, NULL, name, line, col, NULL,
			                  "template: \"{%% ... %%}\" blocks are not supported; use "
			                  "{{ get_env(name=\"X\", default=\"y\") }}");
			ret_e = -EINVAL;
			continue;
		}
		if (elen > CONFIG_MAX_EXPR) {
			config_errors_add(errs, NULL, name, line, col, NULL,
			                  "template: expression longer than %u bytes",
			                  CONFIG_MAX_EXPR);
			ret_e = -EINVAL;
			continue;
		}
		_cleanup_free_ char *val = NULL, *err = NULL;
		if (eval(open + 2, elen, ctx, &val, &err) < 0) {
			config_errors_add(errs, NULL, name, line, col, NULL, "template: %s", err);
			ret_e = -EINVAL;
			continue;
		}
		out_add(&o, val, strlen(val));
	}
	if (o.overflow) {
		config_errors_add(errs, NULL, name, 0, 0, NULL,
		                  "template: rendered config is larger than %u bytes",
		                  CONFIG_MAX_FILE);
		ret_e = -EINVAL;
	}
	if (ret_e < 0) {
		free(o.buf);
		return ret_e;
	}
	*ret = o.buf;
	*ret_len = o.len;
	return 0;
}
