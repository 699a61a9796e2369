#include "common/dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int mt_dl_load(const char *soname, bool global, const struct mt_dl_sym *syms, size_t n, void *table,
               char *err, size_t errlen)
{
	/* RTLD_LOCAL unless asked: the library's symbols are reached through
	 * the table only. RTLD_NOW: a library that cannot resolve fails
	 * here, not in the middle of a call. */
	void *h = dlopen(soname, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
	if (!h) {
		const char *why = dlerror();
		snprintf(err, errlen, "cannot load %s: %s", soname, why ? why : "unknown error");
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++) {
		void *p = dlsym(h, syms[i].name);
		if (!p) {
			snprintf(err, errlen, "%s has no %s (not the expected version?)", soname,
			         syms[i].name);
			for (size_t k = 0; k < i; k++) /* nothing into a closed library */
				memset((char *)table + syms[k].off, 0, sizeof(void *));
			dlclose(h);
			return -ENOENT;
		}
		/* Pointers to data and to functions share a representation
		 * on every ABI Linux runs on (POSIX relies on it for dlsym). */
		memcpy((char *)table + syms[i].off, &p, sizeof(p));
	}
	return 0;
}
