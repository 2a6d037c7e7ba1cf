-- What an event's price needs beyond the four token counts (issue 15), kept
-- per event so that re-pricing gives exactly what ingest gave:
--
-- * cache_write_1h_tokens: of cache_write_tokens, those written for one
--   hour (Anthropic's `ephemeral_1h_input_tokens`); the rest are 5-minute
--   writes. Priced at the 1-hour rate.
-- * web_search_requests: server-side web searches the call made, priced
--   per request.
-- * one_request: 1 when the event is one request (a transcript message, a
--   log record, a span, a LiteLLM call, an event sent to the API), 0 when
--   it may sum several (an OTLP metric point) or is unknown (every event
--   stored before this migration). The long-context tier applies to one
--   request only, and its prompt is input + cache read + cache write of
--   the event itself, so the flag is all that is needed: storing the
--   prompt's size would repeat those counts and could disagree with them.
--   Events stored before keep 0, so their costs do not change.
ALTER TABLE events ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN web_search_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN one_request INTEGER NOT NULL DEFAULT 0;
