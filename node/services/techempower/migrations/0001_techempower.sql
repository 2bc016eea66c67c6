-- 0002: the tables of the TechEmpower Framework Benchmarks (the routes in
-- node/services/techempower/). Their shapes and the twelve fortunes are fixed by the
-- benchmark's specification, so that our answers compare with everyone
-- else's. Column names are lower case on purpose: PostgreSQL folds the
-- unquoted randomNumber of the original script to randomnumber anyway, and
-- the JSON key randomNumber is the API's business, not the column's.
CREATE TABLE world (
    id integer PRIMARY KEY,
    randomnumber integer NOT NULL
);

-- 10000 rows with random numbers from 1 to 10000. least() guards the one
-- value in 2^52 or so where random() * 10000 + 1 would round to 10001.
INSERT INTO world (id, randomnumber)
SELECT id, least(floor(random() * 10000 + 1), 10000)::integer
  FROM generate_series(1, 10000) AS id;

CREATE TABLE fortune (
    id integer PRIMARY KEY,
    message varchar(2048) NOT NULL
);

-- The test data the specification fixes, byte for byte (UTF-8): row 11
-- checks that answers escape HTML, row 12 that they are UTF-8.
INSERT INTO fortune (id, message) VALUES
    (1, 'fortune: No such file or directory'),
    (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
    (3, 'After enough decimal places, nobody gives a damn.'),
    (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
    (5, 'A computer program does what you tell it to do, not what you want it to do.'),
    (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
    (7, 'Any program that runs right is obsolete.'),
    (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
    (9, 'Feature: A bug with seniority.'),
    (10, 'Computers make very fast, very accurate mistakes.'),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, 'フレームワークのベンチマーク');
