/* The --format table|json (-f) and -q flags shared by list and ps. */
#include <getopt.h>
#include <string.h>

#include "stratus_cli.h"

int cli_format_parse(const char *verb, int argc, char **argv, bool want_id,
		     struct cli_format_args *a, struct error *err)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, want_id ? "+:f:" : "+:f:q", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "json"))
				a->json = true;
			else if (strcmp(optarg, "table"))
				return error_set(err, -EINVAL,
						 "%s: --format: must be table or json, not \"%s\"",
						 verb, optarg);
			break;
		case 'q':
			if (want_id)
				return cli_unknown_flag(verb, argv, err);
			a->quiet = true;
			break;
		case ':':
			return error_set(err, -EINVAL, "%s: %s: needs a value", verb,
					 argv[optind - 1]);
		default:
			return cli_unknown_flag(verb, argv, err);
		}
	}
	if (!want_id)
		return cli_need_args(verb, argc - optind, 0, 0, err);
	/* ps: the ID, then ps(1) options, which a VM's agent does not take. */
	if (cli_need_args(verb, argc - optind, 1, 1, err) < 0)
		return -EINVAL;
	a->id = argv[optind];
	return 0;
}
