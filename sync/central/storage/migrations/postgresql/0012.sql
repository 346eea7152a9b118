-- Only the 5-minute bucket of a record's time in clear (issue 33): records stored before keep
-- theirs coarsened too (a record made since carries its exact time sealed). A bucket never
-- crosses a day, so no record changes partition.
UPDATE records SET captured_at = floor(captured_at / 300) * 300,
    delete_after = floor(delete_after / 300) * 300
    WHERE captured_at <> floor(captured_at / 300) * 300;
UPDATE held SET captured_at = floor(captured_at / 300) * 300
    WHERE captured_at <> floor(captured_at / 300) * 300;
