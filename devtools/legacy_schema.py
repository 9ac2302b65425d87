"""A database as the original Laravel application created it, before Booking Guard: varchar(255),
timestamp(0) without time zone, json, columns missing, 20 000 calls. The lock table of
docs/dba.md observes the migrations on it as well as on a new database (their states differ),
and the tests adopt it (tests/db/test_legacy.py)."""

LEGACY_SCHEMA = """
CREATE TABLE companies (
    id bigserial PRIMARY KEY,
    name varchar(255) NOT NULL,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES companies (id),
    name varchar(255),
    phone varchar(255),
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);
CREATE TABLE calls (
    id bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES companies (id),
    retell_call_id varchar(255) UNIQUE,
    from_number varchar(255),
    to_number varchar(255),
    status varchar(255),
    customer_id bigint REFERENCES customers (id),
    session_outcome varchar(255),
    appointment_made boolean DEFAULT false,
    booking_id varchar(255),
    booking_details json,
    transcript text,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);
CREATE TABLE appointments (
    id bigserial PRIMARY KEY,
    company_id bigint NOT NULL REFERENCES companies (id),
    call_id bigint REFERENCES calls (id),
    customer_id bigint REFERENCES customers (id),
    calcom_v2_booking_id varchar(255),
    source varchar(255),
    status varchar(255) DEFAULT 'scheduled',
    starts_at timestamp(0) without time zone,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone,
    deleted_at timestamp(0) without time zone
);
INSERT INTO companies (name, created_at) VALUES ('Legacy GmbH', now());
INSERT INTO customers (company_id, name, phone) VALUES (1, 'Kunde', '+49 30 1234567');
INSERT INTO calls (company_id, retell_call_id, from_number, session_outcome, appointment_made,
                   booking_id, booking_details, transcript, created_at)
SELECT 1, 'legacy_' || g, '+49 30 ' || (1000000 + g),
       CASE WHEN g % 3 = 0 THEN 'appointment_booked' ELSE 'information_only' END,
       g % 3 = 0, 'bk_' || g, json_build_object('slot', g), 'transcript ' || g,
       now() - make_interval(mins => g)
FROM generate_series(1, 20000) AS g;
INSERT INTO appointments (company_id, call_id, calcom_v2_booking_id, source, starts_at, deleted_at)
SELECT 1, c.id, c.booking_id, 'retell_webhook', now() + interval '1 day',
       CASE WHEN c.id % 30 = 0 THEN now() END
FROM calls AS c WHERE c.appointment_made;
"""
