-- A claimed Idempotency-Key names the request holding it and how long its claim
-- stands unless renewed: a retry may take over a claim whose lease ended (its
-- request died with its instance, or could not free the key when the database
-- failed). Claims made before this migration have no lease: free to take over.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN lease_until TIMESTAMPTZ;
