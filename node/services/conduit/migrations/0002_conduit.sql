-- 0003: the RealWorld "Conduit" schema (the routes in node/services/conduit/).
--
-- Emails and usernames are citext (0001): unique regardless of case, so
-- "Alice@Example.com" cannot register beside "alice@example.com", and
-- lookups by either need no lower() in every query. Lengths are bounded
-- here as well as in the node, so that no path around the node's checks
-- can store an unbounded value. Constraint names are part of the API: the
-- node maps each unique constraint to the field it guards (a violation
-- becomes 422 {"errors":{"email":["has already been taken"]}}).
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email citext NOT NULL CONSTRAINT users_email_length CHECK (length(email) BETWEEN 3 AND 254),
    username citext NOT NULL CONSTRAINT users_username_length CHECK (length(username) BETWEEN 1 AND 64),
    password_hash text NOT NULL,
    bio text CONSTRAINT users_bio_length CHECK (length(bio) <= 4096),
    image text CONSTRAINT users_image_length CHECK (length(image) <= 2048),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_username_key UNIQUE (username)
);

-- Who follows whom. The primary key answers "does A follow B" and A's
-- feed's author list; the second index answers "who follows B" and keeps
-- deleting a user cheap.
CREATE TABLE follows (
    follower_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CONSTRAINT follows_not_self CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_followee_idx ON follows (followee_id);

-- favorites_count is kept by the triggers below, in the same transaction
-- as the favourite row itself: an insert that ON CONFLICT DO NOTHING
-- skips fires no trigger, and concurrent increments of one article wait
-- for each other's row lock and re-read the committed count (READ
-- COMMITTED), so 100 parallel favourites from any number of nodes give
-- exactly 100, and listing articles never has to count.
CREATE TABLE articles (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL CONSTRAINT articles_slug_length CHECK (length(slug) BETWEEN 1 AND 300),
    title text NOT NULL CONSTRAINT articles_title_length CHECK (length(title) BETWEEN 1 AND 255),
    description text NOT NULL CONSTRAINT articles_description_length CHECK (length(description) <= 1024),
    body text NOT NULL CONSTRAINT articles_body_length CHECK (length(body) <= 1048576),
    author_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    favorites_count integer NOT NULL DEFAULT 0 CONSTRAINT articles_favorites_count_positive CHECK (favorites_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT articles_slug_key UNIQUE (slug)
);
-- Lists are newest first, ties broken by id so that paging is stable:
-- the global list and the author filter (and the feed, one author at a
-- time merged by the planner) walk these in order.
CREATE INDEX articles_created_idx ON articles (created_at DESC, id DESC);
CREATE INDEX articles_author_created_idx ON articles (author_id, created_at DESC, id DESC);

CREATE TABLE tags (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CONSTRAINT tags_name_length CHECK (length(name) BETWEEN 1 AND 64),
    CONSTRAINT tags_name_key UNIQUE (name)
);

CREATE TABLE article_tags (
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag_id bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (article_id, tag_id)
);
-- The tag filter: every article of a tag.
CREATE INDEX article_tags_tag_idx ON article_tags (tag_id, article_id);

CREATE TABLE favorites (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, article_id)
);
-- Deleting an article removes its favourites; the primary key serves the
-- `favorited` filter (every article one user favourited).
CREATE INDEX favorites_article_idx ON favorites (article_id);

CREATE FUNCTION favorites_count_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE articles SET favorites_count = favorites_count + 1 WHERE id = NEW.article_id;
        RETURN NEW;
    END IF;
    UPDATE articles SET favorites_count = favorites_count - 1 WHERE id = OLD.article_id;
    RETURN OLD;
END;
$$;
CREATE TRIGGER favorites_count_insert AFTER INSERT ON favorites
    FOR EACH ROW EXECUTE FUNCTION favorites_count_keep();
CREATE TRIGGER favorites_count_delete AFTER DELETE ON favorites
    FOR EACH ROW EXECUTE FUNCTION favorites_count_keep();

CREATE TABLE comments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    article_id bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    author_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body text NOT NULL CONSTRAINT comments_body_length CHECK (length(body) BETWEEN 1 AND 65536),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_article_idx ON comments (article_id, created_at, id);
CREATE INDEX comments_author_idx ON comments (author_id);
