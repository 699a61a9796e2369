/* `mirrord-trace verify-config`: resolve the configuration exactly as
 * `exec` would and print it (README "verify-config"). IDE integrations run
 * it to check a config file or a whole invocation before launching. */
#include "cli/cli.h"
#include "common/util.h"

#include <stdio.h>

/* Print doc on stdout (takes the reference). */
static int print_doc(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(doc);
	if (!s)
		abort();
	puts(s);
	free(s);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* --ide: mirrord's verify_config prints a Success or Fail document and
 * exits 0 either way; plugins read stdout and treat a non-zero exit or
 * anything on stderr as the command itself failing. So problems and
 * warnings go into the document only. */
static int verify_ide(const struct cli_args *a)
{
	_cleanup_(config_freep) struct config *c = NULL;
	struct config_errors errs = {0};
	json_t *doc;

	if (cli_resolve_quiet(a, &c, &errs) < 0)
		doc = config_errors_to_ide_json(&errs);
	else
		doc = config_to_ide_json(c);
	config_errors_clear(&errs);
	return print_doc(doc);
}

int cmd_verify_config(int argc, char **argv)
{
	struct cli_args a;
	_cleanup_(config_freep) struct config *c = NULL;
	int e = cli_parse(CLI_VERIFY, argc, argv, &a);

	if (e != 0)
		return e > 0 ? 0 : 2;
	if (a.ide) {
		e = verify_ide(&a);
		cli_args_done(&a);
		return e;
	}
	e = cli_resolve(&a, &c);
	cli_args_done(&a);
	if (e < 0)
		return 2;
	cli_print_warnings(c);
	return print_doc(config_to_json(c));
}
