-- Only the 5-minute bucket of a record's time in clear (issue 33): records stored before keep
-- theirs coarsened too (a record made since carries its exact time sealed).
UPDATE records SET captured_at = CAST(captured_at / 300 AS INTEGER) * 300.0,
    delete_after = CAST(delete_after / 300 AS INTEGER) * 300.0;
UPDATE held SET captured_at = CAST(captured_at / 300 AS INTEGER) * 300.0;
