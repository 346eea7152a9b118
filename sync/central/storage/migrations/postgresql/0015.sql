-- A search tag as the 16 bytes it is (issue 34): compared byte by byte whatever the database's
-- collation (a text tag under a language's collation costs a locale comparison at every step
-- of an index descent), a smaller index, sent by binary COPY as it is stored. A trace looks up
-- each tag of a venue-day in that day's index.
ALTER TABLE records ALTER COLUMN tag TYPE bytea USING decode(tag, 'hex');
