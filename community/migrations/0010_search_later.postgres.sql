-- PostgreSQL keeps indexing at insert (the generated tsvector of 0006):
-- with several nodes writing, search_id is not handed out in commit order,
-- so a watermark or queue of pending ids read by one node could miss a
-- row another node's transaction commits late. This half only keeps the
-- two engines' version numbers in step.
SELECT 1;
