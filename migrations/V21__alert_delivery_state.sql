-- Delivery of alerts (issue 16): a delivery that kept failing for the
-- whole retry window (48 h) is given up, and says so on the alerts page.
-- The due index leaves given-up deliveries out, so the worker's poll
-- reads only what it may still send.

ALTER TABLE alert_deliveries ADD COLUMN given_up_ms INTEGER;

DROP INDEX alert_deliveries_due;
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_ms)
    WHERE delivered_ms IS NULL AND given_up_ms IS NULL;
