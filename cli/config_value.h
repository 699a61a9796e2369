/* Checking and converting one field's value (cli/config_value.c). */
#pragma once

#include "cli/config_internal.h"

/* From the config file's JSON: *ret is the canonical value (new
 * reference), or NULL when v is null for an optional field. On error,
 * -EINVAL and *err (malloc'd) says what is wrong, without the field. */
int config_value_from_json(const struct config_field_info *f, json_t *v, json_t **ret, char **err);
/* From a variable or flag (lists are ';'-separated). */
int config_value_from_string(const struct config_field_info *f, const char *s, json_t **ret,
                             char **err);
/* "a boolean (true or false)", ... */
const char *config_type_desc(enum config_type t);
