/* TOML config files, through tomlplusplus (C++17) behind this C
 * interface (cli/toml.cpp). */
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct config_doc;
struct config_errors;

/* Parse TOML text into doc->root (a jansson object) and record each
 * field's position. Errors are appended to errs; returns 0 or -EINVAL.
 * Never throws. */
int config_toml_parse(const char *text, size_t len, struct config_doc *doc,
                      struct config_errors *errs);

#ifdef __cplusplus
}
#endif
