-- 0001: the baseline every later migration builds on.
-- citext compares text case-insensitively (emails and usernames are unique
-- regardless of case) without lower() in every query and index. It is a
-- trusted extension, so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS citext;
