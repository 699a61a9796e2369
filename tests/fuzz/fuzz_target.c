/* libFuzzer target for the target grammar (cli/target.c). The input is
 * fed to target_parse() as a string and, when it is JSON, to
 * target_from_json(). Invariants, any violation aborts:
 *  - success: the model is well formed (a name exactly for the named
 *    kinds, >= 1 sorted unique labels exactly for TARGET_LABEL), its
 *    canonical string parses back to an equal target, and that string is
 *    a fixed point of parse + to_string;
 *  - failure: -EINVAL with one non-empty line that starts with
 *    "invalid target" and is pure printable ASCII (the input is echoed
 *    escaped), and *ret left alone. */
#include "fuzz.h"
#include "cli/target.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_model(const struct target *t)
{
	bool named = t->kind != TARGET_NONE && t->kind != TARGET_LABEL;

	ASSERT(target_kind_name(t->kind) != NULL);
	ASSERT(named == (t->name != NULL));
	ASSERT((t->kind == TARGET_LABEL) == (t->nlabels > 0));
	ASSERT(t->kind != TARGET_NONE || t->container == NULL);
	for (size_t i = 1; i < t->nlabels; i++)
		ASSERT(strcmp(t->labels[i - 1].key, t->labels[i].key) < 0);
}

static void check_round_trip(const struct target *t)
{
	struct target u;
	char *s = target_to_string(t), *s2, *err = NULL;

	ASSERT(s);
	ASSERT(target_parse(s, &u, &err) == 0);
	ASSERT(err == NULL);
	ASSERT(target_equal(t, &u));
	s2 = target_to_string(&u);
	ASSERT(strcmp(s, s2) == 0);
	free(s);
	free(s2);
	target_free(&u);
}

static void check_error(int r, const char *err, const struct target *untouched)
{
	ASSERT(r == -EINVAL);
	ASSERT(err && strncmp(err, "invalid target", strlen("invalid target")) == 0);
	for (const char *p = err; *p; p++)
		ASSERT(*p >= 0x20 && *p < 0x7f);
	ASSERT(untouched->kind == TARGET_JOB && untouched->name == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct target t = {.kind = TARGET_JOB};
	char *s, *err = NULL;
	json_t *v;
	int r;

	/* As a C string: everything up to the first NUL. */
	s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	r = target_parse(s, &t, &err);
	if (r == 0) {
		check_model(&t);
		check_round_trip(&t);
		target_free(&t);
	} else {
		check_error(r, err, &t);
	}
	free(err);
	free(s);

	/* As JSON, "\u0000" included, so the NUL checks are exercised. */
	err = NULL;
	t = (struct target){.kind = TARGET_JOB};
	v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!v)
		return 0;
	r = target_from_json(v, &t, &err);
	if (r == 0) {
		check_model(&t);
		check_round_trip(&t);
		target_free(&t);
	} else {
		check_error(r, err, &t);
	}
	free(err);
	json_decref(v);
	return 0;
}
