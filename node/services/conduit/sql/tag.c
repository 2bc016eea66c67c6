/* node/services/conduit/sql/tag.c */
#include "tag.h"

int store_tag_register(store_registry *registry, store_tag_statements *statements)
{
    statements->in_use = store_registry_add(
        registry, "tag_list",
        "SELECT coalesce(json_agg(t.name ORDER BY t.name COLLATE \"C\")::text, '[]') FROM tags t "
        "WHERE EXISTS (SELECT 1 FROM article_tags at WHERE at.tag_id = t.id)",
        0);
    return statements->in_use >= 0 ? 0 : -1;
}

store_status store_tag_list(store *s, const store_tag_statements *statements, const char **tags,
                            store_result **result)
{
    *result = NULL;
    store_result *found = NULL;
    store_status status = store_run(s, statements->in_use, NULL, &found);
    if (status != STORE_OK)
        return status;
    if (store_result_rows(found) != 1 || store_result_columns(found) != 1 ||
        (*tags = store_result_value(found, 0, 0)) == NULL) {
        store_result_free(found);
        return STORE_ERROR;
    }
    *result = found;
    return STORE_OK;
}
