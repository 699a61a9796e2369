/* libcurl, loaded when the first Kubernetes client is made (see
 * k8s/internal.h and common/dl.h). */
#include "k8s/internal.h"

#include <errno.h>
#include <stdbool.h>

#include "common/dl.h"
#include "common/util.h"

struct k8s_libcurl libcurl;

#define SYM(f) MT_DL_SYM(struct k8s_libcurl, f, "curl_" #f)
static const struct mt_dl_sym libcurl_syms[] = {
        SYM(global_init),  SYM(easy_init),      SYM(easy_setopt), SYM(easy_perform),
        SYM(easy_cleanup), SYM(easy_getinfo),   SYM(easy_reset),  SYM(easy_recv),
        SYM(easy_send),    SYM(easy_strerror),  SYM(easy_escape), SYM(free),
        SYM(slist_append), SYM(slist_free_all), SYM(url),         SYM(url_cleanup),
        SYM(url_get),      SYM(url_set),
};

int k8s_libcurl_load(struct k8s_error *err)
{
	static bool loaded;
	if (loaded)
		return 0;
	char why[512];
	/* libcurl.so.4 is the OpenSSL build (Debian's libcurl4); the GnuTLS
	 * one has another soname. */
	if (mt_dl_load("libcurl.so.4", false, libcurl_syms, ARRAY_SIZE(libcurl_syms), &libcurl, why,
	               sizeof(why)) < 0)
		return k8s_errorf(err, -ENOENT, 0, NULL,
		                  "%s; talking to the Kubernetes API needs libcurl with OpenSSL "
		                  "(Debian: apt-get install libcurl4)",
		                  why);
	if (libcurl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return k8s_errorf(err, -ENOMEM, 0, NULL, "libcurl failed to initialise");
	loaded = true;
	return 0;
}
