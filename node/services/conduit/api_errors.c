/* node/services/conduit/api_errors.c: the Conduit API's error codes, one table. */
#include "api_errors.h"

#include "api.h"

const shoal_error_code api_code_blank = {422, "api.blank", NULL, "can't be blank"};
const shoal_error_code api_code_invalid = {422, "api.invalid", NULL, "is invalid"};
const shoal_error_code api_code_too_long = {422, "api.too_long", NULL, "is too long"};
const shoal_error_code api_code_self_follow = {422, "api.self_follow", "username", "cannot follow yourself"};
const shoal_error_code api_code_invalid_credentials = {401, "auth.invalid_credentials", "email or password",
                                                       "is invalid"};
const shoal_error_code api_code_user_not_found = {404, "user.not_found", "user", "not found"};
const shoal_error_code api_code_profile_not_found = {404, "profile.not_found", "profile", "not found"};
const shoal_error_code api_code_article_not_found = {404, "article.not_found", "article", "not found"};
const shoal_error_code api_code_article_forbidden = {403, "article.forbidden", "article", "is not yours"};
const shoal_error_code api_code_comment_not_found = {404, "comment.not_found", "comment", "not found"};
const shoal_error_code api_code_comment_forbidden = {403, "comment.forbidden", "comment",
                                                     "can only be deleted by its author"};
const shoal_error_code api_code_tag_not_found = {404, "tag.not_found", "tags", "not found"};

const shoal_error_table shoal_api_errors = {
    "conduit",
    (const shoal_error_code *const[]){
        &api_code_blank,
        &api_code_invalid,
        &api_code_too_long,
        &api_code_self_follow,
        &api_code_invalid_credentials,
        &api_code_user_not_found,
        &api_code_profile_not_found,
        &api_code_article_not_found,
        &api_code_article_forbidden,
        &api_code_comment_not_found,
        &api_code_comment_forbidden,
        &api_code_tag_not_found,
        NULL,
    },
};
