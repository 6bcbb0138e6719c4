CREATE TABLE consumed_message (
    consumer_group TEXT NOT NULL,
    message_key TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, message_key)
);

CREATE TABLE account (
    id TEXT PRIMARY KEY,
    balance_cents BIGINT NOT NULL CHECK (balance_cents >= 0)
);
