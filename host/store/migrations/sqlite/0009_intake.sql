-- How a request reached the controller (call, ivr, email, letter, web;
-- NULL: filed by an operator with no intake recorded). The deadline runs
-- from received_at, which an intake may set to when the request was
-- actually received.
ALTER TABLE requests ADD COLUMN channel TEXT;
