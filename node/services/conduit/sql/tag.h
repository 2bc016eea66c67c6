/* node/services/conduit/sql/tag.h: the RealWorld tag list (GET /api/tags). */
#ifndef STORE_TAG_H
#define STORE_TAG_H

#include <shoal/store.h>

typedef struct store_tag_statements {
    store_statement in_use;
} store_tag_statements;

int store_tag_register(store_registry *registry, store_tag_statements *statements);

/* Every tag at least one article carries, as a JSON array of strings
 * sorted by bytes (["dragons","training"]), into *tags, which lives in
 * *result. Tags that no article carries any more stay in the table (a tag
 * row is shared and cheap) but are not listed. */
store_status store_tag_list(store *s, const store_tag_statements *statements, const char **tags,
                            store_result **result);

#endif
