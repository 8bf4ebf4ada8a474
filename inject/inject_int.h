/* Private to inject/: the YAML node walker that inject_config.c shares with inject_yaml.c. */
#ifndef AEGIS_INJECT_INT_H
#define AEGIS_INJECT_INT_H

#include <yaml.h>

#include "aegis/inject.h"

/* Values one YAML stream may expand to. Aliases are followed (go-yaml, which kubectl uses, accepts them),
 * so a "billion laughs" document could otherwise grow without bound from a few hundred bytes. */
#define AEGIS_INJECT_MAX_YAML_VALUES 1000000

/* Converts node (of doc, parsed from name) into a new JSON value in *out. *budget counts the values still
 * allowed and is decremented; depth is the node's nesting level. Errors name name:line:column. */
int aegis_inject_yaml_node(yaml_document_t *doc, yaml_node_t *node, const char *name, int depth,
                           size_t *budget, json_t **out, struct aegis_diag *diag) AEGIS_WUR;

/* Fills diag from a failed yaml_parser_t. Returns AEGIS_EPARSE. */
int aegis_inject_yaml_parser_error(const yaml_parser_t *p, const char *name, struct aegis_diag *diag);

#endif
