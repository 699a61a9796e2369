/* Libraries loaded when first needed rather than at start-up. The
 * dynamic loader's work for a library and everything it pulls in is paid
 * by every run that links it; libcurl alone (about 30 libraries on
 * Debian) cost 9 ms of each mirrord-trace start, though only the
 * Kubernetes client uses it. See docs/INTERNALS.md "Start-up". */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* One symbol to resolve: its name and where in the caller's table of
 * function pointers it goes (offsetof). */
struct mt_dl_sym {
	const char *name;
	size_t off;
};

#define MT_DL_SYM(type, field, symbol)        \
	{                                     \
		symbol, offsetof(type, field) \
	}

/* dlopen(soname) and fill `table` with every symbol. 0, or -ENOENT with
 * a message in err naming the library and what is missing; the table is
 * valid only after 0, and the caller keeps track of that (load once).
 * `global` makes the library's symbols available to libraries loaded
 * after it (for a library that needs another without naming it in its
 * DT_NEEDED, as libunwind-ptrace needs libunwind-<arch>). */
int mt_dl_load(const char *soname, bool global, const struct mt_dl_sym *syms, size_t n, void *table,
               char *err, size_t errlen);
