-- Issue 15: customers log in, sessions hold their tokens, and money enters
-- a balance only through an operator's top-up.

-- A customer's login (unique) and argon2id password hash; NULL for users
-- created before logins existed, who cannot log in.
ALTER TABLE users ADD COLUMN login TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
CREATE UNIQUE INDEX users_login ON users (login);

-- One row per log-in: the SHA-256 of the token (never the token), whose it
-- is (a customer's user_id or an operator's login, exactly one), until when
-- it is valid and when it was revoked (log-out).
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT,
    operator_login TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CHECK ((user_id IS NULL) <> (operator_login IS NULL))
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- The ledger of top-ups: the operator's reference is the primary key, so a
-- repeated top-up is applied once; balance_after_cents is the balance it
-- left, answered again on a replay.
CREATE TABLE balance_top_ups (
    reference TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    balance_after_cents BIGINT NOT NULL CHECK (balance_after_cents >= amount_cents),
    operator_login TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX balance_top_ups_user ON balance_top_ups (user_id);
