/* `mirrord-trace verify-config`: resolve the configuration exactly as
 * `exec` would and print it (README "verify-config"). IDE integrations run
 * it to check a config file or a whole invocation before launching. */
#include "cli/cli.h"
#include "common/util.h"

#include <stdio.h>

int cmd_verify_config(int argc, char **argv)
{
	struct cli_args a;
	_cleanup_(config_freep) struct config *c = NULL;
	int e = cli_parse(CLI_VERIFY, argc, argv, &a);

	if (e != 0)
		return e > 0 ? 0 : 2;
	e = cli_resolve(&a, &c);
	cli_args_done(&a);
	if (e < 0)
		return 2;
	cli_print_warnings(c);
	json_t *doc = config_to_json(c);
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!s)
		abort();
	puts(s);
	free(s);
	return fflush(stdout) == 0 ? 0 : 1;
}
