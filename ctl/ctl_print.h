/* aegisctl's output formats: aligned tables (like `istioctl proxy-config`), YAML, and dig-like lookup
 * answers, all from the admin endpoint's JSON. */
#ifndef AEGIS_CTL_PRINT_H
#define AEGIS_CTL_PRINT_H

#include <stdio.h>

#include <jansson.h>

/* Prints v as YAML (block style; strings quoted whenever a plain scalar could be misread). */
void aegis_ctl_print_yaml(FILE *f, const json_t *v);

/* Prints one config_dump section as tables: every array of objects as an aligned table (columns from
 * the objects' keys, in first-seen order), then the remaining fields as a FIELD/VALUE table. */
void aegis_ctl_print_section(FILE *f, const json_t *section);

/* Prints a /dns/lookup answer like dig. */
void aegis_ctl_print_lookup(FILE *f, const json_t *answer);

/* The section name of a config_dump entry ("type.aegis.io/aegis.admin.v1.DnsConfigDump" -> "dns") into
 * buf; "" when the entry has no @type of that form. */
const char *aegis_ctl_section_name(const json_t *entry, char *buf, size_t len);

#endif
