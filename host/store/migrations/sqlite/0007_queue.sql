-- The operator console's queue pages open requests by deadline (earliest
-- first, then id) and filters by kind; the dashboard counts systems that
-- moved in the last 30 days.
CREATE INDEX requests_due ON requests (due_at, id);
CREATE INDEX requests_kind ON requests (kind, due_at);
CREATE INDEX request_systems_updated ON request_systems (updated_at);
