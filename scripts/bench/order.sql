-- The durable order transaction of the PostgreSQL peer: reserve one unit of a random option
-- (never below zero) and record the order and its line, committed with synchronous_commit on.
\set user random(1, 100000)
\set option random(1, 10)
BEGIN;
UPDATE stock SET available = available - 1 WHERE option_id = :option AND available >= 1;
INSERT INTO orders (user_id, status, total_amount, created_at) VALUES (:user, 'PENDING', 1000 * :option, now()) RETURNING order_id \gset
INSERT INTO order_items (order_id, option_id, quantity, unit_price) VALUES (:order_id, :option, 1, 1000 * :option);
COMMIT;
