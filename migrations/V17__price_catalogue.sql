-- The price catalogue (issue 15): every chat model of the major providers,
-- from LiteLLM's price data (src/usage/catalogue/SOURCE.md), in the
-- database so that pricing an event looks a name up through an index
-- instead of loading the catalogue, and so that `tokentally price sync`
-- can change it in one transaction with the events it re-prices.
--
-- Amounts are integer micro-units: per million tokens for token prices,
-- per request for web search. Every component a bill can have is stored
-- (1-hour cache writes, the long-context tier, web search), whether or not
-- pricing applies it yet; missing components were already resolved the
-- way LiteLLM resolves them (a cache price defaults to the input price,
-- the 1-hour write to the 5-minute one, a tier's rate to the base rate).
CREATE TABLE price_catalogue (
    id                           INTEGER PRIMARY KEY,
    -- LiteLLM's key, e.g. `claude-sonnet-4-5`, `us.anthropic.claude-…-v1:0`.
    name                         TEXT    NOT NULL UNIQUE,
    -- LiteLLM's `litellm_provider`, e.g. `anthropic`, `bedrock_converse`.
    provider                     TEXT    NOT NULL,
    -- Derived by the resolution rules (usage::catalogue::resolve): the
    -- name reduced to its canonical key, the same with its release date
    -- kept, and the entry's rank among the entries of the same key (lower
    -- wins). Rewritten when the rules change (price_catalogue_meta.rules).
    canonical                    TEXT    NOT NULL,
    canonical_dated              TEXT    NOT NULL,
    preference                   INTEGER NOT NULL,
    input_per_mtok               INTEGER NOT NULL CHECK (input_per_mtok >= 0),
    output_per_mtok              INTEGER NOT NULL CHECK (output_per_mtok >= 0),
    cache_read_per_mtok          INTEGER NOT NULL CHECK (cache_read_per_mtok >= 0),
    -- 5-minute cache writes (Anthropic's default), and 1-hour ones.
    cache_write_per_mtok         INTEGER NOT NULL CHECK (cache_write_per_mtok >= 0),
    cache_write_1h_per_mtok      INTEGER NOT NULL CHECK (cache_write_1h_per_mtok >= 0),
    -- The long-context tier: a request whose prompt (cache included) has
    -- more tokens than this is priced wholly at the tier's rates.
    tier_above_tokens            INTEGER CHECK (tier_above_tokens > 0),
    tier_input_per_mtok          INTEGER CHECK (tier_input_per_mtok >= 0),
    tier_output_per_mtok         INTEGER CHECK (tier_output_per_mtok >= 0),
    tier_cache_read_per_mtok     INTEGER CHECK (tier_cache_read_per_mtok >= 0),
    tier_cache_write_per_mtok    INTEGER CHECK (tier_cache_write_per_mtok >= 0),
    tier_cache_write_1h_per_mtok INTEGER CHECK (tier_cache_write_1h_per_mtok >= 0),
    -- Micro-units per web search request; NULL when the data names none.
    web_search_per_request       INTEGER CHECK (web_search_per_request >= 0),
    CHECK ((tier_above_tokens IS NULL) = (tier_input_per_mtok IS NULL)
       AND (tier_above_tokens IS NULL) = (tier_output_per_mtok IS NULL)
       AND (tier_above_tokens IS NULL) = (tier_cache_read_per_mtok IS NULL)
       AND (tier_above_tokens IS NULL) = (tier_cache_write_per_mtok IS NULL)
       AND (tier_above_tokens IS NULL) = (tier_cache_write_1h_per_mtok IS NULL))
) STRICT;

CREATE INDEX price_catalogue_by_canonical ON price_catalogue (canonical, preference, name);
CREATE INDEX price_catalogue_by_dated ON price_catalogue (canonical_dated, preference, name);

-- Which catalogue is loaded: one row, absent until the first load.
CREATE TABLE price_catalogue_meta (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    -- 'embedded': the one built into the binary; 'sync': a file an admin
    -- loaded with `tokentally price sync`.
    origin       TEXT    NOT NULL CHECK (origin IN ('embedded', 'sync')),
    -- What it was read from: `LiteLLM 1.110.2`, a path or an https URL.
    source       TEXT    NOT NULL,
    -- LiteLLM's version, when known.
    version      TEXT,
    -- The data's date (YYYY-MM-DD): the release's for the embedded one,
    -- the day of the sync for a synced file. A newer binary's embedded
    -- catalogue replaces an older one on start, never a newer sync.
    data_date    TEXT    NOT NULL,
    -- SHA-256 of the entries as stored (names, providers, amounts).
    digest       TEXT    NOT NULL,
    -- The version of the resolution rules the derived columns follow.
    rules        INTEGER NOT NULL,
    entries      INTEGER NOT NULL,
    loaded_at_ms INTEGER NOT NULL
) STRICT;

-- A fourth cost origin, 3: priced from the catalogue (0: unpriced, 1: an
-- admin's price, 2: reported by the producer). SQLite cannot alter a CHECK
-- constraint, and rebuilding `events` would copy every row (minutes and
-- twice the disk on a large database) for a constraint that only widens.
-- SQLite documents editing the stored schema text for such changes, which
-- every existing row still satisfies
-- (https://www.sqlite.org/lang_altertable.html#otheralter); the tables
-- created above change the schema cookie in this same transaction, so
-- every connection reloads the schema.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (cost_origin IN (0, 1, 2))', 'CHECK (cost_origin IN (0, 1, 2, 3))')
WHERE type = 'table' AND name = 'events';
PRAGMA writable_schema = RESET;

-- Fail the migration (and roll it back) unless the edit took.
CREATE TEMP TABLE v17_guard (edited INTEGER NOT NULL CHECK (edited = 1));
INSERT INTO v17_guard
SELECT instr(sql, 'CHECK (cost_origin IN (0, 1, 2, 3))') > 0 FROM sqlite_schema
WHERE type = 'table' AND name = 'events';
DROP TABLE v17_guard;

-- The seven prices V3 seeded were our own copy of list prices; the
-- catalogue now holds them (and keeps them current). The rows an admin
-- never changed give way to it: `price set` on the same row stamps
-- `created_at`, so an untouched seed still has 0 and V3's amounts. The
-- events they priced are re-priced from the catalogue when it is first
-- loaded, at the next start (usage::price_sync::ensure_embedded).
DELETE FROM prices
WHERE created_at = 0 AND provider = '' AND effective_from_ms = 0
  AND (model, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok) IN (
    VALUES ('claude-opus-4-1',   15000000, 75000000, 1500000, 18750000),
           ('claude-sonnet-4-5',  3000000, 15000000,  300000,  3750000),
           ('claude-haiku-4-5',   1000000,  5000000,  100000,  1250000),
           ('gpt-5',              1250000, 10000000,  125000,        0),
           ('gpt-5-mini',          250000,  2000000,   25000,        0),
           ('gpt-4.1',            2000000,  8000000,  500000,        0),
           ('gemini-2.5-pro',     1250000, 10000000,  310000,        0));
