-- PostgreSQL keeps indexing at insert (the generated tsvector of 0006):
-- with several nodes writing, search_id is not handed out in commit order,
-- so a queue of pending ids read by one node could miss a row another
-- node's transaction commits late.
--
-- A search by author walks that author's messages newest first and checks
-- the words, instead of every message newest first: with a common word and
-- an author who rarely uses it, the walk over all messages was most of a
-- second at p99 over 1,000,000 messages (docs/BENCHMARKS.md "Search").
CREATE INDEX messages_by_sender_search ON messages(sender_id, search_id);
