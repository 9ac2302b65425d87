-- Alert details are a JSON object: the dispatcher, the BI views and people read them by key.
-- An alert whose details were a string or an array once stopped every delivery (the dispatcher
-- could not render it); the functions that write alerts wrap such a value as {"context": ...}.
ALTER TABLE guard.alerts ADD CONSTRAINT alerts_details_is_object
CHECK (jsonb_typeof(details) = 'object');
